//! One step of each recurrent cell (`rnn_step`, `gru_step`, `lstm_step`) over arbitrary
//! cells, batches and buffer lengths: never panics, an `Err` exactly when a length is
//! inconsistent, the best backend agrees with scalar, and a run of steps equals the
//! sequence runner over the same inputs (same backend).
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{
    Backend, Direction, Engine, Error, GruReset, GruShape, LstmShape, PackedGru, PackedLstm,
    PackedRnn, RnnActivation, RnnShape, TorchWeights, Weights,
};

#[derive(Clone, Copy, Debug)]
enum Cell {
    Rnn(RnnShape),
    Gru(GruShape),
    Lstm(LstmShape),
}

impl Cell {
    fn dims(&self) -> (usize, usize, usize, usize) {
        // (input, hidden, state, gates)
        match self {
            Cell::Rnn(s) => (s.input, s.hidden, s.state_len(), 1),
            Cell::Gru(s) => (s.input, s.hidden, s.state_len(), 3),
            Cell::Lstm(s) => (s.input, s.hidden, s.state_len(), 4),
        }
    }
    fn packed_len(&self) -> usize {
        match self {
            Cell::Rnn(s) => s.packed_len(),
            Cell::Gru(s) => s.packed_len(),
            Cell::Lstm(s) => s.packed_len(),
        }
    }
    fn scratch_len(&self, steps: usize, batch: usize) -> usize {
        match self {
            Cell::Rnn(s) => s.batch_scratch_len(steps, batch),
            Cell::Gru(s) => s.batch_scratch_len(steps, batch),
            Cell::Lstm(s) => s.batch_scratch_len(steps, batch),
        }
    }
    fn pack(&self, w: TorchWeights<'_>, storage: &mut [f32]) -> Result<(), Error> {
        match self {
            Cell::Rnn(s) => PackedRnn::pack(s, Weights::from(w), storage).map(drop),
            Cell::Gru(s) => PackedGru::pack(s, Weights::from(w), storage).map(drop),
            Cell::Lstm(s) => PackedLstm::pack(s, Weights::from(w), storage).map(drop),
        }
    }
    fn step(&self, e: &Engine, data: &[f32], x: &[f32], h: &mut [f32], c: &mut [f32], scratch: &mut [f32]) -> Result<(), Error> {
        match self {
            Cell::Rnn(s) => e.rnn_step(&PackedRnn::from_packed(s, data)?, x, h, scratch),
            Cell::Gru(s) => e.gru_step(&PackedGru::from_packed(s, data)?, x, h, scratch),
            Cell::Lstm(s) => e.lstm_step(&PackedLstm::from_packed(s, data)?, x, h, c, scratch),
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn sequence(&self, e: &Engine, data: &[f32], xs: &[f32], h: &mut [f32], c: &mut [f32], scratch: &mut [f32]) -> Result<(), Error> {
        let f = Direction::Forward;
        match self {
            Cell::Rnn(s) => e.rnn_sequence(&PackedRnn::from_packed(s, data)?, f, xs, h, None, scratch),
            Cell::Gru(s) => e.gru_sequence(&PackedGru::from_packed(s, data)?, f, xs, h, None, scratch),
            Cell::Lstm(s) => e.lstm_sequence(&PackedLstm::from_packed(s, data)?, f, xs, h, c, None, scratch),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (input, hidden) = (data[0] as usize % 20 + 1, data[1] as usize % 70 + 1);
    let (batch, steps) = (data[2] as usize % 5, data[3] as usize % 5 + 1);
    let wrong = data[4];
    let clip = (data[5] & 0x80 != 0).then_some(0.5 + (data[5] % 8) as f32);
    let cell = match data[6] % 7 {
        0 => Cell::Rnn(RnnShape { clip, ..RnnShape::new(input, hidden) }),
        1 => Cell::Rnn(RnnShape::new(input, hidden).with_activation(RnnActivation::Relu)),
        2 => Cell::Gru(GruShape { clip, ..GruShape::new(input, hidden) }),
        3 => Cell::Gru(GruShape::new(input, hidden).with_reset(GruReset::BeforeProduct)),
        4 => Cell::Lstm(LstmShape { clip, ..LstmShape::new(input, hidden) }),
        5 => Cell::Lstm(LstmShape::new(input, hidden).with_cell_clip(2.0)),
        _ => Cell::Lstm(LstmShape::new(input, hidden).with_projection(data[7] as usize % hidden)),
    };
    let (_, _, state, gates) = cell.dims();
    let lstm = matches!(cell, Cell::Lstm(_));
    let proj = matches!(cell, Cell::Lstm(s) if s.proj_size > 0);
    let vals: Vec<f32> = data[8..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 16384.0).collect();
    let take = |n: usize, skip: usize, k: f32| -> Vec<f32> { (0..n).map(|i| vals.get(skip + i).copied().unwrap_or(0.25) * k).collect() };
    let rows = gates * hidden;
    // Weights small enough that the recurrence contracts (so backends stay close).
    let (w_ih, w_hh) = (take(rows * input, 0, 1.0 / input as f32), take(rows * state, 5, 0.5 / state as f32));
    let (b_ih, b_hh) = (take(rows, 9, 1.0), take(rows, 2, 1.0));
    let w_hr = take(state * hidden, 7, 1.0 / hidden as f32);
    let w = TorchWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: Some(&b_ih), b_hh: Some(&b_hh), w_hr: proj.then_some(&w_hr[..]) };
    let mut storage = vec![0.0; cell.packed_len()];
    cell.pack(w, &mut storage).unwrap();

    // One step with every buffer possibly one too long or short.
    let cut = |n: usize, bit: u8| match (wrong & bit != 0, wrong & 0x80 != 0) {
        (false, _) => n,
        (true, false) => n + 1,
        (true, true) => n.saturating_sub(1),
    };
    let x = take(cut(batch * input, 1), 3, 4.0);
    let h0 = take(cut(batch * state, 2), 4, 1.0);
    let c0 = take(if lstm { cut(batch * hidden, 4) } else { 0 }, 6, 2.0);
    let scratch_len = cut(cell.scratch_len(1, batch), 8);
    let best = Engine::new();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    let step = |e: &Engine| {
        let (mut h, mut c, mut scratch) = (h0.clone(), c0.clone(), vec![f32::NAN; scratch_len]);
        let r = cell.step(e, &storage, &x, &mut h, &mut c, &mut scratch);
        (r, h, c)
    };
    let (r, h, c) = step(&best);
    // Consistent: h of whole states, x of one input per state, c (LSTM) of one cell per
    // state, the scratch for that batch.
    let consistent = h0.len() % state == 0 && {
        let b = h0.len() / state;
        x.len() == b * input && (!lstm || c0.len() == b * hidden) && scratch_len == cell.scratch_len(1, b)
    };
    assert_eq!(r.is_ok(), consistent, "{cell:?} batch {batch} wrong {wrong:#x}: {r:?}");
    let close = |a: &[f32], b: &[f32], k: f32| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= k * 1e-4 * (1.0 + x.abs().max(y.abs())));
    if r.is_ok() {
        let (_, h_s, c_s) = step(&scalar);
        assert!(close(&h, &h_s, 1.0) && close(&c, &c_s, 1.0), "{h:?} {c:?} vs scalar {h_s:?} {c_s:?}");
    }

    // `steps` steps equal one sequence call over the same inputs.
    let xs = take(steps * batch * input, 11, 4.0);
    let (h0, c0) = (take(batch * state, 4, 1.0), take(if lstm { batch * hidden } else { 0 }, 6, 2.0));
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut scratch = vec![0.0; cell.scratch_len(1, batch)];
    for t in 0..steps {
        cell.step(&best, &storage, &xs[t * batch * input..][..batch * input], &mut h, &mut c, &mut scratch).unwrap();
    }
    let (mut h_seq, mut c_seq) = (h0, c0);
    let mut scratch = vec![0.0; cell.scratch_len(steps, batch)];
    cell.sequence(&best, &storage, &xs, &mut h_seq, &mut c_seq, &mut scratch).unwrap();
    let k = steps as f32;
    assert!(close(&h, &h_seq, k) && close(&c, &c_seq, k), "steps {h:?} vs sequence {h_seq:?}");
});
