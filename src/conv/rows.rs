//! The implicit GEMM: tiles of output pixels times panels of output channels, the path
//! every shape takes unless a specialised one applies, and the tile stores the mono and
//! few-channel paths share.

use super::ConvCall;
use super::few::conv_few;
use super::mono::conv_mono;
use super::shape::Geometry;
use crate::gemm::PANEL;
use crate::gemm::driver::part;
use crate::gemm::store::{store_block, store_whole_tile, whole_bias};
use crate::gemm::tile::{slices, tile_packed};
use crate::ops::{VecOp, with_epilogue};
use crate::simd::Simd;
use core::num::NonZeroUsize;

/// Stack floats for zero-padded copies of the tap rows of one output row (4 KiB).
pub(super) const PADDED_ROWS: usize = 1024;

/// Zeros that padded taps read instead of the input (`in_per_group` is processed in
/// chunks of this size where padding is involved).
static ZEROS: [f32; 256] = [0.0; 256];

/// Implicit-GEMM convolution: `MR` output pixels of a row times `NV` vectors of a panel.
/// Layers with at most one vector of outputs per group (e.g. 16 channels on AVX-512) have
/// half the accumulators per pixel, so they take tiles of `MRN` pixels instead (`MRM` in
/// [`conv_mono`] and [`conv_few`]). A row's last few pixels (at most `MRT`) take a tile of
/// `MRT`, not a mostly wasted full one. `PATH` selects [`conv_rows`] ([`ROWS`]),
/// [`conv_mono`] ([`MONO`]) or [`conv_few`] ([`FEW`]).
#[inline(always)]
pub(crate) fn conv_general<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const MRN: usize,
    const MRM: usize,
    const MRT: usize,
    const PATH: u8,
>(
    s: S,
    call: ConvCall<'_>,
    x: &[f32],
    y: &mut [f32],
) {
    with_epilogue!(S, call.act, op => conv_tiles::<S, MR, NV, MRN, MRM, MRT, PATH>(s, call, op, x, y))
}

#[inline(always)]
fn conv_tiles<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const MRN: usize,
    const MRM: usize,
    const MRT: usize,
    const PATH: u8,
>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    match (PATH, call.g.out_per_group <= S::LANES) {
        (MONO, true) => conv_mono::<S, MRM, 1>(s, call, op, x, y),
        (MONO, false) => conv_mono::<S, MR, NV>(s, call, op, x, y),
        (FEW, true) => conv_few::<S, MRM, 1>(s, call, op, x, y),
        (FEW, false) => conv_few::<S, MR, NV>(s, call, op, x, y),
        (_, true) => conv_rows::<S, MRN, 1, MRT>(s, call, op, x, y),
        (_, false) => conv_rows::<S, MR, NV, MRT>(s, call, op, x, y),
    }
}

/// [`conv_general`]'s paths.
pub(crate) const ROWS: u8 = 0;
pub(crate) const MONO: u8 = 1;
pub(crate) const FEW: u8 = 2;

/// `dst.fill(0.0)` with vector stores.
#[inline(always)]
pub(super) fn fill_zero<S: Simd>(s: S, dst: &mut [f32]) {
    let mut ds = dst.chunks_exact_mut(S::LANES);
    for d in &mut ds {
        s.store(s.zero(), d);
    }
    let d = ds.into_remainder();
    if !d.is_empty() {
        s.store_partial(s.zero(), d);
    }
}

/// Stores the first `keep` pixels and `width` outputs of a tile from pixel `ox`, output
/// `o` of `out_row` (`pitch` floats per pixel), adding the bias and applying `op`.
#[inline(always)]
pub(super) fn store_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    (keep, width): (usize, usize),
    bias: Option<&[f32]>,
    op: impl VecOp<S>,
    out_row: &mut [f32],
    (ox, o, pitch): (usize, usize, usize),
) {
    if keep == MR && width == NV * S::LANES {
        let b = whole_bias::<S, NV>(s, bias, o);
        let dst = out_row.get_mut(ox * pitch + o..).unwrap_or_default();
        return store_whole_tile::<S, MR, NV>(s, acc, b, op, dst, pitch);
    }
    let add = bias.and_then(|b| b.get(o..o + width));
    for (m, &acc_row) in acc.iter().enumerate().take(keep) {
        let at = (ox + m) * pitch + o;
        let Some(dst) = out_row.get_mut(at..at + width) else {
            return;
        };
        store_block::<S, NV>(s, acc_row, add, op, dst);
    }
}

