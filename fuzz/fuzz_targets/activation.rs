//! Arbitrary activations on arbitrary data and lengths (including mismatched output
//! lengths): never panics, mismatches are errors, and the best backend agrees with scalar.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{Activation, Backend, Engine};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let x: Vec<f32> = rest.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let act = match head % 9 {
        0 => Activation::Identity,
        1 => Activation::Relu,
        2 => Activation::Relu6,
        3 => Activation::LeakyRelu(x.first().copied().unwrap_or(0.1)),
        4 => Activation::Tanh,
        5 => Activation::Sigmoid,
        6 => Activation::Gelu,
        7 => Activation::Silu,
        _ => Activation::Exp,
    };
    let out_len = if head & 0x80 != 0 { x.len() + (head as usize & 3) } else { x.len() };
    let best = Engine::new();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    let mut y = vec![0.0; out_len];
    let mut z = vec![0.0; out_len];
    let r = best.activate(act, &x, &mut y);
    assert_eq!(r.is_ok(), out_len == x.len());
    if r.is_ok() {
        scalar.activate(act, &x, &mut z).unwrap();
        for (a, b) in y.iter().zip(&z) {
            let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(same || (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-37, "{act:?}: {a} vs {b}");
        }
        best.activate_in_place(act, &mut z);
    }
});
