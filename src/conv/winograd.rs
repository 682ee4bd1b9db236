//! Winograd F(2x2, 3x3) for 3x3, stride-1, undilated, one-group convolutions with
//! [`MIN_CHANNELS`]`..=`[`MAX_CHANNELS`] input channels.
//!
//! Each 2x2 block of output pixels (a *tile*) is `A^T [ sum_c U_c ⊙ V_c ] A`, where
//! `V_c = B^T d_c B` is the tile's 4x4 input patch of channel `c` and `U_c = G g_c G^T` the
//! 3x3 kernel, both transformed to 16 *positions*. Per position the channel sum is a GEMM
//! (tiles x in_c times in_c x out_c), 16 of them replacing the 36 products per tile and
//! channel pair of the direct convolution with 16 (2.25x fewer multiply-adds); the
//! transforms are additions only and their cost grows with `in_c + out_c`, not with their
//! product, hence the lower channel limit.
//!
//! The weights are transformed once when packing (in f64, rounded once): per position,
//! panels of [`PANEL`] output channels, `in_c` rows each, exactly the dense GEMM's packed
//! layout, so [`tile_packed`] does the work. `T` tiles at a time are transformed into a stack
//! buffer `V[position][tile][channel]`; per block of `NV` output vectors the 16 GEMMs
//! leave `M[position][tile][vector]` on the stack and the output transform adds the bias,
//! applies the store epilogue and writes the 2x2 pixels that lie inside the output.
//!
//! Rounding: transformed inputs are sums of four inputs, outputs sums of nine GEMM results,
//! so the error bound is that of the direct convolution taken over the transforms' absolute
//! values (see [`crate::Engine::conv2d`]).

use super::ConvCall;
use super::depthwise::load_n;
use crate::gemm::PANEL;
use crate::gemm::driver::part;
use crate::gemm::tile::{slices, tile_packed};
use crate::ops::{VecOp, with_epilogue};
use crate::simd::Simd;
use core::num::NonZeroUsize;

/// The fewest input channels that take this path: below, the transforms cost more than
/// the multiply-adds they save (conv_tiny, 3 channels, stays direct).
pub(crate) const MIN_CHANNELS: usize = 8;
/// The most input channels: the stack buffer of transformed inputs holds
/// `16 * T * MAX_CHANNELS` floats (32 KiB with AVX-512, 8 KiB on the scalar backend).
pub(crate) const MAX_CHANNELS: usize = 64;
/// Transform positions per tile (4x4).
pub(crate) const POSITIONS: usize = 16;

/// `G g G^T` for one output/input channel pair: `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2;
/// 0 0 1]`. A `const fn` so that [`crate::pack_conv2d`] can use it at compile time.
pub(crate) const fn transform_kernel(g: [[f32; 3]; 3]) -> [[f32; 4]; 4] {
    // Rows first (G g), then columns ((G g) G^T), in f64: the result is rounded once.
    let mut rows = [[0.0f64; 3]; 4];
    let mut j = 0;
    while j < 3 {
        let (a, b, c) = (g[0][j] as f64, g[1][j] as f64, g[2][j] as f64);
        rows[0][j] = a;
        rows[1][j] = 0.5 * (a + b + c);
        rows[2][j] = 0.5 * (a - b + c);
        rows[3][j] = c;
        j += 1;
    }
    let mut u = [[0.0f32; 4]; 4];
    let mut i = 0;
    while i < 4 {
        let (a, b, c) = (rows[i][0], rows[i][1], rows[i][2]);
        u[i][0] = a as f32;
        u[i][1] = (0.5 * (a + b + c)) as f32;
        u[i][2] = (0.5 * (a - b + c)) as f32;
        u[i][3] = c as f32;
        i += 1;
    }
    u
}

/// Index in the packed weights of output channel `o`, input channel `c`, position `p`,
/// for a layer of `in_c` inputs and `panels` panels of outputs.
pub(crate) const fn packed_index(
    in_c: usize,
    panels: usize,
    p: usize,
    o: usize,
    c: usize,
) -> usize {
    ((p * panels + o / PANEL) * in_c + c) * PANEL + o % PANEL
}

/// `B^T r` of one column (or row) of 4 (`B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`).
#[inline(always)]
fn input_1d<S: Simd>(s: S, r: [S::V; 4]) -> [S::V; 4] {
    [
        s.sub(r[0], r[2]),
        s.add(r[1], r[2]),
        s.sub(r[2], r[1]),
        s.sub(r[1], r[3]),
    ]
}

