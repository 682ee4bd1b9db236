//! The data and the primitive of the table-driven `exp` of AVX-512 and AVX2: the table of
//! `2^(j/16)` and the per-backend lookup ([`ExpTable`]). The algorithm built on them lives in
//! `vmath` (its `table` module); the table sits here, below it, because the backends load it.

use super::Simd;

/// A backend with a table-driven `exp` (`vmath`'s `table` module): `2^(j/N)`, `N = 2^BITS`,
/// looked up in one register.
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

/// `2^(j/16)` rounded to f32.
pub(crate) const TABLE: [f32; 16] = [
    f32::from_bits(0x3F80_0000),
    f32::from_bits(0x3F85_AAC3),
    f32::from_bits(0x3F8B_95C2),
    f32::from_bits(0x3F91_C3D3),
    f32::from_bits(0x3F98_37F0),
    f32::from_bits(0x3F9E_F532),
    f32::from_bits(0x3FA5_FED7),
    f32::from_bits(0x3FAD_583F),
    f32::from_bits(0x3FB5_04F3),
    f32::from_bits(0x3FBD_08A4),
    f32::from_bits(0x3FC5_672A),
    f32::from_bits(0x3FCE_248C),
    f32::from_bits(0x3FD7_44FD),
    f32::from_bits(0x3FE0_CCDF),
    f32::from_bits(0x3FEA_C0C7),
    f32::from_bits(0x3FF5_257D),
];
/// For the 8-entry table (AVX2, whose `vpermd` indexes 8 lanes): the bits of `2^(j/8)`
/// (the even entries of [`TABLE`]) minus `j << 20`, so that adding `t << 20`
/// (`(8 n + j) << 20`) gives the bits of `2^(n + j/8)`.
#[cfg(simdnn_avx2)]
pub(crate) const EIGHTHS_SCALE_BITS: [u32; 8] = eighths_scale_bits(0);
/// As [`EIGHTHS_SCALE_BITS`], for `2^(n - 1 + j/8)`.
#[cfg(simdnn_avx2)]
pub(crate) const EIGHTHS_HALF_SCALE_BITS: [u32; 8] = eighths_scale_bits(1 << 23);
#[cfg(simdnn_avx2)]
const fn eighths_scale_bits(minus: u32) -> [u32; 8] {
    let mut bits = [0; 8];
    let mut j = 0;
    while j < 8 {
        bits[j] = TABLE[2 * j].to_bits() - ((j as u32) << 20) - minus;
        j += 1;
    }
    bits
}
