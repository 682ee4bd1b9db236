//! Every family's fixed-size API in one firmware (feature `every-family`): the recurrent
//! cells (step and sequence), the convolution on each of its paths, the dense layer,
//! scaled dot-product attention (row and tiled paths, causal), both poolings, the
//! multi-head layer (forward and decode over a KV cache), the activations and softmax.
//! The build with `panic-check` proves that none of them keeps a reachable panic (.ci/run
//! links it); run under QEMU, each result is checked against a value known by hand.
//! Inputs pass through `black_box`, so the optimiser cannot fold the kernels away.

use core::hint::black_box;
use cortex_m_semihosting::hprintln;
use simdnn::{
    Activation, AdditivePool, Attention, Conv2d, Dense, Direction, DotPool, Engine, GruCell,
    GruReset, KvCache, LstmCell, MultiHeadAttention, RnnActivation, RnnCell, pack_additive,
    pack_conv2d, pack_gru, pack_lstm, pack_mha, pack_rnn,
};

const I: usize = 4;
const H: usize = 8;
const RNN_LEN: usize = RnnCell::<I, H, 0>::PACKED_LEN;
const GRU_LEN: usize = GruCell::<I, H, 0>::PACKED_LEN;
const LSTM_LEN: usize = LstmCell::<I, H, 0>::PACKED_LEN;
static RNN: [f32; RNN_LEN] = pack_rnn(&[[0.1; I]; H], &[[0.05; H]; H], None, None);
static GRU: [f32; GRU_LEN] = pack_gru(&[[[0.1; I]; H]; 3], &[[[0.05; H]; H]; 3], None, None);
static LSTM: [f32; LSTM_LEN] = pack_lstm(&[[[0.1; I]; H]; 4], &[[[0.05; H]; H]; 4], None, None);

/// A convolution of all-ones weights: on an all-ones image, an interior output is the
/// number of taps, `KH * KW * CI`.
macro_rules! conv {
    ($ci:literal, $co:literal, $k:literal) => {{
        const LEN: usize = Conv2d::<$ci, $co, $k, $k, 0>::PACKED_LEN;
        static W: [f32; LEN] = pack_conv2d(&[[[[1.0; $ci]; $k]; $k]; $co]);
        (
            Conv2d::<$ci, $co, $k, $k, LEN>::new(&W, None, Activation::Relu),
            ($k * $k * $ci) as f32,
        )
    }};
}

const E: usize = 8;
const MHA_LEN: usize = MultiHeadAttention::<E, 2, 1, 4, 0>::PACKED_LEN;
static MHA: [f32; MHA_LEN] = pack_mha(
    &[[[0.05; E]; 4]; 2],
    &[[[0.05; E]; 4]; 1],
    &[[[0.05; E]; 4]; 1],
    &[[[0.05; 4]; 2]; E],
    None,
);
const POOL_LEN: usize = AdditivePool::<4, 4, 8, 0>::PACKED_LEN;
static POOL: [f32; POOL_LEN] = pack_additive(&[[0.1; 4]; 8], &[[0.1; 4]; 8], None, &[0.1; 8]);

fn finite(xs: &[f32]) -> bool {
    xs.iter().all(|x| x.is_finite())
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + b.abs())
}

