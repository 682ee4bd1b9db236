//! The multi-head attention layer: query, key, value and output projections on the GEMM
//! layer around the attention kernel, over a whole sequence or token by token over a
//! [`KvCache`].

use super::cache::KvCache;
use super::shape::AttentionShape;
use crate::error::{check_len, checked_mul};
use crate::gemm::driver::{gemm_packed_kernel, row_at};
use crate::gemm::{Layer, PANEL, pack_into, packed_len, put, zero};
use crate::ops::Activation;
use crate::{Engine, Error};

/// The sizes of a multi-head attention layer: tokens of `embed` features, `heads` query
/// heads and `kv_heads` key/value heads (grouped-query when fewer) of `head_dim` each.
/// PyTorch's `nn.MultiheadAttention(embed, heads)` is `MhaShape::new(embed, heads,
/// embed / heads)`.
///
/// ```
/// use simdnn::MhaShape;
/// let shape = MhaShape::new(64, 8, 8).with_kv_heads(2);
/// assert_eq!(shape.q_proj_len(), 64 * 64);
/// assert_eq!(shape.kv_proj_len(), 16 * 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MhaShape {
    /// Features per token (input and output).
    pub embed: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads; divides `heads`.
    pub kv_heads: usize,
    /// Features per head (queries, keys and values).
    pub head_dim: usize,
}

impl MhaShape {
    /// `heads` heads of `head_dim` (as many key/value heads) over tokens of `embed`.
    pub const fn new(embed: usize, heads: usize, head_dim: usize) -> Self {
        MhaShape {
            embed,
            heads,
            kv_heads: heads,
            head_dim,
        }
    }

    /// With `kv_heads` key/value heads (grouped-query attention).
    pub const fn with_kv_heads(mut self, kv_heads: usize) -> Self {
        self.kv_heads = kv_heads;
        self
    }

    const fn q_out(&self) -> usize {
        self.heads.saturating_mul(self.head_dim)
    }

    const fn kv_out(&self) -> usize {
        self.kv_heads.saturating_mul(self.head_dim)
    }

    /// Length of `W_q` (`[heads * head_dim][embed]`) and of `W_o` (`[embed][heads *
    /// head_dim]`).
    pub const fn q_proj_len(&self) -> usize {
        self.q_out().saturating_mul(self.embed)
    }

    /// Length of `W_k` and of `W_v` (`[kv_heads * head_dim][embed]` each).
    pub const fn kv_proj_len(&self) -> usize {
        self.kv_out().saturating_mul(self.embed)
    }

    /// Floats of the packed weights (saturating).
    pub const fn packed_len(&self) -> usize {
        packed_len(self.q_out(), self.embed)
            .saturating_add(packed_len(self.kv_out(), self.embed).saturating_mul(2))
            .saturating_add(packed_len(self.embed, self.q_out()))
            .saturating_add(self.q_out())
            .saturating_add(self.kv_out().saturating_mul(2))
            .saturating_add(self.embed)
    }

    /// Floats of scratch for `tokens` tokens at once (a sequence, or the new tokens of a
    /// decoding step): the projections in both layouts and the attention's tiles.
    pub const fn scratch_len(&self, tokens: usize) -> usize {
        tokens
            .saturating_mul(
                self.q_out()
                    .saturating_mul(3)
                    .saturating_add(self.kv_out().saturating_mul(4)),
            )
            .saturating_add(self.attention(0, 0, None).scratch_len())
    }

    /// The attention of `q_len` queries over `kv_len` keys.
    const fn attention(
        &self,
        q_len: usize,
        kv_len: usize,
        causal: Option<usize>,
    ) -> AttentionShape {
        let mut shape = AttentionShape::new(self.heads, q_len, kv_len, self.head_dim);
        shape.kv_heads = self.kv_heads;
        shape.causal = causal;
        shape
    }

