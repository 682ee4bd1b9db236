//! The recurrent product: `rows` state vectors (a batch of independent sequences, or one)
//! times the packed `W_hh`, every gate of a block of units in registers at once, handed to
//! the cell's gate math ([`GateMath`]) without a store in between; and its per-backend
//! register blocking ([`RecurrentBlocking`]).

use super::shape::UNITS;
use crate::gemm::Blocking;
use crate::gemm::driver::part;
use crate::gemm::tile::slices;
use crate::simd::Simd;
use crate::vmath::VecMath;

/// Packed recurrent weights: `blocks` panels, each `k` rows of `gates * UNITS` floats.
#[derive(Clone, Copy)]
pub(crate) struct GateWeights<'a> {
    pub(crate) panels: &'a [f32],
    /// Rows per panel: the length of the state vector multiplied.
    pub(crate) k: usize,
    pub(crate) gates: usize,
    pub(crate) hidden: usize,
}

/// What a step does with the gate values of one vector of units: the cell's gate math.
/// A trait with an `#[inline(always)]` method rather than a closure: a closure the optimiser
/// leaves out of line loses the backend's `#[target_feature]`s, and every intrinsic in it
/// becomes a call (GRU 3x slower on AVX-512).
pub(crate) trait GateMath<S: Simd, const GT: usize> {
    /// Batch row `m`, units `first..first + n` (`n <= LANES`): gate `g`'s `W_hh h` in
    /// `gates[g]`.
    fn units(&mut self, s: S, m: usize, first: usize, n: usize, gates: [S::V; GT]);
}

/// `acc[m][p][g][v] = sum_k hs[m][k] W_p[k][first + g * UNITS + v * LANES ..]`: `MB` state
/// rows, `PG` panels, `GT` gates of `NV` vectors; one accumulator chain per output, `k`
/// ascending, so a row's result does not depend on the rows beside it. Each weight vector
/// is loaded once for the `MB` rows.
#[inline(always)]
fn gate_tile<S: Simd, const MB: usize, const PG: usize, const GT: usize, const NV: usize>(
    s: S,
    panels: [&[f32]; PG],
    row: usize,
    first: usize,
    hs: [&[f32]; MB],
) -> [[[[S::V; NV]; GT]; PG]; MB] {
    let k_len = hs[0].len();
    let mut acc = [[[[s.zero(); NV]; GT]; PG]; MB];
    // Every row at least `k_len` long, checked once.
    if hs.iter().any(|h| h.len() < k_len) {
        return acc;
    }
    let span = (GT - 1) * UNITS + NV * S::LANES;
    if S::SMALL_CODE && MB == 1 && PG <= 2 && GT <= 4 && NV <= 2 {
        // Written out for opt-level "s", which unrolls no loop: with the indices constants
        // the accumulators stay in registers (as `gemm::tile`'s small-code step).
        for k in 0..k_len {
            let a = s.splat(hs[0].get(k).copied().unwrap_or_default());
            macro_rules! tap {
                ($p:literal, $g:literal, $v:literal) => {
                    if $p < PG && $g < GT && $v < NV {
                        let Some(w) = panels[$p]
                            .get(k * row + first..)
                            .and_then(|w| w.get(..span))
                        else {
                            break;
                        };
                        let wv = s.load(&w[$g * UNITS + $v * S::LANES..][..S::LANES]);
                        acc[0][$p][$g][$v] = s.mul_add(wv, a, acc[0][$p][$g][$v]);
                    }
                };
            }
            tap!(0, 0, 0);
            tap!(0, 0, 1);
            tap!(0, 1, 0);
            tap!(0, 1, 1);
            tap!(0, 2, 0);
            tap!(0, 2, 1);
            tap!(0, 3, 0);
            tap!(0, 3, 1);
            tap!(1, 0, 0);
            tap!(1, 0, 1);
            tap!(1, 1, 0);
            tap!(1, 1, 1);
            tap!(1, 2, 0);
            tap!(1, 2, 1);
            tap!(1, 3, 0);
            tap!(1, 3, 1);
        }
        return acc;
    }
    // Rows of exactly `k_len` (the slicing cannot fail after the check above).
    let hs: [&[f32]; MB] = slices(|m| &hs[m][..k_len]);
    for k in 0..k_len {
        let mut a = [s.zero(); MB];
        for (a, h) in a.iter_mut().zip(hs) {
            *a = s.splat(h[k]);
        }
        for (p, panel) in panels.iter().enumerate() {
            // One bounds check per row: the span's length is a constant, so the offsets
            // below (constants too) need none.
            let wk = part::<S>(panel, k * row + first, span);
            for g in 0..GT {
                for v in 0..NV {
                    let wv = s.load(&wk[g * UNITS + v * S::LANES..][..S::LANES]);
                    for (acc_m, a) in acc.iter_mut().zip(a) {
                        acc_m[p][g][v] = s.mul_add(wv, a, acc_m[p][g][v]);
                    }
                }
            }
        }
    }
    acc
}

/// Gates `g0..g0 + GT` of every hidden unit of `rows` state rows (`h` is `rows x k`),
/// `W_hh h` without bias, handed to `epi` one vector of units at a time (fewer than `LANES`
/// units in the last vector when `hidden` is not a multiple). Each block of `MB` rows
/// streams the weights once.
#[inline(always)]
pub(crate) fn gate_gemm<
    S: Simd,
    const MB: usize,
    const PG: usize,
    const GT: usize,
    const NV: usize,
