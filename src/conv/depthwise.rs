//! Depthwise convolution (groups = input channels, any channel multiplier).

use super::ConvCall;
use super::shape::Geometry;
use crate::engine::kernel_entry;
use crate::gemm::driver::{part, row_at};
use crate::gemm::store::store_whole_tile;
use crate::ops::{VecOp, with_epilogue};
use crate::simd::{MAX_LANES, Simd};
use core::num::NonZeroUsize;

/// Output pixels per depthwise block: each weight vector loaded once serves this many.
pub(super) const DW_PIXELS: usize = 8;

/// Vectors in the depthwise window buffer (on the stack: 12 KiB with AVX-512, 768 bytes
/// with the scalar backend).
const DW_WINDOW: usize = 192;

/// Depthwise convolution, output channels in vector lanes. With a channel multiplier `m`
/// (output channel `o` reads input channel `o / m`) the copy into the ring loads one input
/// vector and spreads its lanes with a permutation ([`Simd::permute`]).
///
/// For one vector of channels and a strip of output columns, the input rows under the
/// window are copied once into a small ring buffer of vectors, zero-padded left and right;
/// the taps then read aligned vectors with no border cases and no partial loads. A window
/// too tall or wide for the buffer (huge dilations) takes the per-pixel path. 3x3 stride 1
/// layers skip the ring ([`depthwise_stream_3x3`]): each step of theirs reads one vector
/// per input row and does 18 multiply-adds, so the copy would cost more than the reads.
#[inline(always)]
pub(super) fn conv_depthwise<S: Simd>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    with_epilogue!(S, call.act, op => depthwise_images(s, call, op, x, y))
}
kernel_entry!(conv_depthwise(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn depthwise_images<S: Simd>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let g = &call.g;
    let c = g.out_c;
    let (image_in, image_out) = (g.in_h * g.in_w * g.in_c, g.out_h * g.out_w * c);
    let span_h = (g.kernel_h - 1) * g.dilation_h + 1;
    let reach_w = (g.kernel_w - 1) * g.dilation_w + 1;
    // Output columns per strip: whole blocks, so that `span_h` window rows of the strip
    // fit the buffer.
    let cols = DW_WINDOW.checked_div(span_h).unwrap_or(0);
    let strip = match cols
        .checked_sub(reach_w)
        .and_then(|n| n.checked_div(g.stride_w))
    {
        Some(spare) => (spare + 1) / DW_PIXELS * DW_PIXELS,
        None => 0,
    };
    // (Indexed, not a zip of chunks, and out of range the kernel stops: no panic path.)
    let Some(image_out) = NonZeroUsize::new(image_out) else {
        return;
    };
    let images = y
        .chunks_exact_mut(image_out.get())
        .take(g.batch)
        .enumerate()
        .map(|(n, yn)| {
            let dw = Depthwise {
                g,
                x: part::<S>(x, n * image_in, image_in),
                packed: call.packed,
                bias: call.bias,
            };
            (dw, yn)
        });
    if g.is_depthwise_3x3() {
        // Straight from the image: no window to zero.
        for (dw, yn) in images {
            for c0 in (0..c).step_by(S::LANES) {
                depthwise_stream_3x3(s, &dw, op, yn, c0, S::LANES.min(c - c0));
            }
        }
        return;
    }
    // Every window column a block reads is written first, so one zeroing per call will do
    // (7x7 images with many channels would otherwise pay it per vector of channels).
    let mut window = [s.zero(); DW_WINDOW];
    for (dw, yn) in images {
        for c0 in (0..c).step_by(S::LANES) {
            let n = S::LANES.min(c - c0);
            if strip == 0 {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        depthwise_pixel(s, &dw, op, yn, (oy, ox), (c0, n));
                    }
                }
                continue;
            }
            for ox0 in (0..g.out_w).step_by(strip) {
                let width = strip.min(g.out_w - ox0);
                depthwise_strip(s, &dw, op, &mut window, yn, (ox0, width), (c0, n));
            }
        }
    }
}

