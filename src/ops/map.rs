//! Lane-wise operations ([`VecOp`]) and the loops that map them over slices.

use crate::simd::{Simd, X4};

/// A lane-wise operation passed to [`map`] and [`map_in_place`], and the epilogue the
/// GEMM and convolution tiles apply as they store.
///
/// Kernels use this instead of closures: a closure's body is compiled without the
/// `#[target_feature]`s of the kernel that calls it, so LLVM could not inline the
/// intrinsics inside it. `#[inline(always)]` trait methods have no such problem.
pub(crate) trait VecOp<S: Simd>: Copy {
    fn apply(self, s: S, v: S::V) -> S::V;
}

/// `v` unchanged: the epilogue of a kernel without activation, with no `match` left.
#[derive(Clone, Copy)]
pub(crate) struct Unchanged;
impl<S: Simd> VecOp<S> for Unchanged {
    #[inline(always)]
    fn apply(self, _: S, v: S::V) -> S::V {
        v
    }
}

/// `max(v, 0)`, for the same reason.
#[derive(Clone, Copy)]
pub(crate) struct Relu;
impl<S: Simd> VecOp<S> for Relu {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.max(s.zero(), v)
    }
}

/// `v * factor` (the splat is hoisted out of the loop).
#[derive(Clone, Copy)]
pub(crate) struct Scale(pub f32);
impl<S: Simd> VecOp<S> for Scale {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.mul(v, s.splat(self.0))
    }
}

/// `(v - a) - b`.
#[derive(Clone, Copy)]
pub(crate) struct SubSub(pub f32, pub f32);
impl<S: Simd> VecOp<S> for SubSub {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        s.sub(s.sub(v, s.splat(self.0)), s.splat(self.1))
    }
}

/// `y[i] = op(x[i])`: four vectors at a time through [`X4`], then single vectors, then a
/// partial tail. The caller guarantees `x.len() == y.len()`.
#[inline(always)]
pub(crate) fn map<S: Simd, Op: VecOp<S> + VecOp<X4<S>>>(s: S, x: &[f32], y: &mut [f32], op: Op) {
    if S::SMALL_CODE {
        return map_compact(s, x, y, op);
    }
    let wide = X4(s);
    let mut xs = x.chunks_exact(X4::<S>::LANES);
    let mut ys = y.chunks_exact_mut(X4::<S>::LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        wide.store(op.apply(wide, wide.load(xc)), yc);
    }
    let mut xs = xs.remainder().chunks_exact(S::LANES);
    let mut ys = ys.into_remainder().chunks_exact_mut(S::LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        s.store(op.apply(s, s.load(xc)), yc);
    }
    let (xt, yt) = (xs.remainder(), ys.into_remainder());
    if !yt.is_empty() {
        s.store_partial(op.apply(s, s.load_partial(xt, 0.0)), yt);
    }
}

/// `x[i] = op(x[i])`, as [`map`].
#[inline(always)]
pub(crate) fn map_in_place<S: Simd, Op: VecOp<S> + VecOp<X4<S>>>(s: S, x: &mut [f32], op: Op) {
    if S::SMALL_CODE {
        return map_in_place_compact(s, x, op);
    }
    let wide = X4(s);
    let mut chunks = x.chunks_exact_mut(X4::<S>::LANES);
    for c in &mut chunks {
        wide.store(op.apply(wide, wide.load(c)), c);
    }
    let mut chunks = chunks.into_remainder().chunks_exact_mut(S::LANES);
    for c in &mut chunks {
        s.store(op.apply(s, s.load(c)), c);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        s.store_partial(op.apply(s, s.load_partial(tail, 0.0)), tail);
    }
}

/// [`map`] where code size comes first (`Simd::SMALL_CODE`): no four-vector copy of `op`.
#[inline(always)]
fn map_compact<S: Simd, Op: VecOp<S>>(s: S, x: &[f32], y: &mut [f32], op: Op) {
    let mut xs = x.chunks_exact(S::LANES);
    let mut ys = y.chunks_exact_mut(S::LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        s.store(op.apply(s, s.load(xc)), yc);
    }
    let (xt, yt) = (xs.remainder(), ys.into_remainder());
    if !yt.is_empty() {
        s.store_partial(op.apply(s, s.load_partial(xt, 0.0)), yt);
    }
}

/// [`map_in_place`] where code size comes first.
#[inline(always)]
fn map_in_place_compact<S: Simd, Op: VecOp<S>>(s: S, x: &mut [f32], op: Op) {
    let mut chunks = x.chunks_exact_mut(S::LANES);
    for c in &mut chunks {
        s.store(op.apply(s, s.load(c)), c);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        s.store_partial(op.apply(s, s.load_partial(tail, 0.0)), tail);
    }
}

/// `y += b x`, element by element (`x` at least as long as `y`).
#[inline(always)]
pub(crate) fn add_scaled<S: Simd>(s: S, y: &mut [f32], x: &[f32], b: f32) {
    let bv = s.splat(b);
    let mut ys = y.chunks_exact_mut(S::LANES);
    let mut xs = x.chunks_exact(S::LANES);
    for (yc, xc) in (&mut ys).zip(&mut xs) {
        s.store(s.mul_add(s.load(xc), bv, s.load(yc)), yc);
    }
    let (yr, xr) = (ys.into_remainder(), xs.remainder());
    if !yr.is_empty() {
        let v = s.mul_add(s.load_partial(xr, 0.0), bv, s.load_partial(yr, 0.0));
        s.store_partial(v, yr);
    }
}
