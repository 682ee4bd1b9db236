//! The one-input-channel path (mono audio, grayscale), stride 1.

use super::ConvCall;
use super::rows::store_tile;
use super::shape::Geometry;
use crate::gemm::PANEL;
use crate::gemm::driver::part;
use crate::gemm::store::{store_dense_tile, store_whole_tile, whole_bias};
use crate::gemm::tile::tile_packed_windows;
use crate::ops::VecOp;
use crate::simd::Simd;
use core::num::NonZeroUsize;

/// Input floats a border tile of [`conv_mono`] copies (zero-padded) to the stack.
pub(super) const MONO_WINDOW: usize = 64;

/// The widest conv tile of any backend (in pixels); see `conv_blocking!` in `conv/tuning.rs`.
pub(super) const MONO_TILE_MAX: usize = 16;

/// One input channel, stride 1, dilation 1, one group (mono audio, grayscale images): the
/// windows of a tile's pixels are one slice, one float apart, so a tile needs one base
/// pointer and constant offsets. The tiles whose windows lie inside the row run in a loop of
/// their own (no border test, whole stores, the bias branch outside the loop); tiles that
/// overlap the padding (or run past the row end) read a zero-padded copy of their window.
#[inline(always)]
pub(super) fn conv_mono<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    const { assert!(MR <= MONO_TILE_MAX) };
    let g = &call.g;
    let (kw, k) = (g.kernel_w, g.k());
    let block_cols = NV * S::LANES;
    let span = MR - 1 + kw;
    let tiles = g.out_w.div_ceil(MR);
    // The tiles whose windows lie inside the input row and whose pixels all lie in the
    // output row.
    let inner = {
        let start = g.left.div_ceil(MR).min(tiles);
        start..mono_inner_end(g, MR, span).max(start)
    };
    // (The sizes are nonzero for any shape the caller let through; the kernel stops
    // rather than panics otherwise.)
    let nonzero = |n: usize| NonZeroUsize::new(n).map(NonZeroUsize::get);
    let (Some(image), Some(out_image), Some(out_row_len), Some(panel_len)) = (
        nonzero(g.in_h * g.in_w),
        nonzero(g.out_h * g.out_w * g.out_c),
        nonzero(g.out_w * g.out_c),
        nonzero(PANEL * k),
    ) else {
        return;
    };
    for n in 0..g.batch {
        // (Indexed, not a zip of chunks: the zip's length division stays out of line at
        // opt-level "s", with a division-by-zero panic.)
        let xn = part::<S>(x, n * image, image);
        let Some(yn) = y
            .get_mut(n * out_image..)
            .and_then(|y| y.get_mut(..out_image))
        else {
            return;
        };
        for (oy, out_row) in yn.chunks_exact_mut(out_row_len).enumerate() {
            for (p, panel) in call.packed.chunks_exact(panel_len).enumerate() {
                for col in (0..PANEL).step_by(block_cols) {
                    let o = p * PANEL + col;
                    if o >= g.out_c {
                        break;
                    }
                    let width = block_cols.min(g.out_c - o);
                    let tile = MonoTile {
                        g,
                        xn,
                        oy,
                        panel,
                        col,
                        span,
                    };
                    // A part block (the last few outputs) takes the border path.
                    let inner = if width == block_cols {
                        inner.clone()
                    } else {
                        tiles..tiles
                    };
                    if !inner.is_empty() {
                        let at = inner.start * MR * g.out_c + o;
                        let dst = out_row.get_mut(at..).unwrap_or_default();
                        let bias = whole_bias::<S, NV>(s, call.bias, o);
                        mono_inner::<S, MR, NV>(s, &tile, inner.clone(), bias, op, dst);
                    }
                    for t in (0..inner.start).chain(inner.end..tiles) {
                        let acc = tile.border::<S, MR, NV>(s, t * MR);
                        store_tile::<S, MR, NV>(
                            s,
                            &acc,
                            (MR.min(g.out_w - t * MR), width),
                            call.bias,
                            op,
                            out_row,
                            (t * MR, o, g.out_c),
                        );
                    }
                }
            }
        }
    }
}

/// One past the last tile of [`conv_mono`] whose window lies inside the input row (tile
/// `t` reads input columns `t * mr - left..` up to `span` of them) and whose pixels all lie
/// in the output row.
fn mono_inner_end(g: &Geometry, mr: usize, span: usize) -> usize {
    match (g.in_w + g.left).checked_sub(span) {
        Some(last_start) => (last_start / mr + 1).min(g.out_w / mr),
        None => 0,
    }
}

