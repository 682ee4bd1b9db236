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
use crate::gemm::driver::{gemm_nn, gemm_nt, packed_rows};
use crate::gemm::{Blocking, Layer, Mat, MatMut, PANEL};
use crate::ops::{Activation, Scale, Unchanged, map, map_in_place, online_softmax_block};
use crate::simd::{MAX_LANES, Simd};
use crate::vmath::{VecMath, exp, exp_nonpositive};

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
        let (q, rest) = scratch.split_at_mut(QUERY_TILE * d);
        let (scores, rest) = rest.split_at_mut(KEY_TILE * QUERY_TILE);
        let (acc, rest) = rest.split_at_mut(QUERY_TILE * dv);
        let (max, rest) = rest.split_at_mut(QUERY_TILE);
        let (sum, rest) = rest.split_at_mut(QUERY_TILE);
        Tiles {
            q,
            scores,
            acc,
            max,
            sum,
            alpha: &mut rest[..QUERY_TILE],
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
    for (p, panel) in dst[..QUERY_TILE * d]
        .chunks_exact_mut(PANEL * d)
        .enumerate()
    {
        for col in (0..PANEL).step_by(lanes) {
            let first = p * PANEL + col;
            for k0 in (0..d).step_by(lanes) {
                let w = lanes.min(d - k0);
                let mut block = [s.zero(); MAX_LANES];
                for (i, v) in block.iter_mut().enumerate().take(lanes) {
                    if first + i < n {
                        let src = &rows[(first + i) * d + k0..][..w];
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
                    s.store(*v, &mut panel[(k0 + k) * PANEL + col..][..lanes]);
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
        mask[at + i * stride..][..cols]
            .iter()
            .all(|&m| m == f32::NEG_INFINITY)
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
    let group = shape.heads / shape.kv_heads;
    let mut t = Tiles::split(scratch, d, dv);
    for h in 0..shape.heads {
        let g = h / group;
        let q = &job.q[h * q_len * d..][..q_len * d];
        let k = &job.k[g * job.k_head_stride..][..kv_len * d];
        let v = &job.v[g * job.v_head_stride..][..kv_len * dv];
        let o = &mut out[h * q_len * dv..][..q_len * dv];
        let mask = job.mask.map(|m| {
            let at = if job.mask_per_head {
                h * q_len * kv_len
            } else {
                0
            };
            &m[at..at + q_len * kv_len]
        });
        for q0 in (0..q_len).step_by(QUERY_TILE) {
            let rows = QUERY_TILE.min(q_len - q0);
            let transposed = rows > DOT_ROWS;
            if transposed {
                query_tile(s, &job, &mut t, q0, rows, q, k, v, mask);
            } else {
                query_rows(s, &job, &mut t, q0, rows, q, k, v, mask);
            }
            for i in 0..rows {
                let sum = t.sum[i];
                // out = acc / sum (a row that saw nothing gives zeros); a partial result
                // keeps acc and hands on its maximum and sum.
                let scale = match partial.as_mut() {
                    None if sum > 0.0 => 1.0 / sum,
                    None => 0.0,
                    Some((max, sums)) => {
                        max[h * q_len + q0 + i] = t.max[i];
                        sums[h * q_len + q0 + i] = sum;
                        1.0
                    }
                };
                let dst = &mut o[(q0 + i) * dv..][..dv];
                map(s, &t.acc[i * dv..][..dv], dst, Scale(scale));
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
    let qs = &mut t.q[..rows * d];
    map(s, &q[q0 * d..][..rows * d], qs, Scale(job.scale));
    t.max[..rows].fill(f32::NEG_INFINITY);
    t.sum[..rows].fill(0.0);
    t.acc[..rows * dv].fill(0.0);
    // The keys some row of the tile sees: tiles outside are never computed.
    let lo = shape.visible(q0).0.max(job.keys.0);
    let hi = shape.visible(q0 + rows - 1).1.min(job.keys.1);
    for k0 in (lo..hi).step_by(KEY_TILE) {
        let cols = KEY_TILE.min(hi - k0);
        if mask.is_some_and(|m| all_masked(m, q0 * kv_len + k0, kv_len, rows, cols)) {
            continue;
        }
        let scores = &mut t.scores[..rows * cols];
        let keys = Mat::dense(&k[k0 * d..(k0 + cols) * d], cols, d);
        gemm_nt(
            s,
            Mat::dense(qs, rows, d),
            keys,
            None,
            MatMut::dense(scores, cols),
        );
        for (i, row) in scores.chunks_exact_mut(cols).enumerate() {
            // The causal and window bounds of this row, then the mask.
            let (a, b) = shape.visible(q0 + i);
            let (a, b) = (a.clamp(k0, k0 + cols) - k0, b.clamp(k0, k0 + cols) - k0);
            row[..a].fill(f32::NEG_INFINITY);
            row[b..].fill(f32::NEG_INFINITY);
            if let Some(m) = mask {
                let m = &m[(q0 + i) * kv_len + k0..][..cols];
                for (x, &mv) in row.iter_mut().zip(m) {
                    *x += mv;
                }
            }
            let alpha = online_softmax_block(s, row, &mut t.max[i], &mut t.sum[i]);
            if alpha != 1.0 {
                map_in_place(s, &mut t.acc[i * dv..][..dv], Scale(alpha));
            }
        }
        // acc += P V with one-row tiles (the backend's GEMM tile would repeat the 1 to 4
        // rows to fill its height): 4 vectors of accumulators per row, the values streamed.
        let p = Mat::dense(scores, rows, cols);
        let vt = Mat::dense(&v[k0 * dv..(k0 + cols) * dv], cols, dv);
        gemm_nn::<S, 1, 4>(s, p, vt, MatMut::dense(&mut t.acc[..rows * dv], dv), true);
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
    pack_rows(s, &q[q0 * d..][..rows * d], rows, d, job.scale, t.q);
    t.max.fill(f32::NEG_INFINITY);
    t.sum.fill(0.0);
    t.acc[..dv * QUERY_TILE].fill(0.0);
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
        let st = &mut t.scores[..cols * width];
        let queries = Layer {
            packed: &t.q[c0 * d..(c0 + width) * d],
            out: width,
            inp: d,
            bias: None,
            act: Activation::Identity,
        };
        packed_rows(s, queries, Unchanged, &k[k0 * d..end * d], st);
        for (j, row) in st.chunks_exact_mut(width).enumerate() {
            // The queries that see this key (causal bound and window), then the mask.
            let (a, b) = visible_queries(shape, k0 + j, q0, rows);
            let (a, b) = (a.max(c0) - c0, b.max(c0) - c0);
            if a > 0 || b < width {
                row[..a].fill(f32::NEG_INFINITY);
                row[b..].fill(f32::NEG_INFINITY);
            }
            if let Some(m) = mask {
                let m = &m[(q0 + c0) * kv_len + k0 + j..];
                for (i, x) in row.iter_mut().enumerate().take(b).skip(a) {
                    *x += m[i * kv_len];
                }
            }
        }
        // Rescale the accumulators of the queries whose maximum grew (after the first
        // tiles, rarely any).
        let lanes = c0..c0 + width;
        let (max, sum) = (&mut t.max[lanes.clone()], &mut t.sum[lanes.clone()]);
        let alpha = &mut t.alpha[lanes.clone()];
        let acc = &mut t.acc[c0 * dv..(c0 + width) * dv];
        if online_softmax_columns(s, st, max, sum, alpha) {
            for (acc_row, &a) in acc.chunks_exact_mut(dv).zip(alpha.iter()) {
                if a != 1.0 {
                    map_in_place(s, acc_row, Scale(a));
                }
            }
        }
        // O += P V: P^T (as computed) is P given transposed, V as stored.
        let p_t = Mat::dense(st, cols, width);
        let vt = Mat::dense(&v[k0 * dv..end * dv], cols, dv);
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
    let width = max.len();
    for c in (0..width).step_by(S::LANES) {
        let lanes = c..c + S::LANES;
        let mut m = s.load(&max[lanes.clone()]);
        let old = m;
        for row in st.chunks_exact(width) {
            m = s.max(m, s.load(&row[lanes.clone()]));
        }
        // Queries that have seen a key subtract their maximum; the others subtract 0 from
        // scores that are all -inf.
        let seen = s.lt(neg_inf, m);
        let m_safe = s.select(seen, m, s.zero());
        let mut total = s.zero();
        for row in st.chunks_exact_mut(width) {
            let p = exp_nonpositive(s, s.sub(s.load(&row[lanes.clone()]), m_safe));
            s.store(p, &mut row[lanes.clone()]);
            total = s.add(total, p);
        }
        let a = s.select(seen, exp(s, s.sub(old, m_safe)), s.splat(1.0));
        // The maximum grew somewhere in these lanes (the old one was smaller).
        grew |= s.reduce_max(s.sub(m, old)) != 0.0;
        let l = s.mul_add(s.load(&sum[lanes.clone()]), a, total);
        s.store(l, &mut sum[lanes.clone()]);
        s.store(m, &mut max[lanes.clone()]);
        s.store(a, &mut alpha[lanes]);
    }
    grew
}
