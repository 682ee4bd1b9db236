//! A hostile caller: shapes with absurd but cheap strides, paddings and dilations, values
//! at the edges of f32, and every kind of bad call with every output pre-filled with a
//! sentinel. Each case gets an `Err` or the right answer, never a panic, and nothing is
//! written when an `Err` comes back. CI runs this file in debug and in release builds
//! (overflow checks on and off).
use crate::common;

use simdnn::{
    Activation, Conv2dShape, ConvAlgorithm, Engine, Error, PackedConv2d, PackedDense, Padding,
    WeightLayout, convert_weights, dense_packed_len,
};

const SENTINEL: f32 = -1234.5;

fn pad_w(left: usize, right: usize) -> Padding {
    Padding::Explicit {
        top: 0,
        bottom: 0,
        left,
        right,
    }
}

/// Packs all-ones weights (if the shape allows) and runs `conv2d` on an all-ones input:
/// `Ok(output)`, or the first `Err`.
fn run_conv(e: &Engine, shape: &Conv2dShape) -> Result<Vec<f32>, Error> {
    let w = vec![1.0; shape.weights_len()?];
    let mut storage = vec![0.0; shape.packed_weights_len()];
    let packed = PackedConv2d::pack(shape, WeightLayout::Ohwi, &w, &mut storage)?;
    let x = vec![1.0; shape.input_len()?];
    let mut y = vec![SENTINEL; shape.output_len()?];
    match e.conv2d(shape, &packed, None, Activation::Identity, &x, &mut y) {
        Ok(()) => Ok(y),
        Err(err) => {
            assert!(y.iter().all(|&v| v == SENTINEL), "written on {err:?}");
            Err(err)
        }
    }
}

/// The shapes the hostile sweep of 2026-12 found panicking or silently wrong.
#[test]
fn absurd_strides_and_paddings_are_refused_or_right() {
    let cases = [
        // `15 * stride` wrapped to 1 in the few-channel test, which then stepped by 0.
        Conv2dShape::new(3, 3, 3, 8, 3, 3).with_stride(1, 0xEEEE_EEEE_EEEE_EEEF),
        // `mid > len` in the padded-row copy.
        Conv2dShape::new(1, 1, 2, 3, 1, 1)
            .with_stride(1, 1 << 62)
            .with_padding(pad_w(1 << 62, 1 << 62)),
        // The padded row length wrapped: [8, 8, 8] instead of [0, 8, 0].
        Conv2dShape::new(1, 1, 8, 1, 1, 1)
            .with_stride(1, 1 << 61)
            .with_padding(pad_w(1 << 61, 1 << 61)),
        Conv2dShape::new(3, 1, 16, 1, 1, 1)
            .with_stride(1, 1 << 61)
            .with_padding(pad_w(1 << 61, 1 << 61)),
        Conv2dShape::new(2, 2, 1, 4, 2, 2).with_dilation(usize::MAX / 2, 1),
        Conv2dShape::new(2, 2, 1, 4, 2, 2).with_dilation(1, usize::MAX / 3),
        // (k - 1) d + 1 overflowed by the last one (found by the fuzzer).
        Conv2dShape::new(2, 2, 1, 4, 2, 2).with_dilation(1, usize::MAX),
        Conv2dShape::new(4, 4, 4, 4, 3, 3)
            .with_groups(4)
            .with_stride(usize::MAX, usize::MAX)
            .with_padding(Padding::Same),
        Conv2dShape::new(4, 4, 4, 4, 3, 3).with_padding(Padding::Explicit {
            top: usize::MAX / 2,
            bottom: usize::MAX / 2,
            left: 1,
            right: 1,
        }),
    ];
    for e in common::engines() {
        for shape in &cases {
            match run_conv(&e, shape) {
                Err(_) => {}
                other => panic!("{:?} {shape:?}: {other:?}", e.backend()),
            }
        }
        // A huge but representable stride on a small image is fine: one output column.
        let one = Conv2dShape::new(1, 5, 2, 3, 1, 3).with_stride(1, 1 << 40);
        assert_eq!(run_conv(&e, &one), Ok(vec![6.0; 3]), "{:?}", e.backend());
        // Paddings wider than the image: zeros around one real pixel.
        let wide = Conv2dShape::new(1, 1, 8, 1, 1, 1)
            .with_stride(1, 1000)
            .with_padding(pad_w(1000, 1000));
        assert_eq!(
            run_conv(&e, &wide),
            Ok(vec![0.0, 8.0, 0.0]),
            "{:?}",
            e.backend()
        );
    }
}

#[test]
fn packed_length_never_overflows() {
    for shape in [
        Conv2dShape::new(8, 8, 16, usize::MAX, 3, 3),
        Conv2dShape::new(8, 8, 16, usize::MAX - 31, 3, 3),
        Conv2dShape::new(8, 8, 2, usize::MAX / 2, 3, 3),
        Conv2dShape::new(8, 8, 4, usize::MAX / 4 * 4, 3, 3).with_groups(4),
        Conv2dShape::new(8, 8, 1, 1, usize::MAX, 2),
    ] {
        assert_eq!(shape.packed_weights_len(), 0, "{shape:?}");
        let mut storage = [0.0; 4];
        assert!(PackedConv2d::pack(&shape, WeightLayout::Ohwi, &[], &mut storage).is_err());
        assert_eq!(storage, [0.0; 4]);
    }
}

