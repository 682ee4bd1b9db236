//! Convolutions: every backend against an f64 reference over random shapes, strides,
//! dilations, padding and groups; hand-computed SAME cases; layout conversions.
use crate::common;

use proptest::prelude::*;
use simdnn::{Activation, Conv2dShape, PackedConv2d, Padding, WeightLayout, convert_weights};

fn config() -> ProptestConfig {
    ProptestConfig {
        // One case per property under Miri: its conv tests took 3-5 minutes with two (random
        // shapes), most of CI's 30-minute budget for Miri.
        cases: if cfg!(miri) { 1 } else { 64 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// (before, after, out) of one axis, computed independently of the library.
fn axis(
    len: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad: Padding,
    first: bool,
) -> (usize, usize, usize) {
    let span = (k - 1) * dil + 1;
    let (b, a) = match pad {
        Padding::Valid => (0, 0),
        Padding::Same if len == 0 => return (0, 0, 0),
        Padding::Same => {
            let out = len.div_ceil(stride);
            let total = ((out - 1) * stride + span).saturating_sub(len);
            (total / 2, total - total / 2)
        }
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => {
            if first {
                (top, bottom)
            } else {
                (left, right)
            }
        }
    };
    let padded = len + b + a;
    (
        b,
        a,
        if padded >= span {
            (padded - span) / stride + 1
        } else {
            0
        },
    )
}

/// f64 reference: returns (value, sum |w x| + |b|) per output, NHWC; weights OIHW.
fn conv_ref(s: &Conv2dShape, w: &[f32], b: Option<&[f32]>, x: &[f32]) -> Vec<(f64, f64)> {
    let (top, _, oh) = axis(
        s.in_h,
        s.kernel_h,
        s.stride_h,
        s.dilation_h,
        s.padding,
        true,
    );
    let (left, _, ow) = axis(
        s.in_w,
        s.kernel_w,
        s.stride_w,
        s.dilation_w,
        s.padding,
        false,
    );
    let (cig, cog) = (s.in_c / s.groups, s.out_c / s.groups);
    let mut out = Vec::new();
    for n in 0..s.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..s.out_c {
                    let g = o / cog;
                    let bias = b.map_or(0.0, |b| b[o] as f64);
                    let (mut acc, mut mag) = (bias, bias.abs());
                    for c in 0..cig {
                        for ky in 0..s.kernel_h {
                            for kx in 0..s.kernel_w {
                                let iy =
                                    (oy * s.stride_h + ky * s.dilation_h) as isize - top as isize;
                                let ix =
                                    (ox * s.stride_w + kx * s.dilation_w) as isize - left as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= s.in_h as isize
                                    || ix >= s.in_w as isize
                                {
                                    continue;
                                }
                                let xi = x[((n * s.in_h + iy as usize) * s.in_w + ix as usize)
                                    * s.in_c
                                    + g * cig
                                    + c] as f64;
                                let wi =
                                    w[((o * cig + c) * s.kernel_h + ky) * s.kernel_w + kx] as f64;
                                acc += xi * wi;
                                mag += (xi * wi).abs();
                            }
                        }
                    }
                    out.push((acc, mag));
                }
            }
        }
    }
    if s.uses_winograd() {
        let mags = winograd_mags(s, w, x, (top, left));
        for ((_, mag), (m, o)) in out.iter_mut().zip(mags.iter().zip((0..s.out_c).cycle())) {
            *mag = b.map_or(0.0, |b| (b[o] as f64).abs()) + m;
        }
    }
    out
}

