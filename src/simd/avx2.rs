//! AVX2 + FMA backend, 8 lanes. Tails use `vmaskmovps`, which never touches masked-off
//! memory, so there is no scalar remainder loop.

use super::{ExpTable, MAX_LANES, Simd};
use core::arch::x86_64::*;

/// Token proving the CPU has AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// Only callable from code compiled with (hence running on) AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) fn new() -> Self {
        Avx2(())
    }

    /// The bits of `table[j] + (t << 20)`, `j` the low three bits of `t`
    /// (`exp_table::EIGHTHS_SCALE_BITS`).
    #[inline(always)]
    fn eighths_scale(self, t: __m256, table: &[u32; 8]) -> __m256 {
        // SAFETY: the `Avx2` token proves AVX2; the table is 8 values, read as one vector.
        unsafe {
            let t = _mm256_castps_si256(t);
            let table = _mm256_loadu_si256(table.as_ptr().cast());
            _mm256_castsi256_ps(_mm256_add_epi32(
                _mm256_slli_epi32::<20>(t),
                _mm256_permutevar8x32_epi32(table, t),
            ))
        }
    }
}

/// 8 entries: one `vpermd`, and the scale built by an integer add (there is no `vscalefps`).
impl ExpTable for Avx2 {
    const BITS: u32 = 3;
    #[inline(always)]
    fn exp2(self, t: __m256, _k: __m256) -> __m256 {
        self.eighths_scale(t, &super::exp_table::EIGHTHS_SCALE_BITS)
    }
    #[inline(always)]
    fn exp2_one_plus(self, t: __m256, _k: __m256, p: __m256) -> __m256 {
        // 2 (h + h p) with h = 2^(k-1): halving keeps n = 128 finite.
        let h = self.eighths_scale(t, &super::exp_table::EIGHTHS_HALF_SCALE_BITS);
        let y = self.mul_add(h, p, h);
        self.add(y, y)
    }
}

/// Lane mask with the first `n` (at most 8) lanes set.
#[inline(always)]
fn first_lanes(n: usize) -> __m256i {
    // SAFETY: the `Avx2` token held by every caller proves AVX2 is available.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n.min(8) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

// SAFETY (every `unsafe` block below): `self` is an `Avx2` token, which exists only when the
// CPU has AVX2 and FMA; pointer accesses stay inside the slices, as commented where needed.
impl Simd for Avx2 {
    type V = __m256;
    type M = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m256 {
        let src = &src[..8];
        // SAFETY: token; `src` has 8 elements.
        unsafe { _mm256_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn load_partial(self, src: &[f32], fill: f32) -> __m256 {
        let mask = first_lanes(src.len());
        // SAFETY: token; the mask selects only lanes below `src.len()`, and masked-off
        // lanes are not accessed.
        unsafe {
            let v = _mm256_maskload_ps(src.as_ptr(), mask);
            _mm256_blendv_ps(_mm256_set1_ps(fill), v, _mm256_castsi256_ps(mask))
        }
    }
    #[inline(always)]
    fn store(self, v: __m256, dst: &mut [f32]) {
        let dst = &mut dst[..8];
        // SAFETY: token; `dst` has 8 elements.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn store_partial(self, v: __m256, dst: &mut [f32]) {
        let mask = first_lanes(dst.len());
        // SAFETY: token; only lanes below `dst.len()` are written.
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr(), mask, v) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn neg_mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_fnmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn mul_sub(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_fmsub_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn neg_abs(self, a: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_or_ps(_mm256_set1_ps(-0.0), a) }
    }
    #[inline(always)]
    fn flip_sign_if_positive(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_xor_ps(a, _mm256_andnot_ps(b, _mm256_set1_ps(-0.0))) }
    }
    #[inline(always)]
    fn zero_tiny(self, x: __m256, tiny: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe {
            let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
            _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(abs, tiny), x)
        }
    }
    #[inline(always)]
    fn lift_tiny(self, x: __m256, tiny: __m256) -> __m256 {
        // SAFETY: token (see impl).
        // On the bit patterns: an unsigned max with `tiny` raises the positive tiny lanes
        // (negative ones have the top bit set, so they are larger); a signed max with
        // `-tiny` raises the negative tiny lanes (the more negative a float, the larger its
        // bits as a signed integer; positive floats are all larger). NaN keeps its bits.
        unsafe {
            let bits = _mm256_castps_si256(x);
            let tiny = _mm256_castps_si256(tiny);
            let minus_tiny = _mm256_or_si256(tiny, _mm256_set1_epi32(i32::MIN));
            let lifted = _mm256_max_epi32(_mm256_max_epu32(bits, tiny), minus_tiny);
            _mm256_castsi256_ps(lifted)
        }
    }
    #[inline(always)]
    fn shl23(self, a: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_castps_si256(a))) }
    }
    #[inline(always)]
    fn recip(self, a: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_div_ps(_mm256_set1_ps(1.0), a) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn permute(self, v: __m256, idx: &[u32; MAX_LANES]) -> __m256 {
        // SAFETY: token (see impl); reads 8 of the 16 indices. vpermps uses the low 3 bits
        // of each index.
        unsafe { _mm256_permutevar8x32_ps(v, _mm256_loadu_si256(idx.as_ptr().cast())) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_blendv_ps(b, a, m) }
    }
    #[inline(always)]
    fn zero_below(self, x: __m256, lo: __m256, y: __m256) -> __m256 {
        // SAFETY: token (see impl).
        unsafe { _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(x, lo), y) }
    }
    #[inline(always)]
    fn reduce_add(self, a: __m256) -> f32 {
        // SAFETY: token (see impl).
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        }
    }
    #[inline(always)]
    fn reduce_max(self, a: __m256) -> f32 {
        // SAFETY: token (see impl).
        unsafe {
            let s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
        }
    }
}
