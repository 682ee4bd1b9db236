//! Vector `exp`, `tanh`, `sigmoid`, `gelu` and `silu`, written once for every backend.
//!
//! `exp` uses Cody–Waite reduction `x = n ln 2 + r`, `|r| <= ln2/2`, and
//! `e^r = 1 + r + r^2 Q(r)` with a degree-4 `Q` fitted (weighted minimax, f32 coefficients)
//! to 0.06 ulp; `expm1` shares the polynomial, `tanh` is `-e / (2 + e)` with
//! `e = expm1(-2|x|)`, `sigmoid` is `1 / (1 + exp(-x))`. AVX-512 and AVX2 compute `exp`
//! and `sigmoid` from a table of `2^(j/16)` (AVX2: `2^(j/8)`, see `exp_table`): two
//! FMA-port operations fewer per vector, which is what bounds them there. The measured
//! maximum errors over every f32 input are in the crate documentation and checked by
//! `tests/ulp.rs`.
//!
//! Nothing here produces a subnormal, and no multiplication sees one: results that would be
//! subnormal are flushed to zero by a comparison instead, and inputs below [`TINY`] in
//! magnitude are raised to it before the first multiplication ([`Simd::lift_tiny`]), where
//! `exp` and `sigmoid` give 1 and 1/2 either way; `tanh` returns such `x` itself. On x86 every
//! subnormal operand or result of a multiply costs a microcode assist of 100+ cycles
//! whenever flush-to-zero is off (the default, and the caller's flags are never read or
//! changed): before this, `tanh` of inputs below 1e-17 ran 50-90x slower.

use crate::simd::{Scalar, Simd, X4, each};

#[cfg(any(simdnn_avx2, simdnn_avx512))]
mod table;

/// A backend's vector `exp` and `sigmoid`: the polynomial versions of this module unless
/// the backend has a faster one with the same contract (AVX-512 and AVX2: [`table`]).
/// Kernels that apply an activation take `S: VecMath`.
pub(crate) trait VecMath: Simd {
    /// Whether [`exp`] must clamp its argument below at [`EXP_LO`] (lanes under it are
    /// zeroed at the end either way): the polynomial and AVX2 build `2^n` from the exponent
    /// bits, which wrap (often into a subnormal) for very negative `n`. AVX-512's
    /// `vscalefps` never computes those lanes: the zero mask folds into it.
    const CLAMP_EXP_BELOW: bool = true;
    /// `e^x` from `arg`, which is `x` prepared by [`exp`] (clamped, tiny magnitudes raised;
    /// `x` itself only chooses the lanes that are 0).
    #[inline(always)]
    fn exp_of(self, x: Self::V, arg: Self::V) -> Self::V {
        exp_poly(self, x, arg)
    }
    /// [`sigmoid`].
    #[inline(always)]
    fn sigmoid(self, x: Self::V) -> Self::V {
        sigmoid_poly(self, x)
    }
}

impl VecMath for Scalar {}

#[cfg(simdnn_neon)]
impl VecMath for crate::simd::Neon {}

#[cfg(simdnn_avx2)]
impl VecMath for crate::simd::Avx2 {
    #[inline(always)]
    fn exp_of(self, x: Self::V, arg: Self::V) -> Self::V {
        table::exp(self, x, arg)
    }
    #[inline(always)]
    fn sigmoid(self, x: Self::V) -> Self::V {
        table::sigmoid(self, x)
    }
}

#[cfg(simdnn_avx512)]
impl VecMath for crate::simd::Avx512 {
    const CLAMP_EXP_BELOW: bool = false;
    #[inline(always)]
    fn exp_of(self, x: Self::V, arg: Self::V) -> Self::V {
        table::exp(self, x, arg)
    }
    #[inline(always)]
    fn sigmoid(self, x: Self::V) -> Self::V {
        table::sigmoid(self, x)
    }
}

/// Four independent chains emitted side by side (see [`X4`]).
impl<S: VecMath> VecMath for X4<S> {
    const CLAMP_EXP_BELOW: bool = S::CLAMP_EXP_BELOW;
    #[inline(always)]
    fn exp_of(self, x: Self::V, arg: Self::V) -> Self::V {
        each!(i => self.0.exp_of(x[i], arg[i]))
    }
    #[inline(always)]
    fn sigmoid(self, x: Self::V) -> Self::V {
        each!(i => self.0.sigmoid(x[i]))
    }
}

