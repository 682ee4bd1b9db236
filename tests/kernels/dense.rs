//! Dense layers: packed (GEMV and GEMM paths, K blocks, panel tails) and row-major, every
//! backend against the f64 reference with the documented bound.
use crate::common;

use proptest::prelude::*;
use simdnn::{Activation, Dense, PackedDense, dense_packed_len, pack_dense};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 48 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn activations() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Relu),
        Just(Activation::Relu6),
        Just(Activation::LeakyRelu(0.1)),
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
    ]
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![9 => -1.0f32..1.0, 1 => -1e4f32..1e4]
}

#[derive(Debug, Clone)]
struct Problem {
    out: usize,
    inp: usize,
    batch: usize,
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
    x: Vec<f32>,
    act: Activation,
}

fn problem(max_out: usize, max_in: usize, max_batch: usize) -> impl Strategy<Value = Problem> {
    // Miri interprets every operation: smaller layers there (still past every tile size).
    let (max_out, max_in, max_batch) = if cfg!(miri) {
        (max_out.min(40), max_in.min(70), max_batch.min(14))
    } else {
        (max_out, max_in, max_batch)
    };
    (
        1..=max_out,
        0..=max_in,
        0..=max_batch,
        any::<bool>(),
        activations(),
    )
        .prop_flat_map(|(out, inp, batch, has_bias, act)| {
            (
                prop::collection::vec(value(), out * inp),
                prop::collection::vec(value(), if has_bias { out } else { 0 }),
                prop::collection::vec(value(), batch * inp),
            )
                .prop_map(move |(w, b, x)| Problem {
                    out,
                    inp,
                    batch,
                    w,
                    bias: has_bias.then_some(b),
                    x,
                    act,
                })
        })
}