/// The magnitudes that bound the Winograd F(2x2, 3x3) rounding errors, NHWC like the
/// output (bias excluded): the algorithm run on absolute values, with the absolute values
/// of its transform matrices `B^T`, `G` and `A^T`.
fn winograd_mags(s: &Conv2dShape, w: &[f32], x: &[f32], (top, left): (usize, usize)) -> Vec<f64> {
    const BT: [[f64; 4]; 4] = [
        [1., 0., 1., 0.],
        [0., 1., 1., 0.],
        [0., 1., 1., 0.],
        [0., 1., 0., 1.],
    ];
    const G: [[f64; 3]; 4] = [[1., 0., 0.], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0., 0., 1.]];
    const AT: [[f64; 4]; 2] = [[1., 1., 1., 0.], [0., 1., 1., 1.]];
    let (oh, ow) = s.output_hw().unwrap();
    let (ci, co) = (s.in_c, s.out_c);
    // |U| per (output, input channel, position).
    let mut u = vec![0.0; co * ci * 16];
    for (oc, up) in u.chunks_exact_mut(16).enumerate() {
        let g = |t: usize| (w[oc * 9 + t] as f64).abs();
        for (p, up) in up.iter_mut().enumerate() {
            *up = (0..9)
                .map(|t| G[p / 4][t / 3] * G[p % 4][t % 3] * g(t))
                .sum();
        }
    }
    let mut mags = vec![0.0; s.batch * oh * ow * co];
    for n in 0..s.batch {
        for y0 in (0..oh).step_by(2) {
            for x0 in (0..ow).step_by(2) {
                for c in 0..ci {
                    let d = |r: usize, q: usize| {
                        let (iy, ix) = (
                            (y0 + r) as isize - top as isize,
                            (x0 + q) as isize - left as isize,
                        );
                        if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                            return 0.0;
                        }
                        let at = ((n * s.in_h + iy as usize) * s.in_w + ix as usize) * ci + c;
                        (x[at] as f64).abs()
                    };
                    let v: Vec<f64> = (0..16)
                        .map(|p| {
                            (0..16)
                                .map(|t| BT[p / 4][t / 4] * BT[p % 4][t % 4] * d(t / 4, t % 4))
                                .sum()
                        })
                        .collect();
                    for (oy, ox) in [(y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)] {
                        if oy >= oh || ox >= ow {
                            continue;
                        }
                        let (i, j) = (oy % 2, ox % 2);
                        for o in 0..co {
                            let up = &u[(o * ci + c) * 16..][..16];
                            let m: f64 = (0..16)
                                .map(|p| AT[i][p / 4] * AT[j][p % 4] * up[p] * v[p])
                                .sum();
                            mags[((n * oh + oy) * ow + ox) * co + o] += m;
                        }
                    }
                }
            }
        }
    }
    mags
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::Valid),
        Just(Padding::Same),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3).prop_map(|(top, bottom, left, right)| {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            }
        }),
    ]
}

/// Random valid shapes (including depthwise, grouped, pointwise and 1-D ones) with data.
fn case() -> impl Strategy<
    Value = (
        Conv2dShape,
        Vec<f32>,
        Option<Vec<f32>>,
        Vec<f32>,
        Activation,
    ),
> {
    let dims = (
        1usize..3,
        1usize..9,
        1usize..20,
        1usize..4,
        1usize..4,
        1usize..4,
        1usize..4,
    );
    let opts = (
        1usize..3,
        1usize..3,
        1usize..3,
        1usize..3,
        padding(),
        0usize..4,
        1usize..40,
        any::<bool>(),
    );
    (dims, opts)
        .prop_filter_map(
            "invalid shape",
            |((batch, h, w, kh, kw, gmul, cig), (sh, sw, dh, dw, pad, kind, cog, relu))| {
                // kind: 0 = general/grouped, 1 = depthwise (channel multiplier `cig`),
                // 2 = pointwise, 3 = 1-D.
                let groups = if kind == 1 { 8 + gmul } else { gmul };
                let (in_c, out_c) = if kind == 1 {
                    (groups, groups * cig)
                } else {
                    (groups * cig, groups * cog)
                };
                let mut s = Conv2dShape::new(h, w, in_c, out_c, kh, kw)
                    .with_batch(batch)
                    .with_stride(sh, sw)
                    .with_dilation(dh, dw)
                    .with_padding(pad)
                    .with_groups(groups);
                if kind == 2 {
                    s = Conv2dShape::new(h, w, cig, cog, 1, 1).with_batch(batch);
                }
                if kind == 3 {
                    s = Conv2dShape::conv1d(w, cig, cog, kw)
                        .with_batch(batch)
                        .with_stride(1, sw)
                        .with_dilation(1, dw)
                        .with_padding(pad);
                    if let Padding::Explicit { left, right, .. } = pad {
                        s = s.with_padding(Padding::Explicit {
                            top: 0,
                            bottom: 0,
                            left,
                            right,
                        });
                    }
                }
                s.output_len().ok()?;
                Some((
                    s,
                    if relu {
                        Activation::Relu
                    } else {
                        Activation::Identity
                    },
                ))
            },
        )
        .prop_flat_map(|(s, act)| {
            let v = || prop_oneof![9 => -1.0f32..1.0, 1 => -100.0f32..100.0];
            (
                Just(s),
                prop::collection::vec(v(), s.weights_len().unwrap()),
                prop::option::of(prop::collection::vec(v(), s.out_c)),
                prop::collection::vec(v(), s.input_len().unwrap()),
                Just(act),
            )
        })
}

