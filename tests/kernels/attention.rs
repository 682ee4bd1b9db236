//! Scaled dot-product attention: every backend against the naive f64 `softmax(Q K^T) V`
//! over random heads, groupings, lengths, head sizes, masks, causal offsets and windows.
use crate::common;

use proptest::prelude::*;
use simdnn::{AttentionPartial, AttentionShape, Engine, Error, KvCache};

const EPS: f64 = 1.0 / 16_777_216.0;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 48 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Clone, Debug)]
struct Problem {
    shape: AttentionShape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Option<Vec<f32>>,
}

/// The f64 reference of one output row with its error bound (see `Engine::attention`).
fn reference(p: &Problem, h: usize, i: usize) -> Vec<(f64, f64)> {
    let s = &p.shape;
    let (d, dv, kv) = (s.head_dim, s.value_dim, s.kv_len);
    let g = h / (s.heads / s.kv_heads);
    let scale = s.scale.unwrap_or(1.0 / (d as f32).sqrt()) as f64;
    let (lo, hi) = match s.causal {
        None => (0, kv),
        Some(off) => {
            let hi = (off + i + 1).min(kv);
            let lo = s
                .window
                .map_or(0, |w| (off + i + 1).saturating_sub(w))
                .min(hi);
            (lo, hi)
        }
    };
    let q = &p.q[(h * s.q_len + i) * d..][..d];
    let mut scores = vec![f64::NEG_INFINITY; kv];
    let mut tol_s = 0.0f64;
    for (j, sc) in scores.iter_mut().enumerate().take(hi).skip(lo) {
        let key = &p.k[(g * kv + j) * d..][..d];
        let (mut dot, mut mag) = (0.0, 0.0);
        for (a, b) in q.iter().zip(key) {
            dot += *a as f64 * *b as f64;
            mag += (*a as f64 * *b as f64).abs();
        }
        let m = p.mask.as_ref().map_or(0.0, |m| {
            let per_head = m.len() != s.q_len * kv;
            m[if per_head { h * s.q_len * kv } else { 0 } + i * kv + j] as f64
        });
        *sc = dot * scale + m;
        if m.is_finite() {
            tol_s = tol_s.max(
                (d as f64 + 4.0) * EPS * mag * scale.abs()
                    + 2.0 * EPS * (dot * scale).abs()
                    + EPS * m.abs(),
            );
        }
    }
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return vec![(0.0, 0.0); dv];
    }
    let w: Vec<f64> = scores.iter().map(|&x| (x - max).exp()).collect();
    let sum: f64 = w.iter().sum();
    (0..dv)
        .map(|c| {
            let (mut o, mut mag) = (0.0, 0.0);
            for (j, wj) in w.iter().enumerate() {
                let val = p.v[(g * kv + j) * dv + c] as f64;
                o += wj / sum * val;
                mag += wj / sum * val.abs();
            }
            let tol = (4.0 * tol_s + (kv as f64 + 24.0) * EPS) * mag + 1e-30;
            (o, tol)
        })
        .collect()
}

fn check(p: &Problem, out: &[f32], what: &str) -> Result<(), TestCaseError> {
    let s = &p.shape;
    for h in 0..s.heads {
        for i in 0..s.q_len {
            for (c, (want, tol)) in reference(p, h, i).into_iter().enumerate() {
                let got = out[(h * s.q_len + i) * s.value_dim + c] as f64;
                prop_assert!(
                    (got - want).abs() <= tol,
                    "{what}: head {h} row {i} col {c}: got {got:e} want {want:e} tol {tol:e} ({s:?})"
                );
            }
        }
    }
    Ok(())
}

fn problem() -> impl Strategy<Value = Problem> {
    let (max_q, max_kv, max_d): (usize, usize, usize) = if cfg!(miri) {
        (10, 20, 9)
    } else {
        (70, 150, 40)
    };
    (
        (1usize..4, 1usize..4),
        (0..=max_q, 0..=max_kv),
        (1..=max_d, 1..=max_d),
        (0usize..4, 0usize..200, 1usize..40),
        (
            0usize..4,
            prop::option::of(0.05f32..0.5),
            prop_oneof![3 => Just(1.0f32), 1 => Just(12.0f32)],
        ),
    )
        .prop_flat_map(
            |(
                (groups, kv_heads),
                (q_len, kv_len),
                (d, dv),
                (mode, offset, window),
                (mask_kind, scale, big),
            )| {
                let heads = groups * kv_heads;
                let mut shape = AttentionShape::new(heads, q_len, kv_len, d)
                    .with_kv_heads(kv_heads)
                    .with_value_dim(dv);
                shape.scale = scale;
                match mode {
                    1 => shape = shape.with_causal(offset % (kv_len + 1)),
                    2 => shape = shape.with_causal(kv_len.saturating_sub(q_len)),
                    3 => shape = shape.with_causal(offset % (kv_len + 1)).with_window(window),
                    _ => {}
                }
                let mask_len = match mask_kind {
                    1 => q_len * kv_len,
                    2 if heads > 1 => heads * q_len * kv_len,
                    _ => 0,
                };
                let mask_val = prop_oneof![6 => -2.0f32..2.0, 1 => Just(f32::NEG_INFINITY)];
                (
                    prop::collection::vec(-1.0f32..1.0, shape.q_size()),
                    prop::collection::vec(-1.0f32..1.0, shape.k_size()),
                    prop::collection::vec(-1.0f32..1.0, shape.v_size()),
                    prop::collection::vec(mask_val, mask_len),
                    any::<bool>(),
                )
                    .prop_map(move |(q, k, v, mask, masked_block)| {
                        let q = q.iter().map(|x| x * big).collect();
                        let mut mask = (mask_len > 0).then_some(mask);
                        // Sometimes a whole block of the mask is -inf (rows 0..8, keys 0..70).
                        if let (Some(m), true) = (mask.as_mut(), masked_block) {
                            for i in 0..q_len.min(8) {
                                for j in 0..kv_len.min(70) {
                                    m[i * kv_len + j] = f32::NEG_INFINITY;
                                }
                            }
                        }
                        Problem {
                            shape,
                            q,
                            k,
                            v,
                            mask,
                        }
                    })
            },
        )
}

