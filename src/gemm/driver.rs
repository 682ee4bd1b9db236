//! The drivers: row blocks of `A` times column blocks of `B`, each block one register tile,
//! for a packed `B` (GEMM and GEMV) or a row-major one (`A B` and `A B^T`).

use super::store::{store_block, store_whole_tile, whole_bias};
use super::tile::{dot_1x4, slices, tile_packed, tile_row_major, tile_transposed_a};
use super::{Blocking, Layer, Mat, MatMut, PANEL};
use crate::engine::kernel_entry;
use crate::ops::{VecOp, with_epilogue};
use crate::simd::Simd;
use core::num::NonZeroUsize;

/// `data[at..at + len]`, or an empty slice if it is out of range (which the callers' length
/// checks exclude: a panic-free fallback, not a case the kernels handle).
#[inline(always)]
pub(crate) fn row_at(data: &[f32], at: usize, len: usize) -> &[f32] {
    data.get(at..)
        .and_then(|d| d.get(..len))
        .unwrap_or_default()
}

/// `data[at..at + len]` in a hot loop: where code size comes first (`Simd::SMALL_CODE`,
/// a microcontroller's build) as [`row_at`], with no panic path; elsewhere sliced, which
/// the callers' checks make infallible and which keeps LLVM's knowledge of the length
/// exact (with an empty fallback, tiles measured 10-30% slower: bounds checks and
/// accumulators kept in memory inside their loops).
#[inline(always)]
pub(crate) fn part<S: Simd>(data: &[f32], at: usize, len: usize) -> &[f32] {
    if S::SMALL_CODE {
        row_at(data, at, len)
    } else {
        &data[at..][..len]
    }
}

/// `data[at..]` as [`part`] takes it.
#[inline(always)]
pub(crate) fn tail<S: Simd>(data: &[f32], at: usize) -> &[f32] {
    if S::SMALL_CODE {
        data.get(at..).unwrap_or_default()
    } else {
        &data[at..]
    }
}

/// [`part`] of a mutable slice.
#[inline(always)]
pub(crate) fn part_mut<S: Simd>(data: &mut [f32], at: usize, len: usize) -> &mut [f32] {
    if S::SMALL_CODE {
        data.get_mut(at..)
            .and_then(|d| d.get_mut(..len))
            .unwrap_or_default()
    } else {
        &mut data[at..][..len]
    }
}

/// `data[at..]` as [`part_mut`] takes it.
#[inline(always)]
pub(crate) fn tail_mut<S: Simd>(data: &mut [f32], at: usize) -> &mut [f32] {
    if S::SMALL_CODE {
        data.get_mut(at..).unwrap_or_default()
    } else {
        &mut data[at..]
    }
}

/// `rows` rows of `x` times the packed layer, `MR` rows at a time (the last block computes
/// duplicate rows and discards them). Each output is `bias + sum_k` with `k` ascending in
/// one accumulator, exactly as in [`gemv_packed`] and the convolutions, so results do not depend
/// on the batch size or on which path ran.
#[inline(always)]
pub(crate) fn gemm_packed<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    layer: Layer<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
) {
    let Layer {
        packed,
        out,
        inp,
        bias,
        ..
    } = layer;
    let block_cols = NV * S::LANES;
    // (Lengths are the caller's to check; out of range, the kernel stops rather than panics.)
    let (Some(panel_len), Some(last)) = (NonZeroUsize::new(PANEL * inp), rows.checked_sub(1))
    else {
        return;
    };
    for (p, panel) in packed.chunks_exact(panel_len.get()).enumerate() {
        for r0 in (0..rows).step_by(MR) {
            let x_rows: [&[f32]; MR] = slices(|m| part::<S>(x, (r0 + m).min(last) * inp, inp));
            for col in (0..PANEL).step_by(block_cols) {
                let o = p * PANEL + col;
                if o >= out {
                    break;
                }
                let mut acc = [[s.zero(); NV]; MR];
                tile_packed::<S, MR, NV>(s, &mut acc, x_rows, panel, col);
                let width = block_cols.min(out - o);
                if width == block_cols && r0 + MR <= rows {
                    let b = whole_bias::<S, NV>(s, bias, o);
                    let dst = tail_mut::<S>(y, r0 * out + o);
                    store_whole_tile::<S, MR, NV>(s, &acc, b, op, dst, out);
                    continue;
                }
                let add = bias.and_then(|b| b.get(o..o + width));
                for (m, acc_row) in acc.into_iter().enumerate().take(rows - r0) {
                    let Some(dst) = y
                        .get_mut((r0 + m) * out + o..)
                        .and_then(|d| d.get_mut(..width))
                    else {
                        return;
                    };
                    store_block::<S, NV>(s, acc_row, add, op, dst);
                }
            }
        }
    }
}

