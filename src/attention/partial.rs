//! Mergeable partial results (split-KV, flash-decoding): the attention over a sub-range of
//! the keys as `(max, sum, acc)` per query row, merged by log-sum-exp rescaling.

use crate::engine::kernel_entry;
use crate::ops::{Scale, add_scaled, map, map_in_place};
use crate::vmath::{VecMath, exp_scalar};

/// `into = into (+) from`, row by row: with `m = max(m_a, m_b)`, the sums and accumulators
/// are rescaled by `exp(m_a - m)` and `exp(m_b - m)` and added. A row empty on both sides
/// stays empty; `exp` never sees `-inf - -inf`.
#[inline(always)]
pub(crate) fn merge_kernel<S: VecMath>(
    s: S,
    max: &mut [f32],
    sum: &mut [f32],
    acc: &mut [f32],
    from_max: &[f32],
    from_sum: &[f32],
    from_acc: &[f32],
) {
    // (Rows without accumulators, `value_dim` 0, still merge their maxima and sums.)
    let dv = acc.len() / max.len().max(1);
    for r in 0..max.len() {
        let (m_a, m_b) = (max[r], from_max[r]);
        let m = m_a.max(m_b);
        if m == f32::NEG_INFINITY {
            continue;
        }
        let (a, b) = (exp_scalar(s, m_a - m), exp_scalar(s, m_b - m));
        sum[r] = sum[r] * a + from_sum[r] * b;
        max[r] = m;
        let acc_a = &mut acc[r * dv..(r + 1) * dv];
        if a != 1.0 {
            map_in_place(s, acc_a, Scale(a));
        }
        add_scaled(s, acc_a, &from_acc[r * dv..(r + 1) * dv], b);
    }
}
kernel_entry!(merge_kernel(
    max: &mut [f32],
    sum: &mut [f32],
    acc: &mut [f32],
    from_max: &[f32],
    from_sum: &[f32],
    from_acc: &[f32],
));

/// `out = acc / sum` row by row (zeros for a row that saw no key).
#[inline(always)]
pub(crate) fn finish_kernel<S: VecMath>(s: S, sum: &[f32], acc: &[f32], out: &mut [f32]) {
    let dv = acc.len() / sum.len().max(1);
    if dv == 0 {
        return;
    }
    for ((&l, a), o) in sum
        .iter()
        .zip(acc.chunks_exact(dv))
        .zip(out.chunks_exact_mut(dv))
    {
        if l > 0.0 {
            map(s, a, o, Scale(1.0 / l));
        } else {
            o.fill(0.0);
        }
    }
}
kernel_entry!(finish_kernel(sum: &[f32], acc: &[f32], out: &mut [f32]));
