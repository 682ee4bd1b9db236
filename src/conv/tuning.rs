//! The convolutions' register blocking per backend: their own table, beside the GEMM
//! layer's (`gemm::Blocking`), whose tiles they run.

use super::ConvCall;
use super::rows::conv_general;
use super::winograd::{MAX_CHANNELS, POSITIONS, conv_winograd};
use crate::simd::Simd;

/// Tile sizes of the convolution paths: pixels per tile (`MR`), output vectors per tile
/// (`NV`; `NV * LANES` divides the panel width), the narrower layers' and a row's last
/// pixels' tiles, and Winograd's tiles per block.
pub(super) trait ConvBlocking: Simd {
    /// The implicit-GEMM convolution; `PATH` selects the rows (see `rows::conv_general`).
    fn conv<const PATH: u8>(self, call: ConvCall<'_>, x: &[f32], y: &mut [f32]);
    /// The Winograd F(2x2, 3x3) convolution.
    fn winograd(self, call: ConvCall<'_>, x: &[f32], y: &mut [f32]);
}

macro_rules! conv_blocking {
    ($token:ty, nv: $nv:literal, mr: $cmr:literal, mr_narrow: $cmrn:literal, mr_mono: $cmrm:literal, mr_tail: $cmrt:literal, winograd_tiles: $wt:literal) => {
        impl ConvBlocking for $token {
            #[inline(always)]
            fn conv<const PATH: u8>(self, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
                conv_general::<Self, $cmr, $nv, $cmrn, $cmrm, $cmrt, PATH>(self, call, x, y)
            }
            #[inline(always)]
            fn winograd(self, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
                const LANES: usize = <$token as Simd>::LANES;
                conv_winograd::<
                    Self,
                    $wt,
                    $nv,
                    { POSITIONS * $wt * MAX_CHANNELS },
                    { POSITIONS * $wt * $nv * LANES },
                >(self, call, x, y)
            }
        }
    };
}
// Convolutions use 8-pixel tiles (4 for a row's last few pixels): measured on Zen 4,
// conv_resnet (56 = 7 x 8 wide) runs 5-10% faster than with 6 and 12 gave 69% of peak.
// Layers with one vector of outputs (16 channels) take 16 pixels (conv_tiny 7-12% faster
// than 12); so do one-channel rows (conv1d_kws: 16 slower than 12 until tiles were stored
// by `store_whole_tile`, then 2-4% faster; 24 spills and runs 4x slower). Winograd: blocks
// of 8 tiles (12 left conv_small's 64 tiles a short last block: 18% slower).
#[cfg(simdnn_avx512)]
conv_blocking!(crate::simd::Avx512, nv: 2, mr: 8, mr_narrow: 16, mr_mono: 16, mr_tail: 4, winograd_tiles: 8);
// 16 registers: 6 x 2 ymm accumulators, 2 weight vectors, 1 broadcast. A row's last 1-4
// pixels take a 4-pixel tile: with 3, conv_s2's 28-wide rows (4 x 6 + 4) ran their last 4
// pixels as a 6-pixel tile (7% of the multiply-adds wasted; AVX2 conv_s2 min 307 -> 281 us
// with 4, 15 interleaved runs).
#[cfg(simdnn_avx2)]
conv_blocking!(crate::simd::Avx2, nv: 2, mr: 6, mr_narrow: 12, mr_mono: 12, mr_tail: 4, winograd_tiles: 6);
// 32 registers: 3 x 8 q accumulators and 8 weight vectors.
#[cfg(simdnn_neon)]
conv_blocking!(crate::simd::Neon, nv: 8, mr: 3, mr_narrow: 8, mr_mono: 8, mr_tail: 1, winograd_tiles: 3);
// Cortex-M4F has 32 single registers: 2 x 8 accumulators.
conv_blocking!(crate::simd::Scalar, nv: 8, mr: 2, mr_narrow: 2, mr_mono: 2, mr_tail: 1, winograd_tiles: 2);
