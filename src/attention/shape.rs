//! The shape of a scaled dot-product attention: heads and their grouping, lengths, head
//! sizes, scale and the structural masks (causal with a query offset, sliding window).

use crate::Error;
use crate::error::checked_mul;
use crate::gemm::PANEL;

/// Query rows per tile of the tiled kernel (two weight panels of the GEMM layer: the
/// queries are packed as one).
pub(crate) const QUERY_TILE: usize = 2 * PANEL;
/// Keys per tile (two weight panels of the GEMM layer).
pub(crate) const KEY_TILE: usize = 48;

/// `1 / sqrt(n)` rounded to f32 (as PyTorch's `1 / math.sqrt(n)`): Newton's iteration in
/// f64 from the bit-level estimate, converged to f64 precision, so the one rounding is to
/// f32. (`core` has no square root, and libm's is an instruction Miri cannot run.)
pub(crate) fn inv_sqrt(n: usize) -> f32 {
    let x = n as f64;
    let mut r = f64::from_bits(0x5FE6_EB50_C7B5_37A9 - (x.to_bits() >> 1));
    for _ in 0..5 {
        r *= 1.5 - 0.5 * x * r * r;
    }
    r as f32
}

/// `softmax(Q K^T * scale + mask) V` over several heads, with PyTorch's semantics
/// (`torch.nn.functional.scaled_dot_product_attention`, its `(N, H, L, E)` tensors with
/// the batch folded into the heads):
/// - `q` is `[heads][q_len][head_dim]`, `k` `[kv_heads][kv_len][head_dim]`, `v`
///   `[kv_heads][kv_len][value_dim]`, the output `[heads][q_len][value_dim]`;
/// - grouped-query attention: `heads` a multiple of `kv_heads`, query head `h` reads key
///   and value head `h / (heads / kv_heads)` (multi-query: `kv_heads = 1`);
/// - `scale` defaults to `1 / sqrt(head_dim)`;
/// - causal masking with an explicit query offset: query row `i` sees the keys
///   `j <= offset + i` (offset 0 is PyTorch's `is_causal`; the number of cached keys is the
///   offset of the new queries when decoding over a KV cache);
/// - a sliding window (with causal masking): row `i` sees the keys in
///   `(offset + i - window, offset + i]`.
///
/// A row that sees no key (or only `-inf` mask entries) gives zeros. Key tiles that the
/// causal bound or the window exclude are skipped, not computed.
///
/// ```
/// use simdnn::AttentionShape;
/// // 8 query heads over 2 key/value heads, 16 new queries after 100 cached keys.
/// let shape = AttentionShape::new(8, 16, 116, 64).with_kv_heads(2).with_causal(100);
/// assert_eq!(shape.q_size(), 8 * 16 * 64);
/// assert_eq!(shape.k_size(), 2 * 116 * 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct AttentionShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads; divides `heads`.
    pub kv_heads: usize,
    /// Query rows per head.
    pub q_len: usize,
    /// Key (and value) rows per head.
    pub kv_len: usize,
    /// Length of a query and key row.
    pub head_dim: usize,
    /// Length of a value and output row.
    pub value_dim: usize,
    /// The factor on `Q K^T`; `None` for `1 / sqrt(head_dim)`.
    pub scale: Option<f32>,
    /// Causal masking with this query offset (`Some(0)`: PyTorch's `is_causal`).
    pub causal: Option<usize>,
    /// A sliding window of this many keys per query row (needs `causal`).
    pub window: Option<usize>,
}

impl AttentionShape {
    /// `heads` heads (as many key/value heads), `q_len` queries, `kv_len` keys, rows of
    /// `head_dim` (values too); no mask.
    pub const fn new(heads: usize, q_len: usize, kv_len: usize, head_dim: usize) -> Self {
        AttentionShape {
            heads,
            kv_heads: heads,
            q_len,
            kv_len,
            head_dim,
            value_dim: head_dim,
            scale: None,
            causal: None,
            window: None,
        }
    }

    /// With `kv_heads` key/value heads (grouped-query attention).
    pub const fn with_kv_heads(mut self, kv_heads: usize) -> Self {
        self.kv_heads = kv_heads;
        self
    }