/// One row of `x` times the packed layer. A single accumulator chain per output (the same
/// order as [`gemm_packed`]); `PG` panels at once give `PG * NV` independent chains.
#[inline(always)]
pub(crate) fn gemv_packed<S: Simd, const NV: usize, const PG: usize>(
    s: S,
    layer: Layer<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let Layer {
        packed,
        out,
        inp,
        bias,
        ..
    } = layer;
    let block_cols = NV * S::LANES;
    let panel_len = PANEL * inp;
    let panels = out.div_ceil(PANEL);
    let Some(last) = panels.checked_sub(1) else {
        return;
    };
    for p0 in (0..panels).step_by(PG) {
        // The last group repeats the final panel; its duplicates are not stored.
        let group: [&[f32]; PG] =
            slices(|i| part::<S>(packed, (p0 + i).min(last) * panel_len, panel_len));
        for col in (0..PANEL).step_by(block_cols) {
            let mut acc = [[s.zero(); NV]; PG];
            for (k, &xk) in x.iter().enumerate() {
                let a = s.splat(xk);
                for (acc_p, panel) in acc.iter_mut().zip(group) {
                    let wk = part::<S>(panel, k * PANEL + col, block_cols);
                    for (v, c) in acc_p.iter_mut().enumerate() {
                        let w = wk.get(v * S::LANES..).unwrap_or_default();
                        *c = s.mul_add(s.load(w), a, *c);
                    }
                }
            }
            for (i, acc_p) in acc.into_iter().enumerate().take(panels - p0) {
                let o = (p0 + i) * PANEL + col;
                if o >= out {
                    continue;
                }
                let width = block_cols.min(out - o);
                let add = bias.and_then(|b| b.get(o..o + width));
                let Some(dst) = y.get_mut(o..o + width) else {
                    return;
                };
                store_block::<S, NV>(s, acc_p, add, op, dst);
            }
        }
    }
}

