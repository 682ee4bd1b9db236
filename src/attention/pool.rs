//! Attention pooling over `n` items in the two classic scorings: additive (Bahdanau,
//! `e_i = w . tanh(W_q q + W_k k_i + b)`) and dot-product (`e_i = k_i . q`, the keys
//! possibly an MLP of the values), weights `a = softmax(e)`, context `c = sum_i a_i v_i`.

use crate::Error;
use crate::engine::kernel_entry;
use crate::error::{check_len, checked_mul};
use crate::gemm::driver::{gemm_nt, packed_rows, part};
use crate::gemm::{Blocking, Layer, Mat, MatMut, PANEL, pack_into, packed_len, put, zero};
use crate::ops::{
    Activation, Scale, Unchanged, add_mask_and_max, add_scaled, exp_sum, map_in_place,
};
use crate::vmath::{self, VecMath};
use core::num::NonZeroUsize;

/// The sizes of an additive attention: queries of `query_dim`, keys of `key_dim`, both
/// projected to `attn_dim`.
///
/// ```
/// use simdnn::AdditiveShape;
/// let shape = AdditiveShape::new(32, 64, 48);
/// assert!(shape.packed_len() >= 48 * (32 + 64 + 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdditiveShape {
    /// Length of a query.
    pub query_dim: usize,
    /// Length of a key.
    pub key_dim: usize,
    /// Length of the projections (the hidden size of the scoring MLP).
    pub attn_dim: usize,
}

impl AdditiveShape {
    /// The shape.
    pub const fn new(query_dim: usize, key_dim: usize, attn_dim: usize) -> Self {
        AdditiveShape {
            query_dim,
            key_dim,
            attn_dim,
        }
    }

    /// Floats of the packed weights (saturating).
    pub const fn packed_len(&self) -> usize {
        packed_len(self.attn_dim, self.query_dim)
            .saturating_add(packed_len(self.attn_dim, self.key_dim))
            .saturating_add(self.attn_dim.saturating_mul(2))
    }

    fn validate(&self) -> Result<(), Error> {
        for (arg, n) in [
            ("query_dim", self.query_dim),
            ("key_dim", self.key_dim),
            ("attn_dim", self.attn_dim),
        ] {
            if n == 0 {
                return Err(Error::ZeroDimension { arg });
            }
        }
        let q = checked_mul(
            self.attn_dim.div_ceil(PANEL) * PANEL,
            self.query_dim,
            "packed length",
        )?;
        let k = checked_mul(
            self.attn_dim.div_ceil(PANEL) * PANEL,
            self.key_dim,
            "packed length",
        )?;
        q.checked_add(k)
            .and_then(|n| n.checked_add(self.attn_dim * 2))
            .ok_or(Error::SizeOverflow {
                what: "packed length",
            })?;
        Ok(())
    }
}

/// The weights of an additive attention, packed: `W_q` (`[attn_dim][query_dim]`, as
/// PyTorch's `nn.Linear` stores it) and `W_k` (`[attn_dim][key_dim]`) for the GEMM layer,
/// the bias `b` and the scoring vector `w` (`[attn_dim]` each).
///
/// ```
/// use simdnn::{AdditiveShape, Engine, PackedAdditive};
/// // Two items of two features, projected to 2; the second item scores higher.
/// let shape = AdditiveShape::new(2, 2, 2);
/// let eye = [1.0, 0.0, 0.0, 1.0];
/// let mut storage = vec![0.0; shape.packed_len()];
/// let att = PackedAdditive::pack(&shape, &eye, &eye, None, &[1.0, 1.0], &mut storage)?;
/// let nn = Engine::new();
/// let keys = [0.0, 0.0, 1.0, 1.0];
/// let mut projected = [0.0; 4];
/// nn.additive_keys(&att, &keys, &mut projected)?; // once per set of keys
/// let (mut weights, mut context, mut scratch) = ([0.0; 2], [0.0; 2], [0.0; 2]);
/// nn.additive_pool(&att, &[0.0, 0.0], &projected, &keys, &mut weights, &mut context, &mut scratch)?;
/// assert!(weights[1] > weights[0] && (weights[0] + weights[1] - 1.0).abs() < 1e-6);
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PackedAdditive<'a> {
    shape: AdditiveShape,
    data: &'a [f32],
}