    /// With value (and output) rows of `value_dim`.
    pub const fn with_value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = value_dim;
        self
    }

    /// With the factor `scale` on `Q K^T`.
    pub const fn with_scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Causal, query row `i` seeing the keys `j <= offset + i`.
    pub const fn with_causal(mut self, offset: usize) -> Self {
        self.causal = Some(offset);
        self
    }

    /// With a sliding window of `window` keys (on top of the causal mask).
    pub const fn with_window(mut self, window: usize) -> Self {
        self.window = Some(window);
        self
    }

    /// Floats of `q`: `heads * q_len * head_dim` (saturating).
    pub const fn q_size(&self) -> usize {
        self.heads
            .saturating_mul(self.q_len)
            .saturating_mul(self.head_dim)
    }

    /// Floats of `k`: `kv_heads * kv_len * head_dim` (saturating).
    pub const fn k_size(&self) -> usize {
        self.kv_heads
            .saturating_mul(self.kv_len)
            .saturating_mul(self.head_dim)
    }

    /// Floats of `v`: `kv_heads * kv_len * value_dim` (saturating).
    pub const fn v_size(&self) -> usize {
        self.kv_heads
            .saturating_mul(self.kv_len)
            .saturating_mul(self.value_dim)
    }

    /// Floats of the output: `heads * q_len * value_dim` (saturating).
    pub const fn out_size(&self) -> usize {
        self.heads
            .saturating_mul(self.q_len)
            .saturating_mul(self.value_dim)
    }

    /// Floats of a mask shared by the heads, `q_len * kv_len`; a mask per head is
    /// `heads` times as long.
    pub const fn mask_size(&self) -> usize {
        self.q_len.saturating_mul(self.kv_len)
    }

    /// Floats of scratch the kernel needs: a few tiles, independent of the lengths
    /// (`64 * (head_dim + value_dim + 67)`).
    pub const fn scratch_len(&self) -> usize {
        QUERY_TILE.saturating_mul(
            self.head_dim
                .saturating_add(self.value_dim)
                .saturating_add(KEY_TILE + 3),
        )
    }

    /// The scale in use.
    pub(crate) fn scale_value(&self) -> f32 {
        self.scale.unwrap_or(inv_sqrt(self.head_dim))
    }

    /// Checks the sizes and options; every length of the shape then fits in `usize`.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (arg, n) in [
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("value_dim", self.value_dim),
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
        if let Some(window) = self.window {
            if window == 0 {
                return Err(Error::InvalidShape {
                    what: "a window must hold at least one key",
                });
            }
            if self.causal.is_none() {
                return Err(Error::InvalidShape {
                    what: "a window needs a causal offset",
                });
            }
        }
        if self.scale.is_some_and(|s| !s.is_finite()) {
            return Err(Error::InvalidShape {
                what: "the scale must be finite",
            });
        }
        if let Some(offset) = self.causal {
            offset.checked_add(self.q_len).ok_or(Error::SizeOverflow {
                what: "causal offset + q_len",
            })?;
        }
        let q = checked_mul(self.heads, self.q_len, "q length")?;
        checked_mul(q, self.head_dim, "q length")?;
        checked_mul(q, self.value_dim, "output length")?;
        checked_mul(q, self.kv_len, "mask length")?;
        let kv = checked_mul(self.kv_heads, self.kv_len, "k length")?;
        checked_mul(kv, self.head_dim, "k length")?;
        checked_mul(kv, self.value_dim, "v length")?;
        let per_row = self
            .head_dim
            .checked_add(self.value_dim)
            .and_then(|n| n.checked_add(KEY_TILE + 3))
            .ok_or(Error::SizeOverflow {
                what: "scratch length",
            })?;
        checked_mul(QUERY_TILE, per_row, "scratch length")?;
        Ok(())
    }

    /// The keys query row `i` (of all `q_len`) may see, `lo..hi`, before any mask.
    #[inline(always)]
    pub(crate) fn visible(&self, i: usize) -> (usize, usize) {
        match self.causal {
            None => (0, self.kv_len),
            Some(offset) => {
                let last = offset + i; // the last visible key
                let hi = (last + 1).min(self.kv_len);
                let lo = self.window.map_or(0, |w| (last + 1).saturating_sub(w));
                (lo.min(hi), hi)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::inv_sqrt;

    #[test]
    fn inv_sqrt_is_correctly_rounded() {
        for n in 1..5000usize {
            let want = (1.0 / (n as f64).sqrt()) as f32;
            assert_eq!(inv_sqrt(n), want, "n = {n}");
        }
    }
}
