//! The simdnn report: median time and GFLOP/s of the standard workloads (the layer shapes
//! of small vision and audio models, plus kernel-level rows: dense, softmax, vector math
//! on ordinary, tiny, subnormal and saturated inputs) on every backend this CPU has, next
//! to each backend's measured peak FMA throughput and ONNX Runtime's time where recorded.
//!
//! `cargo run --release --example report [-- --json] [--only NAME[,NAME]]
//! [--backend NAME[,NAME]] [--quick] [--ftz]` (`--ftz`: flush subnormals to zero, as a
//! caller may; compare the `_subnormal` rows with and without it)
//!
//! Adding a workload is one line in `WORKLOADS`.
use simdnn::{
    Activation, AdditiveShape, AttentionShape, Backend, Conv2dShape, Direction, Engine, GruShape,
    LstmShape, PackedAdditive, PackedConv2d, PackedDense, PackedGru, PackedLstm, PackedRnn,
    Padding, RnnShape, TorchWeights, WeightLayout, dense_packed_len,
};
#[path = "../benches/common/aligned.rs"]
mod aligned;
// The firmware's keyword-spotting model and its loader (examples/firmware).
#[path = "firmware/src/kws.rs"]
#[allow(dead_code)] // the firmware's tolerance
mod kws;
#[path = "firmware/src/host.rs"]
mod kws_host;
use aligned::Aligned;
use std::hint::black_box;
use std::time::Instant;

/// A workload: name, work per call and a constructor returning the call to time.
struct Workload {
    name: &'static str,
    work: Work,
    make: fn(Engine) -> Box<dyn FnMut()>,
}

/// What a call does, for the rate columns.
enum Work {
    /// Floating-point operations (a multiply-add counts 2): GFLOP/s and % of peak.
    Flops(f64),
    /// Elements of an element-wise or row-wise kernel: elements per core clock cycle.
    Elements(f64),
    /// A convolution: the direct algorithm's operations, and the kernel path it takes.
    Conv(Conv2dShape),
}
use Work::{Conv, Elements, Flops};

impl Work {
    /// Floating-point operations per call, if counted.
    fn flops(&self) -> Option<f64> {
        match self {
            Flops(f) => Some(*f),
            Elements(_) => None,
            Conv(s) => {
                let (h, w) = s.output_hw().ok()?;
                let taps = s.kernel_h * s.kernel_w * s.in_c / s.groups;
                Some(2.0 * (s.batch * h * w * s.out_c * taps) as f64)
            }
        }
    }
}

/// A convolution workload: the shape is both timed and counted.
macro_rules! conv_workload {
    ($name:literal, $shape:expr) => {
        Workload {
            name: $name,
            work: Conv($shape),
            make: |nn| conv(nn, $shape, 1.0),
        }
    };
}

const SAME: Padding = Padding::Same;
const PAD1: Padding = Padding::Explicit {
    top: 1,
    bottom: 1,
    left: 1,
    right: 1,
};

/// An element-wise row: `Activation::$act` over 4096 inputs of `data` times `$scale`.
macro_rules! elementwise {
    ($name:literal, $act:ident, $scale:ident) => {
        Workload {
            name: $name,
            work: Elements(4096.0),
            make: |nn| activation(nn, Activation::$act, 4096, $scale),
        }
    };
}