/// Inputs of smaller magnitude are raised to it: `e^x` and `sigmoid(x)`
/// round to 1 and 1/2 below 2^-25, and `tanh(x)` to `x` below 2^-13; above it, no square or
/// product of the reductions comes near the subnormals (`r^2 >= 2^-60`).
pub(crate) const TINY: f32 = f32::from_bits((127 - 30) << 23);
/// The smallest magnitude whose half is normal: `silu` and `gelu` flush smaller inputs,
/// whose results (about `x / 2`) would be subnormal.
const HALF_NORMAL: f32 = f32::from_bits((127 - 125) << 23);

/// Below this, `exp` returns exactly 0: just above -125 ln 2, so that `2^(n-1) e^r` is
/// never subnormal (the true value is below 2.4e-38, next to the subnormals).
pub(crate) const EXP_LO: f32 = -86.64;
/// At and above this, `exp` is +inf: the f32 just above ln(f32::MAX).
pub(crate) const EXP_HI: f32 = f32::from_bits(0x42B1_7218); // 88.72284
pub(crate) const LOG2E: f32 = core::f32::consts::LOG2_E;
/// ln 2 split so that `n * LN2_HI` is exact for |n| <= 2^15.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// `x` clamped to `[lo, hi]` with its magnitude raised to [`TINY`]: the argument of `exp`
/// and `sigmoid`, whose results are 0 (replaced by a comparison at the end), saturated, or
/// 1 and 1/2 outside. Every lane then takes the normal-number path: unclamped, a very
/// negative `x` built its scale `2^n` from wrapped exponent bits (a subnormal often, each a
/// 100-cycle assist: sigmoid of inputs in [-200, 200] ran 7x slower on the scalar backend).
/// NaN stays NaN (the data is the second operand of `min` and `max`).
#[inline(always)]
pub(crate) fn clamp<S: Simd>(s: S, x: S::V, lo: f32, hi: f32) -> S::V {
    let lifted = s.lift_tiny(x, s.splat(TINY));
    // `lo` is a constant after inlining: no instruction for an unbounded one.
    let above = if lo == f32::NEG_INFINITY {
        lifted
    } else {
        s.max(s.splat(lo), lifted)
    };
    s.min(s.splat(hi), above)
}

/// Q(r) ~ (e^r - 1 - r) / r^2 on [-ln2/2, ln2/2].
const Q: [f32; 5] = [
    f32::from_bits(0x3EFF_FFFE),
    f32::from_bits(0x3E2A_AA49),
    f32::from_bits(0x3D2A_AC79),
    f32::from_bits(0x3C09_1D00),
    f32::from_bits(0x3AB5_1202),
];

/// Above this |x|, `tanh(x)` rounds to ±1.
const TANH_SATURATE: f32 = 9.1;
/// Below this, `sigmoid` returns 0 (keeps `1 + exp(-x)` finite and the result normal).
pub(crate) const SIGMOID_LO: f32 = -87.0;
/// Above this, `sigmoid` is exactly 1 (from about 17.3 up); clamping here rather than near
/// 87 keeps `2^n p` normal even where it is not fused into an FMA (the scalar backend).
pub(crate) const SIGMOID_HI: f32 = 20.0;
/// sqrt(2/pi) doubled (gelu's tanh form rewritten as a sigmoid) and times 0.044715.
const GELU_K1: f32 = 1.595_769;
const GELU_K3: f32 = 0.071_354_82;

/// Adding this rounds to an integer `n` (the ulp of 1.5 * 2^23 is 1) and leaves `126 + n`
/// in the low mantissa bits: [`Simd::shl23`] of the sum is `2^(n-1)`.
const EXP_MAGIC: f32 = 12_582_912.0 + 126.0;
/// As [`EXP_MAGIC`] with `127 + n`: [`Simd::shl23`] of the sum is `2^n` itself, for the
/// `n` in [-126, 127] of `tanh` and `sigmoid`.
const SCALE_MAGIC: f32 = 12_582_912.0 + 127.0;
/// ln 2 rounded to f32 (1.9e-9 too large), for the one-constant reduction of `tanh`.
const LN2: f32 = core::f32::consts::LN_2;

/// Splits `x` into `x = n ln 2 + r`, `|r| <= ln2/2`; returns `(n, r, t)` with
/// `t = n + EXP_MAGIC`. Garbage (never a trap) for `x` below -125.5 ln 2: `exp` replaces
/// those lanes.
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
    expm1_estrin::<S, false, 0>(s, r)
}

/// `e^-u - 1`: [`expm1_reduced`] of `-u`, bit for bit, with the sign folded into the odd
/// coefficients and the last FMA instead of negating `u` on the chain.
#[inline(always)]
fn expm1_reduced_of_neg<S: Simd>(s: S, u: S::V) -> S::V {
    expm1_estrin::<S, true, 0>(s, u)
}

