//! The tiled scaled dot-product attention kernel (FlashAttention's loop on a CPU): per head,
//! per tile of query rows, the key tiles the masks leave visible stream by with an online
//! softmax, so memory is a few tiles whatever the lengths.
//!
//! A tile of many queries works transposed, queries in the vector lanes: the queries are
//! packed once per tile as a weight panel of the GEMM layer (`Q^T`, scaled), each key tile
//! gives `S^T = K Q^T` with the keys read in place, the online softmax runs down the columns
//! (element-wise maxima and sums across the key rows: no horizontal reduction), and
//! `O += P V` takes the probabilities as computed (`P` given transposed) and the values in
//! place. A few queries (decoding) take dot
//! products on the keys instead, a row at a time (`ops::online_softmax_block`), which
//! streams the keys and values once. At the end `out = acc / sum`.

use super::shape::{AttentionShape, KEY_TILE, QUERY_TILE};
use crate::engine::kernel_entry;
use crate::gemm::driver::{gemm_nn, gemm_nt, packed_rows, part};
use crate::gemm::{Blocking, Layer, Mat, MatMut, PANEL};
use crate::ops::{Activation, Scale, Unchanged, map, map_in_place, online_softmax_block};
use crate::simd::{MAX_LANES, Simd};
use crate::vmath::{VecMath, exp, exp_nonpositive};
use core::num::NonZeroUsize;

/// Query tiles of at most this many rows take dot products on the keys in place (no
/// packing): decoding a few new tokens over a long cache streams the keys once.
const DOT_ROWS: usize = 4;

/// One attention call, lengths checked by the caller.
#[derive(Clone, Copy)]
pub(crate) struct Sdpa<'a> {
    pub(crate) shape: AttentionShape,
    pub(crate) scale: f32,
    pub(crate) q: &'a [f32],
    pub(crate) k: &'a [f32],
    pub(crate) v: &'a [f32],
    /// Floats from one key head to the next in `k` (and in `v`): a KV cache's capacity
    /// times the row length, or `kv_len` times it.
    pub(crate) k_head_stride: usize,
    pub(crate) v_head_stride: usize,
    /// The additive mask, `[q_len][kv_len]` for every head or `[heads][q_len][kv_len]`.
    pub(crate) mask: Option<&'a [f32]>,
    pub(crate) mask_per_head: bool,
    /// The keys this call covers, `lo..hi` (all of them, or a partial result's range).
    pub(crate) keys: (usize, usize),
}

impl<'a> Sdpa<'a> {
    /// A call over contiguous `k` and `v` and all the keys.
    pub(crate) fn new(
        shape: &AttentionShape,
        qkv: (&'a [f32], &'a [f32], &'a [f32]),
        mask: Option<&'a [f32]>,
        mask_per_head: bool,
    ) -> Self {
        let (q, k, v) = qkv;
        Sdpa {
            shape: *shape,
            scale: shape.scale_value(),
            q,
            k,
            v,
            k_head_stride: shape.kv_len * shape.head_dim,
            v_head_stride: shape.kv_len * shape.value_dim,
            mask,
            mask_per_head,
            keys: (0, shape.kv_len),
        }
    }
}

/// Where the results go.
pub(crate) struct Output<'a> {
    /// `[heads][q_len][value_dim]`: the attention, or for a partial result the
    /// unnormalised accumulators.
    pub(crate) rows: &'a mut [f32],
    /// A partial result's maximum and sum of each row, `[heads][q_len]` each.
    pub(crate) partial: Option<(&'a mut [f32], &'a mut [f32])>,
}

/// The scratch tiles (`shape.scratch_len()` floats in all).
struct Tiles<'a> {
    /// The query tile: `Q^T` packed as GEMM panels (transposed path), or the query rows
    /// (row path), scaled; `QUERY_TILE * head_dim`.
    q: &'a mut [f32],
    /// Scores, then probabilities: `[KEY_TILE][QUERY_TILE]` (transposed) or
    /// `[rows][KEY_TILE]`.
    scores: &'a mut [f32],
    /// The unnormalised outputs, `[rows][value_dim]`.
    acc: &'a mut [f32],
    /// The running maximum, sum and last rescaling factor of each query.
    max: &'a mut [f32],
    sum: &'a mut [f32],
    alpha: &'a mut [f32],
}