const WORKLOADS: &[Workload] = &[
    conv_workload!(
        "conv_tiny",
        Conv2dShape::new(32, 32, 3, 16, 3, 3).with_padding(SAME)
    ),
    conv_workload!(
        "conv_small",
        Conv2dShape::new(16, 16, 16, 32, 3, 3).with_padding(SAME)
    ),
    conv_workload!(
        "conv_resnet",
        Conv2dShape::new(56, 56, 64, 64, 3, 3).with_padding(SAME)
    ),
    conv_workload!("conv_pw", Conv2dShape::new(28, 28, 64, 128, 1, 1)),
    conv_workload!(
        "conv_dw",
        Conv2dShape::new(28, 28, 128, 128, 3, 3)
            .with_groups(128)
            .with_padding(SAME)
    ),
    conv_workload!(
        "conv_s2",
        Conv2dShape::new(56, 56, 32, 64, 3, 3)
            .with_stride(2, 2)
            .with_padding(PAD1)
    ),
    conv_workload!(
        "conv1d_kws",
        Conv2dShape::conv1d(16000, 1, 16, 9).with_padding(SAME)
    ),
    Workload {
        name: "dense_gemv_256x256",
        work: Flops(2.0 * 256.0 * 256.0),
        make: |nn| dense(nn, 1, 256, 256, 1.0),
    },
    Workload {
        name: "dense_gemm_64x256x256",
        work: Flops(2.0 * 64.0 * 256.0 * 256.0),
        make: |nn| dense(nn, 64, 256, 256, 1.0),
    },
    Workload {
        name: "dense_rowmajor_gemv_256x256",
        work: Flops(2.0 * 256.0 * 256.0),
        make: |nn| dense_row_major(nn, 256, 256),
    },
    // Recurrent cells over 100 steps, and one step (a sequence of one) with packed weights.
    Workload {
        name: "rnn_64x128",
        work: Flops(100.0 * 2.0 * 128.0 * (64.0 + 128.0)),
        make: |nn| recurrent(nn, Cell::Rnn, 64, 128, 100, 1.0),
    },
    Workload {
        name: "gru_64x128",
        work: Flops(100.0 * 2.0 * 3.0 * 128.0 * (64.0 + 128.0)),
        make: |nn| recurrent(nn, Cell::Gru, 64, 128, 100, 1.0),
    },
    Workload {
        name: "lstm_128x256",
        work: Flops(100.0 * 2.0 * 4.0 * 256.0 * (128.0 + 256.0)),
        make: |nn| recurrent(nn, Cell::Lstm, 128, 256, 100, 1.0),
    },
    Workload {
        name: "gru_64x128_step",
        work: Flops(2.0 * 3.0 * 128.0 * (64.0 + 128.0)),
        make: |nn| recurrent(nn, Cell::Gru, 64, 128, 1, 1.0),
    },
    Workload {
        name: "lstm_128x256_step",
        work: Flops(2.0 * 4.0 * 256.0 * (128.0 + 256.0)),
        make: |nn| recurrent(nn, Cell::Lstm, 128, 256, 1, 1.0),
    },
    // Scaled dot-product attention, head dim 64 (the causal row counts the useful work: the
    // scores on or below the diagonal).
    Workload {
        name: "sdpa_256",
        work: Flops(8.0 * 4.0 * 256.0 * 256.0 * 64.0),
        make: |nn| attention(nn, AttentionShape::new(8, 256, 256, 64), 1.0),
    },
    Workload {
        name: "sdpa_256_causal",
        work: Flops(8.0 * 4.0 * (256.0 * 257.0 / 2.0) * 64.0),
        make: |nn| attention(nn, AttentionShape::new(8, 256, 256, 64).with_causal(0), 1.0),
    },
    Workload {
        name: "sdpa_1024",
        work: Flops(4.0 * 4.0 * 1024.0 * 1024.0 * 64.0),
        make: |nn| attention(nn, AttentionShape::new(4, 1024, 1024, 64), 1.0),
    },
    Workload {
        name: "decode_1024",
        work: Flops(8.0 * 4.0 * 1024.0 * 64.0),
        make: |nn| {
            attention(
                nn,
                AttentionShape::new(8, 1, 1024, 64).with_causal(1023),
                1.0,
            )
        },
    },
    // Additive (Bahdanau) pooling: 128 keys of 64 projected to 64 in the call, a query of
    // 64, the keys as values.
    Workload {
        name: "kws_firmware_model",
        work: Flops(KWS_FLOPS),
        make: kws_model,
    },
    Workload {
        name: "additive_128",
        work: Flops(2.0 * (128.0 * 64.0 * 64.0 + 64.0 * 64.0 + 2.0 * 128.0 * 64.0)),
        make: |nn| additive(nn, 128, 64, 64),
    },
    Workload {
        name: "softmax_8x1024",
        work: Elements(8.0 * 1024.0),
        make: |nn| softmax(nn, 8, 1024, false, 10.0),
    },
    Workload {
        name: "softmax_masked_8x1024",
        work: Elements(8.0 * 1024.0),
        make: |nn| softmax(nn, 8, 1024, true, 10.0),
    },
    elementwise!("tanh_4096", Tanh, NORMAL),
    elementwise!("exp_4096", Exp, NORMAL),
    elementwise!("sigmoid_4096", Sigmoid, NORMAL),
    elementwise!("silu_4096", Silu, NORMAL),
    elementwise!("gelu_4096", Gelu, NORMAL),
    // The same on tiny and on subnormal inputs: they must run at the speed of the rows
    // above (no intermediate underflows to a subnormal, whatever the FTZ/DAZ flags).
    elementwise!("tanh_4096_tiny", Tanh, TINY),
    elementwise!("tanh_4096_subnormal", Tanh, SUBNORMAL),
    elementwise!("exp_4096_tiny", Exp, TINY),
    elementwise!("exp_4096_subnormal", Exp, SUBNORMAL),
    elementwise!("sigmoid_4096_tiny", Sigmoid, TINY),
    elementwise!("sigmoid_4096_subnormal", Sigmoid, SUBNORMAL),
    elementwise!("silu_4096_tiny", Silu, TINY),
    elementwise!("silu_4096_subnormal", Silu, SUBNORMAL),
    elementwise!("gelu_4096_tiny", Gelu, TINY),
    elementwise!("gelu_4096_subnormal", Gelu, SUBNORMAL),
    elementwise!("exp_4096_wide", Exp, WIDE),
    elementwise!("sigmoid_4096_wide", Sigmoid, WIDE),
    elementwise!("tanh_4096_wide", Tanh, WIDE),
    Workload {
        name: "softmax_8x1024_tiny",
        work: Elements(8.0 * 1024.0),
        make: |nn| softmax(nn, 8, 1024, false, TINY),
    },
    Workload {
        name: "softmax_8x1024_subnormal",
        work: Elements(8.0 * 1024.0),
        make: |nn| softmax(nn, 8, 1024, false, SUBNORMAL),
    },
    // Layers on subnormal inputs (weights ordinary): their products are subnormal, which
    // costs a microcode assist per operation on x86 unless the caller sets flush-to-zero
    // (`--ftz` sets FTZ and DAZ for the whole run: compare with and without it).
    Workload {
        name: "dense_gemm_64x256x256_subnormal",
        work: Flops(2.0 * 64.0 * 256.0 * 256.0),
        make: |nn| dense(nn, 64, 256, 256, SUBNORMAL),
    },
    Workload {
        name: "conv_pw_subnormal",
        work: Conv(Conv2dShape::new(28, 28, 64, 128, 1, 1)),
        make: |nn| conv(nn, Conv2dShape::new(28, 28, 64, 128, 1, 1), SUBNORMAL),
    },
    Workload {
        name: "gru_64x128_subnormal",
        work: Flops(100.0 * 2.0 * 3.0 * 128.0 * (64.0 + 128.0)),
        make: |nn| recurrent(nn, Cell::Gru, 64, 128, 100, SUBNORMAL),
    },
    Workload {
        name: "sdpa_256_subnormal",
        work: Flops(8.0 * 4.0 * 256.0 * 256.0 * 64.0),
        make: |nn| attention(nn, AttentionShape::new(8, 256, 256, 64), SUBNORMAL),
    },
];

