//! The recurrent kernels: per step one pass over the packed `W_hh` ([`super::gates`])
//! whose epilogue is the cell's gate math, so every gate of a block of units is in
//! registers when the new state of those units is computed, and the state is read once and
//! written once per step. A batch of independent sequences steps together: the recurrent
//! product of its states is one small GEMM.

use super::gates::{GateMath, GateWeights, RecurrentBlocking};
use super::shape::{Cell, Kind};
use crate::engine::kernel_entry;
use crate::gemm::Layer;
use crate::gemm::driver::{packed_rows, part, tail};
use crate::ops::{Activation, Unchanged};
use crate::simd::Simd;
use crate::vmath::{self, VecMath, clamp};

/// `v` clamped to `[-clip, clip]`, or `v` without a clip.
#[inline(always)]
fn clip<S: Simd>(s: S, v: S::V, clip: Option<f32>) -> S::V {
    match clip {
        Some(c) => clamp(s, v, -c, c),
        None => v,
    }
}

/// `n` floats of `src` from `at` as a vector (zeros after them).
#[inline(always)]
fn load<S: Simd>(s: S, src: &[f32], at: usize, n: usize) -> S::V {
    // (Out of range, which the callers exclude, a firmware reads zeros: no panic path.)
    if n == S::LANES {
        s.load(part::<S>(src, at, S::LANES))
    } else {
        s.load_partial(part::<S>(src, at, n), 0.0)
    }
}

/// The first `n` lanes of `v` to `dst[at..at + n]`.
#[inline(always)]
fn store<S: Simd>(s: S, v: S::V, dst: &mut [f32], at: usize, n: usize) {
    if S::SMALL_CODE {
        match dst.get_mut(at..at + n) {
            Some(dst) if n == S::LANES => s.store(v, dst),
            Some(dst) => s.store_partial(v, dst),
            None => {}
        }
    } else if n == S::LANES {
        s.store(v, &mut dst[at..at + S::LANES]);
    } else {
        s.store_partial(v, &mut dst[at..at + n]);
    }
}

/// A validated cell and its packed weights, as the kernel reads them.
#[derive(Clone, Copy)]
pub(crate) struct CellRef<'a> {
    pub(crate) cell: Cell,
    pub(crate) w_hh: &'a [f32],
    pub(crate) b_hn: &'a [f32],
    pub(crate) w_hr: &'a [f32],
}

/// Where the steps write: the states `h` (and an LSTM's `c`) in place, each step's `h` to
/// `out` when given. Every buffer holds `batch` rows, step-major where there are steps.
pub(crate) struct Steps<'a> {
    /// `steps * batch * gates * hidden`: `W_ih x + bias` of every step and row.
    pub(crate) xproj: &'a [f32],
    pub(crate) h: &'a mut [f32],
    pub(crate) c: &'a mut [f32],
    pub(crate) out: Option<&'a mut [f32]>,
    /// `batch * cell.work_len()` floats.
    pub(crate) work: &'a mut [f32],
    pub(crate) batch: usize,
    /// Steps from the last to the first (`out` rows stay at their step's index).
    pub(crate) reverse: bool,
}

/// The buffers of one step, `batch` rows each.
struct Step<'a> {
    /// `W_ih x + bias`, `[batch][gates * hidden]`.
    xp: &'a [f32],
    /// The states before the step, `[batch][state]`.
    h: &'a [f32],
    /// An LSTM's cell states, `[batch][hidden]`, updated in place.
    c: &'a mut [f32],
    /// The states after the step, `[batch][state]`.
    h_new: &'a mut [f32],
    /// The rest of the work buffer.
    extra: &'a mut [f32],
    batch: usize,
}

/// One step of a cell.
type StepFn<S> = fn(S, CellRef<'_>, Step<'_>);

/// Runs the recurrence over the projected inputs (lengths checked by the caller).
#[inline(always)]
fn recurrent_steps<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, run: Steps<'_>, step: StepFn<S>) {
    let Steps {
        xproj,
        h,
        c,
        mut out,
        work,
        batch,
        reverse,
    } = run;
    let rows = batch * cell.cell.rows();
    let steps = xproj.len().checked_div(rows).unwrap_or(0);
    let states = batch * cell.cell.state;
    let Some((h_new, extra)) = work.split_at_mut_checked(states) else {
        return;
    };
    if h.len() != states {
        return;
    }
    for i in 0..steps {
        let t = if reverse { steps - 1 - i } else { i };
        let xp = part::<S>(xproj, t * rows, rows);
        let buffers = Step {
            xp,
            h,
            c,
            h_new,
            extra,
            batch,
        };
        step(s, cell, buffers);
        h.copy_from_slice(h_new);
        let out_t = out
            .as_deref_mut()
            .and_then(|o| o.get_mut(t * states..)?.get_mut(..states));
        if let Some(out_t) = out_t {
            out_t.copy_from_slice(h_new);
        }
    }
}

