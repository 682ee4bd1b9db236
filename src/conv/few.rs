//! The few-channel path (1 to 4 input channels: RGB first layers, sensor streams).

use super::ConvCall;
use super::mono::MONO_TILE_MAX;
use super::rows::{PADDED_ROWS, fill_zero, store_tile};
use crate::gemm::PANEL;
use crate::gemm::driver::part;
use crate::gemm::tile::tile_packed_windows;
use crate::ops::{Unchanged, VecOp, map};
use crate::simd::Simd;
use core::num::NonZeroUsize;

/// Input channels of the layers [`conv_few`] takes.
pub(super) const FEW_CHANNELS: usize = 4;

/// Few input channels (gray, RGB or RGBA first layers, sensor streams), one group,
/// dilation 1 across: the tap rows under a chunk of output pixels are copied zero-padded
/// to the stack, so that every tile, border or not, is `KH` runs of `KW * C` floats from
/// one base pointer at constant offsets ([`tile_packed_windows`]). The step between pixels'
/// runs is a constant for RGB at stride 1 and 2 (immediate offsets instead of one address
/// register per pixel).
#[inline(always)]
pub(super) fn conv_few<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    const { assert!(MR <= MONO_TILE_MAX) };
    let g = &call.g;
    let (c, kh, kw) = (g.in_c, g.kernel_h, g.kernel_w);
    // The distance between neighbouring pixels' runs of `kw * c` floats in a padded row.
    let step = g.stride_w * c;
    let pitch = PADDED_ROWS.checked_div(kh).unwrap_or(0);
    // Output pixels per chunk: whole tiles whose windows fit a padded row (at least one,
    // see `Geometry::is_few_channels`; the kernel stops rather than panics otherwise).
    let chunk = pitch
        .checked_div(c)
        .and_then(|n| n.checked_sub(kw))
        .and_then(|n| n.checked_div(g.stride_w))
        .map_or(0, |n| (n + 1) / MR * MR);
    let row_len = g.in_w * c;
    let (Some(chunk), Some(kh_nz), Some(out_row_len)) = (
        NonZeroUsize::new(chunk),
        NonZeroUsize::new(kh),
        NonZeroUsize::new(g.out_w * g.out_c),
    ) else {
        return;
    };
    let chunk = chunk.get();
    let mut rows = [0.0; PADDED_ROWS];
    // Where a chunk is the whole output row and the tap rows are consecutive, the padded
    // rows form a ring (input row `iy` in slot `iy % kh`) and each is copied once, not
    // `kh` times; otherwise tap row `ky` is copied to slot `ky` for every chunk.
    let ring = chunk >= g.out_w && g.dilation_h == 1;
    let (image, out_image) = (g.in_h * row_len, g.out_h * g.out_w * g.out_c);
    for n in 0..g.batch {
        let xn = part::<S>(x, n * image, image);
        let Some(yn) = y
            .get_mut(n * out_image..)
            .and_then(|y| y.get_mut(..out_image))
        else {
            return;
        };
        // Input rows `..next` are in the ring already.
        let mut next = 0;
        for (oy, out_row) in yn.chunks_exact_mut(out_row_len.get()).enumerate() {
            // The tap rows inside the image (a range: `in_row` is monotonic in `ky`).
            let inside = |ky: &usize| g.in_row(oy, *ky).is_some();
            let taps = match ((0..kh).find(inside), (0..kh).rev().find(inside)) {
                (Some(lo), Some(hi)) => lo..hi + 1,
                _ => 0..0,
            };
            let slot = |ky: usize| match (ring, g.in_row(oy, ky)) {
                (true, Some(iy)) => iy % kh_nz,
                _ => ky,
            };
            for ox0 in (0..g.out_w).step_by(chunk) {
                let tiles = chunk.min(g.out_w - ox0).div_ceil(MR);
                let cols = (tiles * MR - 1) * g.stride_w + kw;
                // Padded column `j` holds input column `first + j - left`.
                let first = ox0 * g.stride_w;
                let lead = g.left.saturating_sub(first).min(cols);
                let body = (g.left + g.in_w).saturating_sub(first).clamp(lead, cols);
                for ky in taps.clone() {
                    let Some(iy) = g.in_row(oy, ky) else { continue };
                    if ring && iy < next {
                        continue;
                    }
                    let Some(dst) = rows
                        .get_mut(slot(ky) * pitch..)
                        .and_then(|r| r.get_mut(..cols * c))
                    else {
                        continue;
                    };
                    // (No image columns: a chunk wholly inside a wide padding.)
                    let src = match body - lead {
                        0 => &[][..],
                        n => part::<S>(xn, iy * row_len + (first + lead - g.left) * c, n * c),
                    };
                    let (head, rest) = dst.split_at_mut_checked(lead * c).unwrap_or_default();
                    let (mid, tail) = rest
                        .split_at_mut_checked((body - lead) * c)
                        .unwrap_or_default();
                    // Vector moves: no library call for these short rows.
                    fill_zero(s, head);
                    map(s, src, mid, Unchanged);
                    fill_zero(s, tail);
                }
                if let Some(iy) = taps.clone().next_back().and_then(|hi| g.in_row(oy, hi)) {
                    next = iy + 1;
                }
                let tap_rows = TapRows {
                    rows: &rows,
                    pitch,
                    taps: taps.clone(),
                    first: slot(taps.start),
                    slots: kh,
                };
                let chunk_out = (&mut *out_row, ox0, tiles);
                // Constant steps for RGB (stride 1 and 2): immediate offsets instead of one
                // address register per pixel (each arm its own loop, so that the tiles'
                // accumulators go straight to their stores).
                match step {
                    3 => few_chunk::<S, MR, NV>(s, &call, op, tap_rows, chunk_out, 3),
                    6 => few_chunk::<S, MR, NV>(s, &call, op, tap_rows, chunk_out, 6),
                    _ => few_chunk::<S, MR, NV>(s, &call, op, tap_rows, chunk_out, step),
                }
            }
        }
    }
}