impl<'a> PackedAdditive<'a> {
    /// Packs the weights into `storage` ([`AdditiveShape::packed_len`] long).
    pub fn pack(
        shape: &AdditiveShape,
        w_q: &[f32],
        w_k: &[f32],
        bias: Option<&[f32]>,
        w: &[f32],
        storage: &'a mut [f32],
    ) -> Result<Self, Error> {
        shape.validate()?;
        let a = shape.attn_dim;
        check_len("w_q", w_q.len(), a * shape.query_dim)?;
        check_len("w_k", w_k.len(), a * shape.key_dim)?;
        if let Some(b) = bias {
            check_len("bias", b.len(), a)?;
        }
        check_len("w", w.len(), a)?;
        check_len("storage", storage.len(), shape.packed_len())?;
        pack_additive_into(shape, w_q, w_k, bias, w, storage);
        Ok(PackedAdditive {
            shape: *shape,
            data: storage,
        })
    }

    /// Wraps weights packed earlier.
    pub fn from_packed(shape: &AdditiveShape, data: &'a [f32]) -> Result<Self, Error> {
        shape.validate()?;
        check_len("data", data.len(), shape.packed_len())?;
        Ok(PackedAdditive {
            shape: *shape,
            data,
        })
    }

    /// [`PackedAdditive::from_packed`] over a blob of little-endian `f32` bytes, read in
    /// place: an error if it is misaligned or not exactly the packed length.
    ///
    /// ```
    /// use simdnn::{AdditiveShape, AlignedBytes, PackedAdditive};
    /// let shape = AdditiveShape::new(2, 2, 2);
    /// static BLOB: AlignedBytes<4096> = AlignedBytes([0; 4096]);
    /// assert!(PackedAdditive::from_bytes(&shape, &BLOB.0[..4 * shape.packed_len()]).is_ok());
    /// assert!(PackedAdditive::from_bytes(&shape, &BLOB.0[..4 * shape.packed_len() - 4]).is_err());
    /// ```
    #[cfg(target_endian = "little")]
    pub fn from_bytes(shape: &AdditiveShape, bytes: &'a [u8]) -> Result<Self, Error> {
        crate::bytes::packed_from_bytes(bytes, |data| Self::from_packed(shape, data))
    }

    /// Wraps weights whose shape and length the type system has checked.
    pub(crate) const fn new_unchecked(shape: AdditiveShape, data: &'a [f32]) -> Self {
        PackedAdditive { shape, data }
    }

    /// The packed data (to store, e.g. as the bytes `from_bytes` reads back).
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// The shape.
    pub fn shape(&self) -> &AdditiveShape {
        &self.shape
    }

    /// `W_q` (with the bias) and `W_k` as layers, and `w`. (The length was checked when
    /// `self` was made; the checked splits keep a panic path out of firmware.)
    pub(crate) fn parts(&self) -> Result<(Layer<'a>, Layer<'a>, &'a [f32]), Error> {
        let s = &self.shape;
        let a = s.attn_dim;
        let short = Error::LengthMismatch {
            arg: "data",
            expected: s.packed_len(),
            got: self.data.len(),
        };
        let (wq, rest) = self
            .data
            .split_at_checked(packed_len(a, s.query_dim))
            .ok_or(short)?;
        let (wk, rest) = rest
            .split_at_checked(packed_len(a, s.key_dim))
            .ok_or(short)?;
        let (b, w) = rest.split_at_checked(a).ok_or(short)?;
        let layer = |packed, inp, bias| Layer {
            packed,
            out: a,
            inp,
            bias,
            act: Activation::Identity,
        };
        Ok((
            layer(wq, s.query_dim, Some(b)),
            layer(wk, s.key_dim, None),
            w,
        ))
    }
}

/// Packs an additive attention's weights into `dst` (lengths checked by the caller): the
/// one layout [`PackedAdditive::pack`] and the compile-time `pack_additive` share —
/// `W_q` and `W_k` as GEMM panels, then the bias (zeros without one) and `w`.
pub(crate) const fn pack_additive_into(
    shape: &AdditiveShape,
    w_q: &[f32],
    w_k: &[f32],
    bias: Option<&[f32]>,
    w: &[f32],
    dst: &mut [f32],
) {
    let a = shape.attn_dim;
    let (wq, rest) = dst.split_at_mut(packed_len(a, shape.query_dim));
    pack_into(w_q, a, shape.query_dim, wq);
    let (wk, rest) = rest.split_at_mut(packed_len(a, shape.key_dim));
    pack_into(w_k, a, shape.key_dim, wk);
    let (b, rest) = rest.split_at_mut(a);
    match bias {
        Some(bias) => put(b, 0, bias),
        None => zero(b),
    }
    put(rest, 0, w);
}

