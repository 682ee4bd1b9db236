//! Arbitrary softmax shapes, masks and data: never panics, bad shapes are errors, results
//! are probabilities (or zeros for fully masked rows), and the best backend agrees with scalar.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{Backend, Engine};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (cols, mask_kind, log) = (data[0] as usize % 40, data[1] % 4, data[2] & 1 == 1);
    let vals: Vec<f32> = data[3..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let (x, mask) = match mask_kind {
        0 => (&vals[..], None),
        // First `cols` values are a shared mask row, or a (possibly wrong-sized) per-row mask.
        1 => (&vals[cols.min(vals.len())..], Some(&vals[..cols.min(vals.len())])),
        _ => {
            let half = vals.len() / 2;
            (&vals[half..], Some(&vals[..half]))
        }
    };
    let best = Engine::new();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    let mut y = vec![0.0; x.len()];
    let mut z = vec![0.0; x.len()];
    let run = |e: Engine, out: &mut [f32]| if log { e.log_softmax(x, cols, mask, out) } else { e.softmax(x, cols, mask, out) };
    let r = run(best, &mut y);
    let valid = (cols == 0 && x.is_empty())
        || (cols > 0 && x.len() % cols == 0 && mask.is_none_or(|m| m.len() == cols || m.len() == x.len()));
    assert_eq!(r.is_ok(), valid, "cols {cols} x {} mask {:?}", x.len(), mask.map(|m| m.len()));
    if r.is_err() {
        return;
    }
    // The in-place forms give the same bits.
    let mut w = x.to_vec();
    if log { best.log_softmax_in_place(&mut w, cols, mask) } else { best.softmax_in_place(&mut w, cols, mask) }.unwrap();
    assert!(w.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
    // Finite in, never NaN out (an overflowing x + mask shares the row instead).
    let finite = x.iter().chain(mask.unwrap_or(&[])).all(|v| v.is_finite());
    assert!(!finite || y.iter().all(|v| !v.is_nan()), "NaN from finite input");
    run(scalar, &mut z).unwrap();
    for (row_y, row_z) in y.chunks(cols.max(1)).zip(z.chunks(cols.max(1))) {
        if row_y.iter().any(|v| v.is_nan()) {
            continue; // NaN input (or +inf - inf): NaN row, by contract.
        }
        if !log {
            let sum: f32 = row_y.iter().sum();
            assert!(sum == 0.0 || (sum - 1.0).abs() < 1e-4, "sum {sum}");
            assert!(row_y.iter().all(|p| (0.0..=1.0).contains(p)));
        }
        for (a, b) in row_y.iter().zip(row_z) {
            assert!(a == b || (a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
});