fn check(
    s: &Conv2dShape,
    y: &[f32],
    want: &[(f64, f64)],
    act: Activation,
    k: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(y.len(), want.len());
    for (i, (&got, &(v, mag))) in y.iter().zip(want).enumerate() {
        let want = common::act_ref(act, v);
        // The sum's rounding (passed through activations whose slope is at most 1), plus
        // the activation's own error (at most 4 ulp).
        let tol =
            (k as f64 + 2.0) * 2f64.powi(-24) * mag + 4.0 * 2f64.powi(-23) * want.abs() + 1e-30;
        prop_assert!(
            (got as f64 - want).abs() <= tol,
            "{s:?}\noutput {i}: got {got} want {want} tol {tol:e}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matches_reference((s, w, b, x, act) in case()) {
        check_every_backend(&s, &w, b.as_deref(), &x, act)?;
    }

    #[test]
    fn every_layout_packs_the_same((s, w, _b, _x, _act) in case()) {
        let n = w.len();
        let mut ohwi = vec![0.0; n];
        let mut hwio = vec![0.0; n];
        let mut back = vec![0.0; n];
        convert_weights(&s, WeightLayout::Oihw, &w, WeightLayout::Ohwi, &mut ohwi).unwrap();
        convert_weights(&s, WeightLayout::Ohwi, &ohwi, WeightLayout::Hwio, &mut hwio).unwrap();
        convert_weights(&s, WeightLayout::Hwio, &hwio, WeightLayout::Oihw, &mut back).unwrap();
        prop_assert_eq!(&back, &w);
        let len = s.packed_weights_len();
        let (mut a, mut b, mut c) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        PackedConv2d::pack(&s, WeightLayout::Oihw, &w, &mut a).unwrap();
        PackedConv2d::pack(&s, WeightLayout::Ohwi, &ohwi, &mut b).unwrap();
        PackedConv2d::pack(&s, WeightLayout::Hwio, &hwio, &mut c).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
    }
}

/// Runs `s` on every backend and checks each against [`conv_ref`].
fn check_every_backend(
    s: &Conv2dShape,
    w: &[f32],
    b: Option<&[f32]>,
    x: &[f32],
    act: Activation,
) -> Result<(), TestCaseError> {
    let want = conv_ref(s, w, b, x);
    let mut storage = vec![f32::NAN; s.packed_weights_len()];
    let packed = PackedConv2d::pack(s, WeightLayout::Oihw, w, &mut storage).unwrap();
    // Winograd: `in_c` products per GEMM plus the transforms' additions (2 + 4) and the
    // weights' rounding; the magnitude is over the transforms (see `winograd_mag`).
    let k = if s.uses_winograd() {
        s.in_c + 8
    } else {
        s.kernel_h * s.kernel_w * s.in_c / s.groups
    };
    for e in common::engines() {
        let mut y = vec![f32::NAN; s.output_len().unwrap()];
        e.conv2d(s, &packed, b, act, x, &mut y).unwrap();
        check(s, &y, &want, act, k)
            .map_err(|err| TestCaseError::fail(format!("{:?}: {err}", e.backend())))?;
    }
    Ok(())
}

/// `s` with random weights, bias and input in [-1, 1).
fn with_data(s: Conv2dShape) -> impl Strategy<Value = (Conv2dShape, Vec<f32>, Vec<f32>, Vec<f32>)> {
    (
        Just(s),
        prop::collection::vec(-1.0f32..1.0, s.weights_len().unwrap()),
        prop::collection::vec(-1.0f32..1.0, s.out_c),
        prop::collection::vec(-1.0f32..1.0, s.input_len().unwrap()),
    )
}

/// Depthwise channel multipliers: mostly 1, sometimes up to 4.
fn multiplier() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(1usize), 1 => 2usize..5]
}

/// Depthwise shapes the small random cases miss: rows wider than one strip of the window
/// buffer, kernels up to 7x7, and dilations so large that the window does not fit it.
fn wide_depthwise() -> impl Strategy<Value = (Conv2dShape, Vec<f32>, Vec<f32>, Vec<f32>)> {
    // Miri is slow: narrower channels and kernels there, still wider than one strip.
    let (c, k) = if cfg!(miri) { (10, 4) } else { (40, 8) };
    (
        (1usize..6, 1usize..150, 2usize..c, multiplier()),
        (1usize..k, 1usize..k, 1usize..3, 1usize..3),
        (prop_oneof![3 => Just(1usize), 1 => 2usize..40], 1usize..40),
        padding(),
    )
        .prop_filter_map(
            "invalid shape",
            |((h, w, c, m), (kh, kw, sh, sw), (dh, dw), pad)| {
                let s = Conv2dShape::new(h, w, c, c * m, kh, kw)
                    .with_stride(sh, sw)
                    .with_dilation(dh, dw)
                    .with_padding(pad)
                    .with_groups(c);
                (s.output_len().ok()? > 0).then_some(s)
            },
        )
        .prop_flat_map(with_data)
}

/// Depthwise 3x3, stride 1 (its own block kernel, reading a zero row above and below the
/// image): any padding, several strips per row, partial channel vectors, batches.
fn depthwise_3x3() -> impl Strategy<Value = (Conv2dShape, Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (n, w, c) = if cfg!(miri) { (2, 50, 3) } else { (3, 130, 40) };
    (
        (1usize..n, 1usize..7, 1usize..w, 2usize..c, multiplier()),
        padding(),
    )
        .prop_filter_map("invalid shape", |((n, h, w, c, m), pad)| {
            let s = Conv2dShape::new(h, w, c, c * m, 3, 3)
                .with_padding(pad)
                .with_groups(c)
                .with_batch(n);
            (s.output_len().ok()? > 0).then_some(s)
        })
        .prop_flat_map(with_data)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 1 } else { 32 }, ..config() })]

    #[test]
    fn wide_and_dilated_depthwise_matches_reference((s, w, b, x) in wide_depthwise()) {
        check_every_backend(&s, &w, Some(&b), &x, Activation::Relu6)?;
    }

    #[test]
    fn depthwise_3x3_matches_reference((s, w, b, x) in depthwise_3x3()) {
        check_every_backend(&s, &w, Some(&b), &x, Activation::Identity)?;
    }
}

