//! The tiled scaled dot-product attention kernel (FlashAttention's loop on a CPU): per head,
//! per tile of query rows, the key tiles the masks leave visible stream by with an online
//! softmax, so memory is a few tiles whatever the lengths.
//!
//! Per key tile: `S = (Q scale) K^T` on the GEMM layer (the tile's keys packed as a weight
//! panel; a few query rows take dot products on the keys in place instead, which streams
//! them once: decoding), the causal/window bounds and the mask applied, the online softmax
//! update of each row (`ops::online_softmax_block`), the accumulator rescaled where the
//! row maximum grew, and `acc += P V` on the GEMM layer. At the end `out = acc / sum`.

use super::shape::{AttentionShape, KEY_TILE, QUERY_TILE};
use crate::engine::kernel_entry;
use crate::gemm::driver::{gemm_nt, packed_rows};
use crate::gemm::{Blocking, Layer, Mat, MatMut, PANEL};
use crate::ops::{Activation, Scale, Unchanged, map, map_in_place, online_softmax_block};
use crate::vmath::VecMath;

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
}

/// The scratch tiles (`shape.scratch_len()` floats in all).
struct Tiles<'a> {
    /// The query rows times the scale, `[QUERY_TILE][head_dim]`.
    q: &'a mut [f32],
    /// The key tile packed as GEMM panels, `KEY_TILE * head_dim`.
    kt: &'a mut [f32],
    /// Scores, then probabilities, `[QUERY_TILE][KEY_TILE]`.
    scores: &'a mut [f32],
    /// The unnormalised outputs, `[QUERY_TILE][value_dim]`.
    acc: &'a mut [f32],
    /// The running maximum and sum of each row.
    max: &'a mut [f32],
    sum: &'a mut [f32],
}

impl<'a> Tiles<'a> {
    fn split(scratch: &'a mut [f32], d: usize, dv: usize) -> Self {
        let (q, rest) = scratch.split_at_mut(QUERY_TILE * d);
        let (kt, rest) = rest.split_at_mut(KEY_TILE * d);
        let (scores, rest) = rest.split_at_mut(QUERY_TILE * KEY_TILE);
        let (acc, rest) = rest.split_at_mut(QUERY_TILE * dv);
        let (max, rest) = rest.split_at_mut(QUERY_TILE);
        Tiles {
            q,
            kt,
            scores,
            acc,
            max,
            sum: &mut rest[..QUERY_TILE],
        }
    }
}

/// Packs `cols` key rows (`d` long) as the GEMM layer's panels of [`PANEL`] columns,
/// k-major, the columns past `cols` zero. Each key row is read once, contiguously, and
/// written with a stride of one panel row.
#[inline(always)]
fn pack_keys(keys: &[f32], cols: usize, d: usize, kt: &mut [f32]) {
    let panels = cols.div_ceil(PANEL);
    let kt = &mut kt[..panels * PANEL * d];
    for (panel, keys) in kt.chunks_exact_mut(PANEL * d).zip(keys.chunks(PANEL * d)) {
        let n = keys.len() / d;
        for (j, key) in keys.chunks_exact(d).enumerate() {
            for (w, &x) in panel[j..].iter_mut().step_by(PANEL).zip(key) {
                *w = x;
            }
        }
        if n < PANEL {
            for row in panel.chunks_exact_mut(PANEL) {
                row[n..].fill(0.0);
            }
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
    out: &mut [f32],
    scratch: &mut [f32],
) {
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
            query_tile(s, &job, &mut t, q0, rows, q, k, v, mask);
            // out = acc / sum; a row that saw nothing gives zeros.
            for i in 0..rows {
                let dst = &mut o[(q0 + i) * dv..][..dv];
                let sum = t.sum[i];
                if sum > 0.0 {
                    map(s, &t.acc[i * dv..][..dv], dst, Scale(1.0 / sum));
                } else {
                    dst.fill(0.0);
                }
            }
        }
    }
}
kernel_entry!(sdpa_kernel(job: Sdpa<'_>, out: &mut [f32], scratch: &mut [f32]));

/// Rows `q0..q0 + rows` of one head: leaves `acc`, `max` and `sum` of the rows in `t`.
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
    let qs = &mut t.q[..rows * d];
    map(s, &q[q0 * d..][..rows * d], qs, Scale(job.scale));
    t.max[..rows].fill(f32::NEG_INFINITY);
    t.sum[..rows].fill(0.0);
    t.acc[..rows * dv].fill(0.0);
    // The keys some row of the tile sees: tiles outside are never computed.
    let (lo, _) = shape.visible(q0);
    let (_, hi) = shape.visible(q0 + rows - 1);
    for k0 in (lo..hi).step_by(KEY_TILE) {
        let cols = KEY_TILE.min(hi - k0);
        if mask.is_some_and(|m| all_masked(m, q0 * kv_len + k0, kv_len, rows, cols)) {
            continue;
        }
        let scores = &mut t.scores[..rows * cols];
        let keys = &k[k0 * d..(k0 + cols) * d];
        if rows <= DOT_ROWS {
            let a = Mat::dense(qs, rows, d);
            gemm_nt(
                s,
                a,
                Mat::dense(keys, cols, d),
                None,
                MatMut::dense(scores, cols),
            );
        } else {
            pack_keys(keys, cols, d, t.kt);
            let panels = cols.div_ceil(PANEL) * PANEL * d;
            let layer = Layer {
                packed: &t.kt[..panels],
                out: cols,
                inp: d,
                bias: None,
                act: Activation::Identity,
            };
            packed_rows(s, layer, Unchanged, qs, scores);
        }
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
        let p = Mat::dense(scores, rows, cols);
        let vt = Mat::dense(&v[k0 * dv..(k0 + cols) * dv], cols, dv);
        s.gemm_nn(p, vt, MatMut::dense(&mut t.acc[..rows * dv], dv), true);
    }
}