>(
    s: S,
    w: GateWeights<'_>,
    g0: usize,
    h: &[f32],
    rows: usize,
    epi: &mut impl GateMath<S, GT>,
) {
    let (row, k) = (w.gates * UNITS, w.k);
    let panel_len = k * row;
    let blocks = w.hidden.div_ceil(UNITS);
    for r0 in (0..rows).step_by(MB) {
        // The last row block repeats the final row, the last panel group the final
        // block; their duplicates are not handed on.
        let hs: [&[f32]; MB] = slices(|m| part::<S>(h, (r0 + m).min(rows - 1) * k, k));
        for b0 in (0..blocks).step_by(PG) {
            let panels: [&[f32]; PG] =
                slices(|i| part::<S>(w.panels, (b0 + i).min(blocks - 1) * panel_len, panel_len));
            for u0 in (0..UNITS).step_by(NV * S::LANES) {
                let acc = gate_tile::<S, MB, PG, GT, NV>(s, panels, row, g0 * UNITS + u0, hs);
                for (m, acc_m) in acc.iter().enumerate().take(rows - r0) {
                    for (i, acc_p) in acc_m.iter().enumerate().take(blocks - b0) {
                        for v in 0..NV {
                            let unit = (b0 + i) * UNITS + u0 + v * S::LANES;
                            if unit >= w.hidden {
                                break;
                            }
                            let mut gates = [s.zero(); GT];
                            for (gate, acc_g) in gates.iter_mut().zip(acc_p) {
                                *gate = acc_g[v];
                            }
                            epi.units(s, r0 + m, unit, S::LANES.min(w.hidden - unit), gates);
                        }
                    }
                }
            }
        }
    }
}

/// Per-backend blocking of [`gate_gemm`], for one state row and for a batch: rows per
/// tile `MB`, `NV` vectors per gate (`NV * LANES` divides [`UNITS`]) and the panels per
/// pass for 1 to 4 gates, for about 8 accumulators in a single row (latency) and 12 to 16
/// in a batch (each weight load shared by the rows).
pub(crate) trait RecurrentBlocking: Blocking + VecMath {
    fn gates<const GT: usize>(
        self,
        w: GateWeights<'_>,
        g0: usize,
        h: &[f32],
        rows: usize,
        epi: &mut impl GateMath<Self, GT>,
    );
}

macro_rules! recurrent_blocking {
    ($token:ty, one: (nv: $nv:literal, panels: [$p1:literal, $p2:literal, $p3:literal, $p4:literal]),
     batch: (mb: $mb:literal, nv: $bnv:literal, panels: [$b1:literal, $b2:literal, $b3:literal, $b4:literal])) => {
        impl RecurrentBlocking for $token {
            #[inline(always)]
            fn gates<const GT: usize>(
                self,
                w: GateWeights<'_>,
                g0: usize,
                h: &[f32],
                rows: usize,
                epi: &mut impl GateMath<Self, GT>,
            ) {
                // On a microcontroller one tile serves a batch too, row by row (code size).
                if rows == 1 || Self::SMALL_CODE {
                    match GT {
                        1 => gate_gemm::<Self, 1, $p1, GT, $nv>(self, w, g0, h, rows, epi),
                        2 => gate_gemm::<Self, 1, $p2, GT, $nv>(self, w, g0, h, rows, epi),
                        3 => gate_gemm::<Self, 1, $p3, GT, $nv>(self, w, g0, h, rows, epi),
                        _ => gate_gemm::<Self, 1, $p4, GT, $nv>(self, w, g0, h, rows, epi),
                    }
                } else {
                    match GT {
                        1 => gate_gemm::<Self, $mb, $b1, GT, $bnv>(self, w, g0, h, rows, epi),
                        2 => gate_gemm::<Self, $mb, $b2, GT, $bnv>(self, w, g0, h, rows, epi),
                        3 => gate_gemm::<Self, $mb, $b3, GT, $bnv>(self, w, g0, h, rows, epi),
                        _ => gate_gemm::<Self, $mb, $b4, GT, $bnv>(self, w, g0, h, rows, epi),
                    }
                }
            }
        }
    };
}
// 32 zmm registers: one row 8 chains (GRU 6); a batch 4 rows x 4 gates.
#[cfg(simdnn_avx512)]
recurrent_blocking!(crate::simd::Avx512,
    one: (nv: 1, panels: [8, 4, 2, 1]), batch: (mb: 4, nv: 1, panels: [4, 2, 1, 1]));
// 16 ymm registers: one row 8 chains; a batch 2 rows x 4 gates x 1 vector.
#[cfg(simdnn_avx2)]
recurrent_blocking!(crate::simd::Avx2,
    one: (nv: 2, panels: [4, 2, 1, 1]), batch: (mb: 2, nv: 1, panels: [4, 2, 1, 1]));
// 32 q registers: one row 16 accumulators for the LSTM; a batch 2 rows x 2 vectors.
#[cfg(simdnn_neon)]
recurrent_blocking!(crate::simd::Neon,
    one: (nv: 4, panels: [2, 1, 1, 1]), batch: (mb: 2, nv: 2, panels: [2, 1, 1, 1]));
// Cortex-M4F's 32 single registers: 8 accumulators for the LSTM.
recurrent_blocking!(crate::simd::Scalar,
    one: (nv: 2, panels: [2, 1, 1, 1]), batch: (mb: 2, nv: 1, panels: [2, 1, 1, 1]));
