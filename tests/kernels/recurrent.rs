//! Recurrent cells: every backend against an f64 reference cell, step by step from the
//! kernel's own state (so each step's bound is checked without the drift of earlier steps);
//! sequences equal to repeated steps bit for bit; reverse direction; options; misuse.
use crate::common;

use proptest::prelude::*;
use simdnn::{
    Direction, Engine, Error, GruReset, GruShape, LstmShape, PackedGru, PackedLstm, PackedRnn,
    RnnActivation, RnnShape, TorchWeights,
};

const EPS: f64 = 1.0 / 16_777_216.0; // 2^-24
/// A few ulp of a value of magnitude up to 1 (the activations' own error, 4 ulp, and the
/// roundings of the element-wise updates).
const ABS: f64 = 16.0 * EPS;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 40 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Rnn(RnnActivation),
    Gru(GruReset),
    Lstm { proj: usize },
}

/// A cell with PyTorch-layout weights, and its f64 reference step.
#[derive(Clone, Debug)]
struct Cell {
    kind: Kind,
    input: usize,
    hidden: usize,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Option<Vec<f32>>,
    b_hh: Option<Vec<f32>>,
    w_hr: Vec<f32>,
    clip: Option<f32>,
    cell_clip: Option<f32>,
}

/// A reference value with its error bound.
#[derive(Clone, Copy, Debug)]
struct Val {
    v: f64,
    tol: f64,
}

impl Cell {
    fn state(&self) -> usize {
        match self.kind {
            Kind::Lstm { proj } if proj > 0 => proj,
            _ => self.hidden,
        }
    }

    fn is_lstm(&self) -> bool {
        matches!(self.kind, Kind::Lstm { .. })
    }