impl<'a> Tiles<'a> {
    fn split(scratch: &'a mut [f32], d: usize, dv: usize) -> Self {
        // (The caller checked the scratch's length; short, the parts come out empty.)
        let (q, rest) = scratch
            .split_at_mut_checked(QUERY_TILE * d)
            .unwrap_or_default();
        let (scores, rest) = rest
            .split_at_mut_checked(KEY_TILE * QUERY_TILE)
            .unwrap_or_default();
        let (acc, rest) = rest
            .split_at_mut_checked(QUERY_TILE * dv)
            .unwrap_or_default();
        let (max, rest) = rest.split_at_mut_checked(QUERY_TILE).unwrap_or_default();
        let (sum, rest) = rest.split_at_mut_checked(QUERY_TILE).unwrap_or_default();
        Tiles {
            q,
            scores,
            acc,
            max,
            sum,
            alpha: rest.get_mut(..QUERY_TILE).unwrap_or_default(),
        }
    }
}

/// Packs `n` rows (`d` long) times `scale` as the GEMM layer's panels of [`PANEL`]
/// columns (`Q^T`, k-major; the columns past `n` up to `QUERY_TILE` zero), a block of
/// `LANES x LANES` at a time: rows loaded as vectors, transposed in registers, stored as
/// panel rows.
#[inline(always)]
fn pack_rows<S: Simd>(s: S, rows: &[f32], n: usize, d: usize, scale: f32, dst: &mut [f32]) {
    let lanes = S::LANES;
    let scale = s.splat(scale);
    let (Some(dst), Some(panel_len)) =
        (dst.get_mut(..QUERY_TILE * d), NonZeroUsize::new(PANEL * d))
    else {
        return;
    };
    for (p, panel) in dst.chunks_exact_mut(panel_len.get()).enumerate() {
        for col in (0..PANEL).step_by(lanes) {
            let first = p * PANEL + col;
            for k0 in (0..d).step_by(lanes) {
                let w = lanes.min(d - k0);
                let mut block = [s.zero(); MAX_LANES];
                for (i, v) in block.iter_mut().enumerate().take(lanes) {
                    if first + i < n {
                        let src = part::<S>(rows, (first + i) * d + k0, w);
                        let x = if w == lanes {
                            s.load(src)
                        } else {
                            s.load_partial(src, 0.0)
                        };
                        *v = s.mul(x, scale);
                    }
                }
                transpose(s, &mut block);
                for (k, v) in block.iter().enumerate().take(w) {
                    let at = (k0 + k) * PANEL + col;
                    if let Some(dst) = panel.get_mut(at..).and_then(|p| p.get_mut(..lanes)) {
                        s.store(*v, dst);
                    }
                }
            }
        }
    }
}

/// One stage of [`transpose`]: the lanes `half` apart that swap between vectors `half`
/// apart (`from_up`, `from_down` for `permute`) and the lanes that stay (`stays`, 1.0).
struct SwapStage {
    half: usize,
    from_up: [u32; MAX_LANES],
    from_down: [u32; MAX_LANES],
    stays: [f32; MAX_LANES],
}

const fn swap_stage(half: usize) -> SwapStage {
    let mut stage = SwapStage {
        half,
        from_up: [0; MAX_LANES],
        from_down: [0; MAX_LANES],
        stays: [0.0; MAX_LANES],
    };
    let mut lane = 0;
    while lane < MAX_LANES {
        let upper = lane & half != 0;
        stage.from_up[lane] = (if upper { lane } else { lane + half }) as u32;
        stage.from_down[lane] = (if upper { lane - half } else { lane }) as u32;
        stage.stays[lane] = if upper { 0.0 } else { 1.0 };
        lane += 1;
    }
    stage
}