/// `weights = softmax(weights)` over the row, then `context = sum_i weights_i v_i`.
#[inline(always)]
fn softmax_and_context<S: VecMath>(s: S, weights: &mut [f32], values: &[f32], context: &mut [f32]) {
    context.fill(0.0);
    let max = add_mask_and_max(s, weights, None);
    if max == f32::NEG_INFINITY {
        weights.fill(0.0);
        return;
    }
    let sum = exp_sum(s, weights, max, true);
    map_in_place(s, weights, Scale(1.0 / sum));
    let Some(dv) = NonZeroUsize::new(context.len()) else {
        return;
    };
    for (&a, v) in weights.iter().zip(values.chunks_exact(dv.get())) {
        add_scaled(s, context, v, a);
    }
}

/// The inputs of one additive pooling (lengths checked by the caller).
#[derive(Clone, Copy)]
pub(crate) struct AdditiveJob<'a> {
    /// `W_q` with the bias `b`.
    pub(crate) query_layer: Layer<'a>,
    pub(crate) w: &'a [f32],
    pub(crate) query: &'a [f32],
    /// `W_k k_i`, `[n][attn_dim]`.
    pub(crate) projected: &'a [f32],
    pub(crate) values: &'a [f32],
}

/// The additive pooling of one query: `qp` (`attn_dim` floats of scratch) receives
/// `W_q q + b`.
#[inline(always)]
pub(crate) fn additive_kernel<S: Blocking + VecMath>(
    s: S,
    job: AdditiveJob<'_>,
    weights: &mut [f32],
    context: &mut [f32],
    qp: &mut [f32],
) {
    let AdditiveJob {
        query_layer,
        w,
        query,
        projected,
        values,
    } = job;
    // e_i = w . tanh(qp + kp_i): a lane-wise sum, reduced once per item.
    packed_rows(s, query_layer, Unchanged, query, qp);
    let Some(a) = NonZeroUsize::new(qp.len()) else {
        return;
    };
    let qp = &*qp;
    for (e, kp) in weights.iter_mut().zip(projected.chunks_exact(a.get())) {
        let mut acc = s.zero();
        let mut at = 0;
        while at < a.get() {
            let n = S::LANES.min(a.get() - at);
            let (x, k, wv) = if n == S::LANES {
                (
                    s.load(part::<S>(qp, at, n)),
                    s.load(part::<S>(kp, at, n)),
                    s.load(part::<S>(w, at, n)),
                )
            } else {
                (
                    s.load_partial(part::<S>(qp, at, n), 0.0),
                    s.load_partial(part::<S>(kp, at, n), 0.0),
                    s.load_partial(part::<S>(w, at, n), 0.0),
                )
            };
            acc = s.mul_add(wv, vmath::tanh(s, s.add(x, k)), acc);
            at += n;
        }
        *e = s.reduce_add(acc);
    }
    softmax_and_context(s, weights, values, context);
}
kernel_entry!(additive_kernel(
    job: AdditiveJob<'_>,
    weights: &mut [f32],
    context: &mut [f32],
    qp: &mut [f32],
));

/// The dot-product pooling of one query (lengths checked by the caller).
#[inline(always)]
pub(crate) fn dot_pool_kernel<S: Blocking + VecMath>(
    s: S,
    keys: Mat<'_>,
    query: &[f32],
    values: &[f32],
    weights: &mut [f32],
    context: &mut [f32],
) {
    let n = weights.len();
    gemm_nt(
        s,
        Mat::dense(query, 1, query.len()),
        keys,
        None,
        MatMut::dense(weights, n),
    );
    softmax_and_context(s, weights, values, context);
}
kernel_entry!(dot_pool_kernel(
    keys: Mat<'_>,
    query: &[f32],
    values: &[f32],
    weights: &mut [f32],
    context: &mut [f32],
));

/// The items of a pooling: `rows` rows of `dim`, an error naming `arg` otherwise.
pub(crate) fn items(arg: &'static str, len: usize, dim: usize) -> Result<usize, Error> {
    if !len.is_multiple_of(dim) {
        return Err(Error::NotAMultiple { arg, len, of: dim });
    }
    Ok(len / dim)
}