    fn validate(&self) -> Result<(), Error> {
        for (arg, n) in [
            ("embed", self.embed),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
        ] {
            if n == 0 {
                return Err(Error::ZeroDimension { arg });
            }
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(Error::InvalidShape {
                what: "heads must be a multiple of kv_heads",
            });
        }
        let q = checked_mul(self.heads, self.head_dim, "heads * head_dim")?;
        let padded = checked_mul(q.div_ceil(PANEL), PANEL, "packed length")?;
        checked_mul(padded, self.embed, "packed length")?;
        checked_mul(self.embed.div_ceil(PANEL) * PANEL, q, "packed length")?;
        // Everything else is at most 4 times these.
        checked_mul(
            padded,
            checked_mul(self.embed, 4, "packed length")?,
            "packed length",
        )?;
        Ok(())
    }
}

/// The weights of a multi-head attention layer, packed: as PyTorch's `q_proj`, `k_proj`,
/// `v_proj` and `out_proj` `nn.Linear`s store them (`[out][in]`), biases optional.
#[derive(Clone, Copy, Debug)]
pub struct PackedMha<'a> {
    shape: MhaShape,
    data: &'a [f32],
}

/// The four projections of a [`PackedMha`] (PyTorch `nn.Linear` layout, `[out][in]`).
#[derive(Clone, Copy, Debug)]
pub struct MhaWeights<'w> {
    /// `[heads * head_dim][embed]`.
    pub w_q: &'w [f32],
    /// `[kv_heads * head_dim][embed]`.
    pub w_k: &'w [f32],
    /// `[kv_heads * head_dim][embed]`.
    pub w_v: &'w [f32],
    /// `[embed][heads * head_dim]`.
    pub w_o: &'w [f32],
    /// The biases, in the same order (`None` for zeros).
    pub biases: Option<[&'w [f32]; 4]>,
}

/// The packed layers of a [`PackedMha`].
struct Layers<'a> {
    q: Layer<'a>,
    k: Layer<'a>,
    v: Layer<'a>,
    o: Layer<'a>,
}

impl<'a> PackedMha<'a> {
    /// Packs `weights` into `storage` ([`MhaShape::packed_len`] long).
    ///
    /// ```
    /// use simdnn::{Engine, MhaShape, MhaWeights, PackedMha};
    /// let shape = MhaShape::new(8, 2, 4);
    /// let w = vec![0.1; shape.q_proj_len()];
    /// let kv = vec![0.1; shape.kv_proj_len()];
    /// let weights = MhaWeights { w_q: &w, w_k: &kv, w_v: &kv, w_o: &w, biases: None };
    /// let mut storage = vec![0.0; shape.packed_len()];
    /// let mha = PackedMha::pack(&shape, &weights, &mut storage)?;
    /// let x = vec![1.0; 3 * 8]; // 3 tokens
    /// let mut out = vec![0.0; 3 * 8];
    /// let mut scratch = vec![0.0; shape.scratch_len(3)];
    /// Engine::new().mha_forward(&mha, &x, true, &mut out, &mut scratch)?;
    /// assert!((out[0] - 0.64).abs() < 1e-4); // v = 0.8 in every dimension, W_o sums 8 of them
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn pack(
        shape: &MhaShape,
        weights: &MhaWeights<'_>,
        storage: &'a mut [f32],
    ) -> Result<Self, Error> {
        shape.validate()?;
        let (q, kv, e) = (shape.q_out(), shape.kv_out(), shape.embed);
        check_len("w_q", weights.w_q.len(), q * e)?;
        check_len("w_k", weights.w_k.len(), kv * e)?;
        check_len("w_v", weights.w_v.len(), kv * e)?;
        check_len("w_o", weights.w_o.len(), e * q)?;
        if let Some([bq, bk, bv, bo]) = weights.biases {
            check_len("b_q", bq.len(), q)?;
            check_len("b_k", bk.len(), kv)?;
            check_len("b_v", bv.len(), kv)?;
            check_len("b_o", bo.len(), e)?;
        }
        check_len("storage", storage.len(), shape.packed_len())?;
        pack_mha_into(shape, weights, storage);
        Ok(PackedMha {
            shape: *shape,
            data: storage,
        })
    }