const SWAP_STAGES: [SwapStage; 4] = [swap_stage(8), swap_stage(4), swap_stage(2), swap_stage(1)];

/// Transposes the `LANES x LANES` block held in the first `LANES` vectors (vector = row):
/// in each `2h x 2h` sub-block, for `h = LANES / 2` down to 1, the upper-right and
/// lower-left `h x h` quarters swap (`log2(LANES)` stages of a permute and a select per
/// vector).
#[inline(always)]
fn transpose<S: Simd>(s: S, block: &mut [S::V; MAX_LANES]) {
    for stage in SWAP_STAGES.iter().filter(|st| st.half < S::LANES) {
        let h = stage.half;
        let stays = s.lt(s.splat(0.5), s.load(&stage.stays));
        for i in (0..S::LANES).filter(|i| i & h == 0) {
            let (a, b) = (block[i], block[i + h]);
            block[i] = s.select(stays, a, s.permute(b, &stage.from_down));
            block[i + h] = s.select(stays, s.permute(a, &stage.from_up), b);
        }
    }
}

/// Whether every entry of `rows` rows of the mask (each `cols` from `at`, rows `stride`
/// apart) is `-inf`: such a block is skipped.
#[inline(always)]
fn all_masked(mask: &[f32], at: usize, stride: usize, rows: usize, cols: usize) -> bool {
    (0..rows).all(|i| {
        let row = mask.get(at + i * stride..).and_then(|m| m.get(..cols));
        row.is_some_and(|r| r.iter().all(|&m| m == f32::NEG_INFINITY))
    })
}

/// The attention of every head (see [`AttentionShape`]).
#[inline(always)]
pub(crate) fn sdpa_kernel<S: Blocking + VecMath>(
    s: S,
    job: Sdpa<'_>,
    out: Output<'_>,
    scratch: &mut [f32],
) {
    let Output {
        rows: out,
        mut partial,
    } = out;
    let shape = job.shape;
    let (d, dv) = (shape.head_dim, shape.value_dim);
    let (q_len, kv_len) = (shape.q_len, shape.kv_len);
    let Some(group) = shape
        .heads
        .checked_div(shape.kv_heads)
        .and_then(NonZeroUsize::new)
    else {
        return;
    };
    let mut t = Tiles::split(scratch, d, dv);
    for h in 0..shape.heads {
        let g = h / group;
        let q = part::<S>(job.q, h * q_len * d, q_len * d);
        let k = part::<S>(job.k, g * job.k_head_stride, kv_len * d);
        let v = part::<S>(job.v, g * job.v_head_stride, kv_len * dv);
        let Some(o) = out
            .get_mut(h * q_len * dv..)
            .and_then(|o| o.get_mut(..q_len * dv))
        else {
            return;
        };
        let mask = job.mask.map(|m| {
            let at = if job.mask_per_head {
                h * q_len * kv_len
            } else {
                0
            };
            part::<S>(m, at, q_len * kv_len)
        });
        for q0 in (0..q_len).step_by(QUERY_TILE) {
            let rows = QUERY_TILE.min(q_len - q0);
            let transposed = rows > DOT_ROWS;
            if transposed {
                query_tile(s, &job, &mut t, q0, rows, q, k, v, mask);
            } else {
                query_rows(s, &job, &mut t, q0, rows, q, k, v, mask);
            }
            for (i, (&sum, &max_i)) in t.sum.iter().zip(t.max.iter()).enumerate().take(rows) {
                // out = acc / sum (a row that saw nothing gives zeros); a partial result
                // keeps acc and hands on its maximum and sum.
                let scale = match partial.as_mut() {
                    None if sum > 0.0 => 1.0 / sum,
                    None => 0.0,
                    Some((max, sums)) => {
                        let at = h * q_len + q0 + i;
                        if let (Some(m), Some(l)) = (max.get_mut(at), sums.get_mut(at)) {
                            (*m, *l) = (max_i, sum);
                        }
                        1.0
                    }
                };
                let Some(dst) = o.get_mut((q0 + i) * dv..).and_then(|o| o.get_mut(..dv)) else {
                    return;
                };
                map(s, part::<S>(t.acc, i * dv, dv), dst, Scale(scale));
            }
        }
    }
}
kernel_entry!(sdpa_kernel(job: Sdpa<'_>, out: Output<'_>, scratch: &mut [f32]));

