//! Arbitrary dense shapes and lengths (packed, row-major, and the plain matrix product):
//! never panics, bad shapes are errors, and the best backend agrees with scalar within the
//! summation bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{Activation, Backend, Engine, PackedDense, dense_packed_len};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (out, inp) = (data[0] as usize % 70, data[1] as usize % 40);
    let (x_len, y_len) = (data[2] as usize % 200, data[3] as usize % 200);
    let has_bias = data[4] & 1 == 1;
    let act = if data[4] & 2 == 0 { Activation::Identity } else { Activation::Tanh };
    let vals: Vec<f32> = data[5..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 4096.0)
        .collect();
    let take = |n: usize, skip: usize| -> Vec<f32> { (0..n).map(|i| vals.get(skip + i).copied().unwrap_or(0.5)).collect() };
    let w = take(out * inp, 0);
    let x = take(x_len, 7);
    let bias = has_bias.then(|| take(out, 3));
    let best = Engine::new();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();

    let mut storage = vec![0.0; dense_packed_len(out, inp)];
    let packed = PackedDense::pack(&w, out, inp, &mut storage).unwrap();
    let (mut y, mut z) = (vec![0.0; y_len], vec![0.0; y_len]);
    let r = best.dense(&packed, bias.as_deref(), act, &x, &mut y);
    let rows = if inp == 0 { if out == 0 { 0 } else { y_len / out } } else { x_len / inp };
    let valid = (inp == 0 && x_len == 0 || inp != 0 && x_len % inp == 0)
        && (inp != 0 || out == 0 || y_len % out == 0)
        && y_len == rows * out;
    assert_eq!(r.is_ok(), valid, "out {out} in {inp} x {x_len} y {y_len}");
    if valid {
        scalar.dense(&packed, bias.as_deref(), act, &x, &mut z).unwrap();
        // Inputs are within ±8, so sum |w x| <= 64 inp + |b|; each backend is within
        // (inp + 2) 2^-24 of that (tanh only shrinks differences).
        let mag = 64.0 * inp as f32 + 8.0;
        let tol = 2.0 * (inp as f32 + 2.0) * 6e-8 * mag + 1e-6;
        for (a, b) in y.iter().zip(&z) {
            assert!((a - b).abs() <= tol, "{a} vs {b}");
        }
    }
    // Row-major weights: the same checks (out from w.len() / inp) and, one row at a time
    // being its use, results within the same bound of the packed ones.
    let mut r_y = vec![0.0; y_len];
    let r = best.dense_row_major(&w, inp, bias.as_deref(), act, &x, &mut r_y);
    if inp > 0 {
        assert_eq!(r.is_ok(), valid, "row-major: out {out} in {inp} x {x_len} y {y_len}");
    }
    if r.is_ok() && valid {
        let mag = 64.0 * inp as f32 + 8.0;
        let tol = 2.0 * (inp as f32 + 2.0) * 6e-8 * mag + 1e-6;
        for (a, b) in r_y.iter().zip(&y) {
            assert!((a - b).abs() <= tol, "row-major {a} vs packed {b}");
        }
    }
    // Reinterpreting stored packed data checks its length.
    let cut = data[4] as usize % 3;
    let r = PackedDense::from_packed(&storage[..storage.len().saturating_sub(cut)], out, inp);
    assert_eq!(r.is_ok(), cut == 0 || storage.is_empty());
    // C = A B with m, k, n from the input and lengths that may not match them: an error
    // exactly when a length is wrong; otherwise within the bound of the scalar result.
    let (m, k, n) = (data[1] as usize % 9, data[2] as usize % 40, data[0] as usize % 70);
    let a = take(if data[3] & 1 == 0 { m * k } else { x_len }, 1);
    let b = take(if data[3] & 2 == 0 { k * n } else { y_len }, 2);
    let c_len = if data[3] & 4 == 0 { m * n } else { y_len };
    let (mut c, mut c_ref) = (vec![f32::NAN; c_len], vec![f32::NAN; c_len]);
    let r = best.matmul(m, k, n, &a, &b, &mut c);
    let valid = a.len() == m * k && b.len() == k * n && c_len == m * n;
    assert_eq!(r.is_ok(), valid, "matmul {m}x{k}x{n}: a {} b {} c {c_len}", a.len(), b.len());
    if valid {
        scalar.matmul(m, k, n, &a, &b, &mut c_ref).unwrap();
        let tol = 2.0 * (k as f32 + 2.0) * 6e-8 * 64.0 * k as f32 + 1e-6;
        for (x, y) in c.iter().zip(&c_ref) {
            assert!((x - y).abs() <= tol, "matmul {x} vs scalar {y}");
        }
    }
});
