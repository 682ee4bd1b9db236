//! # simdnn
//!
//! `#![no_std]`, allocation-free neural-network kernels (activations, softmax, dense layers
//! and matrix products, 1-D and 2-D convolutions, streaming conv1d, recurrent cells,
//! scaled dot-product attention) with hand-written SIMD
//! paths for AVX2+FMA, AVX-512F and NEON and a portable scalar path that runs on Cortex-M,
//! chosen at run time. Every buffer is the caller's; a wrong length is an [`Error`].
//!
//! A dense layer and a softmax:
//!
//! ```
//! use simdnn::{Activation, Engine, PackedDense, dense_packed_len};
//!
//! let nn = Engine::new(); // fastest backend of this CPU, detected once
//! // A 2-in, 3-out layer, weights row-major [out][in] like PyTorch's nn.Linear.
//! let w = [0.5, -1.0, 1.0, 1.0, 2.0, 0.0];
//! let mut storage = [0.0; dense_packed_len(3, 2)];
//! let layer = PackedDense::pack(&w, 3, 2, &mut storage)?;
//! let mut logits = [0.0; 3];
//! nn.dense(&layer, Some(&[0.0, 0.0, 1.0]), Activation::Identity, &[2.0, 1.0], &mut logits)?;
//! let mut probs = [0.0; 3];
//! nn.softmax(&logits, 3, None, &mut probs)?; // rows of 3 columns
//! assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! # Ok::<(), simdnn::Error>(())
//! ```
//!
//! A 2-D convolution ([`Conv2dShape`] describes it, [`PackedConv2d`] holds its weights,
//! [`Conv2dShape::path`] says which kernel it runs on):
//!
//! ```
//! use simdnn::{Activation, Conv2dShape, Engine, PackedConv2d, Padding, WeightLayout};
//!
//! // 8x8 RGB image (NHWC), 4 filters of 3x3, SAME padding, ReLU fused.
//! let shape = Conv2dShape::new(8, 8, 3, 4, 3, 3).with_padding(Padding::Same);
//! let w = vec![0.1; shape.weights_len()?]; // OIHW, as PyTorch stores it
//! let mut storage = vec![0.0; shape.packed_weights_len()];
//! let packed = PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, &mut storage)?;
//! let x = vec![1.0; shape.input_len()?];
//! let mut y = vec![0.0; shape.output_len()?];
//! Engine::new().conv2d(&shape, &packed, None, Activation::Relu, &x, &mut y)?;
//! assert!((y[4 * 8 + 4] - 2.7).abs() < 1e-5); // an inner pixel: 27 taps of 0.1
//! # Ok::<(), simdnn::Error>(())
//! ```
//!
//! A 1-D convolution streamed frame by frame (the state is the caller's;
//! [`Engine::conv1d_stream`]):
//!
//! ```
//! use simdnn::{Activation, Conv2dShape, Engine, PackedConv2d, WeightLayout};
//!
//! let shape = Conv2dShape::conv1d(0, 1, 1, 2); // y[t] = x[t-1] + x[t]; no fixed length
//! let mut storage = vec![0.0; shape.packed_weights_len()];
//! let w = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &[1.0, 1.0], &mut storage)?;
//! let (mut state, mut scratch) = ([0.0; 1], [0.0; 2]);
//! let nn = Engine::new();
//! for (x, want) in [(1.0, 1.0), (2.0, 3.0), (0.0, 2.0)] {
//!     let mut y = [0.0];
//!     nn.conv1d_stream(&shape, &w, None, Activation::Identity, &mut state, &[x], &mut scratch, &mut y)?;
//!     assert_eq!(y, [want]);
//! }
//! # Ok::<(), simdnn::Error>(())
//! ```
//!
//! A GRU over a sequence, with PyTorch's weights and semantics ([`GruShape`],
//! [`PackedGru`]; also [`RnnShape`] and [`LstmShape`], and weights from ONNX, Keras or
//! TensorFlow Lite: [`Weights`]):
//!
//! ```
//! use simdnn::{Direction, Engine, GruShape, PackedGru, TorchWeights};
//!
//! let shape = GruShape::new(2, 4); // input 2, hidden 4
//! let (w_ih, w_hh) = (vec![0.1; shape.weights_ih_len()], vec![0.2; shape.weights_hh_len()]);
//! let mut storage = vec![0.0; shape.packed_len()];
//! let gru = PackedGru::pack(&shape, TorchWeights::new(&w_ih, &w_hh), &mut storage)?;
//! let mut h = [0.0; 4]; // the state is the caller's
//! let mut scratch = vec![0.0; shape.scratch_len(3)];
//! let xs = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 steps
//! Engine::new().gru_sequence(&gru, Direction::Forward, &xs, &mut h, None, &mut scratch)?;
//! assert!(h.iter().all(|v| v.abs() < 1.0));
//! # Ok::<(), simdnn::Error>(())
//! ```
//!
//! ## Two API layers
//!
//! - Runtime-shaped: slices plus sizes; every length is checked up front and a mismatch is
//!   an [`Error`] naming the argument, the expected and the actual length. Nothing panics.
//! - Fixed-size: arrays and const generics ([`Dense`], [`Conv2d`], [`Conv1dStream`],
//!   [`GruCell`], [`LstmCell`], [`RnnCell`], [`Engine::softmax_array`],
//!   [`Engine::activate_array`], [`pack_dense`], [`pack_conv2d`], [`pack_gru`]); shape
//!   errors are compile errors.
//!
//! ## Backends and dispatch
//!
//! [`Engine::new`] picks the best [`Backend`] this CPU supports (cargo feature
//! `runtime-dispatch`, on by default: `cpuid` + `xgetbv` once, cached in an atomic; then
//! `Engine::new` costs 2.3 ns and a whole call on one element, dispatch `match`, length
//! checks and masked tail included, 3.5 ns scalar and 7.9 ns AVX2/AVX-512, measured by
//! `cargo bench --bench math -- dispatch` on a Zen 4 core). Without that feature the
//! backend is fixed at compile time by `-C target-feature`/`-C target-cpu`. Features `avx2`,
//! `avx512` and `neon` choose which backends are compiled in. [`Engine::with_backend`] pins
//! one and returns [`Error::UnsupportedBackend`] if the CPU lacks it.
//!
//! ## Accuracy contract
//!
//! Measured over every f32 input against f64 (`tests/ulp.rs`, run by CI), in ulp of the
//! correctly rounded result, for results at or above `f32::MIN_POSITIVE`:
//!
//! | function | scalar | AVX2 | AVX-512 | NEON | bound |
//! |---|---|---|---|---|---|
//! | `exp`     | 0.99 | 0.88 | 1.06 | 1.00 | 2 |
//! | `tanh`    | 2.01 | 1.95 | 2.38 | 1.86 | 4 |
//! | `sigmoid` | 2.44 | 2.56 | 2.76 | 2.32 | 4 |
//!
//! (NEON: every 61st input, under qemu-user.)
//!
//! Results below about 2.4e-38 (twice `f32::MIN_POSITIVE`) are flushed to 0 (`exp(x)` for
//! `x < -86.64`, `sigmoid(x)` for `x < -87`): no kernel produces a subnormal internally, so masked and
//! saturated inputs run at full speed whatever the FTZ/DAZ flags, which are never touched.
//! `exp` overflows to +inf exactly above ln(f32::MAX); NaN in gives NaN out everywhere.
//!
//! Sums (dense, softmax) are within `(n + 2) * 2^-24 * sum |a_i b_i|` of the f64 result.
//! The same backend on the same input gives bit-identical output on every run; different
//! backends differ by rounding only (the scalar path does not fuse multiply-adds and sums
//! in a different order), within the bounds above.
#![no_std]
#![deny(missing_docs)]