/// What a [`conv_mono`] tile reads: the image, its output row, one panel's column block.
struct MonoTile<'a> {
    g: &'a Geometry,
    xn: &'a [f32],
    oy: usize,
    panel: &'a [f32],
    col: usize,
    span: usize,
}

impl MonoTile<'_> {
    /// The accumulators of the tile from output pixel `ox0`, any tile (zero-padded window).
    #[inline(always)]
    fn border<S: Simd, const MR: usize, const NV: usize>(
        &self,
        s: S,
        ox0: usize,
    ) -> [[S::V; NV]; MR] {
        let (g, span) = (self.g, self.span);
        let mut acc = [[s.zero(); NV]; MR];
        for ky in 0..g.kernel_h {
            let Some(iy) = g.in_row(self.oy, ky) else {
                continue;
            };
            let row = part::<S>(self.xn, iy * g.in_w, g.in_w);
            let w = part::<S>(self.panel, (ky) * (g.kernel_w * PANEL), g.kernel_w * PANEL);
            let mut window = [0.0; MONO_WINDOW];
            for (j, v) in window.iter_mut().enumerate().take(span) {
                if let Some(ix) = (ox0 + j).checked_sub(g.left) {
                    *v = row.get(ix).copied().unwrap_or(0.0);
                }
            }
            let window = window.get(..span).unwrap_or_default();
            tile_packed_windows::<S, MR, NV>(s, &mut acc, window, 1, g.kernel_w, w, self.col);
        }
        acc
    }
}

/// The inner tiles `tiles` of a [`conv_mono`] row, stored whole to `dst` (from the first
/// tile's first pixel at the block's first output).
#[inline(always)]
fn mono_inner<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    tile: &MonoTile<'_>,
    tiles: core::ops::Range<usize>,
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
) {
    let g = tile.g;
    let (kw, pitch) = (g.kernel_w, g.out_c);
    let Some(tile_len) = NonZeroUsize::new(MR * pitch) else {
        return;
    };
    let outs = dst.chunks_mut(tile_len.get()).take(tiles.len());
    let first = tiles.start * MR - g.left;
    if let (1, Some(iy)) = (g.kernel_h, g.in_row(tile.oy, 0)) {
        // One tap row (1-D layers): each tile's window comes from one iterator over the
        // row, no per-tile slicing (the scalar path's 2-pixel tiles: 234 -> 168 us).
        let row = part::<S>(tile.xn, iy * g.in_w, g.in_w);
        let Some(span) = NonZeroUsize::new(tile.span) else {
            return;
        };
        let windows = row
            .get(first..)
            .unwrap_or_default()
            .windows(span.get())
            .step_by(MR);
        for (xs, out) in windows.zip(outs) {
            let mut acc = [[s.zero(); NV]; MR];
            tile_packed_windows::<S, MR, NV>(s, &mut acc, xs, 1, kw, tile.panel, tile.col);
            store_mono_tile::<S, MR, NV>(s, &acc, bias, op, out, pitch);
        }
        return;
    }
    for (t, out) in (0..).zip(outs) {
        let mut acc = [[s.zero(); NV]; MR];
        for ky in 0..g.kernel_h {
            let Some(iy) = g.in_row(tile.oy, ky) else {
                continue;
            };
            let row = part::<S>(tile.xn, iy * g.in_w, g.in_w);
            let w = part::<S>(tile.panel, (ky) * (kw * PANEL), kw * PANEL);
            let xs = part::<S>(row, first + t * MR, tile.span);
            tile_packed_windows::<S, MR, NV>(s, &mut acc, xs, 1, kw, w, tile.col);
        }
        store_mono_tile::<S, MR, NV>(s, &acc, bias, op, out, pitch);
    }
}

/// Stores a [`mono_inner`] tile. One-vector pixels back to back (conv1d_kws on AVX-512)
/// store without per-pixel checks; `NV == 1` keeps that second path out of AVX2's
/// register-tight 6 x 2 tiles.
#[inline(always)]
fn store_mono_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
    pitch: usize,
) {
    if NV == 1 && pitch == S::LANES {
        store_dense_tile::<S, MR, NV>(s, acc, bias, op, dst);
    } else {
        store_whole_tile::<S, MR, NV>(s, acc, bias, op, dst, pitch);
    }
}