fn run(e: &Engine, p: &Problem) -> Vec<f32> {
    let mut out = vec![f32::NAN; p.shape.out_size()];
    let mut scratch = vec![f32::NAN; p.shape.scratch_len()];
    e.attention(
        &p.shape,
        &p.q,
        &p.k,
        &p.v,
        p.mask.as_deref(),
        &mut out,
        &mut scratch,
    )
    .unwrap();
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matches_reference(p in problem()) {
        for e in common::engines() {
            let out = run(&e, &p);
            check(&p, &out, &format!("{:?}", e.backend()))?;
        }
    }
}

/// The partial results over three ranges of the keys, merged (in either order), give the
/// attention.
fn merged(e: &Engine, p: &Problem, cuts: (usize, usize), reverse: bool) -> Vec<f32> {
    let s = &p.shape;
    let rows = s.heads * s.q_len;
    let (a, b) = (cuts.0.min(cuts.1), cuts.0.max(cuts.1));
    let ranges = [0..a, a..b, b..s.kv_len];
    let mut parts: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = Vec::new();
    let mut scratch = vec![f32::NAN; s.scratch_len()];
    for keys in ranges {
        let (mut max, mut sum, mut acc) = (
            vec![f32::NAN; rows],
            vec![f32::NAN; rows],
            vec![f32::NAN; s.out_size()],
        );
        let mut part = AttentionPartial {
            max: &mut max,
            sum: &mut sum,
            acc: &mut acc,
        };
        e.attention_partial(
            s,
            keys,
            &p.q,
            &p.k,
            &p.v,
            p.mask.as_deref(),
            &mut part,
            &mut scratch,
        )
        .unwrap();
        parts.push((max, sum, acc));
    }
    if reverse {
        parts.reverse();
    }
    let (mut m0, mut s0, mut a0) = parts[0].clone();
    let mut into = AttentionPartial {
        max: &mut m0,
        sum: &mut s0,
        acc: &mut a0,
    };
    for (m, sm, ac) in &mut parts[1..] {
        let from = AttentionPartial {
            max: m,
            sum: sm,
            acc: ac,
        };
        e.attention_merge(&mut into, &from).unwrap();
    }
    let mut out = vec![f32::NAN; s.out_size()];
    e.attention_finish(&into, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merged_partials_match_reference(p in problem(), cuts in (0usize..200, 0usize..200), reverse in any::<bool>()) {
        let kv = p.shape.kv_len + 1;
        for e in common::engines() {
            let out = merged(&e, &p, (cuts.0 % kv, cuts.1 % kv), reverse);
            check(&p, &out, &format!("merged {:?}", e.backend()))?;
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Decoding over a KV cache (appended token by token, rows read in place with the
    /// cache's capacity as head stride) gives each step what the causal attention over all
    /// tokens gives its row, within the bound.
    #[test]
    fn decode_over_cache_matches_reference(
        (groups, kv_heads) in (1usize..4, 1usize..3),
        (len, extra, d, dv) in (1usize..40, 0usize..9, 1usize..24, 1usize..24),
        seed in any::<u32>(),
        window in prop::option::of(1usize..12),
    ) {
        let heads = groups * kv_heads;
        // Miri interprets every operation: shorter caches there.
        let len = if cfg!(miri) { len.min(5) } else { len };
        let full = AttentionShape::new(heads, len, len, d).with_kv_heads(kv_heads).with_value_dim(dv).with_causal(0);
        let full = AttentionShape { window, ..full };
        let wave = |n: usize, k: u32| (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed ^ k) >> 8) as f32 / (1u32 << 23) as f32 - 1.0).collect::<Vec<f32>>();
        let (q, k, v) = (wave(full.q_size(), 1), wave(full.k_size(), 2), wave(full.v_size(), 3));
        for e in common::engines() {
            let cap = len + extra;
            let (mut kc, mut vc) = (vec![f32::NAN; kv_heads * cap * d], vec![f32::NAN; kv_heads * cap * dv]);
            let mut cache = KvCache::new(&mut kc, &mut vc, kv_heads, cap, d, dv).unwrap();
            let mut scratch = vec![f32::NAN; full.scratch_len()];
            for t in 0..len {
                // Token t's keys and values, [kv_heads][1][..].
                let kt: Vec<f32> = (0..kv_heads).flat_map(|g| k[(g * len + t) * d..][..d].to_vec()).collect();
                let vt: Vec<f32> = (0..kv_heads).flat_map(|g| v[(g * len + t) * dv..][..dv].to_vec()).collect();
                cache.append(&kt, &vt).unwrap();
                let step = AttentionShape { kv_len: t + 1, q_len: 1, causal: Some(t), ..full };
                let qt: Vec<f32> = (0..heads).flat_map(|h| q[(h * len + t) * d..][..d].to_vec()).collect();
                let mut out = vec![f32::NAN; step.out_size()];
                e.attention_cached(&step, &qt, &cache, None, &mut out, &mut scratch).unwrap();
                // The reference: row t of the full causal attention.
                let p = Problem { shape: full, q: q.clone(), k: k.clone(), v: v.clone(), mask: None };
                for h in 0..heads {
                    for (c, (want, tol)) in reference(&p, h, t).into_iter().enumerate() {
                        let got = out[h * dv + c] as f64;
                        prop_assert!((got - want).abs() <= tol, "{:?} step {t} head {h} col {c}: {got} vs {want}", e.backend());
                    }
                }
            }
            prop_assert!(cache.append(&vec![0.0; kv_heads * d * (extra + 1)], &vec![0.0; kv_heads * dv * (extra + 1)]).is_err());
        }
    }
}

/// Scores far apart (a softmax that is one-hot) and masks that leave rows empty never give
/// NaN: fully masked rows are zeros.
#[test]
fn large_scores_and_empty_rows() {
    let shape = AttentionShape::new(2, 5, 130, 8);
    let q: Vec<f32> = (0..shape.q_size())
        .map(|i| ((i * 7) % 11) as f32 * 40.0)
        .collect();
    let k: Vec<f32> = (0..shape.k_size())
        .map(|i| ((i * 5) % 13) as f32 - 6.0)
        .collect();
    let v: Vec<f32> = (0..shape.v_size()).map(|i| (i % 17) as f32).collect();
    let mut mask = vec![0.0; shape.mask_size()];
    mask[130..260].fill(f32::NEG_INFINITY); // row 1 sees nothing
    for e in common::engines() {
        let mut out = vec![f32::NAN; shape.out_size()];
        let mut scratch = vec![0.0; shape.scratch_len()];
        e.attention(&shape, &q, &k, &v, Some(&mask), &mut out, &mut scratch)
            .unwrap();
        assert!(out.iter().all(|x| x.is_finite()), "{:?}", e.backend());
        assert!(out[8..16].iter().all(|&x| x == 0.0) && out[48..56].iter().all(|&x| x == 0.0));
    }
    // No key at all: zeros.
    let empty = AttentionShape::new(1, 3, 0, 4);
    let mut out = [f32::NAN; 12];
    let mut scratch = vec![0.0; empty.scratch_len()];
    Engine::new()
        .attention(&empty, &[1.0; 12], &[], &[], None, &mut out, &mut scratch)
        .unwrap();
    assert_eq!(out, [0.0; 12]);
}

#[test]
fn misuse_is_an_error() {
    let nn = Engine::new();
    let shape = AttentionShape::new(4, 3, 5, 2).with_kv_heads(2);
    let (q, k, v) = (
        vec![0.0; shape.q_size()],
        vec![0.0; shape.k_size()],
        vec![0.0; shape.v_size()],
    );
    let mut out = vec![0.0; shape.out_size()];
    let mut scratch = vec![0.0; shape.scratch_len()];
    let err = |s: &AttentionShape,
               q: &[f32],
               mask: Option<&[f32]>,
               out: &mut [f32],
               scratch: &mut [f32]| {
        let (k, v) = (vec![0.0; s.k_size()], vec![0.0; s.v_size()]);
        nn.attention(s, q, &k, &v, mask, out, scratch).unwrap_err()
    };
    assert!(matches!(
        nn.attention(&shape, &q[1..], &k, &v, None, &mut out, &mut scratch),
        Err(Error::LengthMismatch { arg: "q", .. })
    ));
    assert!(matches!(
        nn.attention(&shape, &q, &k[1..], &v, None, &mut out, &mut scratch),
        Err(Error::LengthMismatch { arg: "k", .. })
    ));
    assert!(matches!(
        nn.attention(&shape, &q, &k, &v[1..], None, &mut out, &mut scratch),
        Err(Error::LengthMismatch { arg: "v", .. })
    ));
    assert!(matches!(
        nn.attention(&shape, &q, &k, &v, None, &mut out[1..], &mut scratch),
        Err(Error::LengthMismatch { arg: "out", .. })
    ));
    assert!(matches!(
        nn.attention(&shape, &q, &k, &v, Some(&[0.0; 7]), &mut out, &mut scratch),
        Err(Error::LengthMismatch { arg: "mask", .. })
    ));
    assert!(matches!(
        nn.attention(&shape, &q, &k, &v, None, &mut out, &mut scratch[1..]),
        Err(Error::LengthMismatch { arg: "scratch", .. })
    ));
    assert!(matches!(
        err(&shape.with_kv_heads(3), &q, None, &mut out, &mut scratch),
        Error::InvalidShape { .. }
    ));
    assert!(matches!(
        err(&shape.with_kv_heads(0), &q, None, &mut out, &mut scratch),
        Error::ZeroDimension { arg: "kv_heads" }
    ));
    assert!(matches!(
        err(
            &AttentionShape::new(0, 3, 5, 2),
            &[],
            None,
            &mut [],
            &mut scratch
        ),
        Error::ZeroDimension { arg: "heads" }
    ));
    assert!(matches!(
        err(
            &shape.with_causal(0).with_window(0),
            &q,
            None,
            &mut out,
            &mut scratch
        ),
        Error::InvalidShape { .. }
    ));
    assert!(matches!(
        err(&shape.with_window(2), &q, None, &mut out, &mut scratch),
        Error::InvalidShape { .. }
    ));
    assert!(matches!(
        err(
            &shape.with_scale(f32::NAN),
            &q,
            None,
            &mut out,
            &mut scratch
        ),
        Error::InvalidShape { .. }
    ));
    let huge = AttentionShape::new(1, usize::MAX / 2, 4, 4);
    assert!(matches!(
        err(&huge, &q, None, &mut out, &mut scratch),
        Error::SizeOverflow { .. }
    ));
    assert!(out.iter().all(|&x| x == 0.0));
    // Partials: a range outside the keys, parts of the wrong lengths.
    let rows = shape.heads * shape.q_len;
    let (mut m, mut sm, mut a) = (
        vec![0.0; rows],
        vec![0.0; rows],
        vec![0.0; shape.out_size()],
    );
    let mut part = AttentionPartial {
        max: &mut m,
        sum: &mut sm,
        acc: &mut a,
    };
    assert!(matches!(
        nn.attention_partial(&shape, 2..6, &q, &k, &v, None, &mut part, &mut scratch),
        Err(Error::InvalidShape { .. })
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 3..1;
    assert!(matches!(
        nn.attention_partial(&shape, backwards, &q, &k, &v, None, &mut part, &mut scratch),
        Err(Error::InvalidShape { .. })
    ));
    nn.attention_partial(&shape, 1..4, &q, &k, &v, None, &mut part, &mut scratch)
        .unwrap();
    let (mut m2, mut s2, mut a2) = (
        vec![0.0; rows - 1],
        vec![0.0; rows - 1],
        vec![0.0; shape.out_size()],
    );
    let short = AttentionPartial {
        max: &mut m2,
        sum: &mut s2,
        acc: &mut a2,
    };
    assert!(nn.attention_merge(&mut part, &short).is_err());
    assert!(matches!(
        nn.attention_finish(&part, &mut out[1..]),
        Err(Error::LengthMismatch { arg: "out", .. })
    ));
    // Empty partials (no query rows) and rows without values merge and finish (fuzz finding:
    // a zero row length once reached `chunks_exact(0)`).
    let (mut e1, mut e2) = ([0.0f32; 0], [0.0f32; 0]);
    let (mut e3, mut e4, mut e5, mut e6) = ([0.0f32; 0], [0.0f32; 0], [0.0f32; 0], [0.0f32; 0]);
    let mut empty = AttentionPartial {
        max: &mut e1,
        sum: &mut e2,
        acc: &mut e3,
    };
    let other = AttentionPartial {
        max: &mut e4,
        sum: &mut e5,
        acc: &mut e6,
    };
    nn.attention_merge(&mut empty, &other).unwrap();
    nn.attention_finish(&empty, &mut []).unwrap();
    let (mut m1, mut s1, mut m2, mut s2) = ([0.0f32; 2], [1.0f32; 2], [1.0f32; 2], [1.0f32; 2]);
    let (mut a1, mut a2) = ([0.0f32; 0], [0.0f32; 0]);
    let mut no_values = AttentionPartial {
        max: &mut m1,
        sum: &mut s1,
        acc: &mut a1,
    };
    let other = AttentionPartial {
        max: &mut m2,
        sum: &mut s2,
        acc: &mut a2,
    };
    nn.attention_merge(&mut no_values, &other).unwrap();
    assert_eq!(no_values.max, &[1.0, 1.0]);
    nn.attention_finish(&no_values, &mut []).unwrap();
}

proptest! {
    #![proptest_config(config())]

    /// Additive (Bahdanau) and dot-product pooling against f64, every backend.
    #[test]
    fn pooling_matches_reference(
        (n, dq, dk, da, dv) in (0usize..40, 1usize..20, 1usize..20, 1usize..40, 1usize..20),
        seed in any::<u32>(),
        with_bias in any::<bool>(),
    ) {
        use simdnn::{AdditiveShape, PackedAdditive};
        let (n, da) = if cfg!(miri) { (n.min(6), da.min(9)) } else { (n, da) };
        let wave = |len: usize, k: u32| (0..len).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed ^ k) >> 8) as f32 / (1u32 << 23) as f32 - 1.0).collect::<Vec<f32>>();
        let (w_q, w_k, b, w) = (wave(da * dq, 1), wave(da * dk, 2), wave(da, 3), wave(da, 4));
        let (q, keys, values) = (wave(dq, 5), wave(n * dk, 6), wave(n * dv, 7));
        let shape = AdditiveShape::new(dq, dk, da);
        let mut storage = vec![f32::NAN; shape.packed_len()];
        let att = PackedAdditive::pack(&shape, &w_q, &w_k, with_bias.then_some(&b[..]), &w, &mut storage).unwrap();
        // f64: scores, weights, context, with a bound from the magnitudes.
        let f = |x: f32| x as f64;
        let qp: Vec<f64> = (0..da).map(|a| (0..dq).map(|j| f(w_q[a * dq + j]) * f(q[j])).sum::<f64>() + if with_bias { f(b[a]) } else { 0.0 }).collect();
        let e: Vec<f64> = (0..n).map(|i| (0..da).map(|a| {
            let kp: f64 = (0..dk).map(|j| f(w_k[a * dk + j]) * f(keys[i * dk + j])).sum();
            f(w[a]) * (qp[a] + kp).tanh()
        }).sum()).collect();
        let max = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = e.iter().map(|x| (x - max).exp()).sum();
        let a_ref: Vec<f64> = e.iter().map(|x| (x - max).exp() / z).collect();
        // The score error: the projections' sums ((dq + dk + 4) eps each, |x| <= 1 so <= dq + dk),
        // tanh's 4 ulp, the da-term dot.
        let tol_e = ((dq + dk + 8) as f64 * (dq + dk) as f64 + 8.0 * da as f64) * EPS * 4.0;
        for e_ in common::engines() {
            let mut projected = vec![f32::NAN; n * da];
            e_.additive_keys(&att, &keys, &mut projected).unwrap();
            let (mut weights, mut context, mut scratch) = (vec![f32::NAN; n], vec![f32::NAN; dv], vec![f32::NAN; da]);
            e_.additive_pool(&att, &q, &projected, &values, &mut weights, &mut context, &mut scratch).unwrap();
            for (i, (&g, &r)) in weights.iter().zip(&a_ref).enumerate() {
                prop_assert!((f(g) - r).abs() <= 2.0 * tol_e * r + 1e-6, "{:?} weight {i}: {g} vs {r}", e_.backend());
            }
            for c in 0..dv {
                let want: f64 = (0..n).map(|i| a_ref[i] * f(values[i * dv + c])).sum();
                prop_assert!((f(context[c]) - want).abs() <= 2.0 * tol_e + (n as f64 + 4.0) * EPS + 1e-6, "{:?} context {c}", e_.backend());
            }
            // Dot-product pooling with the keys as given.
            let (mut weights, mut context) = (vec![f32::NAN; n], vec![f32::NAN; dv]);
            let query = wave(dk, 8);
            e_.attention_pool(&keys, &query, &values, &mut weights, &mut context).unwrap();
            let e: Vec<f64> = (0..n).map(|i| (0..dk).map(|j| f(keys[i * dk + j]) * f(query[j])).sum()).collect();
            let max = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = e.iter().map(|x| (x - max).exp()).sum();
            for c in 0..dv {
                let want: f64 = (0..n).map(|i| (e[i] - max).exp() / z * f(values[i * dv + c])).sum();
                prop_assert!((f(context[c]) - want).abs() <= (4.0 * (dk as f64 + 4.0) * dk as f64 + n as f64 + 8.0) * EPS + 1e-6, "{:?} dot context {c}", e_.backend());
            }
        }
    }
}

#[test]
fn pooling_misuse_is_an_error() {
    use simdnn::{AdditiveShape, PackedAdditive};
    let nn = Engine::new();
    let shape = AdditiveShape::new(2, 3, 4);
    let mut storage = vec![0.0; shape.packed_len()];
    assert!(matches!(
        PackedAdditive::pack(&shape, &[0.0; 7], &[0.0; 12], None, &[0.0; 4], &mut storage),
        Err(Error::LengthMismatch { arg: "w_q", .. })
    ));
    assert!(matches!(
        PackedAdditive::pack(
            &AdditiveShape::new(2, 3, 0),
            &[],
            &[],
            None,
            &[],
            &mut storage
        ),
        Err(Error::ZeroDimension { arg: "attn_dim" })
    ));
    let att =
        PackedAdditive::pack(&shape, &[0.1; 8], &[0.1; 12], None, &[1.0; 4], &mut storage).unwrap();
    let mut projected = [0.0; 8];
    assert!(matches!(
        nn.additive_keys(&att, &[0.0; 7], &mut projected),
        Err(Error::NotAMultiple { arg: "keys", .. })
    ));
    assert!(matches!(
        nn.additive_keys(&att, &[0.0; 9], &mut projected),
        Err(Error::LengthMismatch {
            arg: "projected",
            ..
        })
    ));
    nn.additive_keys(&att, &[0.5; 6], &mut projected).unwrap();
    let (mut w, mut c, mut s) = ([0.0; 2], [0.0; 3], [0.0; 4]);
    assert!(matches!(
        nn.additive_pool(
            &att, &[0.0; 3], &projected, &[0.0; 6], &mut w, &mut c, &mut s
        ),
        Err(Error::LengthMismatch { arg: "query", .. })
    ));
    assert!(matches!(
        nn.additive_pool(
            &att, &[0.0; 2], &projected, &[0.0; 5], &mut w, &mut c, &mut s
        ),
        Err(Error::LengthMismatch { arg: "values", .. })
    ));
    assert!(matches!(
        nn.additive_pool(
            &att,
            &[0.0; 2],
            &projected,
            &[0.0; 6],
            &mut w[..1],
            &mut c,
            &mut s
        ),
        Err(Error::LengthMismatch { arg: "weights", .. })
    ));
    assert!(matches!(
        nn.additive_pool(
            &att,
            &[0.0; 2],
            &projected,
            &[0.0; 6],
            &mut w,
            &mut c,
            &mut s[..3]
        ),
        Err(Error::LengthMismatch { arg: "scratch", .. })
    ));
    nn.additive_pool(
        &att, &[0.0; 2], &projected, &[1.0; 6], &mut w, &mut c, &mut s,
    )
    .unwrap();
    assert!((c[0] - 1.0).abs() < 1e-6 && (w[0] - 0.5).abs() < 1e-6);
    assert!(matches!(
        nn.attention_pool(&[0.0; 5], &[0.0; 2], &[0.0; 2], &mut w, &mut c[..1]),
        Err(Error::NotAMultiple { arg: "keys", .. })
    ));
    assert!(matches!(
        nn.attention_pool(&[0.0; 4], &[], &[0.0; 2], &mut w, &mut c[..1]),
        Err(Error::ZeroDimension { arg: "query" })
    ));
    // No items: a zero context.
    let mut c = [7.0; 3];
    nn.attention_pool(&[], &[1.0; 2], &[], &mut [], &mut c)
        .unwrap();
    assert_eq!(c, [0.0; 3]);
}

/// The multi-head layer in f64: projections, causal attention per head, output projection.
#[allow(clippy::too_many_arguments)]
fn mha_reference(
    e: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
    w: &[Vec<f32>; 4],
    b: Option<&[Vec<f32>; 4]>,
    x: &[f32],
    causal: bool,
) -> (Vec<f64>, Vec<f64>) {
    let tokens = x.len() / e;
    let proj =
        |wm: &[f32], bias: Option<&Vec<f32>>, out: usize, input: &[f64], inp: usize| -> Vec<f64> {
            let rows = input.len() / inp;
            let mut y = vec![0.0; rows * out];
            for r in 0..rows {
                for o in 0..out {
                    y[r * out + o] = bias.map_or(0.0, |b| b[o] as f64)
                        + (0..inp)
                            .map(|k| wm[o * inp + k] as f64 * input[r * inp + k])
                            .sum::<f64>();
                }
            }
            y
        };
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (hq, hkv) = (heads * d, kv_heads * d);
    let q = proj(&w[0], b.map(|b| &b[0]), hq, &xd, e);
    let k = proj(&w[1], b.map(|b| &b[1]), hkv, &xd, e);
    let v = proj(&w[2], b.map(|b| &b[2]), hkv, &xd, e);
    let mut a = vec![0.0; tokens * hq];
    let mut a_mag = vec![0.0; tokens * hq];
    for h in 0..heads {
        let g = h / (heads / kv_heads);
        for i in 0..tokens {
            let visible = if causal { i + 1 } else { tokens };
            let s: Vec<f64> = (0..visible)
                .map(|j| {
                    (0..d)
                        .map(|c| q[i * hq + h * d + c] * k[j * hkv + g * d + c])
                        .sum::<f64>()
                        / (d as f64).sqrt()
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for c in 0..d {
                for (j, sj) in s.iter().enumerate() {
                    let p = (sj - m).exp() / z;
                    a[i * hq + h * d + c] += p * v[j * hkv + g * d + c];
                    a_mag[i * hq + h * d + c] += p * v[j * hkv + g * d + c].abs();
                }
            }
        }
    }
    let out = proj(&w[3], b.map(|b| &b[3]), e, &a, hq);
    let mag = proj(
        &w[3].iter().map(|x| x.abs()).collect::<Vec<_>>(),
        None,
        e,
        &a_mag,
        hq,
    );
    (out, mag)
}

proptest! {
    #![proptest_config(config())]

    /// The layer over a sequence equals the f64 layer, and decoding the same tokens one at
    /// a time over a KV cache gives the causal layer's rows.
    #[test]
    fn mha_layer_matches_reference(
        (e, groups, kv_heads, d, tokens) in (1usize..20, 1usize..3, 1usize..3, 1usize..9, 0usize..12),
        seed in any::<u32>(),
        (with_bias, causal) in any::<(bool, bool)>(),
    ) {
        use simdnn::{MhaShape, MhaWeights, PackedMha};
        let tokens = if cfg!(miri) { tokens.min(4) } else { tokens };
        let heads = groups * kv_heads;
        let shape = MhaShape::new(e, heads, d).with_kv_heads(kv_heads);
        let wave = |n: usize, k: u32| (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed ^ k) >> 8) as f32 / (1u32 << 23) as f32 - 1.0).collect::<Vec<f32>>();
        let w = [wave(shape.q_proj_len(), 1), wave(shape.kv_proj_len(), 2), wave(shape.kv_proj_len(), 3), wave(shape.q_proj_len(), 4)];
        let b = [wave(heads * d, 5), wave(kv_heads * d, 6), wave(kv_heads * d, 7), wave(e, 8)];
        let biases = with_bias.then(|| [&b[0][..], &b[1][..], &b[2][..], &b[3][..]]);
        let weights = MhaWeights { w_q: &w[0], w_k: &w[1], w_v: &w[2], w_o: &w[3], biases };
        let mut storage = vec![f32::NAN; shape.packed_len()];
        let mha = PackedMha::pack(&shape, &weights, &mut storage).unwrap();
        let x = wave(tokens * e, 9);
        let (want, mag) = mha_reference(e, heads, kv_heads, d, &w, with_bias.then_some(&b), &x, causal);
        let (want_c, mag_c) = mha_reference(e, heads, kv_heads, d, &w, with_bias.then_some(&b), &x, true);
        let tol = |m: f64| 4e-6 * (e + heads * d + tokens + 8) as f64 * (1.0 + m);
        for en in common::engines() {
            let mut out = vec![f32::NAN; tokens * e];
            let mut scratch = vec![f32::NAN; shape.scratch_len(tokens)];
            en.mha_forward(&mha, &x, causal, &mut out, &mut scratch).unwrap();
            for (i, (&g, (&r, &m))) in out.iter().zip(want.iter().zip(&mag)).enumerate() {
                prop_assert!((g as f64 - r).abs() <= tol(m), "{:?} forward [{i}]: {g} vs {r}", en.backend());
            }
            let (mut kc, mut vc) = (vec![f32::NAN; kv_heads * 16 * d], vec![f32::NAN; kv_heads * 16 * d]);
            let mut cache = KvCache::new(&mut kc, &mut vc, kv_heads, 16, d, d).unwrap();
            let mut scratch = vec![f32::NAN; shape.scratch_len(1)];
            for t in 0..tokens {
                let mut o = vec![f32::NAN; e];
                en.mha_decode(&mha, &x[t * e..(t + 1) * e], &mut cache, &mut o, &mut scratch).unwrap();
                for (c, &g) in o.iter().enumerate() {
                    let (r, m) = (want_c[t * e + c], mag_c[t * e + c]);
                    prop_assert!((g as f64 - r).abs() <= tol(m), "{:?} decode {t} [{c}]: {g} vs {r}", en.backend());
                }
            }
        }
    }
}

/// The fixed-size attention gives the runtime-shaped call's bits.
#[test]
fn fixed_size_equals_runtime() {
    use simdnn::Attention;
    const H: usize = 4;
    const KVH: usize = 2;
    const D: usize = 5;
    const Q: usize = 70; // past one query tile
    const K: usize = 53;
    let wave = |i: usize, k: f32| (i as f32 * 0.37 + k).sin();
    let q: [[[f32; D]; Q]; H] = core::array::from_fn(|h| {
        core::array::from_fn(|i| core::array::from_fn(|c| wave(h * 1000 + i * 7 + c, 0.1)))
    });
    let k: [[[f32; D]; K]; KVH] = core::array::from_fn(|h| {
        core::array::from_fn(|i| core::array::from_fn(|c| wave(h * 1000 + i * 7 + c, 0.2)))
    });
    let v: [[[f32; D]; K]; KVH] = core::array::from_fn(|h| {
        core::array::from_fn(|i| core::array::from_fn(|c| wave(h * 1000 + i * 7 + c, 0.3)))
    });
    for e in common::engines() {
        for att in [
            Attention::<H, KVH, D>::new(),
            Attention::new()
                .with_causal(3)
                .with_window(9)
                .with_scale(0.7),
        ] {
            let mut out = [[[0.0f32; D]; Q]; H];
            let mut scratch = [0.0; Attention::<H, KVH, D>::SCRATCH_LEN];
            att.forward(&e, &q, &k, &v, &mut out, &mut scratch);
            let mut shape = AttentionShape::new(H, Q, K, D).with_kv_heads(KVH);
            if att != Attention::new() {
                shape = shape.with_causal(3).with_window(9).with_scale(0.7);
            }
            let mut want = vec![0.0; shape.out_size()];
            let mut scratch = vec![0.0; shape.scratch_len()];
            e.attention(
                &shape,
                q.as_flattened().as_flattened(),
                k.as_flattened().as_flattened(),
                v.as_flattened().as_flattened(),
                None,
                &mut want,
                &mut scratch,
            )
            .unwrap();
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(out.as_flattened().as_flattened()),
                bits(&want),
                "{:?}",
                e.backend()
            );
        }
    }
}