/// What the depthwise helpers read: the shape, one image, the weights and the bias.
struct Depthwise<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    packed: &'a [f32],
    bias: Option<&'a [f32]>,
}

/// The first `n <= LANES` floats of `src` (the rest of the lanes zero).
#[inline(always)]
pub(super) fn load_n<S: Simd>(s: S, src: &[f32], n: usize) -> S::V {
    if n == S::LANES {
        s.load(src)
    } else {
        s.load_partial(src.get(..n).unwrap_or(src), 0.0)
    }
}

/// The input values under output channels `c0..c0 + n` of one pixel `px` (all its input
/// channels): output channel `o` reads input channel `o / multiplier`. With a multiplier,
/// one vector load from input channel `c0 / multiplier` and a lane permutation by
/// `idx = expand_index(c0, multiplier)`.
#[inline(always)]
fn load_expanded<S: Simd>(
    s: S,
    px: &[f32],
    (c0, n): (usize, usize),
    multiplier: usize,
    idx: &[u32; MAX_LANES],
) -> S::V {
    if multiplier == 1 {
        return load_n(s, px.get(c0..).unwrap_or_default(), n);
    }
    let first = c0.checked_div(multiplier).unwrap_or(0);
    let len = S::LANES.min(px.len().saturating_sub(first));
    s.permute(load_n(s, px.get(first..).unwrap_or_default(), len), idx)
}

/// Lane `l` of the vector of output channels from `c0` reads lane `(c0 + l) / multiplier -
/// c0 / multiplier` of the input vector from channel `c0 / multiplier`.
fn expand_index(c0: usize, multiplier: usize) -> [u32; MAX_LANES] {
    let mut idx = [0; MAX_LANES];
    let Some(multiplier) = NonZeroUsize::new(multiplier) else {
        return idx;
    };
    for (l, i) in idx.iter_mut().enumerate() {
        // At most `l < MAX_LANES`: fits in u32.
        *i = ((c0 + l) / multiplier - c0 / multiplier) as u32;
    }
    idx
}

/// Output channels per input channel (1 if the shape's checks were bypassed).
#[inline(always)]
fn multiplier_of(g: &Geometry) -> usize {
    g.out_c.checked_div(g.in_c).filter(|&m| m > 0).unwrap_or(1)
}