    /// Wraps weights packed earlier.
    pub fn from_packed(shape: &MhaShape, data: &'a [f32]) -> Result<Self, Error> {
        shape.validate()?;
        check_len("data", data.len(), shape.packed_len())?;
        Ok(PackedMha {
            shape: *shape,
            data,
        })
    }

    /// [`PackedMha::from_packed`] over a blob of little-endian `f32` bytes, read in place:
    /// an error if it is misaligned or not exactly the packed length.
    ///
    /// ```
    /// use simdnn::{AlignedBytes, MhaShape, PackedMha};
    /// let shape = MhaShape::new(4, 2, 2);
    /// static BLOB: AlignedBytes<8192> = AlignedBytes([0; 8192]);
    /// assert!(PackedMha::from_bytes(&shape, &BLOB.0[..4 * shape.packed_len()]).is_ok());
    /// assert!(PackedMha::from_bytes(&shape, &BLOB.0[1..4 * shape.packed_len() + 1]).is_err());
    /// ```
    #[cfg(target_endian = "little")]
    pub fn from_bytes(shape: &MhaShape, bytes: &'a [u8]) -> Result<Self, Error> {
        crate::bytes::packed_from_bytes(bytes, |data| Self::from_packed(shape, data))
    }

    /// Wraps weights whose shape and length the type system has checked.
    pub(crate) const fn new_unchecked(shape: MhaShape, data: &'a [f32]) -> Self {
        PackedMha { shape, data }
    }

    /// The packed data (to store, e.g. as the bytes `from_bytes` reads back).
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// The shape.
    pub fn shape(&self) -> &MhaShape {
        &self.shape
    }

    fn layers(&self) -> Layers<'a> {
        let s = &self.shape;
        let (q, kv, e) = (s.q_out(), s.kv_out(), s.embed);
        // (The length was checked on wrapping; short, the parts come out empty.)
        let split = |data: &'a [f32], n| data.split_at_checked(n).unwrap_or_default();
        let (wq, rest) = split(self.data, packed_len(q, e));
        let (wk, rest) = split(rest, packed_len(kv, e));
        let (wv, rest) = split(rest, packed_len(kv, e));
        let (wo, rest) = split(rest, packed_len(e, q));
        let (bq, rest) = split(rest, q);
        let (bk, rest) = split(rest, kv);
        let (bv, bo) = split(rest, kv);
        let layer = |packed, out, inp, bias| Layer {
            packed,
            out,
            inp,
            bias: Some(bias),
            act: Activation::Identity,
        };
        Layers {
            q: layer(wq, q, e, bq),
            k: layer(wk, kv, e, bk),
            v: layer(wv, kv, e, bv),
            o: layer(wo, e, q, bo),
        }
    }
}

/// Packs the layer's weights into `dst` (lengths checked by the caller): the one layout
/// [`PackedMha::pack`] and the compile-time `pack_mha` share — `W_q`, `W_k`, `W_v`, `W_o`
/// as GEMM panels, then the biases in the same order (zeros without them).
pub(crate) const fn pack_mha_into(shape: &MhaShape, weights: &MhaWeights<'_>, dst: &mut [f32]) {
    let (q, kv, e) = (shape.q_out(), shape.kv_out(), shape.embed);
    let (wq, rest) = dst.split_at_mut(packed_len(q, e));
    pack_into(weights.w_q, q, e, wq);
    let (wk, rest) = rest.split_at_mut(packed_len(kv, e));
    pack_into(weights.w_k, kv, e, wk);
    let (wv, rest) = rest.split_at_mut(packed_len(kv, e));
    pack_into(weights.w_v, kv, e, wv);
    let (wo, biases) = rest.split_at_mut(packed_len(e, q));
    pack_into(weights.w_o, e, q, wo);
    match weights.biases {
        Some([bq, bk, bv, bo]) => {
            put(biases, 0, bq);
            put(biases, q, bk);
            put(biases, q + kv, bv);
            put(biases, q + 2 * kv, bo);
        }
        None => zero(biases),
    }
}

