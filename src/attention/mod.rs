//! Softmax attention: scaled dot-product attention with PyTorch's semantics
//! ([`AttentionShape`] describes it: several heads, grouped-query, causal with an explicit
//! query offset, sliding window, additive mask), computed by a tiled kernel with an online
//! softmax, so no `q_len x kv_len` buffer exists whatever the lengths.

mod sdpa;
mod shape;

pub use shape::AttentionShape;

use crate::error::{check_len, checked_mul};
use crate::{Engine, Error};
use sdpa::{Sdpa, sdpa_kernel};

impl Engine {
    /// `out = softmax(q k^T * scale + mask) v` for every head (see [`AttentionShape`] for
    /// the layouts and options). `mask`, if given, is added to the scaled scores: one
    /// `[q_len][kv_len]` for every head, or `[heads][q_len][kv_len]`; `-inf` excludes a
    /// key, and a block of keys that is `-inf` for every row of a query tile is skipped.
    /// `scratch` is [`AttentionShape::scratch_len`] long, independent of the lengths.
    ///
    /// Error bound: each output is within `(head_dim + kv_len + 8) * 2^-24` times the
    /// magnitudes of its sums (of `|q k|` in the scores, scaled by the score's effect on the
    /// softmax, and of `p |v|`) of the f64 result, plus the `exp` error (2 ulp).
    ///
    /// ```
    /// use simdnn::{AttentionShape, Engine};
    /// // One head, two queries, three keys of dimension 2; the second query is causal-masked
    /// // to the first two keys.
    /// let shape = AttentionShape::new(1, 2, 3, 2).with_causal(1);
    /// let q = [0.0, 0.0, 1.0, 0.0];
    /// let k = [1.0, 0.0, 0.0, 1.0, 5.0, 5.0];
    /// let v = [1.0, 0.0, 0.0, 1.0, 9.0, 9.0];
    /// let (mut out, mut scratch) = ([0.0; 4], vec![0.0; shape.scratch_len()]);
    /// Engine::new().attention(&shape, &q, &k, &v, None, &mut out, &mut scratch)?;
    /// assert!((out[0] - 0.5).abs() < 1e-6 && (out[1] - 0.5).abs() < 1e-6); // equal scores
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)] // q, k, v, mask, out and scratch are the call
    pub fn attention(
        &self,
        shape: &AttentionShape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: Option<&[f32]>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        shape.validate()?;
        check_len("q", q.len(), shape.q_size())?;
        check_len("k", k.len(), shape.k_size())?;
        check_len("v", v.len(), shape.v_size())?;
        check_len("out", out.len(), shape.out_size())?;
        let mut mask_per_head = false;
        if let Some(m) = mask {
            let per_head = checked_mul(shape.heads, shape.mask_size(), "mask length")?;
            mask_per_head = m.len() == per_head && shape.heads > 1;
            if !mask_per_head {
                check_len("mask", m.len(), shape.mask_size())?;
            }
        }
        check_len("scratch", scratch.len(), shape.scratch_len())?;
        if out.is_empty() {
            return Ok(());
        }
        let job = Sdpa {
            shape: *shape,
            scale: shape.scale_value(),
            q,
            k,
            v,
            k_head_stride: shape.kv_len * shape.head_dim,
            v_head_stride: shape.kv_len * shape.value_dim,
            mask,
            mask_per_head,
        };
        sdpa_kernel::run(self, job, out, scratch);
        Ok(())
    }
}