/// Few input channels (1-4, e.g. RGB first layers) and few outputs (1-20: one vector of
/// outputs takes the narrow tiles) on rows wide enough for every tile width and the short
/// row-end tile.
fn narrow_wide_rows() -> impl Strategy<Value = (Conv2dShape, Vec<f32>, Vec<f32>, Vec<f32>)> {
    let w = if cfg!(miri) { 20 } else { 70 };
    (
        (1usize..4, 1usize..w, 1usize..5, 1usize..21),
        (1usize..4, 1usize..4, 1usize..3),
        padding(),
    )
        .prop_filter_map(
            "invalid shape",
            |((h, w, in_c, out_c), (kh, kw, sw), pad)| {
                let s = Conv2dShape::new(h, w, in_c, out_c, kh, kw)
                    .with_stride(1, sw)
                    .with_padding(pad);
                (s.output_len().ok()? > 0).then_some(s)
            },
        )
        .prop_flat_map(with_data)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 1 } else { 32 }, ..config() })]

    #[test]
    fn narrow_wide_rows_match_reference((s, w, b, x) in narrow_wide_rows()) {
        check_every_backend(&s, &w, Some(&b), &x, Activation::Identity)?;
    }
}

/// One-channel 1-D signals (the mono path): long rows, kernels from 1 tap to wider than
/// the path's stack window, any output width.
fn mono_conv1d() -> impl Strategy<Value = (Conv2dShape, Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (len, out_c) = if cfg!(miri) { (80, 6) } else { (300, 40) };
    (1usize..3, 1usize..len, 1usize..70, 1usize..out_c, padding())
        .prop_filter_map("invalid shape", |(batch, len, k, out_c, pad)| {
            let pad = match pad {
                Padding::Explicit { left, right, .. } => Padding::Explicit {
                    top: 0,
                    bottom: 0,
                    left: left * k / 2,
                    right,
                },
                p => p,
            };
            let s = Conv2dShape::conv1d(len, 1, out_c, k)
                .with_batch(batch)
                .with_padding(pad);
            (s.output_len().ok()? > 0).then_some(s)
        })
        .prop_flat_map(with_data)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 1 } else { 32 }, ..config() })]

    #[test]
    fn mono_conv1d_matches_reference((s, w, b, x) in mono_conv1d()) {
        check_every_backend(&s, &w, Some(&b), &x, Activation::Tanh)?;
    }
}

/// 3x3 stride-1 layers with 8 to 64 input channels (the Winograd path): any padding,
/// image sizes odd and even (partial 2x2 tiles), output channels not a multiple of any
/// vector, batches, data up to 100 in magnitude.
fn winograd_shapes() -> impl Strategy<Value = (Conv2dShape, Vec<f32>, Vec<f32>, Vec<f32>)> {
    // Miri: small enough for its interpreter (each case runs on two backends).
    let (b, h, w, c, o) = if cfg!(miri) {
        (2, 4, 7, 10, 12)
    } else {
        (3, 12, 20, 65, 70)
    };
    (
        (1usize..b, 1usize..h, 1usize..w),
        (8usize..c, 1usize..o),
        padding(),
    )
        .prop_filter_map("invalid shape", |((batch, h, w), (in_c, out_c), pad)| {
            let s = Conv2dShape::new(h, w, in_c, out_c, 3, 3)
                .with_batch(batch)
                .with_padding(pad);
            (s.output_len().ok()? > 0).then_some(s)
        })
        .prop_flat_map(|s| {
            let v = || prop_oneof![9 => -1.0f32..1.0, 1 => -100.0f32..100.0];
            (
                Just(s),
                prop::collection::vec(v(), s.weights_len().unwrap()),
                prop::collection::vec(v(), s.out_c),
                prop::collection::vec(v(), s.input_len().unwrap()),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 1 } else { 32 }, ..config() })]

    #[test]
    fn winograd_matches_reference((s, w, b, x) in winograd_shapes()) {
        prop_assert!(s.uses_winograd());
        check_every_backend(&s, &w, Some(&b), &x, Activation::Relu6)?;
    }
}

