//! Every wrong length or shape returns the matching `Err` (and writes nothing); nothing panics.
mod common;

use simdnn::{Activation, Backend, Engine, Error, PackedDense, dense_packed_len};

fn len(arg: &'static str, expected: usize, got: usize) -> Error {
    Error::LengthMismatch { arg, expected, got }
}

#[test]
fn activation_lengths() {
    for e in common::engines() {
        let mut y = [7.0; 3];
        assert_eq!(
            e.activate(Activation::Relu, &[1.0; 4], &mut y),
            Err(len("y", 4, 3))
        );
        assert_eq!(y, [7.0; 3]);
        assert_eq!(e.activate(Activation::Relu, &[], &mut []), Ok(()));
        e.activate_in_place(Activation::Tanh, &mut []);
    }
}

#[test]
fn softmax_shapes() {
    for e in common::engines() {
        let x = [1.0; 6];
        let mut y = [7.0; 6];
        assert_eq!(e.softmax(&x, 3, None, &mut y[..5]), Err(len("y", 6, 5)));
        assert_eq!(
            e.softmax(&x, 4, None, &mut y),
            Err(Error::NotAMultiple {
                arg: "x",
                len: 6,
                of: 4
            })
        );
        assert_eq!(
            e.softmax(&x, 0, None, &mut y),
            Err(Error::ZeroDimension { arg: "cols" })
        );
        assert_eq!(
            e.softmax(&x, 3, Some(&[0.0; 4]), &mut y),
            Err(len("mask", 6, 4))
        );
        assert_eq!(
            e.log_softmax(&x, 3, Some(&[0.0; 5]), &mut y),
            Err(len("mask", 6, 5))
        );
        assert_eq!(y, [7.0; 6], "nothing written on error");
        let mut z = [1.0; 6];
        assert_eq!(
            e.softmax_in_place(&mut z, 5, None),
            Err(Error::NotAMultiple {
                arg: "x",
                len: 6,
                of: 5
            })
        );
        assert_eq!(
            e.log_softmax_in_place(&mut z, 0, None),
            Err(Error::ZeroDimension { arg: "cols" })
        );
        assert_eq!(z, [1.0; 6]);
        assert_eq!(e.softmax(&[], 0, None, &mut []), Ok(()));
        assert_eq!(e.softmax(&[], 3, None, &mut []), Ok(()));
        // Both mask forms are accepted.
        assert_eq!(e.softmax(&x, 3, Some(&[0.0; 3]), &mut y), Ok(()));
        assert_eq!(e.softmax(&x, 3, Some(&[0.0; 6]), &mut y), Ok(()));
    }
}

#[test]
fn dense_shapes() {
    let w = [1.0; 6]; // 3 x 2
    let mut storage = [0.0; dense_packed_len(3, 2)];
    assert_eq!(
        PackedDense::pack(&w[..5], 3, 2, &mut storage).unwrap_err(),
        len("w", 6, 5)
    );
    assert_eq!(
        PackedDense::pack(&w, 3, 2, &mut storage[..10]).unwrap_err(),
        len("storage", 64, 10)
    );
    assert_eq!(
        PackedDense::pack(&w, usize::MAX, 2, &mut storage).unwrap_err(),
        Error::SizeOverflow { what: "w length" }
    );
    assert_eq!(
        PackedDense::from_packed(&storage, usize::MAX, 1).unwrap_err(),
        Error::SizeOverflow {
            what: "packed length"
        }
    );
    assert_eq!(
        PackedDense::from_packed(&storage, 3, 3).unwrap_err(),
        len("data", 96, 64)
    );
    let packed = PackedDense::pack(&w, 3, 2, &mut storage).unwrap();
    for e in common::engines() {
        let mut y = [7.0; 6];
        let id = Activation::Identity;
        assert_eq!(
            e.dense(&packed, None, id, &[1.0; 3], &mut y),
            Err(Error::NotAMultiple {
                arg: "x",
                len: 3,
                of: 2
            })
        );
        assert_eq!(
            e.dense(&packed, None, id, &[1.0; 4], &mut y[..5]),
            Err(len("y", 6, 5))
        );
        assert_eq!(
            e.dense(&packed, Some(&[0.0; 2]), id, &[1.0; 4], &mut y),
            Err(len("bias", 3, 2))
        );
        assert_eq!(
            e.dense_row_major(&w, 4, None, id, &[1.0; 4], &mut y),
            Err(Error::NotAMultiple {
                arg: "w",
                len: 6,
                of: 4
            })
        );
        assert_eq!(
            e.dense_row_major(&w, 2, None, id, &[1.0; 5], &mut y),
            Err(Error::NotAMultiple {
                arg: "x",
                len: 5,
                of: 2
            })
        );
        assert_eq!(
            e.dense_row_major(&w, 2, None, id, &[1.0; 4], &mut y[..4]),
            Err(len("y", 6, 4))
        );
        assert_eq!(
            e.dense_row_major(&w, 2, Some(&[0.0; 4]), id, &[1.0; 4], &mut y),
            Err(len("bias", 3, 4))
        );
        assert_eq!(
            e.dense_row_major(&w, 0, None, id, &[], &mut y),
            Err(Error::ZeroDimension { arg: "in_features" })
        );
        assert_eq!(y, [7.0; 6], "nothing written on error");
        assert_eq!(e.dense(&packed, None, id, &[], &mut []), Ok(()));
        assert_eq!(e.dense(&packed, None, id, &[1.0; 4], &mut y), Ok(()));
        assert_eq!(y, [2.0; 6]);
    }
}

#[test]
fn unavailable_backend_is_an_error() {
    for b in Backend::ALL {
        match Engine::with_backend(b) {
            Ok(e) => assert_eq!(e.backend(), b),
            Err(err) => {
                assert!(!b.is_available());
                assert_eq!(err, Error::UnsupportedBackend(b));
                assert!(err.to_string().contains(b.name()));
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        Engine::with_backend(Backend::Neon),
        Err(Error::UnsupportedBackend(Backend::Neon))
    );
    #[cfg(target_arch = "aarch64")]
    assert_eq!(
        Engine::with_backend(Backend::Avx2),
        Err(Error::UnsupportedBackend(Backend::Avx2))
    );
}

#[test]
fn errors_display_what_went_wrong() {
    assert_eq!(len("y", 4, 3).to_string(), "`y` has length 3, expected 4");
    assert_eq!(
        Error::NotAMultiple {
            arg: "x",
            len: 7,
            of: 3
        }
        .to_string(),
        "`x` has length 7, which is not a multiple of 3"
    );
    let e: &dyn core::error::Error = &Error::ZeroDimension { arg: "cols" };
    assert_eq!(e.to_string(), "`cols` must be positive");
}
