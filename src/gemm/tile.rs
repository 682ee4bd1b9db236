//! Register tiles: `MR x NV` vectors of accumulators updated from `k` steps of `A` and `B`.
//! The variants differ only in where `A` and `B` come from:
//! - [`tile_packed`]: `MR` rows of `A`, `B` a packed panel;
//! - [`tile_packed_windows`]: `MR` windows of one slice `step` apart (convolution rows);
//! - [`tile_row_major`]: `MR` rows of `A`, `B` row-major with its own row stride;
//! - [`tile_transposed_a`]: `A` given transposed (`A^T` row-major: `MR` consecutive values
//!   per `k`), `B` row-major;
//! - [`dot_1x4`]: one row of `A` against four rows of `B` (`A B^T`).

use super::PANEL;
use super::driver::part;
use crate::simd::Simd;
use core::num::NonZeroUsize;

/// `[f(0), .., f(N - 1)]`. `core::array::from_fn` stays an out-of-line call in the tile
/// loops (19% of conv1d_kws's time); this plain loop is inlined.
#[inline(always)]
pub(crate) fn slices<'a, const N: usize>(f: impl Fn(usize) -> &'a [f32]) -> [&'a [f32]; N] {
    let mut out: [&[f32]; N] = [&[]; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(i);
    }
    out
}

/// The `NV` weight vectors of one panel row (`PANEL` floats) from column `col`.
#[inline(always)]
fn panel_vectors<S: Simd, const NV: usize>(s: S, row: &[f32], col: usize) -> [S::V; NV] {
    let mut w = [s.zero(); NV];
    let row = part::<S>(row, col, NV * S::LANES);
    if S::SMALL_CODE && NV <= 8 {
        // Written out for opt-level "s", as in `small_code_step`: a loop here leaves `w` in
        // memory (a memclr call and a copy loop per k step).
        macro_rules! load {
            ($($v:literal)*) => {
                $(
                    if $v < NV {
                        w[$v] = s.load(row.get($v * S::LANES..).unwrap_or_default());
                    }
                )*
            };
        }
        load!(0 1 2 3 4 5 6 7);
        return w;
    }
    for (v, wv) in w.iter_mut().enumerate() {
        *wv = s.load(&row[v * S::LANES..]);
    }
    w
}

/// One `k` step of a tile, `acc[m][v] += w[v] * a(m)`, where code size comes first
/// (`Simd::SMALL_CODE`): the firmware profile's opt-level "s" unrolls no loop, not even one
/// of two iterations, and a tile indexed in a loop lives in memory (9 instructions per
/// multiply-add on Cortex-M4); so up to 4 x 8 the step is written out, each accumulator a
/// fixed place that stays in a register (the packed GEMM's 2 x 8 tile: 35 instructions per
/// 16 multiply-adds). The desktop loops are unrolled by the optimiser.
#[inline(always)]
fn small_code_step<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    w: [S::V; NV],
    a: impl Fn(usize) -> S::V,
) {
    if S::SMALL_CODE && MR <= 4 && NV <= 8 {
        // Row `m`, columns `v`: a no-op where the index is outside the tile.
        macro_rules! row {
            ($m:literal: $($v:literal)*) => {
                if $m < MR {
                    let x = a($m);
                    $(
                        if $v < NV {
                            acc[$m][$v] = s.mul_add(w[$v], x, acc[$m][$v]);
                        }
                    )*
                }
            };
        }
        row!(0: 0 1 2 3 4 5 6 7);
        row!(1: 0 1 2 3 4 5 6 7);
        row!(2: 0 1 2 3 4 5 6 7);
        row!(3: 0 1 2 3 4 5 6 7);
    } else {
        for (m, acc_row) in acc.iter_mut().enumerate() {
            let x = a(m);
            for (c, wv) in acc_row.iter_mut().zip(w) {
                *c = s.mul_add(wv, x, *c);
            }
        }
    }
}

