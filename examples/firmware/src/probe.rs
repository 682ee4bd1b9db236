//! Size probes (`bash .ci/size --families`): each cargo feature `probe-*` adds one more kernel
//! to the firmware, so the growth of simdnn's flash share is what that kernel costs a
//! firmware that already runs the model. Each probe also checks its result.

#[allow(unused_imports)]
use cortex_m_semihosting::hprintln;
#[allow(unused_imports)]
use simdnn::{Activation, Conv2dShape, ConvAlgorithm, Engine, PackedConv2d, Padding, WeightLayout};

/// Runs the probes compiled in; false if one computed a wrong value.
pub fn run(nn: &Engine) -> bool {
    #[allow(unused_mut)]
    let mut ok = true;
    let _ = nn;
    #[allow(dead_code)]
    const SAME: Padding = Padding::Same;
    // A 4x4 image of ones through a layer of ones: the centre pixel (1, 1) is the number
    // of taps it sees.
    macro_rules! conv_probe {
        ($feature:literal, $shape:expr, $weights:literal, $taps:literal) => {
            #[cfg(feature = $feature)]
            {
                const SHAPE: Conv2dShape = $shape;
                static W: [f32; $weights] = [1.0; $weights];
                let shape = core::hint::black_box(SHAPE);
                let mut storage = [0.0; SHAPE.packed_weights_len()];
                let mut y = [0.0; 4 * 4 * 8];
                let y = y.get_mut(..4 * 4 * shape.out_c).unwrap_or_default();
                let x = [1.0; 4 * 4 * 8];
                let x = x.get(..4 * 4 * shape.in_c).unwrap_or_default();
                let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &W, &mut storage);
                let (result, stack) = crate::stack::peak(|| {
                    packed.and_then(|w| nn.conv2d(&shape, &w, None, Activation::Relu, x, y))
                });
                ok &= result.is_ok_and(|()| y.get(5 * shape.out_c) == Some(&$taps));
                hprintln!("stack {}: {} bytes", $feature, stack);
            }
        };
    }
    conv_probe!(
        "probe-conv-pointwise",
        Conv2dShape::new(4, 4, 8, 8, 1, 1),
        64,
        8.0
    );
    conv_probe!(
        "probe-conv-depthwise",
        Conv2dShape::new(4, 4, 8, 8, 3, 3)
            .with_groups(8)
            .with_padding(SAME),
        72,
        9.0
    );
    conv_probe!(
        "probe-conv-winograd",
        Conv2dShape::new(4, 4, 8, 8, 3, 3).with_padding(SAME),
        576,
        72.0
    );
    conv_probe!(
        "probe-conv-few-channels",
        Conv2dShape::new(4, 4, 3, 4, 3, 3).with_padding(SAME),
        108,
        27.0
    );
    conv_probe!(
        "probe-conv-implicit-gemm",
        Conv2dShape::new(4, 4, 8, 8, 3, 3)
            .with_padding(SAME)
            .with_algorithm(ConvAlgorithm::Direct),
        576,
        72.0
    );
    // Fixed-size recurrent cells, 8 inputs and 16 units, one step from a zero state with
    // zero weights and biases that make the new state a known value.
    #[cfg(feature = "probe-rnn")]
    {
        use simdnn::{RnnCell, pack_rnn};
        static W: [f32; RnnCell::<8, 16, 0>::PACKED_LEN] =
            pack_rnn(&[[0.0; 8]; 16], &[[0.0; 16]; 16], Some(&[1.0; 16]), None);
        let cell = RnnCell::<8, 16, _>::new(&W);
        let (mut h, x) = ([0.0f32; 16], core::hint::black_box([0.5f32; 8]));
        let mut scratch = [0.0; RnnCell::<8, 16, 0>::STEP_SCRATCH_LEN];
        let ((), stack) = crate::stack::peak(|| cell.step(nn, &x, &mut h, &mut scratch));
        ok &= (h[15] - 0.761_594_2).abs() < 1e-5; // tanh(1)
        hprintln!("stack probe-rnn: {} bytes", stack);
    }
    #[cfg(feature = "probe-gru")]
    {
        use simdnn::{GruCell, pack_gru};
        // r = z = 1/2, n = tanh(1) (the candidate's bias): h' = (1 - z) n = tanh(1) / 2.
        const B: [[f32; 16]; 3] = [[0.0; 16], [0.0; 16], [1.0; 16]];
        static W: [f32; GruCell::<8, 16, 0>::PACKED_LEN] =
            pack_gru(&[[[0.0; 8]; 16]; 3], &[[[0.0; 16]; 16]; 3], Some(&B), None);
        let cell = GruCell::<8, 16, _>::new(&W);
        let (mut h, x) = ([0.0f32; 16], core::hint::black_box([0.5f32; 8]));
        let mut scratch = [0.0; GruCell::<8, 16, 0>::STEP_SCRATCH_LEN];
        let ((), stack) = crate::stack::peak(|| cell.step(nn, &x, &mut h, &mut scratch));
        ok &= (h[15] - 0.5 * 0.761_594_2).abs() < 1e-5; // (1 - 1/2) tanh(1)
        hprintln!("stack probe-gru: {} bytes", stack);
    }
    #[cfg(feature = "probe-lstm")]
    {
        use simdnn::{LstmCell, pack_lstm};
        // i = f = o = 1/2, g = tanh(1): c' = tanh(1) / 2, h' = tanh(c') / 2.
        const B: [[f32; 16]; 4] = [[0.0; 16], [0.0; 16], [1.0; 16], [0.0; 16]];
        static W: [f32; LstmCell::<8, 16, 0>::PACKED_LEN] =
            pack_lstm(&[[[0.0; 8]; 16]; 4], &[[[0.0; 16]; 16]; 4], Some(&B), None);
        let cell = LstmCell::<8, 16, _>::new(&W);
        let (mut h, mut c, x) = (
            [0.0f32; 16],
            [0.0f32; 16],
            core::hint::black_box([0.5f32; 8]),
        );
        let mut scratch = [0.0; LstmCell::<8, 16, 0>::STEP_SCRATCH_LEN];
        let ((), stack) = crate::stack::peak(|| cell.step(nn, &x, &mut h, &mut c, &mut scratch));
        ok &= (c[15] - 0.380_797_1).abs() < 1e-5 && (h[15] - 0.181_699_7).abs() < 1e-5;
        hprintln!("stack probe-lstm: {} bytes", stack);
    }
    #[cfg(feature = "probe-log-softmax")]
    {
        let mut x = core::hint::black_box([0.0f32; 4]);
        let (result, stack) = crate::stack::peak(|| nn.log_softmax_in_place(&mut x, 4, None));
        ok &= result.is_ok() && (x[0] + core::f32::consts::LN_2 * 2.0).abs() < 1e-5;
        hprintln!("stack probe-log-softmax: {} bytes", stack);
    }
    #[cfg(feature = "probe-activations")]
    {
        let mut x = core::hint::black_box([0.0f32; 4]);
        let ((), stack) = crate::stack::peak(|| {
            nn.activate_in_place(core::hint::black_box(Activation::Sigmoid), &mut x)
        });
        ok &= x == [0.5; 4];
        hprintln!("stack probe-activations: {} bytes", stack);
    }
    ok
}