/// A few query rows `q0..q0 + rows` of one head, a row at a time: leaves `acc`, `max` and
/// `sum` of the rows in `t`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn query_rows<S: Blocking + VecMath>(
    s: S,
    job: &Sdpa<'_>,
    t: &mut Tiles<'_>,
    q0: usize,
    rows: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
) {
    let shape = &job.shape;
    let (d, dv, kv_len) = (shape.head_dim, shape.value_dim, shape.kv_len);
    let Some(dv_nz) = NonZeroUsize::new(dv) else {
        return;
    };
    let qs = t.q.get_mut(..rows * d).unwrap_or_default();
    map(s, part::<S>(q, q0 * d, rows * d), qs, Scale(job.scale));
    let clear = |part: &mut [f32], n: usize, value: f32| {
        if let Some(p) = part.get_mut(..n) {
            p.fill(value);
        }
    };
    clear(t.max, rows, f32::NEG_INFINITY);
    clear(t.sum, rows, 0.0);
    clear(t.acc, rows * dv, 0.0);
    // The keys some row of the tile sees: tiles outside are never computed.
    let lo = shape.visible(q0).0.max(job.keys.0);
    let hi = shape.visible(q0 + rows - 1).1.min(job.keys.1);
    for k0 in (lo..hi).step_by(KEY_TILE) {
        let cols = KEY_TILE.min(hi - k0);
        if mask.is_some_and(|m| all_masked(m, q0 * kv_len + k0, kv_len, rows, cols)) {
            continue;
        }
        let scores = t.scores.get_mut(..rows * cols).unwrap_or_default();
        let keys = Mat::dense(part::<S>(k, k0 * d, cols * d), cols, d);
        gemm_nt(
            s,
            Mat::dense(qs, rows, d),
            keys,
            None,
            MatMut::dense(scores, cols),
        );
        let Some(cols_nz) = NonZeroUsize::new(cols) else {
            continue;
        };
        let states = t.max.iter_mut().zip(t.sum.iter_mut());
        let accs = t.acc.chunks_exact_mut(dv_nz.get());
        for (i, ((row, (max, sum)), acc)) in scores
            .chunks_exact_mut(cols_nz.get())
            .zip(states)
            .zip(accs)
            .enumerate()
        {
            // The causal and window bounds of this row, then the mask.
            let (a, b) = shape.visible(q0 + i);
            let (a, b) = (a.max(k0).min(k0 + cols) - k0, b.max(k0).min(k0 + cols) - k0);
            fill_outside(row, a, b);
            if let Some(m) = mask {
                let m = part::<S>(m, (q0 + i) * kv_len + k0, cols);
                for (x, &mv) in row.iter_mut().zip(m) {
                    *x += mv;
                }
            }
            let alpha = online_softmax_block(s, row, max, sum);
            if alpha != 1.0 {
                map_in_place(s, acc, Scale(alpha));
            }
        }
        // acc += P V with one-row tiles (the backend's GEMM tile would repeat the 1 to 4
        // rows to fill its height): 4 vectors of accumulators per row, the values streamed.
        let p = Mat::dense(scores, rows, cols);
        let vt = Mat::dense(part::<S>(v, k0 * dv, cols * dv), cols, dv);
        let acc = t.acc.get_mut(..rows * dv).unwrap_or_default();
        gemm_nn::<S, 1, 4>(s, p, vt, MatMut::dense(acc, dv), true);
    }
}