/// `[tokens][heads][d]` to `[heads][tokens][d]`.
fn to_heads(src: &[f32], heads: usize, d: usize, dst: &mut [f32]) {
    let tokens = src.len().checked_div(heads * d).unwrap_or(0);
    for t in 0..tokens {
        for h in 0..heads {
            copy_to(
                dst,
                (h * tokens + t) * d,
                row_at(src, (t * heads + h) * d, d),
            );
        }
    }
}

/// `[heads][tokens][d]` to `[tokens][heads][d]`.
fn from_heads(src: &[f32], heads: usize, d: usize, dst: &mut [f32]) {
    let tokens = src.len().checked_div(heads * d).unwrap_or(0);
    for h in 0..heads {
        for t in 0..tokens {
            copy_to(
                dst,
                (t * heads + h) * d,
                row_at(src, (h * tokens + t) * d, d),
            );
        }
    }
}

/// `dst[at..at + src.len()] = src` (nothing if out of range, which the callers exclude).
fn copy_to(dst: &mut [f32], at: usize, src: &[f32]) {
    if let Some(d) = dst.get_mut(at..).and_then(|d| d.get_mut(..src.len())) {
        d.copy_from_slice(src);
    }
}

/// The scratch of a layer call, split: the projections head-major (`qh`, `kh`, `vh`), the
/// attention's output head-major (`ah`), the token-major rows the output projection reads
/// (`rows`), and the attention's tiles.
struct Projected<'s> {
    qh: &'s mut [f32],
    kh: &'s mut [f32],
    vh: &'s mut [f32],
    ah: &'s mut [f32],
    rows: &'s mut [f32],
    tiles: &'s mut [f32],
}