#[test]
fn winograd_applies_to_3x3_stride_1_with_8_to_64_channels() {
    let s = Conv2dShape::new(16, 16, 16, 32, 3, 3);
    assert!(s.uses_winograd());
    assert!(s.with_padding(Padding::Same).with_batch(3).uses_winograd());
    assert!(Conv2dShape::new(4, 4, 8, 1, 3, 3).uses_winograd());
    assert!(Conv2dShape::new(4, 4, 64, 1, 3, 3).uses_winograd());
    assert!(!Conv2dShape::new(4, 4, 7, 1, 3, 3).uses_winograd());
    assert!(!Conv2dShape::new(4, 4, 65, 1, 3, 3).uses_winograd());
    assert!(!s.with_stride(1, 2).uses_winograd());
    assert!(!s.with_dilation(2, 1).uses_winograd());
    assert!(!s.with_groups(2).uses_winograd());
    assert!(!Conv2dShape::new(16, 16, 16, 32, 3, 5).uses_winograd());
    // 16 positions per (output, input) pair, outputs padded to panels of 32.
    assert_eq!(s.packed_weights_len(), 16 * 32 * 16);
}

/// Depthwise with channel multipliers (output channel `o` reads input channel `o / m`),
/// fixed shapes so that every run (Miri's too) takes the lane-spreading copy: 3x3 stride 1,
/// a general kernel, and a layer so wide that only the per-pixel path fits.
#[test]
fn depthwise_multipliers_match_reference() {
    let shapes = [
        Conv2dShape::new(5, 7, 3, 9, 3, 3).with_padding(Padding::Same),
        Conv2dShape::new(6, 9, 5, 10, 2, 3)
            .with_stride(2, 1)
            .with_padding(Padding::Same),
        Conv2dShape::new(3, 4, 2, 34, 3, 3)
            .with_dilation(1, 300)
            .with_padding(Padding::Same),
    ];
    for s in shapes {
        let s = s.with_groups(s.in_c);
        let (w, b, x) = fixed_data(&s);
        check_every_backend(&s, &w, Some(&b), &x, Activation::Identity).unwrap();
    }
}

/// Layers with 1 to 4 input channels copy the tap rows under a chunk of output pixels to
/// the stack: rows wider than one chunk, strides 1 to 3, a 7x7 stride-2 stem, and a left
/// padding wider than a whole chunk (whose copy holds no image column at all).
#[test]
#[cfg_attr(
    miri,
    ignore = "minutes under Miri; the properties cover the path there"
)]
fn few_channels_wide_rows_match_reference() {
    let shapes = [
        Conv2dShape::new(2, 20, 2, 5, 2, 3)
            .with_stride(1, 3)
            .with_padding(Padding::Explicit {
                top: 1,
                bottom: 0,
                left: 400,
                right: 3,
            }),
        Conv2dShape::new(3, 300, 3, 16, 3, 3).with_padding(Padding::Same),
        Conv2dShape::new(4, 301, 4, 40, 3, 3)
            .with_stride(1, 2)
            .with_padding(Padding::Same),
        Conv2dShape::new(9, 161, 3, 8, 7, 7)
            .with_stride(2, 2)
            .with_padding(Padding::Same),
        Conv2dShape::new(1, 250, 1, 3, 1, 5).with_stride(1, 2),
    ];
    for s in shapes {
        let (w, b, x) = fixed_data(&s);
        check_every_backend(&s, &w, Some(&b), &x, Activation::Relu).unwrap();
    }
}

/// Deterministic weights, bias and input in [-1, 1] for `s` (for the fixed-shape tests).
fn fixed_data(s: &Conv2dShape) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let data = |n: usize, k: usize| -> Vec<f32> {
        (0..n).map(|i| ((i * k) % 23) as f32 / 11.0 - 1.0).collect()
    };
    (
        data(s.weights_len().unwrap(), 7),
        data(s.out_c, 5),
        data(s.input_len().unwrap(), 13),
    )
}

/// One-channel layers (the mono path) with 8, 16 and 32 outputs, which take each
/// backend's stores of whole tiles (back-to-back one-vector pixels at 8 on AVX2 and 16 on
/// AVX-512), with and without bias, 1-D and 2-D, rows long enough for inner tiles.
#[test]
#[cfg_attr(
    miri,
    ignore = "minutes under Miri; the properties cover the path there"
)]
fn mono_whole_tiles_match_reference() {
    for out_c in [8, 16, 32] {
        let shapes = [
            Conv2dShape::conv1d(203, 1, out_c, 9).with_padding(Padding::Same),
            Conv2dShape::conv1d(150, 1, out_c, 5).with_batch(2),
            Conv2dShape::new(7, 90, 1, out_c, 3, 3).with_padding(Padding::Same),
        ];
        for s in shapes {
            let (w, b, x) = fixed_data(&s);
            check_every_backend(&s, &w, Some(&b), &x, Activation::Relu).unwrap();
            check_every_backend(&s, &w, None, &x, Activation::Identity).unwrap();
        }
    }
}

