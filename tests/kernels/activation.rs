//! Element-wise activations: every backend against the f64 reference on random lengths and
//! data, and lane-position independence (tails give the same bits as full vectors).
use crate::common;

use proptest::prelude::*;
use simdnn::Activation;

fn activations() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Relu),
        Just(Activation::Relu6),
        (-2.0f32..2.0).prop_map(Activation::LeakyRelu),
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
        Just(Activation::Gelu),
        Just(Activation::Silu),
        Just(Activation::Exp),
    ]
}

/// Mostly ordinary values, some large, some special.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -10.0f32..10.0,
        2 => -200.0f32..200.0,
        1 => proptest::num::f32::ANY,
        1 => prop::sample::select(vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-30, -1e-30, 88.7, -87.4]),
        1 => -1e-8f32..1e-8,
        1 => -1e-37f32..1e-37,
    ]
}

/// Identical bits. Under Miri a NaN result may have any sign and payload on every
/// evaluation (Rust's float semantics allow it; hardware is deterministic), so there two
/// NaNs count as the same.
fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (cfg!(miri) && a.is_nan() && b.is_nan())
}

/// Documented bound of each activation at `x`, in ulp (the simple ones are exact).
fn bound(act: Activation, x: f32) -> f64 {
    match act {
        Activation::Exp => 2.0,
        Activation::Tanh | Activation::Sigmoid => 4.0,
        // x * sigmoid(x): the sigmoid's bound and one rounding.
        Activation::Silu => 5.0,
        // x * sigmoid(z): as silu, plus the rounding of z = 1.6 x + 0.07 x^3, which moves
        // sigmoid(z) by about |z| ulp in the tail.
        Activation::Gelu => {
            let x = x as f64;
            8.0 + 4.0 * (1.6 * x + 0.0714 * x * x * x).abs()
        }
        // One rounded multiply.
        Activation::LeakyRelu(_) => 0.5,
        _ => 0.0,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 128 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matches_reference(act in activations(), x in prop::collection::vec(value(), 0..80)) {
        for e in common::engines() {
            let mut y = vec![f32::NAN; x.len()];
            e.activate(act, &x, &mut y).unwrap();
            for (&xi, &yi) in x.iter().zip(&y) {
                let r = common::act_ref(act, xi as f64);
                let err = common::ulp_error(yi, r);
                // gelu/silu of -inf is NaN by documentation; gelu's cubic overflows past 1e12.
                let documented = matches!(act, Activation::Gelu | Activation::Silu)
                    && (xi.is_infinite() || xi.abs() > 1e12);
                // Flushed region: sigmoid values below 1.7e-38 may be 0 (gelu and silu scale
                // them by x).
                let flushed = yi == 0.0 && r.abs() < 1.7e-38 * (xi.abs() as f64).max(1.0);
                // gelu/silu near their zero: relative ulp of a tiny product of two roundings.
                let tiny = (yi as f64 - r).abs() < 1e-37;
                prop_assert!(err == 0.0 || err <= bound(act, xi) || documented || flushed || tiny,
                    "{:?} {act:?}({xi:e}) = {yi:e}, want {r:e} ({err} ulp)", e.backend());
            }
        }
    }

    #[test]
    fn in_place_and_tails_give_identical_bits(act in activations(), x in prop::collection::vec(value(), 0..80)) {
        for e in common::engines() {
            let mut y = vec![0.0; x.len()];
            e.activate(act, &x, &mut y).unwrap();
            let mut z = x.clone();
            e.activate_in_place(act, &mut z);
            // Each element alone goes through the partial (tail) path.
            for (i, &xi) in x.iter().enumerate() {
                let mut one = [0.0];
                e.activate(act, &[xi], &mut one).unwrap();
                prop_assert!(same_bits(one[0], y[i]), "{:?} {act:?}({xi})", e.backend());
                prop_assert!(same_bits(z[i], y[i]), "{:?} {act:?}({xi})", e.backend());
            }
        }
    }
}

#[test]
fn fixed_size_matches_runtime() {
    let x: [f32; 19] = core::array::from_fn(|i| i as f32 - 9.0);
    for e in common::engines() {
        let mut a = [0.0; 19];
        let mut b = [0.0; 19];
        e.activate_array(Activation::Silu, &x, &mut a);
        e.activate(Activation::Silu, &x, &mut b).unwrap();
        assert_eq!(a, b);
    }
}

/// Tiny and subnormal inputs take no special path that could differ by backend: exp and
/// sigmoid give exactly 1 and 1/2, tanh gives x itself, silu and gelu x/2 (0 where that
/// would be subnormal). Their speed is the report's `_tiny` and `_subnormal` rows.
#[test]
fn tiny_and_subnormal_inputs_are_exact() {
    let mut x = vec![
        0.0f32,
        -0.0,
        1e-45,
        1e-40,
        1.1754942e-38,
        1.2e-38,
        2.4e-38,
        1e-30,
        1e-20,
    ];
    // Around the 2^-30 below which the vector math raises or clamps its argument.
    let edge = 2f32.powi(-30);
    x.extend([
        edge,
        f32::from_bits(edge.to_bits() - 1),
        f32::from_bits(edge.to_bits() + 1),
    ]);
    x.extend([1e-12, 3e-9, 6e-9]);
    let x: Vec<f32> = x.iter().flat_map(|&v| [v, -v]).collect();
    let half_normal = 2f32.powi(-125);
    for e in common::engines() {
        let mut y = vec![f32::NAN; x.len()];
        for act in [
            Activation::Exp,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Silu,
            Activation::Gelu,
        ] {
            e.activate(act, &x, &mut y).unwrap();
            for (&xi, &yi) in x.iter().zip(&y) {
                let want = match act {
                    Activation::Exp => 1.0,
                    Activation::Sigmoid => 0.5,
                    Activation::Tanh => xi,
                    _ if xi.abs() < half_normal => 0.0,
                    _ => xi * 0.5,
                };
                assert!(
                    yi == want && (yi != 0.0 || act != Activation::Tanh || same_bits(yi, xi)),
                    "{:?} {act:?}({xi:e}) = {yi:e}, want {want:e}",
                    e.backend()
                );
            }
        }
    }
}
