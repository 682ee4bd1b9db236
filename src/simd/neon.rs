//! aarch64 Advanced SIMD backend, 4 lanes. NEON has no masked loads, so tails go through a
//! 4-element stack buffer (one vector's worth, never past the slice).

use super::{MAX_LANES, Simd};
use core::arch::aarch64::*;

/// Token for NEON, which is part of the aarch64 baseline this backend is compiled for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// NEON is enabled at compile time whenever this module is compiled.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Neon(())
    }
}

// SAFETY (every `unsafe` block below): NEON is a compile-time target feature wherever this
// module is built (see build.rs); pointer accesses stay inside the slices or stack buffers.
impl Simd for Neon {
    type V = float32x4_t;
    type M = uint32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> float32x4_t {
        let src = &src[..4];
        // SAFETY: see impl; `src` has 4 elements.
        unsafe { vld1q_f32(src.as_ptr()) }
    }
    #[inline(always)]
    fn load_partial(self, src: &[f32], fill: f32) -> float32x4_t {
        let mut buf = [fill; 4];
        let n = src.len().min(4);
        buf[..n].copy_from_slice(&src[..n]);
        // SAFETY: see impl; `buf` has 4 elements.
        unsafe { vld1q_f32(buf.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, v: float32x4_t, dst: &mut [f32]) {
        let dst = &mut dst[..4];
        // SAFETY: see impl; `dst` has 4 elements.
        unsafe { vst1q_f32(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn store_partial(self, v: float32x4_t, dst: &mut [f32]) {
        let mut buf = [0.0; 4];
        // SAFETY: see impl; `buf` has 4 elements.
        unsafe { vst1q_f32(buf.as_mut_ptr(), v) }
        let n = dst.len().min(4);
        dst[..n].copy_from_slice(&buf[..n]);
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn neg_mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vfmsq_f32(c, a, b) }
    }
    #[inline(always)]
    fn mul_sub(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vnegq_f32(vfmsq_f32(c, a, b)) }
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vminq_f32(a, b) }
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vmaxq_f32(a, b) }
    }
    #[inline(always)]
    fn neg_abs(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vnegq_f32(vabsq_f32(a)) }
    }
    #[inline(always)]
    fn flip_sign_if_positive(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe {
            let sign = vbicq_u32(vdupq_n_u32(0x8000_0000), vreinterpretq_u32_f32(b));
            vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(a), sign))
        }
    }
    #[inline(always)]
    fn zero_tiny(self, x: float32x4_t, tiny: float32x4_t) -> float32x4_t {
        // SAFETY: see impl. `vcaltq` compares magnitudes (false for NaN).
        unsafe { vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(x), vcaltq_f32(x, tiny))) }
    }
    #[inline(always)]
    fn lift_tiny(self, x: float32x4_t, tiny: float32x4_t) -> float32x4_t {
        // SAFETY: see impl. The two integer maxima of the AVX2 backend: unsigned for the
        // positive lanes, signed (against `-tiny`) for the negative ones.
        unsafe {
            let tiny = vreinterpretq_u32_f32(tiny);
            let minus_tiny = vreinterpretq_s32_u32(vorrq_u32(tiny, vdupq_n_u32(0x8000_0000)));
            let positive = vreinterpretq_s32_u32(vmaxq_u32(vreinterpretq_u32_f32(x), tiny));
            vreinterpretq_f32_s32(vmaxq_s32(positive, minus_tiny))
        }
    }
    #[inline(always)]
    fn shl23(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vreinterpretq_f32_u32(vshlq_n_u32::<23>(vreinterpretq_u32_f32(a))) }
    }
    #[inline(always)]
    fn recip(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vdivq_f32(vdupq_n_f32(1.0), a) }
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        // SAFETY: see impl.
        unsafe { vcltq_f32(a, b) }
    }
    #[inline(always)]
    fn permute(self, v: float32x4_t, idx: &[u32; MAX_LANES]) -> float32x4_t {
        // SAFETY: see impl; reads 4 of the 16 indices. The byte table for lane `l` is
        // `4 (idx[l] % 4) + (0, 1, 2, 3)`: every entry below 16, inside `v`.
        unsafe {
            let lanes = vandq_u32(vld1q_u32(idx.as_ptr()), vdupq_n_u32(3));
            let bytes = vmlaq_n_u32(vdupq_n_u32(0x0302_0100), lanes, 0x0404_0404);
            vreinterpretq_f32_u8(vqtbl1q_u8(
                vreinterpretq_u8_f32(v),
                vreinterpretq_u8_u32(bytes),
            ))
        }
    }
    #[inline(always)]
    fn select(self, m: uint32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vbslq_f32(m, a, b) }
    }
    #[inline(always)]
    fn zero_below(self, x: float32x4_t, lo: float32x4_t, y: float32x4_t) -> float32x4_t {
        // SAFETY: see impl.
        unsafe { vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), vcltq_f32(x, lo))) }
    }
    #[inline(always)]
    fn reduce_add(self, a: float32x4_t) -> f32 {
        // SAFETY: see impl.
        unsafe { vaddvq_f32(a) }
    }
    #[inline(always)]
    fn reduce_max(self, a: float32x4_t) -> f32 {
        // SAFETY: see impl.
        unsafe { vmaxvq_f32(a) }
    }
}
