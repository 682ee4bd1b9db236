//! The fixed-size attention: heads and sizes are const generics, tensors are arrays, the
//! call cannot fail.

use super::cache::KvCache;
use super::mha::{MhaShape, MhaWeights, PackedMha, pack_mha_into};
use super::pool::{AdditiveShape, PackedAdditive, pack_additive_into};
use super::shape::AttentionShape;
use crate::{Engine, Error};

/// Fixed-size scaled dot-product attention: `H` query heads over `KVH` key/value heads
/// (grouped-query when fewer), rows of `D` features (queries, keys and values); the query
/// and key lengths are type parameters of each call. Shape errors are compile errors and
/// [`Attention::forward`] cannot fail.
///
/// ```
/// use simdnn::{Attention, Engine};
/// // 2 heads over 1 key/value head, 3 queries over 4 keys of 2 features, causal at the end.
/// let att = Attention::<2, 1, 2>::new().with_causal(1);
/// let q = [[[1.0, 0.0]; 3]; 2];
/// let k = [[[0.0, 0.0]; 4]; 1];
/// let v = [[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]];
/// let mut out = [[[0.0; 2]; 3]; 2];
/// let mut scratch = [0.0; Attention::<2, 1, 2>::SCRATCH_LEN];
/// att.forward(&Engine::new(), &q, &k, &v, &mut out, &mut scratch);
/// assert!((out[0][0][0] - 2.0).abs() < 1e-6); // row 0 sees keys 0 and 1, equally
/// ```
///
/// Heads that do not group do not compile:
///
/// ```compile_fail
/// let att = simdnn::Attention::<3, 2, 4>::new();
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attention<const H: usize, const KVH: usize, const D: usize> {
    scale: Option<f32>,
    causal: Option<usize>,
    window: Option<usize>,
}

impl<const H: usize, const KVH: usize, const D: usize> Default for Attention<H, KVH, D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const H: usize, const KVH: usize, const D: usize> Attention<H, KVH, D> {
    /// Length of the scratch array.
    pub const SCRATCH_LEN: usize = AttentionShape::new(H, 0, 0, D).scratch_len();

    /// Attention with the default scale `1 / sqrt(D)` and no mask.
    pub const fn new() -> Self {
        const {
            assert!(H > 0 && KVH > 0 && D > 0, "every size must be at least 1");
            assert!(H.is_multiple_of(KVH), "H must be a multiple of KVH");
        };
        Attention {
            scale: None,
            causal: None,
            window: None,
        }
    }

    /// With the factor `scale` on `Q K^T`.
    ///
    /// # Panics
    /// If `scale` is not finite: a compile error where the value is a constant.
    pub const fn with_scale(mut self, scale: f32) -> Self {
        assert!(scale.is_finite(), "the scale must be finite");
        self.scale = Some(scale);
        self
    }

    /// Causal: query row `i` sees the keys `j <= offset + i`.
    ///
    /// # Panics
    /// If `offset` is `usize::MAX / 2` or more (a compile error where it is a constant).
    pub const fn with_causal(mut self, offset: usize) -> Self {
        assert!(
            offset < usize::MAX / 2,
            "the offset must be below usize::MAX / 2"
        );
        self.causal = Some(offset);
        self
    }

    /// With a sliding window of `window` keys (on top of [`Attention::with_causal`]).
    ///
    /// # Panics
    /// If `window` is 0 or the attention is not causal (compile errors where constant).
    pub const fn with_window(mut self, window: usize) -> Self {
        assert!(window > 0, "a window must hold at least one key");
        assert!(self.causal.is_some(), "a window needs with_causal first");
        self.window = Some(window);
        self
    }

    /// `out = softmax(q k^T * scale) v` per head (head `h` reads key/value head
    /// `h / (H / KVH)`).
    pub fn forward<const Q: usize, const K: usize, const S: usize>(
        &self,
        engine: &Engine,
        q: &[[[f32; D]; Q]; H],
        k: &[[[f32; D]; K]; KVH],
        v: &[[[f32; D]; K]; KVH],
        out: &mut [[[f32; D]; Q]; H],
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::SCRATCH_LEN, "S must be SCRATCH_LEN") };
        let shape = AttentionShape {
            kv_heads: KVH,
            scale: self.scale,
            causal: self.causal,
            window: self.window,
            ..AttentionShape::new(H, Q, K, D)
        };
        // Every length is right by construction and the options are checked by the
        // constructors: this cannot fail.
        let _ = engine.attention(
            &shape,
            q.as_flattened().as_flattened(),
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
            None,
            out.as_flattened_mut().as_flattened_mut(),
            scratch,
        );
    }
}

