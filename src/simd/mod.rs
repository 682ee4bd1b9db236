//! The SIMD abstraction kernel bodies are written against, once for every backend.
//!
//! A backend is a zero-sized token type implementing [`Simd`]. Holding a token proves the
//! CPU supports its instructions (the AVX tokens can only be built inside
//! `#[target_feature]` code), so the trait's methods are safe to call. Kernels are generic
//! `#[inline(always)]` functions `fn k<S: Simd>(s: S, ..)`, entered through
//! a module that [`crate::dispatch::kernel_entry`] defines beside each kernel, holding one
//! copy per backend.

mod scalar;
mod unroll;
pub(crate) use scalar::Scalar;
pub(crate) use unroll::X4;

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
    /// (see `math::reduce`), whose low bits hold the biased exponent of `2^(n-1)`, and
    /// `|p| < 0.42`: `2 (h + h p)` with `h = 2^(n-1)`, one rounding. Halving first keeps
    /// `n = 128` finite; `n >= -124` keeps `h + h p` normal. (AVX-512 and AVX2 use `math::exp_table`.)
    #[inline(always)]
    fn exp_scale(self, p: Self::V, n: Self::V, t: Self::V) -> Self::V {
        let _ = n;
        let h = self.shl23(t);
        self.mul(self.mul_add(h, p, h), self.splat(2.0))
    }
    /// Whether `exp` must clamp its argument below at `math::EXP_LO` (lanes under it are
    /// zeroed at the end either way): the shared polynomial and AVX2 build `2^n` from the
    /// exponent bits, which wrap (often into a subnormal) for very negative `n`. AVX-512's
    /// `vscalefps` never computes those lanes: the zero mask folds into it.
    const CLAMP_EXP_BELOW: bool = true;
    /// `e^x` from `arg`, which is `x` prepared by `math::exp` (clamped, tiny magnitudes
    /// raised; `x` itself only chooses the lanes that are 0): the shared polynomial, or a
    /// backend's own version with the same contract.
    #[inline(always)]
    fn exp_of(self, x: Self::V, arg: Self::V) -> Self::V {
        crate::math::exp_poly(self, x, arg)
    }
    /// `sigmoid(x)` (see `math::sigmoid`), as [`Simd::exp`].
    #[inline(always)]
    fn sigmoid(self, x: Self::V) -> Self::V {
        crate::math::sigmoid_poly(self, x)
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

/// A lane-wise operation passed to [`map`] and [`map_in_place`].
///
/// Kernels use this instead of closures: a closure's body is compiled without the
/// `#[target_feature]`s of the kernel that calls it, so LLVM could not inline the
/// intrinsics inside it. `#[inline(always)]` trait methods have no such problem.
/// A backend with a table-driven `exp` ([`crate::math::exp_table`]): `2^(j/N)`, `N = 2^BITS`,
/// looked up in one register.
#[cfg(any(simdnn_avx2, simdnn_avx512))]
pub(crate) trait ExpTable: Simd {
    /// log2 of the number of table entries.
    const BITS: u32;
    /// `2^k` for `k = n + j/N` with `n` in [-126, 126]; `t` is the rounding sum that holds
    /// `j` in its low `BITS` bits.
    fn exp2(self, t: Self::V, k: Self::V) -> Self::V;
    /// `2^k (1 + p)` for `|p| < 0.05` and `n` in [-125, 128]: +inf only where the product
    /// overflows.
    fn exp2_one_plus(self, t: Self::V, k: Self::V, p: Self::V) -> Self::V;
}

pub(crate) trait VecOp<S: Simd>: Copy {
    fn apply(self, s: S, v: S::V) -> S::V;
}

/// `v` unchanged: the epilogue of a kernel without activation, with no `match` left.
#[derive(Clone, Copy)]
pub(crate) struct Unchanged;
impl<S: Simd> VecOp<S> for Unchanged {
    #[inline(always)]
    fn apply(self, _: S, v: S::V) -> S::V {
        v
    }
}

/// `max(v, 0)`, for the same reason.
#[derive(Clone, Copy)]
pub(crate) struct Relu;
impl<S: Simd> VecOp<S> for Relu {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.max(s.zero(), v)
    }
}

/// `v * factor` (the splat is hoisted out of the loop).
#[derive(Clone, Copy)]
pub(crate) struct Scale(pub f32);
impl<S: Simd> VecOp<S> for Scale {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.mul(v, s.splat(self.0))
    }
}

/// `(v - a) - b`.
#[derive(Clone, Copy)]
pub(crate) struct SubSub(pub f32, pub f32);
impl<S: Simd> VecOp<S> for SubSub {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.sub(s.sub(v, s.splat(self.0)), s.splat(self.1))
    }
}

/// `y[i] = op(x[i])`: four vectors at a time through [`X4`], then single vectors, then a
/// partial tail. The caller guarantees `x.len() == y.len()`.
#[inline(always)]
pub(crate) fn map<S: Simd, Op: VecOp<S> + VecOp<X4<S>>>(s: S, x: &[f32], y: &mut [f32], op: Op) {
    let wide = X4(s);
    let mut xs = x.chunks_exact(X4::<S>::LANES);
    let mut ys = y.chunks_exact_mut(X4::<S>::LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        wide.store(op.apply(wide, wide.load(xc)), yc);
    }
    let mut xs = xs.remainder().chunks_exact(S::LANES);
    let mut ys = ys.into_remainder().chunks_exact_mut(S::LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        s.store(op.apply(s, s.load(xc)), yc);
    }
    let (xt, yt) = (xs.remainder(), ys.into_remainder());
    if !yt.is_empty() {
        s.store_partial(op.apply(s, s.load_partial(xt, 0.0)), yt);
    }
}

/// `x[i] = op(x[i])`, as [`map`].
#[inline(always)]
pub(crate) fn map_in_place<S: Simd, Op: VecOp<S> + VecOp<X4<S>>>(s: S, x: &mut [f32], op: Op) {
    let wide = X4(s);
    let mut chunks = x.chunks_exact_mut(X4::<S>::LANES);
    for c in &mut chunks {
        wide.store(op.apply(wide, wide.load(c)), c);
    }
    let mut chunks = chunks.into_remainder().chunks_exact_mut(S::LANES);
    for c in &mut chunks {
        s.store(op.apply(s, s.load(c)), c);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        s.store_partial(op.apply(s, s.load_partial(tail, 0.0)), tail);
    }
}
