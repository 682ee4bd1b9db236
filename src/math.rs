//! Vector `exp`, `tanh`, `sigmoid`, `gelu` and `silu`, written once for every backend.
//!
//! `exp` uses Cody–Waite reduction `x = n ln 2 + r`, `|r| <= ln2/2`, and
//! `e^r = 1 + r + r^2 Q(r)` with a degree-4 `Q` fitted (weighted minimax, f32 coefficients)
//! to 0.06 ulp; `expm1` shares the polynomial, `tanh` is `-e / (2 + e)` with
//! `e = expm1(-2|x|)`, `sigmoid` is `1 / (1 + exp(-x))`. The measured maximum errors over
//! every f32 input are in the crate documentation and checked by `tests/ulp.rs`.
//!
//! Nothing here produces a subnormal: results that would be subnormal are flushed to zero
//! by a comparison instead (the caller's FTZ/DAZ flags are never read or changed).

use crate::simd::Simd;

/// Below this, `exp` returns exactly 0: just above -125.5 ln 2, where `n` would leave the
/// range of `mul_pow2` (the true value is below 2.4e-38, next to the subnormals).
pub(crate) const EXP_LO: f32 = -86.98;
/// At and above this, `exp` is +inf: the f32 just above ln(f32::MAX).
const EXP_HI: f32 = f32::from_bits(0x42B1_7218); // 88.72284
const LOG2E: f32 = core::f32::consts::LOG2_E;
/// ln 2 split so that `n * LN2_HI` is exact for |n| <= 2^15.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Q(r) ~ (e^r - 1 - r) / r^2 on [-ln2/2, ln2/2].
const Q: [f32; 5] = [
    f32::from_bits(0x3EFF_FFFE),
    f32::from_bits(0x3E2A_AA49),
    f32::from_bits(0x3D2A_AC79),
    f32::from_bits(0x3C09_1D00),
    f32::from_bits(0x3AB5_1202),
];

/// Below this |x|, `tanh(x)` rounds to `x`.
const TANH_TINY: f32 = 1.0 / 8192.0;
/// Above this |x|, `tanh(x)` rounds to ±1.
const TANH_SATURATE: f32 = 9.1;
/// Below this, `sigmoid` returns 0 (keeps `1 + exp(-x)` finite and the result normal).
const SIGMOID_LO: f32 = -87.0;
/// sqrt(2/pi) doubled (gelu's tanh form rewritten as a sigmoid) and times 0.044715.
const GELU_K1: f32 = 1.595_769;
const GELU_K3: f32 = 0.071_354_82;

/// Adding this rounds to an integer `n` (the ulp of 1.5 * 2^23 is 1) and leaves `126 + n`
/// in the low mantissa bits, the biased exponent of `2^(n-1)`.
const EXP_MAGIC: f32 = 12_582_912.0 + 126.0;

/// Splits `x` (within [-125.5, 128] ln 2) into `x = n ln 2 + r`, `|r| <= ln2/2`; returns
/// `(n, r, t)` with `t = n + EXP_MAGIC` for [`Simd::mul_pow2`].
#[inline(always)]
fn reduce<S: Simd>(s: S, x: S::V) -> (S::V, S::V, S::V) {
    let t = s.mul_add(x, s.splat(LOG2E), s.splat(EXP_MAGIC));
    let n = s.sub(t, s.splat(EXP_MAGIC));
    let r = s.neg_mul_add(n, s.splat(LN2_HI), x);
    (n, s.neg_mul_add(n, s.splat(LN2_LO), r), t)
}

/// `e^r - 1` for |r| <= ln2/2, accurate relative to the result. Estrin's scheme: the
/// dependency chain is 4 operations deep instead of Horner's 6, which is what limits
/// throughput when a whole tanh is one chain.
#[inline(always)]
fn expm1_reduced<S: Simd>(s: S, r: S::V) -> S::V {
    let r2 = s.mul(r, r);
    let lo = s.mul_add(s.splat(Q[1]), r, s.splat(Q[0]));
    let hi = s.mul_add(s.splat(Q[3]), r, s.splat(Q[2]));
    let hi = s.mul_add(s.splat(Q[4]), r2, hi);
    let q = s.mul_add(hi, r2, lo);
    s.mul_add(r2, q, r)
}

/// `e^x`; 0 below [`EXP_LO`], +inf above ln(f32::MAX), NaN for NaN.
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    let lo = s.splat(EXP_LO);
    let clamped = s.max(lo, s.min(s.splat(EXP_HI), x));
    let (n, r, t) = reduce(s, clamped);
    let y = s.mul_pow2(s.add(s.splat(1.0), expm1_reduced(s, r)), n, t);
    s.select(s.lt(x, lo), s.zero(), y)
}

/// `e^x - 1` for x in [-19, 0], accurate relative to the result near 0.
#[inline(always)]
fn expm1_negative<S: Simd>(s: S, x: S::V) -> S::V {
    let (n, r, t) = reduce(s, x);
    let scale = s.mul_pow2(s.splat(1.0), n, t);
    // 2^n (e^r - 1) + (2^n - 1); 2^n - 1 is exact for the n in range.
    s.mul_add(scale, expm1_reduced(s, r), s.sub(scale, s.splat(1.0)))
}

/// `tanh(x)`; exactly `x` for |x| < 2^-13 (subnormals included), ±1 past ±9.1.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let ax = s.abs(x);
    let clamped = s.min(s.splat(TANH_SATURATE), s.max(s.splat(TANH_TINY), ax));
    let e = expm1_negative(s, s.mul(s.splat(-2.0), clamped));
    // tanh|x| = (1 - e^-2|x|) / (1 + e^-2|x|) = -e / (2 + e)
    let t = s.mul(s.sub(s.zero(), e), s.recip(s.add(s.splat(2.0), e)));
    s.select(s.lt(ax, s.splat(TANH_TINY)), x, s.copysign(t, x))
}

/// `1 / (1 + e^-x)`; 0 below -87 (the true value is below 1.7e-38).
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    let lo = s.splat(SIGMOID_LO);
    let e = exp(s, s.sub(s.zero(), s.max(lo, x)));
    let y = s.recip(s.add(s.splat(1.0), e));
    s.select(s.lt(x, lo), s.zero(), y)
}

/// GELU, tanh form (PyTorch `approximate="tanh"`), computed as
/// `x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`.
#[inline(always)]
pub(crate) fn gelu<S: Simd>(s: S, x: S::V) -> S::V {
    let x2 = s.mul(x, x);
    let z = s.mul(x, s.mul_add(x2, s.splat(GELU_K3), s.splat(GELU_K1)));
    s.mul(x, sigmoid(s, z))
}

/// SiLU / swish: `x * sigmoid(x)`.
#[inline(always)]
pub(crate) fn silu<S: Simd>(s: S, x: S::V) -> S::V {
    s.mul(x, sigmoid(s, x))
}
