//! Backend detection and selection.
use simdnn::{Backend, Engine};

#[test]
fn auto_backend_is_the_best_available() {
    let b = Engine::new().backend();
    assert!(b.is_available());
    assert_eq!(b, Backend::best());
    #[cfg(target_arch = "aarch64")]
    assert_eq!(b, Backend::Neon, "NEON must be selected on aarch64");
    #[cfg(target_arch = "x86_64")]
    if Backend::Avx512.is_available() {
        assert_eq!(b, Backend::Avx512);
    } else if Backend::Avx2.is_available() {
        assert_eq!(b, Backend::Avx2);
    }
}

/// On this project's x86-64 CI machine every x86 backend must really be tested, not skipped
/// because detection failed. `SIMDNN_EXPECT_BACKENDS=scalar,avx2,avx512` turns it on.
#[test]
fn expected_backends_are_available() {
    if let Ok(list) = std::env::var("SIMDNN_EXPECT_BACKENDS") {
        for name in list.split(',') {
            let b = Backend::ALL
                .into_iter()
                .find(|b| b.name() == name)
                .expect("backend name");
            assert!(b.is_available(), "{name} expected but not available");
        }
    }
}
