//! The portable one-lane backend: plain Rust, used on every target (Cortex-M included) and
//! as the fallback everywhere. It uses no fused multiply-add (`libm::fmaf` is software and
//! slow), so its results differ from the SIMD backends by rounding only.

use super::{MAX_LANES, Simd};

/// The scalar backend token; always available.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

const SIGN: u32 = 0x8000_0000;

impl Simd for Scalar {
    type V = f32;
    type M = bool;
    const LANES: usize = 1;
    const SMALL_CODE: bool = cfg!(any(target_os = "none", simdnn_small_code));

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> f32 {
        // (An empty slice, which no kernel passes, reads 0: a firmware has no panic path.)
        src.first().copied().unwrap_or_default()
    }
    #[inline(always)]
    fn load_partial(self, src: &[f32], fill: f32) -> f32 {
        src.first().copied().unwrap_or(fill)
    }
    #[inline(always)]
    fn store(self, v: f32, dst: &mut [f32]) {
        if let Some(d) = dst.first_mut() {
            *d = v;
        }
    }
    #[inline(always)]
    fn store_partial(self, v: f32, dst: &mut [f32]) {
        if let Some(d) = dst.first_mut() {
            *d = v;
        }
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn mul_add(self, a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    fn neg_mul_add(self, a: f32, b: f32, c: f32) -> f32 {
        c - a * b
    }
    #[inline(always)]
    fn mul_sub(self, a: f32, b: f32, c: f32) -> f32 {
        a * b - c
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        if a > b { a } else { b }
    }
    #[inline(always)]
    fn neg_abs(self, a: f32) -> f32 {
        f32::from_bits(a.to_bits() | SIGN)
    }
    #[inline(always)]
    fn flip_sign_if_positive(self, a: f32, b: f32) -> f32 {
        f32::from_bits(a.to_bits() ^ (!b.to_bits() & SIGN))
    }
    #[inline(always)]
    fn zero_tiny(self, x: f32, tiny: f32) -> f32 {
        if x.abs() < tiny { 0.0 } else { x }
    }
    /// `2^n (1 + p)` as `2 (h (1 + p))`: without a fused multiply-add, `h + h p` would round
    /// the product `h p` alone, a subnormal near `exp`'s lower end (`h = 2^-126`) and a
    /// microcode assist on x86. `1 + p` costs one more rounding (measured in the ULP table).
    #[inline(always)]
    fn exp_scale(self, p: f32, _n: f32, t: f32) -> f32 {
        (self.shl23(t) * (1.0 + p)) * 2.0
    }
    #[inline(always)]
    fn lift_tiny(self, x: f32, tiny: f32) -> f32 {
        if x.abs() < tiny { tiny.copysign(x) } else { x }
    }
    #[inline(always)]
    fn shl23(self, a: f32) -> f32 {
        f32::from_bits(a.to_bits() << 23)
    }
    #[inline(always)]
    fn recip(self, a: f32) -> f32 {
        1.0 / a
    }
    #[inline(always)]
    fn div(self, a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    fn lt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn permute(self, v: f32, _idx: &[u32; MAX_LANES]) -> f32 {
        v
    }
    #[inline(always)]
    fn select(self, m: bool, a: f32, b: f32) -> f32 {
        if m { a } else { b }
    }
    #[inline(always)]
    fn reduce_add(self, a: f32) -> f32 {
        a
    }
    #[inline(always)]
    fn reduce_max(self, a: f32) -> f32 {
        a
    }
}