/// Up to `QUERY_TILE` query rows `q0..q0 + rows` of one head, transposed (queries in the
/// lanes): leaves `acc`, `max` and `sum` of the queries in `t`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn query_tile<S: Blocking + VecMath>(
    s: S,
    job: &Sdpa<'_>,
    t: &mut Tiles<'_>,
    q0: usize,
    rows: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
) {
    let shape = &job.shape;
    let (d, dv, kv_len) = (shape.head_dim, shape.value_dim, shape.kv_len);
    let Some(dv_nz) = NonZeroUsize::new(dv) else {
        return;
    };
    pack_rows(s, part::<S>(q, q0 * d, rows * d), rows, d, job.scale, t.q);
    t.max.fill(f32::NEG_INFINITY);
    t.sum.fill(0.0);
    t.acc.fill(0.0);
    let lo = shape.visible(q0).0.max(job.keys.0);
    let hi = shape.visible(q0 + rows - 1).1.min(job.keys.1);
    let mut k0 = lo;
    while k0 < hi {
        // The panels of queries some key of the tile is visible to, `c0..c0 + width`.
        // Under a causal bound a tile ends where its first viewer would move to the next
        // panel: on the diagonal the panels that see none of its keys are not computed.
        let p0 = visible_queries(shape, k0, q0, rows).0 / PANEL;
        let mut end = (k0 + KEY_TILE).min(hi);
        if let Some(offset) = shape.causal {
            end = end.min(offset + q0 + (p0 + 1) * PANEL);
        }
        let cols = end - k0;
        let p1 = visible_queries(shape, end - 1, q0, rows).1.div_ceil(PANEL);
        let (c0, width) = (p0 * PANEL, (p1 - p0) * PANEL);
        let skip = mask.is_some_and(|m| all_masked(m, q0 * kv_len + k0, kv_len, rows, cols));
        if skip {
            k0 = end;
            continue;
        }
        // S^T = K Q^T: row j holds key k0 + j's score against each query of the panels.
        let Some(width_nz) = NonZeroUsize::new(width) else {
            k0 = end;
            continue;
        };
        let st = t.scores.get_mut(..cols * width).unwrap_or_default();
        let queries = Layer {
            packed: part::<S>(t.q, c0 * d, width * d),
            out: width,
            inp: d,
            bias: None,
            act: Activation::Identity,
        };
        packed_rows(s, queries, Unchanged, part::<S>(k, k0 * d, cols * d), st);
        for (j, row) in st.chunks_exact_mut(width_nz.get()).enumerate() {
            // The queries that see this key (causal bound and window), then the mask.
            let (a, b) = visible_queries(shape, k0 + j, q0, rows);
            let (a, b) = (a.max(c0) - c0, b.max(c0) - c0);
            if a > 0 || b < width {
                fill_outside(row, a, b);
            }
            if let Some(m) = mask {
                let m = m.get((q0 + c0) * kv_len + k0 + j..).unwrap_or_default();
                let column = m.iter().step_by(kv_len.max(1));
                for (x, &mv) in row.iter_mut().zip(column).take(b).skip(a) {
                    *x += mv;
                }
            }
        }
        // Rescale the accumulators of the queries whose maximum grew (after the first
        // tiles, rarely any).
        let lanes = c0..c0 + width;
        let max = t.max.get_mut(lanes.clone()).unwrap_or_default();
        let sum = t.sum.get_mut(lanes.clone()).unwrap_or_default();
        let alpha = t.alpha.get_mut(lanes).unwrap_or_default();
        let acc = t
            .acc
            .get_mut(c0 * dv..(c0 + width) * dv)
            .unwrap_or_default();
        if online_softmax_columns(s, st, max, sum, alpha) {
            for (acc_row, &a) in acc.chunks_exact_mut(dv_nz.get()).zip(alpha.iter()) {
                if a != 1.0 {
                    map_in_place(s, acc_row, Scale(a));
                }
            }
        }
        // O += P V: P^T (as computed) is P given transposed, V as stored.
        let p_t = Mat::dense(st, cols, width);
        let vt = Mat::dense(part::<S>(v, k0 * dv, cols * dv), cols, dv);
        s.gemm_tn(p_t, vt, MatMut::dense(acc, dv), true);
        k0 = end;
    }
}

