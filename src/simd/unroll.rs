//! [`X4`]: four vectors of a backend treated as one wide vector.
//!
//! exp/tanh/sigmoid are one long dependency chain per vector (~30 operations). Writing the
//! math once over `X4<S>` emits every operation for four independent vectors back to back,
//! so the out-of-order core always has ready work; on a Zen 4 core this nearly halves
//! the cost per element compared with four separate chains in program order.

use super::{MAX_LANES, Simd};

/// Four `S` vectors, one after the other in memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct X4<S>(pub S);

/// `[e(0), e(1), e(2), e(3)]` with `$i` bound to the index; no closure, so nothing loses
/// the caller's `#[target_feature]`s.
macro_rules! each {
    ($i:ident => $e:expr) => {
        [
            {
                let $i = 0;
                $e
            },
            {
                let $i = 1;
                $e
            },
            {
                let $i = 2;
                $e
            },
            {
                let $i = 3;
                $e
            },
        ]
    };
}

pub(crate) use each;

impl<S: Simd> Simd for X4<S> {
    type V = [S::V; 4];
    type M = [S::M; 4];
    const LANES: usize = 4 * S::LANES;

    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        [self.0.splat(x); 4]
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> Self::V {
        let src = &src[..Self::LANES];
        each!(i => self.0.load(&src[i * S::LANES..]))
    }
    #[inline(always)]
    fn load_partial(self, src: &[f32], fill: f32) -> Self::V {
        each!(i => {
            let part = &src[(i * S::LANES).min(src.len())..((i + 1) * S::LANES).min(src.len())];
            self.0.load_partial(part, fill)
        })
    }
    #[inline(always)]
    fn store(self, v: Self::V, dst: &mut [f32]) {
        let dst = &mut dst[..Self::LANES];
        for (i, vi) in v.into_iter().enumerate() {
            self.0.store(vi, &mut dst[i * S::LANES..]);
        }
    }
    #[inline(always)]
    fn store_partial(self, v: Self::V, dst: &mut [f32]) {
        let n = dst.len();
        for (i, vi) in v.into_iter().enumerate() {
            let part = &mut dst[(i * S::LANES).min(n)..((i + 1) * S::LANES).min(n)];
            self.0.store_partial(vi, part);
        }
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.add(a[i], b[i]))
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.sub(a[i], b[i]))
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.mul(a[i], b[i]))
    }
    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        each!(i => self.0.mul_add(a[i], b[i], c[i]))
    }
    #[inline(always)]
    fn neg_mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        each!(i => self.0.neg_mul_add(a[i], b[i], c[i]))
    }
    #[inline(always)]
    fn mul_sub(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        each!(i => self.0.mul_sub(a[i], b[i], c[i]))
    }
    #[inline(always)]
    fn min(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.min(a[i], b[i]))
    }
    #[inline(always)]
    fn max(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.max(a[i], b[i]))
    }
    #[inline(always)]
    fn neg_abs(self, a: Self::V) -> Self::V {
        each!(i => self.0.neg_abs(a[i]))
    }
    #[inline(always)]
    fn flip_sign_if_positive(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.flip_sign_if_positive(a[i], b[i]))
    }
    #[inline(always)]
    fn zero_tiny(self, x: Self::V, tiny: Self::V) -> Self::V {
        each!(i => self.0.zero_tiny(x[i], tiny[i]))
    }
    #[inline(always)]
    fn lift_tiny(self, x: Self::V, tiny: Self::V) -> Self::V {
        each!(i => self.0.lift_tiny(x[i], tiny[i]))
    }
    #[inline(always)]
    fn shl23(self, a: Self::V) -> Self::V {
        each!(i => self.0.shl23(a[i]))
    }
    #[inline(always)]
    fn recip(self, a: Self::V) -> Self::V {
        each!(i => self.0.recip(a[i]))
    }
    #[inline(always)]
    fn exp_scale(self, p: Self::V, n: Self::V, t: Self::V) -> Self::V {
        each!(i => self.0.exp_scale(p[i], n[i], t[i]))
    }
    #[inline(always)]
    fn div(self, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.div(a[i], b[i]))
    }
    #[inline(always)]
    fn permute(self, v: Self::V, idx: &[u32; MAX_LANES]) -> Self::V {
        each!(i => self.0.permute(v[i], idx))
    }
    #[inline(always)]
    fn lt(self, a: Self::V, b: Self::V) -> Self::M {
        each!(i => self.0.lt(a[i], b[i]))
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V {
        each!(i => self.0.select(m[i], a[i], b[i]))
    }
    #[inline(always)]
    fn zero_below(self, x: Self::V, lo: Self::V, y: Self::V) -> Self::V {
        each!(i => self.0.zero_below(x[i], lo[i], y[i]))
    }
    #[inline(always)]
    fn reduce_add(self, a: Self::V) -> f32 {
        let s = self.0;
        s.reduce_add(s.add(s.add(a[0], a[1]), s.add(a[2], a[3])))
    }
    #[inline(always)]
    fn reduce_max(self, a: Self::V) -> f32 {
        let s = self.0;
        s.reduce_max(s.max(s.max(a[0], a[1]), s.max(a[2], a[3])))
    }
}