// One entry per cell, so that a firmware running one kind of cell links only its kernel.
#[inline(always)]
pub(crate) fn rnn_steps<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, run: Steps<'_>) {
    recurrent_steps(s, cell, run, rnn_step::<S>)
}
kernel_entry!(rnn_steps(cell: CellRef<'_>, run: Steps<'_>));

#[inline(always)]
pub(crate) fn gru_steps<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, run: Steps<'_>) {
    recurrent_steps(s, cell, run, gru_step::<S>)
}
kernel_entry!(gru_steps(cell: CellRef<'_>, run: Steps<'_>));

#[inline(always)]
pub(crate) fn lstm_steps<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, run: Steps<'_>) {
    recurrent_steps(s, cell, run, lstm_step::<S>)
}
kernel_entry!(lstm_steps(cell: CellRef<'_>, run: Steps<'_>));

/// `xp[at..at + n] + v`, clipped: a gate's pre-activation.
#[inline(always)]
fn pre<S: Simd>(s: S, v: S::V, xp: &[f32], at: usize, n: usize, gate_clip: Option<f32>) -> S::V {
    clip(s, s.add(v, load(s, xp, at, n)), gate_clip)
}

/// `(1 - z) n + z h` as `n + z (h - n)`.
#[inline(always)]
fn blend<S: Simd>(s: S, z: S::V, cand: S::V, h: S::V) -> S::V {
    s.mul_add(z, s.sub(h, cand), cand)
}

/// The Elman cell: `h' = act(a + x)`.
struct RnnMath<'a> {
    xp: &'a [f32],
    h_new: &'a mut [f32],
    hidden: usize,
    relu: bool,
    clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 1> for RnnMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, m: usize, u: usize, n: usize, [a]: [S::V; 1]) {
        let at = m * self.hidden + u;
        let a = pre(s, a, self.xp, at, n, self.clip);
        let y = if self.relu {
            s.max(a, s.zero())
        } else {
            vmath::tanh(s, a)
        };
        store(s, y, self.h_new, at, n);
    }
}

/// The GRU with the reset after the product, all three gates in one pass.
struct GruMath<'a> {
    xp: &'a [f32],
    b_hn: &'a [f32],
    h: &'a [f32],
    h_new: &'a mut [f32],
    hidden: usize,
    clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 3> for GruMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, m: usize, u: usize, n: usize, [ar, az, an]: [S::V; 3]) {
        let (hidden, c) = (self.hidden, self.clip);
        let (xp, at) = (tail::<S>(self.xp, m * 3 * hidden), m * hidden + u);
        let r = vmath::sigmoid(s, pre(s, ar, xp, u, n, c));
        let z = vmath::sigmoid(s, pre(s, az, xp, hidden + u, n, c));
        let hn = s.add(an, load(s, self.b_hn, u, n));
        let xn = load(s, xp, 2 * hidden + u, n);
        let cand = vmath::tanh(s, clip(s, s.mul_add(r, hn, xn), c));
        let y = blend(s, z, cand, load(s, self.h, at, n));
        store(s, y, self.h_new, at, n);
    }
}

/// The GRU with the reset before the product, first pass: `r * h` and `z`.
struct GruResetMath<'a> {
    xp: &'a [f32],
    h: &'a [f32],
    rh: &'a mut [f32],
    z: &'a mut [f32],
    hidden: usize,
    clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 2> for GruResetMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, m: usize, u: usize, n: usize, [ar, az]: [S::V; 2]) {
        let (hidden, c) = (self.hidden, self.clip);
        let (xp, at) = (tail::<S>(self.xp, m * 3 * hidden), m * hidden + u);
        let r = vmath::sigmoid(s, pre(s, ar, xp, u, n, c));
        let z = vmath::sigmoid(s, pre(s, az, xp, hidden + u, n, c));
        store(s, s.mul(r, load(s, self.h, at, n)), self.rh, at, n);
        store(s, z, self.z, at, n);
    }
}

/// The GRU with the reset before the product, second pass: the candidate from
/// `W_hn (r * h) + b_hn` and the new state.
struct GruCandidateMath<'a> {
    xp: &'a [f32],
    b_hn: &'a [f32],
    h: &'a [f32],
    z: &'a [f32],
    h_new: &'a mut [f32],
    hidden: usize,
    clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 1> for GruCandidateMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, m: usize, u: usize, n: usize, [an]: [S::V; 1]) {
        let hidden = self.hidden;
        let (xp, at) = (tail::<S>(self.xp, m * 3 * hidden), m * hidden + u);
        let hn = s.add(an, load(s, self.b_hn, u, n));
        let cand = vmath::tanh(s, pre(s, hn, xp, 2 * hidden + u, n, self.clip));
        let (z, h) = (load(s, self.z, at, n), load(s, self.h, at, n));
        store(s, blend(s, z, cand, h), self.h_new, at, n);
    }
}