/// The queries of the tile (`q0..q0 + rows`, relative `a..b`) that see key `key`.
#[inline(always)]
fn visible_queries(shape: &AttentionShape, key: usize, q0: usize, rows: usize) -> (usize, usize) {
    match shape.causal {
        None => (0, rows),
        Some(offset) => {
            // Query i sees key j when j <= offset + i and, with a window w, offset + i < j + w.
            let first = (key.saturating_sub(offset)).saturating_sub(q0).min(rows);
            let end = shape.window.map_or(rows, |w| {
                (key + w)
                    .saturating_sub(offset)
                    .saturating_sub(q0)
                    .min(rows)
            });
            (first, end.max(first))
        }
    }
}

/// The online softmax update of a key tile for some panels of queries at once: `st` is
/// `[keys][width]` scores (`width = max.len()`), becomes `exp(st - max')`; `max`, `sum` and `alpha` (the
/// factor on what was accumulated before) are updated per query, across the lanes. A query
/// whose maximum is still `-inf` gets zeros and `alpha = 1`: `exp` never sees `-inf - -inf`.
/// Returns whether some `alpha` is not 1.
#[inline(always)]
fn online_softmax_columns<S: VecMath>(
    s: S,
    st: &mut [f32],
    max: &mut [f32],
    sum: &mut [f32],
    alpha: &mut [f32],
) -> bool {
    let neg_inf = s.splat(f32::NEG_INFINITY);
    let mut grew = false;
    let Some(width) = NonZeroUsize::new(max.len()) else {
        return false;
    };
    let width = width.get();
    // (Every slice below is whole: `width` is a multiple of the lanes and the parts are
    // `width` long. Out of range, a lane block is skipped rather than a panic.)
    for c in (0..width).step_by(S::LANES) {
        let lanes = c..c + S::LANES;
        let (Some(max), Some(sum), Some(alpha)) = (
            max.get_mut(lanes.clone()),
            sum.get_mut(lanes.clone()),
            alpha.get_mut(lanes.clone()),
        ) else {
            break;
        };
        let mut m = s.load(max);
        let old = m;
        for row in st.chunks_exact(width) {
            if let Some(x) = row.get(lanes.clone()) {
                m = s.max(m, s.load(x));
            }
        }
        // Queries that have seen a key subtract their maximum; the others subtract 0 from
        // scores that are all -inf.
        let seen = s.lt(neg_inf, m);
        let m_safe = s.select(seen, m, s.zero());
        let mut total = s.zero();
        for row in st.chunks_exact_mut(width) {
            if let Some(x) = row.get_mut(lanes.clone()) {
                let p = exp_nonpositive(s, s.sub(s.load(x), m_safe));
                s.store(p, x);
                total = s.add(total, p);
            }
        }
        let a = s.select(seen, exp(s, s.sub(old, m_safe)), s.splat(1.0));
        // The maximum grew somewhere in these lanes (the old one was smaller).
        grew |= s.reduce_max(s.sub(m, old)) != 0.0;
        s.store(s.mul_add(s.load(sum), a, total), sum);
        s.store(m, max);
        s.store(a, alpha);
    }
    grew
}

/// `-inf` before `a` and from `b` on (`a <= b <= row.len()`).
#[inline(always)]
fn fill_outside(row: &mut [f32], a: usize, b: usize) {
    if let Some(head) = row.get_mut(..a) {
        head.fill(f32::NEG_INFINITY);
    }
    if let Some(tail) = row.get_mut(b..) {
        tail.fill(f32::NEG_INFINITY);
    }
}