    fn weights(&self) -> TorchWeights<'_> {
        let w = TorchWeights::new(&self.w_ih, &self.w_hh)
            .with_biases(self.b_ih.as_deref(), self.b_hh.as_deref());
        if self.w_hr.is_empty() {
            w
        } else {
            w.with_projection(&self.w_hr)
        }
    }

    /// Row `r` of `w` (`cols` wide) times `v` plus `b[r]`, with the bound of a sum of
    /// `cols + 2` terms computed in f32.
    fn dot(w: &[f32], cols: usize, r: usize, v: &[f64], b: Option<&Vec<f32>>) -> Val {
        let b = b.map_or(0.0, |b| b[r] as f64);
        let (mut sum, mut mag) = (b, b.abs());
        for (k, &x) in v.iter().enumerate() {
            let t = w[r * cols + k] as f64 * x;
            sum += t;
            mag += t.abs();
        }
        Val {
            v: sum,
            tol: (cols as f64 + 3.0) * EPS * mag,
        }
    }

    /// `W_ih x + b_ih` plus `W_hh h + b_hh` of gate `g`, unit `u` (both parts: a GRU keeps
    /// the candidate's apart).
    fn pre(&self, g: usize, u: usize, x: &[f64], h: &[f64]) -> (Val, Val) {
        let r = g * self.hidden + u;
        (
            Self::dot(&self.w_ih, self.input, r, x, self.b_ih.as_ref()),
            Self::dot(&self.w_hh, self.state(), r, h, self.b_hh.as_ref()),
        )
    }

    fn clip(&self, a: f64) -> f64 {
        self.clip.map_or(a, |c| a.clamp(-c as f64, c as f64))
    }

    /// One step from the f32 state `h`, `c`: the new `h` and `c` with their bounds.
    fn step(&self, x: &[f32], h: &[f32], c: &[f32]) -> (Vec<Val>, Vec<Val>) {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let hd: Vec<f64> = h.iter().map(|&v| v as f64).collect();
        let sum = |(a, b): (Val, Val)| Val {
            v: a.v + b.v,
            tol: a.tol + b.tol + EPS * (a.v + b.v).abs(),
        };
        let sigmoid = |a: Val, s: &Self| Val {
            v: common::sigmoid_ref(s.clip(a.v)),
            tol: a.tol / 4.0 + ABS,
        };
        let tanh = |a: Val, s: &Self| Val {
            v: s.clip(a.v).tanh(),
            tol: a.tol + ABS,
        };
        let hidden = self.hidden;
        let mut c_new = Vec::new();
        let h_new: Vec<Val> = match self.kind {
            Kind::Rnn(act) => (0..hidden)
                .map(|u| {
                    let a = sum(self.pre(0, u, &x, &hd));
                    match act {
                        RnnActivation::Tanh => tanh(a, self),
                        RnnActivation::Relu => Val {
                            v: self.clip(a.v).max(0.0),
                            tol: a.tol + EPS * a.v.abs(),
                        },
                    }
                })
                .collect(),
            Kind::Gru(GruReset::AfterProduct) => (0..hidden)
                .map(|u| {
                    let r = sigmoid(sum(self.pre(0, u, &x, &hd)), self);
                    let z = sigmoid(sum(self.pre(1, u, &x, &hd)), self);
                    let (xn, hn) = self.pre(2, u, &x, &hd);
                    let arg = xn.v + r.v * hn.v;
                    let arg_tol =
                        xn.tol + r.v * hn.tol + r.tol * hn.v.abs() + 2.0 * EPS * arg.abs();
                    let n = tanh(
                        Val {
                            v: arg,
                            tol: arg_tol,
                        },
                        self,
                    );
                    gru_update(z, n, hd[u])
                })
                .collect(),
            Kind::Gru(GruReset::BeforeProduct) => {
                let rz: Vec<(Val, Val)> = (0..hidden)
                    .map(|u| {
                        let r = sigmoid(sum(self.pre(0, u, &x, &hd)), self);
                        (r, sigmoid(sum(self.pre(1, u, &x, &hd)), self))
                    })
                    .collect();
                let rh: Vec<f64> = (0..hidden).map(|u| rz[u].0.v * hd[u]).collect();
                (0..hidden)
                    .map(|u| {
                        let row = 2 * hidden + u;
                        let xn = Self::dot(&self.w_ih, self.input, row, &x, self.b_ih.as_ref());
                        let hn = Self::dot(&self.w_hh, hidden, row, &rh, self.b_hh.as_ref());
                        // r h is rounded and r has its own error, per term of the sum.
                        let spread: f64 = (0..hidden)
                            .map(|k| {
                                let w = self.w_hh[row * hidden + k] as f64;
                                w.abs() * (rz[k].0.tol * hd[k].abs() + EPS * rh[k].abs())
                            })
                            .sum();
                        let a = sum((
                            xn,
                            Val {
                                v: hn.v,
                                tol: hn.tol + spread,
                            },
                        ));
                        gru_update(rz[u].1, tanh(a, self), hd[u])
                    })
                    .collect()
            }
            Kind::Lstm { proj } => {
                let m: Vec<Val> = (0..hidden)
                    .map(|u| {
                        let i = sigmoid(sum(self.pre(0, u, &x, &hd)), self);
                        let f = sigmoid(sum(self.pre(1, u, &x, &hd)), self);
                        let g = tanh(sum(self.pre(2, u, &x, &hd)), self);
                        let o = sigmoid(sum(self.pre(3, u, &x, &hd)), self);
                        let c_old = c[u] as f64;
                        let raw = f.v * c_old + i.v * g.v;
                        let cv = self
                            .cell_clip
                            .map_or(raw, |cc| raw.clamp(-cc as f64, cc as f64));
                        let ctol = f.tol * c_old.abs()
                            + i.tol * g.v.abs()
                            + g.tol * i.v.abs()
                            + 3.0 * EPS * (f.v * c_old).abs().max(raw.abs());
                        c_new.push(Val { v: cv, tol: ctol });
                        Val {
                            v: o.v * cv.tanh(),
                            tol: o.tol + ctol + ABS,
                        }
                    })
                    .collect();
                if proj == 0 {
                    m
                } else {
                    let mv: Vec<f64> = m.iter().map(|v| v.v).collect();
                    (0..proj)
                        .map(|p| {
                            let d = Self::dot(&self.w_hr, hidden, p, &mv, None);
                            let spread: f64 = (0..hidden)
                                .map(|k| (self.w_hr[p * hidden + k] as f64).abs() * m[k].tol)
                                .sum();
                            Val {
                                v: d.v,
                                tol: d.tol + spread,
                            }
                        })
                        .collect()
                }
            }
        };
        (h_new, c_new)
    }
}

/// `(1 - z) n + z h` with its bound.
fn gru_update(z: Val, n: Val, h: f64) -> Val {
    let v = (1.0 - z.v) * n.v + z.v * h;
    Val {
        v,
        tol: n.tol * (1.0 + z.v)
            + z.tol * (h - n.v).abs()
            + 3.0 * EPS * (n.v.abs() + h.abs())
            + ABS,
    }
}

fn value(scale: f32) -> impl Strategy<Value = f32> {
    prop_oneof![19 => -scale..scale, 1 => -8.0 * scale..8.0 * scale]
}

fn kinds() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Rnn(RnnActivation::Tanh)),
        Just(Kind::Rnn(RnnActivation::Relu)),
        Just(Kind::Gru(GruReset::AfterProduct)),
        Just(Kind::Gru(GruReset::BeforeProduct)),
        Just(Kind::Lstm { proj: 0 }),
        (1usize..8).prop_map(|p| Kind::Lstm { proj: p }),
    ]
}

