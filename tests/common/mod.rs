//! Shared test helpers: the backends to test and the f64 reference implementations.
#![allow(dead_code)]

use simdnn::{Activation, Backend, Engine};

/// Every backend this machine can run, forced one by one. `SIMDNN_BACKENDS=neon,scalar`
/// restricts the list (CI uses it to run one backend per job).
pub fn engines() -> Vec<Engine> {
    let only = std::env::var("SIMDNN_BACKENDS").ok();
    Backend::ALL
        .into_iter()
        .filter(|b| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == b.name()))
        })
        .filter_map(|b| Engine::with_backend(b).ok())
        .collect()
}

/// The exact activation; NaN propagates through every one (simdnn's contract).
pub fn act_ref(act: Activation, x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::LeakyRelu(a) => {
            if x < 0.0 {
                a as f64 * x
            } else {
                x
            }
        }
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => sigmoid_ref(x),
        // 0.5 x (1 + tanh(u)) = x sigmoid(2u), without f64 cancellation for u << 0.
        Activation::Gelu => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            x * sigmoid_ref(2.0 * k * (x + 0.044715 * x * x * x))
        }
        Activation::Silu => x * sigmoid_ref(x),
        Activation::Exp => x.exp(),
    }
}

pub fn sigmoid_ref(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Size of one ulp of f32 at the magnitude of `r` (normal range), from the exponent bits.
#[inline]
pub fn ulp_of(r: f64) -> f64 {
    let r = (r.abs() as f32).max(f32::MIN_POSITIVE);
    f32::from_bits(r.to_bits() & 0x7f80_0000) as f64 * (1.0 / 8_388_608.0)
}

/// Error of `y` against the exact `r`, in ulp. Special values must match exactly; a true
/// result below `f32::MIN_POSITIVE` may be flushed to 0 (or be exact to one subnormal step).
#[inline]
pub fn ulp_error(y: f32, r: f64) -> f64 {
    let r32 = r as f32;
    if r32.is_finite() && r.abs() >= f32::MIN_POSITIVE as f64 && y.is_finite() {
        return (y as f64 - r).abs() / ulp_of(r);
    }
    if r.is_nan() {
        return if y.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if r32.is_infinite() {
        return if y == r32 { 0.0 } else { f64::INFINITY };
    }
    if r.abs() < f32::MIN_POSITIVE as f64 && (y == 0.0 || (y as f64 - r).abs() <= 2f64.powi(-149)) {
        return 0.0;
    }
    f64::INFINITY
}

/// f64 softmax (or log-softmax) of one row plus mask, with f32 semantics for the mask add.
pub fn softmax_ref(row: &[f32], mask: Option<&[f32]>, log: bool) -> Vec<f64> {
    let v: Vec<f32> = match mask {
        Some(m) => row.iter().zip(m).map(|(a, b)| a + b).collect(),
        None => row.to_vec(),
    };
    let max = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    if max == f64::NEG_INFINITY {
        return vec![0.0; v.len()];
    }
    let sum: f64 = v.iter().map(|&x| (x as f64 - max).exp()).sum();
    v.iter()
        .map(|&x| {
            if log {
                x as f64 - max - sum.ln()
            } else {
                (x as f64 - max).exp() / sum
            }
        })
        .collect()
}
