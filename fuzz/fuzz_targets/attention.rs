//! Arbitrary attention shapes (heads, groupings, lengths, sizes, causal offsets, windows,
//! masks with -inf) and buffer lengths: never panics, an `Err` exactly when the shape or a
//! length is inconsistent, finite inputs give finite outputs, and the best backend agrees
//! with scalar; merged partials over two key ranges and the same call over a KV cache agree
//! with the plain call, and appending to a cache fails exactly when the tokens do not fit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{AttentionPartial, AttentionShape, Backend, Engine, KvCache};

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (kv_heads, group) = (data[0] as usize % 3, data[1] as usize % 3 + 1);
    let heads = if data[9] & 1 != 0 { kv_heads * group + 1 } else { kv_heads * group };
    let (q_len, kv_len) = (data[2] as usize % 80, data[3] as usize % 140);
    let (d, dv) = (data[4] as usize % 20, data[5] as usize % 20 + 1);
    let mut shape = AttentionShape::new(heads, q_len, kv_len, d).with_kv_heads(kv_heads).with_value_dim(dv);
    let opts = data[6];
    if opts & 1 != 0 {
        shape = shape.with_causal(data[7] as usize % (kv_len + 2));
    }
    if opts & 2 != 0 {
        shape = shape.with_window(data[8] as usize % 50);
    }
    if opts & 4 != 0 {
        shape = shape.with_scale(if opts & 8 != 0 { f32::INFINITY } else { 0.3 });
    }
    let valid_shape = heads > 0 && kv_heads > 0 && d > 0 && heads % kv_heads == 0
        && shape.window.is_none_or(|w| w > 0 && shape.causal.is_some())
        && shape.scale.is_none_or(f32::is_finite);
    let vals: Vec<f32> = data[10..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 8192.0).collect();
    let take = |n: usize, skip: usize| -> Vec<f32> { (0..n).map(|i| vals.get(skip + i).copied().unwrap_or(0.25)).collect() };
    let wrong = data[9] >> 1;
    let cut = |n: usize, bit: u8| if wrong & bit != 0 { n + 1 } else { n };
    let q = take(cut(shape.q_size(), 1), 0);
    let k = take(cut(shape.k_size(), 2), 3);
    let v = take(cut(shape.v_size(), 4), 5);
    let mask_len = match opts >> 4 & 3 {
        1 => shape.mask_size(),
        2 => heads * shape.mask_size(),
        3 => shape.mask_size() + 1,
        _ => 0,
    };
    let mask: Vec<f32> = take(mask_len, 7).iter().map(|&m| if m > 3.0 { f32::NEG_INFINITY } else { m }).collect();
    let out_len = cut(shape.out_size(), 8);
    let scratch_len = cut(shape.scratch_len(), 16);
    let run = |e: &Engine| {
        let mut out = vec![f32::NAN; out_len];
        let mut scratch = vec![f32::NAN; scratch_len];
        let r = e.attention(&shape, &q, &k, &v, (mask_len > 0).then_some(&mask[..]), &mut out, &mut scratch);
        (r, out)
    };
    let best = Engine::new();
    let (r, out) = run(&best);
    let mask_ok = mask_len == 0 || mask_len == shape.mask_size() || (mask_len == heads * shape.mask_size() && heads > 1);
    let consistent = valid_shape && wrong & 0x1f == 0 && mask_ok;
    assert_eq!(r.is_ok(), consistent, "{shape:?} wrong {wrong:#x} mask {mask_len}: {r:?}");
    if r.is_ok() {
        assert!(out.iter().all(|x| x.is_finite()), "non-finite output");
        let (_, out_s) = run(&Engine::with_backend(Backend::Scalar).unwrap());
        // Values within ±4: outputs are convex combinations of them.
        let tol = 1e-3 * (1.0 + (kv_len as f32).sqrt());
        for (a, b) in out.iter().zip(&out_s) {
            assert!((a - b).abs() <= tol, "{a} vs scalar {b}");
        }
        let mask = (mask_len > 0).then_some(&mask[..]);
        let mut scratch = vec![0.0; shape.scratch_len()];
        // Two partials split at `cut`, merged, finished.
        let rows = heads * q_len;
        let cut = data[8] as usize % (kv_len + 1);
        let (mut m1, mut s1, mut a1) = (vec![0.0; rows], vec![0.0; rows], vec![0.0; shape.out_size()]);
        let (mut m2, mut s2, mut a2) = (m1.clone(), s1.clone(), a1.clone());
        let mut p1 = AttentionPartial { max: &mut m1, sum: &mut s1, acc: &mut a1 };
        let mut p2 = AttentionPartial { max: &mut m2, sum: &mut s2, acc: &mut a2 };
        best.attention_partial(&shape, 0..cut, &q, &k, &v, mask, &mut p1, &mut scratch).unwrap();
        best.attention_partial(&shape, cut..kv_len, &q, &k, &v, mask, &mut p2, &mut scratch).unwrap();
        best.attention_merge(&mut p1, &p2).unwrap();
        let mut merged = vec![0.0; shape.out_size()];
        best.attention_finish(&p1, &mut merged).unwrap();
        for (a, b) in merged.iter().zip(&out) {
            assert!((a - b).abs() <= tol, "merged {a} vs {b}");
        }
        // The same keys and values in a cache with spare capacity.
        let cap = kv_len + data[7] as usize % 5;
        let (mut kc, mut vc) = (vec![0.0; kv_heads * cap * d], vec![0.0; kv_heads * cap * dv]);
        let mut cache = KvCache::new(&mut kc, &mut vc, kv_heads, cap, d, dv).unwrap();
        cache.append(&k, &v).unwrap();
        // One more append of arbitrary lengths: Ok exactly for whole tokens that fit.
        let (kn, vn) = (data[7] as usize % 3 * d + ((opts >> 6) as usize & 1), data[8] as usize % 3 * dv);
        let r = cache.append(&k[..kn.min(k.len())], &v[..vn.min(v.len())]);
        let (kn, vn) = (kn.min(k.len()), vn.min(v.len()));
        let fits = kn % (kv_heads * d) == 0 && vn == kn / (kv_heads * d) * kv_heads * dv && kv_len + kn / (kv_heads * d) <= cap;
        assert_eq!(r.is_ok(), fits, "append {kn} {vn} to {kv_len} of {cap}: {r:?}");
        cache.truncate(kv_len);
        let mut cached = vec![0.0; shape.out_size()];
        best.attention_cached(&shape, &q, &cache, mask, &mut cached, &mut scratch).unwrap();
        assert_eq!(cached, out, "cached");
    }
});