/// Input scales of the element-wise rows: data in [-1, 1) times these.
const NORMAL: f32 = 20.0;
/// |x| mostly between 1e-24 and 1e-20: normal floats whose squares are subnormal.
const TINY: f32 = 1e-20;
/// |x| mostly between 1e-43 and 1e-39: every input subnormal.
const SUBNORMAL: f32 = 1e-39;
/// Half of the inputs past the range where exp underflows or overflows.
const WIDE: f32 = 200.0;

/// ONNX Runtime's single-threaded time (microseconds) for the same shapes, recorded on an
/// Intel Sapphire Rapids-class core (2026-12, `tools/ort_bench.py`), not measured now:
/// `bash .ci/compare` runs both side by side on this machine.
const ANCHORS_US: &[(&str, f64)] = &[
    ("conv_tiny", 16.0),
    ("conv_small", 21.7),
    ("conv_resnet", 1440.0),
    ("conv_pw", 89.9),
    ("conv_dw", 57.6),
    ("conv_s2", 190.2),
    ("conv1d_kws", 87.0),
    ("rnn_64x128", 285.5),
    ("gru_64x128", 318.3),
    ("lstm_128x256", 1402.0),
    ("gru_64x128_step", 9.7),
    ("lstm_128x256_step", 30.4),
    ("sdpa_256", 1070.0),
    ("sdpa_256_causal", 2675.0),
    ("sdpa_1024", 8572.0),
    ("decode_1024", 222.0),
    ("additive_128", 17.1),
];