/// A random cell, its initial state, and `steps` inputs.
fn problem(
    max_input: usize,
    max_hidden: usize,
    max_steps: usize,
) -> impl Strategy<Value = (Cell, Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (max_input, max_hidden) = if cfg!(miri) {
        (9, 18)
    } else {
        (max_input, max_hidden)
    };
    (
        kinds(),
        1..=max_input,
        1..=max_hidden,
        0..=max_steps,
        any::<(bool, bool)>(),
        prop::option::of(0.5f32..4.0),
        prop::option::of(0.5f32..4.0),
    )
        .prop_flat_map(
            move |(kind, input, hidden, steps, (bi, bh), clip, cell_clip)| {
                let kind = match kind {
                    // proj_size must stay below hidden.
                    Kind::Lstm { proj } => Kind::Lstm {
                        proj: if hidden > 1 { proj % hidden } else { 0 },
                    },
                    k => k,
                };
                let gates = match kind {
                    Kind::Rnn(_) => 1,
                    Kind::Gru(_) => 3,
                    Kind::Lstm { .. } => 4,
                };
                let state = match kind {
                    Kind::Lstm { proj } if proj > 0 => proj,
                    _ => hidden,
                };
                let is_lstm = matches!(kind, Kind::Lstm { .. });
                let rows = gates * hidden;
                let scale_i = 1.5 / (input as f32).sqrt();
                let scale_h = 1.5 / (state as f32).sqrt();
                (
                    prop::collection::vec(value(scale_i), rows * input),
                    prop::collection::vec(value(scale_h), rows * state),
                    prop::collection::vec(value(0.5), if bi { rows } else { 0 }),
                    prop::collection::vec(value(0.5), if bh { rows } else { 0 }),
                    prop::collection::vec(
                        value(1.0 / (hidden as f32).sqrt()),
                        if state < hidden { state * hidden } else { 0 },
                    ),
                    prop::collection::vec(value(1.0), state),
                    prop::collection::vec(value(2.0), if is_lstm { hidden } else { 0 }),
                    prop::collection::vec(value(2.0), steps * input),
                )
                    .prop_map(move |(w_ih, w_hh, b_ih, b_hh, w_hr, h, c, xs)| {
                        let cell = Cell {
                            kind,
                            input,
                            hidden,
                            w_ih,
                            w_hh,
                            b_ih: bi.then_some(b_ih),
                            b_hh: bh.then_some(b_hh),
                            w_hr,
                            clip,
                            cell_clip: if is_lstm { cell_clip } else { None },
                        };
                        (cell, h, c, xs)
                    })
            },
        )
}

/// Runs `steps` steps (or one sequence call) of `cell` on `e`; returns every `h_t`, and
/// every `c_t` when stepping.
struct Runner<'a> {
    cell: &'a Cell,
    packed: Vec<f32>,
}

impl<'a> Runner<'a> {
    fn new(cell: &'a Cell) -> Self {
        let mut packed = vec![f32::NAN; packed_len(cell)];
        pack(cell, &mut packed).unwrap();
        Runner { cell, packed }
    }

    /// One call: `xs` (any number of steps), `h`, `c` in place, every `h_t` out.
    fn sequence(
        &self,
        e: &Engine,
        dir: Direction,
        xs: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        out: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        let cell = self.cell;
        // A batch of h.len() / state sequences, time-major.
        let batch = h.len() / cell.state();
        let steps = xs.len() / (cell.input * batch.max(1));
        let mut scratch = vec![f32::NAN; scratch_len(cell, steps, batch)];
        match cell.kind {
            Kind::Rnn(act) => {
                let shape = rnn_shape(cell, act);
                let p = PackedRnn::from_packed(&shape, &self.packed)?;
                e.rnn_sequence(&p, dir, xs, h, out, &mut scratch)
            }
            Kind::Gru(reset) => {
                let shape = gru_shape(cell, reset);
                let p = PackedGru::from_packed(&shape, &self.packed)?;
                e.gru_sequence(&p, dir, xs, h, out, &mut scratch)
            }
            Kind::Lstm { proj } => {
                let shape = lstm_shape(cell, proj);
                let p = PackedLstm::from_packed(&shape, &self.packed)?;
                e.lstm_sequence(&p, dir, xs, h, c, out, &mut scratch)
            }
        }
    }
}

fn rnn_shape(cell: &Cell, act: RnnActivation) -> RnnShape {
    RnnShape {
        clip: cell.clip,
        ..RnnShape::new(cell.input, cell.hidden).with_activation(act)
    }
}

