//! 2-D and 1-D convolutions on channels-last tensors (NHWC / NWC).
//!
//! `y[n, oy, ox, o] = b[o] + sum_{ky, kx, c} W[o, ky, kx, c] x[n, oy*sh + ky*dh - top,
//! ox*sw + kx*dw - left, g*CIg + c]` over the channels `c` of `o`'s group `g`, then the
//! activation: ReLU, ReLU6 and leaky ReLU in the store of each tile, the exp-based ones
//! (tanh, sigmoid, ...) as one more pass over the finished output, so that their code
//! stays out of the tile loops. Six paths ([`ConvPath`]), chosen from the shape, each
//! compiled as its own `#[target_feature]` function:
//! - pointwise (1x1, stride 1, no padding, one group): exactly the dense GEMM over pixels;
//! - depthwise (groups = input channels, any channel multiplier `m`): output channels in
//!   vector lanes, weights stored `[KH][KW][out_c]`; per vector of channels the rows under
//!   the window are copied once into a zero-padded ring of aligned vectors on the stack
//!   (input lanes spread by a permutation when `m > 1`), and blocks of 8 output
//!   pixels accumulate from it (3-wide stride-1 rows reuse each loaded vector for all
//!   three taps). 3x3 stride 1 needs no copy: with the nine weights in registers it
//!   streams along two output rows at a time, one input column of the four rows under
//!   them per step, straight from the image;
//! - 3x3, stride 1, dilation 1, one group, 8 to 64 input channels: Winograd F(2x2, 3x3)
//!   (see [`winograd`]): 2.25x fewer multiply-adds, weights transformed when packing;
//! - everything else: implicit GEMM. The weights are packed like [`crate::PackedDense`]
//!   (per group, panels of 32 output channels, `k = (ky, kx, c)` major); a tile of `MR`
//!   output pixels of one row times one panel stays in registers while the kernel window
//!   streams past. Where a pixel's window row is contiguous in memory (dilation 1, one
//!   group, inside the image) a whole `KW * C` run is one step; padded taps read a static
//!   block of zeros. Tiles are 8 pixels on AVX-512 (6 on AVX2), with a short tile for a
//!   row's last few pixels;
//! - one input channel, stride 1 (mono audio, grayscale): the same tiles, but the windows
//!   of a tile's pixels are one slice one float apart, so a tile is one base pointer with
//!   constant offsets; tiles touching the padding copy their window to the stack first;
//! - 1 to 4 input channels otherwise (RGB first layers, any stride; sensor streams): the
//!   tap rows under a chunk of output pixels are copied zero-padded to the stack (into a
//!   ring, each input row once, when a chunk is a whole output row), so every tile, border
//!   or not, is `KH` strided runs of `KW * C` floats from one base pointer.
//!
//! No im2col buffer and no caller scratch: everything is computed from the input in place;
//! small padded images (and the few-channel path) copy their tap rows into a 4 KiB stack
//! buffer (zero-padded), so every tile takes the fast contiguous path, and the depthwise
//! ring takes 192 vectors (12 KiB with AVX-512, 768 bytes on the scalar backend). The
//! Winograd path keeps its transformed inputs and GEMM results on the stack. Whole frames
//! of the kernel entry functions (x86-64 release build, read from their prologues): Winograd
//! 50 KiB with AVX-512, 31.5 KiB AVX2, 10.1 KiB scalar (NEON about 18 KiB, estimated from
//! its buffers); the other paths at most 14.2 KiB (AVX-512 implicit GEMM).
//!
//! Files: `shape` (padding, `Conv2dShape`, its validation into a `Geometry`), `pack`
//! (weight layouts and packing), one per path (`rows`: the implicit GEMM and the tile
//! stores; `mono`, `few`, `depthwise`, `winograd`), `stream` (streaming conv1d), `fixed`
//! (the const-generic layer), `tuning` (the per-backend tile sizes); this file checks a call
//! and picks its path.

use crate::engine::kernel_entry;
use crate::error::check_len;
use crate::gemm::Layer;
use crate::gemm::driver::gemm_packed_kernel;
use crate::ops::{Activation, bias_only, finish};
use crate::{Engine, Error};
use depthwise::conv_depthwise;
use pack::KernelKey;
use rows::{FEW, MONO, ROWS};

mod depthwise;
mod few;
mod fixed;
mod mono;
mod pack;
mod rows;
mod shape;
mod stream;
mod tuning;
mod winograd;

pub use fixed::{Conv1dStream, Conv2d};
pub use pack::{PackedConv2d, WeightLayout, convert_weights, pack_conv2d};
use shape::Geometry;
pub use shape::{Conv2dShape, ConvAlgorithm, ConvPath, Padding};
use tuning::ConvBlocking;

/// Everything a convolution kernel needs besides the input and output.
#[derive(Clone, Copy)]
pub(crate) struct ConvCall<'a> {
    g: Geometry,
    packed: &'a [f32],
    bias: Option<&'a [f32]>,
    act: Activation,
}