/// Output columns `ox0..ox0 + width` of every row, channels `c0..c0 + n`.
#[inline(always)]
fn depthwise_strip<S: Simd>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    window: &mut [S::V; DW_WINDOW],
    yn: &mut [f32],
    (ox0, width): (usize, usize),
    (c0, n): (usize, usize),
) {
    let g = dw.g;
    let c = g.in_c;
    let (Some(span_h), Some(c_nz)) = (
        NonZeroUsize::new((g.kernel_h - 1) * g.dilation_h + 1),
        NonZeroUsize::new(c),
    ) else {
        return;
    };
    let multiplier = multiplier_of(g);
    let expand = expand_index(c0, multiplier);
    // Enough columns for whole blocks; those past the strip's last window are zeros.
    let blocks = width.div_ceil(DW_PIXELS);
    let cols = (blocks * DW_PIXELS - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1;
    // Window column `j` holds input column `j + first - g.left` (zero outside the image).
    let first = ox0 * g.stride_w;
    let lead = g.left.saturating_sub(first).min(cols);
    let body = (g.left + g.in_w).saturating_sub(first).min(cols);
    let bias = match dw.bias {
        Some(b) => load_n(s, b.get(c0..).unwrap_or_default(), n),
        None => s.zero(),
    };
    // Input rows `..next` are in the window already; row `iy` lives in slot `iy % span_h`.
    let mut next = 0;
    for oy in 0..g.out_h {
        let lo = (oy * g.stride_h).saturating_sub(g.top).max(next);
        let hi = (oy * g.stride_h + span_h.get())
            .saturating_sub(g.top)
            .min(g.in_h);
        for iy in lo..hi {
            let row = part::<S>(dw.x, (iy) * (g.in_w * c), g.in_w * c);
            let at_slot = (iy % span_h) * cols;
            let Some(slot) = window.get_mut(at_slot..).and_then(|w| w.get_mut(..cols)) else {
                return;
            };
            let (head, rest) = slot.split_at_mut(lead.min(cols));
            head.fill(s.zero());
            let (inside, tail) = rest.split_at_mut(body.saturating_sub(lead).min(rest.len()));
            if !inside.is_empty() && multiplier > 1 {
                let from = (lead + first - g.left) * c;
                let pixels = row.get(from..).unwrap_or_default().chunks(c_nz.get());
                for (v, px) in inside.iter_mut().zip(pixels) {
                    *v = load_expanded(s, px, (c0, n), multiplier, &expand);
                }
            } else if !inside.is_empty() {
                // Channel `c0` of each pixel: offsets `c` apart (plain offsets rather than
                // `chunks`, whose length arithmetic doubled this loop's instructions).
                let at = (lead + first - g.left) * c + c0;
                let inside = inside.iter_mut().zip((at..).step_by(c));
                if n == S::LANES {
                    for (v, at) in inside {
                        *v = s.load(row.get(at..).unwrap_or_default());
                    }
                } else {
                    for (v, at) in inside {
                        *v = s.load_partial(row.get(at..at + n).unwrap_or_default(), 0.0);
                    }
                }
            }
            tail.fill(s.zero());
        }
        next = next.max(hi);
        for m0 in (0..blocks * DW_PIXELS).step_by(DW_PIXELS) {
            let keep = DW_PIXELS.min(width - m0);
            let block = (oy, m0, keep, ox0 + m0, c0, n, bias);
            if keep <= DW_PIXELS / 2 {
                depthwise_block_store::<S, { DW_PIXELS / 2 }>(s, dw, op, window, cols, yn, block);
            } else {
                depthwise_block_store::<S, DW_PIXELS>(s, dw, op, window, cols, yn, block);
            }
        }
    }
}

/// One block of `M` pixels (the first `keep` of them stored): `(oy, m0, keep, ox, c0, n,
/// bias)`.
type DwBlock<S> = (usize, usize, usize, usize, usize, usize, <S as Simd>::V);

/// Computes and stores one block; the common 3-wide stride-1 row gets its own copy with
/// constant offsets: no bounds checks, and each window vector loaded once for all three
/// taps.
#[inline(always)]
fn depthwise_block_store<S: Simd, const M: usize>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    window: &[S::V; DW_WINDOW],
    cols: usize,
    yn: &mut [f32],
    (oy, m0, keep, ox, c0, n, bias): DwBlock<S>,
) {
    let g = dw.g;
    let acc = if (g.kernel_w, g.stride_w, g.dilation_w) == (3, 1, 1) {
        depthwise_block::<S, M>(s, dw, (window, cols), (oy, m0), (c0, n), bias, (3, 1, 1))
    } else {
        let taps = (g.kernel_w, g.stride_w, g.dilation_w);
        depthwise_block::<S, M>(s, dw, (window, cols), (oy, m0), (c0, n), bias, taps)
    };
    depthwise_store(s, g, op, yn, (acc, keep), (oy, ox), (c0, n));
}

