//! The shared matrix layer: weight panels ([`PANEL`] columns, k-major), register tiles
//! ([`tile`]), their stores and epilogues ([`store`]), the GEMM/GEMV drivers over packed or
//! strided row-major operands ([`driver`]), and the per-backend tile table ([`Blocking`]).
//! Dense layers, the pointwise and implicit-GEMM convolutions and Winograd all run on it.
//!
//! Two forms of right-hand side `B` (`k x n`):
//! - packed ([`pack_into`]): panels of [`PANEL`] columns, each a row-major `k x PANEL` block
//!   padded with zeros, streamed once per block of rows: the layout of weights;
//! - row-major with a row stride of its own ([`Mat`]), used in place: activations, a KV
//!   cache. `A B` ([`driver::gemm_nn`]) and `A B^T` ([`driver::gemm_nt`], dot products of
//!   rows) both read it without a copy.
//!
//! Every output is `bias + sum_k a_k b_k` with `k` ascending in one accumulator chain, on
//! every path, so a row's result depends neither on the batch it came in nor on the tile
//! that computed it.

pub(crate) mod driver;
pub(crate) mod store;
pub(crate) mod tile;

#[cfg(test)]
mod tests;

use crate::ops::{Activation, VecOp};
use crate::simd::Simd;

/// Output features per packed panel.
pub const PANEL: usize = 32;

/// Floats a packed `out x inp` matrix takes: `out` rounded up to whole panels, times
/// `inp` (saturating on overflow; the callers that pack check it).
pub(crate) const fn packed_len(out: usize, inp: usize) -> usize {
    out.div_ceil(PANEL)
        .saturating_mul(PANEL)
        .saturating_mul(inp)
}

/// Packs row-major `w` (`out * inp` long) into `dst` (`dense_packed_len(out, inp)` long).
/// Callers check the lengths; `const` so fixed-size weights can be packed at compile time.
pub(crate) const fn pack_into(w: &[f32], out: usize, inp: usize, dst: &mut [f32]) {
    let mut i = 0;
    while i < dst.len() {
        let (panel, rest) = (i / (PANEL * inp), i % (PANEL * inp));
        let (k, j) = (rest / PANEL, rest % PANEL);
        let o = panel * PANEL + j;
        dst[i] = if o < out { w[o * inp + k] } else { 0.0 };
        i += 1;
    }
}

/// Copies `src` into `dst` from `at` (a `const` copy).
pub(crate) const fn put(dst: &mut [f32], at: usize, src: &[f32]) {
    let mut i = 0;
    while i < src.len() {
        dst[at + i] = src[i];
        i += 1;
    }
}

/// Zeros `dst` (a `const` fill).
pub(crate) const fn zero(dst: &mut [f32]) {
    let mut i = 0;
    while i < dst.len() {
        dst[i] = 0.0;
        i += 1;
    }
}

/// A packed `B` with its epilogue: `y = act(a B + bias)` for rows `a` of `inp` floats.
#[derive(Clone, Copy)]
pub(crate) struct Layer<'a> {
    /// [`pack_into`]'s panels, `out.div_ceil(PANEL) * PANEL * inp` floats.
    pub(crate) packed: &'a [f32],
    pub(crate) out: usize,
    pub(crate) inp: usize,
    pub(crate) bias: Option<&'a [f32]>,
    pub(crate) act: Activation,
}

/// A row-major matrix view with a row stride of its own: row `i` is
/// `data[i * stride..][..cols]` (`stride >= cols`; `data` may end right after the last row).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) stride: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous `rows x cols` matrix.
    pub(crate) fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            stride: cols,
        }
    }

    /// Row `i`, exactly `cols` long (empty if out of range, which the callers' checks
    /// exclude: a panic-free fallback).
    #[inline(always)]
    pub(crate) fn row(&self, i: usize) -> &'a [f32] {
        driver::row_at(self.data, i * self.stride, self.cols)
    }
}

/// The mutable counterpart of [`Mat`] (its rows are those of the operation's `A`).
pub(crate) struct MatMut<'a> {
    pub(crate) data: &'a mut [f32],
    pub(crate) cols: usize,
    pub(crate) stride: usize,
}

impl<'a> MatMut<'a> {
    /// A contiguous `rows x cols` matrix.
    pub(crate) fn dense(data: &'a mut [f32], cols: usize) -> Self {
        MatMut {
            data,
            cols,
            stride: cols,
        }
    }

