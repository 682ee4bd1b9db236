//! Softmax attention: scaled dot-product attention with PyTorch's semantics
//! ([`AttentionShape`] describes it: several heads, grouped-query, causal with an explicit
//! query offset, sliding window, additive mask), computed by a tiled kernel with an online
//! softmax, so no `q_len x kv_len` buffer exists whatever the lengths.

mod cache;
mod fixed;
mod mha;
mod partial;
mod pool;
mod sdpa;
mod shape;

pub use cache::KvCache;
pub use fixed::{
    AdditivePool, Attention, DotPool, MhaBiases, MultiHeadAttention, pack_additive, pack_mha,
};
pub use mha::{MhaShape, MhaWeights, PackedMha};
pub use pool::{AdditiveShape, PackedAdditive};
pub use shape::AttentionShape;

use crate::error::{check_len, checked_mul};
use crate::gemm::Mat;
use crate::gemm::driver::gemm_packed_kernel;
use crate::{Engine, Error};
use core::ops::Range;
use partial::{finish_kernel, merge_kernel};
use pool::{AdditiveJob, additive_kernel, dot_pool_kernel, items};
use sdpa::{Output, Sdpa, sdpa_kernel};

/// Checks the mask's length: `Ok(true)` for one mask per head.
fn check_mask(shape: &AttentionShape, mask: Option<&[f32]>) -> Result<bool, Error> {
    let Some(m) = mask else {
        return Ok(false);
    };
    let per_head = checked_mul(shape.heads, shape.mask_size(), "mask length")?;
    if m.len() == per_head && shape.heads > 1 {
        return Ok(true);
    }
    check_len("mask", m.len(), shape.mask_size())?;
    Ok(false)
}

/// A partial attention result over a range of the keys, for every head and query row: the
/// maximum scaled score `max` and the sum of `exp(score - max)` (`[heads][q_len]` each) and
/// the unnormalised output rows `acc` (`[heads][q_len][value_dim]`). Partials over ranges
/// that cover the keys merge ([`Engine::attention_merge`], in any order) into what one call
/// over all the keys gives, within rounding; [`Engine::attention_finish`] turns one into the
/// output. A row that saw no key has `max = -inf`, `sum = 0` and `acc` zeros.
#[derive(Debug)]
pub struct AttentionPartial<'a> {
    /// Per row, the largest score seen.
    pub max: &'a mut [f32],
    /// Per row, the sum of `exp(score - max)`.
    pub sum: &'a mut [f32],
    /// Per row, `sum_j exp(score_j - max) v_j`.
    pub acc: &'a mut [f32],
}