/// The tiles of one chunk of [`conv_few`]: `tiles` tiles of output row `out_row` from
/// pixel `ox0`, every panel, from the padded tap rows.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn few_chunk<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    call: &ConvCall<'_>,
    op: impl VecOp<S>,
    tap_rows: TapRows<'_>,
    (out_row, ox0, tiles): (&mut [f32], usize, usize),
    step: usize,
) {
    let g = &call.g;
    let (run, k) = (g.kernel_w * g.in_c, g.k());
    let block_cols = NV * S::LANES;
    let Some(panel_len) = NonZeroUsize::new(PANEL * k) else {
        return;
    };
    for (p, panel) in call.packed.chunks_exact(panel_len.get()).enumerate() {
        for col in (0..PANEL).step_by(block_cols) {
            let o = p * PANEL + col;
            if o >= g.out_c {
                break;
            }
            let width = block_cols.min(g.out_c - o);
            for t in 0..tiles {
                let at = t * MR * step;
                let acc = few_tile::<S, MR, NV>(s, tap_rows.clone(), at, step, (panel, run, col));
                let ox = ox0 + t * MR;
                let keep = MR.min(g.out_w - ox);
                let at = (ox, o, g.out_c);
                store_tile(s, &acc, (keep, width), call.bias, op, out_row, at);
            }
        }
    }
}

/// The padded tap rows of [`conv_few`]: tap row `taps.start` in slot `first` of `rows`
/// (slots `pitch` floats apart), each next tap row in the next slot, wrapping at `slots`.
#[derive(Clone)]
struct TapRows<'a> {
    rows: &'a [f32],
    pitch: usize,
    taps: core::ops::Range<usize>,
    first: usize,
    slots: usize,
}

/// One tile of [`conv_few`]: each tap row's `MR` runs of `run` floats from `at`, `step`
/// floats apart, times the panel's rows.
#[inline(always)]
fn few_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    tap_rows: TapRows<'_>,
    at: usize,
    step: usize,
    (panel, run, col): (&[f32], usize, usize),
) -> [[S::V; NV]; MR] {
    let mut acc = [[s.zero(); NV]; MR];
    let mut slot = tap_rows.first;
    for ky in tap_rows.taps {
        let xs = part::<S>(
            tap_rows.rows,
            slot * tap_rows.pitch + at,
            (MR - 1) * step + run,
        );
        let w = part::<S>(panel, (ky) * (run * PANEL), run * PANEL);
        tile_packed_windows::<S, MR, NV>(s, &mut acc, xs, step, run, w, col);
        slot = if slot + 1 == tap_rows.slots {
            0
        } else {
            slot + 1
        };
    }
    acc
}