/// SAME with an odd total padding puts the extra row/column after (TensorFlow rule).
#[test]
fn same_padding_odd_total_goes_after() {
    // 4 wide, kernel 2, stride 1: total padding 1, all of it after.
    let s = Conv2dShape::new(1, 4, 1, 1, 1, 2).with_padding(Padding::Same);
    let x = [1.0, 2.0, 3.0, 4.0];
    let mut storage = vec![0.0; s.packed_weights_len()];
    let w = PackedConv2d::pack(&s, WeightLayout::Ohwi, &[1.0, 10.0], &mut storage).unwrap();
    // 5 wide, kernel 3, stride 2: out 3, total padding (3-1)*2+3-5 = 2: one before, one after.
    let s2 = Conv2dShape::new(1, 5, 1, 1, 1, 3)
        .with_stride(1, 2)
        .with_padding(Padding::Same);
    let mut storage2 = vec![0.0; s2.packed_weights_len()];
    let w2 =
        PackedConv2d::pack(&s2, WeightLayout::Ohwi, &[1.0, 10.0, 100.0], &mut storage2).unwrap();
    // 6 wide, kernel 4, stride 3: out 2, total (2-1)*3+4-6 = 1: zero before, one after.
    let s3 = Conv2dShape::new(1, 6, 1, 1, 1, 4)
        .with_stride(1, 3)
        .with_padding(Padding::Same);
    let mut storage3 = vec![0.0; s3.packed_weights_len()];
    let w3 = PackedConv2d::pack(
        &s3,
        WeightLayout::Ohwi,
        &[1.0, 10.0, 100.0, 1000.0],
        &mut storage3,
    )
    .unwrap();
    for e in common::engines() {
        let mut y = [0.0; 4];
        e.conv2d(&s, &w, None, Activation::Identity, &x, &mut y)
            .unwrap();
        assert_eq!(y, [21.0, 32.0, 43.0, 4.0], "{:?}", e.backend());
        let mut y2 = [0.0; 3];
        e.conv2d(
            &s2,
            &w2,
            None,
            Activation::Identity,
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &mut y2,
        )
        .unwrap();
        // Padded input [0 1 2 3 4 5 0]: windows at 0, 2, 4.
        assert_eq!(
            y2,
            [10.0 + 200.0, 2.0 + 30.0 + 400.0, 4.0 + 50.0],
            "{:?}",
            e.backend()
        );
        let mut y3 = [0.0; 2];
        e.conv2d(
            &s3,
            &w3,
            None,
            Activation::Identity,
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &mut y3,
        )
        .unwrap();
        // Padded input [1 2 3 4 5 6 0]: windows at 0 and 3.
        assert_eq!(
            y3,
            [1.0 + 20.0 + 300.0 + 4000.0, 4.0 + 50.0 + 600.0],
            "{:?}",
            e.backend()
        );
    }
}

proptest! {
    #![proptest_config(config())]

    /// Feeding a stream in random chunks (whole strides) gives bit for bit the offline
    /// causal conv1d with the same stride.
    #[test]
    fn streaming_equals_offline(
        in_c in 1usize..5, out_c in 1usize..20, k in 1usize..6, dil in 1usize..3, groups_one in any::<bool>(),
        chunks in prop::collection::vec(0usize..9, 1..8), stride in 1usize..4, seed in any::<u32>(),
    ) {
        let groups = if groups_one { 1 } else { in_c };
        let out_c = if groups_one { out_c } else { in_c * (1 + out_c % 3) };
        let chunks: Vec<usize> = chunks.iter().map(|n| n * stride).collect();
        let frames: usize = chunks.iter().sum();
        let hist = (k - 1) * dil;
        let offline = Conv2dShape::conv1d(frames, in_c, out_c, k)
            .with_dilation(1, dil)
            .with_stride(1, stride)
            .with_groups(groups)
            .with_padding(Padding::Explicit { top: 0, bottom: 0, left: hist, right: 0 });
        let val = |i: usize| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5;
        let w: Vec<f32> = (0..offline.weights_len().unwrap()).map(val).collect();
        let x: Vec<f32> = (0..frames * in_c).map(|i| val(i + 7777)).collect();
        let b: Vec<f32> = (0..out_c).map(|i| val(i + 99)).collect();
        let mut storage = vec![0.0; offline.packed_weights_len()];
        let packed = PackedConv2d::pack(&offline, WeightLayout::Ohwi, &w, &mut storage).unwrap();
        for e in common::engines() {
            let mut want = vec![0.0; frames / stride * out_c];
            if frames > 0 {
                e.conv2d(&offline, &packed, Some(&b), Activation::Tanh, &x, &mut want).unwrap();
            }
            let mut state = vec![0.0; offline.stream_state_len()];
            let mut got = Vec::new();
            let mut at = 0;
            for &n in &chunks {
                let mut scratch = vec![0.0; offline.stream_scratch_len(n)];
                let mut y = vec![0.0; offline.stream_outputs(n) * out_c];
                e.conv1d_stream(&offline, &packed, Some(&b), Activation::Tanh, &mut state, &x[at * in_c..(at + n) * in_c], &mut scratch, &mut y).unwrap();
                got.extend_from_slice(&y);
                at += n;
            }
            prop_assert_eq!(&got, &want, "{:?}", e.backend());
        }
    }
}