    /// Row `i`, exactly `cols` long (empty if out of range, as [`Mat::row`]).
    #[inline(always)]
    pub(crate) fn row(&mut self, i: usize) -> &mut [f32] {
        let cols = self.cols;
        self.data
            .get_mut(i * self.stride..)
            .and_then(|d| d.get_mut(..cols))
            .unwrap_or_default()
    }
}

/// Per-backend register blocking of the GEMM layer. Accumulators: GEMM `MR x NV` vectors,
/// GEMV `PG x NV`, the transposed-`A` GEMM `tn`'s `MR x NV`. `NV * LANES` divides
/// [`PANEL`].
pub(crate) trait Blocking: Simd {
    const GEMM_MR: usize;
    /// The packed GEMM in tiles of `GEMM_MR` rows, or with `TAIL` of a shorter tile for the
    /// rows after the last whole block.
    fn gemm_rows<const TAIL: bool>(
        self,
        layer: Layer<'_>,
        op: impl VecOp<Self>,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
    );
    /// The packed GEMV.
    fn gemv(self, layer: Layer<'_>, op: impl VecOp<Self>, x: &[f32], y: &mut [f32]);
    /// `C (+)= A B` with row-major `B` ([`driver::gemm_nn`]).
    fn gemm_nn(self, a: Mat<'_>, b: Mat<'_>, c: MatMut<'_>, accumulate: bool);
    /// `C (+)= A B` with `A` given transposed ([`driver::gemm_tn`]).
    fn gemm_tn(self, a_t: Mat<'_>, b: Mat<'_>, c: MatMut<'_>, accumulate: bool);
}

macro_rules! blocking {
    ($token:ty, mr: $mr:literal, mr_tail: $mrt:literal, nv: $nv:literal, gemv_nv: $gnv:literal, gemv_panels: $gpg:literal, tn: ($tmr:literal, $tnv:literal)) => {
        impl Blocking for $token {
            const GEMM_MR: usize = $mr;
            #[inline(always)]
            fn gemm_rows<const TAIL: bool>(
                self,
                layer: Layer<'_>,
                op: impl VecOp<Self>,
                x: &[f32],
                rows: usize,
                y: &mut [f32],
            ) {
                if TAIL {
                    driver::gemm_packed::<Self, $mrt, $nv>(self, layer, op, x, rows, y)
                } else {
                    driver::gemm_packed::<Self, $mr, $nv>(self, layer, op, x, rows, y)
                }
            }
            #[inline(always)]
            fn gemv(self, layer: Layer<'_>, op: impl VecOp<Self>, x: &[f32], y: &mut [f32]) {
                driver::gemv_packed::<Self, $gnv, $gpg>(self, layer, op, x, y)
            }
            #[inline(always)]
            fn gemm_nn(self, a: Mat<'_>, b: Mat<'_>, c: MatMut<'_>, accumulate: bool) {
                driver::gemm_nn::<Self, $mr, $nv>(self, a, b, c, accumulate)
            }
            #[inline(always)]
            fn gemm_tn(self, a_t: Mat<'_>, b: Mat<'_>, c: MatMut<'_>, accumulate: bool) {
                driver::gemm_tn::<Self, $tmr, $tnv>(self, a_t, b, c, accumulate)
            }
        }
    };
}
// 32 registers: GEMM 12 x 2 zmm accumulators, 2 weight vectors, broadcasts from memory;
// 2-5 rows left after the last block of 12 take 4-row tiles (64 rows: 5 x 12 + 4).
#[cfg(simdnn_avx512)]
blocking!(crate::simd::Avx512, mr: 12, mr_tail: 4, nv: 2, gemv_nv: 2, gemv_panels: 4, tn: (8, 2));
// 16 registers: 6 x 2 ymm accumulators, 2 weight vectors, 1 broadcast. A 6 x 16 tile with
// its broadcasts runs at 98% of the FMA peak in isolation (measured with inline asm).
#[cfg(simdnn_avx2)]
blocking!(crate::simd::Avx2, mr: 6, mr_tail: 3, nv: 2, gemv_nv: 4, gemv_panels: 2, tn: (4, 2));
// 32 registers: 3 x 8 q accumulators and 8 weight vectors. (With `mr` 2 or 3 a tail is one
// row or at least half a block, so NEON and scalar never run their `mr_tail` tile.)
#[cfg(simdnn_neon)]
blocking!(crate::simd::Neon, mr: 3, mr_tail: 2, nv: 8, gemv_nv: 8, gemv_panels: 1, tn: (6, 4));
// Cortex-M4F has 32 single registers: 2 x 8 accumulators.
blocking!(crate::simd::Scalar, mr: 2, mr_tail: 2, nv: 8, gemv_nv: 8, gemv_panels: 1, tn: (2, 8));