/// `B^T d B` of a 4x4 patch. (Plain loops, no closures or `array::map`: those stay calls
/// that do not inherit the caller's target features, and nor do the intrinsics in them.)
#[inline(always)]
fn transform_input<S: Simd>(s: S, d: [[S::V; 4]; 4]) -> [[S::V; 4]; 4] {
    let mut t = [[s.zero(); 4]; 4];
    for q in 0..4 {
        let col = input_1d(s, [d[0][q], d[1][q], d[2][q], d[3][q]]);
        for r in 0..4 {
            t[r][q] = col[r];
        }
    }
    for row in t.iter_mut() {
        *row = input_1d(s, *row);
    }
    t
}

/// `A^T r` of one column (or row) of 4 (`A^T = [1 1 1 0; 0 1 -1 -1]`).
#[inline(always)]
fn output_1d<S: Simd>(s: S, r: [S::V; 4]) -> [S::V; 2] {
    [
        s.add(s.add(r[0], r[1]), r[2]),
        s.sub(s.sub(r[1], r[2]), r[3]),
    ]
}

/// `A^T m A` of the 16 GEMM results: the 2x2 outputs.
#[inline(always)]
fn transform_output<S: Simd>(s: S, m: [[S::V; 4]; 4]) -> [[S::V; 2]; 2] {
    let mut t = [[s.zero(); 4]; 2];
    for q in 0..4 {
        let [a, b] = output_1d(s, [m[0][q], m[1][q], m[2][q], m[3][q]]);
        (t[0][q], t[1][q]) = (a, b);
    }
    [output_1d(s, t[0]), output_1d(s, t[1])]
}

/// The Winograd convolution with `T` tiles per GEMM row block and `NV` output vectors per
/// block; `VBUF` and `MBUF` are the stack buffers' lengths (`16 * T * MAX_CHANNELS` and
/// `16 * T * NV * LANES`, fixed per backend by `conv_blocking!` in `conv/tuning.rs`).
#[inline(always)]
pub(crate) fn conv_winograd<
    S: Simd,
    const T: usize,
    const NV: usize,
    const VBUF: usize,
    const MBUF: usize,
>(
    s: S,
    call: ConvCall<'_>,
    x: &[f32],
    y: &mut [f32],
) {
    with_epilogue!(S, call.act, op => winograd_tiles::<S, T, NV, VBUF, MBUF>(s, call, op, x, y))
}

#[inline(always)]
fn winograd_tiles<
    S: Simd,
    const T: usize,
    const NV: usize,
    const VBUF: usize,
    const MBUF: usize,
>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let ConvCall {
        g, packed, bias, ..
    } = call;
    let (in_c, out_c) = (g.in_c, g.out_c);
    let panels = out_c.div_ceil(PANEL);
    let block_cols = NV * S::LANES;
    let (tiles_h, tiles_w) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
    let tiles = tiles_h * tiles_w;
    let (image_in, image_out) = (g.in_h * g.in_w * in_c, g.out_h * g.out_w * out_c);
    // V[position][tile][channel] and M[position][tile][vector]: rows of the 16 GEMMs.
    let mut v = [0.0f32; VBUF];
    let mut m = [0.0f32; MBUF];
    // (The shape's checks bound these; out of range, the kernel stops: no panic path.)
    let (Some(v), Some(m), Some(tiles_w)) = (
        v.get_mut(..POSITIONS * T * in_c),
        m.get_mut(..POSITIONS * T * block_cols),
        NonZeroUsize::new(tiles_w),
    ) else {
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
        for t0 in (0..tiles).step_by(T) {
            let n_tiles = T.min(tiles - t0);
            for t in 0..n_tiles {
                let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
                for c0 in (0..in_c).step_by(S::LANES) {
                    let n = S::LANES.min(in_c - c0);
                    let d = load_patch(s, &g, xn, ty, tx, c0, n);
                    let u = transform_input(s, d);
                    for (p, up) in u.as_flattened().iter().enumerate() {
                        let at = (p * T + t) * in_c + c0;
                        match v.get_mut(at..).and_then(|v| v.get_mut(..n)) {
                            Some(dst) if n == S::LANES => s.store(*up, dst),
                            Some(dst) => s.store_partial(*up, dst),
                            None => {}
                        }
                    }
                }
            }
            for o in (0..out_c).step_by(block_cols) {
                let (panel, col) = (o / PANEL, o % PANEL);
                for p in 0..POSITIONS {
                    // Rows past `n_tiles` hold an earlier block's data; their results are
                    // discarded.
                    let x_rows: [&[f32]; T] = slices(|t| part::<S>(v, (p * T + t) * (in_c), in_c));
                    let weights =
                        part::<S>(packed, (p * panels + panel) * (in_c * PANEL), in_c * PANEL);
                    let mut acc = [[s.zero(); NV]; T];
                    tile_packed::<S, T, NV>(s, &mut acc, x_rows, weights, col);
                    let at = p * T * block_cols;
                    let Some(dst) = m.get_mut(at..).and_then(|m| m.get_mut(..T * block_cols))
                    else {
                        return;
                    };
                    for (row, dst) in acc.iter().zip(dst.chunks_exact_mut(block_cols)) {
                        for (a, d) in row.iter().zip(dst.chunks_exact_mut(S::LANES)) {
                            s.store(*a, d);
                        }
                    }
                }
                let width = block_cols.min(out_c - o);
                for vec in 0..NV {
                    let lo = vec * S::LANES;
                    if lo >= width {
                        break;
                    }
                    let n = S::LANES.min(width - lo);
                    let b = match bias {
                        Some(b) => load_n(s, b.get(o + lo..).unwrap_or_default(), n),
                        None => s.zero(),
                    };
                    for t in 0..n_tiles {
                        let mut mp = [[s.zero(); 4]; 4];
                        for (p, mv) in mp.as_flattened_mut().iter_mut().enumerate() {
                            let at = (p * T + t) * block_cols + lo;
                            if let Some(x) = m.get(at..).and_then(|m| m.get(..S::LANES)) {
                                *mv = s.load(x);
                            }
                        }
                        let out = transform_output(s, mp);
                        let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
                        store_tile(s, &g, op, yn, (ty, tx), (o + lo, n), (out, b));
                    }
                }
            }
        }
    }
}