impl AttentionPartial<'_> {
    /// Checks that the three parts hold whole rows: returns the row length.
    fn check(&self, name: &'static str) -> Result<usize, Error> {
        check_len(name, self.sum.len(), self.max.len())?;
        if self.max.is_empty() {
            return check_len(name, self.acc.len(), 0).map(|()| 0);
        }
        if !self.acc.len().is_multiple_of(self.max.len()) {
            return Err(Error::NotAMultiple {
                arg: name,
                len: self.acc.len(),
                of: self.max.len(),
            });
        }
        Ok(self.acc.len() / self.max.len())
    }
}

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
        let mask_per_head = check_mask(shape, mask)?;
        check_len("scratch", scratch.len(), shape.scratch_len())?;
        if out.is_empty() {
            return Ok(());
        }
        let job = Sdpa::new(shape, (q, k, v), mask, mask_per_head);
        let out = Output {
            rows: out,
            partial: None,
        };
        sdpa_kernel::run(self, job, out, scratch);
        Ok(())
    }

    /// [`Engine::attention`] of new queries over a [`KvCache`], read in place: `shape` is
    /// the attention's, with `kv_len = cache.len()` (the new tokens' keys and values appended
    /// already) and the cache's heads and sizes; for autoregressive decoding make it causal
    /// with the offset `cache.len() - q_len` (each new token sees the cache and itself).
    ///
    /// ```
    /// use simdnn::{AttentionShape, Engine, KvCache};
    /// let (mut k, mut v) = (vec![0.0; 64 * 8], vec![0.0; 64 * 8]);
    /// let mut cache = KvCache::new(&mut k, &mut v, 1, 64, 8, 8)?;
    /// let nn = Engine::new();
    /// let mut scratch = vec![0.0; AttentionShape::new(2, 1, 1, 8).scratch_len()];
    /// for step in 0..3 {
    ///     cache.append(&[0.1 * step as f32; 8], &[step as f32; 8])?; // this token's k, v
    ///     let shape = AttentionShape::new(2, 1, cache.len(), 8)
    ///         .with_kv_heads(1)
    ///         .with_causal(cache.len() - 1);
    ///     let mut out = [0.0; 2 * 8];
    ///     nn.attention_cached(&shape, &[0.5; 2 * 8], &cache, None, &mut out, &mut scratch)?;
    ///     assert!(out.iter().all(|&o| o >= 0.0 && o <= step as f32));
    /// }
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn attention_cached(
        &self,
        shape: &AttentionShape,
        q: &[f32],
        cache: &KvCache<'_>,
        mask: Option<&[f32]>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        shape.validate()?;
        let (k, v, capacity, d, dv) = cache.parts();
        check_len("shape.kv_len", shape.kv_len, cache.len())?;
        check_len("shape.kv_heads", shape.kv_heads, cache.kv_heads())?;
        check_len("shape.head_dim", shape.head_dim, d)?;
        check_len("shape.value_dim", shape.value_dim, dv)?;
        check_len("q", q.len(), shape.q_size())?;
        check_len("out", out.len(), shape.out_size())?;
        let mask_per_head = check_mask(shape, mask)?;
        check_len("scratch", scratch.len(), shape.scratch_len())?;
        if out.is_empty() {
            return Ok(());
        }
        // The cache's rows are read in place: one head is `capacity` rows from the next.
        let job = Sdpa {
            k_head_stride: capacity * d,
            v_head_stride: capacity * dv,
            ..Sdpa::new(shape, (q, k, v), mask, mask_per_head)
        };
        let out = Output {
            rows: out,
            partial: None,
        };
        sdpa_kernel::run(self, job, out, scratch);
        Ok(())
    }

    /// [`Engine::attention`] over the keys `keys` only (a range of `0..kv_len`; the causal
    /// bound, window and mask apply by absolute key index), as a mergeable
    /// [`AttentionPartial`]: split a long KV cache into ranges, run them on several threads,
    /// merge. The partial's parts are `heads * q_len` and `heads * q_len * value_dim` long.
    ///
    /// ```
    /// use simdnn::{AttentionPartial, AttentionShape, Engine};
    /// let shape = AttentionShape::new(1, 1, 4, 2);
    /// let (q, k, v) = ([1.0, 0.0], [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]);
    /// let v = [v[0], 0.0, v[1], 0.0, v[2], 0.0, v[3], 0.0];
    /// let nn = Engine::new();
    /// let mut scratch = vec![0.0; shape.scratch_len()];
    /// let (mut m1, mut s1, mut a1) = ([0.0], [0.0], [0.0; 2]);
    /// let (mut m2, mut s2, mut a2) = ([0.0], [0.0], [0.0; 2]);
    /// let mut first = AttentionPartial { max: &mut m1, sum: &mut s1, acc: &mut a1 };
    /// let mut second = AttentionPartial { max: &mut m2, sum: &mut s2, acc: &mut a2 };
    /// nn.attention_partial(&shape, 0..2, &q, &k, &v, None, &mut first, &mut scratch)?;
    /// nn.attention_partial(&shape, 2..4, &q, &k, &v, None, &mut second, &mut scratch)?;
    /// nn.attention_merge(&mut first, &second)?;
    /// let (mut merged, mut whole) = ([0.0; 2], [0.0; 2]);
    /// nn.attention_finish(&first, &mut merged)?;
    /// nn.attention(&shape, &q, &k, &v, None, &mut whole, &mut scratch)?;
    /// assert!((merged[0] - whole[0]).abs() < 1e-6);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)] // the attention's arguments and the range
    pub fn attention_partial(
        &self,
        shape: &AttentionShape,
        keys: Range<usize>,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: Option<&[f32]>,
        partial: &mut AttentionPartial<'_>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        shape.validate()?;
        check_len("q", q.len(), shape.q_size())?;
        check_len("k", k.len(), shape.k_size())?;
        check_len("v", v.len(), shape.v_size())?;
        if keys.start > keys.end || keys.end > shape.kv_len {
            return Err(Error::InvalidShape {
                what: "keys must be a range within 0..kv_len",
            });
        }
        let rows = shape.heads * shape.q_len;
        check_len("partial.max", partial.max.len(), rows)?;
        check_len("partial.sum", partial.sum.len(), rows)?;
        check_len("partial.acc", partial.acc.len(), shape.out_size())?;
        let mask_per_head = check_mask(shape, mask)?;
        check_len("scratch", scratch.len(), shape.scratch_len())?;
        if rows == 0 {
            return Ok(());
        }
        let job = Sdpa {
            keys: (keys.start, keys.end),
            ..Sdpa::new(shape, (q, k, v), mask, mask_per_head)
        };
        let out = Output {
            rows: partial.acc,
            partial: Some((partial.max, partial.sum)),
        };
        sdpa_kernel::run(self, job, out, scratch);
        Ok(())
    }

    /// Merges `from` into `into` (partials of the same heads, queries and value size over
    /// other keys): the result is the partial over both ranges.
    pub fn attention_merge(
        &self,
        into: &mut AttentionPartial<'_>,
        from: &AttentionPartial<'_>,
    ) -> Result<(), Error> {
        let dv = into.check("into")?;
        let from_dv = from.check("from")?;
        check_len("from", from.max.len(), into.max.len())?;
        check_len("from", from_dv, dv)?;
        merge_kernel::run(
            self, into.max, into.sum, into.acc, from.max, from.sum, from.acc,
        );
        Ok(())
    }

    /// The attention output of a (merged) partial: `out = acc / sum` row by row, zeros
    /// for a row that saw no key. `out` is as long as `partial.acc`.
    pub fn attention_finish(
        &self,
        partial: &AttentionPartial<'_>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        partial.check("partial")?;
        check_len("out", out.len(), partial.acc.len())?;
        finish_kernel::run(self, partial.sum, partial.acc, out);
        Ok(())
    }

    /// Projects the keys of an additive attention once, `projected = keys W_k^T`
    /// (`keys` is `[n][key_dim]`, `projected` `[n][attn_dim]`): the projections serve every
    /// query over the same keys (encoder-decoder attention).
    pub fn additive_keys(
        &self,
        attention: &PackedAdditive<'_>,
        keys: &[f32],
        projected: &mut [f32],
    ) -> Result<(), Error> {
        let shape = attention.shape();
        let n = items("keys", keys.len(), shape.key_dim)?;
        check_len(
            "projected",
            projected.len(),
            checked_mul(n, shape.attn_dim, "projected length")?,
        )?;
        if n > 0 {
            gemm_packed_kernel::run(self, attention.parts()?.1, keys, projected);
        }
        Ok(())
    }

    /// Additive (Bahdanau) attention pooling of one query over `n` items:
    /// `e_i = w . tanh(W_q query + b + W_k k_i)` (the keys projected by
    /// [`Engine::additive_keys`]: `projected` is `[n][attn_dim]`), `weights = softmax(e)`
    /// (`[n]`), `context = sum_i weights_i values_i` (`values` is `[n][value_dim]`,
    /// `context` `[value_dim]`). `scratch` is `attn_dim` long. No items: zero context.
    #[allow(clippy::too_many_arguments)] // the inputs and outputs of the pooling
    pub fn additive_pool(
        &self,
        attention: &PackedAdditive<'_>,
        query: &[f32],
        projected: &[f32],
        values: &[f32],
        weights: &mut [f32],
        context: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let shape = attention.shape();
        check_len("query", query.len(), shape.query_dim)?;
        let n = items("projected", projected.len(), shape.attn_dim)?;
        check_len("weights", weights.len(), n)?;
        check_len(
            "values",
            values.len(),
            checked_mul(n, context.len(), "values length")?,
        )?;
        check_len("scratch", scratch.len(), shape.attn_dim)?;
        if context.is_empty() && n > 0 {
            return Err(Error::ZeroDimension { arg: "context" });
        }
        let (query_layer, _, w) = attention.parts()?;
        let job = AdditiveJob {
            query_layer,
            w,
            query,
            projected,
            values,
        };
        additive_kernel::run(self, job, weights, context, scratch);
        Ok(())
    }

    /// Dot-product attention pooling of one query over `n` items: `e_i = keys_i . query`
    /// (`keys` is `[n][query.len()]`; for `e_i = MLP(v_i) . h`, the keys are the MLP's
    /// outputs, e.g. from [`Engine::dense`]), `weights = softmax(e)` (`[n]`), `context =
    /// sum_i weights_i values_i` (`values` is `[n][context.len()]`). No scale: scale the
    /// query for scaled scores.
    ///
    /// ```
    /// use simdnn::Engine;
    /// let keys = [1.0, 0.0, 0.0, 1.0]; // two items of 2 features
    /// let values = [10.0, 20.0];        // one value each
    /// let (mut weights, mut context) = ([0.0; 2], [0.0; 1]);
    /// Engine::new().attention_pool(&keys, &[0.0, 0.0], &values, &mut weights, &mut context)?;
    /// assert!((context[0] - 15.0).abs() < 1e-5); // equal scores
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn attention_pool(
        &self,
        keys: &[f32],
        query: &[f32],
        values: &[f32],
        weights: &mut [f32],
        context: &mut [f32],
    ) -> Result<(), Error> {
        if query.is_empty() {
            return Err(Error::ZeroDimension { arg: "query" });
        }
        let n = items("keys", keys.len(), query.len())?;
        check_len("weights", weights.len(), n)?;
        check_len(
            "values",
            values.len(),
            checked_mul(n, context.len(), "values length")?,
        )?;
        if context.is_empty() && n > 0 {
            return Err(Error::ZeroDimension { arg: "context" });
        }
        if n == 0 {
            context.fill(0.0);
            return Ok(());
        }
        let keys = Mat::dense(keys, n, query.len());
        dot_pool_kernel::run(self, keys, query, values, weights, context);
        Ok(())
    }
}
