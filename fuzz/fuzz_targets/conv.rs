//! Arbitrary convolution shapes, options and lengths: never panics, a shape or length error
//! is an `Err`, and the best backend agrees with scalar within the summation bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{Activation, Backend, Conv2dShape, Engine, PackedConv2d, Padding, WeightLayout};

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let d = |i: usize| data[i] as usize;
    let padding = match d(12) % 3 {
        0 => Padding::Valid,
        1 => Padding::Same,
        _ => Padding::Explicit { top: d(13) % 4, bottom: d(13) / 4 % 4, left: d(13) / 16 % 4, right: d(13) / 64 },
    };
    let shape = Conv2dShape::new(d(0) % 12, d(1) % 20, d(2) % 9, d(3) % 40, d(4) % 5, d(5) % 5)
        .with_batch(d(6) % 3)
        .with_stride(d(7) % 4, d(8) % 4)
        .with_dilation(d(9) % 3, d(10) % 3)
        .with_groups(d(11) % 5)
        .with_padding(padding);
    let layout = [WeightLayout::Ohwi, WeightLayout::Hwio, WeightLayout::Oihw][d(14) % 3];
    let act = if d(15) & 1 == 0 { Activation::Identity } else { Activation::Relu };
    let vals: Vec<f32> = data[16..].iter().map(|&b| b as f32 / 32.0 - 4.0).collect();
    let take = |n: usize, skip: usize| -> Vec<f32> { (0..n).map(|i| vals.get((skip + i) % vals.len().max(1)).copied().unwrap_or(0.25)).collect() };

    // Lengths: right most of the time, sometimes off by one to exercise the checks.
    let off = |len: usize, bit: usize| if data[15] >> bit & 1 == 1 { len + 1 } else { len };
    let w_len = shape.weights_len().unwrap_or(0).min(1 << 16);
    let w = take(off(w_len, 1), 0);
    let mut storage = vec![0.0; shape.packed_weights_len().min(1 << 18)];
    let Ok(packed) = PackedConv2d::pack(&shape, layout, &w, &mut storage) else {
        return;
    };
    let (Ok(x_len), Ok(y_len)) = (shape.input_len(), shape.output_len()) else { return };
    if x_len > 1 << 16 || y_len > 1 << 16 {
        return;
    }
    let x = take(off(x_len, 2), 5);
    let bias = (data[15] >> 3 & 1 == 1).then(|| take(off(shape.out_c, 4), 9));
    let (mut y, mut z) = (vec![0.0; off(y_len, 5)], vec![0.0; off(y_len, 5)]);
    let best = Engine::new();
    let r = best.conv2d(&shape, &packed, bias.as_deref(), act, &x, &mut y);
    let valid = x.len() == x_len && y.len() == y_len && bias.as_ref().is_none_or(|b| b.len() == shape.out_c);
    assert_eq!(r.is_ok(), valid, "{shape:?}: {r:?}");
    if valid {
        let scalar = Engine::with_backend(Backend::Scalar).unwrap();
        scalar.conv2d(&shape, &packed, bias.as_deref(), act, &x, &mut z).unwrap();
        // |x|, |w|, |b| <= 4: sum |w x| <= 16 K + 4 per output. Winograd (K = in_c + 8
        // roundings): the transformed input is at most 16 in magnitude, the transformed
        // kernel 9, and an output adds 9 positions, so the magnitude is 1296 in_c + 4.
        let (k, mag) = if shape.uses_winograd() {
            let k = shape.in_c as f32 + 8.0;
            (k, 1296.0 * shape.in_c as f32 + 4.0)
        } else {
            let k = (shape.kernel_h * shape.kernel_w * shape.in_c / shape.groups.max(1)) as f32;
            (k, 16.0 * k + 4.0)
        };
        let tol = 2.0 * (k + 2.0) * 6e-8 * mag + 1e-6;
        for (a, b) in y.iter().zip(&z) {
            assert!((a - b).abs() <= tol, "{shape:?}: {a} vs {b}");
        }
    }
});