/// Deterministic pseudo-random data in [-1, 1).
fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// `data` times `scale` (the `_subnormal` rows: every input subnormal).
fn scaled(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    data(n, seed).iter().map(|x| x * scale).collect()
}

fn dense(nn: Engine, batch: usize, out: usize, inp: usize, x_scale: f32) -> Box<dyn FnMut()> {
    let w = data(out * inp, 1);
    let mut storage = Aligned::from(&vec![0.0; dense_packed_len(out, inp)]);
    PackedDense::pack(&w, out, inp, storage.get_mut()).unwrap();
    let (b, x) = (data(out, 2), scaled(batch * inp, 3, x_scale));
    let mut y = vec![0.0; batch * out];
    Box::new(move || {
        let packed = PackedDense::from_packed(storage.get(), out, inp).unwrap();
        nn.dense(
            &packed,
            Some(&b),
            Activation::Identity,
            black_box(&x),
            &mut y,
        )
        .unwrap();
        black_box(&y);
    })
}

fn conv(nn: Engine, shape: Conv2dShape, x_scale: f32) -> Box<dyn FnMut()> {
    let w = data(shape.weights_len().unwrap(), 6);
    let mut storage = Aligned::from(&vec![0.0; shape.packed_weights_len()]);
    PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, storage.get_mut()).unwrap();
    let b = data(shape.out_c, 7);
    let x = Aligned::from(&scaled(shape.input_len().unwrap(), 8, x_scale));
    let mut y = Aligned::from(&vec![0.0; shape.output_len().unwrap()]);
    Box::new(move || {
        let packed = PackedConv2d::from_packed(&shape, storage.get()).unwrap();
        nn.conv2d(
            &shape,
            &packed,
            Some(&b),
            Activation::Identity,
            black_box(x.get()),
            y.get_mut(),
        )
        .unwrap();
        black_box(y.get());
    })
}

fn dense_row_major(nn: Engine, out: usize, inp: usize) -> Box<dyn FnMut()> {
    let (w, b, x, mut y) = (
        Aligned::from(&data(out * inp, 1)),
        data(out, 2),
        data(inp, 3),
        vec![0.0; out],
    );
    Box::new(move || {
        nn.dense_row_major(
            w.get(),
            inp,
            Some(&b),
            Activation::Identity,
            black_box(&x),
            &mut y,
        )
        .unwrap();
        black_box(&y);
    })
}

/// Scaled dot-product attention over `data` (in [-1, 1)), no mask beyond the shape's.
fn attention(nn: Engine, shape: AttentionShape, scale: f32) -> Box<dyn FnMut()> {
    let q = Aligned::from(&scaled(shape.q_size(), 21, scale));
    let k = Aligned::from(&scaled(shape.k_size(), 22, scale));
    let v = Aligned::from(&scaled(shape.v_size(), 23, scale));
    let mut out = Aligned::from(&vec![0.0; shape.out_size()]);
    let mut scratch = Aligned::from(&vec![0.0; shape.scratch_len()]);
    Box::new(move || {
        nn.attention(
            &shape,
            black_box(q.get()),
            k.get(),
            v.get(),
            None,
            out.get_mut(),
            scratch.get_mut(),
        )
        .unwrap();
        black_box(out.get());
    })
}

