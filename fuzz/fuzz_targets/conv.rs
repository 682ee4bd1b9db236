//! Arbitrary convolution shapes, options, lengths and values: never panics, a shape or
//! length error is an `Err` (with nothing written), and the best backend agrees with scalar
//! within the summation bound. Dimensions are mostly small but can take any `usize` (huge
//! strides, paddings, dilations and channel counts on images of a few pixels are cheap and
//! are where overflow hides); values include infinities, NaN and subnormals.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{
    Activation, Backend, ConvAlgorithm, Conv2dShape, Engine, PackedConv2d, Padding,
    WeightLayout,
};

/// Reads dimensions: one selector byte, then a small value or 8 bytes of any `usize`.
struct Dims<'a>(&'a [u8]);
impl Dims<'_> {
    fn byte(&mut self) -> usize {
        let (b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *b as usize
    }
    fn dim(&mut self, small: usize) -> usize {
        match self.byte() % 16 {
            0 => {
                let mut v = 0usize;
                for _ in 0..8 {
                    v = v << 8 | self.byte();
                }
                v
            }
            1 => 1usize << (self.byte() % 64),
            2 => usize::MAX - self.byte() % 4,
            _ => self.byte() % small,
        }
    }
}

const ACTS: [Activation; 9] = [
    Activation::Identity,
    Activation::Relu,
    Activation::Relu6,
    Activation::LeakyRelu(0.1),
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Gelu,
    Activation::Silu,
    Activation::Exp,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 40 {
        return;
    }
    let (head, vals_bytes) = data.split_at(40);
    let mut d = Dims(head);
    let shape = Conv2dShape::new(d.dim(12), d.dim(20), d.dim(9), d.dim(40), d.dim(5), d.dim(5))
        .with_batch(d.dim(3))
        .with_stride(d.dim(4), d.dim(4))
        .with_dilation(d.dim(3), d.dim(3))
        .with_groups(d.dim(5));
    let padding = match d.byte() % 3 {
        0 => Padding::Valid,
        1 => Padding::Same,
        _ => Padding::Explicit { top: d.dim(4), bottom: d.dim(4), left: d.dim(4), right: d.dim(4) },
    };
    let algorithm = if d.byte() & 1 == 0 { ConvAlgorithm::Auto } else { ConvAlgorithm::Direct };
    let shape = shape.with_padding(padding).with_algorithm(algorithm);
    let layout = [WeightLayout::Ohwi, WeightLayout::Hwio, WeightLayout::Oihw][d.byte() % 3];
    let act = ACTS[d.byte() % ACTS.len()];
    let flags = d.byte();
    let special = d.byte() & 1 == 1;
    // Values within ±4, or, with `special`, some bytes stand for the edges of f32.
    let vals: Vec<f32> = vals_bytes
        .iter()
        .map(|&b| match b {
            250 if special => f32::INFINITY,
            251 if special => f32::NEG_INFINITY,
            252 if special => f32::NAN,
            253 if special => 1e-40,
            254 if special => f32::MAX,
            _ => b as f32 / 32.0 - 4.0,
        })
        .collect();
    let finite = !special || vals.iter().all(|v| v.is_finite() && v.abs() <= 4.0);
    let take = |n: usize, skip: usize| -> Vec<f32> {
        (0..n).map(|i| vals.get((skip + i) % vals.len().max(1)).copied().unwrap_or(0.25)).collect()
    };

    // Lengths: right most of the time, sometimes off by one to exercise the checks.
    let off = |len: usize, bit: usize| if flags >> bit & 1 == 1 { len + 1 } else { len };
    let Ok(w_len) = shape.weights_len() else {
        assert!(shape.output_hw().is_err() && shape.packed_weights_len() == 0 || shape.weights_len().is_err());
        return;
    };
    if w_len > 1 << 16 || shape.packed_weights_len() > 1 << 18 {
        return;
    }
    let w = take(off(w_len, 1), 0);
    let mut storage = vec![0.0; shape.packed_weights_len()];
    let Ok(packed) = PackedConv2d::pack(&shape, layout, &w, &mut storage) else {
        return;
    };
    let (Ok(x_len), Ok(y_len)) = (shape.input_len(), shape.output_len()) else { return };
    if x_len > 1 << 16 || y_len > 1 << 16 {
        return;
    }
    let x = take(off(x_len, 2), 5);
    let bias = (flags >> 3 & 1 == 1).then(|| take(off(shape.out_c, 4), 9));
    let sentinel = -1234.5;
    let (mut y, mut z) = (vec![sentinel; off(y_len, 5)], vec![0.0; off(y_len, 5)]);
    let best = Engine::new();
    let r = best.conv2d(&shape, &packed, bias.as_deref(), act, &x, &mut y);
    let valid = x.len() == x_len && y.len() == y_len && bias.as_ref().is_none_or(|b| b.len() == shape.out_c);
    assert_eq!(r.is_ok(), valid, "{shape:?}: {r:?}");
    if !valid {
        assert!(y.iter().all(|&v| v == sentinel), "written on error");
        return;
    }
    let scalar = Engine::with_backend(Backend::Scalar).unwrap();
    scalar.conv2d(&shape, &packed, bias.as_deref(), act, &x, &mut z).unwrap();
    let linear = matches!(act, Activation::Identity | Activation::Relu | Activation::Relu6 | Activation::LeakyRelu(_));
    if !(finite && linear) {
        return;
    }
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
});