/// `y = act(x B + bias)` for the `x.len() / inp` rows of `x` and the packed `B` of `layer`
/// (lengths checked by the caller, `inp > 0`, `out > 0`), with the store epilogue of
/// `layer.act`; the exp-based activations are left to [`crate::ops::finish`]. Dense layers
/// and pointwise convolutions run on it.
#[inline(always)]
pub(crate) fn gemm_packed_kernel<S: Blocking>(s: S, layer: Layer<'_>, x: &[f32], y: &mut [f32]) {
    with_epilogue!(S, layer.act, op => packed_rows(s, layer, op, x, y))
}
kernel_entry!(gemm_packed_kernel(layer: Layer<'_>, x: &[f32], y: &mut [f32]));

/// The rows of [`gemm_packed_kernel`] with a given store op: whole row blocks through the
/// GEMM tile, a single row through the GEMV.
#[inline(always)]
pub(crate) fn packed_rows<S: Blocking>(
    s: S,
    layer: Layer<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let (out, inp) = (layer.out, layer.inp);
    let rows = x.len().checked_div(inp).unwrap_or(0);
    // Whole row blocks (and a tail at least half a block) go through the GEMM tile; the
    // other tail rows through a shorter tile (a GEMV per row would stream all of `W` once
    // per row); a single row is a GEMV.
    let tail = rows % S::GEMM_MR;
    let (whole, tail) = match rows {
        0 | 1 => (0, rows),
        _ if tail * 2 >= S::GEMM_MR => (rows, 0),
        _ => (rows - tail, tail),
    };
    let (Some((x_whole, x)), Some((y_whole, y))) = (
        x.split_at_checked(whole * inp),
        y.split_at_mut_checked(whole * out),
    ) else {
        return;
    };
    if whole > 0 {
        s.gemm_rows::<false>(layer, op, x_whole, whole, y_whole);
    }
    if tail > 1 {
        s.gemm_rows::<true>(layer, op, x, tail, y);
    } else if tail == 1 {
        s.gemv(layer, op, x, y);
    }
}

/// `C = A B^T (+ bias)`: row `i` of `C` holds the dot products of row `i` of `A` with every
/// row of `B` (all `k = A.cols = B.cols` long, any strides; `C` is `A.rows x B.rows`).
/// Four rows of `B` share each load of `A`'s row. Dense layers over row-major weights
/// (`y = x W^T`) run on it; so will attention's `Q K^T` over a key cache.
#[inline(always)]
pub(crate) fn gemm_nt<S: Simd>(
    s: S,
    a: Mat<'_>,
    b: Mat<'_>,
    bias: Option<&[f32]>,
    mut c: MatMut<'_>,
) {
    let (n, k, ldb) = (b.rows, b.cols, b.stride);
    let whole = n - n % 4;
    for i in 0..a.rows {
        let (x, y) = (a.row(i), c.row(i));
        for (o, yo) in (0..whole).step_by(4).zip(y.chunks_exact_mut(4)) {
            let group = b.data.get(o * ldb..).unwrap_or_default();
            let rows: [&[f32]; 4] = slices(|j| part::<S>(group, j * ldb, k));
            for (yj, d) in yo.iter_mut().zip(dot_1x4(s, x, rows)) {
                *yj = d;
            }
        }
        if whole < n {
            // The last group repeats the final row; its duplicates are not stored.
            let rows: [&[f32]; 4] = slices(|j| b.row((whole + j).min(n - 1)));
            let d = dot_1x4(s, x, rows);
            for (yj, dj) in y.iter_mut().skip(whole).zip(d) {
                *yj = dj;
            }
        }
        if let Some(bias) = bias {
            for (yo, bo) in y.iter_mut().zip(bias) {
                *yo += bo;
            }
        }
    }
}
kernel_entry!(gemm_nt(a: Mat<'_>, b: Mat<'_>, bias: Option<&[f32]>, c: MatMut<'_>));

/// `C = A B`, or `C += A B` with `accumulate`, for row-major `B` with its own row stride:
/// `MR` rows of `A` times `NV` vectors of `B`'s columns per tile; the columns after the
/// last whole block take a tile with partial loads, the rows after the last whole block a
/// tile that repeats the last row (not stored). `A` is `m x k`, `B` `k x n`, `C` `m x n`.
#[inline(always)]
pub(crate) fn gemm_nn<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    a: Mat<'_>,
    b: Mat<'_>,
    mut c: MatMut<'_>,
    accumulate: bool,
) {
    let (m, n) = (a.rows, b.cols);
    let block_cols = NV * S::LANES;
    for r0 in (0..m).step_by(MR) {
        let a_rows: [&[f32]; MR] = slices(|i| a.row((r0 + i).min(m - 1)));
        for col in (0..n).step_by(block_cols) {
            let width = block_cols.min(n - col);
            let zero = [[s.zero(); NV]; MR];
            // (`B` is empty when `k` is 0.) The tile returns its accumulators by value: with
            // one `&mut` array shared by the two calls LLVM kept them in memory, a store
            // after every FMA.
            let b_from = b.data.get(col..).unwrap_or(&[]);
            let acc = if width == block_cols {
                tile_row_major::<S, MR, NV, false>(s, zero, a_rows, b_from, b.stride, width)
            } else {
                tile_row_major::<S, MR, NV, true>(s, zero, a_rows, b_from, b.stride, width)
            };
            for (i, acc_row) in acc.iter().enumerate().take(m - r0) {
                let dst = c.row(r0 + i).get_mut(col..col + width).unwrap_or_default();
                store_row(s, acc_row, dst, accumulate);
            }
        }
    }
}

/// `C (+)= A B` for `A` given transposed: `a_t` is `A^T`, `k x m` with its own row stride
/// (`a_t.rows = k`, `a_t.cols = m`), `B` `k x n` row-major, `C` `m x n`. Attention's
/// `O += P V` runs on it, with `P^T` as computed.
#[inline(always)]
pub(crate) fn gemm_tn<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    a_t: Mat<'_>,
    b: Mat<'_>,
    mut c: MatMut<'_>,
    accumulate: bool,
) {
    let (m, k, n) = (a_t.cols, a_t.rows, b.cols);
    let block_cols = NV * S::LANES;
    for r0 in (0..m).step_by(MR) {
        let rows = MR.min(m - r0);
        let a = a_t.data.get(r0..).unwrap_or(&[]);
        for col in (0..n).step_by(block_cols) {
            let width = block_cols.min(n - col);
            let zero = [[s.zero(); NV]; MR];
            let bb = b.data.get(col..).unwrap_or(&[]);
            let (lda, ldb) = (a_t.stride, b.stride);
            let acc = match (rows == MR, width == block_cols) {
                (true, true) => tile_transposed_a::<S, MR, NV, false, false>(
                    s, zero, a, lda, rows, k, bb, ldb, width,
                ),
                (true, false) => tile_transposed_a::<S, MR, NV, false, true>(
                    s, zero, a, lda, rows, k, bb, ldb, width,
                ),
                (false, true) => tile_transposed_a::<S, MR, NV, true, false>(
                    s, zero, a, lda, rows, k, bb, ldb, width,
                ),
                (false, false) => tile_transposed_a::<S, MR, NV, true, true>(
                    s, zero, a, lda, rows, k, bb, ldb, width,
                ),
            };
            for (i, acc_row) in acc.iter().enumerate().take(rows) {
                let dst = c.row(r0 + i).get_mut(col..col + width).unwrap_or_default();
                store_row(s, acc_row, dst, accumulate);
            }
        }
    }
}

/// [`gemm_nn`] with the backend's tile (see [`Blocking`]).
#[inline(always)]
pub(crate) fn gemm_nn_kernel<S: Blocking>(
    s: S,
    a: Mat<'_>,
    b: Mat<'_>,
    c: MatMut<'_>,
    accumulate: bool,
) {
    s.gemm_nn(a, b, c, accumulate);
}
kernel_entry!(gemm_nn_kernel(a: Mat<'_>, b: Mat<'_>, c: MatMut<'_>, accumulate: bool));

/// Stores (or with `accumulate` adds) one row of a tile to `dst`: whole vectors, then a
/// partial one.
#[inline(always)]
fn store_row<S: Simd, const NV: usize>(s: S, acc: &[S::V; NV], dst: &mut [f32], accumulate: bool) {
    for (&av, d) in acc.iter().zip(dst.chunks_mut(S::LANES)) {
        if d.len() == S::LANES {
            let sum = if accumulate { s.add(s.load(d), av) } else { av };
            s.store(sum, d);
        } else {
            let sum = if accumulate {
                s.add(s.load_partial(d, 0.0), av)
            } else {
                av
            };
            s.store_partial(sum, d);
        }
    }
}
