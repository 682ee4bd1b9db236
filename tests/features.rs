//! Builds that leave convolution paths out (`--no-default-features --features conv-...`):
//! every path whose feature is on computes the right result, every other one is refused
//! with `Error::FeatureDisabled` naming its feature (and writes nothing), and the
//! fixed-size `Conv2d` runs whatever the features say. Runs under any feature set; CI runs
//! it with two complementary ones, so each path is seen both on and off.
use simdnn::{
    Activation, Conv2d, Conv2dShape, ConvAlgorithm, ConvPath, Engine, Error, PackedConv2d, Padding,
    WeightLayout, pack_conv2d,
};

/// One shape per path, small enough for a naive reference.
fn shapes() -> [(Conv2dShape, ConvPath); 6] {
    let same = Padding::Same;
    [
        (Conv2dShape::new(5, 6, 8, 4, 1, 1), ConvPath::Pointwise),
        (
            Conv2dShape::new(5, 6, 8, 8, 3, 3)
                .with_groups(8)
                .with_padding(same),
            ConvPath::Depthwise,
        ),
        (
            Conv2dShape::new(6, 7, 8, 4, 3, 3).with_padding(same),
            ConvPath::Winograd,
        ),
        (
            Conv2dShape::conv1d(40, 1, 4, 5).with_padding(same),
            ConvPath::OneChannel,
        ),
        (
            Conv2dShape::new(6, 7, 3, 4, 3, 3).with_padding(same),
            ConvPath::FewChannels,
        ),
        (
            Conv2dShape::new(6, 7, 8, 4, 3, 3)
                .with_padding(same)
                .with_algorithm(ConvAlgorithm::Direct),
            ConvPath::ImplicitGemm,
        ),
    ]
}

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// The convolution of NHWC `x` with OHWI `w` (SAME padding or none, stride 1), in f64.
fn reference(s: &Conv2dShape, w: &[f32], x: &[f32]) -> Vec<f64> {
    let (oh, ow) = s.output_hw().unwrap();
    let (pt, pl) = if s.padding == Padding::Same {
        ((s.kernel_h - 1) / 2, (s.kernel_w - 1) / 2)
    } else {
        (0, 0)
    };
    let cig = s.in_c / s.groups;
    let cog = s.out_c / s.groups;
    let mut y = vec![0.0; oh * ow * s.out_c];
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..s.out_c {
                let g = o / cog;
                let mut acc = 0.0;
                for ky in 0..s.kernel_h {
                    for kx in 0..s.kernel_w {
                        let (iy, ix) = (
                            (oy + ky) as isize - pt as isize,
                            (ox + kx) as isize - pl as isize,
                        );
                        if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                            continue;
                        }
                        for c in 0..cig {
                            let xv = x[(iy as usize * s.in_w + ix as usize) * s.in_c + g * cig + c];
                            let wv = w[((o * s.kernel_h + ky) * s.kernel_w + kx) * cig + c];
                            acc += f64::from(xv) * f64::from(wv);
                        }
                    }
                }
                y[(oy * ow + ox) * s.out_c + o] = acc;
            }
        }
    }
    y
}

#[test]
fn each_path_runs_or_is_refused_by_its_feature() {
    let nn = Engine::new();
    for (shape, path) in shapes() {
        assert_eq!(shape.path(), Ok(path));
        let w = data(shape.weights_len().unwrap(), 1);
        let x = data(shape.input_len().unwrap(), 2);
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &w, &mut storage).unwrap();
        let mut y = vec![f32::NAN; shape.output_len().unwrap()];
        let r = nn.conv2d(&shape, &packed, None, Activation::Identity, &x, &mut y);
        if path.is_compiled() {
            r.unwrap();
            for (got, want) in y.iter().zip(reference(&shape, &w, &x)) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-4,
                    "{path:?}: {got} vs {want}"
                );
            }
        } else {
            let feature = path.feature();
            assert_eq!(r, Err(Error::FeatureDisabled { feature }), "{path:?}");
            assert!(y.iter().all(|v| v.is_nan()), "{path:?} wrote on error");
        }
    }
}

#[test]
fn stream_is_refused_without_its_path() {
    let nn = Engine::new();
    let shape = Conv2dShape::conv1d(0, 1, 2, 3);
    let mut storage = vec![0.0; shape.packed_weights_len()];
    let w = [1.0, 2.0, 3.0, 0.0, 0.0, 1.0];
    let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &w, &mut storage).unwrap();
    let (mut state, mut scratch, mut y) = ([0.0; 2], [0.0; 3], [f32::NAN; 2]);
    let act = Activation::Identity;
    let r = nn.conv1d_stream(
        &shape,
        &packed,
        None,
        act,
        &mut state,
        &[1.0],
        &mut scratch,
        &mut y,
    );
    if ConvPath::OneChannel.is_compiled() {
        r.unwrap();
        assert_eq!(y, [3.0, 1.0]);
    } else {
        let feature = "conv-one-channel";
        assert_eq!(r, Err(Error::FeatureDisabled { feature }));
    }
}

#[test]
fn fixed_size_layers_need_no_feature() {
    const W: [[[[f32; 3]; 3]; 3]; 2] = [[[[0.5; 3]; 3]; 3]; 2];
    static PACKED: [f32; Conv2d::<3, 2, 3, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
    let conv = Conv2d::<3, 2, 3, 3, _>::new(&PACKED, None, Activation::Identity);
    assert_eq!(Conv2d::<3, 2, 3, 3, 0>::PATH, ConvPath::FewChannels);
    let mut y = [[[0.0f32; 2]; 4]; 4];
    conv.forward_same(&Engine::new(), &[[[1.0f32; 3]; 4]; 4], &mut y);
    // An inner pixel sees 27 taps of 0.5, a corner 12.
    assert_eq!(y[1][1], [13.5; 2]);
    assert_eq!(y[0][0], [6.0; 2]);
}

/// The fixed-size layer's compile-time path is the one its runtime shape takes.
#[test]
fn fixed_size_path_matches_the_shape() {
    fn check<const CI: usize, const CO: usize, const KH: usize, const KW: usize>() {
        for padding in [Padding::Same, Padding::Valid] {
            let shape = Conv2dShape::new(9, 10, CI, CO, KH, KW).with_padding(padding);
            assert_eq!(
                shape.path(),
                Ok(Conv2d::<CI, CO, KH, KW, 0>::PATH),
                "{CI} {CO} {KH} {KW}"
            );
        }
    }
    check::<8, 16, 1, 1>();
    check::<16, 32, 3, 3>();
    check::<64, 8, 3, 3>();
    check::<65, 8, 3, 3>();
    check::<1, 8, 1, 9>();
    check::<1, 8, 3, 3>();
    check::<3, 16, 3, 3>();
    check::<4, 4, 5, 5>();
    check::<5, 4, 3, 3>();
    check::<2, 4, 9, 9>();
}
