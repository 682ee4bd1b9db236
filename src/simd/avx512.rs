//! AVX-512F backend, 16 lanes. Tails use masked loads and stores (no scalar remainder).
//! `exp` and `sigmoid` are table-driven (`2^(j/16)` held in one register, looked up by
//! `vpermps`, a degree-3 polynomial, `vscalefps`): two operations fewer per vector than the
//! shared polynomial, and these loops are bound by the vector ports, not by latency.
//! `recip` and `div` are `vrcp14ps` plus one Newton step (`vdivps` on zmm takes the divider
//! 8.6 cycles on a Sapphire Rapids-class core: tried for tanh and sigmoid, no faster).

use super::{ExpTable, MAX_LANES, Simd};
use core::arch::x86_64::*;

/// Token proving the CPU has AVX-512F (and AVX2 + FMA).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// Only callable from code compiled with (hence running on) AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub(crate) fn new() -> Self {
        Avx512(())
    }

    /// `2^(j/16)` for the `j` in the low four mantissa bits of `t` (`exp_table::TABLE`).
    #[inline(always)]
    fn exp_table_entry(self, t: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F; the table is 16 floats, read as one vector.
        unsafe {
            let table = _mm512_loadu_ps(super::exp_table::TABLE.as_ptr());
            _mm512_permutexvar_ps(_mm512_castps_si512(t), table)
        }
    }
}

/// 16 entries (one `vpermps`); `vscalefps` scales by `2^floor(k) = 2^n`.
impl ExpTable for Avx512 {
    const BITS: u32 = 4;
    #[inline(always)]
    fn exp2(self, t: __m512, k: __m512) -> __m512 {
        // SAFETY: the `Avx512` token proves AVX-512F.
        unsafe { _mm512_scalef_ps(self.exp_table_entry(t), k) }
    }
    #[inline(always)]
    fn exp2_one_plus(self, t: __m512, k: __m512, p: __m512) -> __m512 {
        let tj = self.exp_table_entry(t);
        // SAFETY: the `Avx512` token proves AVX-512F.
        unsafe { _mm512_scalef_ps(_mm512_fmadd_ps(tj, p, tj), k) }
    }
}

/// Mask with the first `n` (at most 16) lanes set.
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

// SAFETY (every `unsafe` block below): `self` is an `Avx512` token, which exists only when
// the CPU has AVX-512F; pointer accesses stay inside the slices, as commented where needed.
impl Simd for Avx512 {
    type V = __m512;
    type M = __mmask16;
    const LANES: usize = 16;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m512 {
        let src = &src[..16];
        // SAFETY: token; `src` has 16 elements.
        unsafe { _mm512_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn load_partial(self, src: &[f32], fill: f32) -> __m512 {
        // SAFETY: token; masked-off lanes (at and past `src.len()`) are not accessed.
        unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first_lanes(src.len()), src.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, v: __m512, dst: &mut [f32]) {
        let dst = &mut dst[..16];
        // SAFETY: token; `dst` has 16 elements.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn store_partial(self, v: __m512, dst: &mut [f32]) {
        // SAFETY: token; only lanes below `dst.len()` are written.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), first_lanes(dst.len()), v) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn neg_mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_fnmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn mul_sub(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_fmsub_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn neg_abs(self, a: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe {
            let bits = _mm512_or_si512(_mm512_castps_si512(a), _mm512_set1_epi32(i32::MIN));
            _mm512_castsi512_ps(bits)
        }
    }
    #[inline(always)]
    fn flip_sign_if_positive(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe {
            // a ^ (!b & sign): one ternary-logic op.
            let r = _mm512_ternarylogic_epi32::<0xD2>(
                _mm512_castps_si512(a),
                _mm512_castps_si512(b),
                _mm512_set1_epi32(i32::MIN),
            );
            _mm512_castsi512_ps(r)
        }
    }
    #[inline(always)]
    fn zero_tiny(self, x: __m512, tiny: __m512) -> __m512 {
        // SAFETY: token (see impl).
        // "Not less than, unordered" keeps NaN lanes without a mask inversion.
        unsafe { _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(_mm512_abs_ps(x), tiny), x) }
    }
    #[inline(always)]
    fn lift_tiny(self, x: __m512, tiny: __m512) -> __m512 {
        // SAFETY: token (see impl).
        // The two integer maxima of the AVX2 backend (`vrangeps` would be one operation,
        // but it turns NaN into `tiny`).
        unsafe {
            let bits = _mm512_castps_si512(x);
            let tiny = _mm512_castps_si512(tiny);
            let minus_tiny = _mm512_or_si512(tiny, _mm512_set1_epi32(i32::MIN));
            let lifted = _mm512_max_epi32(_mm512_max_epu32(bits, tiny), minus_tiny);
            _mm512_castsi512_ps(lifted)
        }
    }
    #[inline(always)]
    fn shl23(self, a: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(a))) }
    }
    #[inline(always)]
    fn permute(self, v: __m512, idx: &[u32; MAX_LANES]) -> __m512 {
        // SAFETY: token (see impl); reads the 16 indices, of which vpermps uses the low 4
        // bits.
        unsafe { _mm512_permutexvar_ps(_mm512_loadu_si512(idx.as_ptr().cast()), v) }
    }
    #[inline(always)]
    fn recip(self, a: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe {
            // 14-bit estimate, one Newton step: r + r * (1 - a * r), about 2^-28 relative.
            let r = _mm512_rcp14_ps(a);
            let e = _mm512_fnmadd_ps(a, r, _mm512_set1_ps(1.0));
            _mm512_fmadd_ps(e, r, r)
        }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe {
            // q = a r (1 + e) with r the 14-bit estimate of 1/b and e = 1 - b r: the
            // quotient's Newton step, about 2^-28 relative before the last rounding.
            let r = _mm512_rcp14_ps(b);
            let e = _mm512_fnmadd_ps(b, r, _mm512_set1_ps(1.0));
            let q = _mm512_mul_ps(a, r);
            _mm512_fmadd_ps(e, q, q)
        }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: token (see impl).
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token (see impl).
        unsafe { _mm512_mask_blend_ps(m, b, a) }
    }
    #[inline(always)]
    fn zero_below(self, x: __m512, lo: __m512, y: __m512) -> __m512 {
        // SAFETY: token (see impl).
        // "Not less than, unordered" keeps NaN lanes; no mask inversion (`knotw`) needed.
        unsafe { _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, lo), y) }
    }
    #[inline(always)]
    fn reduce_add(self, a: __m512) -> f32 {
        // SAFETY: token (see impl).
        unsafe { _mm512_reduce_add_ps(a) }
    }
    #[inline(always)]
    fn reduce_max(self, a: __m512) -> f32 {
        // SAFETY: token (see impl).
        unsafe { _mm512_reduce_max_ps(a) }
    }
}