/// The README's examples, compiled and run as doc tests so that they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// Layers, lowest first: a module imports only from the layers before it, and the operator
// families (L3) never import each other.
mod error;
// Weights as little-endian byte blobs, read in place.
#[cfg(target_endian = "little")]
mod bytes;

// L0: backends, dispatch and the SIMD trait (the only `unsafe`).
mod engine;
mod simd;

// L1: vector math and slice-level building blocks.
mod vmath;

mod ops;

// L2: the shared matrix layer.
mod gemm;

// L3: the operator families.
mod activation;
mod attention;
mod conv;
mod dense;
mod recurrent;
mod softmax;

// Benchmark support.
mod probe;

pub use attention::{
    AdditivePool, AdditiveShape, Attention, AttentionPartial, AttentionShape, DotPool, KvCache,
    MhaBiases, MhaShape, MhaWeights, MultiHeadAttention, PackedAdditive, PackedMha, pack_additive,
    pack_mha,
};
#[cfg(target_endian = "little")]
pub use bytes::{AlignedBytes, f32_array_from_bytes, f32s_from_bytes};
pub use conv::{
    Conv1dStream, Conv2d, Conv2dShape, ConvAlgorithm, ConvPath, PackedConv2d, Padding,
    WeightLayout, convert_weights, pack_conv2d,
};
pub use dense::{Dense, PANEL, PackedDense, dense_packed_len, pack_dense};
pub use engine::{Backend, Engine};
pub use error::Error;
pub use ops::Activation;
pub use recurrent::{
    Direction, GruCell, GruReset, GruShape, KerasWeights, LstmCell, LstmShape, OnnxWeights,
    PackedGru, PackedLstm, PackedRnn, RnnActivation, RnnCell, RnnShape, TfliteLstmWeights,
    TorchWeights, Weights, pack_gru, pack_lstm, pack_rnn,
};