/// `(e^(2h) - 1) / 2` for |h| <= ln2/4: [`expm1_reduced`] of `2h`, halved, bit for bit (every
/// coefficient is scaled by a power of two), without forming `2h`.
#[inline(always)]
fn expm1_half<S: Simd>(s: S, h: S::V) -> S::V {
    expm1_estrin::<S, false, 1>(s, h)
}

/// Estrin's scheme for `(e^(2^K v) - 1) / 2^K` (`e^(-2^K v)` with `NEG`): the polynomial of
/// [`Q`] with coefficient `k` scaled by `2^(K (k + 1))`, exact for the small `K` used.
#[inline(always)]
fn expm1_estrin<S: Simd, const NEG: bool, const K: i32>(s: S, v: S::V) -> S::V {
    let c = |k: usize| {
        let c = Q[k] * f32::from_bits(((127 + K * (k as i32 + 1)) as u32) << 23);
        if NEG && k % 2 == 1 { -c } else { c }
    };
    let v2 = s.mul(v, v);
    let lo = s.mul_add(s.splat(c(1)), v, s.splat(c(0)));
    let hi = s.mul_add(s.splat(c(3)), v, s.splat(c(2)));
    let hi = s.mul_add(s.splat(c(4)), v2, hi);
    let q = s.mul_add(hi, v2, lo);
    if NEG {
        s.mul_sub(v2, q, v)
    } else {
        s.mul_add(v2, q, v)
    }
}

/// `e^x`; 0 below [`EXP_LO`], +inf above ln(f32::MAX), NaN for NaN: [`VecMath::exp_of`], which
/// is [`exp_poly`] except on AVX-512 and AVX2 (table-driven versions with the same contract).
#[inline(always)]
pub(crate) fn exp<S: VecMath>(s: S, x: S::V) -> S::V {
    let lo = if S::CLAMP_EXP_BELOW {
        EXP_LO
    } else {
        f32::NEG_INFINITY
    };
    s.exp_of(x, clamp(s, x, lo, EXP_HI))
}

/// [`exp`] of `x <= 0` (or NaN), as softmax takes it (`x - max`): the argument needs no
/// upper clamp, and raising its tiny magnitudes is one `min` (±0 and tiny negatives become
/// `-TINY`, whose exponential is 1 as theirs is), not [`Simd::lift_tiny`]'s two operations.
#[inline(always)]
pub(crate) fn exp_nonpositive<S: VecMath>(s: S, x: S::V) -> S::V {
    let arg = s.min(s.splat(-TINY), x);
    let arg = if S::CLAMP_EXP_BELOW {
        s.max(s.splat(EXP_LO), arg)
    } else {
        arg
    };
    s.exp_of(x, arg)
}

/// [`exp`] by polynomial: `e^x = 2^n (1 + p)`, `p = e^r - 1`, scaled by
/// [`Simd::exp_scale`], from the prepared argument `xc` (clamped below at `EXP_LO`, whose
/// lanes are replaced at the end).
#[inline(always)]
fn exp_poly<S: Simd>(s: S, x: S::V, xc: S::V) -> S::V {
    let lo = s.splat(EXP_LO);
    let (n, r, t) = reduce(s, xc);
    let y = s.exp_scale(expm1_reduced(s, r), n, t);
    s.zero_below(x, lo, y)
}

/// [`exp`] of one value, for per-row factors (the same bits as a lane of the vector form).
#[inline(always)]
pub(crate) fn exp_scalar<S: VecMath>(s: S, x: f32) -> f32 {
    s.reduce_max(exp(s, s.splat(x)))
}