/// `M` outputs of row `oy` from strip column `m0`, read from the window buffer.
#[inline(always)]
fn depthwise_block<S: Simd, const M: usize>(
    s: S,
    dw: &Depthwise<'_>,
    (window, cols): (&[S::V; DW_WINDOW], usize),
    (oy, m0): (usize, usize),
    (c0, n): (usize, usize),
    bias: S::V,
    (kernel_w, stride, dilation): (usize, usize, usize),
) -> [S::V; M] {
    let g = dw.g;
    let mut acc = [bias; M];
    let Some(span_h) = NonZeroUsize::new((g.kernel_h - 1) * g.dilation_h + 1) else {
        return acc;
    };
    for ky in 0..g.kernel_h {
        let Some(iy) = g.in_row(oy, ky) else { continue };
        let from = (iy % span_h) * cols + m0 * stride;
        let len = (M - 1) * stride + (kernel_w - 1) * dilation + 1;
        let Some(taps) = window.get(from..).and_then(|w| w.get(..len)) else {
            return acc;
        };
        for kx in 0..kernel_w {
            let at = (ky * kernel_w + kx) * g.out_c + c0;
            let w = load_n(s, dw.packed.get(at..).unwrap_or_default(), n);
            for (m, a) in acc.iter_mut().enumerate() {
                let x = taps
                    .get(m * stride + kx * dilation)
                    .copied()
                    .unwrap_or(s.zero());
                *a = s.mul_add(x, w, *a);
            }
        }
    }
    acc
}

/// Depthwise 3x3, stride 1, dilation 1, channels `c0..c0 + n`: two output rows at a time,
/// streaming across the four input rows under them one column at a time, straight from
/// the image (no copy). Rows whose taps leave the image go one at a time, with zeros for
/// the missing input rows.
#[inline(always)]
fn depthwise_stream_3x3<S: Simd>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    yn: &mut [f32],
    c0: usize,
    n: usize,
) {
    let multiplier = multiplier_of(dw.g);
    if multiplier == 1 && n == S::LANES {
        stream_passes::<S, true>(s, dw, op, yn, (c0, n), (c0, n), Whole);
    } else if multiplier == 1 {
        stream_passes::<S, false>(s, dw, op, yn, (c0, n), (c0, n), Part(n));
    } else {
        // As `load_expanded`: one vector from input channel `c0 / multiplier`, spread.
        let first = c0 / multiplier;
        let len = S::LANES.min(dw.g.in_c.saturating_sub(first));
        let spread = Spread(len, expand_index(c0, multiplier));
        stream_passes::<S, false>(s, dw, op, yn, (c0, n), (first, len), spread);
    }
}

/// How [`depthwise_stream_3x3`] loads the input vector under its output channels from a
/// slice that starts at the first input channel they read. (A trait, not a closure: a
/// closure can be compiled out of line, without the kernel's target features.)
trait PixelLoad<S: Simd>: Copy {
    fn load(self, s: S, px: &[f32]) -> S::V;
}

/// A whole vector.
#[derive(Clone, Copy)]
struct Whole;

/// The first `.0` floats.
#[derive(Clone, Copy)]
struct Part(usize);

/// The first `.0` floats, lanes spread by [`Simd::permute`] with index `.1` (a channel
/// multiplier).
#[derive(Clone, Copy)]
struct Spread(usize, [u32; MAX_LANES]);

impl<S: Simd> PixelLoad<S> for Whole {
    #[inline(always)]
    fn load(self, s: S, px: &[f32]) -> S::V {
        s.load(px)
    }
}

impl<S: Simd> PixelLoad<S> for Part {
    #[inline(always)]
    fn load(self, s: S, px: &[f32]) -> S::V {
        s.load_partial(px.get(..self.0).unwrap_or(px), 0.0)
    }
}

impl<S: Simd> PixelLoad<S> for Spread {
    #[inline(always)]
    fn load(self, s: S, px: &[f32]) -> S::V {
        s.permute(load_n(s, px, self.0), &self.1)
    }
}

