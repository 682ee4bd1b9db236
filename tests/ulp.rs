//! Maximum error of the vector math over every f32 input, against f64, for every backend.
//!
//! `cargo test --release --test ulp -- --ignored --nocapture` (CI runs it). One f64
//! reference pass per block of inputs is shared by all backends; blocks are split across
//! the cores. `SIMDNN_ULP_STRIDE=n` tests every n-th bit pattern instead (used under qemu).
mod common;

use simdnn::Activation;
use std::sync::Mutex;

/// Documented bounds (crate docs, `Activation`), in ulp, and the input below which the
/// result is documented to be flushed to 0 (its true value is below about 1.7e-38).
const BOUNDS: [(Activation, f64, f32); 3] = [
    (Activation::Exp, 2.0, -86.64),
    (Activation::Tanh, 4.0, f32::NEG_INFINITY),
    (Activation::Sigmoid, 4.0, -87.0),
];

#[derive(Clone, Copy, Default)]
struct Worst {
    ulp: f64,
    input: f32,
    output: f32,
}

/// `common::act_ref`, with closed forms where f64 libm spends most of the sweep's time for
/// nothing: below 2^-25 in magnitude (40% of all inputs) the first term or two are exact to
/// 2^-51 relative, and from 128 up (47%) every result is saturated (a true value below
/// 1e-55 counts as 0: `ulp_error` treats both alike).
fn reference(act: Activation, x: f32) -> f64 {
    let (a, x) = (x.abs(), x as f64);
    if a < 2f32.powi(-25) {
        return match act {
            Activation::Exp => 1.0 + x,
            Activation::Tanh => x,
            Activation::Sigmoid => 0.5 + 0.25 * x,
            _ => common::act_ref(act, x),
        };
    }
    if a >= 128.0 {
        return match (act, x > 0.0) {
            (Activation::Exp, true) => f64::INFINITY,
            (Activation::Tanh, _) => x.signum(),
            (Activation::Exp | Activation::Sigmoid, false) => 0.0,
            (Activation::Sigmoid, true) => 1.0,
            _ => common::act_ref(act, x),
        };
    }
    common::act_ref(act, x)
}

#[test]
#[ignore = "exhaustive: minutes in release mode; CI runs it"]
fn every_f32_input_within_documented_ulp() {
    let stride: u64 = std::env::var("SIMDNN_ULP_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let engines = common::engines();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    const BLOCK: u64 = 1 << 16;
    let count = (1u64 << 32).div_ceil(stride);
    let blocks = count.div_ceil(BLOCK);

    let mut failed = false;
    for (act, bound, flush_below) in BOUNDS {
        let worst = Mutex::new(vec![Worst::default(); engines.len()]);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (engines, worst) = (&engines, &worst);
                scope.spawn(move || {
                    let mut local = vec![Worst::default(); engines.len()];
                    let (mut x, mut r, mut rounded) = (Vec::new(), Vec::new(), Vec::new());
                    let mut y = vec![0.0f32; BLOCK as usize];
                    for b in (t..blocks).step_by(threads as usize) {
                        x.clear();
                        // NaN patterns are checked once below, not 2^24 times each.
                        x.extend(
                            (b * BLOCK..((b + 1) * BLOCK).min(count))
                                .map(|i| f32::from_bits((i * stride) as u32))
                                .filter(|v| !v.is_nan()),
                        );
                        r.clear();
                        r.extend(x.iter().map(|&v| reference(act, v)));
                        rounded.clear();
                        rounded.extend(r.iter().map(|&v| (v as f32).to_bits()));
                        let y = &mut y[..x.len()];
                        for (e, w) in engines.iter().zip(local.iter_mut()) {
                            e.activate(act, &x, y).unwrap();
                            let results = x.iter().zip(y.iter()).zip(&r).zip(&rounded);
                            for (((&xi, &yi), &ri), &ci) in results {
                                // The correctly rounded result is within 0.5 ulp; any other
                                // is at least that far off, so only those can be the
                                // maximum (most results are; skipping them saves a quarter
                                // of the sweep).
                                if yi.to_bits() == ci {
                                    continue;
                                }
                                let flushed = xi < flush_below && yi == 0.0;
                                let u = if flushed {
                                    0.0
                                } else {
                                    common::ulp_error(yi, ri)
                                };
                                if u > w.ulp {
                                    *w = Worst {
                                        ulp: u,
                                        input: xi,
                                        output: yi,
                                    };
                                }
                            }
                        }
                    }
                    let mut g = worst.lock().unwrap();
                    for (g, l) in g.iter_mut().zip(local) {
                        if l.ulp > g.ulp {
                            *g = l;
                        }
                    }
                });
            }
        });
        for (e, w) in engines.iter().zip(worst.into_inner().unwrap()) {
            println!(
                "{:<8} {:<7} max {:.3} ulp at x = {:e} ({:#010x}): got {:e}, want {:e}",
                format!("{act:?}"),
                e.backend().name(),
                w.ulp,
                w.input,
                w.input.to_bits(),
                w.output,
                common::act_ref(act, w.input as f64)
            );
            failed |= w.ulp > bound;
        }
    }
    assert!(!failed, "a function exceeded its documented bound");
}

#[test]
fn nan_in_nan_out_and_saturation() {
    let nans = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_1234),
    ];
    for e in common::engines() {
        for (act, _, _) in BOUNDS {
            let mut y = [0.0; 4];
            e.activate(act, &nans, &mut y).unwrap();
            assert!(
                y.iter().all(|v| v.is_nan()),
                "{act:?} on {:?}: {y:?}",
                e.backend()
            );
        }
        let x = [
            f32::INFINITY,
            f32::NEG_INFINITY,
            88.72283,
            88.722_84,
            -87.336_55,
            -1000.0,
        ];
        let mut y = [0.0; 6];
        e.activate(Activation::Exp, &x, &mut y).unwrap();
        assert_eq!(y[..2], [f32::INFINITY, 0.0]);
        assert!(y[2].is_finite() && y[2] > 3.4e38, "{:?}", y[2]);
        assert_eq!(y[3..], [f32::INFINITY, 0.0, 0.0]);
        e.activate(Activation::Tanh, &x, &mut y).unwrap();
        assert_eq!(y, [1.0, -1.0, 1.0, 1.0, -1.0, -1.0]);
        // tanh keeps the sign of zero (and of the smallest subnormals, where tanh x = x).
        let tiny = [0.0, -0.0, f32::from_bits(1), -f32::from_bits(1)];
        let mut t = [f32::NAN; 4];
        e.activate(Activation::Tanh, &tiny, &mut t).unwrap();
        assert_eq!(
            t.map(f32::to_bits),
            tiny.map(f32::to_bits),
            "{:?}",
            e.backend()
        );
        e.activate(Activation::Sigmoid, &x, &mut y).unwrap();
        assert_eq!(y, [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
