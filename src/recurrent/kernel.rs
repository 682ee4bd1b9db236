//! The recurrent kernel: per step one pass over the packed `W_hh` whose epilogue is the
//! cell's gate math, so every gate of a block of units is in registers when the new state
//! of those units is computed, and the state is read once and written once per step.

use super::shape::{Cell, Kind, UNITS};
use crate::engine::kernel_entry;
use crate::gemm::tile::slices;
use crate::gemm::{Blocking, Layer};
use crate::ops::{Activation, Unchanged};
use crate::simd::Simd;
use crate::vmath::{self, VecMath, clamp};

/// Packed recurrent weights: `blocks` panels, each `k` rows of `gates * UNITS` floats.
#[derive(Clone, Copy)]
pub(crate) struct GateWeights<'a> {
    pub(crate) panels: &'a [f32],
    /// Rows per panel: the length of the vector multiplied.
    pub(crate) k: usize,
    pub(crate) gates: usize,
    pub(crate) hidden: usize,
}

/// `acc[p][g][v] += sum_k h[k] W[k][(g0 + g) * UNITS + u0 + v * LANES ..]` for `PG` panels:
/// `GT` gates of `NV` vectors each, one accumulator chain per output.
#[inline(always)]
fn gate_tile<S: Simd, const PG: usize, const GT: usize, const NV: usize>(
    s: S,
    panels: [&[f32]; PG],
    row: usize,
    first: usize,
    h: &[f32],
) -> [[[S::V; NV]; GT]; PG] {
    let mut acc = [[[s.zero(); NV]; GT]; PG];
    for (k, &hk) in h.iter().enumerate() {
        let a = s.splat(hk);
        for (acc_p, panel) in acc.iter_mut().zip(panels) {
            let wk = &panel[k * row..(k + 1) * row];
            for (g, acc_g) in acc_p.iter_mut().enumerate() {
                let w = &wk[first + g * UNITS..][..NV * S::LANES];
                for (v, c) in acc_g.iter_mut().enumerate() {
                    *c = s.mul_add(s.load(&w[v * S::LANES..]), a, *c);
                }
            }
        }
    }
    acc
}

/// What a step does with the gate values of one vector of units: the cell's gate math.
/// A trait with an `#[inline(always)]` method rather than a closure: a closure the optimiser
/// leaves out of line loses the backend's `#[target_feature]`s, and every intrinsic in it
/// becomes a call (GRU 3x slower on AVX-512).
pub(crate) trait GateMath<S: Simd, const GT: usize> {
    /// Units `first..first + n` (`n <= LANES`), gate `g`'s `W_hh h` in `gates[g]`.
    fn units(&mut self, s: S, first: usize, n: usize, gates: [S::V; GT]);
}

/// Gates `g0..g0 + GT` of every hidden unit, `W_hh h` (without bias), handed to `epi`
/// one vector of units at a time (fewer than `LANES` units in the last vector when
/// `hidden` is not a multiple). `PG` panels per pass give `PG * GT * NV` independent
/// chains.
#[inline(always)]
pub(crate) fn gate_gemv<S: Simd, const PG: usize, const GT: usize, const NV: usize>(
    s: S,
    w: GateWeights<'_>,
    g0: usize,
    h: &[f32],
    epi: &mut impl GateMath<S, GT>,
) {
    let row = w.gates * UNITS;
    let panel_len = w.k * row;
    let blocks = w.hidden.div_ceil(UNITS);
    let h = &h[..w.k];
    for b0 in (0..blocks).step_by(PG) {
        // The last group repeats the final block; its duplicates are not handed on.
        let panels: [&[f32]; PG] = slices(|i| {
            let b = (b0 + i).min(blocks - 1);
            &w.panels[b * panel_len..(b + 1) * panel_len]
        });
        for u0 in (0..UNITS).step_by(NV * S::LANES) {
            let acc = gate_tile::<S, PG, GT, NV>(s, panels, row, g0 * UNITS + u0, h);
            for (i, acc_p) in acc.iter().enumerate().take(blocks - b0) {
                for v in 0..NV {
                    let unit = (b0 + i) * UNITS + u0 + v * S::LANES;
                    if unit >= w.hidden {
                        break;
                    }
                    let mut gates = [s.zero(); GT];
                    for (gate, acc_g) in gates.iter_mut().zip(acc_p) {
                        *gate = acc_g[v];
                    }
                    epi.units(s, unit, S::LANES.min(w.hidden - unit), gates);
                }
            }
        }
    }
}

/// Per-backend blocking of [`gate_gemv`]: `NV` vectors per gate (`NV * LANES` divides
/// [`UNITS`]) and the panels per pass for 1 to 4 gates, about 8 accumulators each.
pub(crate) trait RecurrentBlocking: Blocking + VecMath {
    fn gates<const GT: usize>(
        self,
        w: GateWeights<'_>,
        g0: usize,
        h: &[f32],
        epi: &mut impl GateMath<Self, GT>,
    );
}