fn gru_shape(cell: &Cell, reset: GruReset) -> GruShape {
    GruShape {
        clip: cell.clip,
        ..GruShape::new(cell.input, cell.hidden).with_reset(reset)
    }
}

fn lstm_shape(cell: &Cell, proj: usize) -> LstmShape {
    LstmShape {
        clip: cell.clip,
        cell_clip: cell.cell_clip,
        ..LstmShape::new(cell.input, cell.hidden).with_projection(proj)
    }
}

fn packed_len(cell: &Cell) -> usize {
    match cell.kind {
        Kind::Rnn(a) => rnn_shape(cell, a).packed_len(),
        Kind::Gru(r) => gru_shape(cell, r).packed_len(),
        Kind::Lstm { proj } => lstm_shape(cell, proj).packed_len(),
    }
}

fn scratch_len(cell: &Cell, steps: usize, batch: usize) -> usize {
    match cell.kind {
        Kind::Rnn(a) => rnn_shape(cell, a).batch_scratch_len(steps, batch),
        Kind::Gru(r) => gru_shape(cell, r).batch_scratch_len(steps, batch),
        Kind::Lstm { proj } => lstm_shape(cell, proj).batch_scratch_len(steps, batch),
    }
}

fn pack(cell: &Cell, storage: &mut [f32]) -> Result<(), Error> {
    let w = cell.weights();
    match cell.kind {
        Kind::Rnn(a) => PackedRnn::pack(&rnn_shape(cell, a), w, storage).map(|_| ()),
        Kind::Gru(r) => PackedGru::pack(&gru_shape(cell, r), w, storage).map(|_| ()),
        Kind::Lstm { proj } => PackedLstm::pack(&lstm_shape(cell, proj), w, storage).map(|_| ()),
    }
}