/// Packs an additive attention's weights at compile time for [`AdditivePool`]: `w_q`
/// `[A][Q]` and `w_k` `[A][K]` as PyTorch's `nn.Linear` stores them, the bias and the
/// scoring vector `w` `[A]`. `P` must be `AdditivePool::<Q, K, A, 0>::PACKED_LEN`;
/// anything else does not compile.
///
/// ```
/// use simdnn::{AdditivePool, pack_additive};
/// const W: [f32; AdditivePool::<3, 2, 4, 0>::PACKED_LEN] =
///     pack_additive(&[[0.5; 3]; 4], &[[0.25; 2]; 4], Some(&[0.0; 4]), &[1.0; 4]);
/// assert!(W.len() >= 4 * (3 + 2 + 2));
/// ```
pub const fn pack_additive<const Q: usize, const K: usize, const A: usize, const P: usize>(
    w_q: &[[f32; Q]; A],
    w_k: &[[f32; K]; A],
    bias: Option<&[f32; A]>,
    w: &[f32; A],
) -> [f32; P] {
    let shape = AdditiveShape::new(Q, K, A);
    const {
        assert!(
            P == AdditiveShape::new(Q, K, A).packed_len(),
            "P must be AdditivePool::<Q, K, A, 0>::PACKED_LEN"
        )
    };
    let mut out = [0.0; P];
    let bias = match bias {
        Some(b) => Some(b.as_slice()),
        None => None,
    };
    pack_additive_into(
        &shape,
        w_q.as_flattened(),
        w_k.as_flattened(),
        bias,
        w,
        &mut out,
    );
    out
}

/// Fixed-size additive (Bahdanau) attention pooling over weights packed with
/// [`pack_additive`]: queries of `Q`, keys of `K`, projections of `A`; the item count and
/// the value size are type parameters of each call. Shape errors are compile errors and a
/// call cannot fail. `P` is the packed length (`AdditivePool::<Q, K, A, 0>::PACKED_LEN`;
/// let the compiler infer it where it can).
///
/// ```
/// use simdnn::{AdditivePool, Engine, pack_additive};
/// // Items of 2 features scored by w . tanh(k): the second item scores higher.
/// static W: [f32; AdditivePool::<2, 2, 2, 0>::PACKED_LEN] =
///     pack_additive(&[[0.0; 2]; 2], &[[1.0, 0.0], [0.0, 1.0]], None, &[1.0, 1.0]);
/// let pool = AdditivePool::<2, 2, 2, _>::new(&W);
/// let nn = Engine::new();
/// let keys = [[0.0, 0.0], [1.0, 1.0]];
/// let mut projected = [[0.0; 2]; 2];
/// pool.keys(&nn, &keys, &mut projected); // once per set of keys
/// let (mut weights, mut context, mut scratch) = ([0.0; 2], [0.0; 2], [0.0; 2]);
/// pool.pool(&nn, &[0.0, 0.0], &projected, &keys, &mut weights, &mut context, &mut scratch);
/// assert!(weights[1] > weights[0] && (weights[0] + weights[1] - 1.0).abs() < 1e-6);
/// ```
///
/// A packed array of the wrong length does not compile:
///
/// ```compile_fail
/// static W: [f32; 10] = [0.0; 10];
/// let pool = simdnn::AdditivePool::<2, 2, 2, 10>::new(&W);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AdditivePool<'w, const Q: usize, const K: usize, const A: usize, const P: usize> {
    packed: &'w [f32; P],
}

impl<'w, const Q: usize, const K: usize, const A: usize, const P: usize>
    AdditivePool<'w, Q, K, A, P>
{
    /// Length of the packed weights.
    pub const PACKED_LEN: usize = AdditiveShape::new(Q, K, A).packed_len();

    /// The pooling over weights packed by [`pack_additive`].
    pub const fn new(packed: &'w [f32; P]) -> Self {
        const {
            assert!(Q > 0 && K > 0 && A > 0, "every size must be at least 1");
            assert!(P == Self::PACKED_LEN, "P must be PACKED_LEN");
        };
        AdditivePool { packed }
    }

    fn packed(&self) -> PackedAdditive<'w> {
        PackedAdditive::new_unchecked(AdditiveShape::new(Q, K, A), self.packed)
    }

    /// Projects `N` keys once (`projected[i] = W_k keys[i]`) for any number of queries.
    pub fn keys<const N: usize>(
        &self,
        engine: &Engine,
        keys: &[[f32; K]; N],
        projected: &mut [[f32; A]; N],
    ) {
        // Every length is right by construction: this cannot fail.
        let _ = engine.additive_keys(
            &self.packed(),
            keys.as_flattened(),
            projected.as_flattened_mut(),
        );
    }

    /// The pooling of one query: `weights = softmax(w . tanh(W_q query + b + projected))`
    /// over the `N` items, `context = sum_i weights_i values_i`.
    #[allow(clippy::too_many_arguments)] // the inputs and outputs of the pooling
    pub fn pool<const N: usize, const V: usize>(
        &self,
        engine: &Engine,
        query: &[f32; Q],
        projected: &[[f32; A]; N],
        values: &[[f32; V]; N],
        weights: &mut [f32; N],
        context: &mut [f32; V],
        scratch: &mut [f32; A],
    ) {
        const { assert!(V > 0, "values must have at least one feature") };
        let _ = engine.additive_pool(
            &self.packed(),
            query,
            projected.as_flattened(),
            values.as_flattened(),
            weights,
            context,
            scratch,
        );
    }
}

