//! A key/value cache for autoregressive decoding, in the caller's storage: keys and values
//! of each key/value head in rows up to a capacity, appended in place, read by the
//! attention kernel where they are (no copy per step).

use crate::Error;
use crate::error::{check_len, checked_mul};

/// The keys and values of the tokens seen so far, per key/value head: `k` is
/// `[kv_heads][capacity][head_dim]`, `v` `[kv_heads][capacity][value_dim]`, of which the
/// first `len()` rows of each head are in use. [`KvCache::append`] adds tokens in place;
/// [`Engine::attention_cached`](crate::Engine::attention_cached) attends over them.
///
/// ```
/// use simdnn::KvCache;
/// let (mut k, mut v) = (vec![0.0; 2 * 16 * 4], vec![0.0; 2 * 16 * 4]);
/// let mut cache = KvCache::new(&mut k, &mut v, 2, 16, 4, 4)?; // 2 heads, 16 tokens
/// cache.append(&[1.0; 2 * 4], &[2.0; 2 * 4])?; // one token: [kv_heads][1][head_dim]
/// assert_eq!(cache.len(), 1);
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Debug)]
pub struct KvCache<'a> {
    k: &'a mut [f32],
    v: &'a mut [f32],
    kv_heads: usize,
    capacity: usize,
    head_dim: usize,
    value_dim: usize,
    len: usize,
}

impl<'a> KvCache<'a> {
    /// An empty cache over `k` (`kv_heads * capacity * head_dim` floats) and `v`
    /// (`kv_heads * capacity * value_dim`).
    pub fn new(
        k: &'a mut [f32],
        v: &'a mut [f32],
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        value_dim: usize,
    ) -> Result<Self, Error> {
        for (arg, n) in [
            ("kv_heads", kv_heads),
            ("head_dim", head_dim),
            ("value_dim", value_dim),
        ] {
            if n == 0 {
                return Err(Error::ZeroDimension { arg });
            }
        }
        let rows = checked_mul(kv_heads, capacity, "cache length")?;
        check_len("k", k.len(), checked_mul(rows, head_dim, "k length")?)?;
        check_len("v", v.len(), checked_mul(rows, value_dim, "v length")?)?;
        Ok(KvCache {
            k,
            v,
            kv_heads,
            capacity,
            head_dim,
            value_dim,
            len: 0,
        })
    }

    /// Tokens in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tokens the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Forgets the tokens past the first `len` (e.g. to start a new sequence: 0).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `n` tokens: `k_new` is `[kv_heads][n][head_dim]`, `v_new`
    /// `[kv_heads][n][value_dim]` (`n` from their lengths). An error if they do not fit.
    pub fn append(&mut self, k_new: &[f32], v_new: &[f32]) -> Result<(), Error> {
        let per_token = self.kv_heads * self.head_dim;
        if !k_new.len().is_multiple_of(per_token) {
            return Err(Error::NotAMultiple {
                arg: "k_new",
                len: k_new.len(),
                of: per_token,
            });
        }
        let n = k_new.len().checked_div(per_token).unwrap_or(0);
        check_len("v_new", v_new.len(), n * self.kv_heads * self.value_dim)?;
        if n > self.capacity - self.len {
            return Err(Error::InvalidShape {
                what: "the cache is full",
            });
        }
        let (d, dv, cap, len) = (self.head_dim, self.value_dim, self.capacity, self.len);
        for h in 0..self.kv_heads {
            copy_rows(self.k, (h * cap + len) * d, k_new, h * n * d, n * d);
            copy_rows(self.v, (h * cap + len) * dv, v_new, h * n * dv, n * dv);
        }
        self.len += n;
        Ok(())
    }

    pub(crate) fn parts(&self) -> (&[f32], &[f32], usize, usize, usize) {
        (self.k, self.v, self.capacity, self.head_dim, self.value_dim)
    }
}

/// `dst[at..at + len] = src[from..from + len]` (nothing if out of range, which `append`'s
/// checks exclude).
fn copy_rows(dst: &mut [f32], at: usize, src: &[f32], from: usize, len: usize) {
    let src = src.get(from..).and_then(|s| s.get(..len));
    let dst = dst.get_mut(at..).and_then(|d| d.get_mut(..len));
    if let (Some(d), Some(s)) = (dst, src) {
        d.copy_from_slice(s);
    }
}