/// [`depthwise_stream_3x3`] for output channels `c0..c0 + n`, which read the `len`
/// input channels from `first` (`px` loads their vector from a slice starting there).
#[inline(always)]
fn stream_passes<S: Simd, const FULL: bool>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    yn: &mut [f32],
    (c0, n): (usize, usize),
    (first, len): (usize, usize),
    px: impl PixelLoad<S>,
) {
    let g = dw.g;
    let c = g.in_c;
    let mut w = [s.zero(); 9];
    for (t, wt) in w.iter_mut().enumerate() {
        *wt = load_n(s, dw.packed.get(t * g.out_c + c0..).unwrap_or_default(), n);
    }
    let bias = match dw.bias {
        Some(b) => load_n(s, b.get(c0..).unwrap_or_default(), n),
        None => s.zero(),
    };
    let (rw, ow) = (g.in_w * c, g.out_w * g.out_c);
    // Input rows and output rows as slices of one length, so that one bounds check
    // covers the loads (stores) of a column.
    let (last_in, last_out) = ((g.in_w - 1) * c + len, (g.out_w - 1) * g.out_c + n);
    let inside = |oy: usize| oy >= g.top && oy - g.top + 3 <= g.in_h;
    let mut oy = 0;
    while oy < g.out_h {
        // (Out of range, which the shape's checks exclude, the kernel stops: no panic path.)
        let from_oy = yn.get_mut(oy * ow + c0..).unwrap_or_default();
        let (top, rest) = from_oy.split_at_mut(ow.min(from_oy.len()));
        let Some(top) = top.get_mut(..last_out) else {
            return;
        };
        if oy + 1 < g.out_h && inside(oy) && inside(oy + 1) {
            let src = dw.x.get((oy - g.top) * rw + first..).unwrap_or_default();
            let in_row = |r: usize| src.get(r * rw..).and_then(|x| x.get(..last_in));
            let (Some(r0), Some(r1), Some(r2), Some(r3), Some(next)) = (
                in_row(0),
                in_row(1),
                in_row(2),
                in_row(3),
                rest.get_mut(..last_out),
            ) else {
                return;
            };
            let outs = [top, next];
            let rows = ([r0, r1, r2, r3], [c; 4], px);
            stream_rows::<S, FULL, 2, 4>(s, &w, bias, (g, op, outs, n), rows);
            oy += 2;
        } else {
            let (r0, s0) = tap_row(dw, oy, 0, first, last_in);
            let (r1, s1) = tap_row(dw, oy, 1, first, last_in);
            let (r2, s2) = tap_row(dw, oy, 2, first, last_in);
            let outs = [top];
            let rows = ([r0, r1, r2], [s0, s1, s2], px);
            stream_rows::<S, FULL, 1, 3>(s, &w, bias, (g, op, outs, n), rows);
            oy += 1;
        }
    }
}

/// Input row `ky` under output row `oy` from channel `first` (`len` floats, to the last
/// pixel's vector) and the step between its pixels; the zero pixel with step 0 if the row
/// is outside the image.
#[inline(always)]
fn tap_row<'a>(
    dw: &Depthwise<'a>,
    oy: usize,
    ky: usize,
    first: usize,
    len: usize,
) -> (&'a [f32], usize) {
    let g = dw.g;
    match g.in_row(oy, ky) {
        Some(iy) => (row_at(dw.x, iy * g.in_w * g.in_c + first, len), g.in_c),
        None => (&ZERO_PIXEL[..], 0),
    }
}