/// `acc += ` `MR` rows of `x` (each `kc` long) times one `kc x PANEL` panel block, columns
/// `col..col + NV * LANES` of it: the packed GEMM, the pointwise and implicit-GEMM
/// convolutions and Winograd's per-position products.
#[inline(always)]
pub(crate) fn tile_packed<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    x_rows: [&[f32]; MR],
    panel: &[f32],
    col: usize,
) {
    let kc = x_rows[0].len();
    if S::SMALL_CODE {
        for (k, wk) in (0..kc).zip(panel.chunks_exact(PANEL)) {
            let w = panel_vectors::<S, NV>(s, wk, col);
            // (`get`: at opt-level "s" LLVM does not carry the check above this far, and a
            // firmware keeps no panic path.)
            small_code_step(s, acc, w, |m| {
                s.splat(x_rows[m].get(k).copied().unwrap_or_default())
            });
        }
        return;
    }
    // Every row exactly `kc` long (the callers' rows are), so `x_row[k]` below needs no
    // bounds check.
    let x_rows: [&[f32]; MR] = slices(|m| &x_rows[m][..kc]);
    for (k, wk) in (0..kc).zip(panel.chunks_exact(PANEL)) {
        let w = panel_vectors::<S, NV>(s, wk, col);
        for (acc_row, x_row) in acc.iter_mut().zip(x_rows) {
            let a = s.splat(x_row[k]);
            for (c, wv) in acc_row.iter_mut().zip(w) {
                *c = s.mul_add(wv, a, *c);
            }
        }
    }
}

/// [`tile_packed`] for rows that are windows of one slice: row `m` is
/// `xs[m * step..m * step + kc]`. One base pointer instead of `MR` keeps the tile's
/// addresses in registers; with `step` a constant (after inlining) the offsets are
/// immediates and the bounds checks fold away.
#[inline(always)]
pub(crate) fn tile_packed_windows<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    xs: &[f32],
    step: usize,
    kc: usize,
    panel: &[f32],
    col: usize,
) {
    // Tap `k` reads the window `xs[k..]` (one slice per tap from the iterator: no offset
    // arithmetic or bounds check per tap beyond the iterator's own length test).
    let Some(window) = NonZeroUsize::new((MR - 1) * step + 1) else {
        return;
    };
    let taps = xs.windows(window.get()).zip(panel.chunks_exact(PANEL));
    debug_assert!(taps.len() >= kc, "a window per tap");
    for (xk, wk) in taps.take(kc) {
        let w = panel_vectors::<S, NV>(s, wk, col);
        if S::SMALL_CODE {
            small_code_step(s, acc, w, |m| s.splat(xk[m * step]));
            continue;
        }
        for (m, acc_row) in acc.iter_mut().enumerate() {
            let a = s.splat(xk[m * step]);
            for (c, wv) in acc_row.iter_mut().zip(w) {
                *c = s.mul_add(wv, a, *c);
            }
        }
    }
}

/// `acc + A B` for `A` given as `A^T` (`kc` rows of `lda` floats, from the tile's first
/// row of `A`): row `k` of `a_t` holds `A[0..MR][k]` contiguously. With `A_EDGE` fewer than
/// `MR` rows of `A` remain (`rows`): the others repeat the last (not stored by the caller).
/// `B` as in [`tile_row_major`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_transposed_a<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const A_EDGE: bool,
    const EDGE: bool,
>(
    s: S,
    mut acc: [[S::V; NV]; MR],
    a_t: &[f32],
    lda: usize,
    rows: usize,
    kc: usize,
    b: &[f32],
    ldb: usize,
    width: usize,
) -> [[S::V; NV]; MR] {
    for k in 0..kc {
        // (Out of range, which the callers exclude, the tile stops: no panic path.)
        let Some(row) = b.get(k * ldb..).and_then(|r| r.get(..width)) else {
            break;
        };
        let w = row_vectors::<S, NV, EDGE>(s, row);
        if A_EDGE {
            let Some(a) = a_t.get(k * lda..).and_then(|a| a.get(..rows)) else {
                break;
            };
            let last = a.last().copied().unwrap_or_default();
            for (m, acc_row) in acc.iter_mut().enumerate() {
                let x = s.splat(a.get(m).copied().unwrap_or(last));
                for (c, wv) in acc_row.iter_mut().zip(w) {
                    *c = s.mul_add(wv, x, *c);
                }
            }
        } else {
            let Some(a) = a_t.get(k * lda..).and_then(|a| a.get(..MR)) else {
                break;
            };
            for (acc_row, &am) in acc.iter_mut().zip(a) {
                let x = s.splat(am);
                for (c, wv) in acc_row.iter_mut().zip(w) {
                    *c = s.mul_add(wv, x, *c);
                }
            }
        }
    }
    acc
}