impl ConvCall<'_> {
    /// Runs this validated call on the path its shape takes, if that path is compiled in
    /// (its cargo feature; `checked` refused the call otherwise). Each path's arm exists only
    /// with its feature, so a build without the feature does not link the kernel.
    fn run(self, engine: &Engine, x: &[f32], y: &mut [f32]) {
        let path = self.g.path();
        macro_rules! compiled_paths {
            ($($feature:literal => $path:ident),*) => {$(
                #[cfg(feature = $feature)]
                if path == ConvPath::$path {
                    return self.run_path(ConvPath::$path, engine, x, y);
                }
            )*};
        }
        compiled_paths!(
            "conv-depthwise" => Depthwise,
            "conv-pointwise" => Pointwise,
            "conv-winograd" => Winograd,
            "conv-one-channel" => OneChannel,
            "conv-few-channels" => FewChannels,
            "conv-implicit-gemm" => ImplicitGemm
        );
        // A path left out of the build: `checked` refused the call before it got here.
        let _ = (path, engine, x, y);
    }

    /// Runs `path` (the one this call's shape takes) on `engine`'s backend, then the
    /// activations left out of the tile stores. With `path` a constant after inlining (the
    /// fixed-size layer's), only that kernel is referenced. Each path is its own
    /// `#[target_feature]` function: one function holding all of them made LLVM allocate
    /// registers worse in the hot loops (conv_tiny 21 -> 30 us).
    #[inline(always)]
    fn run_path(self, path: ConvPath, engine: &Engine, x: &[f32], y: &mut [f32]) {
        let call = self;
        match path {
            ConvPath::Depthwise => conv_depthwise::run(engine, call, x, y),
            ConvPath::Pointwise => {
                let layer = Layer {
                    packed: call.packed,
                    out: call.g.out_c,
                    inp: call.g.in_c,
                    bias: call.bias,
                    act: call.act,
                };
                gemm_packed_kernel::run(engine, layer, x, y);
            }
            ConvPath::Winograd => conv_winograd_kernel::run(engine, call, x, y),
            ConvPath::OneChannel => conv_mono_kernel::run(engine, call, x, y),
            ConvPath::FewChannels => conv_few_kernel::run(engine, call, x, y),
            ConvPath::ImplicitGemm => conv_rows_kernel::run(engine, call, x, y),
        }
        finish(engine, self.act, y);
    }
}

#[inline(always)]
fn conv_winograd_kernel<S: ConvBlocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.winograd(call, x, y);
}
kernel_entry!(conv_winograd_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn conv_mono_kernel<S: ConvBlocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.conv::<MONO>(call, x, y);
}
kernel_entry!(conv_mono_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn conv_few_kernel<S: ConvBlocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.conv::<FEW>(call, x, y);
}
kernel_entry!(conv_few_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn conv_rows_kernel<S: ConvBlocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.conv::<ROWS>(call, x, y);
}
kernel_entry!(conv_rows_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

impl Engine {
    /// 2-D convolution of NHWC `x` into NHWC `y` with packed weights, optional bias and a
    /// fused activation. Every length and the shape are checked first; nothing panics.
    ///
    /// Error bound: each output is within `(K + 2) * 2^-24 * sum |w x|` (K = taps per
    /// output) of the f64 result before the activation. Shapes that take the Winograd path
    /// ([`Conv2dShape::uses_winograd`]) are within `(in_c + 10) * 2^-24` times the same
    /// computation done on absolute values with the transforms' absolute values,
    /// `|A^T| [sum_c (|G| |g_c| |G^T|) ⊙ (|B^T| |d_c| |B|)] |A|`, where `d_c` is the 4x4
    /// input patch of the output's 2x2 tile and `g_c` the 3x3 kernel of channel `c`
    /// (`tests/kernels/conv.rs` checks exactly this bound).
    ///
    /// ```
    /// use simdnn::{Activation, Conv2dShape, Engine, PackedConv2d, Padding, WeightLayout};
    /// // 3x3 box filter, SAME padding, on a 4x4 single-channel image of ones.
    /// let shape = Conv2dShape::new(4, 4, 1, 1, 3, 3).with_padding(Padding::Same);
    /// let mut storage = vec![0.0; shape.packed_weights_len()];
    /// let w = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &[1.0; 9], &mut storage)?;
    /// let mut y = [0.0; 16];
    /// Engine::new().conv2d(&shape, &w, None, Activation::Identity, &[1.0; 16], &mut y)?;
    /// assert_eq!(&y[..4], &[4.0, 6.0, 6.0, 4.0]); // corners see 4 pixels, edges 6
    /// assert_eq!(y[5], 9.0);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn conv2d(
        &self,
        shape: &Conv2dShape,
        weights: &PackedConv2d<'_>,
        bias: Option<&[f32]>,
        act: Activation,
        x: &[f32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        let call = ConvCall::checked(shape, weights, bias, act, x.len(), y.len())?;
        if y.is_empty() {
            return Ok(());
        }
        if x.is_empty() {
            // An empty image with padding around it: every tap reads zeros.
            bias_only(self, bias, act, call.g.out_c, y);
            return Ok(());
        }
        call.run(self, x, y);
        Ok(())
    }
}

impl<'a> ConvCall<'a> {
    /// Every check of a call with input and output of these lengths, before anything is
    /// written.
    fn checked(
        shape: &Conv2dShape,
        weights: &PackedConv2d<'a>,
        bias: Option<&'a [f32]>,
        act: Activation,
        x_len: usize,
        y_len: usize,
    ) -> Result<Self, Error> {
        let g = shape.geometry()?;
        let path = g.path();
        if !path.is_compiled() {
            return Err(Error::FeatureDisabled {
                feature: path.feature(),
            });
        }
        if weights.key != KernelKey::of(shape) {
            return Err(Error::InvalidShape {
                what: "weights were packed for another kernel shape",
            });
        }
        check_len("x", x_len, g.input_len)?;
        check_len("y", y_len, g.output_len)?;
        if let Some(b) = bias {
            check_len("bias", b.len(), g.out_c)?;
        }
        Ok(ConvCall {
            g,
            packed: weights.data,
            bias,
            act,
        })
    }
}