/// Checks `y` against the f64 reference: pre-activation error within
/// `(inp + 2) 2^-24 sum |w x| + 2^-24 |b|`, then the activation's Lipschitz constant (<= 1
/// for every activation tested here) and its own 4 ulp.
fn check(p: &Problem, y: &[f32], what: &str) -> Result<(), TestCaseError> {
    let eps = 2f64.powi(-24);
    for r in 0..p.batch {
        for o in 0..p.out {
            let (mut acc, mut mag) = (0.0f64, 0.0f64);
            for k in 0..p.inp {
                let t = p.w[o * p.inp + k] as f64 * p.x[r * p.inp + k] as f64;
                acc += t;
                mag += t.abs();
            }
            let b = p.bias.as_ref().map_or(0.0, |b| b[o] as f64);
            let want = common::act_ref(p.act, acc + b);
            let tol = (p.inp as f64 + 2.0) * eps * mag
                + 2.0 * eps * b.abs()
                + 4.0 * common::ulp_of(want)
                + 1e-30;
            let got = y[r * p.out + o] as f64;
            prop_assert!(
                (got - want).abs() <= tol,
                "{what}: row {r} out {o}: got {got:e} want {want:e} tol {tol:e}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn packed_matches_reference(p in problem(80, 70, 30)) {
        let mut storage = vec![f32::NAN; dense_packed_len(p.out, p.inp)];
        let packed = PackedDense::pack(&p.w, p.out, p.inp, &mut storage).unwrap();
        for e in common::engines() {
            let mut y = vec![f32::NAN; p.batch * p.out];
            e.dense(&packed, p.bias.as_deref(), p.act, &p.x, &mut y).unwrap();
            check(&p, &y, &format!("packed {:?}", e.backend()))?;
        }
    }

    #[test]
    fn row_major_matches_reference(p in problem(40, 90, 3)) {
        for e in common::engines() {
            let mut y = vec![f32::NAN; p.batch * p.out];
            e.dense_row_major(&p.w, p.inp, p.bias.as_deref(), p.act, &p.x, &mut y).unwrap();
            check(&p, &y, &format!("row-major {:?}", e.backend()))?;
        }
    }

    /// Long inner dimensions, batches past every row block.
    #[test]
    fn packed_large_k_matches_reference(p in problem(40, 700, 14)) {
        let mut storage = vec![0.0; dense_packed_len(p.out, p.inp)];
        let packed = PackedDense::pack(&p.w, p.out, p.inp, &mut storage).unwrap();
        for e in common::engines() {
            let mut y = vec![f32::NAN; p.batch * p.out];
            e.dense(&packed, p.bias.as_deref(), p.act, &p.x, &mut y).unwrap();
            check(&p, &y, &format!("packed {:?}", e.backend()))?;
        }
    }

    /// Each row of a batch is bit for bit that row computed alone: the GEMM and the GEMV
    /// sum in the same order.
    #[test]
    fn batch_rows_independent(p in problem(70, 300, 20)) {
        let mut storage = vec![0.0; dense_packed_len(p.out, p.inp)];
        let packed = PackedDense::pack(&p.w, p.out, p.inp, &mut storage).unwrap();
        for e in common::engines() {
            let mut y = vec![0.0; p.batch * p.out];
            e.dense(&packed, p.bias.as_deref(), p.act, &p.x, &mut y).unwrap();
            for r in 0..p.batch {
                let mut one = vec![0.0; p.out];
                e.dense(&packed, p.bias.as_deref(), p.act, &p.x[r * p.inp..(r + 1) * p.inp], &mut one).unwrap();
                prop_assert_eq!(&y[r * p.out..(r + 1) * p.out], &one[..], "{:?}", e.backend());
            }
        }
    }
}

#[test]
fn fixed_size_and_compile_time_packing_match_runtime() {
    const W: [[f32; 5]; 3] = [
        [0.1, -0.2, 0.3, 0.4, 0.5],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        [-1.0, 2.0, -3.0, 4.0, -5.0],
    ];
    static B: [f32; 3] = [0.5, -0.5, 0.0];
    static PACKED: [f32; dense_packed_len(3, 5)] = pack_dense(&W);
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let want = [
        0.1 - 0.4 + 0.9 + 1.6 + 2.5 + 0.5,
        15.0 - 0.5,
        -1.0 + 4.0 - 9.0 + 16.0 - 25.0,
    ];
    for e in common::engines() {
        let mut y = [0.0; 3];
        Dense::new(&W, Some(&B), Activation::Identity).forward(&e, &x, &mut y);
        let packed = PackedDense::from_packed(&PACKED, 3, 5).unwrap();
        let mut z = [0.0; 3];
        e.dense(&packed, Some(&B), Activation::Identity, &x, &mut z)
            .unwrap();
        for i in 0..3 {
            assert!(
                (y[i] - want[i]).abs() < 1e-5 && (z[i] - want[i]).abs() < 1e-5,
                "{y:?} {z:?}"
            );
        }
    }
    // The bytes of the packed weights, read back without a copy (as from include_bytes!).
    let bytes: &[u8] = bytemuck::cast_slice(&PACKED);
    let again: &[f32] = bytemuck::cast_slice(bytes);
    assert!(PackedDense::from_packed(again, 3, 5).is_ok());
}

#[test]
fn zero_inputs_give_activation_of_bias() {
    for e in common::engines() {
        let packed = PackedDense::from_packed(&[], 3, 0).unwrap();
        let mut y = [9.0; 6];
        e.dense(
            &packed,
            Some(&[1.0, -1.0, 2.0]),
            Activation::Relu,
            &[],
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [1.0, 0.0, 2.0, 1.0, 0.0, 2.0]);
        let mut z = [9.0; 3];
        e.dense_row_major(
            &[],
            0,
            Some(&[1.0, -1.0, 2.0]),
            Activation::Relu,
            &[],
            &mut z,
        )
        .unwrap();
        assert_eq!(z, [1.0, 0.0, 2.0]);
    }
}

proptest! {
    #![proptest_config(config())]

    /// `matmul` is `A B` within the summation bound, on every backend, over shapes past
    /// every tile size and edge.
    #[test]
    fn matmul_matches_reference(
        (m, k, n, a, b) in (1usize..30, 0usize..40, 1usize..80).prop_flat_map(|(m, k, n)| (
            Just(m), Just(k), Just(n),
            prop::collection::vec(value(), m * k),
            prop::collection::vec(value(), k * n),
        ))
    ) {
        for nn in common::engines() {
            let mut c = vec![f32::NAN; m * n];
            nn.matmul(m, k, n, &a, &b, &mut c).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let (mut sum, mut mag) = (0.0f64, 0.0f64);
                    for t in 0..k {
                        let p = f64::from(a[i * k + t]) * f64::from(b[t * n + j]);
                        sum += p;
                        mag += p.abs();
                    }
                    let bound = (k as f64 + 2.0) * f64::from(f32::EPSILON) / 2.0 * mag + 1e-30;
                    let got = f64::from(c[i * n + j]);
                    prop_assert!((got - sum).abs() <= bound,
                        "{:?} {m}x{k}x{n} [{i}][{j}]: {got} vs {sum}", nn.backend());
                }
            }
        }
    }
}

/// Wrong lengths and overflowing sizes are errors naming the argument.
#[test]
fn matmul_rejects_wrong_lengths() {
    use simdnn::Error;
    let nn = simdnn::Engine::new();
    let mut c = [0.0; 6];
    let err = nn
        .matmul(2, 2, 3, &[0.0; 3], &[0.0; 6], &mut c)
        .unwrap_err();
    assert!(
        matches!(err, Error::LengthMismatch { arg: "a", .. }),
        "{err:?}"
    );
    let err = nn
        .matmul(2, 2, 3, &[0.0; 4], &[0.0; 5], &mut c)
        .unwrap_err();
    assert!(
        matches!(err, Error::LengthMismatch { arg: "b", .. }),
        "{err:?}"
    );
    let err = nn
        .matmul(2, 2, 2, &[0.0; 4], &[0.0; 4], &mut c)
        .unwrap_err();
    assert!(
        matches!(err, Error::LengthMismatch { arg: "c", .. }),
        "{err:?}"
    );
    assert!(nn.matmul(usize::MAX, 2, 1, &[], &[0.0; 2], &mut c).is_err());
    // k = 0: C is zeros.
    let mut c = [1.0; 4];
    nn.matmul(2, 0, 2, &[], &[], &mut c).unwrap();
    assert_eq!(c, [0.0; 4]);
}
