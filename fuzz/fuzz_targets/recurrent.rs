//! Arbitrary recurrent cells, options, batches, sequences and buffer lengths through the
//! runtime-shaped API (PyTorch, ONNX, Keras and TensorFlow Lite weights): never panics, an `Err` exactly when
//! a length is inconsistent, and the best backend agrees with scalar.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{
    Backend, Direction, Engine, Error, GruReset, GruShape, KerasWeights, LstmShape, OnnxWeights,
    PackedGru, PackedLstm, PackedRnn, RnnActivation, RnnShape, TfliteLstmWeights, TorchWeights,
    Weights,
};

#[derive(Clone, Copy, Debug)]
enum Shape {
    Rnn(RnnShape),
    Gru(GruShape),
    Lstm(LstmShape),
}

impl Shape {
    fn packed_len(&self) -> usize {
        match self {
            Shape::Rnn(s) => s.packed_len(),
            Shape::Gru(s) => s.packed_len(),
            Shape::Lstm(s) => s.packed_len(),
        }
    }
    fn scratch_len(&self, steps: usize, batch: usize) -> usize {
        match self {
            Shape::Rnn(s) => s.batch_scratch_len(steps, batch),
            Shape::Gru(s) => s.batch_scratch_len(steps, batch),
            Shape::Lstm(s) => s.batch_scratch_len(steps, batch),
        }
    }
    fn state(&self) -> usize {
        match self {
            Shape::Rnn(s) => s.state_len(),
            Shape::Gru(s) => s.state_len(),
            Shape::Lstm(s) => s.state_len(),
        }
    }
    fn pack<'a>(&self, w: Weights<'_>, storage: &'a mut [f32]) -> Result<(), Error> {
        match self {
            Shape::Rnn(s) => PackedRnn::pack(s, w, storage).map(drop),
            Shape::Gru(s) => PackedGru::pack(s, w, storage).map(drop),
            Shape::Lstm(s) => PackedLstm::pack(s, w, storage).map(drop),
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn run(&self, e: &Engine, data: &[f32], dir: Direction, xs: &[f32], h: &mut [f32], c: &mut [f32], out: Option<&mut [f32]>, scratch: &mut [f32]) -> Result<(), Error> {
        match self {
            Shape::Rnn(s) => e.rnn_sequence(&PackedRnn::from_packed(s, data)?, dir, xs, h, out, scratch),
            Shape::Gru(s) => e.gru_sequence(&PackedGru::from_packed(s, data)?, dir, xs, h, out, scratch),
            Shape::Lstm(s) => e.lstm_sequence(&PackedLstm::from_packed(s, data)?, dir, xs, h, c, out, scratch),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (input, hidden) = (data[0] as usize % 12 + 1, data[1] as usize % 40 + 1);
    // Mostly short sequences; byte 3 above 191 asks for a long one (up to 64 steps).
    let steps = if data[3] > 191 { data[3] as usize % 64 } else { data[3] as usize % 6 };
    let batch = data[2] as usize % 4;
    let (opts, wrong) = (data[4], data[5]);
    let clip = (opts & 0x40 != 0).then_some(0.5 + (data[6] % 8) as f32);
    let shape = match data[6] % 6 {
        0 => Shape::Rnn(RnnShape { clip, ..RnnShape::new(input, hidden) }),
        1 => Shape::Rnn(RnnShape { clip, ..RnnShape::new(input, hidden).with_activation(RnnActivation::Relu) }),
        2 => Shape::Gru(GruShape { clip, ..GruShape::new(input, hidden) }),
        3 => Shape::Gru(GruShape { clip, ..GruShape::new(input, hidden).with_reset(GruReset::BeforeProduct) }),
        4 => Shape::Lstm(LstmShape { clip, cell_clip: (opts & 0x20 != 0).then_some(3.0), ..LstmShape::new(input, hidden) }),
        _ => Shape::Lstm(LstmShape::new(input, hidden).with_projection(data[7] as usize % hidden)),
    };
    let gates = match shape { Shape::Rnn(_) => 1, Shape::Gru(_) => 3, Shape::Lstm(_) => 4 };
    let (state, rows) = (shape.state(), gates * hidden);
    let vals: Vec<f32> = data[8..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 16384.0).collect();
    let take = |n: usize, skip: usize, k: f32| -> Vec<f32> {
        (0..n).map(|i| vals.get(skip + i).copied().unwrap_or(0.25) * k).collect()
    };
    // Weights small enough that the recurrence contracts (so backends stay close).
    let (w_ih, w_hh) = (take(rows * input, 0, 1.0 / input as f32), take(rows * state, 5, 0.5 / state as f32));
    let b = take(2 * rows, 9, 1.0);
    let proj = matches!(shape, Shape::Lstm(s) if s.proj_size > 0);
    let w_hr = take(state * hidden, 2, 1.0 / hidden as f32);
    // Packing, from PyTorch's layout; a wrong length is an error naming it.
    let cut = |n: usize, bit: u8| if wrong & bit != 0 { n + 1 } else { n };
    let w_ih_t = take(cut(rows * input, 1), 0, 1.0 / input as f32);
    let torch = TorchWeights { w_ih: &w_ih_t, w_hh: &w_hh, b_ih: Some(&b[..rows]), b_hh: Some(&b[rows..]), w_hr: proj.then_some(&w_hr[..]) };
    let mut storage = vec![f32::NAN; cut(shape.packed_len(), 2)];
    let r = shape.pack(torch.into(), &mut storage);
    assert_eq!(r.is_ok(), wrong & 3 == 0, "{shape:?} {r:?}");
    // ONNX and Keras imports check their lengths the same way.
    if !proj {
        let r_t = take(cut(rows * state, 4), 5, 1.0);
        let mut other = vec![0.0; shape.packed_len()];
        let onnx = OnnxWeights { w: &w_ih, r: &r_t, b: Some(&b) };
        assert_eq!(shape.pack(onnx.into(), &mut other).is_ok(), wrong & 4 == 0);
        let keras = KerasWeights { kernel: &w_ih, recurrent_kernel: &r_t, bias: Some(&b[..rows]) };
        assert_eq!(shape.pack(keras.into(), &mut other).is_ok(), wrong & 4 == 0);
    }
    // TensorFlow Lite's per-gate tensors: an LSTM's only (an error for the other cells), a
    // gate tensor one too long is an error, and they pack as PyTorch's with one bias.
    {
        let (h_in, h_st) = (hidden * input, hidden * state);
        let gate = |w: &[f32], g: usize, n: usize| w.get(g * n..).and_then(|w| w.get(..n)).unwrap_or(&[]).to_vec();
        let mut input_to: Vec<Vec<f32>> = (0..4).map(|g| gate(&w_ih, g, h_in)).collect();
        let bad = opts & 0x80 != 0;
        if bad {
            input_to[data[7] as usize % 4].push(0.0);
        }
        let recurrent_to: Vec<Vec<f32>> = (0..4).map(|g| gate(&w_hh, g, h_st)).collect();
        let bias: Vec<Vec<f32>> = (0..4).map(|g| gate(&b, g, hidden)).collect();
        let four = |v: &[Vec<f32>]| -> [Vec<f32>; 4] { [v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone()] };
        let (input_to, recurrent_to, bias) = (four(&input_to), four(&recurrent_to), four(&bias));
        let tflite = TfliteLstmWeights {
            input_to: input_to.each_ref().map(|v| &v[..]),
            recurrent_to: recurrent_to.each_ref().map(|v| &v[..]),
            bias: Some(bias.each_ref().map(|v| &v[..])),
            projection: proj.then_some(&w_hr[..]),
        };
        let lstm = matches!(shape, Shape::Lstm(_));
        let mut other = vec![0.0; shape.packed_len()];
        let r_tfl = shape.pack(tflite.into(), &mut other);
        assert_eq!(r_tfl.is_ok(), lstm && !bad, "TFLite weights for {shape:?}: {r_tfl:?}");
        if r_tfl.is_ok() {
            let torch = TorchWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: Some(&b[..rows]), b_hh: None, w_hr: proj.then_some(&w_hr[..]) };
            let mut same = vec![0.0; shape.packed_len()];
            shape.pack(torch.into(), &mut same).unwrap();
            assert!(other.iter().zip(&same).all(|(a, b)| a.to_bits() == b.to_bits()), "TFLite != PyTorch");
        }
    }
    if r.is_err() {
        return;
    }
    // Running, with every buffer possibly one too long.
    let lstm = matches!(shape, Shape::Lstm(_));
    let xs = take(cut(steps * batch * input, 8), 3, 4.0);
    let h0 = take(cut(batch * state, 16), 4, 1.0);
    let c0 = take(if lstm { cut(batch * hidden, 32) } else { 0 }, 6, 2.0);
    let want_out = opts & 1 != 0;
    let out_len = cut(steps * batch * state, 64);
    let scratch_len = cut(shape.scratch_len(steps, batch), 128);
    let dir = if opts & 2 != 0 { Direction::Reverse } else { Direction::Forward };
    let best = Engine::new();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    let run = |e: &Engine| {
        let (mut h, mut c) = (h0.clone(), c0.clone());
        let mut out = vec![f32::NAN; out_len];
        let mut scratch = vec![f32::NAN; scratch_len];
        let r = shape.run(e, &storage, dir, &xs, &mut h, &mut c, want_out.then_some(&mut out[..]), &mut scratch);
        (r, h, c, out)
    };
    let (r, h, c, out) = run(&best);
    // Consistent: whole states, an input of whole steps for them, c and out (if asked)
    // and the scratch of the exact lengths. (A buffer one too long can still be
    // consistent: h of one more state is a batch of one more row.)
    let b_eff = if h0.len() % state == 0 { h0.len() / state } else { usize::MAX };
    let consistent = b_eff != usize::MAX && {
        let row = b_eff * input;
        let steps_eff = if b_eff == 0 { if xs.is_empty() { Some(0) } else { None } } else if xs.len() % row == 0 { Some(xs.len() / row) } else { None };
        steps_eff.is_some_and(|t| {
            (!lstm || c0.len() == b_eff * hidden)
                && (!want_out || out_len == t * b_eff * state)
                && scratch_len == shape.scratch_len(t, b_eff)
        })
    };
    assert_eq!(r.is_ok(), consistent, "{shape:?} batch {batch} steps {steps} wrong {wrong:#x}: {r:?}");
    if r.is_ok() {
        let (_, h_s, c_s, out_s) = run(&scalar);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs())) * (steps as f32 + 1.0));
        assert!(close(&h, &h_s), "h: {h:?} vs scalar {h_s:?}");
        assert!(close(&c, &c_s), "c");
        if want_out {
            assert!(close(&out, &out_s), "out");
        }
    }
});
