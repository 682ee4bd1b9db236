//! The shared matrix kernels: weight panels ([`PANEL`] output features, k-major), the
//! register tiles (`gemm_tile`, `gemm_tile_strided`) and their stores, the GEMM row-block
//! driver and the GEMV of packed weights, the row-major GEMV (`dot4`), and the per-backend
//! tile table ([`Blocking`]). Dense layers run on them directly; the pointwise, implicit-GEMM
//! and Winograd convolutions reuse the tiles.

use crate::activation::{Activation, Epilogue};
use crate::dispatch::kernel_entry;
use crate::simd::{Relu, Simd, Unchanged, VecOp};

/// Output features per packed panel.
pub const PANEL: usize = 32;

/// Packs row-major `w` (`out * inp` long) into `dst` (`dense_packed_len(out, inp)` long).
/// Callers check the lengths; `const` so fixed-size weights can be packed at compile time.
pub(crate) const fn pack_into(w: &[f32], out: usize, inp: usize, dst: &mut [f32]) {
    let mut i = 0;
    while i < dst.len() {
        let (panel, rest) = (i / (PANEL * inp), i % (PANEL * inp));
        let (k, j) = (rest / PANEL, rest % PANEL);
        let o = panel * PANEL + j;
        dst[i] = if o < out { w[o * inp + k] } else { 0.0 };
        i += 1;
    }
}

/// Everything the dense kernels need besides the input and output.
#[derive(Clone, Copy)]
pub(crate) struct Layer<'a> {
    pub(crate) packed: &'a [f32],
    pub(crate) out: usize,
    pub(crate) inp: usize,
    pub(crate) bias: Option<&'a [f32]>,
    pub(crate) act: Activation,
}