/// Fixed-size dot-product attention pooling: `e_i = keys[i] . query` over `N` items of
/// `D` features (the keys possibly an MLP's outputs, e.g. from [`crate::Dense`]),
/// `weights = softmax(e)`, `context = sum_i weights_i values_i`. Cannot fail.
///
/// ```
/// use simdnn::{DotPool, Engine};
/// let keys = [[1.0, 0.0], [0.0, 1.0]];
/// let values = [[10.0], [20.0]];
/// let (mut weights, mut context) = ([0.0; 2], [0.0; 1]);
/// DotPool::<2>::pool(&Engine::new(), &keys, &[0.0, 0.0], &values, &mut weights, &mut context);
/// assert!((context[0] - 15.0).abs() < 1e-5); // equal scores: the mean
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DotPool<const D: usize>;

impl<const D: usize> DotPool<D> {
    /// The pooling of `query` over `N` keys and values of `V`.
    pub fn pool<const N: usize, const V: usize>(
        engine: &Engine,
        keys: &[[f32; D]; N],
        query: &[f32; D],
        values: &[[f32; V]; N],
        weights: &mut [f32; N],
        context: &mut [f32; V],
    ) {
        const { assert!(D > 0 && V > 0, "every size must be at least 1") };
        let _ = engine.attention_pool(
            keys.as_flattened(),
            query,
            values.as_flattened(),
            weights,
            context,
        );
    }
}

/// The biases of [`pack_mha`]: query `[H][D]`, key and value `[KVH][D]`, output `[E]`.
pub type MhaBiases<'b, const E: usize, const H: usize, const KVH: usize, const D: usize> = (
    &'b [[f32; D]; H],
    &'b [[f32; D]; KVH],
    &'b [[f32; D]; KVH],
    &'b [f32; E],
);

/// Packs a multi-head attention layer's weights at compile time for
/// [`MultiHeadAttention`], in PyTorch's `nn.Linear` layouts with the heads spelled out:
/// `w_q` `[H][D][E]` (PyTorch's `[H * D][E]` is the same memory), `w_k` and `w_v`
/// `[KVH][D][E]`, `w_o` `[E][H][D]` (PyTorch's `[E][H * D]`). `P` must be
/// `MultiHeadAttention::<E, H, KVH, D, 0>::PACKED_LEN`; anything else does not compile.
///
/// ```
/// use simdnn::{MultiHeadAttention, pack_mha};
/// // 8 features, 2 heads of 4 over one key/value head, with biases.
/// const W: [f32; MultiHeadAttention::<8, 2, 1, 4, 0>::PACKED_LEN] = pack_mha(
///     &[[[0.1; 8]; 4]; 2],
///     &[[[0.2; 8]; 4]; 1],
///     &[[[0.3; 8]; 4]; 1],
///     &[[[0.4; 4]; 2]; 8],
///     Some((&[[0.0; 4]; 2], &[[0.0; 4]; 1], &[[0.0; 4]; 1], &[0.5; 8])),
/// );
/// assert_eq!(W[W.len() - 1], 0.5); // the output bias comes last
/// ```
pub const fn pack_mha<
    const E: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    const P: usize,
>(
    w_q: &[[[f32; E]; D]; H],
    w_k: &[[[f32; E]; D]; KVH],
    w_v: &[[[f32; E]; D]; KVH],
    w_o: &[[[f32; D]; H]; E],
    biases: Option<MhaBiases<'_, E, H, KVH, D>>,
) -> [f32; P] {
    const {
        assert!(
            P == MhaShape::new(E, H, D).with_kv_heads(KVH).packed_len(),
            "P must be MultiHeadAttention::<E, H, KVH, D, 0>::PACKED_LEN"
        )
    };
    let mut out = [0.0; P];
    let weights = MhaWeights {
        w_q: w_q.as_flattened().as_flattened(),
        w_k: w_k.as_flattened().as_flattened(),
        w_v: w_v.as_flattened().as_flattened(),
        w_o: w_o.as_flattened().as_flattened(),
        biases: match biases {
            Some((bq, bk, bv, bo)) => Some([
                bq.as_flattened(),
                bk.as_flattened(),
                bv.as_flattened(),
                bo.as_slice(),
            ]),
            None => None,
        },
    };
    pack_mha_into(
        &MhaShape::new(E, H, D).with_kv_heads(KVH),
        &weights,
        &mut out,
    );
    out
}

