//! Every wrong length or shape returns the matching `Err` (and writes nothing); nothing panics.
use crate::common;

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

#[test]
fn conv_shapes() {
    use simdnn::{Conv2dShape, PackedConv2d, Padding, WeightLayout};
    let s = Conv2dShape::new(5, 5, 4, 6, 3, 3).with_padding(Padding::Same);
    let mut storage = vec![0.0; s.packed_weights_len()];
    let w = vec![0.1; s.weights_len().unwrap()];
    assert_eq!(
        PackedConv2d::pack(&s, WeightLayout::Oihw, &w[1..], &mut storage).unwrap_err(),
        len("w", 216, 215)
    );
    assert_eq!(
        PackedConv2d::pack(&s, WeightLayout::Oihw, &w, &mut storage[1..]).unwrap_err(),
        len("storage", 32 * 36, 32 * 36 - 1)
    );
    let packed = PackedConv2d::pack(&s, WeightLayout::Oihw, &w, &mut storage).unwrap();
    let bad = |e: Conv2dShape| e.output_len().unwrap_err();
    assert_eq!(
        bad(s.with_stride(0, 1)),
        Error::ZeroDimension { arg: "stride_h" }
    );
    assert_eq!(
        bad(s.with_dilation(1, 0)),
        Error::ZeroDimension { arg: "dilation_w" }
    );
    assert_eq!(
        bad(Conv2dShape::new(5, 5, 4, 6, 0, 3)),
        Error::ZeroDimension { arg: "kernel_h" }
    );
    assert_eq!(
        bad(s.with_groups(0)),
        Error::ZeroDimension { arg: "groups" }
    );
    assert_eq!(
        bad(s.with_groups(3)),
        Error::InvalidShape {
            what: "groups must divide in_c and out_c"
        }
    );
    assert_eq!(
        bad(Conv2dShape::new(2, 2, 1, 1, 3, 3)),
        Error::InvalidShape {
            what: "the dilated kernel is larger than the padded input"
        }
    );
    assert_eq!(
        bad(s.with_dilation(usize::MAX, 1)),
        Error::SizeOverflow {
            what: "dilated kernel"
        }
    );
    assert_eq!(
        bad(Conv2dShape::new(usize::MAX, 2, 1, 1, 1, 1)),
        Error::SizeOverflow {
            what: "input length"
        }
    );
    assert_eq!(
        bad(s.with_padding(Padding::Explicit {
            top: usize::MAX,
            bottom: 1,
            left: 0,
            right: 0
        })),
        Error::SizeOverflow {
            what: "padded input"
        }
    );
    for e in common::engines() {
        let x = vec![1.0; 100];
        let mut y = vec![7.0; 150];
        let id = Activation::Identity;
        assert_eq!(
            e.conv2d(&s, &packed, None, id, &x[1..], &mut y),
            Err(len("x", 100, 99))
        );
        assert_eq!(
            e.conv2d(&s, &packed, None, id, &x, &mut y[1..]),
            Err(len("y", 150, 149))
        );
        assert_eq!(
            e.conv2d(&s, &packed, Some(&[0.0; 5]), id, &x, &mut y),
            Err(len("bias", 6, 5))
        );
        let other = s.with_groups(2);
        assert_eq!(
            e.conv2d(&other, &packed, None, id, &x, &mut y),
            Err(Error::InvalidShape {
                what: "weights were packed for another kernel shape"
            })
        );
        assert_eq!(y, vec![7.0; 150], "nothing written on error");
        assert_eq!(e.conv2d(&s, &packed, None, id, &x, &mut y), Ok(()));
        // Streaming.
        let s1 = Conv2dShape::conv1d(0, 2, 3, 4);
        let mut st = vec![0.0; s1.packed_weights_len()];
        let p1 = PackedConv2d::pack(&s1, WeightLayout::Ohwi, &[0.5; 24], &mut st).unwrap();
        let (mut state, mut scratch, mut out) = (vec![0.0; 6], vec![0.0; 10], vec![0.0; 6]);
        assert_eq!(
            e.conv1d_stream(
                &s1,
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 3],
                &mut scratch,
                &mut out
            ),
            Err(Error::NotAMultiple {
                arg: "x",
                len: 3,
                of: 2
            })
        );
        assert_eq!(
            e.conv1d_stream(
                &s1,
                &p1,
                None,
                id,
                &mut state[1..],
                &[1.0; 4],
                &mut scratch,
                &mut out
            ),
            Err(len("state", 6, 5))
        );
        assert_eq!(
            e.conv1d_stream(
                &s1,
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 4],
                &mut scratch[1..],
                &mut out
            ),
            Err(len("scratch", 10, 9))
        );
        assert_eq!(
            e.conv1d_stream(
                &s1,
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 4],
                &mut scratch,
                &mut out[1..]
            ),
            Err(len("y", 6, 5))
        );
        // Stride 2: a chunk of two frames gives one output frame; one frame is not a
        // whole stride; a vertical stride is not a stream.
        assert_eq!(
            e.conv1d_stream(
                &s1.with_stride(1, 2),
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 4],
                &mut scratch,
                &mut out
            ),
            Err(len("y", 3, 6))
        );
        assert_eq!(
            e.conv1d_stream(
                &s1.with_stride(1, 2),
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 2],
                &mut scratch[..8],
                &mut out[..3]
            ),
            Err(Error::NotAMultiple {
                arg: "x",
                len: 2,
                of: 4
            })
        );
        assert_eq!(
            e.conv1d_stream(
                &s1.with_stride(2, 1),
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 4],
                &mut scratch,
                &mut out
            ),
            Err(Error::InvalidShape {
                what: "streaming conv1d needs kernel_h = 1 and stride_h = 1"
            })
        );
        assert_eq!(
            e.conv1d_stream(
                &s1.with_stride(1, 2),
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 4],
                &mut scratch,
                &mut out[..3]
            ),
            Ok(())
        );
        state.fill(0.0);
        assert_eq!(
            e.conv1d_stream(
                &s1,
                &p1,
                None,
                id,
                &mut state,
                &[1.0; 4],
                &mut scratch,
                &mut out
            ),
            Ok(())
        );
    }
}

/// Winograd-packed weights (3x3, stride 1, 8+ channels) are a different layout: using them
/// with another stride or dilation is an error, not a wrong result.
#[test]
fn winograd_weights_need_their_stride() {
    use simdnn::{Conv2dShape, PackedConv2d, WeightLayout};
    let s = Conv2dShape::new(6, 6, 8, 4, 3, 3);
    assert!(s.uses_winograd());
    let mut storage = vec![0.0; s.packed_weights_len()];
    let w = vec![0.25; s.weights_len().unwrap()];
    let packed = PackedConv2d::pack(&s, WeightLayout::Ohwi, &w, &mut storage).unwrap();
    let x = vec![1.0; s.input_len().unwrap()];
    for other in [s.with_stride(2, 2), s.with_dilation(1, 2)] {
        let mut y = vec![0.0; other.output_len().unwrap()];
        for e in common::engines() {
            assert_eq!(
                e.conv2d(&other, &packed, None, Activation::Identity, &x, &mut y),
                Err(Error::InvalidShape {
                    what: "weights were packed for another kernel shape"
                })
            );
        }
        // And the other shape's own packing has another length.
        assert_ne!(other.packed_weights_len(), s.packed_weights_len());
    }
}