/// `tanh(x)`; ±1 past ±9.1, `x` itself below [`TINY`], NaN for NaN.
///
/// `-tanh|x| = e / (2 + e)` with `e = e^(-2|x|) - 1 = 2^n p + (2^n - 1)`, `p = e^r - 1`; the
/// numerator and denominator are two independent FMAs on `p`, so the chain after the
/// polynomial is one FMA and the divide. A one-constant reduction is enough here (its error
/// `n (ln 2 - LN2)` is damped by `e^(-2|x|)`). `|x|` is clamped to `[TINY, 9.1]`, and the
/// result's magnitude is at most `|x|` (`tanh|x| <= |x|`): that returns tiny and subnormal
/// `x` unchanged without ever multiplying them.
#[inline(always)]
pub(crate) fn tanh<S: VecMath>(s: S, x: S::V) -> S::V {
    let minus_abs = s.neg_abs(x);
    let y = s.max(s.splat(-TANH_SATURATE), s.min(s.splat(-TINY), minus_abs));
    // Reduced at half scale: `h = r / 2` and `p / 2` (bit for bit the full-scale values
    // halved) save forming `2|x|`; `t` carries `n + 1`, so `shl23(t)` is `2 * 2^n`.
    let t = s.mul_add(y, s.splat(2.0 * LOG2E), s.splat(SCALE_MAGIC + 1.0));
    let n = s.sub(t, s.splat(SCALE_MAGIC + 1.0));
    let h = s.neg_mul_add(n, s.splat(0.5 * LN2), y);
    let twice_scale = s.shl23(t);
    let p_half = expm1_half(s, h);
    // e = e^(-2|x|) - 1 and 2 + e, both as one FMA on p. `1 - 2^n` is exact or (n < -24)
    // rounds to 1, so `2 - (1 - 2^n)` is `1 + 2^n` rounded once, as an FMA would give it;
    // a subtraction leaves AVX2's two FMA ports (which also take the shift, the polynomial
    // and the divide) for a third port.
    let one = s.splat(1.0);
    let one_minus_scale = s.neg_mul_add(s.splat(0.5), twice_scale, one);
    let one_plus_scale = s.sub(s.splat(2.0), one_minus_scale);
    let e = s.mul_sub(twice_scale, p_half, one_minus_scale);
    let two_plus_e = s.mul_add(twice_scale, p_half, one_plus_scale);
    // -tanh|x|, or -|x| where that is larger (the tiny lanes; also ±0 and NaN, which the
    // second operand of `max` carries through), then the sign of x.
    let minus_tanh_abs = s.max(s.div(e, two_plus_e), minus_abs);
    s.flip_sign_if_positive(minus_tanh_abs, x)
}

/// `1 / (1 + e^-x)`; 0 below -87 (the true value is below 1.7e-38): [`VecMath::sigmoid`], which
/// is [`sigmoid_poly`] except on AVX-512 and AVX2 (table-driven, as their `exp`).
#[inline(always)]
pub(crate) fn sigmoid<S: VecMath>(s: S, x: S::V) -> S::V {
    s.sigmoid(x)
}

/// [`sigmoid`] by polynomial.
///
/// `1 + e^-x = 2^n p + (2^n + 1)` with `-x = n ln 2 + r`, `p = e^r - 1`: one FMA after the
/// polynomial, then the divide. The reduction computes `-r = x + n ln 2` so that `-x` is
/// never formed.
#[inline(always)]
fn sigmoid_poly<S: Simd>(s: S, x: S::V) -> S::V {
    let lo = s.splat(SIGMOID_LO);
    // -87 <= x <= 20 keeps 2^n normal; lanes with x < -87 are replaced at the end.
    let xc = clamp(s, x, SIGMOID_LO, SIGMOID_HI);
    let t = s.neg_mul_add(xc, s.splat(LOG2E), s.splat(SCALE_MAGIC));
    let n = s.sub(t, s.splat(SCALE_MAGIC));
    let minus_r = s.mul_add(n, s.splat(LN2_LO), s.mul_add(n, s.splat(LN2_HI), xc));
    let scale = s.shl23(t);
    let p = expm1_reduced_of_neg(s, minus_r);
    let den = s.mul_add(scale, p, s.add(scale, s.splat(1.0)));
    s.zero_below(x, lo, s.recip(den))
}

/// GELU, tanh form (PyTorch `approximate="tanh"`), computed as
/// `x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`.
#[inline(always)]
pub(crate) fn gelu<S: VecMath>(s: S, x: S::V) -> S::V {
    // Multiplied only after the flushes (see the module docs): 0 below `HALF_NORMAL`, and
    // `|x| = TINY` for `z` (a sigmoid of 1/2 either way) below it, where `x^2` would underflow.
    let x = s.zero_tiny(x, s.splat(HALF_NORMAL));
    let xz = s.lift_tiny(x, s.splat(TINY));
    let x2 = s.mul(xz, xz);
    let z = s.mul(xz, s.mul_add(x2, s.splat(GELU_K3), s.splat(GELU_K1)));
    s.mul(x, sigmoid(s, z))
}

/// SiLU / swish: `x * sigmoid(x)`; 0 where `|x| < 2^-125` (the result would be subnormal).
#[inline(always)]
pub(crate) fn silu<S: VecMath>(s: S, x: S::V) -> S::V {
    let x = s.zero_tiny(x, s.splat(HALF_NORMAL));
    s.mul(x, sigmoid(s, x))
}
