//! The table-driven `exp` and `sigmoid` of AVX-512 and AVX2 ([`ExpTable`]):
//! `x = (n + j/N) ln 2 + r` with `N = 2^BITS` entries `T[j] = 2^(j/N)` held in one register,
//! `|r| <= ln2/(2N)`, `e^x = 2^n T[j] (1 + p)`, `p = r + r^2/2 + r^3/6` (N = 16) or one
//! term more (N = 8); truncation below 0.1 ulp. Two FMA-port operations fewer per vector
//! than [`super::exp_poly`].

use super::{EXP_LO, LN2_HI, LN2_LO, LOG2E, SIGMOID_HI, SIGMOID_LO, clamp};
use crate::simd::ExpTable;

/// Adding this rounds `x log2(e)` to a multiple of `1/N` (the ulp of 1.5 * 2^(23 - BITS))
/// and leaves `N n + j` in the low mantissa bits, so `j` is their low `BITS` bits.
const fn magic<S: ExpTable>() -> f32 {
    1.5 * (1u32 << (23 - S::BITS)) as f32
}

/// `(e^(±v) - 1 ∓ v) / v^2` for `|v| <= ln2/(2N)`: `1/2 ± v/6 (+ v^2/24 for N = 8)`.
#[inline(always)]
fn tail<S: ExpTable, const NEG: bool>(s: S, v: S::V, v2: S::V) -> S::V {
    let (c2, c3) = (s.splat(0.5), s.splat(1.0 / 6.0));
    let q = if NEG {
        s.neg_mul_add(c3, v, c2)
    } else {
        s.mul_add(c3, v, c2)
    };
    if S::BITS < 4 {
        s.mul_add(s.splat(1.0 / 24.0), v2, q)
    } else {
        q
    }
}

/// [`super::exp`], same contract.
#[inline(always)]
pub(crate) fn exp<S: ExpTable>(s: S, x: S::V, xc: S::V) -> S::V {
    let t = s.mul_add(xc, s.splat(LOG2E), s.splat(magic::<S>()));
    // k = n + j/N exactly.
    let k = s.sub(t, s.splat(magic::<S>()));
    let r = s.neg_mul_add(k, s.splat(LN2_LO), s.neg_mul_add(k, s.splat(LN2_HI), xc));
    let r2 = s.mul(r, r);
    let p = s.mul_add(tail::<S, false>(s, r, r2), r2, r);
    s.zero_below(x, s.splat(EXP_LO), s.exp2_one_plus(t, k, p))
}

/// [`super::sigmoid`], same contract.
#[inline(always)]
pub(crate) fn sigmoid<S: ExpTable>(s: S, x: S::V) -> S::V {
    // -87 <= x <= 20 keeps 2^n normal; lanes with x < -87 are zeroed at the end.
    let xc = clamp(s, x, SIGMOID_LO, SIGMOID_HI);
    // -x = (n + j/N) ln 2 + r, with u = -r = x + k ln 2 formed directly.
    let t = s.neg_mul_add(xc, s.splat(LOG2E), s.splat(magic::<S>()));
    let k = s.sub(t, s.splat(magic::<S>()));
    let u = s.mul_add(k, s.splat(LN2_LO), s.mul_add(k, s.splat(LN2_HI), xc));
    // e^r - 1 = -u + u^2 (1/2 - u/6 ...).
    let u2 = s.mul(u, u);
    let p = s.mul_sub(u2, tail::<S, true>(s, u, u2), u);
    let scale = s.exp2(t, k);
    // 1 + e^-x = 2^n T p + (2^n T + 1): one rounding fewer than 1 + (2^n T (1 + p)).
    let den = s.mul_add(scale, p, s.add(scale, s.splat(1.0)));
    s.zero_below(x, s.splat(SIGMOID_LO), s.recip(den))
}