/// A fixed-size multi-head attention layer over weights packed with [`pack_mha`]: tokens of
/// `E` features, `H` query heads over `KVH` key/value heads of `D` features; the token
/// count is a type parameter of each call. [`MultiHeadAttention::forward`] cannot fail;
/// [`MultiHeadAttention::decode`] fails only on a cache that is full or of another shape.
///
/// ```
/// use simdnn::{Engine, KvCache, MultiHeadAttention, pack_mha};
/// type Mha = MultiHeadAttention<'static, 4, 2, 1, 2, { MultiHeadAttention::<4, 2, 1, 2, 0>::PACKED_LEN }>;
/// static W: [f32; Mha::PACKED_LEN] =
///     pack_mha(&[[[0.1; 4]; 2]; 2], &[[[0.1; 4]; 2]; 1], &[[[0.1; 4]; 2]; 1], &[[[0.1; 2]; 2]; 4], None);
/// let mha = Mha::new(&W);
/// let nn = Engine::new();
/// let x = [[1.0; 4]; 3];
/// let mut out = [[0.0; 4]; 3];
/// let mut scratch = [0.0; Mha::scratch_len(3)];
/// mha.forward(&nn, &x, true, &mut out, &mut scratch);
/// // The same tokens one at a time over a cache give the causal rows.
/// let (mut k, mut v) = ([0.0; 8 * 2], [0.0; 8 * 2]);
/// let mut cache = KvCache::new(&mut k, &mut v, 1, 8, 2, 2)?;
/// let mut scratch = [0.0; Mha::scratch_len(1)];
/// for token in &x {
///     let mut y = [[0.0; 4]; 1];
///     mha.decode(&nn, &[*token], &mut cache, &mut y, &mut scratch)?;
/// }
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MultiHeadAttention<
    'w,
    const E: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    const P: usize,
> {
    packed: &'w [f32; P],
}

impl<'w, const E: usize, const H: usize, const KVH: usize, const D: usize, const P: usize>
    MultiHeadAttention<'w, E, H, KVH, D, P>
{
    const SHAPE: MhaShape = MhaShape::new(E, H, D).with_kv_heads(KVH);

    /// Length of the packed weights.
    pub const PACKED_LEN: usize = Self::SHAPE.packed_len();

    /// Length of the scratch array for calls over `tokens` tokens.
    pub const fn scratch_len(tokens: usize) -> usize {
        Self::SHAPE.scratch_len(tokens)
    }

    /// The layer over weights packed by [`pack_mha`].
    pub const fn new(packed: &'w [f32; P]) -> Self {
        const {
            assert!(
                E > 0 && H > 0 && KVH > 0 && D > 0,
                "every size must be at least 1"
            );
            assert!(H.is_multiple_of(KVH), "H must be a multiple of KVH");
            assert!(P == Self::PACKED_LEN, "P must be PACKED_LEN");
        };
        MultiHeadAttention { packed }
    }

    fn packed(&self) -> PackedMha<'w> {
        PackedMha::new_unchecked(Self::SHAPE, self.packed)
    }

    /// Self-attention over `T` tokens (`causal`: token `i` attends to tokens `0..=i`).
    pub fn forward<const T: usize, const S: usize>(
        &self,
        engine: &Engine,
        x: &[[f32; E]; T],
        causal: bool,
        out: &mut [[f32; E]; T],
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::scratch_len(T), "S must be scratch_len(T)") };
        // Every length is right by construction: this cannot fail.
        let _ = engine.mha_forward(
            &self.packed(),
            x.as_flattened(),
            causal,
            out.as_flattened_mut(),
            scratch,
        );
    }

    /// Decodes `T` new tokens over `cache` (see [`Engine::mha_decode`]): an error only if
    /// the cache has no room for them or was made for other heads or sizes.
    pub fn decode<const T: usize, const S: usize>(
        &self,
        engine: &Engine,
        x: &[[f32; E]; T],
        cache: &mut KvCache<'_>,
        out: &mut [[f32; E]; T],
        scratch: &mut [f32; S],
    ) -> Result<(), Error> {
        const { assert!(S == Self::scratch_len(T), "S must be scratch_len(T)") };
        engine.mha_decode(
            &self.packed(),
            x.as_flattened(),
            cache,
            out.as_flattened_mut(),
            scratch,
        )
    }
}