macro_rules! recurrent_blocking {
    ($token:ty, nv: $nv:literal, panels: [$p1:literal, $p2:literal, $p3:literal, $p4:literal]) => {
        impl RecurrentBlocking for $token {
            #[inline(always)]
            fn gates<const GT: usize>(
                self,
                w: GateWeights<'_>,
                g0: usize,
                h: &[f32],
                epi: &mut impl GateMath<Self, GT>,
            ) {
                match GT {
                    1 => gate_gemv::<Self, $p1, GT, $nv>(self, w, g0, h, epi),
                    2 => gate_gemv::<Self, $p2, GT, $nv>(self, w, g0, h, epi),
                    3 => gate_gemv::<Self, $p3, GT, $nv>(self, w, g0, h, epi),
                    _ => gate_gemv::<Self, $p4, GT, $nv>(self, w, g0, h, epi),
                }
            }
        }
    };
}
#[cfg(simdnn_avx512)]
recurrent_blocking!(crate::simd::Avx512, nv: 1, panels: [8, 4, 2, 1]);
#[cfg(simdnn_avx2)]
recurrent_blocking!(crate::simd::Avx2, nv: 2, panels: [4, 2, 1, 1]);
#[cfg(simdnn_neon)]
recurrent_blocking!(crate::simd::Neon, nv: 4, panels: [2, 1, 1, 1]);
recurrent_blocking!(crate::simd::Scalar, nv: 2, panels: [2, 1, 1, 1]);

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
    if n == S::LANES {
        s.load(&src[at..at + S::LANES])
    } else {
        s.load_partial(&src[at..at + n], 0.0)
    }
}