/// The fixed-size poolings give the runtime-shaped calls' bits.
#[test]
fn fixed_size_pooling_equals_runtime() {
    use simdnn::{AdditivePool, AdditiveShape, DotPool, PackedAdditive, pack_additive};
    const Q: usize = 7;
    const K: usize = 19;
    const A: usize = 37; // past one panel
    const N: usize = 21;
    const V: usize = 5;
    let wave = |i: usize, k: f32| (i as f32 * 0.37 + k).sin();
    let w_q: [[f32; Q]; A] =
        core::array::from_fn(|i| core::array::from_fn(|c| wave(i * 11 + c, 0.1)));
    let w_k: [[f32; K]; A] =
        core::array::from_fn(|i| core::array::from_fn(|c| wave(i * 13 + c, 0.2)));
    let b: [f32; A] = core::array::from_fn(|i| wave(i, 0.3));
    let w: [f32; A] = core::array::from_fn(|i| wave(i, 0.4));
    let keys: [[f32; K]; N] =
        core::array::from_fn(|i| core::array::from_fn(|c| wave(i * 17 + c, 0.5)));
    let values: [[f32; V]; N] =
        core::array::from_fn(|i| core::array::from_fn(|c| wave(i * 5 + c, 0.6)));
    let query: [f32; Q] = core::array::from_fn(|i| wave(i, 0.7));
    let packed: [f32; AdditivePool::<Q, K, A, 0>::PACKED_LEN] =
        pack_additive(&w_q, &w_k, Some(&b), &w);
    let shape = AdditiveShape::new(Q, K, A);
    let mut storage = vec![0.0; shape.packed_len()];
    let runtime = PackedAdditive::pack(
        &shape,
        w_q.as_flattened(),
        w_k.as_flattened(),
        Some(&b),
        &w,
        &mut storage,
    )
    .unwrap();
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let pool = AdditivePool::<Q, K, A, _>::new(&packed);
    for e in common::engines() {
        let mut projected = [[0.0; A]; N];
        pool.keys(&e, &keys, &mut projected);
        let (mut weights, mut context, mut scratch) = ([0.0; N], [0.0; V], [0.0; A]);
        pool.pool(
            &e,
            &query,
            &projected,
            &values,
            &mut weights,
            &mut context,
            &mut scratch,
        );
        let mut want_p = vec![0.0; N * A];
        e.additive_keys(&runtime, keys.as_flattened(), &mut want_p)
            .unwrap();
        let (mut want_w, mut want_c, mut s) = (vec![0.0; N], vec![0.0; V], vec![0.0; A]);
        e.additive_pool(
            &runtime,
            &query,
            &want_p,
            values.as_flattened(),
            &mut want_w,
            &mut want_c,
            &mut s,
        )
        .unwrap();
        assert_eq!(
            bits(projected.as_flattened()),
            bits(&want_p),
            "{:?}",
            e.backend()
        );
        assert_eq!(bits(&weights), bits(&want_w), "{:?}", e.backend());
        assert_eq!(bits(&context), bits(&want_c), "{:?}", e.backend());
        // The dot-product pooling over the projected keys, as the runtime call.
        let q2: [f32; A] = core::array::from_fn(|i| wave(i, 0.8));
        DotPool::<A>::pool(&e, &projected, &q2, &values, &mut weights, &mut context);
        e.attention_pool(
            &want_p,
            &q2,
            values.as_flattened(),
            &mut want_w,
            &mut want_c,
        )
        .unwrap();
        assert_eq!(bits(&weights), bits(&want_w), "{:?}", e.backend());
        assert_eq!(bits(&context), bits(&want_c), "{:?}", e.backend());
    }
}