/// Additive attention pooling over `n` keys of `d` (also the values), projected to `a` in
/// every call, one query of `d`.
fn additive(nn: Engine, n: usize, d: usize, a: usize) -> Box<dyn FnMut()> {
    let shape = AdditiveShape::new(d, d, a);
    let (w_q, w_k, b, w) = (data(a * d, 31), data(a * d, 32), data(a, 33), data(a, 34));
    let mut storage = Aligned::from(&vec![0.0; shape.packed_len()]);
    PackedAdditive::pack(&shape, &w_q, &w_k, Some(&b), &w, storage.get_mut()).unwrap();
    let (keys, query) = (Aligned::from(&data(n * d, 35)), data(d, 36));
    let (mut projected, mut weights) = (vec![0.0; n * a], vec![0.0; n]);
    let (mut context, mut scratch) = (vec![0.0; d], vec![0.0; a]);
    Box::new(move || {
        let att = PackedAdditive::from_packed(&shape, storage.get()).unwrap();
        let keys = black_box(keys.get());
        nn.additive_keys(&att, keys, &mut projected).unwrap();
        nn.additive_pool(
            &att,
            &query,
            &projected,
            keys,
            &mut weights,
            &mut context,
            &mut scratch,
        )
        .unwrap();
        black_box(&context);
    })
}

/// Operations of one inference of the firmware's model: the conv1d's outputs, the GRU's
/// steps (both products), the pooling's projections, the classifier.
const KWS_FLOPS: f64 = {
    use kws::*;
    2.0 * (STEPS * CONV * TAPS
        + STEPS * 3 * HIDDEN * (CONV + HIDDEN)
        + STEPS * ATTN * HIDDEN
        + ATTN * HIDDEN
        + CLASSES * HIDDEN) as f64
};

/// The firmware's keyword-spotting model (examples/firmware) on its input: the host's side
/// of the firmware's check (its build script computes the same with the scalar backend).
fn kws_model(nn: Engine) -> Box<dyn FnMut()> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/firmware/model");
    let packed = kws_host::Packed::load(dir.as_ref());
    Box::new(move || {
        black_box(kws::infer(&nn, &packed.model(), black_box(&packed.input)));
    })
}

/// The firmware model's class probabilities on every backend, as the firmware prints them.
fn print_kws(engines: &[Engine]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/firmware/model");
    let packed = kws_host::Packed::load(dir.as_ref());
    println!("firmware model (examples/firmware), class probabilities in ppm:");
    for &nn in engines {
        let probs = kws::infer(&nn, &packed.model(), &packed.input);
        let ppm: Vec<String> = probs
            .iter()
            .map(|p| format!("{}", (p * 1e6) as u32))
            .collect();
        println!("  {:<7} {}", nn.backend().name(), ppm.join(" "));
    }
}

#[derive(Clone, Copy)]
enum Cell {
    Rnn,
    Gru,
    Lstm,
}

