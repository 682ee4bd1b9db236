//! Row reductions: the maximum (with an additive mask folded in) and the sum of
//! exponentials that softmax is made of.

use crate::simd::Simd;
use crate::vmath::{VecMath, exp_nonpositive};

/// Adds `mask` (if any) to `row` and returns the row's maximum (NaN-free rows only; a NaN
/// makes the results NaN through `exp` either way).
#[inline(always)]
pub(crate) fn add_mask_and_max<S: Simd>(s: S, row: &mut [f32], mask: Option<&[f32]>) -> f32 {
    let mut acc = s.splat(f32::NEG_INFINITY);
    if let Some(mask) = mask {
        let mut rs = row.chunks_exact_mut(S::LANES);
        let mut ms = mask.chunks_exact(S::LANES);
        for (r, m) in (&mut rs).zip(&mut ms) {
            let v = s.add(s.load(r), s.load(m));
            s.store(v, r);
            acc = s.max(acc, v);
        }
        let (r, m) = (rs.into_remainder(), ms.remainder());
        if !r.is_empty() {
            let v = s.add(s.load_partial(r, f32::NEG_INFINITY), s.load_partial(m, 0.0));
            s.store_partial(v, r);
            acc = s.max(acc, v);
        }
    } else {
        let mut rs = row.chunks_exact(S::LANES);
        for r in &mut rs {
            acc = s.max(acc, s.load(r));
        }
        let r = rs.remainder();
        if !r.is_empty() {
            acc = s.max(acc, s.load_partial(r, f32::NEG_INFINITY));
        }
    }
    s.reduce_max(acc)
}

/// `sum(exp(row - max))`, also storing the exponentials when `store` is set.
#[inline(always)]
pub(crate) fn exp_sum<S: VecMath>(s: S, row: &mut [f32], max: f32, store: bool) -> f32 {
    let neg_max = s.splat(-max);
    let mut acc = s.zero();
    let mut rs = row.chunks_exact_mut(S::LANES);
    for r in &mut rs {
        let e = exp_nonpositive(s, s.add(s.load(r), neg_max));
        if store {
            s.store(e, r);
        }
        acc = s.add(acc, e);
    }
    let r = rs.into_remainder();
    if !r.is_empty() {
        // Padding lanes are -inf, whose exp is exactly 0.
        let e = exp_nonpositive(s, s.add(s.load_partial(r, f32::NEG_INFINITY), neg_max));
        if store {
            s.store_partial(e, r);
        }
        acc = s.add(acc, e);
    }
    s.reduce_add(acc)
}

/// One block of an online (streaming) softmax row, as in FlashAttention: `row` holds the
/// block's scores and becomes `exp(row - max')` in place, where `max'` is the running
/// maximum `max` updated with the block's; `sum` becomes `sum * alpha + sum(exp(..))`.
/// Returns `alpha = exp(max - max')`, the factor that rescales what was accumulated with the
/// old maximum. A block that leaves the maximum at `-inf` (everything masked so far) becomes
/// zeros with `alpha = 1`: `exp` never sees `-inf - -inf`.
#[inline(always)]
pub(crate) fn online_softmax_block<S: VecMath>(
    s: S,
    row: &mut [f32],
    max: &mut f32,
    sum: &mut f32,
) -> f32 {
    let block_max = add_mask_and_max(s, row, None);
    let new_max = max.max(block_max);
    if new_max == f32::NEG_INFINITY {
        row.fill(0.0);
        return 1.0;
    }
    // exp(-inf - finite) is 0: a first block rescales nothing.
    let alpha = crate::vmath::exp_scalar(s, *max - new_max);
    *sum = *sum * alpha + exp_sum(s, row, new_max, true);
    *max = new_max;
    alpha
}
