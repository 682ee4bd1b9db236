//! The firmware's keyword-spotting model (examples/firmware/src/kws.rs) on the host: every
//! backend gives the scalar result within the firmware's tolerance, run after run, and the
//! probabilities are a distribution (each layer is checked against its f64 reference in
//! its family's tests). The firmware compares its own result with this scalar one (its
//! build script computes it) under QEMU in CI.

use crate::common;
use crate::kws::{self, CLASSES};
use crate::kws_host::Packed;
use simdnn::{Backend, Engine};

fn packed() -> Packed {
    Packed::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/firmware/model").as_ref())
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads the model's files, which Miri's isolation forbids"
)]
fn every_backend_gives_the_scalar_result() {
    let p = packed();
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    let want = kws::infer(&scalar, &p.model(), &p.input);
    let sum: f32 = want.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "{want:?}");
    assert!(want.iter().all(|&x| x > 0.0 && x < 1.0), "{want:?}");
    for e in common::engines() {
        let got = kws::infer(&e, &p.model(), &p.input);
        for c in 0..CLASSES {
            assert!(
                (got[c] - want[c]).abs() <= kws::TOLERANCE,
                "{:?} class {c}: {} vs scalar {}",
                e.backend(),
                got[c],
                want[c]
            );
        }
        // Deterministic: the same backend gives the same bits every run.
        assert_eq!(got, kws::infer(&e, &p.model(), &p.input));
    }
}