/// [`conv_general`] with one tile shape.
#[inline(always)]
fn conv_rows<S: Simd, const MR: usize, const NV: usize, const MRT: usize>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let ConvCall {
        g,
        packed,
        bias,
        act: _,
    } = call;
    let k = g.k();
    let group_len = g.out_per_group.div_ceil(PANEL) * PANEL * k;
    let block_cols = NV * S::LANES;
    let (image_in, image_out) = (g.in_h * g.in_w * g.in_c, g.out_h * g.out_w * g.out_c);
    // Small images with horizontal padding: copy the tap rows of each output row into a
    // zero-padded stack buffer, so that every tile takes the contiguous-run path.
    let right = ((g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1)
        .saturating_sub(g.left + g.in_w);
    let row_len = (g.left + g.in_w + right) * g.in_c;
    let pad_rows = g.groups == 1
        && g.dilation_w == 1
        && (g.left > 0 || right > 0)
        && g.kernel_h * row_len <= PADDED_ROWS;
    let mut padded = [0.0; PADDED_ROWS];
    // (Out of range, which the shape's checks exclude, the kernel stops: no panic path.)
    let Some(panel_len) = NonZeroUsize::new(PANEL * k) else {
        return;
    };
    for n in 0..g.batch {
        let xn = part::<S>(x, n * image_in, image_in);
        let Some(yn) = y
            .get_mut(n * image_out..)
            .and_then(|y| y.get_mut(..image_out))
        else {
            return;
        };
        for grp in 0..g.groups {
            let weights = part::<S>(packed, grp * group_len, group_len);
            let c0 = grp * g.in_per_group;
            for oy in 0..g.out_h {
                if pad_rows {
                    for ky in 0..g.kernel_h {
                        let Some(iy) = g.in_row(oy, ky) else {
                            continue;
                        };
                        let Some(dst) = padded
                            .get_mut(ky * row_len..)
                            .and_then(|p| p.get_mut(..row_len))
                        else {
                            break;
                        };
                        let (lead, rest) = dst
                            .split_at_mut_checked(g.left * g.in_c)
                            .unwrap_or_default();
                        let (body, tail) = rest
                            .split_at_mut_checked(g.in_w * g.in_c)
                            .unwrap_or_default();
                        lead.fill(0.0);
                        let src = part::<S>(xn, (iy) * (g.in_w * g.in_c), g.in_w * g.in_c);
                        for (b, &x) in body.iter_mut().zip(src) {
                            *b = x;
                        }
                        tail.fill(0.0);
                    }
                }
                let rows = if pad_rows {
                    Some((&padded[..], row_len))
                } else {
                    None
                };
                for ox0 in (0..g.out_w).step_by(MR) {
                    let pixels = MR.min(g.out_w - ox0);
                    // The whole block's window rows lie inside the image horizontally.
                    let inside = pad_rows
                        || (g.in_col(ox0, 0).is_some()
                            && g.in_col(ox0 + pixels - 1, g.kernel_w - 1).is_some());
                    for (p, panel) in weights.chunks_exact(panel_len.get()).enumerate() {
                        for col in (0..PANEL).step_by(block_cols) {
                            let o = p * PANEL + col;
                            if o >= g.out_per_group {
                                break;
                            }
                            let width = block_cols.min(g.out_per_group - o);
                            let oc = grp * g.out_per_group + o;
                            let tile = Tile {
                                oy,
                                ox0,
                                pixels,
                                inside,
                                c0,
                                oc,
                                width,
                            };
                            // A narrow last block (e.g. 16 outputs of a 32-wide panel) takes
                            // one vector column, half the FMAs.
                            let narrow = width <= S::LANES && NV > 1;
                            let short = pixels <= MRT && MRT < MR;
                            let job = TileJob {
                                s,
                                g: &g,
                                x: xn,
                                padded: rows,
                                y: &mut *yn,
                                panel,
                                col,
                                tile,
                                bias,
                                op,
                            };
                            match (short, narrow) {
                                (false, false) => conv_tile::<S, MR, NV>(job),
                                (false, true) => conv_tile::<S, MR, 1>(job),
                                (true, false) => conv_tile::<S, MRT, NV>(job),
                                (true, true) => conv_tile::<S, MRT, 1>(job),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where a tile sits: output row, first pixel, pixels kept, whether every window is inside
/// the image horizontally, the group's first input channel, the first output channel and
/// how many outputs are kept.
#[derive(Clone, Copy)]
struct Tile {
    oy: usize,
    ox0: usize,
    pixels: usize,
    inside: bool,
    c0: usize,
    oc: usize,
    width: usize,
}

/// Everything [`conv_tile`] reads and writes.
struct TileJob<'a, S, Op> {
    s: S,
    g: &'a Geometry,
    /// The input image.
    x: &'a [f32],
    /// The zero-padded copy of the tap rows and its row length, if the rows were copied.
    padded: Option<(&'a [f32], usize)>,
    /// The output image.
    y: &'a mut [f32],
    /// The weight panel and the column of it the tile computes.
    panel: &'a [f32],
    col: usize,
    tile: Tile,
    bias: Option<&'a [f32]>,
    op: Op,
}

/// `MR` pixels times `NV` vectors of one panel: accumulate every tap, then store.
#[inline(always)]
fn conv_tile<S: Simd, const MR: usize, const NV: usize>(job: TileJob<'_, S, impl VecOp<S>>) {
    let TileJob {
        s,
        g,
        x: xn,
        padded,
        y: yn,
        panel,
        col,
        tile: t,
        bias,
        op,
    } = job;
    // Tail blocks repeat the last pixel and discard it.
    let ox = |m: usize| t.ox0 + m.min(t.pixels - 1);
    let runs = g.groups == 1 && g.dilation_w == 1;
    let mut acc = [[s.zero(); NV]; MR];
    for ky in 0..g.kernel_h {
        let Some(iy) = g.in_row(t.oy, ky) else {
            continue;
        };
        // The input row, or its zero-padded copy (which starts `left` columns earlier).
        let (row, left) = match padded {
            Some((buf, len)) => (part::<S>(buf, ky * len, len), 0),
            None => (
                part::<S>(xn, (iy) * (g.in_w * g.in_c), g.in_w * g.in_c),
                g.left,
            ),
        };
        let tap0 = ky * g.kernel_w;
        if runs && t.inside {
            // One contiguous `KW * C` run per pixel and tap row.
            let len = g.kernel_w * g.in_c;
            let w = part::<S>(panel, tap0 * g.in_c * PANEL, len * PANEL);
            let rows: [&[f32]; MR] = slices(|m| {
                let ix = ox(m) * g.stride_w - left;
                part::<S>(row, ix * g.in_c, len)
            });
            tile_packed::<S, MR, NV>(s, &mut acc, rows, w, col);
            continue;
        }
        for kx in 0..g.kernel_w {
            let tap = tap0 + kx;
            for ch in (0..g.in_per_group).step_by(ZEROS.len()) {
                let len = ZEROS.len().min(g.in_per_group - ch);
                let rows: [&[f32]; MR] = slices(|m| match g.in_col(ox(m), kx) {
                    Some(ix) => part::<S>(row, ix * g.in_c + t.c0 + ch, len),
                    None => ZEROS.get(..len).unwrap_or_default(),
                });
                let kk = tap * g.in_per_group + ch;
                let w = part::<S>(panel, kk * PANEL, len * PANEL);
                tile_packed::<S, MR, NV>(s, &mut acc, rows, w, col);
            }
        }
    }
    let at = (t.oy * g.out_w + t.ox0) * g.out_c + t.oc;
    if t.pixels == MR && t.width == NV * S::LANES {
        let b = whole_bias::<S, NV>(s, bias, t.oc);
        let dst = yn.get_mut(at..).unwrap_or_default();
        store_whole_tile::<S, MR, NV>(s, &acc, b, op, dst, g.out_c);
        return;
    }
    let add = bias.and_then(|b| b.get(t.oc..t.oc + t.width));
    for (m, acc_row) in acc.into_iter().enumerate().take(t.pixels) {
        let at = ((t.oy * g.out_w) + t.ox0 + m) * g.out_c + t.oc;
        let Some(dst) = yn.get_mut(at..at + t.width) else {
            return;
        };
        store_block::<S, NV>(s, acc_row, add, op, dst);
    }
}