#[test]
fn fixed_size_matches_runtime() {
    use simdnn::{Conv2d, pack_conv2d};
    const W: [[[[f32; 3]; 3]; 3]; 5] = {
        let mut w = [[[[0.0; 3]; 3]; 3]; 5];
        let mut i = 0;
        while i < 135 {
            w[i / 27][(i / 9) % 3][(i / 3) % 3][i % 3] = ((i * 37) % 17) as f32 / 8.0 - 1.0;
            i += 1;
        }
        w
    };
    const P: usize = Conv2d::<3, 5, 3, 3, 0>::PACKED_LEN;
    static PACKED: [f32; P] = pack_conv2d(&W);
    static B: [f32; 5] = [0.1, -0.2, 0.3, 0.0, 1.0];
    let conv = Conv2d::<3, 5, 3, 3, P>::new(&PACKED, Some(&B), Activation::Relu);
    let x: [[[f32; 3]; 7]; 6] = core::array::from_fn(|r| {
        core::array::from_fn(|c| {
            core::array::from_fn(|ch| ((r * 7 + c) * 3 + ch) as f32 * 0.05 - 1.0)
        })
    });
    let flat_w: Vec<f32> = W.as_flattened().as_flattened().as_flattened().to_vec();
    for e in common::engines() {
        for (pad, oh, ow) in [(Padding::Same, 6, 7), (Padding::Valid, 4, 5)] {
            let shape = Conv2dShape::new(6, 7, 3, 5, 3, 3).with_padding(pad);
            let mut storage = vec![0.0; shape.packed_weights_len()];
            let packed =
                PackedConv2d::pack(&shape, WeightLayout::Ohwi, &flat_w, &mut storage).unwrap();
            assert_eq!(packed.as_slice(), &PACKED[..]);
            let mut want = vec![0.0; oh * ow * 5];
            e.conv2d(
                &shape,
                &packed,
                Some(&B),
                Activation::Relu,
                x.as_flattened().as_flattened(),
                &mut want,
            )
            .unwrap();
            if pad == Padding::Same {
                let mut y = [[[0.0; 5]; 7]; 6];
                conv.forward_same(&e, &x, &mut y);
                assert_eq!(y.as_flattened().as_flattened(), &want[..]);
            } else {
                let mut y = [[[0.0; 5]; 5]; 4];
                conv.forward_valid(&e, &x, &mut y);
                assert_eq!(y.as_flattened().as_flattened(), &want[..]);
            }
        }
    }
}

/// The Winograd layout packed at compile time (`pack_conv2d`) equals the runtime packing,
/// and the fixed-size layer gives the runtime call's outputs.
#[test]
fn fixed_size_winograd_matches_runtime() {
    use simdnn::{Conv2d, pack_conv2d};
    const W: [[[[f32; 8]; 3]; 3]; 5] = {
        let mut w = [[[[0.0; 8]; 3]; 3]; 5];
        let mut i = 0;
        while i < 360 {
            w[i / 72][(i / 24) % 3][(i / 8) % 3][i % 8] = ((i * 37) % 23) as f32 / 11.0 - 1.0;
            i += 1;
        }
        w
    };
    const P: usize = Conv2d::<8, 5, 3, 3, 0>::PACKED_LEN;
    static PACKED: [f32; P] = pack_conv2d(&W);
    let conv = Conv2d::<8, 5, 3, 3, P>::new(&PACKED, None, Activation::Identity);
    let x: [[[f32; 8]; 5]; 7] = core::array::from_fn(|r| {
        core::array::from_fn(|c| {
            core::array::from_fn(|ch| ((r * 5 + c) * 8 + ch) as f32 * 0.01 - 1.0)
        })
    });
    let flat_w: Vec<f32> = W.as_flattened().as_flattened().as_flattened().to_vec();
    let shape = Conv2dShape::new(7, 5, 8, 5, 3, 3).with_padding(Padding::Same);
    assert!(shape.uses_winograd());
    let mut storage = vec![0.0; shape.packed_weights_len()];
    let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &flat_w, &mut storage).unwrap();
    assert_eq!(packed.as_slice(), &PACKED[..]);
    for e in common::engines() {
        let mut want = vec![0.0; 7 * 5 * 5];
        let xf = x.as_flattened().as_flattened();
        e.conv2d(&shape, &packed, None, Activation::Identity, xf, &mut want)
            .unwrap();
        let mut y = [[[0.0; 5]; 5]; 7];
        conv.forward_same(&e, &x, &mut y);
        assert_eq!(y.as_flattened().as_flattened(), &want[..]);
    }
}