/// The 4x4 input patch of tile `(ty, tx)`, channels `c0..c0 + n` (zeros in the padding).
#[inline(always)]
fn load_patch<S: Simd>(
    s: S,
    g: &super::Geometry,
    xn: &[f32],
    ty: usize,
    tx: usize,
    c0: usize,
    n: usize,
) -> [[S::V; 4]; 4] {
    let in_c = g.in_c;
    let (mut row_at, mut col_at, mut row_ok, mut col_ok) = ([0; 4], [0; 4], [false; 4], [false; 4]);
    for i in 0..4 {
        if let Some(iy) = g.in_row(2 * ty, i) {
            (row_at[i], row_ok[i]) = (iy * g.in_w * in_c, true);
        }
        if let Some(ix) = g.in_col(2 * tx, i) {
            (col_at[i], col_ok[i]) = (ix * in_c, true);
        }
    }
    let mut d = [[s.zero(); 4]; 4];
    if row_ok == [true; 4] && col_ok == [true; 4] {
        // Inside the image: constant offsets from one base, no per-pixel checks.
        let row_len = g.in_w * in_c;
        let at = row_at[0] + col_at[0] + c0;
        let Some(patch) = xn
            .get(at..)
            .and_then(|x| x.get(..3 * row_len + 3 * in_c + n))
        else {
            return d;
        };
        for (r, dr) in d.iter_mut().enumerate() {
            for (q, dq) in dr.iter_mut().enumerate() {
                *dq = load_n(
                    s,
                    patch.get(r * row_len + q * in_c..).unwrap_or_default(),
                    n,
                );
            }
        }
        return d;
    }
    for (r, dr) in d.iter_mut().enumerate() {
        for (q, dq) in dr.iter_mut().enumerate() {
            if row_ok[r] && col_ok[q] {
                *dq = load_n(
                    s,
                    xn.get(row_at[r] + col_at[q] + c0..).unwrap_or_default(),
                    n,
                );
            }
        }
    }
    d
}

/// Adds the bias to the 2x2 outputs of tile `(ty, tx)`, applies `op` and stores those
/// inside the output, channels `o..o + n`.
#[inline(always)]
fn store_tile<S: Simd>(
    s: S,
    g: &super::Geometry,
    op: impl VecOp<S>,
    yn: &mut [f32],
    (ty, tx): (usize, usize),
    (o, n): (usize, usize),
    (out, b): ([[S::V; 2]; 2], S::V),
) {
    for (i, out_row) in out.iter().enumerate() {
        let oy = 2 * ty + i;
        if oy >= g.out_h {
            break;
        }
        for (j, val) in out_row.iter().enumerate() {
            let ox = 2 * tx + j;
            if ox >= g.out_w {
                break;
            }
            let val = op.apply(s, s.add(*val, b));
            let at = (oy * g.out_w + ox) * g.out_c + o;
            match yn.get_mut(at..).and_then(|y| y.get_mut(..n)) {
                Some(dst) if n == S::LANES => s.store(val, dst),
                Some(dst) => s.store_partial(val, dst),
                None => {}
            }
        }
    }
}