impl Engine {
    /// Projects the tokens `x` (whole rows, scratch of the layer's length for them) to
    /// queries, keys and values, head-major.
    fn project<'s>(
        &self,
        layer: &PackedMha<'_>,
        x: &[f32],
        scratch: &'s mut [f32],
    ) -> Projected<'s> {
        let shape = &layer.shape;
        let tokens = x.len().checked_div(shape.embed).unwrap_or(0);
        let (q, kv) = (tokens * shape.q_out(), tokens * shape.kv_out());
        // (The caller checked the scratch's length; short, the parts come out empty.)
        let (rows, rest) = scratch.split_at_mut_checked(q).unwrap_or_default();
        let (qh, rest) = rest.split_at_mut_checked(q).unwrap_or_default();
        let (ah, rest) = rest.split_at_mut_checked(q).unwrap_or_default();
        let (kp, rest) = rest.split_at_mut_checked(kv).unwrap_or_default();
        let (vp, rest) = rest.split_at_mut_checked(kv).unwrap_or_default();
        let (kh, rest) = rest.split_at_mut_checked(kv).unwrap_or_default();
        let (vh, tiles) = rest.split_at_mut_checked(kv).unwrap_or_default();
        let layers = layer.layers();
        gemm_packed_kernel::run(self, layers.q, x, rows);
        gemm_packed_kernel::run(self, layers.k, x, kp);
        gemm_packed_kernel::run(self, layers.v, x, vp);
        let d = shape.head_dim;
        to_heads(rows, shape.heads, d, qh);
        to_heads(kp, shape.kv_heads, d, kh);
        to_heads(vp, shape.kv_heads, d, vh);
        Projected {
            qh,
            kh,
            vh,
            ah,
            rows,
            tiles,
        }
    }

    /// Self-attention over a sequence: `x` is `[tokens][embed]`, `out` too; `causal` makes
    /// token `i` attend to tokens `0..=i`. `scratch` is [`MhaShape::scratch_len`]`(tokens)`
    /// long.
    pub fn mha_forward(
        &self,
        layer: &PackedMha<'_>,
        x: &[f32],
        causal: bool,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let shape = layer.shape;
        let tokens = tokens_of(&shape, x)?;
        check_len("out", out.len(), x.len())?;
        check_len("scratch", scratch.len(), shape.scratch_len(tokens))?;
        if tokens == 0 {
            return Ok(());
        }
        let Projected {
            qh,
            kh,
            vh,
            ah,
            rows,
            tiles,
        } = self.project(layer, x, scratch);
        let attention = shape.attention(tokens, tokens, causal.then_some(0));
        self.attention(&attention, qh, kh, vh, None, ah, tiles)?;
        from_heads(ah, shape.heads, shape.head_dim, rows);
        gemm_packed_kernel::run(self, layer.layers().o, rows, out);
        Ok(())
    }

    /// Autoregressive decoding: the new tokens `x` (`[n][embed]`, usually one) project
    /// their keys and values into `cache` (appended in place) and attend causally over
    /// everything cached; `out` is `[n][embed]`. `scratch` is
    /// [`MhaShape::scratch_len`]`(n)` long. The cache's heads and sizes are the layer's.
    ///
    /// ```
    /// use simdnn::{Engine, KvCache, MhaShape, MhaWeights, PackedMha};
    /// let shape = MhaShape::new(8, 2, 4).with_kv_heads(1);
    /// let (w, kv) = (vec![0.05; shape.q_proj_len()], vec![0.05; shape.kv_proj_len()]);
    /// let weights = MhaWeights { w_q: &w, w_k: &kv, w_v: &kv, w_o: &w, biases: None };
    /// let mut storage = vec![0.0; shape.packed_len()];
    /// let mha = PackedMha::pack(&shape, &weights, &mut storage)?;
    /// let (mut k, mut v) = (vec![0.0; 32 * 4], vec![0.0; 32 * 4]);
    /// let mut cache = KvCache::new(&mut k, &mut v, 1, 32, 4, 4)?;
    /// let nn = Engine::new();
    /// let mut scratch = vec![0.0; shape.scratch_len(1)];
    /// for _ in 0..3 {
    ///     let mut out = [0.0; 8];
    ///     nn.mha_decode(&mha, &[1.0; 8], &mut cache, &mut out, &mut scratch)?;
    /// }
    /// assert_eq!(cache.len(), 3);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn mha_decode(
        &self,
        layer: &PackedMha<'_>,
        x: &[f32],
        cache: &mut KvCache<'_>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let shape = layer.shape;
        let tokens = tokens_of(&shape, x)?;
        check_len("out", out.len(), x.len())?;
        check_len("scratch", scratch.len(), shape.scratch_len(tokens))?;
        let (_, _, _, d, dv) = cache.parts();
        check_len("cache kv_heads", cache.kv_heads(), shape.kv_heads)?;
        check_len("cache head_dim", d, shape.head_dim)?;
        check_len("cache value_dim", dv, shape.head_dim)?;
        if tokens > cache.capacity() - cache.len() {
            return Err(Error::InvalidShape {
                what: "the cache is full",
            });
        }
        if tokens == 0 {
            return Ok(());
        }
        let Projected {
            qh,
            kh,
            vh,
            ah,
            rows,
            tiles,
        } = self.project(layer, x, scratch);
        cache.append(kh, vh)?;
        let len = cache.len();
        let attention = shape.attention(tokens, len, Some(len - tokens));
        self.attention_cached(&attention, qh, cache, None, ah, tiles)?;
        from_heads(ah, shape.heads, shape.head_dim, rows);
        gemm_packed_kernel::run(self, layer.layers().o, rows, out);
        Ok(())
    }
}

/// The tokens of `x`: whole rows of `embed`.
fn tokens_of(shape: &MhaShape, x: &[f32]) -> Result<usize, Error> {
    if !x.len().is_multiple_of(shape.embed) {
        return Err(Error::NotAMultiple {
            arg: "x",
            len: x.len(),
            of: shape.embed,
        });
    }
    Ok(x.len() / shape.embed)
}