/// The LSTM: `c` in place, the output `o * tanh(c')` to `m` (the new state, or the input
/// of the projection).
struct LstmMath<'a> {
    xp: &'a [f32],
    c: &'a mut [f32],
    out: &'a mut [f32],
    hidden: usize,
    clip: Option<f32>,
    cell_clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 4> for LstmMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, m: usize, u: usize, n: usize, [ai, af, ag, ao]: [S::V; 4]) {
        let (hidden, c) = (self.hidden, self.clip);
        let (xp, at) = (tail::<S>(self.xp, m * 4 * hidden), m * hidden + u);
        let i = vmath::sigmoid(s, pre(s, ai, xp, u, n, c));
        let f = vmath::sigmoid(s, pre(s, af, xp, hidden + u, n, c));
        let g = vmath::tanh(s, pre(s, ag, xp, 2 * hidden + u, n, c));
        let o = vmath::sigmoid(s, pre(s, ao, xp, 3 * hidden + u, n, c));
        let c_old = load(s, self.c, at, n);
        let c_new = clip(s, s.mul_add(f, c_old, s.mul(i, g)), self.cell_clip);
        store(s, c_new, self.c, at, n);
        store(s, s.mul(o, vmath::tanh(s, c_new)), self.out, at, n);
    }
}

/// The packed `W_hh` of `cell` as the recurrent product reads it.
#[inline(always)]
fn gate_weights<'a>(cell: &CellRef<'a>) -> GateWeights<'a> {
    GateWeights {
        panels: cell.w_hh,
        k: cell.cell.state,
        gates: cell.cell.gates(),
        hidden: cell.cell.hidden,
    }
}

/// An Elman step.
#[inline(always)]
fn rnn_step<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, step: Step<'_>) {
    let mut math = RnnMath {
        xp: step.xp,
        h_new: step.h_new,
        hidden: cell.cell.hidden,
        relu: matches!(cell.cell.kind, Kind::Rnn { relu: true }),
        clip: cell.cell.clip,
    };
    s.gates::<1>(gate_weights(&cell), 0, step.h, step.batch, &mut math);
}

/// A GRU step, either reset convention.
#[inline(always)]
fn gru_step<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, step: Step<'_>) {
    let Step {
        xp,
        h,
        h_new,
        extra,
        batch,
        ..
    } = step;
    let Cell { hidden, clip, .. } = cell.cell;
    let weights = gate_weights(&cell);
    if cell.cell.reset_after() {
        let mut math = GruMath {
            xp,
            b_hn: cell.b_hn,
            h,
            h_new,
            hidden,
            clip,
        };
        s.gates::<3>(weights, 0, h, batch, &mut math);
        return;
    }
    // r is needed for every unit before the candidate's product: two passes.
    let Some((rh, z)) = extra.split_at_mut_checked(batch * hidden) else {
        return;
    };
    let mut reset = GruResetMath {
        xp,
        h,
        rh,
        z,
        hidden,
        clip,
    };
    s.gates::<2>(weights, 0, h, batch, &mut reset);
    let mut candidate = GruCandidateMath {
        xp,
        b_hn: cell.b_hn,
        h,
        z: reset.z,
        h_new,
        hidden,
        clip,
    };
    s.gates::<1>(weights, 2, reset.rh, batch, &mut candidate);
}

/// An LSTM step, with the projection if the cell has one.
#[inline(always)]
fn lstm_step<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, step: Step<'_>) {
    let Step {
        xp,
        h,
        c,
        h_new,
        extra,
        batch,
    } = step;
    let Cell {
        hidden,
        state,
        clip,
        cell_clip,
        ..
    } = cell.cell;
    let projected = cell.cell.projected();
    // Without a projection the cell's output is the new state itself.
    let out = if projected {
        let Some(out) = extra.get_mut(..batch * hidden) else {
            return;
        };
        out
    } else {
        &mut *h_new
    };
    let mut math = LstmMath {
        xp,
        c,
        out,
        hidden,
        clip,
        cell_clip,
    };
    s.gates::<4>(gate_weights(&cell), 0, h, batch, &mut math);
    if projected {
        let layer = Layer {
            packed: cell.w_hr,
            out: state,
            inp: hidden,
            bias: None,
            act: Activation::Identity,
        };
        packed_rows(
            s,
            layer,
            Unchanged,
            extra.get(..batch * hidden).unwrap_or_default(),
            h_new,
        );
    }
}