/// The first `n` lanes of `v` to `dst[at..at + n]`.
#[inline(always)]
fn store<S: Simd>(s: S, v: S::V, dst: &mut [f32], at: usize, n: usize) {
    if n == S::LANES {
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

/// Where the steps write: the state `h` (and an LSTM's `c`) in place, each step's `h` to
/// `out` when given.
pub(crate) struct Steps<'a> {
    /// `steps * gates * hidden`: `W_ih x_t + bias` for every step.
    pub(crate) xproj: &'a [f32],
    pub(crate) h: &'a mut [f32],
    pub(crate) c: &'a mut [f32],
    pub(crate) out: Option<&'a mut [f32]>,
    /// `cell.work_len()` floats.
    pub(crate) work: &'a mut [f32],
    /// Steps from the last to the first (`out` rows stay at their step's index).
    pub(crate) reverse: bool,
}

/// One step of a cell: `h_new` from `h` (and an LSTM's `c` in place) given
/// `xp = W_ih x + bias`; `extra` is the rest of the work buffer.
type StepFn<S> = fn(S, CellRef<'_>, &[f32], &[f32], &mut [f32], &mut [f32], &mut [f32]);

/// Runs the recurrence over the projected inputs (lengths checked by the caller), one
/// `step` per input row.
#[inline(always)]
fn recurrent_steps<S: RecurrentBlocking>(s: S, cell: CellRef<'_>, run: Steps<'_>, step: StepFn<S>) {
    let Steps {
        xproj,
        h,
        c,
        mut out,
        work,
        reverse,
    } = run;
    let rows = cell.cell.rows();
    let steps = xproj.len() / rows;
    let state = cell.cell.state;
    let (h_new, extra) = work.split_at_mut(state);
    for i in 0..steps {
        let t = if reverse { steps - 1 - i } else { i };
        let xp = &xproj[t * rows..(t + 1) * rows];
        step(s, cell, xp, h, c, h_new, extra);
        h.copy_from_slice(h_new);
        if let Some(out) = out.as_deref_mut() {
            out[t * state..(t + 1) * state].copy_from_slice(h_new);
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
    relu: bool,
    clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 1> for RnnMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, u: usize, n: usize, [a]: [S::V; 1]) {
        let a = pre(s, a, self.xp, u, n, self.clip);
        let y = if self.relu {
            s.max(a, s.zero())
        } else {
            vmath::tanh(s, a)
        };
        store(s, y, self.h_new, u, n);
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
    fn units(&mut self, s: S, u: usize, n: usize, [ar, az, an]: [S::V; 3]) {
        let (xp, hidden, c) = (self.xp, self.hidden, self.clip);
        let r = vmath::sigmoid(s, pre(s, ar, xp, u, n, c));
        let z = vmath::sigmoid(s, pre(s, az, xp, hidden + u, n, c));
        let hn = s.add(an, load(s, self.b_hn, u, n));
        let xn = load(s, xp, 2 * hidden + u, n);
        let cand = vmath::tanh(s, clip(s, s.mul_add(r, hn, xn), c));
        let y = blend(s, z, cand, load(s, self.h, u, n));
        store(s, y, self.h_new, u, n);
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
    fn units(&mut self, s: S, u: usize, n: usize, [ar, az]: [S::V; 2]) {
        let (xp, c) = (self.xp, self.clip);
        let r = vmath::sigmoid(s, pre(s, ar, xp, u, n, c));
        let z = vmath::sigmoid(s, pre(s, az, xp, self.hidden + u, n, c));
        store(s, s.mul(r, load(s, self.h, u, n)), self.rh, u, n);
        store(s, z, self.z, u, n);
    }
}

/// The GRU with the reset before the product, second pass: the candidate from
/// `W_hn (r * h)` and the new state.
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
    fn units(&mut self, s: S, u: usize, n: usize, [an]: [S::V; 1]) {
        let hn = s.add(an, load(s, self.b_hn, u, n));
        let cand = vmath::tanh(s, pre(s, hn, self.xp, 2 * self.hidden + u, n, self.clip));
        let (z, h) = (load(s, self.z, u, n), load(s, self.h, u, n));
        store(s, blend(s, z, cand, h), self.h_new, u, n);
    }
}

/// The LSTM: `c` in place, the output `o * tanh(c')` to `m` (the new state, or the input
/// of the projection).
struct LstmMath<'a> {
    xp: &'a [f32],
    c: &'a mut [f32],
    m: &'a mut [f32],
    hidden: usize,
    clip: Option<f32>,
    cell_clip: Option<f32>,
}

impl<S: VecMath> GateMath<S, 4> for LstmMath<'_> {
    #[inline(always)]
    fn units(&mut self, s: S, u: usize, n: usize, [ai, af, ag, ao]: [S::V; 4]) {
        let (xp, hidden, c) = (self.xp, self.hidden, self.clip);
        let i = vmath::sigmoid(s, pre(s, ai, xp, u, n, c));
        let f = vmath::sigmoid(s, pre(s, af, xp, hidden + u, n, c));
        let g = vmath::tanh(s, pre(s, ag, xp, 2 * hidden + u, n, c));
        let o = vmath::sigmoid(s, pre(s, ao, xp, 3 * hidden + u, n, c));
        let c_old = load(s, self.c, u, n);
        let c_new = clip(s, s.mul_add(f, c_old, s.mul(i, g)), self.cell_clip);
        store(s, c_new, self.c, u, n);
        store(s, s.mul(o, vmath::tanh(s, c_new)), self.m, u, n);
    }
}

/// The packed `W_hh` of `cell` as [`gate_gemv`] reads it.
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
fn rnn_step<S: RecurrentBlocking>(
    s: S,
    cell: CellRef<'_>,
    xp: &[f32],
    h: &[f32],
    _: &mut [f32],
    h_new: &mut [f32],
    _: &mut [f32],
) {
    let relu = matches!(cell.cell.kind, Kind::Rnn { relu: true });
    let clip = cell.cell.clip;
    let mut math = RnnMath {
        xp,
        h_new,
        relu,
        clip,
    };
    s.gates::<1>(gate_weights(&cell), 0, h, &mut math);
}

/// A GRU step, either reset convention.
#[inline(always)]
fn gru_step<S: RecurrentBlocking>(
    s: S,
    cell: CellRef<'_>,
    xp: &[f32],
    h: &[f32],
    _: &mut [f32],
    h_new: &mut [f32],
    extra: &mut [f32],
) {
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
        s.gates::<3>(weights, 0, h, &mut math);
        return;
    }
    // r is needed for every unit before the candidate's product: two passes.
    let (rh, z) = extra.split_at_mut(hidden);
    let mut reset = GruResetMath {
        xp,
        h,
        rh,
        z,
        hidden,
        clip,
    };
    s.gates::<2>(weights, 0, h, &mut reset);
    let mut candidate = GruCandidateMath {
        xp,
        b_hn: cell.b_hn,
        h,
        z: reset.z,
        h_new,
        hidden,
        clip,
    };
    s.gates::<1>(weights, 2, reset.rh, &mut candidate);
}

/// An LSTM step, with the projection if the cell has one.
#[inline(always)]
fn lstm_step<S: RecurrentBlocking>(
    s: S,
    cell: CellRef<'_>,
    xp: &[f32],
    h: &[f32],
    c: &mut [f32],
    h_new: &mut [f32],
    extra: &mut [f32],
) {
    let Cell {
        hidden,
        state,
        clip,
        cell_clip,
        ..
    } = cell.cell;
    let projected = cell.cell.projected();
    // Without a projection the cell's output is the new state itself.
    let m = if projected {
        &mut extra[..hidden]
    } else {
        &mut *h_new
    };
    let mut math = LstmMath {
        xp,
        c,
        m,
        hidden,
        clip,
        cell_clip,
    };
    s.gates::<4>(gate_weights(&cell), 0, h, &mut math);
    if projected {
        let layer = Layer {
            packed: cell.w_hr,
            out: state,
            inp: hidden,
            bias: None,
            act: Activation::Identity,
        };
        s.gemv(layer, Unchanged, &extra[..hidden], h_new);
    }
}