/// Per-backend register blocking. Accumulators: GEMM `MR x NV` vectors, GEMV `PG x NV`.
/// `NV * LANES` divides [`PANEL`].
pub(crate) trait Blocking: Simd {
    const GEMM_MR: usize;
    /// The GEMM in tiles of `GEMM_MR` rows, or with `TAIL` of a shorter tile for the rows
    /// after the last whole block.
    fn gemm_rows<const TAIL: bool>(
        self,
        layer: Layer<'_>,
        op: impl VecOp<Self>,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
    );
    fn gemv(self, layer: Layer<'_>, op: impl VecOp<Self>, x: &[f32], y: &mut [f32]);
    /// The implicit-GEMM convolution; `PATH` selects the rows (see `conv::conv_general`).
    fn conv<const PATH: u8>(self, call: crate::conv::ConvCall<'_>, x: &[f32], y: &mut [f32]);
    /// The Winograd F(2x2, 3x3) convolution.
    fn winograd(self, call: crate::conv::ConvCall<'_>, x: &[f32], y: &mut [f32]);
}

macro_rules! blocking {
    ($token:ty, mr: $mr:literal, mr_tail: $mrt:literal, nv: $nv:literal, conv_mr: $cmr:literal, conv_mr_narrow: $cmrn:literal, conv_mr_mono: $cmrm:literal, conv_mr_tail: $cmrt:literal, winograd_tiles: $wt:literal, gemv_nv: $gnv:literal, gemv_panels: $gpg:literal) => {
        impl Blocking for $token {
            const GEMM_MR: usize = $mr;
            #[inline(always)]
            fn gemm_rows<const TAIL: bool>(
                self,
                layer: Layer<'_>,
                op: impl VecOp<Self>,
                x: &[f32],
                rows: usize,
                y: &mut [f32],
            ) {
                if TAIL {
                    gemm::<Self, $mrt, $nv>(self, layer, op, x, rows, y)
                } else {
                    gemm::<Self, $mr, $nv>(self, layer, op, x, rows, y)
                }
            }
            #[inline(always)]
            fn gemv(self, layer: Layer<'_>, op: impl VecOp<Self>, x: &[f32], y: &mut [f32]) {
                gemv::<Self, $gnv, $gpg>(self, layer, op, x, y)
            }
            #[inline(always)]
            fn conv<const PATH: u8>(
                self,
                call: crate::conv::ConvCall<'_>,
                x: &[f32],
                y: &mut [f32],
            ) {
                crate::conv::conv_general::<Self, $cmr, $nv, $cmrn, $cmrm, $cmrt, PATH>(
                    self, call, x, y,
                )
            }
            #[inline(always)]
            fn winograd(self, call: crate::conv::ConvCall<'_>, x: &[f32], y: &mut [f32]) {
                use crate::conv::winograd::{MAX_CHANNELS, POSITIONS, conv_winograd};
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
// 32 registers: GEMM 12 x 2 zmm accumulators, 2 weight vectors, broadcasts from memory;
// 2-5 rows left after the last block of 12 take 4-row tiles (64 rows: 5 x 12 + 4).
// Convolutions use 8-pixel tiles (4 for a row's last few pixels): measured on Zen 4,
// conv_resnet (56 = 7 x 8 wide) runs 5-10% faster than with 6 and 12 gave 69% of peak.
// Layers with one vector of outputs (16 channels) take 16 pixels (conv_tiny 7-12% faster
// than 12); so do one-channel rows (conv1d_kws: 16 slower than 12 until tiles were stored
// by `store_whole_tile`, then 2-4% faster; 24 spills and runs 4x slower). Winograd: blocks
// of 8 tiles (12 left conv_small's 64 tiles a short last block: 18% slower).
#[cfg(simdnn_avx512)]
blocking!(crate::simd::Avx512, mr: 12, mr_tail: 4, nv: 2, conv_mr: 8, conv_mr_narrow: 16, conv_mr_mono: 16, conv_mr_tail: 4, winograd_tiles: 8, gemv_nv: 2, gemv_panels: 4);
// 16 registers: 6 x 2 ymm accumulators, 2 weight vectors, 1 broadcast. A row's last 1-4
// pixels take a 4-pixel tile: with 3, conv_s2's 28-wide rows (4 x 6 + 4) ran their last 4
// pixels as a 6-pixel tile (7% of the multiply-adds wasted; AVX2 conv_s2 min 307 -> 281 us
// with 4, 15 interleaved runs). A 6 x 16 tile with its broadcasts runs at 98% of the FMA
// peak in isolation (measured with inline asm), so the tiles, not the loads, set the pace.
#[cfg(simdnn_avx2)]
blocking!(crate::simd::Avx2, mr: 6, mr_tail: 3, nv: 2, conv_mr: 6, conv_mr_narrow: 12, conv_mr_mono: 12, conv_mr_tail: 4, winograd_tiles: 6, gemv_nv: 4, gemv_panels: 2);
// 32 registers: 3 x 8 q accumulators and 8 weight vectors. (With `mr` 2 or 3 a tail is one
// row or at least half a block, so NEON and scalar never run their `mr_tail` tile.)
#[cfg(simdnn_neon)]
blocking!(crate::simd::Neon, mr: 3, mr_tail: 2, nv: 8, conv_mr: 3, conv_mr_narrow: 8, conv_mr_mono: 8, conv_mr_tail: 1, winograd_tiles: 3, gemv_nv: 8, gemv_panels: 1);
// Cortex-M4F has 32 single registers: 2 x 8 accumulators.
blocking!(crate::simd::Scalar, mr: 2, mr_tail: 2, nv: 8, conv_mr: 2, conv_mr_narrow: 2, conv_mr_mono: 2, conv_mr_tail: 1, winograd_tiles: 2, gemv_nv: 8, gemv_panels: 1);

/// `[f(0), .., f(N - 1)]`. `core::array::from_fn` stays an out-of-line call in the tile
/// loops (19% of conv1d_kws's time); this plain loop is inlined.
#[inline(always)]
pub(crate) fn slices<'a, const N: usize>(f: impl Fn(usize) -> &'a [f32]) -> [&'a [f32]; N] {
    let mut out: [&[f32]; N] = [&[]; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(i);
    }
    out
}

/// Stores `NV` vectors to `dst` (which may be shorter: the last panel of a layer whose
/// width is not a multiple of [`PANEL`]), after adding the bias and applying the activation.
#[inline(always)]
pub(crate) fn store_block<S: Simd, const NV: usize>(
    s: S,
    mut acc: [S::V; NV],
    bias: Option<&[f32]>,
    act: impl VecOp<S>,
    dst: &mut [f32],
) {
    for (v, a) in acc.iter_mut().enumerate() {
        let lo = (v * S::LANES).min(dst.len());
        let hi = ((v + 1) * S::LANES).min(dst.len());
        if hi - lo == S::LANES {
            if let Some(b) = bias {
                *a = s.add(*a, s.load(&b[lo..hi]));
            }
            s.store(act.apply(s, *a), &mut dst[lo..hi]);
        } else if hi > lo {
            if let Some(b) = bias {
                *a = s.add(*a, s.load_partial(&b[lo..hi], 0.0));
            }
            s.store_partial(act.apply(s, *a), &mut dst[lo..hi]);
        }
    }
}

/// Stores a whole tile (`MR` rows or pixels `pitch` floats apart, `NV` whole vectors
/// each) to `dst`, adding `bias` and applying `op`: no partial vectors, one bounds check
/// per pixel. Measured against the general per-pixel store: conv1d_kws 51 -> 47 us.
#[inline(always)]
pub(crate) fn store_whole_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
    pitch: usize,
) {
    let block_cols = NV * S::LANES;
    let dst = &mut dst[..(MR - 1) * pitch + block_cols];
    for (m, acc_row) in acc.iter().enumerate() {
        let px = &mut dst[m * pitch..][..block_cols];
        for (v, (a, d)) in acc_row
            .iter()
            .zip(px.chunks_exact_mut(S::LANES))
            .enumerate()
        {
            let a = match bias {
                Some(b) => s.add(*a, b[v]),
                None => *a,
            };
            s.store(op.apply(s, a), d);
        }
    }
}

/// [`store_whole_tile`] for `MR` one-vector pixels back to back (`NV` is 1; `dst` is the
/// tile): no bounds check per pixel and the bias test outside the loop (conv1d_kws on
/// AVX-512: 48 -> 43 us). Kept apart from [`store_whole_tile`]: with this second path
/// inside it, LLVM spilled accumulators in AVX2's 6 x 2 hot loops (conv_s2 300 -> 660 us).
#[inline(always)]
pub(crate) fn store_dense_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
) {
    let pixels = dst[..MR * S::LANES].chunks_exact_mut(S::LANES);
    match bias {
        Some(b) => {
            for (a, d) in acc.iter().zip(pixels) {
                s.store(op.apply(s, s.add(a[0], b[0])), d);
            }
        }
        None => {
            for (a, d) in acc.iter().zip(pixels) {
                s.store(op.apply(s, a[0]), d);
            }
        }
    }
}

/// The `NV` whole bias vectors from output `o` (for [`store_whole_tile`]).
#[inline(always)]
pub(crate) fn whole_bias<S: Simd, const NV: usize>(
    s: S,
    bias: Option<&[f32]>,
    o: usize,
) -> Option<[S::V; NV]> {
    let b = bias?;
    let mut v = [s.zero(); NV];
    for (i, bv) in v.iter_mut().enumerate() {
        *bv = s.load(&b[o + i * S::LANES..]);
    }
    Some(v)
}

/// The `NV` weight vectors of one panel row (`PANEL` floats) from column `col`.
#[inline(always)]
fn panel_vectors<S: Simd, const NV: usize>(s: S, row: &[f32], col: usize) -> [S::V; NV] {
    let row = &row[col..col + NV * S::LANES];
    let mut w = [s.zero(); NV];
    for (v, wv) in w.iter_mut().enumerate() {
        *wv = s.load(&row[v * S::LANES..]);
    }
    w
}

/// `acc += ` `MR` rows of `x` (each `kc` long) times one `kc x PANEL` panel block, columns
/// `col..col + NV * LANES` of it. The GEMM and the convolutions' implicit GEMM share it.
#[inline(always)]
pub(crate) fn gemm_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    x_rows: [&[f32]; MR],
    panel: &[f32],
    col: usize,
) {
    let kc = x_rows[0].len();
    // Every row exactly `kc` long, so `x_row[k]` below needs no bounds check.
    let x_rows: [&[f32]; MR] = slices(|m| &x_rows[m][..kc]);
    for (k, wk) in (0..kc).zip(panel.chunks_exact(PANEL)) {
        let w = panel_vectors::<S, NV>(s, wk, col);
        for (acc_row, x_row) in acc.iter_mut().zip(x_rows) {
            let a = s.splat(x_row[k]);
            for (c, wv) in acc_row.iter_mut().zip(w) {
                *c = s.mul_add(wv, a, *c);
            }
        }
    }
}

/// [`gemm_tile`] for rows that are windows of one slice: row `m` is
/// `xs[m * step..m * step + kc]`. One base pointer instead of `MR` keeps the tile's
/// addresses in registers; with `step` a constant (after inlining) the offsets are
/// immediates and the bounds checks fold away.
#[inline(always)]
pub(crate) fn gemm_tile_strided<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    xs: &[f32],
    step: usize,
    kc: usize,
    panel: &[f32],
    col: usize,
) {
    // Tap `k` reads the window `xs[k..]` (one slice per tap from the iterator: no offset
    // arithmetic or bounds check per tap beyond the iterator's own length test).
    let taps = xs
        .windows((MR - 1) * step + 1)
        .zip(panel.chunks_exact(PANEL));
    debug_assert!(taps.len() >= kc, "a window per tap");
    for (xk, wk) in taps.take(kc) {
        let w = panel_vectors::<S, NV>(s, wk, col);
        for (m, acc_row) in acc.iter_mut().enumerate() {
            let a = s.splat(xk[m * step]);
            for (c, wv) in acc_row.iter_mut().zip(w) {
                *c = s.mul_add(wv, a, *c);
            }
        }
    }
}

/// `rows` rows of `x` times the packed layer, `MR` rows at a time (the last block computes
/// duplicate rows and discards them). Each output is `bias + sum_k` with `k` ascending in
/// one accumulator, exactly as in [`gemv`] and the convolutions, so results do not depend
/// on the batch size or on which path ran.
#[inline(always)]
fn gemm<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    layer: Layer<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
) {
    let Layer {
        packed,
        out,
        inp,
        bias,
        ..
    } = layer;
    let block_cols = NV * S::LANES;
    for (p, panel) in packed.chunks_exact(PANEL * inp).enumerate() {
        for r0 in (0..rows).step_by(MR) {
            let x_rows: [&[f32]; MR] = slices(|m| {
                let r = (r0 + m).min(rows - 1);
                &x[r * inp..(r + 1) * inp]
            });
            for col in (0..PANEL).step_by(block_cols) {
                let o = p * PANEL + col;
                if o >= out {
                    break;
                }
                let mut acc = [[s.zero(); NV]; MR];
                gemm_tile::<S, MR, NV>(s, &mut acc, x_rows, panel, col);
                let width = block_cols.min(out - o);
                if width == block_cols && r0 + MR <= rows {
                    let b = whole_bias::<S, NV>(s, bias, o);
                    let dst = &mut y[r0 * out + o..];
                    store_whole_tile::<S, MR, NV>(s, &acc, b, op, dst, out);
                    continue;
                }
                let add = bias.map(|b| &b[o..o + width]);
                for (m, acc_row) in acc.into_iter().enumerate().take(rows - r0) {
                    let dst = &mut y[(r0 + m) * out + o..][..width];
                    store_block::<S, NV>(s, acc_row, add, op, dst);
                }
            }
        }
    }
}

/// One row of `x` times the packed layer. A single accumulator chain per output (the same
/// order as [`gemm`]); `PG` panels at once give `PG * NV` independent chains.
#[inline(always)]
fn gemv<S: Simd, const NV: usize, const PG: usize>(
    s: S,
    layer: Layer<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let Layer {
        packed,
        out,
        inp,
        bias,
        ..
    } = layer;
    let block_cols = NV * S::LANES;
    let panel_len = PANEL * inp;
    let panels = out.div_ceil(PANEL);
    for p0 in (0..panels).step_by(PG) {
        // The last group repeats the final panel; its duplicates are not stored.
        let group: [&[f32]; PG] = slices(|i| {
            let p = (p0 + i).min(panels - 1);
            &packed[p * panel_len..(p + 1) * panel_len]
        });
        for col in (0..PANEL).step_by(block_cols) {
            let mut acc = [[s.zero(); NV]; PG];
            for (k, &xk) in x.iter().enumerate() {
                let a = s.splat(xk);
                for (acc_p, panel) in acc.iter_mut().zip(group) {
                    let wk = &panel[k * PANEL + col..k * PANEL + col + block_cols];
                    for (v, c) in acc_p.iter_mut().enumerate() {
                        *c = s.mul_add(s.load(&wk[v * S::LANES..]), a, *c);
                    }
                }
            }
            for (i, acc_p) in acc.into_iter().enumerate().take(panels - p0) {
                let o = (p0 + i) * PANEL + col;
                if o >= out {
                    continue;
                }
                let width = block_cols.min(out - o);
                let add = bias.map(|b| &b[o..o + width]);
                store_block::<S, NV>(s, acc_p, add, op, &mut y[o..o + width]);
            }
        }
    }
}

/// `y = act(x W^T + b)` for `x.len() / inp` rows (lengths checked by the caller, `inp > 0`,
/// `out > 0`), for the piecewise-linear activations; the others are left to
/// [`Engine::activate_rest`].
#[inline(always)]
pub(crate) fn dense_kernel<S: Blocking>(s: S, layer: Layer<'_>, x: &[f32], y: &mut [f32]) {
    match layer.act.epilogue() {
        Epilogue::Relu => dense_rows(s, layer, Relu, x, y),
        Epilogue::Linear(op) => dense_rows(s, layer, op, x, y),
        Epilogue::Plain | Epilogue::Afterwards => dense_rows(s, layer, Unchanged, x, y),
    }
}
kernel_entry!(dense_kernel(layer: Layer<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn dense_rows<S: Blocking>(s: S, layer: Layer<'_>, op: impl VecOp<S>, x: &[f32], y: &mut [f32]) {
    let (out, inp) = (layer.out, layer.inp);
    let rows = x.len() / inp;
    // Whole row blocks (and a tail at least half a block) go through the GEMM tile; the
    // other tail rows through a shorter tile (a GEMV per row would stream all of `W` once
    // per row); a single row is a GEMV.
    let tail = rows % S::GEMM_MR;
    let (whole, tail) = match rows {
        0 | 1 => (0, rows),
        _ if tail * 2 >= S::GEMM_MR => (rows, 0),
        _ => (rows - tail, tail),
    };
    if whole > 0 {
        s.gemm_rows::<false>(layer, op, &x[..whole * inp], whole, &mut y[..whole * out]);
    }
    let (x, y) = (&x[whole * inp..], &mut y[whole * out..]);
    if tail > 1 {
        s.gemm_rows::<true>(layer, op, x, tail, y);
    } else if tail == 1 {
        s.gemv(layer, op, x, y);
    }
}

/// Four dot products with `x`, each row exactly `x.len()` long; two vectors per row in
/// flight hide the FMA latency.
#[inline(always)]
fn dot4<S: Simd>(s: S, x: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let step = 2 * S::LANES;
    let mut acc = [[s.zero(); 4]; 2];
    let [c0, c1, c2, c3] = r.map(|row| row.chunks_exact(step));
    let mut xs = x.chunks_exact(step);
    for ((((xc, w0), w1), w2), w3) in (&mut xs).zip(c0).zip(c1).zip(c2).zip(c3) {
        let (x0, x1) = (s.load(xc), s.load(&xc[S::LANES..]));
        for (j, wc) in [w0, w1, w2, w3].into_iter().enumerate() {
            acc[0][j] = s.mul_add(s.load(wc), x0, acc[0][j]);
            acc[1][j] = s.mul_add(s.load(&wc[S::LANES..]), x1, acc[1][j]);
        }
    }
    let xt = xs.remainder();
    let tail_start = x.len() - xt.len();
    for (j, row) in r.iter().enumerate() {
        let wt = &row[tail_start..];
        for (h, a) in acc.iter_mut().enumerate() {
            let lo = (h * S::LANES).min(xt.len());
            let hi = ((h + 1) * S::LANES).min(xt.len());
            let (xv, wv) = (
                s.load_partial(&xt[lo..hi], 0.0),
                s.load_partial(&wt[lo..hi], 0.0),
            );
            a[j] = s.mul_add(wv, xv, a[j]);
        }
    }
    let mut dots = [0.0; 4];
    for (j, d) in dots.iter_mut().enumerate() {
        *d = s.reduce_add(s.add(acc[0][j], acc[1][j]));
    }
    dots
}

/// `y = W x + b` for row-major `W` (`out x inp`, `inp > 0`), one row of `x` at a time:
/// four dot products share each load of `x` (the caller applies the activation).
#[inline(always)]
fn gemv_row_major<S: Simd>(
    s: S,
    w: &[f32],
    inp: usize,
    bias: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
) {
    let out = y.len();
    for o in (0..out).step_by(4) {
        let rows: [&[f32]; 4] = slices(|j| {
            let i = (o + j).min(out - 1);
            &w[i * inp..(i + 1) * inp]
        });
        let d = dot4(s, x, rows);
        let n = (out - o).min(4);
        y[o..o + n].copy_from_slice(&d[..n]);
    }
    if let Some(b) = bias {
        for (yo, bo) in y.iter_mut().zip(b) {
            *yo += bo;
        }
    }
}

/// Row-major dense for `x.len() / inp` rows (lengths checked by the caller, `inp > 0`,
/// `w` not empty).
#[inline(always)]
fn dense_row_major_kernel<S: Simd>(
    s: S,
    w: &[f32],
    inp: usize,
    bias: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
) {
    let out = w.len() / inp;
    for (xr, yr) in x.chunks_exact(inp).zip(y.chunks_exact_mut(out)) {
        gemv_row_major(s, w, inp, bias, xr, yr);
    }
}
kernel_entry!(dense_row_major_kernel(
    w: &[f32],
    inp: usize,
    bias: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
));
