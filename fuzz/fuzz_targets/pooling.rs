//! Attention pooling: additive (`PackedAdditive::pack`, `additive_keys`, `additive_pool`)
//! and dot-product (`attention_pool`) over arbitrary sizes, item counts and buffer
//! lengths: never panics, an `Err` exactly when an argument is inconsistent, the weights
//! are a distribution, and the best backend agrees with scalar.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{AdditiveShape, Backend, Engine, PackedAdditive};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let d = |i: usize| data[i] as usize;
    let (query_dim, key_dim, attn_dim) = (d(0) % 40, d(1) % 40, d(2) % 70);
    let (n, value_dim) = (d(3) % 150, d(4) % 20);
    let (wrong, wrong2) = (data[5], data[6]);
    let vals: Vec<f32> = data[8..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 8192.0).collect();
    let take = |n: usize, skip: usize| -> Vec<f32> { (0..n).map(|i| vals.get(skip + i).copied().unwrap_or(0.25)).collect() };
    let cut = |n: usize, w: u8, bit: u8| if w & bit != 0 { n + 1 } else { n };
    let best = Engine::new();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    // Scores reach a few hundred and their rounding differs by summation order: softmax
    // turns that into a relative difference of the weights (1e-3 covers ~40 features).
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-3 * (1.0 + x.abs().max(y.abs())));
    let distribution = |w: &[f32]| w.is_empty() || (w.iter().all(|&x| (0.0..=1.0).contains(&x)) && (w.iter().sum::<f32>() - 1.0).abs() < 1e-3);

    // Additive: packing.
    let shape = AdditiveShape::new(query_dim, key_dim, attn_dim);
    let valid = query_dim > 0 && key_dim > 0 && attn_dim > 0;
    let w_q = take(cut(attn_dim * query_dim, wrong, 1), 0);
    let w_k = take(cut(attn_dim * key_dim, wrong, 2), 1);
    let bias = take(cut(attn_dim, wrong, 4), 2);
    let w = take(cut(attn_dim, wrong, 8), 3);
    let storage_len = if valid { cut(shape.packed_len(), wrong, 16) } else { d(7) % 32 };
    let mut storage = vec![f32::NAN; storage_len];
    let with_bias = wrong & 0x80 != 0;
    let r = PackedAdditive::pack(&shape, &w_q, &w_k, with_bias.then_some(&bias[..]), &w, &mut storage);
    let bad_bias = with_bias && wrong & 4 != 0;
    assert_eq!(r.is_ok(), valid && wrong & 0x1b == 0 && !bad_bias, "{shape:?} {wrong:#x}: {r:?}");
    if let Ok(att) = r {
        // Keys projected once, then pooled.
        let keys = take(cut(n * key_dim, wrong2, 1), 5);
        let projected_len = cut(n * attn_dim, wrong2, 2);
        let keys_ok = keys.len() % key_dim == 0 && projected_len == keys.len() / key_dim * attn_dim;
        let project = |e: &Engine| {
            let mut projected = vec![f32::NAN; projected_len];
            (e.additive_keys(&att, &keys, &mut projected), projected)
        };
        let (r, projected) = project(&best);
        assert_eq!(r.is_ok(), keys_ok, "keys {} projected {projected_len}: {r:?}", keys.len());
        if r.is_ok() {
            assert!(close(&projected, &project(&scalar).1), "projected keys");
            let query = take(cut(query_dim, wrong2, 4), 7);
            let values = take(cut(n * value_dim, wrong2, 8), 11);
            let (weights_len, context_len) = (cut(n, wrong2, 16), value_dim);
            let scratch_len = cut(attn_dim, wrong2, 32);
            let pool = |e: &Engine| {
                let (mut weights, mut context) = (vec![f32::NAN; weights_len], vec![f32::NAN; context_len]);
                let mut scratch = vec![f32::NAN; scratch_len];
                let r = e.additive_pool(&att, &query, &projected, &values, &mut weights, &mut context, &mut scratch);
                (r, weights, context)
            };
            let (r, weights, context) = pool(&best);
            let items = projected.len() / attn_dim;
            let consistent = query.len() == query_dim && weights_len == items && values.len() == items * context_len
                && scratch_len == attn_dim && (context_len > 0 || items == 0);
            assert_eq!(r.is_ok(), consistent, "additive n {n} dv {value_dim} {wrong2:#x}: {r:?}");
            if r.is_ok() {
                assert!(distribution(&weights), "{weights:?}");
                assert!(items > 0 || context.iter().all(|&c| c == 0.0), "no items, nonzero context");
                let (_, weights_s, context_s) = pool(&scalar);
                assert!(close(&weights, &weights_s) && close(&context, &context_s), "additive vs scalar");
            }
        }
    }

    // Dot-product pooling of the same sizes (query of key_dim).
    let keys = take(cut(n * key_dim, wrong2, 64), 13);
    let query = take(key_dim, 17);
    let values = take(n * value_dim, 19);
    let weights_len = cut(n, wrong2, 128);
    let pool = |e: &Engine| {
        let (mut weights, mut context) = (vec![f32::NAN; weights_len], vec![f32::NAN; value_dim]);
        let r = e.attention_pool(&keys, &query, &values, &mut weights, &mut context);
        (r, weights, context)
    };
    let (r, weights, context) = pool(&best);
    let items = if key_dim > 0 && keys.len() % key_dim == 0 { Some(keys.len() / key_dim) } else { None };
    let consistent = items.is_some_and(|i| weights_len == i && values.len() == i * value_dim && (value_dim > 0 || i == 0));
    assert_eq!(r.is_ok(), consistent, "dot n {n} d {key_dim} dv {value_dim} {wrong2:#x}: {r:?}");
    if r.is_ok() {
        assert!(distribution(&weights), "{weights:?}");
        let (_, weights_s, context_s) = pool(&scalar);
        assert!(close(&weights, &weights_s) && close(&context, &context_s), "dot vs scalar");
    }
});
