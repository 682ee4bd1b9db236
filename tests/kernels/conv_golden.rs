//! Convolutions against golden outputs computed by ONNX Runtime
//! (`tests/golden/make_conv_golden.py`; inputs/outputs converted NCHW -> NHWC there,
//! weights kept in ONNX's OIHW order).
use crate::common;

#[path = "../golden/conv_golden.rs"]
mod golden;

use golden::*;
use simdnn::{Activation, Conv2dShape, PackedConv2d, Padding, WeightLayout};

fn check(shape: Conv2dShape, act: Activation, w: &[f32], b: &[f32], x: &[f32], want: &[f32]) {
    let mut storage = vec![0.0; shape.packed_weights_len()];
    let packed = PackedConv2d::pack(&shape, WeightLayout::Oihw, w, &mut storage).unwrap();
    assert_eq!(shape.output_len().unwrap(), want.len(), "{shape:?}");
    for e in common::engines() {
        let mut y = vec![f32::NAN; want.len()];
        e.conv2d(&shape, &packed, Some(b), act, x, &mut y).unwrap();
        // Inputs are standard normal: ORT and simdnn differ by rounding only, which grows
        // with the taps per output (27 at most but in the Winograd case, 144).
        let k = shape.kernel_h * shape.kernel_w * shape.in_c / shape.groups;
        let tol = 1e-5 * (k as f32 / 27.0).max(1.0);
        for (i, (&got, &w)) in y.iter().zip(want).enumerate() {
            assert!(
                (got - w).abs() <= tol * (1.0 + w.abs()),
                "{:?} {shape:?} [{i}]: {got} vs ORT {w}",
                e.backend()
            );
        }
    }
}

#[test]
fn strided_dilated_explicit_padding() {
    let shape = Conv2dShape::new(5, 6, 3, 4, 3, 3)
        .with_stride(2, 1)
        .with_dilation(1, 2)
        .with_padding(Padding::Explicit {
            top: 1,
            left: 2,
            bottom: 0,
            right: 1,
        });
    check(
        shape,
        Activation::Identity,
        STRIDED_DILATED_W,
        STRIDED_DILATED_B,
        STRIDED_DILATED_X,
        STRIDED_DILATED_Y,
    );
}

#[test]
fn grouped_same_upper() {
    let shape = Conv2dShape::new(5, 5, 4, 6, 2, 3)
        .with_batch(2)
        .with_groups(2)
        .with_stride(2, 2)
        .with_padding(Padding::Same);
    check(
        shape,
        Activation::Identity,
        GROUPED_SAME_W,
        GROUPED_SAME_B,
        GROUPED_SAME_X,
        GROUPED_SAME_Y,
    );
}

#[test]
fn depthwise_with_relu() {
    let shape = Conv2dShape::new(4, 5, 3, 3, 3, 3)
        .with_groups(3)
        .with_padding(Padding::Explicit {
            top: 1,
            left: 1,
            bottom: 1,
            right: 1,
        });
    check(
        shape,
        Activation::Relu,
        DEPTHWISE_RELU_W,
        DEPTHWISE_RELU_B,
        DEPTHWISE_RELU_X,
        DEPTHWISE_RELU_Y,
    );
}

#[test]
fn conv1d_causal_dilated() {
    let shape = Conv2dShape::conv1d(10, 2, 3, 4)
        .with_dilation(1, 2)
        .with_padding(Padding::Explicit {
            top: 0,
            bottom: 0,
            left: 6,
            right: 0,
        });
    check(
        shape,
        Activation::Identity,
        CONV1D_CAUSAL_W,
        CONV1D_CAUSAL_B,
        CONV1D_CAUSAL_X,
        CONV1D_CAUSAL_Y,
    );
}

#[test]
fn winograd_same_with_relu() {
    let shape = Conv2dShape::new(3, 5, 9, 6, 3, 3).with_padding(Padding::Same);
    assert!(shape.uses_winograd());
    check(
        shape,
        Activation::Relu,
        WINOGRAD_SAME_W,
        WINOGRAD_SAME_B,
        WINOGRAD_SAME_X,
        WINOGRAD_SAME_Y,
    );
}

/// Channel multiplier 2: output channel `o` reads input channel `o / 2` (ONNX `group` = input
/// channels, TFLite `depth_multiplier`).
#[test]
fn depthwise_multiplier_same() {
    let shape = Conv2dShape::new(4, 5, 3, 6, 3, 3)
        .with_groups(3)
        .with_padding(Padding::Same);
    check(
        shape,
        Activation::Identity,
        DEPTHWISE_MULTIPLIER_W,
        DEPTHWISE_MULTIPLIER_B,
        DEPTHWISE_MULTIPLIER_X,
        DEPTHWISE_MULTIPLIER_Y,
    );
}
