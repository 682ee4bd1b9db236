//! Tile stores: bias, the epilogue [`VecOp`], whole or partial vectors.

use super::driver::{part, part_mut};
use crate::ops::VecOp;
use crate::simd::Simd;

/// Stores `NV` vectors to `dst` (which may be shorter: the last panel of a layer whose
/// width is not a multiple of [`PANEL`]), after adding the bias and applying the activation.
#[inline(always)]
pub(crate) fn store_block<S: Simd, const NV: usize>(
    s: S,
    mut acc: [S::V; NV],
    bias: Option<&[f32]>,
    act: impl VecOp<S>,
    dst: &mut [f32],
) {
    for (v, a) in acc.iter_mut().enumerate() {
        let lo = (v * S::LANES).min(dst.len());
        let hi = ((v + 1) * S::LANES).min(dst.len());
        if hi - lo == S::LANES {
            if let Some(b) = bias {
                *a = s.add(*a, s.load(part::<S>(b, lo, S::LANES)));
            }
            s.store(act.apply(s, *a), &mut dst[lo..hi]);
        } else if hi > lo {
            if let Some(b) = bias {
                *a = s.add(*a, s.load_partial(part::<S>(b, lo, hi - lo), 0.0));
            }
            s.store_partial(act.apply(s, *a), &mut dst[lo..hi]);
        }
    }
}

/// Stores a whole tile (`MR` rows or pixels `pitch` floats apart, `NV` whole vectors
/// each) to `dst`, adding `bias` and applying `op`: no partial vectors, one bounds check
/// per pixel. Measured against the general per-pixel store: conv1d_kws 51 -> 47 us.
#[inline(always)]
pub(crate) fn store_whole_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
    pitch: usize,
) {
    let block_cols = NV * S::LANES;
    let dst = part_mut::<S>(dst, 0, (MR - 1) * pitch + block_cols);
    for (m, acc_row) in acc.iter().enumerate() {
        let px = part_mut::<S>(dst, m * pitch, block_cols);
        for (v, (a, d)) in acc_row
            .iter()
            .zip(px.chunks_exact_mut(S::LANES))
            .enumerate()
        {
            let a = match bias {
                Some(b) => s.add(*a, b[v]),
                None => *a,
            };
            s.store(op.apply(s, a), d);
        }
    }
}

/// [`store_whole_tile`] for `MR` one-vector pixels back to back (`NV` is 1; `dst` is the
/// tile): no bounds check per pixel and the bias test outside the loop (conv1d_kws on
/// AVX-512: 48 -> 43 us). Kept apart from [`store_whole_tile`]: with this second path
/// inside it, LLVM spilled accumulators in AVX2's 6 x 2 hot loops (conv_s2 300 -> 660 us).
#[inline(always)]
pub(crate) fn store_dense_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
) {
    let pixels = part_mut::<S>(dst, 0, MR * S::LANES).chunks_exact_mut(S::LANES);
    match bias {
        Some(b) => {
            for (a, d) in acc.iter().zip(pixels) {
                s.store(op.apply(s, s.add(a[0], b[0])), d);
            }
        }
        None => {
            for (a, d) in acc.iter().zip(pixels) {
                s.store(op.apply(s, a[0]), d);
            }
        }
    }
}

/// The `NV` whole bias vectors from output `o` (for [`store_whole_tile`]).
#[inline(always)]
pub(crate) fn whole_bias<S: Simd, const NV: usize>(
    s: S,
    bias: Option<&[f32]>,
    o: usize,
) -> Option<[S::V; NV]> {
    let b = bias?;
    let mut v = [s.zero(); NV];
    for (i, bv) in v.iter_mut().enumerate() {
        *bv = s.load(part::<S>(b, o + i * S::LANES, S::LANES));
    }
    Some(v)
}