/// A tanh RNN, GRU or LSTM (PyTorch semantics, biases) over `steps` steps from a zero
/// state, every step's state written out.
fn recurrent(
    nn: Engine,
    cell: Cell,
    input: usize,
    hidden: usize,
    steps: usize,
    x_scale: f32,
) -> Box<dyn FnMut()> {
    let gates = match cell {
        Cell::Rnn => 1,
        Cell::Gru => 3,
        Cell::Lstm => 4,
    };
    let scale =
        |v: Vec<f32>, k: usize| -> Vec<f32> { v.iter().map(|x| x / (k as f32).sqrt()).collect() };
    let (w_ih, w_hh) = (
        scale(data(gates * hidden * input, 11), input),
        scale(data(gates * hidden * hidden, 12), hidden),
    );
    let (b_ih, b_hh) = (data(gates * hidden, 13), data(gates * hidden, 14));
    let weights = TorchWeights::new(&w_ih, &w_hh).with_biases(Some(&b_ih), Some(&b_hh));
    let xs = scaled(steps * input, 15, x_scale);
    let (mut h, mut c, mut out) = (
        vec![0.0; hidden],
        vec![0.0; hidden],
        vec![0.0; steps * hidden],
    );
    let (rnn, gru, lstm) = (
        RnnShape::new(input, hidden),
        GruShape::new(input, hidden),
        LstmShape::new(input, hidden),
    );
    let (packed_len, scratch_len) = match cell {
        Cell::Rnn => (rnn.packed_len(), rnn.scratch_len(steps)),
        Cell::Gru => (gru.packed_len(), gru.scratch_len(steps)),
        Cell::Lstm => (lstm.packed_len(), lstm.scratch_len(steps)),
    };
    let mut storage = Aligned::from(&vec![0.0; packed_len]);
    let mut scratch = Aligned::from(&vec![0.0; scratch_len]);
    match cell {
        Cell::Rnn => drop(PackedRnn::pack(&rnn, weights, storage.get_mut()).unwrap()),
        Cell::Gru => drop(PackedGru::pack(&gru, weights, storage.get_mut()).unwrap()),
        Cell::Lstm => drop(PackedLstm::pack(&lstm, weights, storage.get_mut()).unwrap()),
    }
    let fwd = Direction::Forward;
    Box::new(move || {
        let (xs, data) = (black_box(&xs[..]), storage.get());
        let (scratch, out) = (scratch.get_mut(), Some(&mut out[..]));
        match cell {
            Cell::Rnn => {
                let p = PackedRnn::from_packed(&rnn, data).unwrap();
                nn.rnn_sequence(&p, fwd, xs, &mut h, out, scratch).unwrap()
            }
            Cell::Gru => {
                let p = PackedGru::from_packed(&gru, data).unwrap();
                nn.gru_sequence(&p, fwd, xs, &mut h, out, scratch).unwrap()
            }
            Cell::Lstm => {
                let p = PackedLstm::from_packed(&lstm, data).unwrap();
                nn.lstm_sequence(&p, fwd, xs, &mut h, &mut c, out, scratch)
                    .unwrap()
            }
        }
        black_box(&h);
    })
}