#[test]
fn dense_without_inputs_takes_no_input() {
    for e in common::engines() {
        let mut storage = [0.0; 0];
        let packed = PackedDense::pack(&[], 3, 0, &mut storage).unwrap();
        let mut y = [SENTINEL; 3];
        let err = Err(Error::LengthMismatch {
            arg: "x",
            expected: 0,
            got: 2,
        });
        let bias = Some(&[1.0, 2.0, 3.0][..]);
        assert_eq!(
            e.dense(&packed, bias, Activation::Identity, &[1.0, 2.0], &mut y),
            err
        );
        assert_eq!(
            e.dense_row_major(&[], 0, bias, Activation::Identity, &[1.0, 2.0], &mut y),
            err
        );
        assert_eq!(y, [SENTINEL; 3]);
        e.dense(&packed, bias, Activation::Identity, &[], &mut y)
            .unwrap();
        assert_eq!(y, [1.0, 2.0, 3.0]);
    }
}

#[test]
fn softmax_of_finite_input_is_never_nan() {
    for e in common::engines() {
        let mut y = [SENTINEL; 2];
        let (x, mask) = ([f32::MAX, 0.0], [f32::MAX, 0.0]);
        e.softmax(&x, 2, Some(&mask), &mut y).unwrap();
        assert_eq!(y, [1.0, 0.0], "{:?}", e.backend());
        e.log_softmax(&x, 2, Some(&mask), &mut y).unwrap();
        assert_eq!(y, [0.0, f32::NEG_INFINITY]);
        // Two entries overflow: they share the row.
        let x = [f32::MAX, 1.0, f32::MAX, -f32::MAX];
        let mut y = [SENTINEL; 4];
        e.softmax(&x, 4, Some(&[f32::MAX, 0.0, f32::MAX, -f32::MAX]), &mut y)
            .unwrap();
        assert_eq!(y, [0.5, 0.0, 0.5, 0.0]);
        // +inf inputs: the same rule; a NaN still poisons its row.
        e.softmax(&[f32::INFINITY, 3.0, 2.0, 1.0], 4, None, &mut y)
            .unwrap();
        assert_eq!(y, [1.0, 0.0, 0.0, 0.0]);
        e.softmax(&[f32::INFINITY, f32::NAN, 2.0, 1.0], 4, None, &mut y)
            .unwrap();
        assert!(y.iter().all(|v| v.is_nan()));
    }
}

/// The direct algorithm on a Winograd shape gives a sum's special values.
#[test]
fn direct_algorithm_keeps_infinities() {
    let shape = Conv2dShape::new(6, 6, 8, 4, 3, 3).with_padding(Padding::Same);
    let direct = shape.with_algorithm(ConvAlgorithm::Direct);
    assert!(shape.uses_winograd() && !direct.uses_winograd());
    let w = vec![0.5; shape.weights_len().unwrap()];
    let mut x = vec![1.0; shape.input_len().unwrap()];
    x[(2 * 6 + 2) * 8] = f32::INFINITY;
    for e in common::engines() {
        let mut storage = vec![0.0; direct.packed_weights_len()];
        let packed = PackedConv2d::pack(&direct, WeightLayout::Ohwi, &w, &mut storage).unwrap();
        let mut y = vec![0.0; shape.output_len().unwrap()];
        e.conv2d(&direct, &packed, None, Activation::Identity, &x, &mut y)
            .unwrap();
        for oy in 0..6usize {
            for ox in 0..6usize {
                let sees = oy.abs_diff(2) <= 1 && ox.abs_diff(2) <= 1;
                let v = y[(oy * 6 + ox) * 4];
                assert!(
                    if sees {
                        v == f32::INFINITY
                    } else {
                        v.is_finite()
                    },
                    "{:?} ({oy}, {ox}) = {v}",
                    e.backend()
                );
            }
        }
        // Weights packed for one algorithm are refused for the other.
        assert!(
            e.conv2d(&shape, &packed, None, Activation::Identity, &x, &mut y)
                .is_err()
        );
    }
}