/// `OUT` output rows of [`depthwise_stream_3x3`] (`outs`, from channel `c0`), from the
/// `IN = OUT + 2` input rows under them (`rows`, with the step between pixels of each:
/// 0 for the zero pixel above or below the image). Input column `j` (counting padding) is
/// tap column 2 of output column `j - 2`, which it completes, tap column 1 of `j - 1` and
/// tap column 0 of `j`, which it starts: three accumulators per output row roll along.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn stream_rows<S: Simd, const FULL: bool, const OUT: usize, const IN: usize>(
    s: S,
    w: &[S::V; 9],
    bias: S::V,
    (g, op, mut outs, n): (&Geometry, impl VecOp<S>, [&mut [f32]; OUT], usize),
    (rows, steps, px): ([&[f32]; IN], [usize; IN], impl PixelLoad<S>),
) {
    let mut acc = [[bias; 2]; OUT];
    for j in 0..g.out_w + 2 {
        let ix = j.wrapping_sub(g.left);
        let mut v = [s.zero(); IN];
        if ix < g.in_w {
            for r in 0..IN {
                v[r] = px.load(s, rows[r].get(ix * steps[r]..).unwrap_or_default());
            }
        }
        let mut fresh = [bias; OUT];
        for (o, (a, f)) in acc.iter_mut().zip(fresh.iter_mut()).enumerate() {
            for ky in 0..3 {
                a[0] = s.mul_add(v[o + ky], w[ky * 3 + 2], a[0]);
                a[1] = s.mul_add(v[o + ky], w[ky * 3 + 1], a[1]);
                *f = s.mul_add(v[o + ky], w[ky * 3], *f);
            }
        }
        if j >= 2 {
            let at = (j - 2) * g.out_c;
            for (a, out) in acc.iter().zip(outs.iter_mut()) {
                let v = op.apply(s, a[0]);
                if FULL {
                    s.store(v, out.get_mut(at..).unwrap_or_default());
                } else if let Some(out) = out.get_mut(at..at + n) {
                    s.store_partial(v, out);
                }
            }
        }
        for (a, f) in acc.iter_mut().zip(fresh) {
            *a = [a[1], f];
        }
    }
}

/// Zeros standing in for the pixels of an input row outside the image.
static ZERO_PIXEL: [f32; MAX_LANES] = [0.0; MAX_LANES];

/// Stores the first `keep` pixels of `acc` from column `ox`, channels `c0..c0 + n`.
#[inline(always)]
fn depthwise_store<S: Simd, const M: usize>(
    s: S,
    g: &Geometry,
    op: impl VecOp<S>,
    yn: &mut [f32],
    (acc, keep): ([S::V; M], usize),
    (oy, ox): (usize, usize),
    (c0, n): (usize, usize),
) {
    let at = (oy * g.out_w + ox) * g.out_c + c0;
    if keep == M && n == S::LANES {
        let acc = acc.map(|a| [a]);
        let dst = yn.get_mut(at..).unwrap_or_default();
        return store_whole_tile::<S, M, 1>(s, &acc, None, op, dst, g.out_c);
    }
    for (m, a) in acc.into_iter().enumerate().take(keep) {
        let at = (oy * g.out_w + ox + m) * g.out_c + c0;
        let v = op.apply(s, a);
        match yn.get_mut(at..at + n) {
            Some(dst) if n == S::LANES => s.store(v, dst),
            Some(dst) => s.store_partial(v, dst),
            None => return,
        }
    }
}

/// One pixel, channels `c0..c0 + n`, any position (taps outside are skipped).
#[inline(always)]
fn depthwise_pixel<S: Simd>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    yn: &mut [f32],
    (oy, ox): (usize, usize),
    (c0, n): (usize, usize),
) {
    let g = dw.g;
    let c = g.in_c;
    let multiplier = multiplier_of(g);
    let expand = expand_index(c0, multiplier);
    let mut acc = match dw.bias {
        Some(b) => load_n(s, b.get(c0..).unwrap_or_default(), n),
        None => s.zero(),
    };
    for ky in 0..g.kernel_h {
        let Some(iy) = g.in_row(oy, ky) else { continue };
        for kx in 0..g.kernel_w {
            let Some(ix) = g.in_col(ox, kx) else { continue };
            let px = part::<S>(dw.x, (iy * g.in_w + ix) * (c), c);
            let xv = load_expanded(s, px, (c0, n), multiplier, &expand);
            let at = (ky * g.kernel_w + kx) * g.out_c + c0;
            let wv = load_n(s, dw.packed.get(at..).unwrap_or_default(), n);
            acc = s.mul_add(xv, wv, acc);
        }
    }
    depthwise_store(s, g, op, yn, ([acc], 1), (oy, ox), (c0, n));
}
