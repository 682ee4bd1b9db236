//! Row softmax / log-softmax: every backend against the f64 reference, masks, fully masked
//! rows, NaN propagation.
use crate::common;

use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 96 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -8.0f32..8.0,
        2 => -1000.0f32..1000.0,
        1 => Just(f32::NEG_INFINITY),
    ]
}

/// Rows, columns, data, and an optional mask (shared row or per row).
fn problem() -> impl Strategy<Value = (usize, Vec<f32>, Option<Vec<f32>>)> {
    (1usize..5, 1usize..70).prop_flat_map(|(rows, cols)| {
        let mask_len = prop_oneof![Just(0usize), Just(cols), Just(rows * cols)];
        (
            Just(cols),
            prop::collection::vec(value(), rows * cols),
            mask_len,
        )
            .prop_flat_map(|(cols, x, mask_len)| {
                let mask = prop::collection::vec(
                    prop_oneof![4 => -3.0f32..3.0, 1 => Just(f32::NEG_INFINITY)],
                    mask_len,
                );
                (
                    Just(cols),
                    Just(x),
                    mask.prop_map(|m| if m.is_empty() { None } else { Some(m) }),
                )
            })
    })
}

fn check(log: bool, cols: usize, x: &[f32], mask: Option<&[f32]>) -> Result<(), TestCaseError> {
    for e in common::engines() {
        let mut y = vec![0.0; x.len()];
        if log {
            e.log_softmax(x, cols, mask, &mut y).unwrap();
        } else {
            e.softmax(x, cols, mask, &mut y).unwrap();
        }
        let mut z = x.to_vec();
        if log {
            e.log_softmax_in_place(&mut z, cols, mask).unwrap();
        } else {
            e.softmax_in_place(&mut z, cols, mask).unwrap();
        }
        prop_assert_eq!(&y, &z);
        for (r, (xr, yr)) in x.chunks(cols).zip(y.chunks(cols)).enumerate() {
            let mr = mask.map(|m| {
                if m.len() == cols {
                    m
                } else {
                    &m[r * cols..(r + 1) * cols]
                }
            });
            let want = common::softmax_ref(xr, mr, log);
            let v: Vec<f32> = match mr {
                Some(m) => xr.iter().zip(m).map(|(a, b)| a + b).collect(),
                None => xr.to_vec(),
            };
            let max = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            for ((&got, &want), &vi) in yr.iter().zip(&want).zip(&v) {
                // exp's 2 ulp, the f32 rounding of x - max (relative 2^-24 |x - max|), the
                // sum (cols * 2^-24) and the final scaling.
                let gap = if vi == f32::NEG_INFINITY {
                    0.0
                } else {
                    (vi as f64 - max).abs()
                };
                let rel = (4.0 + gap + cols as f64) * 2f64.powi(-24);
                let tol = if log {
                    rel * (1.0 + want.abs()) + (cols as f64) * 2f64.powi(-24)
                } else {
                    // exp flushes results below 2.4e-38 to 0 (documented).
                    rel * want.abs() + 2.4e-38
                };
                let ok = if want == f64::NEG_INFINITY {
                    got == f32::NEG_INFINITY
                } else {
                    (got as f64 - want).abs() <= tol
                };
                prop_assert!(
                    ok,
                    "{:?} log={log} row {r}: got {got:e}, want {want:e}",
                    e.backend()
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn softmax_matches_reference((cols, x, mask) in problem()) {
        check(false, cols, &x, mask.as_deref())?;
    }

    #[test]
    fn log_softmax_matches_reference((cols, x, mask) in problem()) {
        check(true, cols, &x, mask.as_deref())?;
    }
}

#[test]
fn fully_masked_rows_are_zero_and_masked_entries_exactly_zero() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    let inf = f32::NEG_INFINITY;
    let mask = [inf, inf, inf, inf, inf, 0.0, inf, 0.0, inf, 0.0];
    for e in common::engines() {
        let mut y = [f32::NAN; 10];
        e.softmax(&x, 5, Some(&mask), &mut y).unwrap();
        assert_eq!(y[..5], [0.0; 5]);
        assert_eq!([y[6], y[8]], [0.0, 0.0]);
        assert!((y[5] + y[7] + y[9] - 1.0).abs() < 1e-6);
        e.log_softmax(&x, 5, Some(&mask), &mut y).unwrap();
        assert_eq!(y[..5], [0.0; 5]);
        assert_eq!([y[6], y[8]], [inf, inf]);
    }
}

#[test]
fn nan_propagates_to_its_row_only() {
    let x = [1.0, f32::NAN, 3.0, 1.0, 2.0, 3.0];
    for e in common::engines() {
        let mut y = [0.0; 6];
        e.softmax(&x, 3, None, &mut y).unwrap();
        assert!(
            y[..3].iter().all(|v| v.is_nan()),
            "{:?}: {y:?}",
            e.backend()
        );
        assert!(y[3..].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn fixed_size_matches_runtime() {
    let mut a: [[f32; 13]; 3] =
        core::array::from_fn(|r| core::array::from_fn(|c| (r * c) as f32 * 0.3));
    let x = a.as_flattened().to_vec();
    for e in common::engines() {
        let mut b = x.clone();
        e.softmax_in_place(&mut b, 13, None).unwrap();
        let mut a2 = a;
        e.softmax_array(&mut a2, None);
        assert_eq!(a2.as_flattened(), &b[..]);
    }
    let nn = simdnn::Engine::new();
    nn.softmax_array(&mut a, Some(&[0.0; 13]));
    assert!((a[1].iter().sum::<f32>() - 1.0).abs() < 1e-5);
}