fn check_step(what: &str, got: &[f32], want: &[Val]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (u, (&g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!(
            (g as f64 - w.v).abs() <= w.tol,
            "{what}: unit {u}: got {g:e} want {:e} tol {:e}",
            w.v,
            w.tol
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Every step of every cell and option, on every backend, within the bound of one step
    /// from the kernel's own previous state.
    #[test]
    fn steps_match_reference((cell, h0, c0, xs) in problem(40, 70, 6)) {
        let runner = Runner::new(&cell);
        for e in common::engines() {
            let (mut h, mut c) = (h0.clone(), c0.clone());
            for (t, x) in xs.chunks_exact(cell.input).enumerate() {
                let (want_h, want_c) = cell.step(x, &h, &c);
                runner.sequence(&e, Direction::Forward, x, &mut h, &mut c, None).unwrap();
                let what = format!("{:?} {:?} step {t}", e.backend(), cell.kind);
                check_step(&format!("{what} h"), &h, &want_h)?;
                if cell.is_lstm() {
                    check_step(&format!("{what} c"), &c, &want_c)?;
                }
            }
        }
    }

    /// A sequence call gives bit for bit the states of its steps run one at a time, in
    /// either direction, and writes step t's state to row t.
    #[test]
    fn sequence_equals_steps((cell, h0, c0, xs) in problem(24, 40, 9), reverse in any::<bool>()) {
        let runner = Runner::new(&cell);
        let (dir, steps) = (if reverse { Direction::Reverse } else { Direction::Forward }, xs.len() / cell.input);
        let state = cell.state();
        for e in common::engines() {
            let (mut h, mut c) = (h0.clone(), c0.clone());
            let mut out = vec![f32::NAN; steps * state];
            runner.sequence(&e, dir, &xs, &mut h, &mut c, Some(&mut out)).unwrap();
            let (mut hs, mut cs) = (h0.clone(), c0.clone());
            let mut want = vec![0.0; steps * state];
            for i in 0..steps {
                let t = if reverse { steps - 1 - i } else { i };
                runner.sequence(&e, Direction::Forward, &xs[t * cell.input..][..cell.input], &mut hs, &mut cs, None).unwrap();
                want[t * state..][..state].copy_from_slice(&hs);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&out), bits(&want), "{:?} {:?}", e.backend(), cell.kind);
            prop_assert_eq!(bits(&h), bits(&hs));
            prop_assert_eq!(bits(&c), bits(&cs));
            // Without `out`, the same final state.
            let (mut h2, mut c2) = (h0.clone(), c0.clone());
            runner.sequence(&e, dir, &xs, &mut h2, &mut c2, None).unwrap();
            prop_assert_eq!(bits(&h2), bits(&h));
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Each row of a batch gives bit for bit its sequence run alone (the recurrent product
    /// of a batch is a GEMM with other tiles, but the same sums).
    #[test]
    fn batch_rows_equal_single_sequences(
        (cell, h0, c0, xs) in problem(20, 40, 5),
        batch in 0usize..7,
        reverse in any::<bool>(),
    ) {
        let runner = Runner::new(&cell);
        let dir = if reverse { Direction::Reverse } else { Direction::Forward };
        let (input, state) = (cell.input, cell.state());
        let steps = xs.len() / input;
        // Row b: the inputs and states scaled by a factor of its own.
        let scale = |v: &[f32], b: usize| v.iter().map(|x| x * (1.0 - 0.15 * b as f32)).collect::<Vec<_>>();
        let rows: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..batch).map(|b| (scale(&xs, b), scale(&h0, b), scale(&c0, b))).collect();
        let mut xs_tm = Vec::new();
        for t in 0..steps {
            for (x, _, _) in &rows {
                xs_tm.extend_from_slice(&x[t * input..(t + 1) * input]);
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for e in common::engines() {
            let mut h: Vec<f32> = rows.iter().flat_map(|r| r.1.clone()).collect();
            let mut c: Vec<f32> = rows.iter().flat_map(|r| r.2.clone()).collect();
            let mut out = vec![f32::NAN; steps * batch * state];
            runner.sequence(&e, dir, &xs_tm, &mut h, &mut c, Some(&mut out)).unwrap();
            for (b, (x, h0, c0)) in rows.iter().enumerate() {
                let (mut hb, mut cb) = (h0.clone(), c0.clone());
                let mut out_b = vec![f32::NAN; steps * state];
                runner.sequence(&e, dir, x, &mut hb, &mut cb, Some(&mut out_b)).unwrap();
                prop_assert_eq!(bits(&h[b * state..(b + 1) * state]), bits(&hb), "{:?} {:?} row {}", e.backend(), cell.kind, b);
                for t in 0..steps {
                    let got = &out[(t * batch + b) * state..][..state];
                    prop_assert_eq!(bits(got), bits(&out_b[t * state..(t + 1) * state]));
                }
                if cell.is_lstm() {
                    let hidden = cell.hidden;
                    prop_assert_eq!(bits(&c[b * hidden..(b + 1) * hidden]), bits(&cb));
                }
            }
        }
    }
}

/// A long sequence stays finite and within the activations' ranges.
#[test]
fn long_sequences_stay_bounded() {
    let steps = if cfg!(miri) { 20 } else { 1500 };
    for kind in [
        Kind::Rnn(RnnActivation::Tanh),
        Kind::Gru(GruReset::AfterProduct),
        Kind::Gru(GruReset::BeforeProduct),
        Kind::Lstm { proj: 0 },
        Kind::Lstm { proj: 5 },
    ] {
        let (input, hidden) = (7, 19);
        let gates = match kind {
            Kind::Rnn(_) => 1,
            Kind::Gru(_) => 3,
            Kind::Lstm { .. } => 4,
        };
        let state = match kind {
            Kind::Lstm { proj } if proj > 0 => proj,
            _ => hidden,
        };
        // Deterministic weights with a large recurrent gain (saturating units).
        let wave = |n: usize, k: f32| {
            (0..n)
                .map(|i| (i as f32 * 0.7).sin() * k)
                .collect::<Vec<_>>()
        };
        let cell = Cell {
            kind,
            input,
            hidden,
            w_ih: wave(gates * hidden * input, 1.0),
            w_hh: wave(gates * hidden * state, 2.0),
            b_ih: Some(wave(gates * hidden, 0.5)),
            b_hh: None,
            w_hr: if state < hidden {
                wave(state * hidden, 0.3)
            } else {
                vec![]
            },
            clip: None,
            cell_clip: None,
        };
        let runner = Runner::new(&cell);
        let xs = wave(steps * input, 3.0);
        for e in common::engines() {
            let (mut h, mut c) = (
                vec![0.0; state],
                vec![0.0; if cell.is_lstm() { hidden } else { 0 }],
            );
            let mut out = vec![f32::NAN; steps * state];
            runner
                .sequence(&e, Direction::Forward, &xs, &mut h, &mut c, Some(&mut out))
                .unwrap();
            let bound = if state < hidden {
                0.3 * hidden as f32
            } else {
                1.0
            };
            assert!(
                out.iter().all(|v| v.is_finite() && v.abs() <= bound),
                "{:?} {kind:?}",
                e.backend()
            );
            // An LSTM's cell state may grow by at most 1 per step.
            assert!(
                c.iter().all(|v| v.is_finite() && v.abs() <= steps as f32),
                "{:?} {kind:?}",
                e.backend()
            );
        }
    }
}

/// Every inconsistent argument is an error naming it; nothing is written.
#[test]
fn misuse_is_an_error() {
    let nn = Engine::new();
    let shape = GruShape::new(3, 5);
    let (w_ih, w_hh) = (
        vec![0.1; shape.weights_ih_len()],
        vec![0.1; shape.weights_hh_len()],
    );
    let mut storage = vec![0.0; shape.packed_len()];
    let weights = TorchWeights::new(&w_ih, &w_hh);
    // Packing.
    let short = TorchWeights::new(&w_ih[1..], &w_hh);
    assert!(matches!(
        PackedGru::pack(&shape, short, &mut storage),
        Err(Error::LengthMismatch { arg: "w_ih", .. })
    ));
    let b = [0.0; 4];
    let bad_bias = weights.with_biases(Some(&b), None);
    assert!(matches!(
        PackedGru::pack(&shape, bad_bias, &mut storage),
        Err(Error::LengthMismatch { arg: "b_ih", .. })
    ));
    assert!(matches!(
        PackedGru::pack(&shape, weights.with_projection(&b), &mut storage),
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        PackedGru::pack(&shape, weights, &mut storage[1..]),
        Err(Error::LengthMismatch { arg: "storage", .. })
    ));
    assert!(matches!(
        PackedGru::pack(&GruShape::new(0, 5), weights, &mut storage),
        Err(Error::ZeroDimension { arg: "input" })
    ));
    assert!(matches!(
        PackedGru::pack(&GruShape::new(3, 0), weights, &mut storage),
        Err(Error::ZeroDimension { arg: "hidden" })
    ));
    for clip in [0.0, -1.0, f32::NAN] {
        assert!(matches!(
            PackedGru::pack(&shape.with_clip(clip), weights, &mut storage),
            Err(Error::InvalidShape { .. })
        ));
    }
    assert!(matches!(
        PackedGru::pack(&GruShape::new(usize::MAX / 2, 5), weights, &mut storage),
        Err(Error::SizeOverflow { .. })
    ));
    let gru = PackedGru::pack(&shape, weights, &mut storage).unwrap();
    // Running.
    let mut h = [0.0; 5];
    let mut scratch = vec![0.0; shape.scratch_len(2)];
    assert!(matches!(
        nn.gru_sequence(
            &gru,
            Direction::Forward,
            &[0.0; 5],
            &mut h,
            None,
            &mut scratch
        ),
        Err(Error::NotAMultiple { arg: "xs", .. })
    ));
    assert!(matches!(
        nn.gru_sequence(
            &gru,
            Direction::Forward,
            &[0.0; 6],
            &mut h[1..],
            None,
            &mut scratch
        ),
        Err(Error::NotAMultiple { arg: "h", .. })
    ));
    assert!(matches!(
        nn.gru_sequence(
            &gru,
            Direction::Forward,
            &[0.0; 6],
            &mut h,
            Some(&mut [0.0; 9]),
            &mut scratch
        ),
        Err(Error::LengthMismatch { arg: "out", .. })
    ));
    assert!(matches!(
        nn.gru_sequence(
            &gru,
            Direction::Forward,
            &[0.0; 6],
            &mut h,
            None,
            &mut scratch[1..]
        ),
        Err(Error::LengthMismatch { arg: "scratch", .. })
    ));
    assert!(matches!(
        nn.gru_step(&gru, &[0.0; 6], &mut h, &mut scratch),
        Err(Error::LengthMismatch { arg: "x", .. })
    ));
    assert_eq!(h, [0.0; 5]);
    // An empty sequence is no step.
    let mut h = [1.0; 5];
    nn.gru_sequence(
        &gru,
        Direction::Forward,
        &[],
        &mut h,
        Some(&mut []),
        &mut scratch[..shape.scratch_len(0)],
    )
    .unwrap();
    assert_eq!(h, [1.0; 5]);
    // LSTM: c, the projection.
    let lstm = LstmShape::new(3, 4).with_projection(2);
    let (w_ih, w_hh, w_hr) = (
        vec![0.1; lstm.weights_ih_len()],
        vec![0.1; lstm.weights_hh_len()],
        vec![0.1; lstm.weights_hr_len()],
    );
    let mut storage = vec![0.0; lstm.packed_len()];
    let no_hr = TorchWeights::new(&w_ih, &w_hh);
    assert!(matches!(
        PackedLstm::pack(&lstm, no_hr, &mut storage),
        Err(Error::LengthMismatch {
            arg: "projection weights",
            ..
        })
    ));
    assert!(matches!(
        PackedLstm::pack(
            &LstmShape::new(3, 4).with_projection(4),
            no_hr,
            &mut storage
        ),
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        PackedLstm::pack(
            &lstm.with_cell_clip(0.0),
            no_hr.with_projection(&w_hr),
            &mut storage
        ),
        Err(Error::InvalidShape { .. })
    ));
    let packed = PackedLstm::pack(&lstm, no_hr.with_projection(&w_hr), &mut storage).unwrap();
    let (mut h, mut c) = ([0.0; 2], [0.0; 4]);
    let mut scratch = vec![0.0; lstm.scratch_len(1)];
    assert!(matches!(
        nn.lstm_step(&packed, &[0.0; 3], &mut h, &mut c[1..], &mut scratch),
        Err(Error::LengthMismatch { arg: "c", .. })
    ));
    assert!(matches!(
        nn.lstm_step(&packed, &[0.0; 3], &mut [0.0; 3], &mut c, &mut scratch),
        Err(Error::NotAMultiple { arg: "h", .. })
    ));
    // Two states are a batch of two: the input must be two rows.
    assert!(matches!(
        nn.lstm_step(&packed, &[0.0; 3], &mut [0.0; 4], &mut c, &mut scratch),
        Err(Error::LengthMismatch { arg: "x", .. })
    ));
    nn.lstm_step(&packed, &[1.0; 3], &mut h, &mut c, &mut scratch)
        .unwrap();
    assert!(h.iter().all(|v| *v > 0.0));
    // RNN.
    let rnn = RnnShape::new(2, 2);
    let mut storage = vec![0.0; rnn.packed_len()];
    let packed =
        PackedRnn::pack(&rnn, TorchWeights::new(&[1.0; 4], &[0.0; 4]), &mut storage).unwrap();
    let mut h = [0.0; 2];
    let mut scratch = vec![0.0; rnn.scratch_len(1)];
    nn.rnn_step(&packed, &[0.5, 0.25], &mut h, &mut scratch)
        .unwrap();
    assert!((h[0] - 0.75f32.tanh()).abs() < 1e-6);
    assert!(matches!(
        PackedRnn::from_packed(&rnn, &storage[1..]),
        Err(Error::LengthMismatch { arg: "data", .. })
    ));
}

/// The fixed-size cells give the runtime-shaped API's bits, for every option.
#[test]
fn fixed_size_cells_equal_runtime() {
    use simdnn::{GruCell, LstmCell, RnnCell, pack_gru, pack_lstm, pack_rnn};
    const I: usize = 3;
    const H: usize = 18; // past one block of units
    const T: usize = 4;
    let wave = |i: usize, k: f32| (i as f32 * 0.61 + k).sin() * 0.4;
    let arr3 = |k: f32| -> [[[f32; I]; H]; 4] {
        core::array::from_fn(|g| {
            core::array::from_fn(|u| core::array::from_fn(|c| wave(g * 100 + u * 7 + c, k)))
        })
    };
    let arrh = |k: f32| -> [[[f32; H]; H]; 4] {
        core::array::from_fn(|g| {
            core::array::from_fn(|u| core::array::from_fn(|c| wave(g * 1000 + u * 31 + c, k)))
        })
    };
    let bias = |k: f32| -> [[f32; H]; 4] {
        core::array::from_fn(|g| core::array::from_fn(|u| wave(g * 50 + u, k)))
    };
    let (w_ih, w_hh, b_ih, b_hh) = (arr3(0.1), arrh(0.2), bias(0.3), bias(0.4));
    let xs: [[f32; I]; T] =
        core::array::from_fn(|t| core::array::from_fn(|c| wave(t * 5 + c, 2.0) * 3.0));
    let h0: [f32; H] = core::array::from_fn(|u| wave(u, 1.0));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for e in common::engines() {
        for dir in [Direction::Forward, Direction::Reverse] {
            // RNN.
            let (w_ih1, w_hh1) = (w_ih[0], w_hh[0]);
            let packed: [f32; RnnCell::<I, H, 0>::PACKED_LEN] =
                pack_rnn(&w_ih1, &w_hh1, Some(&b_ih[0]), Some(&b_hh[0]));
            for act in [RnnActivation::Tanh, RnnActivation::Relu] {
                let cell = RnnCell::<I, H, _>::new(&packed)
                    .with_activation(act)
                    .with_clip(2.0);
                let (mut h, mut out) = (h0, [[0.0; H]; T]);
                let mut scratch = [0.0; RnnCell::<I, H, 0>::scratch_len(T)];
                cell.sequence(&e, dir, &xs, &mut h, Some(&mut out), &mut scratch);
                let shape = RnnShape::new(I, H).with_activation(act).with_clip(2.0);
                let mut storage = vec![0.0; shape.packed_len()];
                let w = TorchWeights::new(w_ih1.as_flattened(), w_hh1.as_flattened())
                    .with_biases(Some(&b_ih[0]), Some(&b_hh[0]));
                let p = PackedRnn::pack(&shape, w, &mut storage).unwrap();
                let (mut h2, mut out2) = (h0, vec![0.0; T * H]);
                let mut scratch = vec![0.0; shape.scratch_len(T)];
                e.rnn_sequence(
                    &p,
                    dir,
                    xs.as_flattened(),
                    &mut h2,
                    Some(&mut out2),
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(
                    bits(out.as_flattened()),
                    bits(&out2),
                    "{:?} RNN {act:?}",
                    e.backend()
                );
                assert_eq!(bits(&h), bits(&h2));
            }
            // GRU, both conventions over one packing.
            let (g_ih, g_hh) = ([w_ih[0], w_ih[1], w_ih[2]], [w_hh[0], w_hh[1], w_hh[2]]);
            let (g_bi, g_bh) = ([b_ih[0], b_ih[1], b_ih[2]], [b_hh[0], b_hh[1], b_hh[2]]);
            let packed: [f32; GruCell::<I, H, 0>::PACKED_LEN] =
                pack_gru(&g_ih, &g_hh, Some(&g_bi), Some(&g_bh));
            for reset in [GruReset::AfterProduct, GruReset::BeforeProduct] {
                let cell = GruCell::<I, H, _>::new(&packed).with_reset(reset);
                let (mut h, mut out) = (h0, [[0.0; H]; T]);
                let mut scratch = [0.0; GruCell::<I, H, 0>::scratch_len(T)];
                cell.sequence(&e, dir, &xs, &mut h, Some(&mut out), &mut scratch);
                let shape = GruShape::new(I, H).with_reset(reset);
                let mut storage = vec![0.0; shape.packed_len()];
                let w = TorchWeights::new(
                    g_ih.as_flattened().as_flattened(),
                    g_hh.as_flattened().as_flattened(),
                )
                .with_biases(Some(g_bi.as_flattened()), Some(g_bh.as_flattened()));
                let p = PackedGru::pack(&shape, w, &mut storage).unwrap();
                let (mut h2, mut out2) = (h0, vec![0.0; T * H]);
                let mut scratch = vec![0.0; shape.scratch_len(T)];
                e.gru_sequence(
                    &p,
                    dir,
                    xs.as_flattened(),
                    &mut h2,
                    Some(&mut out2),
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(
                    bits(out.as_flattened()),
                    bits(&out2),
                    "{:?} GRU {reset:?}",
                    e.backend()
                );
                // One fixed step equals the runtime step.
                let mut scratch = [0.0; GruCell::<I, H, 0>::STEP_SCRATCH_LEN];
                cell.step(&e, &xs[0], &mut h, &mut scratch);
                let mut scratch = vec![0.0; shape.scratch_len(1)];
                e.gru_step(&p, &xs[0], &mut h2, &mut scratch).unwrap();
                assert_eq!(bits(&h), bits(&h2));
            }
            // LSTM.
            let packed: [f32; LstmCell::<I, H, 0>::PACKED_LEN] =
                pack_lstm(&w_ih, &w_hh, Some(&b_ih), Some(&b_hh));
            let cell = LstmCell::<I, H, _>::new(&packed)
                .with_clip(3.0)
                .with_cell_clip(0.8);
            let (mut h, mut c, mut out) = (h0, h0, [[0.0; H]; T]);
            let mut scratch = [0.0; LstmCell::<I, H, 0>::scratch_len(T)];
            cell.sequence(&e, dir, &xs, &mut h, &mut c, Some(&mut out), &mut scratch);
            let shape = LstmShape::new(I, H).with_clip(3.0).with_cell_clip(0.8);
            let mut storage = vec![0.0; shape.packed_len()];
            let w = TorchWeights::new(
                w_ih.as_flattened().as_flattened(),
                w_hh.as_flattened().as_flattened(),
            )
            .with_biases(Some(b_ih.as_flattened()), Some(b_hh.as_flattened()));
            let p = PackedLstm::pack(&shape, w, &mut storage).unwrap();
            let (mut h2, mut c2, mut out2) = (h0, h0, vec![0.0; T * H]);
            let mut scratch = vec![0.0; shape.scratch_len(T)];
            e.lstm_sequence(
                &p,
                dir,
                xs.as_flattened(),
                &mut h2,
                &mut c2,
                Some(&mut out2),
                &mut scratch,
            )
            .unwrap();
            assert_eq!(
                bits(out.as_flattened()),
                bits(&out2),
                "{:?} LSTM",
                e.backend()
            );
            assert_eq!(bits(&c), bits(&c2));
            assert!(c.iter().all(|v| v.abs() <= 0.8));
        }
    }
}