/// `Conv2dShape::path` names the kernel each kind of shape runs on.
#[test]
fn path_of_each_kind_of_shape() {
    use simdnn::{ConvAlgorithm, ConvPath};
    let cases = [
        (Conv2dShape::new(8, 8, 32, 64, 1, 1), ConvPath::Pointwise),
        (
            Conv2dShape::new(8, 8, 32, 32, 3, 3).with_groups(32),
            ConvPath::Depthwise,
        ),
        (Conv2dShape::new(8, 8, 16, 32, 3, 3), ConvPath::Winograd),
        (
            Conv2dShape::new(8, 8, 16, 32, 3, 3).with_algorithm(ConvAlgorithm::Direct),
            ConvPath::ImplicitGemm,
        ),
        (Conv2dShape::conv1d(100, 1, 8, 9), ConvPath::OneChannel),
        (Conv2dShape::new(32, 32, 3, 16, 3, 3), ConvPath::FewChannels),
        (
            Conv2dShape::new(16, 16, 1, 8, 3, 3).with_stride(2, 2),
            ConvPath::FewChannels,
        ),
        (
            Conv2dShape::new(8, 8, 128, 32, 3, 3),
            ConvPath::ImplicitGemm,
        ),
    ];
    for (shape, path) in cases {
        assert_eq!(shape.path(), Ok(path), "{shape:?}");
    }
    assert!(
        Conv2dShape::new(8, 8, 3, 4, 3, 3)
            .with_groups(2)
            .path()
            .is_err()
    );
}

/// The fixed-size stream equals the runtime-shaped one frame by frame (same backend, same
/// kernel path): one-channel and multi-channel, several kernel widths, with bias and ReLU.
#[test]
fn fixed_stream_equals_runtime_stream() {
    use simdnn::{Conv1dStream, pack_conv2d};
    fn check<const CI: usize, const CO: usize, const K: usize, const P: usize>(
        w: &'static [[[[f32; CI]; K]; 1]; CO],
        packed: &'static [f32; P],
    ) {
        let bias = [0.25; CO];
        let fixed = Conv1dStream::<CI, CO, K, P>::new(packed, Some(&bias), Activation::Relu);
        let shape = Conv2dShape::conv1d(0, CI, CO, K);
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let flat: Vec<f32> = w.iter().flatten().flatten().flatten().copied().collect();
        let runtime = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &flat, &mut storage).unwrap();
        for nn in common::engines() {
            // Stride 2: `step` on even frames and `push` on odd ones equals the runtime
            // stream fed two frames at a time.
            let strided = shape.with_stride(1, 2);
            let mut window = [[0.0f32; CI]; K];
            let mut state = vec![0.0; shape.stream_state_len()];
            let mut scratch = vec![0.0; shape.stream_scratch_len(2)];
            let frame = |t: usize| -> [f32; CI] {
                core::array::from_fn(|c| ((t * 5 + c * 3) % 13) as f32 - 6.0)
            };
            for t in (0..20).step_by(2) {
                let (mut a, mut b) = ([0.0; CO], [0.0; CO]);
                fixed.step(&nn, &mut window, &frame(t), &mut a);
                fixed.push(&mut window, &frame(t + 1));
                let pair = [frame(t), frame(t + 1)];
                nn.conv1d_stream(
                    &strided,
                    &runtime,
                    Some(&bias[..]),
                    Activation::Relu,
                    &mut state,
                    pair.as_flattened(),
                    &mut scratch,
                    &mut b,
                )
                .unwrap();
                assert_eq!(a, b, "{:?} stride 2 CI {CI} K {K} frame {t}", nn.backend());
            }
            let mut window = [[0.0f32; CI]; K];
            let mut state = vec![0.0; shape.stream_state_len()];
            let mut scratch = vec![0.0; shape.stream_scratch_len(1)];
            for t in 0..20 {
                let frame: [f32; CI] =
                    core::array::from_fn(|c| ((t * 7 + c * 3) % 11) as f32 - 5.0);
                let (mut a, mut b) = ([0.0; CO], [0.0; CO]);
                fixed.step(&nn, &mut window, &frame, &mut a);
                nn.conv1d_stream(
                    &shape,
                    &runtime,
                    Some(&bias[..]),
                    Activation::Relu,
                    &mut state,
                    &frame,
                    &mut scratch,
                    &mut b,
                )
                .unwrap();
                assert_eq!(a, b, "{:?} CI {CI} K {K} frame {t}", nn.backend());
            }
        }
    }
    const W1: [[[[f32; 1]; 5]; 1]; 4] = [[[[0.5], [-1.0], [0.25], [2.0], [1.0]]]; 4];
    static P1: [f32; Conv1dStream::<1, 4, 5, 0>::PACKED_LEN] = pack_conv2d(&W1);
    check(&W1, &P1);
    const W3: [[[[f32; 3]; 3]; 1]; 2] =
        [[[[0.5, -0.5, 1.0], [1.0, 0.0, -1.0], [0.25, 0.5, 0.75]]]; 2];
    static P3: [f32; Conv1dStream::<3, 2, 3, 0>::PACKED_LEN] = pack_conv2d(&W3);
    check(&W3, &P3);
}
