//! The SIMD abstraction kernel bodies are written against, once for every backend.
//!
//! A backend is a zero-sized token type implementing [`Simd`]. Holding a token proves the
//! CPU supports its instructions (the AVX tokens can only be built inside
//! `#[target_feature]` code), so the trait's methods are safe to call. Kernels are generic
//! `#[inline(always)]` functions `fn k<S: Simd>(s: S, ..)`, entered through
//! a module that [`crate::engine::kernel_entry`] defines beside each kernel, holding one
//! copy per backend.

#[cfg(any(simdnn_avx2, simdnn_avx512))]
mod exp_table;
mod scalar;
mod unroll;
#[cfg(any(simdnn_avx2, simdnn_avx512))]
pub(crate) use exp_table::ExpTable;
pub(crate) use scalar::Scalar;
pub(crate) use unroll::{X4, each};

#[cfg(simdnn_avx2)]
mod avx2;
#[cfg(simdnn_avx2)]
pub(crate) use avx2::Avx2;

#[cfg(simdnn_avx512)]
mod avx512;
#[cfg(simdnn_avx512)]
pub(crate) use avx512::Avx512;

#[cfg(simdnn_neon)]
mod neon;
#[cfg(simdnn_neon)]
pub(crate) use neon::Neon;

/// The widest backend's lanes (AVX-512): an array of this many lane indices or floats
/// covers a vector of any backend.
pub(crate) const MAX_LANES: usize = 16;

/// One SIMD instruction set: a vector of `LANES` f32 and the operations kernels need.
///
/// Conventions every backend follows:
/// - `min(a, b)` / `max(a, b)` return `b` when the comparison is false, so a NaN in `b`
///   propagates (NEON also propagates a NaN in `a`). Kernels put the data in `b`.
/// - Loads and stores never touch memory outside the slice they are given.
pub(crate) trait Simd: Copy {
    /// A vector of `LANES` f32.
    type V: Copy;
    /// The result of a lane-wise comparison.
    type M: Copy;
    /// Number of f32 lanes.
    const LANES: usize;
    /// Whether code size comes before speed: the scalar backend on targets without an
    /// operating system (microcontrollers, where flash is counted in kilobytes). Kernels
    /// then keep one copy of a loop where the desktop has one per epilogue or unrolling.
    const SMALL_CODE: bool = false;

    fn splat(self, x: f32) -> Self::V;
    /// Loads the first `LANES` elements; `src` must have at least that many.
    fn load(self, src: &[f32]) -> Self::V;
    /// Loads `src.len() < LANES` elements; the other lanes are `fill`.
    fn load_partial(self, src: &[f32], fill: f32) -> Self::V;
    /// Stores all lanes into the first `LANES` elements of `dst`.
    fn store(self, v: Self::V, dst: &mut [f32]);
    /// Stores the first `dst.len() < LANES` lanes.
    fn store_partial(self, v: Self::V, dst: &mut [f32]);

    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, fused where the backend has FMA.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c - a * b`, fused where the backend has FMA.
    fn neg_mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a * b - c`, fused where the backend has FMA.
    fn mul_sub(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `-|a|`: the sign bit set (one bitwise op; NaN stays NaN).
    fn neg_abs(self, a: Self::V) -> Self::V;
    /// `a` with its sign flipped where `b`'s sign bit is clear (`-a * sign(b)` for `a <= 0`).
    fn flip_sign_if_positive(self, a: Self::V, b: Self::V) -> Self::V;
    /// `x` with the lanes where `|x| < tiny` set to +0 (NaN lanes kept): taken before the
    /// first multiplication of the vector math, so that neither a subnormal input nor the
    /// underflow of a tiny one's square costs a microcode assist (on x86 each is 100+ cycles
    /// whenever flush-to-zero is off, which is every caller's default). Only bitwise ops
    /// and a comparison, which run at full speed on subnormals.
    fn zero_tiny(self, x: Self::V, tiny: Self::V) -> Self::V;
    /// `x` with its magnitude raised to at least `tiny` (the sign kept, NaN kept): for a
    /// function that is constant below `tiny`, the cheaper sibling of [`Simd::zero_tiny`]
    /// (two integer `max` on the bit patterns).
    fn lift_tiny(self, x: Self::V, tiny: Self::V) -> Self::V;
    /// The bit pattern shifted left by 23: moves a small integer held in the low mantissa
    /// bits into the exponent field.
    fn shl23(self, a: Self::V) -> Self::V;
    /// `2^n (1 + p)` for integer-valued `n` in `[-124, 128]`, given `t = n + EXP_MAGIC`
    /// (see `vmath::reduce`), whose low bits hold the biased exponent of `2^(n-1)`, and
    /// `|p| < 0.42`: `2 (h + h p)` with `h = 2^(n-1)`, one rounding. Halving first keeps
    /// `n = 128` finite; `n >= -124` keeps `h + h p` normal. (AVX-512 and AVX2 use a table instead.)
    #[inline(always)]
    fn exp_scale(self, p: Self::V, n: Self::V, t: Self::V) -> Self::V {
        let _ = n;
        let h = self.shl23(t);
        self.mul(self.mul_add(h, p, h), self.splat(2.0))
    }
    /// `1 / a` within 1 ulp (exact division, or a refined estimate on AVX-512).
    fn recip(self, a: Self::V) -> Self::V;
    /// `a / b` within 1 ulp (exact division, or a refined estimate on AVX-512).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane `l` of the result is lane `idx[l] % LANES` of `v` (the rest of `idx` unused).
    fn permute(self, v: Self::V, idx: &[u32; MAX_LANES]) -> Self::V;
    /// Lane-wise `a < b` (false for NaN).
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lane-wise `if m { a } else { b }`.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// `y` with the lanes where `x < lo` set to +0 (a NaN `x` keeps `y`): what
    /// `select(lt(x, lo), zero, y)` computes, as one and-not (AVX2, NEON) or as a zero mask
    /// that folds into the instruction producing `y` (AVX-512).
    #[inline(always)]
    fn zero_below(self, x: Self::V, lo: Self::V, y: Self::V) -> Self::V {
        self.select(self.lt(x, lo), self.zero(), y)
    }
    /// Sum of the lanes, in a fixed order per backend.
    fn reduce_add(self, a: Self::V) -> f32;
    /// Maximum of the lanes.
    fn reduce_max(self, a: Self::V) -> f32;

    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }
}
