//! The fixed-size attention: heads and sizes are const generics, tensors are arrays, the
//! call cannot fail.

use super::shape::AttentionShape;
use crate::Engine;

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