/// `acc + ` `MR` rows of `a` (each `kc` long) times `B`, row-major with row stride `ldb`
/// from `b[0]` (the tile's first column): `NV` whole vectors per `B` row, or with `EDGE`
/// the first `width < NV * LANES` columns (partial loads, the other lanes 0).
#[inline(always)]
pub(crate) fn tile_row_major<S: Simd, const MR: usize, const NV: usize, const EDGE: bool>(
    s: S,
    mut acc: [[S::V; NV]; MR],
    a_rows: [&[f32]; MR],
    b: &[f32],
    ldb: usize,
    width: usize,
) -> [[S::V; NV]; MR] {
    let kc = a_rows[0].len();
    // As in `tile_packed`: one check, then slicing that cannot fail (or, where code size
    // comes first, a checked read per element).
    if a_rows.iter().any(|r| r.len() < kc) {
        return acc;
    }
    let rows: [&[f32]; MR] = if S::SMALL_CODE {
        a_rows
    } else {
        slices(|m| &a_rows[m][..kc])
    };
    for k in 0..kc {
        // (Out of range, which the callers exclude, the tile stops: no panic path.)
        let Some(row) = b.get(k * ldb..).and_then(|r| r.get(..width)) else {
            break;
        };
        let w = row_vectors::<S, NV, EDGE>(s, row);
        for (acc_row, a_row) in acc.iter_mut().zip(rows) {
            let a = if S::SMALL_CODE {
                a_row.get(k).copied().unwrap_or_default()
            } else {
                a_row[k]
            };
            let a = s.splat(a);
            for (c, wv) in acc_row.iter_mut().zip(w) {
                *c = s.mul_add(wv, a, *c);
            }
        }
    }
    acc
}

/// The `NV` vectors of a `B` row (`width` floats): whole, or with `EDGE` partial ones (the
/// lanes past `width` 0).
#[inline(always)]
fn row_vectors<S: Simd, const NV: usize, const EDGE: bool>(s: S, row: &[f32]) -> [S::V; NV] {
    let mut w = [s.zero(); NV];
    if EDGE {
        for (wv, chunk) in w.iter_mut().zip(row.chunks(S::LANES)) {
            *wv = s.load_partial(chunk, 0.0);
        }
    } else if let Some(row) = row.get(..NV * S::LANES) {
        // A constant length: whole vectors at constant offsets, no check per load.
        for (wv, chunk) in w.iter_mut().zip(row.chunks_exact(S::LANES)) {
            *wv = s.load(chunk);
        }
    }
    w
}

/// `x . r[j]` for four rows `r[j]` of any stride, each exactly `x.len()` long: one row of
/// `A B^T`. Two vectors per row in flight hide the FMA latency.
#[inline(always)]
pub(crate) fn dot_1x4<S: Simd>(s: S, x: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let step = 2 * S::LANES;
    let mut acc = [[s.zero(); 4]; 2];
    let [c0, c1, c2, c3] = r.map(|row| row.chunks_exact(step));
    let mut xs = x.chunks_exact(step);
    for ((((xc, w0), w1), w2), w3) in (&mut xs).zip(c0).zip(c1).zip(c2).zip(c3) {
        let (x0, x1) = (s.load(xc), s.load(second::<S>(xc)));
        for (j, wc) in [w0, w1, w2, w3].into_iter().enumerate() {
            acc[0][j] = s.mul_add(s.load(wc), x0, acc[0][j]);
            acc[1][j] = s.mul_add(s.load(second::<S>(wc)), x1, acc[1][j]);
        }
    }
    let xt = xs.remainder();
    let tail_start = x.len() - xt.len();
    for (j, row) in r.iter().enumerate() {
        let wt = row.get(tail_start..).unwrap_or_default();
        // Up to two partial vectors: `LANES` floats, then the rest.
        let (x0, x1) = xt.split_at(S::LANES.min(xt.len()));
        let (w0, w1) = wt.split_at(S::LANES.min(wt.len()));
        let [a0, a1] = &mut acc;
        a0[j] = s.mul_add(s.load_partial(w0, 0.0), s.load_partial(x0, 0.0), a0[j]);
        a1[j] = s.mul_add(s.load_partial(w1, 0.0), s.load_partial(x1, 0.0), a1[j]);
    }
    let mut dots = [0.0; 4];
    for (j, d) in dots.iter_mut().enumerate() {
        *d = s.reduce_add(s.add(acc[0][j], acc[1][j]));
    }
    dots
}

/// The second vector of a two-vector chunk (empty if it is shorter: no panic path).
#[inline(always)]
fn second<S: Simd>(chunk: &[f32]) -> &[f32] {
    chunk.get(S::LANES..).unwrap_or_default()
}