/// Softmax rows of `data` times `scale`, the second half of each row masked if `masked`.
fn softmax(nn: Engine, rows: usize, cols: usize, masked: bool, scale: f32) -> Box<dyn FnMut()> {
    let x: Vec<f32> = data(rows * cols, 4).iter().map(|v| v * scale).collect();
    let mask: Vec<f32> = (0..cols)
        .map(|c| {
            if masked && c >= cols / 2 {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    let mut y = vec![0.0; rows * cols];
    Box::new(move || {
        nn.softmax(black_box(&x), cols, Some(&mask), &mut y)
            .unwrap();
        black_box(&y);
    })
}

fn activation(nn: Engine, act: Activation, n: usize, scale: f32) -> Box<dyn FnMut()> {
    let x: Vec<f32> = data(n, 5).iter().map(|v| v * scale).collect();
    let mut y = vec![0.0; n];
    Box::new(move || {
        nn.activate(act, black_box(&x), &mut y).unwrap();
        black_box(&y);
    })
}

/// Median nanoseconds per call: calibrate a batch to about `target_ms`, then take
/// `samples` batches.
fn median_ns(f: &mut dyn FnMut(), samples: usize, target_ms: f64) -> f64 {
    f();
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if ms > target_ms / 4.0 || iters > 1 << 30 {
            iters = ((iters as f64) * target_ms / ms.max(1e-6)).ceil().max(1.0) as u64;
            break;
        }
        iters *= 4;
    }
    let mut times: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / iters as f64
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[samples / 2]
}

/// The core clock in GHz: a chain of dependent one-cycle integer adds (`None` where the
/// report has no such chain for the architecture).
fn clock_ghz(samples: usize) -> Option<f64> {
    const ADDS: u64 = 64 * 20_000;
    let ns = median_ns(&mut || add_chain(ADDS / 64), samples, 20.0);
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64")).then_some(ADDS as f64 / ns)
}

/// `64 * rounds` dependent register adds.
#[inline(never)]
fn add_chain(rounds: u64) {
    let (mut x, y) = (black_box(1u64), black_box(3u64));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: register-only arithmetic on the asm's own operands.
    unsafe {
        std::arch::asm!(
            "2:", ".rept 64", "add {x}, {y}", ".endr", "dec {n}", "jnz 2b",
            x = inout(reg) x, y = in(reg) y, n = inout(reg) rounds => _,
            options(nostack, nomem),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: register-only arithmetic on the asm's own operands.
    unsafe {
        std::arch::asm!(
            "2:", ".rept 64", "add {x}, {x}, {y}", ".endr", "subs {n}, {n}, #1", "b.ne 2b",
            x = inout(reg) x, y = in(reg) y, n = inout(reg) rounds => _,
            options(nostack, nomem),
        );
    }
    let _ = rounds;
    black_box(x);
}

/// Peak GFLOP/s of the backend's FMA units on one core (median of the samples).
fn peak_gflops(nn: Engine, samples: usize) -> f64 {
    let iters = 200_000;
    let flops = nn.fma_probe(iters) as f64;
    let ns = median_ns(
        &mut || {
            black_box(nn.fma_probe(black_box(iters)));
        },
        samples,
        20.0,
    );
    flops / ns
}

/// Streaming-load bandwidth (GB/s) of the backend from a buffer of `bytes` (median).
fn load_gbps(nn: Engine, bytes: usize, samples: usize) -> f64 {
    let buf = Aligned::from(&vec![1.0; bytes / 4]);
    let ns = median_ns(
        &mut || {
            black_box(nn.load_probe(black_box(buf.get())));
        },
        samples,
        20.0,
    );
    bytes as f64 / ns
}

/// What the columns mean, printed above the table.
const LEGEND: &str = "
  median us  median wall time of one call (inputs in cache, one thread)
  GFLOP/s    floating-point operations per second; a multiply-add counts 2. Convolutions
             count the direct algorithm's operations, so Winograd rows (path Winograd) can
             pass 100% of peak: they do 2.25x fewer multiply-adds
  % peak     GFLOP/s over the FMA peak measured above for that backend (none for scalar:
             LLVM vectorises its kernels to SSE2 while the probe times one-lane chains)
  el/cycle   elements per core clock cycle (the clock from the dependent-add chain above),
             for element-wise and row-wise kernels; _tiny, _subnormal and _wide rows take
             inputs near 1e-20, below 1.2e-38 and in [-200, 200]; the layers' _subnormal
             rows take subnormal inputs (ordinary weights); with --ftz the whole run has
             flush-to-zero and denormals-are-zero set, as a caller may
  ORT us     ONNX Runtime 1.32, one thread, recorded on an Intel Sapphire Rapids-class core
             (2026-12), not measured now: `bash .ci/compare` runs both on this machine
  path       the convolution kernel the shape takes (simdnn::ConvPath)
";

/// Sets flush-to-zero and denormals-are-zero for this thread, as a caller might before
/// calling simdnn (which never reads or changes them): `--ftz`.
fn set_flush_to_zero() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: MXCSR's FTZ (bit 15) and DAZ (bit 6) change only how subnormals round.
    #[allow(deprecated)] // the intrinsics are deprecated in favour of inline assembly
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: FPCR.FZ (bit 24) changes only how subnormals round.
    unsafe {
        let fpcr: u64;
        std::arch::asm!("mrs {}, fpcr", out(reg) fpcr);
        std::arch::asm!("msr fpcr, {}", in(reg) fpcr | 1 << 24);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    let list = |flag: &str| -> Option<Vec<String>> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|s| s.split(',').map(str::to_owned).collect())
    };
    let only = list("--only");
    if args.iter().any(|a| a == "--ftz") {
        set_flush_to_zero();
    }
    let backends = list("--backend");
    if let Some(only) = &only {
        for name in only {
            if !WORKLOADS.iter().any(|w| w.name == name) {
                eprintln!(
                    "unknown workload `{name}`; known: {}",
                    WORKLOADS
                        .iter()
                        .map(|w| w.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                std::process::exit(2);
            }
        }
    }
    let (samples, target_ms) = if quick { (3, 2.0) } else { (11, 20.0) };

    let engines: Vec<Engine> = Backend::ALL
        .into_iter()
        .filter(|b| {
            backends
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == b.name()))
        })
        .filter_map(|b| Engine::with_backend(b).ok())
        .collect();
    let peaks: Vec<f64> = engines.iter().map(|&nn| peak_gflops(nn, samples)).collect();
    let ghz = clock_ghz(samples);
    if !json {
        println!("simdnn report: one thread, f32, batch 1; medians of {samples} samples");
        for (nn, peak) in engines.iter().zip(&peaks) {
            println!(
                "  peak FMA throughput {:<7} {peak:7.1} GFLOP/s",
                nn.backend().name()
            );
        }
        if let Some(ghz) = ghz {
            println!("  core clock (dependent adds) {ghz:.2} GHz");
        }
        // The widest backend's loads from buffers the size of L1, L2 and L3 (the bound of
        // the kernels that stream their weights, such as a recurrent step).
        if let Some(&widest) = engines.last() {
            let gbps: Vec<String> = [
                ("32 KiB", 32 << 10),
                ("1 MiB", 1 << 20),
                ("16 MiB", 16 << 20),
            ]
            .iter()
            .map(|&(name, bytes)| format!("{name} {:.0}", load_gbps(widest, bytes, samples)))
            .collect();
            println!(
                "  streaming loads ({}), GB/s: {}",
                widest.backend().name(),
                gbps.join(", ")
            );
        }
        println!("{LEGEND}");
        println!(
            "{:<28} {:<7} {:>12} {:>9} {:>7} {:>8} {:>10}  path",
            "workload", "backend", "median us", "GFLOP/s", "% peak", "el/cycle", "ORT us"
        );
    }
    for w in WORKLOADS
        .iter()
        .filter(|w| only.as_ref().is_none_or(|o| o.iter().any(|n| n == w.name)))
    {
        for (&nn, &peak) in engines.iter().zip(&peaks) {
            let mut f = (w.make)(nn);
            let ns = median_ns(&mut *f, samples, target_ms);
            let gflops = w.work.flops().map(|fl| fl / ns);
            let per_cycle = match w.work {
                Elements(n) => ghz.map(|ghz| n / (ns * ghz)),
                _ => None,
            };
            if json {
                let g = gflops.map_or("null".to_owned(), |g| format!("{g:.3}"));
                println!(
                    "{{\"workload\": \"{}\", \"backend\": \"{}\", \"median_ns\": {ns:.1}, \"gflops\": {g}, \"peak_gflops\": {peak:.1}}}",
                    w.name,
                    nn.backend().name()
                );
            } else {
                let g = gflops.map_or("-".to_owned(), |g| format!("{g:.1}"));
                // The scalar probe times one-lane chains, while LLVM auto-vectorises the scalar
                // kernels to the baseline SIMD (SSE2 on x86-64): a percentage would mislead.
                let pct = match gflops {
                    Some(g) if nn.backend() != Backend::Scalar => {
                        format!("{:.0}%", 100.0 * g / peak)
                    }
                    _ => "-".to_owned(),
                };
                let per_cycle = per_cycle.map_or("-".to_owned(), |e| format!("{e:.2}"));
                let peer = ANCHORS_US
                    .iter()
                    .find(|a| a.0 == w.name)
                    .map_or("-".to_owned(), |a| format!("{:.1}", a.1));
                let path = match w.work {
                    Conv(shape) => shape.path().map_or("-".to_owned(), |p| format!("{p:?}")),
                    _ => "-".to_owned(),
                };
                println!(
                    "{:<28} {:<7} {:>12.3} {:>9} {:>7} {:>8} {:>10}  {path}",
                    w.name,
                    nn.backend().name(),
                    ns / 1e3,
                    g,
                    pct,
                    per_cycle,
                    peer
                );
            }
        }
    }
    if !json
        && only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == "kws_firmware_model"))
    {
        print_kws(&engines);
    }
}