/// Every entry point, called wrongly in every way it checks, with every output, scratch and
/// state slice full of a sentinel: an `Err`, and not one element changed.
#[test]
fn nothing_is_written_on_error() {
    fn untouched(s: &[f32]) -> bool {
        s.iter().all(|&v| v == SENTINEL)
    }
    for e in common::engines() {
        // conv1d_stream: its own checks, and those of the convolution it runs.
        let shape = Conv2dShape::conv1d(0, 2, 3, 3);
        let w = vec![1.0; shape.weights_len().unwrap()];
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &w, &mut storage).unwrap();
        let other = Conv2dShape::conv1d(0, 2, 3, 2);
        let mut other_storage = vec![0.0; other.packed_weights_len()];
        let w2 = vec![1.0; other.weights_len().unwrap()];
        let other_packed =
            PackedConv2d::pack(&other, WeightLayout::Ohwi, &w2, &mut other_storage).unwrap();
        let x = [1.0; 8];
        let good_bias = [0.0; 3];
        // (weights, bias, state, scratch, y and x lengths)
        type StreamCall<'a> = (
            &'a PackedConv2d<'a>,
            Option<&'a [f32]>,
            usize,
            usize,
            usize,
            usize,
        );
        let calls: [StreamCall; 7] = [
            (&packed, Some(&[0.0; 2]), 4, 12, 12, 8),  // bias length
            (&other_packed, None, 4, 12, 12, 8),       // weights of another kernel
            (&packed, Some(&good_bias), 3, 12, 12, 8), // state length
            (&packed, None, 4, 11, 12, 8),             // scratch length
            (&packed, None, 4, 12, 11, 8),             // y length
            (&packed, None, 4, 12, 12, 7),             // x not whole frames
            (&packed, None, 4, 12, 12, 0),             // y for 0 frames must be empty
        ];
        for (weights, bias, state_len, scratch_len, y_len, x_len) in calls {
            let mut state = vec![SENTINEL; state_len];
            let mut scratch = vec![SENTINEL; scratch_len];
            let mut y = vec![SENTINEL; y_len];
            let r = e.conv1d_stream(
                &shape,
                weights,
                bias,
                Activation::Relu,
                &mut state,
                &x[..x_len],
                &mut scratch,
                &mut y,
            );
            assert!(r.is_err(), "{:?}", e.backend());
            assert!(
                untouched(&state) && untouched(&scratch) && untouched(&y),
                "{r:?}"
            );
        }
        // conv2d.
        let shape = Conv2dShape::new(4, 4, 2, 3, 3, 3);
        let w = vec![1.0; shape.weights_len().unwrap()];
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let packed = PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, &mut storage).unwrap();
        let x = [1.0; 32];
        for (shape, bias, x_len, y_len) in [
            (shape, None, 31, 12),
            (shape, None, 32, 13),
            (shape, Some(&[0.0; 2][..]), 32, 12),
            (shape.with_stride(0, 1), None, 32, 12),
            (shape.with_groups(2), None, 32, 12),
            (shape.with_stride(1, usize::MAX), None, 32, 12),
        ] {
            let mut y = vec![SENTINEL; y_len];
            let r = e.conv2d(&shape, &packed, bias, Activation::Tanh, &x[..x_len], &mut y);
            assert!(r.is_err() && untouched(&y), "{shape:?}: {r:?}");
        }
        // Packing and conversion.
        let mut dst = vec![SENTINEL; shape.weights_len().unwrap()];
        let r = convert_weights(
            &shape,
            WeightLayout::Ohwi,
            &w[1..],
            WeightLayout::Hwio,
            &mut dst,
        );
        assert!(r.is_err() && untouched(&dst));
        let mut storage = vec![SENTINEL; shape.packed_weights_len()];
        let r = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &w[1..], &mut storage);
        assert!(r.is_err() && untouched(&storage));
        let mut storage = vec![SENTINEL; dense_packed_len(3, 2)];
        assert!(PackedDense::pack(&[1.0; 5], 3, 2, &mut storage).is_err());
        assert!(untouched(&storage));
        // Dense, softmax, activations.
        let mut dense_storage = vec![0.0; dense_packed_len(3, 2)];
        let layer = PackedDense::pack(&[1.0; 6], 3, 2, &mut dense_storage).unwrap();
        for (bias, x_len, y_len) in [(None, 3, 3), (None, 4, 5), (Some(&[0.0; 2][..]), 4, 6)] {
            let mut y = vec![SENTINEL; y_len];
            let r = e.dense(&layer, bias, Activation::Gelu, &[1.0; 4][..x_len], &mut y);
            assert!(r.is_err() && untouched(&y));
            let r = e.dense_row_major(
                &[1.0; 6],
                2,
                bias,
                Activation::Gelu,
                &[1.0; 4][..x_len],
                &mut y,
            );
            assert!(r.is_err() && untouched(&y));
        }
        for (cols, mask_len, y_len) in [(3, 3, 5), (4, 4, 6), (0, 3, 6), (3, 4, 6)] {
            let mask = vec![0.0; mask_len];
            let mut y = vec![SENTINEL; y_len];
            assert!(e.softmax(&[1.0; 6], cols, Some(&mask), &mut y).is_err());
            assert!(e.log_softmax(&[1.0; 6], cols, Some(&mask), &mut y).is_err());
            assert!(untouched(&y));
            if y_len == 6 {
                assert!(e.softmax_in_place(&mut y, cols, Some(&mask)).is_err());
                assert!(e.log_softmax_in_place(&mut y, cols, Some(&mask)).is_err());
                assert!(untouched(&y));
            }
        }
        let mut y = [SENTINEL; 3];
        assert!(e.activate(Activation::Exp, &[1.0; 4], &mut y).is_err());
        assert!(untouched(&y));
    }
}