/// The fixed-size multi-head layer gives the runtime-shaped calls' bits, over a sequence
/// and token by token over a cache.
#[test]
fn fixed_size_mha_equals_runtime() {
    use simdnn::{MhaShape, MhaWeights, MultiHeadAttention, PackedMha, pack_mha};
    const E: usize = 12;
    const H: usize = 4;
    const KVH: usize = 2;
    const D: usize = 3;
    const T: usize = 6;
    type Mha<'w> =
        MultiHeadAttention<'w, E, H, KVH, D, { MultiHeadAttention::<E, H, KVH, D, 0>::PACKED_LEN }>;
    let wave = |i: usize, k: f32| (i as f32 * 0.37 + k).sin() * 0.5;
    let w_q: [[[f32; E]; D]; H] = core::array::from_fn(|h| {
        core::array::from_fn(|r| core::array::from_fn(|c| wave((h * D + r) * E + c, 0.1)))
    });
    let w_k: [[[f32; E]; D]; KVH] = core::array::from_fn(|h| {
        core::array::from_fn(|r| core::array::from_fn(|c| wave((h * D + r) * E + c, 0.2)))
    });
    let w_v: [[[f32; E]; D]; KVH] = core::array::from_fn(|h| {
        core::array::from_fn(|r| core::array::from_fn(|c| wave((h * D + r) * E + c, 0.3)))
    });
    let w_o: [[[f32; D]; H]; E] = core::array::from_fn(|r| {
        core::array::from_fn(|h| core::array::from_fn(|c| wave((r * H + h) * D + c, 0.4)))
    });
    let b_q: [[f32; D]; H] =
        core::array::from_fn(|h| core::array::from_fn(|c| wave(h * D + c, 0.5)));
    let b_k: [[f32; D]; KVH] =
        core::array::from_fn(|h| core::array::from_fn(|c| wave(h * D + c, 0.6)));
    let b_v: [[f32; D]; KVH] =
        core::array::from_fn(|h| core::array::from_fn(|c| wave(h * D + c, 0.7)));
    let b_o: [f32; E] = core::array::from_fn(|c| wave(c, 0.8));
    let x: [[f32; E]; T] = core::array::from_fn(|t| core::array::from_fn(|c| wave(t * E + c, 0.9)));
    let packed: [f32; Mha::PACKED_LEN] =
        pack_mha(&w_q, &w_k, &w_v, &w_o, Some((&b_q, &b_k, &b_v, &b_o)));
    let mha = Mha::new(&packed);
    let shape = MhaShape::new(E, H, D).with_kv_heads(KVH);
    let weights = MhaWeights {
        w_q: w_q.as_flattened().as_flattened(),
        w_k: w_k.as_flattened().as_flattened(),
        w_v: w_v.as_flattened().as_flattened(),
        w_o: w_o.as_flattened().as_flattened(),
        biases: Some([
            b_q.as_flattened(),
            b_k.as_flattened(),
            b_v.as_flattened(),
            &b_o,
        ]),
    };
    let mut storage = vec![0.0; shape.packed_len()];
    let runtime = PackedMha::pack(&shape, &weights, &mut storage).unwrap();
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for e in common::engines() {
        for causal in [false, true] {
            let mut out = [[0.0; E]; T];
            let mut scratch = [0.0; Mha::scratch_len(T)];
            mha.forward(&e, &x, causal, &mut out, &mut scratch);
            let mut want = vec![0.0; T * E];
            let mut s = vec![0.0; shape.scratch_len(T)];
            e.mha_forward(&runtime, x.as_flattened(), causal, &mut want, &mut s)
                .unwrap();
            assert_eq!(
                bits(out.as_flattened()),
                bits(&want),
                "{:?} causal {causal}",
                e.backend()
            );
        }
        let (mut k1, mut v1, mut k2, mut v2) = (
            vec![0.0; KVH * T * D],
            vec![0.0; KVH * T * D],
            vec![0.0; KVH * T * D],
            vec![0.0; KVH * T * D],
        );
        let mut fixed_cache = KvCache::new(&mut k1, &mut v1, KVH, T, D, D).unwrap();
        let mut cache = KvCache::new(&mut k2, &mut v2, KVH, T, D, D).unwrap();
        let mut scratch = [0.0; Mha::scratch_len(1)];
        let mut s = vec![0.0; shape.scratch_len(1)];
        for token in &x {
            let mut y = [[0.0; E]; 1];
            mha.decode(&e, &[*token], &mut fixed_cache, &mut y, &mut scratch)
                .unwrap();
            let mut want = vec![0.0; E];
            e.mha_decode(&runtime, token, &mut cache, &mut want, &mut s)
                .unwrap();
            assert_eq!(
                bits(y.as_flattened()),
                bits(&want),
                "{:?} decode",
                e.backend()
            );
        }
        // A full cache is the one error.
        let mut y = [[0.0; E]; 1];
        assert!(
            mha.decode(&e, &[x[0]], &mut fixed_cache, &mut y, &mut scratch)
                .is_err()
        );
    }
}