/// Runs every family once; false if a result is wrong.
pub fn run(nn: &Engine) -> bool {
    let mut ok = true;
    let mut check = |name: &str, good: bool| {
        hprintln!("  {}: {}", name, if good { "ok" } else { "WRONG" });
        ok &= good;
    };
    let xs = black_box([[0.5; I]; 3]);

    // Recurrent cells: a step, then a sequence; equal inputs give equal units.
    let rnn = RnnCell::<I, H, RNN_LEN>::new(&RNN).with_activation(RnnActivation::Relu);
    let (mut h, mut scratch) = ([0.0; H], [0.0; RnnCell::<I, H, 0>::scratch_len(3)]);
    let mut step_scratch = [0.0; RnnCell::<I, H, 0>::STEP_SCRATCH_LEN];
    rnn.step(nn, &xs[0], &mut h, &mut step_scratch);
    check("rnn step", close(h[0], 0.2) && h.iter().all(|&x| x == h[0]));
    rnn.sequence(nn, Direction::Reverse, &xs, &mut h, None, &mut scratch);
    check("rnn sequence", finite(&h) && h[0] > 0.2);

    let gru = GruCell::<I, H, GRU_LEN>::new(&GRU).with_reset(GruReset::BeforeProduct);
    let (mut h, mut out) = ([0.0; H], [[0.0; H]; 3]);
    let mut scratch = [0.0; GruCell::<I, H, 0>::scratch_len(3)];
    gru.sequence(
        nn,
        Direction::Forward,
        &xs,
        &mut h,
        Some(&mut out),
        &mut scratch,
    );
    check("gru sequence", finite(&h) && h == out[2] && h[0] > 0.0);

    let lstm = LstmCell::<I, H, LSTM_LEN>::new(&LSTM).with_cell_clip(3.0);
    let (mut h, mut c) = ([0.0; H], [0.0; H]);
    let mut step_scratch = [0.0; LstmCell::<I, H, 0>::STEP_SCRATCH_LEN];
    lstm.step(nn, &xs[0], &mut h, &mut c, &mut step_scratch);
    let mut scratch = [0.0; LstmCell::<I, H, 0>::scratch_len(3)];
    lstm.sequence(
        nn,
        Direction::Forward,
        &xs,
        &mut h,
        &mut c,
        None,
        &mut scratch,
    );
    check(
        "lstm",
        finite(&h) && finite(&c) && h[0] > 0.0 && c[0] > h[0],
    );

    // Convolutions, one per path: one channel, few channels, Winograd, pointwise, and the
    // implicit GEMM (5 x 5 over 8 channels); an all-ones 6 x 6 image.
    macro_rules! conv_check {
        ($name:literal, $ci:literal, $co:literal, $k:literal) => {{
            let (layer, taps) = conv!($ci, $co, $k);
            let x = black_box([[[1.0; $ci]; 6]; 6]);
            let mut y = [[[0.0; $co]; 6]; 6];
            layer.forward_same(nn, &x, &mut y);
            check(
                $name,
                close(y[2][2][0], taps) && close(y[2][2][$co - 1], taps),
            );
        }};
    }
    conv_check!("conv one channel", 1, 4, 3);
    conv_check!("conv few channels", 2, 4, 3);
    conv_check!("conv winograd", 8, 8, 3);
    conv_check!("conv pointwise", 4, 8, 1);
    conv_check!("conv implicit gemm", 8, 4, 5);
    let (layer, taps) = conv!(2, 4, 3);
    let mut y = [[[0.0; 4]; 4]; 4];
    layer.forward_valid(nn, &black_box([[[1.0; 2]; 6]; 6]), &mut y);
    check(
        "conv valid",
        y.as_flattened().as_flattened().iter().all(|&v| v == taps),
    );

    // Dense: ones times halves.
    static DENSE: [[f32; 8]; 4] = [[0.5; 8]; 4];
    let mut y = [0.0; 4];
    Dense::new(&DENSE, None, Activation::Relu).forward(nn, &black_box([1.0; 8]), &mut y);
    check("dense", y == [4.0; 4]);

    // Attention: values equal per key position, so every output is a convex combination;
    // a short causal call (row path) and a 40 x 40 one (tiled path).
    let attention = Attention::<2, 1, 8>::new().with_causal(0);
    let (q, k) = (black_box([[[0.1; 8]; 4]; 2]), black_box([[[0.2; 8]; 6]; 1]));
    let v = black_box([[[1.5; 8]; 6]; 1]);
    let mut out = [[[0.0; 8]; 4]; 2];
    let mut scratch = [0.0; Attention::<2, 1, 8>::SCRATCH_LEN];
    attention.forward(nn, &q, &k, &v, &mut out, &mut scratch);
    check(
        "attention rows",
        out.as_flattened()
            .as_flattened()
            .iter()
            .all(|&o| close(o, 1.5)),
    );
    let (q, kv) = (
        black_box([[[0.1; 8]; 40]; 2]),
        black_box([[[0.3; 8]; 40]; 1]),
    );
    let mut out = [[[0.0; 8]; 40]; 2];
    Attention::<2, 1, 8>::new().forward(nn, &q, &kv, &kv, &mut out, &mut scratch);
    check(
        "attention tiles",
        out.as_flattened()
            .as_flattened()
            .iter()
            .all(|&o| close(o, 0.3)),
    );

    // Pooling: equal keys give equal weights.
    let keys = black_box([[0.25; 4]; 5]);
    let values = black_box([[2.0; 3]; 5]);
    let (mut weights, mut context) = ([0.0; 5], [0.0; 3]);
    DotPool::<4>::pool(nn, &keys, &[1.0; 4], &values, &mut weights, &mut context);
    check(
        "dot pooling",
        weights.iter().all(|&w| close(w, 0.2)) && close(context[0], 2.0),
    );
    let pool = AdditivePool::<4, 4, 8, POOL_LEN>::new(&POOL);
    let mut projected = [[0.0; 8]; 5];
    pool.keys(nn, &keys, &mut projected);
    let mut scratch = [0.0; 8];
    pool.pool(
        nn,
        &[1.0; 4],
        &projected,
        &values,
        &mut weights,
        &mut context,
        &mut scratch,
    );
    check(
        "additive pooling",
        weights.iter().all(|&w| close(w, 0.2)) && close(context[2], 2.0),
    );

    // Multi-head attention: a forward pass, then the same tokens decoded one by one.
    let mha = MultiHeadAttention::<E, 2, 1, 4, MHA_LEN>::new(&MHA);
    let x = black_box([[1.0; E]; 5]);
    let mut whole = [[0.0; E]; 5];
    let mut scratch = [0.0; MultiHeadAttention::<E, 2, 1, 4, 0>::scratch_len(5)];
    mha.forward(nn, &x, true, &mut whole, &mut scratch);
    let (mut kc, mut vc) = ([0.0; 8 * 4], [0.0; 8 * 4]);
    let mut decoded = true;
    match KvCache::new(&mut kc, &mut vc, 1, 8, 4, 4) {
        Ok(mut cache) => {
            let mut scratch = [0.0; MultiHeadAttention::<E, 2, 1, 4, 0>::scratch_len(1)];
            for (token, want) in x.iter().zip(&whole) {
                let mut out = [[0.0; E]; 1];
                let r = mha.decode(nn, &[*token], &mut cache, &mut out, &mut scratch);
                decoded &= r.is_ok() && out[0].iter().zip(want).all(|(&a, &b)| close(a, b));
            }
        }
        Err(_) => decoded = false,
    }
    // v = 8 x 0.05 = 0.4 in every dimension; W_o sums 8 of them at 0.05.
    check("multi-head attention", decoded && close(whole[0][0], 0.16));

    // Activations and softmax.
    let x = black_box([0.5; 8]);
    let (mut y, mut acts) = ([0.0; 8], true);
    let every = [
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
    for act in black_box(every) {
        // Every activation of 0.5 lies in (0, 2).
        nn.activate_array(act, &x, &mut y);
        acts &= y.iter().all(|&v| v > 0.0 && v < 2.0);
    }
    let mut rows = black_box([[1.0; 4]; 2]);
    nn.softmax_array(&mut rows, None);
    check(
        "activations, softmax",
        acts && rows[1].iter().all(|&p| close(p, 0.25)),
    );
    ok
}
