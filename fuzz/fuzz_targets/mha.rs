//! The multi-head attention layer (`PackedMha::pack`/`from_packed`, `mha_forward`,
//! `mha_decode` over a `KvCache` with `truncate`) over arbitrary shapes, grouped heads,
//! biases and buffer lengths: never panics, an `Err` exactly when an argument is
//! inconsistent, the best backend agrees with scalar, and decoding token by token (after a
//! truncation too) equals the causal forward pass over the whole sequence.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{Backend, Engine, KvCache, MhaShape, MhaWeights, PackedMha};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let d = |i: usize| data[i] as usize;
    let (kv_heads, group, head_dim) = (d(0) % 3, d(1) % 3 + 1, d(2) % 12);
    let heads = if d(7) & 1 != 0 { kv_heads * group + 1 } else { kv_heads * group };
    let embed = d(3) % 24;
    let tokens = d(4) % 40;
    let (wrong, opts) = (data[5], data[6]);
    let shape = MhaShape::new(embed, heads, head_dim).with_kv_heads(kv_heads);
    let valid = embed > 0 && heads > 0 && kv_heads > 0 && head_dim > 0 && heads % kv_heads == 0;
    let vals: Vec<f32> = data[8..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 16384.0).collect();
    let take = |n: usize, skip: usize, k: f32| -> Vec<f32> { (0..n).map(|i| vals.get(skip + i).copied().unwrap_or(0.25) * k).collect() };
    let cut = |n: usize, bit: u8| if wrong & bit != 0 { n + 1 } else { n };

    // Packing: each weight, bias and the storage possibly one too long.
    // Weights of |w| <= 0.5 / embed: projections stay within the inputs' range, scores small.
    let scale = 0.25 / embed.max(1) as f32;
    let (q, kv) = (shape.q_proj_len(), shape.kv_proj_len());
    let (w_q, w_k) = (take(cut(q, 1), 0, scale), take(kv, 3, scale));
    let (w_v, w_o) = (take(kv, 5, scale), take(q, 7, scale));
    let (b_q, b_k) = (take(heads * head_dim, 1, 1.0), take(cut(kv_heads * head_dim, 2), 2, 1.0));
    let (b_v, b_o) = (take(kv_heads * head_dim, 4, 1.0), take(embed, 6, 1.0));
    let biases = (opts & 1 != 0).then_some([&b_q[..], &b_k[..], &b_v[..], &b_o[..]]);
    let weights = MhaWeights { w_q: &w_q, w_k: &w_k, w_v: &w_v, w_o: &w_o, biases };
    let storage_len = if valid { cut(shape.packed_len(), 4) } else { d(7) % 64 };
    let mut storage = vec![f32::NAN; storage_len];
    let r = PackedMha::pack(&shape, &weights, &mut storage);
    let wrong_bias = biases.is_some() && wrong & 2 != 0;
    assert_eq!(r.is_ok(), valid && wrong & 1 == 0 && !wrong_bias && wrong & 4 == 0, "{shape:?} {wrong:#x}: {r:?}");
    if r.is_err() {
        assert_eq!(PackedMha::from_packed(&shape, &storage).is_ok(), valid && storage.len() == shape.packed_len());
        return;
    }
    let layer = PackedMha::from_packed(&shape, &storage).unwrap();

    // The forward pass: x, out and scratch possibly one too long.
    let causal = opts & 2 != 0;
    let x = take(cut(tokens * embed, 8), 9, 2.0);
    let out_len = cut(tokens * embed, 16);
    let scratch_len = cut(shape.scratch_len(tokens), 32);
    let forward = |e: &Engine| {
        let (mut out, mut scratch) = (vec![f32::NAN; out_len], vec![f32::NAN; scratch_len]);
        let r = e.mha_forward(&layer, &x, causal, &mut out, &mut scratch);
        (r, out)
    };
    let best = Engine::new();
    let (r, out) = forward(&best);
    let consistent = x.len() % embed == 0 && out_len == x.len() && scratch_len == shape.scratch_len(x.len() / embed);
    assert_eq!(r.is_ok(), consistent, "{shape:?} tokens {tokens} wrong {wrong:#x}: {r:?}");
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs())));
    if r.is_ok() {
        assert!(out.iter().all(|o| o.is_finite()), "non-finite output");
        let (_, out_s) = forward(&Engine::with_backend(Backend::Scalar).unwrap());
        assert!(close(&out, &out_s), "{out:?} vs scalar {out_s:?}");
    }

    // Decoding token by token over a cache equals the causal forward pass; a cache of the
    // wrong heads or sizes, or a full one, is an error; truncating replays the same tokens.
    let x = take(tokens * embed, 9, 2.0);
    let mut whole = vec![0.0; x.len()];
    let mut scratch = vec![0.0; shape.scratch_len(tokens)];
    best.mha_forward(&layer, &x, true, &mut whole, &mut scratch).unwrap();
    let cap = tokens + d(7) % 3;
    let (cache_heads, cache_dim) = if wrong & 64 != 0 { (kv_heads + 1, head_dim) } else { (kv_heads, head_dim + (wrong >> 7) as usize) };
    let (mut kc, mut vc) = (vec![0.0; cache_heads * cap * cache_dim], vec![0.0; cache_heads * cap * cache_dim]);
    let mut cache = KvCache::new(&mut kc, &mut vc, cache_heads, cap, cache_dim, cache_dim).unwrap();
    let cache_ok = cache_heads == kv_heads && cache_dim == head_dim;
    let mut scratch = vec![0.0; shape.scratch_len(1)];
    let restart = d(6) % (tokens + 1);
    for pass in 0..2 {
        let from = if pass == 0 { 0 } else { restart };
        cache.truncate(from);
        for t in from..tokens {
            let mut o = vec![0.0; embed];
            let r = best.mha_decode(&layer, &x[t * embed..][..embed], &mut cache, &mut o, &mut scratch);
            assert_eq!(r.is_ok(), cache_ok, "cache {cache_heads} x {cache_dim}: {r:?}");
            if !cache_ok {
                return;
            }
            assert!(close(&o, &whole[t * embed..][..embed]), "decode {t} {o:?}");
        }
        assert_eq!(cache.len(), tokens);
    }
    // Full: one more token fits only while capacity remains.
    if tokens > 0 {
        let mut o = vec![0.0; embed];
        let r = best.mha_decode(&layer, &x[..embed], &mut cache, &mut o, &mut scratch);
        assert_eq!(r.is_ok(), cap > tokens, "{r:?}");
    }
});
