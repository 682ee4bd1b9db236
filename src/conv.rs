//! 2-D and 1-D convolutions on channels-last tensors (NHWC / NWC).
//!
//! `y[n, oy, ox, o] = b[o] + sum_{ky, kx, c} W[o, ky, kx, c] x[n, oy*sh + ky*dh - top,
//! ox*sw + kx*dw - left, g*CIg + c]` over the channels `c` of `o`'s group `g`, then the
//! activation: ReLU, ReLU6 and leaky ReLU in the store of each tile, the exp-based ones
//! (tanh, sigmoid, ...) as one more pass over the finished output, so that their code
//! stays out of the tile loops. Six paths, chosen from the shape, each compiled as its
//! own `#[target_feature]` function:
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

use crate::activation::{Activation, Epilogue};
use crate::dense::{
    Blocking, Layer, PANEL, dense_kernel, gemm_tile, gemm_tile_strided, slices, store_block,
    store_dense_tile, store_whole_tile, whole_bias,
};
use crate::dispatch::kernel_entry;
use crate::error::{check_len, checked_mul};
use crate::simd::{MAX_LANES, Relu, Simd, Unchanged, VecOp, map};
use crate::{Engine, Error};

pub(crate) mod winograd;

/// How the input is padded (with zeros) before the kernel slides over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding; the output shrinks by the dilated kernel extent minus one.
    #[default]
    Valid,
    /// TensorFlow `SAME`: output size `ceil(in / stride)`, the padding split evenly with
    /// the odd element after.
    Same,
    /// Explicit zeros before and after each spatial axis.
    Explicit {
        /// Rows before the first.
        top: usize,
        /// Rows after the last.
        bottom: usize,
        /// Columns before the first.
        left: usize,
        /// Columns after the last.
        right: usize,
    },
}

/// How a convolution is computed, where there is a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvAlgorithm {
    /// The fastest path for the shape: Winograd F(2x2, 3x3) where it applies
    /// ([`Conv2dShape::uses_winograd`]), a direct convolution otherwise.
    #[default]
    Auto,
    /// Always a direct convolution: its error bound is the plain sum's, and its special
    /// values are a sum's (a `±inf` pixel gives `±inf` or NaN only where the sum has
    /// `inf - inf`; Winograd's input transform also adds and subtracts neighbouring
    /// pixels, so a `±inf` pixel turns most outputs that read it into NaN, and finite
    /// inputs above about `f32::MAX / 4` can overflow).
    Direct,
}

/// The memory order of convolution weights as a framework stores them. `I` is the input
/// channels per group (`in_c / groups`).
///
/// Depthwise weights of TFLite (`[1][KH][KW][C*m]`) and Keras (`[KH][KW][C][m]`) have the
/// same memory order as `Hwio` with `I = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[out_c][KH][KW][I]`: TFLite, CMSIS-NN.
    Ohwi,
    /// `[KH][KW][I][out_c]`: TensorFlow / Keras.
    Hwio,
    /// `[out_c][I][KH][KW]`: PyTorch, ONNX.
    Oihw,
}

impl WeightLayout {
    /// Index of `W[o, ky, kx, c]` in this layout.
    #[inline]
    const fn index(self, g: &Geometry, o: usize, ky: usize, kx: usize, c: usize) -> usize {
        let (kh, kw, ci) = (g.kernel_h, g.kernel_w, g.in_per_group);
        match self {
            WeightLayout::Ohwi => ((o * kh + ky) * kw + kx) * ci + c,
            WeightLayout::Hwio => ((ky * kw + kx) * ci + c) * g.out_c + o,
            WeightLayout::Oihw => ((o * ci + c) * kh + ky) * kw + kx,
        }
    }
}

/// The shape and options of a 2-D convolution. Start from [`Conv2dShape::new`] and adjust
/// with the `with_*` methods; every field is public.
///
/// ```
/// use simdnn::{Conv2dShape, Padding};
/// let s = Conv2dShape::new(56, 56, 64, 64, 3, 3).with_padding(Padding::Same);
/// assert_eq!(s.output_hw()?, (56, 56));
/// let s2 = Conv2dShape::new(56, 56, 32, 64, 3, 3).with_stride(2, 2).with_padding(Padding::Same);
/// assert_eq!(s2.output_hw()?, (28, 28));
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Padding rule.
    pub padding: Padding,
    /// Channel groups: each output channel sees `in_c / groups` inputs. `groups == in_c`
    /// is depthwise (with channel multiplier `out_c / in_c`).
    pub groups: usize,
    /// Winograd where it applies, or always direct. Weights are packed for one or the other.
    pub algorithm: ConvAlgorithm,
}

impl Conv2dShape {
    /// Batch 1, stride 1, dilation 1, `Valid` padding, one group.
    pub const fn new(
        in_h: usize,
        in_w: usize,
        in_c: usize,
        out_c: usize,
        kernel_h: usize,
        kernel_w: usize,
    ) -> Self {
        Conv2dShape {
            batch: 1,
            in_h,
            in_w,
            in_c,
            out_c,
            kernel_h,
            kernel_w,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            padding: Padding::Valid,
            groups: 1,
            algorithm: ConvAlgorithm::Auto,
        }
    }

    /// A 1-D convolution over `len` frames of `in_c` channels (NWC), as a 1-row 2-D one.
    ///
    /// ```
    /// use simdnn::{Conv2dShape, Padding};
    /// let kws = Conv2dShape::conv1d(16000, 1, 16, 9).with_padding(Padding::Same);
    /// assert_eq!(kws.output_hw()?, (1, 16000));
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub const fn conv1d(len: usize, in_c: usize, out_c: usize, kernel: usize) -> Self {
        Conv2dShape::new(1, len, in_c, out_c, 1, kernel)
    }

    /// With `batch` images.
    pub const fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
    /// With strides (vertical, horizontal).
    pub const fn with_stride(mut self, stride_h: usize, stride_w: usize) -> Self {
        self.stride_h = stride_h;
        self.stride_w = stride_w;
        self
    }
    /// With dilations (vertical, horizontal).
    pub const fn with_dilation(mut self, dilation_h: usize, dilation_w: usize) -> Self {
        self.dilation_h = dilation_h;
        self.dilation_w = dilation_w;
        self
    }
    /// With a padding rule. For a 1-D shape, `Explicit` uses `left`/`right` (and
    /// `Same` pads only horizontally, since the kernel height is 1).
    pub const fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// With `groups` channel groups (`groups == in_c == out_c` is depthwise).
    pub const fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    /// With an algorithm choice: [`ConvAlgorithm::Direct`] turns Winograd off.
    ///
    /// ```
    /// use simdnn::{ConvAlgorithm, Conv2dShape};
    /// let s = Conv2dShape::new(16, 16, 16, 32, 3, 3);
    /// assert!(s.uses_winograd());
    /// assert!(!s.with_algorithm(ConvAlgorithm::Direct).uses_winograd());
    /// ```
    pub const fn with_algorithm(mut self, algorithm: ConvAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Output height and width, or why the shape is invalid.
    pub fn output_hw(&self) -> Result<(usize, usize), Error> {
        self.geometry().map(|g| (g.out_h, g.out_w))
    }

    /// Length of the NHWC input.
    pub fn input_len(&self) -> Result<usize, Error> {
        self.geometry().map(|g| g.input_len)
    }

    /// Length of the NHWC output.
    pub fn output_len(&self) -> Result<usize, Error> {
        self.geometry().map(|g| g.output_len)
    }

    /// Length of the weights in any [`WeightLayout`]: `out_c * KH * KW * in_c / groups`.
    pub fn weights_len(&self) -> Result<usize, Error> {
        self.geometry().map(|g| g.weights_len)
    }

    /// Length of the packed weights ([`PackedConv2d::pack`]); 0 if the shape is invalid
    /// (which `pack` reports).
    ///
    /// ```
    /// use simdnn::Conv2dShape;
    /// // 16 output channels are padded to one 32-wide panel of 3 * 3 * 3 taps.
    /// assert_eq!(Conv2dShape::new(32, 32, 3, 16, 3, 3).packed_weights_len(), 32 * 27);
    /// ```
    pub const fn packed_weights_len(&self) -> usize {
        /// The product, or 0 from the whole function if it overflows.
        macro_rules! mul {
            ($a:expr, $b:expr) => {
                match $a.checked_mul($b) {
                    Some(v) => v,
                    None => return 0,
                }
            };
        }
        if self.groups == 0
            || !self.in_c.is_multiple_of(self.groups)
            || !self.out_c.is_multiple_of(self.groups)
        {
            return 0;
        }
        let taps = mul!(self.kernel_h, self.kernel_w);
        if self.is_depthwise() {
            return mul!(taps, self.out_c);
        }
        if self.uses_winograd() {
            let panels = mul!(self.out_c.div_ceil(PANEL), PANEL);
            return mul!(panels, mul!(winograd::POSITIONS, self.in_c));
        }
        let per_group_out = mul!((self.out_c / self.groups).div_ceil(PANEL), PANEL);
        let k = mul!(taps, self.in_c / self.groups);
        mul!(mul!(self.groups, per_group_out), k)
    }

    /// Whether this shape takes the Winograd F(2x2, 3x3) path (and its packed layout): a
    /// 3x3 kernel, stride 1, dilation 1, one group, 8 to 64 input channels, and
    /// [`ConvAlgorithm::Auto`]. Its error bound and its special values differ from the
    /// direct convolution's (see [`Engine::conv2d`] and [`ConvAlgorithm::Direct`]).
    ///
    /// ```
    /// use simdnn::Conv2dShape;
    /// assert!(Conv2dShape::new(16, 16, 16, 32, 3, 3).uses_winograd());
    /// assert!(!Conv2dShape::new(32, 32, 3, 16, 3, 3).uses_winograd()); // too few channels
    /// assert!(!Conv2dShape::new(16, 16, 16, 32, 3, 3).with_stride(2, 2).uses_winograd());
    /// ```
    pub const fn uses_winograd(&self) -> bool {
        matches!(self.algorithm, ConvAlgorithm::Auto)
            && self.kernel_h == 3
            && self.kernel_w == 3
            && self.stride_h == 1
            && self.stride_w == 1
            && self.dilation_h == 1
            && self.dilation_w == 1
            && self.groups == 1
            && self.in_c >= winograd::MIN_CHANNELS
            && self.in_c <= winograd::MAX_CHANNELS
    }

    /// Whether the depthwise fast path (and its packed layout) applies: one group per input
    /// channel, any channel multiplier `out_c / in_c`.
    const fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_c
    }

    /// The geometry of the kernel alone (spatial size and padding ignored): what weight
    /// packing and layout conversion need.
    fn kernel_geometry(&self) -> Result<Geometry, Error> {
        let kernel_only = Conv2dShape {
            in_h: 0,
            in_w: 0,
            padding: Padding::Valid,
            ..*self
        };
        kernel_only.geometry()
    }

    /// Everything the kernels need, with every product checked for overflow.
    fn geometry(&self) -> Result<Geometry, Error> {
        let s = self;
        for (v, arg) in [
            (s.in_c, "in_c"),
            (s.out_c, "out_c"),
            (s.kernel_h, "kernel_h"),
            (s.kernel_w, "kernel_w"),
            (s.stride_h, "stride_h"),
            (s.stride_w, "stride_w"),
            (s.dilation_h, "dilation_h"),
            (s.dilation_w, "dilation_w"),
            (s.groups, "groups"),
        ] {
            if v == 0 {
                return Err(Error::ZeroDimension { arg });
            }
        }
        if !s.in_c.is_multiple_of(s.groups) || !s.out_c.is_multiple_of(s.groups) {
            return Err(Error::InvalidShape {
                what: "groups must divide in_c and out_c",
            });
        }
        let span = |k: usize, d: usize| {
            checked_mul(k - 1, d, "dilated kernel")?
                .checked_add(1)
                .ok_or(Error::SizeOverflow {
                    what: "dilated kernel",
                })
        };
        let (span_h, span_w) = (
            span(s.kernel_h, s.dilation_h)?,
            span(s.kernel_w, s.dilation_w)?,
        );
        let axis = |len: usize, span: usize, stride: usize, pad: Option<(usize, usize)>| {
            let (before, after) = match pad {
                Some(p) => p,
                None => {
                    // SAME: out = ceil(len / stride), odd padding after.
                    let out = len.div_ceil(stride);
                    if out == 0 {
                        return Ok((0, 0, 0));
                    }
                    let need = (out - 1)
                        .checked_mul(stride)
                        .and_then(|v| v.checked_add(span))
                        .ok_or(Error::SizeOverflow { what: "padding" })?;
                    let total = need.saturating_sub(len);
                    (total / 2, total - total / 2)
                }
            };
            let padded = len
                .checked_add(before)
                .and_then(|v| v.checked_add(after))
                .ok_or(Error::SizeOverflow {
                    what: "padded input",
                })?;
            let out = if padded >= span {
                (padded - span) / stride + 1
            } else {
                0
            };
            Ok::<_, Error>((out, before, after))
        };
        let (pad_h, pad_w) = match s.padding {
            Padding::Valid => (Some((0, 0)), Some((0, 0))),
            Padding::Same => (None, None),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => (Some((top, bottom)), Some((left, right))),
        };
        let (out_h, top, bottom) = axis(s.in_h, span_h, s.stride_h, pad_h)?;
        let (out_w, left, right) = axis(s.in_w, span_w, s.stride_w, pad_w)?;
        if (s.in_h > 0 && s.in_w > 0) && (out_h == 0 || out_w == 0) {
            return Err(Error::InvalidShape {
                what: "the dilated kernel is larger than the padded input",
            });
        }
        let pixels_in = checked_mul(s.in_h, s.in_w, "input length")?;
        let input_len = checked_mul(
            checked_mul(pixels_in, s.in_c, "input length")?,
            s.batch,
            "input length",
        )?;
        let pixels_out = checked_mul(out_h, out_w, "output length")?;
        let output_len = checked_mul(
            checked_mul(pixels_out, s.out_c, "output length")?,
            s.batch,
            "output length",
        )?;
        // The kernels compute input coordinates, padded row lengths and stack-window sizes
        // with plain arithmetic, up to a tile of `TILE_REACH` pixels past the last output:
        // bounding those quantities here once keeps every such computation in range. Real
        // shapes are far inside; absurd strides, dilations or paddings are refused.
        let reach = |out: usize, stride: usize, span: usize, before: usize, after: usize, len| {
            out.checked_add(TILE_REACH)?
                .checked_mul(stride)?
                .checked_add(span)?
                .checked_add(before)?
                .checked_add(after)?
                .checked_add(len)
        };
        let reach_h =
            reach(out_h, s.stride_h, span_h, top, bottom, s.in_h).ok_or(Error::SizeOverflow {
                what: "stride_h, dilation_h and padding (input rows reached)",
            })?;
        let reach_w =
            reach(out_w, s.stride_w, span_w, left, right, s.in_w).ok_or(Error::SizeOverflow {
                what: "stride_w, dilation_w and padding (input columns reached)",
            })?;
        checked_mul(
            checked_mul(reach_h, reach_w, "padded input")?,
            s.in_c,
            "padded input",
        )?;
        let taps = checked_mul(s.kernel_h, s.kernel_w, "weights length")?;
        let in_per_group = s.in_c / s.groups;
        let weights_len = checked_mul(
            checked_mul(taps, in_per_group, "weights length")?,
            s.out_c,
            "weights length",
        )?;
        let out_per_group = s.out_c / s.groups;
        // The packed length is the same product with outputs rounded up to panels.
        let panels = checked_mul(out_per_group.div_ceil(PANEL), PANEL, "packed length")?;
        checked_mul(
            checked_mul(panels, s.groups, "packed length")?,
            checked_mul(taps, in_per_group, "packed length")?,
            "packed length",
        )?;
        if s.uses_winograd() {
            checked_mul(panels, winograd::POSITIONS * s.in_c, "packed length")?;
        }
        Ok(Geometry {
            batch: s.batch,
            in_h: s.in_h,
            in_w: s.in_w,
            in_c: s.in_c,
            out_c: s.out_c,
            out_h,
            out_w,
            kernel_h: s.kernel_h,
            kernel_w: s.kernel_w,
            stride_h: s.stride_h,
            stride_w: s.stride_w,
            dilation_h: s.dilation_h,
            dilation_w: s.dilation_w,
            top,
            left,
            groups: s.groups,
            in_per_group,
            out_per_group,
            depthwise: s.is_depthwise(),
            winograd: s.uses_winograd(),
            input_len,
            output_len,
            weights_len,
        })
    }
}

/// Output pixels past the last one that a kernel's tile may compute coordinates for (a
/// tile's width is at most this; see `Conv2dShape::geometry`).
const TILE_REACH: usize = if MONO_TILE_MAX > DW_PIXELS {
    MONO_TILE_MAX
} else {
    DW_PIXELS
};

/// A validated shape with the derived sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    batch: usize,
    in_h: usize,
    in_w: usize,
    in_c: usize,
    out_c: usize,
    out_h: usize,
    out_w: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride_h: usize,
    stride_w: usize,
    dilation_h: usize,
    dilation_w: usize,
    top: usize,
    left: usize,
    groups: usize,
    in_per_group: usize,
    out_per_group: usize,
    depthwise: bool,
    winograd: bool,
    input_len: usize,
    output_len: usize,
    weights_len: usize,
}

impl Geometry {
    /// Taps per output channel: `KH * KW * in_per_group`.
    fn k(&self) -> usize {
        self.kernel_h * self.kernel_w * self.in_per_group
    }
    /// The pointwise case: one GEMM over all pixels.
    fn is_pointwise(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.top == 0
            && self.left == 0
            && self.out_h == self.in_h
            && self.out_w == self.in_w
            && self.groups == 1
    }
    /// One input channel, stride 1, dilation 1, one group, and a kernel row narrow enough
    /// for [`conv_mono`]'s stack window (whatever the backend's tile width).
    fn is_mono(&self) -> bool {
        self.groups == 1
            && self.in_c == 1
            && self.stride_w == 1
            && self.dilation_w == 1
            && self.kernel_w + MONO_TILE_MAX <= MONO_WINDOW
    }
    /// At most [`FEW_CHANNELS`] input channels, one group, dilation 1 across, and the tap
    /// rows under a tile of the widest backend fit [`conv_few`]'s stack buffer.
    fn is_few_channels(&self) -> bool {
        let cols = (MONO_TILE_MAX - 1) * self.stride_w + self.kernel_w;
        self.groups == 1
            && self.in_c <= FEW_CHANNELS
            && self.dilation_w == 1
            && cols * self.in_c * self.kernel_h <= PADDED_ROWS
    }
    /// Input row `iy` for output row `oy` and tap row `ky`, if inside the image.
    #[inline(always)]
    fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride_h + ky * self.dilation_h)
            .checked_sub(self.top)
            .filter(|&r| r < self.in_h)
    }
    /// Depthwise 3x3, stride 1, dilation 1: the depthwise path's own streaming kernel.
    #[inline(always)]
    fn is_depthwise_3x3(&self) -> bool {
        self.depthwise
            && (self.kernel_h, self.stride_h, self.dilation_h) == (3, 1, 1)
            && (self.kernel_w, self.stride_w, self.dilation_w) == (3, 1, 1)
    }
    /// Input column for output column `ox` and tap column `kx`, if inside the image.
    #[inline(always)]
    fn in_col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.stride_w + kx * self.dilation_w)
            .checked_sub(self.left)
            .filter(|&c| c < self.in_w)
    }
}

/// Convolution weights packed for [`Engine::conv2d`], borrowed from caller-owned storage
/// of [`Conv2dShape::packed_weights_len`] floats. The layout depends on the kernel, the
/// channels and the groups, and for Winograd shapes ([`Conv2dShape::uses_winograd`]) also
/// on stride and dilation: a call with a shape the weights were not packed for is an
/// error (the image size and padding may change from call to call). As with
/// [`PackedDense`](crate::PackedDense), 64-byte aligned storage avoids loads that span two
/// cache lines on AVX-512.
///
/// ```
/// use simdnn::{Conv2dShape, PackedConv2d, WeightLayout};
/// let shape = Conv2dShape::new(8, 8, 2, 4, 3, 3);
/// let w = vec![0.5; shape.weights_len()?];
/// let mut storage = vec![0.0; shape.packed_weights_len()];
/// let packed = PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, &mut storage)?;
/// assert_eq!(packed.as_slice().len(), 32 * 3 * 3 * 2);
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PackedConv2d<'a> {
    data: &'a [f32],
    /// The kernel-related part of the shape it was packed for (the rest may vary per call).
    key: KernelKey,
}

/// What packed weights depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KernelKey {
    in_c: usize,
    out_c: usize,
    kernel_h: usize,
    kernel_w: usize,
    groups: usize,
    /// Winograd-transformed (which also depends on stride and dilation).
    winograd: bool,
}

impl KernelKey {
    fn of(s: &Conv2dShape) -> Self {
        KernelKey {
            in_c: s.in_c,
            out_c: s.out_c,
            kernel_h: s.kernel_h,
            kernel_w: s.kernel_w,
            groups: s.groups,
            winograd: s.uses_winograd(),
        }
    }
}

impl<'a> PackedConv2d<'a> {
    /// Packs weights given in `layout` for `shape`'s kernel into `storage`.
    pub fn pack(
        shape: &Conv2dShape,
        layout: WeightLayout,
        w: &[f32],
        storage: &'a mut [f32],
    ) -> Result<Self, Error> {
        let g = shape.kernel_geometry()?;
        check_len("w", w.len(), g.weights_len)?;
        check_len("storage", storage.len(), shape.packed_weights_len())?;
        if g.depthwise {
            // [KH][KW][out_c]
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    for o in 0..g.out_c {
                        storage[(ky * g.kernel_w + kx) * g.out_c + o] =
                            w[layout.index(&g, o, ky, kx, 0)];
                    }
                }
            }
        } else if shape.uses_winograd() {
            // Per position, panels of PANEL outputs, `in_c` rows each, zero-padded.
            let panels = g.out_c.div_ceil(PANEL);
            storage.fill(0.0);
            for o in 0..g.out_c {
                for c in 0..g.in_c {
                    let kernel: [[f32; 3]; 3] = core::array::from_fn(|ky| {
                        core::array::from_fn(|kx| w[layout.index(&g, o, ky, kx, c)])
                    });
                    let u = winograd::transform_kernel(kernel);
                    for (p, &up) in u.as_flattened().iter().enumerate() {
                        storage[winograd::packed_index(g.in_c, panels, p, o, c)] = up;
                    }
                }
            }
        } else {
            // Per group, panels of PANEL outputs, k = (ky, kx, c) major, zero-padded.
            let k = g.k();
            let group_len = g.out_per_group.div_ceil(PANEL) * PANEL * k;
            for (grp, dst) in storage
                .chunks_exact_mut(group_len.max(1))
                .enumerate()
                .take(g.groups)
            {
                for (i, d) in dst.iter_mut().enumerate() {
                    let (panel, rest) = (i / (PANEL * k), i % (PANEL * k));
                    let (kk, j) = (rest / PANEL, rest % PANEL);
                    let o = panel * PANEL + j;
                    let (tap, c) = (kk / g.in_per_group, kk % g.in_per_group);
                    let (ky, kx) = (tap / g.kernel_w, tap % g.kernel_w);
                    *d = if o < g.out_per_group {
                        w[layout.index(&g, grp * g.out_per_group + o, ky, kx, c)]
                    } else {
                        0.0
                    };
                }
            }
        }
        Ok(PackedConv2d {
            data: storage,
            key: KernelKey::of(shape),
        })
    }

    /// Wraps weights packed earlier for `shape` (e.g. stored and read back with `bytemuck`).
    pub fn from_packed(shape: &Conv2dShape, data: &'a [f32]) -> Result<Self, Error> {
        shape.kernel_geometry()?;
        check_len("data", data.len(), shape.packed_weights_len())?;
        Ok(PackedConv2d {
            data,
            key: KernelKey::of(shape),
        })
    }

    /// The packed data.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }
}

/// Rewrites weights of `shape` from one layout to another.
///
/// ```
/// use simdnn::{Conv2dShape, WeightLayout, convert_weights};
/// let shape = Conv2dShape::new(4, 4, 2, 3, 1, 2);
/// let oihw: Vec<f32> = (0..12).map(|i| i as f32).collect();
/// let mut hwio = vec![0.0; 12];
/// convert_weights(&shape, WeightLayout::Oihw, &oihw, WeightLayout::Hwio, &mut hwio)?;
/// // W[o=1, c=0, ky=0, kx=1] is at OIHW 5 and at HWIO (kx=1, c=0, o=1) = 1*2*3 + 0*3 + 1 = 7.
/// assert_eq!(hwio[7], 5.0);
/// # Ok::<(), simdnn::Error>(())
/// ```
pub fn convert_weights(
    shape: &Conv2dShape,
    from: WeightLayout,
    src: &[f32],
    to: WeightLayout,
    dst: &mut [f32],
) -> Result<(), Error> {
    let g = shape.kernel_geometry()?;
    check_len("src", src.len(), g.weights_len)?;
    check_len("dst", dst.len(), g.weights_len)?;
    for o in 0..g.out_c {
        for ky in 0..g.kernel_h {
            for kx in 0..g.kernel_w {
                for c in 0..g.in_per_group {
                    dst[to.index(&g, o, ky, kx, c)] = src[from.index(&g, o, ky, kx, c)];
                }
            }
        }
    }
    Ok(())
}

/// Stack floats for zero-padded copies of the tap rows of one output row (4 KiB).
const PADDED_ROWS: usize = 1024;

/// Zeros that padded taps read instead of the input (`in_per_group` is processed in
/// chunks of this size where padding is involved).
static ZEROS: [f32; 256] = [0.0; 256];

/// Everything a convolution kernel needs besides the input and output.
#[derive(Clone, Copy)]
pub(crate) struct ConvCall<'a> {
    g: Geometry,
    packed: &'a [f32],
    bias: Option<&'a [f32]>,
    act: Activation,
}

/// Implicit-GEMM convolution: `MR` output pixels of a row times `NV` vectors of a panel.
/// Layers with at most one vector of outputs per group (e.g. 16 channels on AVX-512) have
/// half the accumulators per pixel, so they take tiles of `MRN` pixels instead (`MRM` in
/// [`conv_mono`] and [`conv_few`]). A row's last few pixels (at most `MRT`) take a tile of
/// `MRT`, not a mostly wasted full one. `PATH` selects [`conv_rows`] ([`ROWS`]),
/// [`conv_mono`] ([`MONO`]) or [`conv_few`] ([`FEW`]).
#[inline(always)]
pub(crate) fn conv_general<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const MRN: usize,
    const MRM: usize,
    const MRT: usize,
    const PATH: u8,
>(
    s: S,
    call: ConvCall<'_>,
    x: &[f32],
    y: &mut [f32],
) {
    match call.act.epilogue() {
        Epilogue::Relu => conv_tiles::<S, MR, NV, MRN, MRM, MRT, PATH>(s, call, Relu, x, y),
        Epilogue::Linear(op) => conv_tiles::<S, MR, NV, MRN, MRM, MRT, PATH>(s, call, op, x, y),
        Epilogue::Plain | Epilogue::Afterwards => {
            conv_tiles::<S, MR, NV, MRN, MRM, MRT, PATH>(s, call, Unchanged, x, y)
        }
    }
}

#[inline(always)]
fn conv_tiles<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const MRN: usize,
    const MRM: usize,
    const MRT: usize,
    const PATH: u8,
>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    match (PATH, call.g.out_per_group <= S::LANES) {
        (MONO, true) => conv_mono::<S, MRM, 1>(s, call, op, x, y),
        (MONO, false) => conv_mono::<S, MR, NV>(s, call, op, x, y),
        (FEW, true) => conv_few::<S, MRM, 1>(s, call, op, x, y),
        (FEW, false) => conv_few::<S, MR, NV>(s, call, op, x, y),
        (_, true) => conv_rows::<S, MRN, 1, MRT>(s, call, op, x, y),
        (_, false) => conv_rows::<S, MR, NV, MRT>(s, call, op, x, y),
    }
}

/// [`conv_general`]'s paths.
pub(crate) const ROWS: u8 = 0;
pub(crate) const MONO: u8 = 1;
pub(crate) const FEW: u8 = 2;

/// Input channels of the layers [`conv_few`] takes.
const FEW_CHANNELS: usize = 4;

/// Few input channels (gray, RGB or RGBA first layers, sensor streams), one group,
/// dilation 1 across: the tap rows under a chunk of output pixels are copied zero-padded
/// to the stack, so that every tile, border or not, is `KH` runs of `KW * C` floats from
/// one base pointer at constant offsets ([`gemm_tile_strided`]). The step between pixels'
/// runs is a constant for RGB at stride 1 and 2 (immediate offsets instead of one address
/// register per pixel).
#[inline(always)]
fn conv_few<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    const { assert!(MR <= MONO_TILE_MAX) };
    let g = &call.g;
    let (c, kh, kw) = (g.in_c, g.kernel_h, g.kernel_w);
    // The distance between neighbouring pixels' runs of `kw * c` floats in a padded row.
    let step = g.stride_w * c;
    let pitch = PADDED_ROWS / kh;
    // Output pixels per chunk: whole tiles whose windows fit a padded row (at least one,
    // see `Geometry::is_few_channels`).
    let chunk = ((pitch / c - kw) / g.stride_w + 1) / MR * MR;
    let row_len = g.in_w * c;
    let mut rows = [0.0; PADDED_ROWS];
    // Where a chunk is the whole output row and the tap rows are consecutive, the padded
    // rows form a ring (input row `iy` in slot `iy % kh`) and each is copied once, not
    // `kh` times; otherwise tap row `ky` is copied to slot `ky` for every chunk.
    let ring = chunk >= g.out_w && g.dilation_h == 1;
    for (xn, yn) in x
        .chunks_exact(g.in_h * row_len)
        .zip(y.chunks_exact_mut(g.out_h * g.out_w * g.out_c))
        .take(g.batch)
    {
        // Input rows `..next` are in the ring already.
        let mut next = 0;
        for (oy, out_row) in yn.chunks_exact_mut(g.out_w * g.out_c).enumerate() {
            // The tap rows inside the image (a range: `in_row` is monotonic in `ky`).
            let inside = |ky: &usize| g.in_row(oy, *ky).is_some();
            let taps = match ((0..kh).find(inside), (0..kh).rev().find(inside)) {
                (Some(lo), Some(hi)) => lo..hi + 1,
                _ => 0..0,
            };
            let slot = |ky: usize| match (ring, g.in_row(oy, ky)) {
                (true, Some(iy)) => iy % kh,
                _ => ky,
            };
            for ox0 in (0..g.out_w).step_by(chunk) {
                let tiles = chunk.min(g.out_w - ox0).div_ceil(MR);
                let cols = (tiles * MR - 1) * g.stride_w + kw;
                // Padded column `j` holds input column `first + j - left`.
                let first = ox0 * g.stride_w;
                let lead = g.left.saturating_sub(first).min(cols);
                let body = (g.left + g.in_w).saturating_sub(first).clamp(lead, cols);
                for ky in taps.clone() {
                    let Some(iy) = g.in_row(oy, ky) else { continue };
                    if ring && iy < next {
                        continue;
                    }
                    let dst = &mut rows[slot(ky) * pitch..][..cols * c];
                    // (No image columns: a chunk wholly inside a wide padding.)
                    let src = match body - lead {
                        0 => &[][..],
                        n => &xn[iy * row_len + (first + lead - g.left) * c..][..n * c],
                    };
                    let (head, rest) = dst.split_at_mut(lead * c);
                    let (mid, tail) = rest.split_at_mut((body - lead) * c);
                    // Vector moves: no library call for these short rows.
                    fill_zero(s, head);
                    map(s, src, mid, Unchanged);
                    fill_zero(s, tail);
                }
                if let Some(iy) = taps.clone().next_back().and_then(|hi| g.in_row(oy, hi)) {
                    next = iy + 1;
                }
                let tap_rows = TapRows {
                    rows: &rows,
                    pitch,
                    taps: taps.clone(),
                    first: slot(taps.start),
                    slots: kh,
                };
                let chunk_out = (&mut *out_row, ox0, tiles);
                // Constant steps for RGB (stride 1 and 2): immediate offsets instead of one
                // address register per pixel (each arm its own loop, so that the tiles'
                // accumulators go straight to their stores).
                match step {
                    3 => few_chunk::<S, MR, NV>(s, &call, op, tap_rows, chunk_out, 3),
                    6 => few_chunk::<S, MR, NV>(s, &call, op, tap_rows, chunk_out, 6),
                    _ => few_chunk::<S, MR, NV>(s, &call, op, tap_rows, chunk_out, step),
                }
            }
        }
    }
}

/// The tiles of one chunk of [`conv_few`]: `tiles` tiles of output row `out_row` from
/// pixel `ox0`, every panel, from the padded tap rows.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn few_chunk<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    call: &ConvCall<'_>,
    op: impl VecOp<S>,
    tap_rows: TapRows<'_>,
    (out_row, ox0, tiles): (&mut [f32], usize, usize),
    step: usize,
) {
    let g = &call.g;
    let (run, k) = (g.kernel_w * g.in_c, g.k());
    let block_cols = NV * S::LANES;
    for (p, panel) in call.packed.chunks_exact(PANEL * k).enumerate() {
        for col in (0..PANEL).step_by(block_cols) {
            let o = p * PANEL + col;
            if o >= g.out_c {
                break;
            }
            let width = block_cols.min(g.out_c - o);
            for t in 0..tiles {
                let at = t * MR * step;
                let acc = few_tile::<S, MR, NV>(s, tap_rows.clone(), at, step, (panel, run, col));
                let ox = ox0 + t * MR;
                let keep = MR.min(g.out_w - ox);
                store_tile(
                    s,
                    &acc,
                    (keep, width),
                    call.bias,
                    op,
                    out_row,
                    ox,
                    o,
                    g.out_c,
                );
            }
        }
    }
}

/// The padded tap rows of [`conv_few`]: tap row `taps.start` in slot `first` of `rows`
/// (slots `pitch` floats apart), each next tap row in the next slot, wrapping at `slots`.
#[derive(Clone)]
struct TapRows<'a> {
    rows: &'a [f32],
    pitch: usize,
    taps: core::ops::Range<usize>,
    first: usize,
    slots: usize,
}

/// One tile of [`conv_few`]: each tap row's `MR` runs of `run` floats from `at`, `step`
/// floats apart, times the panel's rows.
#[inline(always)]
fn few_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    tap_rows: TapRows<'_>,
    at: usize,
    step: usize,
    (panel, run, col): (&[f32], usize, usize),
) -> [[S::V; NV]; MR] {
    let mut acc = [[s.zero(); NV]; MR];
    let mut slot = tap_rows.first;
    for ky in tap_rows.taps {
        let xs = &tap_rows.rows[slot * tap_rows.pitch + at..][..(MR - 1) * step + run];
        let w = &panel[ky * run * PANEL..(ky + 1) * run * PANEL];
        gemm_tile_strided::<S, MR, NV>(s, &mut acc, xs, step, run, w, col);
        slot = if slot + 1 == tap_rows.slots {
            0
        } else {
            slot + 1
        };
    }
    acc
}

/// `dst.fill(0.0)` with vector stores.
#[inline(always)]
fn fill_zero<S: Simd>(s: S, dst: &mut [f32]) {
    let mut ds = dst.chunks_exact_mut(S::LANES);
    for d in &mut ds {
        s.store(s.zero(), d);
    }
    let d = ds.into_remainder();
    if !d.is_empty() {
        s.store_partial(s.zero(), d);
    }
}

/// Stores the first `keep` pixels and `width` outputs of a tile from pixel `ox`, output
/// `o` of `out_row` (`pitch` floats per pixel), adding the bias and applying `op`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    (keep, width): (usize, usize),
    bias: Option<&[f32]>,
    op: impl VecOp<S>,
    out_row: &mut [f32],
    ox: usize,
    o: usize,
    pitch: usize,
) {
    if keep == MR && width == NV * S::LANES {
        let b = whole_bias::<S, NV>(s, bias, o);
        return store_whole_tile::<S, MR, NV>(s, acc, b, op, &mut out_row[ox * pitch + o..], pitch);
    }
    let add = bias.map(|b| &b[o..o + width]);
    for (m, &acc_row) in acc.iter().enumerate().take(keep) {
        let at = (ox + m) * pitch + o;
        store_block::<S, NV>(s, acc_row, add, op, &mut out_row[at..at + width]);
    }
}

/// Input floats a border tile of [`conv_mono`] copies (zero-padded) to the stack.
const MONO_WINDOW: usize = 64;

/// The widest conv tile of any backend (in pixels); see `dense::blocking!`.
const MONO_TILE_MAX: usize = 16;

/// One input channel, stride 1, dilation 1, one group (mono audio, grayscale images): the
/// windows of a tile's pixels are one slice, one float apart, so a tile needs one base
/// pointer and constant offsets. The tiles whose windows lie inside the row run in a loop of
/// their own (no border test, whole stores, the bias branch outside the loop); tiles that
/// overlap the padding (or run past the row end) read a zero-padded copy of their window.
#[inline(always)]
fn conv_mono<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    const { assert!(MR <= MONO_TILE_MAX) };
    let g = &call.g;
    let (kw, k) = (g.kernel_w, g.k());
    let block_cols = NV * S::LANES;
    let span = MR - 1 + kw;
    let tiles = g.out_w.div_ceil(MR);
    // The tiles whose windows lie inside the input row and whose pixels all lie in the
    // output row.
    let inner = {
        let start = g.left.div_ceil(MR).min(tiles);
        start..mono_inner_end(g, MR, span).max(start)
    };
    for (xn, yn) in x
        .chunks_exact(g.in_h * g.in_w)
        .zip(y.chunks_exact_mut(g.out_h * g.out_w * g.out_c))
        .take(g.batch)
    {
        for (oy, out_row) in yn.chunks_exact_mut(g.out_w * g.out_c).enumerate() {
            for (p, panel) in call.packed.chunks_exact(PANEL * k).enumerate() {
                for col in (0..PANEL).step_by(block_cols) {
                    let o = p * PANEL + col;
                    if o >= g.out_c {
                        break;
                    }
                    let width = block_cols.min(g.out_c - o);
                    let tile = MonoTile {
                        g,
                        xn,
                        oy,
                        panel,
                        col,
                        span,
                    };
                    // A part block (the last few outputs) takes the border path.
                    let inner = if width == block_cols {
                        inner.clone()
                    } else {
                        tiles..tiles
                    };
                    if !inner.is_empty() {
                        let dst = &mut out_row[inner.start * MR * g.out_c + o..];
                        let bias = whole_bias::<S, NV>(s, call.bias, o);
                        mono_inner::<S, MR, NV>(s, &tile, inner.clone(), bias, op, dst);
                    }
                    for t in (0..inner.start).chain(inner.end..tiles) {
                        let acc = tile.border::<S, MR, NV>(s, t * MR);
                        store_tile::<S, MR, NV>(
                            s,
                            &acc,
                            (MR.min(g.out_w - t * MR), width),
                            call.bias,
                            op,
                            out_row,
                            t * MR,
                            o,
                            g.out_c,
                        );
                    }
                }
            }
        }
    }
}

/// One past the last tile of [`conv_mono`] whose window lies inside the input row (tile
/// `t` reads input columns `t * mr - left..` up to `span` of them) and whose pixels all lie
/// in the output row.
fn mono_inner_end(g: &Geometry, mr: usize, span: usize) -> usize {
    match (g.in_w + g.left).checked_sub(span) {
        Some(last_start) => (last_start / mr + 1).min(g.out_w / mr),
        None => 0,
    }
}

/// What a [`conv_mono`] tile reads: the image, its output row, one panel's column block.
struct MonoTile<'a> {
    g: &'a Geometry,
    xn: &'a [f32],
    oy: usize,
    panel: &'a [f32],
    col: usize,
    span: usize,
}

impl MonoTile<'_> {
    /// The accumulators of the tile from output pixel `ox0`, any tile (zero-padded window).
    #[inline(always)]
    fn border<S: Simd, const MR: usize, const NV: usize>(
        &self,
        s: S,
        ox0: usize,
    ) -> [[S::V; NV]; MR] {
        let (g, span) = (self.g, self.span);
        let mut acc = [[s.zero(); NV]; MR];
        for ky in 0..g.kernel_h {
            let Some(iy) = g.in_row(self.oy, ky) else {
                continue;
            };
            let row = &self.xn[iy * g.in_w..(iy + 1) * g.in_w];
            let w = &self.panel[ky * g.kernel_w * PANEL..(ky + 1) * g.kernel_w * PANEL];
            let mut window = [0.0; MONO_WINDOW];
            for (j, v) in window[..span].iter_mut().enumerate() {
                if let Some(ix) = (ox0 + j).checked_sub(g.left) {
                    *v = row.get(ix).copied().unwrap_or(0.0);
                }
            }
            gemm_tile_strided::<S, MR, NV>(
                s,
                &mut acc,
                &window[..span],
                1,
                g.kernel_w,
                w,
                self.col,
            );
        }
        acc
    }
}

/// The inner tiles `tiles` of a [`conv_mono`] row, stored whole to `dst` (from the first
/// tile's first pixel at the block's first output).
#[inline(always)]
fn mono_inner<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    tile: &MonoTile<'_>,
    tiles: core::ops::Range<usize>,
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
) {
    let g = tile.g;
    let (kw, pitch) = (g.kernel_w, g.out_c);
    let outs = dst.chunks_mut(MR * pitch).take(tiles.len());
    let first = tiles.start * MR - g.left;
    if let (1, Some(iy)) = (g.kernel_h, g.in_row(tile.oy, 0)) {
        // One tap row (1-D layers): each tile's window comes from one iterator over the
        // row, no per-tile slicing (the scalar path's 2-pixel tiles: 234 -> 168 us).
        let row = &tile.xn[iy * g.in_w..(iy + 1) * g.in_w];
        let windows = row[first..].windows(tile.span).step_by(MR);
        for (xs, out) in windows.zip(outs) {
            let mut acc = [[s.zero(); NV]; MR];
            gemm_tile_strided::<S, MR, NV>(s, &mut acc, xs, 1, kw, tile.panel, tile.col);
            store_mono_tile::<S, MR, NV>(s, &acc, bias, op, out, pitch);
        }
        return;
    }
    for (t, out) in (0..).zip(outs) {
        let mut acc = [[s.zero(); NV]; MR];
        for ky in 0..g.kernel_h {
            let Some(iy) = g.in_row(tile.oy, ky) else {
                continue;
            };
            let row = &tile.xn[iy * g.in_w..(iy + 1) * g.in_w];
            let w = &tile.panel[ky * kw * PANEL..(ky + 1) * kw * PANEL];
            let xs = &row[first + t * MR..][..tile.span];
            gemm_tile_strided::<S, MR, NV>(s, &mut acc, xs, 1, kw, w, tile.col);
        }
        store_mono_tile::<S, MR, NV>(s, &acc, bias, op, out, pitch);
    }
}

/// Stores a [`mono_inner`] tile. One-vector pixels back to back (conv1d_kws on AVX-512)
/// store without per-pixel checks; `NV == 1` keeps that second path out of AVX2's
/// register-tight 6 x 2 tiles.
#[inline(always)]
fn store_mono_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    bias: Option<[S::V; NV]>,
    op: impl VecOp<S>,
    dst: &mut [f32],
    pitch: usize,
) {
    if NV == 1 && pitch == S::LANES {
        store_dense_tile::<S, MR, NV>(s, acc, bias, op, dst);
    } else {
        store_whole_tile::<S, MR, NV>(s, acc, bias, op, dst, pitch);
    }
}

/// [`conv_general`] with one tile shape.
#[inline(always)]
fn conv_rows<S: Simd, const MR: usize, const NV: usize, const MRT: usize>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let ConvCall {
        g,
        packed,
        bias,
        act: _,
    } = call;
    let k = g.k();
    let group_len = g.out_per_group.div_ceil(PANEL) * PANEL * k;
    let block_cols = NV * S::LANES;
    let (image_in, image_out) = (g.in_h * g.in_w * g.in_c, g.out_h * g.out_w * g.out_c);
    // Small images with horizontal padding: copy the tap rows of each output row into a
    // zero-padded stack buffer, so that every tile takes the contiguous-run path.
    let right = ((g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1)
        .saturating_sub(g.left + g.in_w);
    let row_len = (g.left + g.in_w + right) * g.in_c;
    let pad_rows = g.groups == 1
        && g.dilation_w == 1
        && (g.left > 0 || right > 0)
        && g.kernel_h * row_len <= PADDED_ROWS;
    let mut padded = [0.0; PADDED_ROWS];
    for (xn, yn) in x
        .chunks_exact(image_in)
        .zip(y.chunks_exact_mut(image_out))
        .take(g.batch)
    {
        for grp in 0..g.groups {
            let weights = &packed[grp * group_len..(grp + 1) * group_len];
            let c0 = grp * g.in_per_group;
            for oy in 0..g.out_h {
                if pad_rows {
                    for ky in 0..g.kernel_h {
                        if let Some(iy) = g.in_row(oy, ky) {
                            let dst = &mut padded[ky * row_len..(ky + 1) * row_len];
                            let (lead, rest) = dst.split_at_mut(g.left * g.in_c);
                            let (body, tail) = rest.split_at_mut(g.in_w * g.in_c);
                            lead.fill(0.0);
                            body.copy_from_slice(
                                &xn[iy * g.in_w * g.in_c..(iy + 1) * g.in_w * g.in_c],
                            );
                            tail.fill(0.0);
                        }
                    }
                }
                let rows = if pad_rows {
                    Some((&padded[..], row_len))
                } else {
                    None
                };
                for ox0 in (0..g.out_w).step_by(MR) {
                    let pixels = MR.min(g.out_w - ox0);
                    // The whole block's window rows lie inside the image horizontally.
                    let inside = pad_rows
                        || (g.in_col(ox0, 0).is_some()
                            && g.in_col(ox0 + pixels - 1, g.kernel_w - 1).is_some());
                    for (p, panel) in weights.chunks_exact(PANEL * k).enumerate() {
                        for col in (0..PANEL).step_by(block_cols) {
                            let o = p * PANEL + col;
                            if o >= g.out_per_group {
                                break;
                            }
                            let width = block_cols.min(g.out_per_group - o);
                            let oc = grp * g.out_per_group + o;
                            let tile = Tile {
                                oy,
                                ox0,
                                pixels,
                                inside,
                                c0,
                                oc,
                                width,
                            };
                            // A narrow last block (e.g. 16 outputs of a 32-wide panel) takes
                            // one vector column, half the FMAs.
                            let narrow = width <= S::LANES && NV > 1;
                            let short = pixels <= MRT && MRT < MR;
                            let args = (s, &g, xn, rows, &mut *yn, panel, col, tile, bias, op);
                            match (short, narrow) {
                                (false, false) => conv_tile::<S, MR, NV>(args),
                                (false, true) => conv_tile::<S, MR, 1>(args),
                                (true, false) => conv_tile::<S, MRT, NV>(args),
                                (true, true) => conv_tile::<S, MRT, 1>(args),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where a tile sits: output row, first pixel, pixels kept, whether every window is inside
/// the image horizontally, the group's first input channel, the first output channel and
/// how many outputs are kept.
#[derive(Clone, Copy)]
struct Tile {
    oy: usize,
    ox0: usize,
    pixels: usize,
    inside: bool,
    c0: usize,
    oc: usize,
    width: usize,
}

/// Everything [`conv_tile`] reads and writes: the backend, the shape, the image, the padded
/// tap rows if any, the output image, the weight panel and its column, the tile, the bias
/// and the activation.
type TileArgs<'a, S, Op> = (
    S,
    &'a Geometry,
    &'a [f32],
    Option<(&'a [f32], usize)>,
    &'a mut [f32],
    &'a [f32],
    usize,
    Tile,
    Option<&'a [f32]>,
    Op,
);

/// `MR` pixels times `NV` vectors of one panel: accumulate every tap, then store.
#[inline(always)]
fn conv_tile<S: Simd, const MR: usize, const NV: usize>(
    (s, g, xn, padded, yn, panel, col, t, bias, op): TileArgs<'_, S, impl VecOp<S>>,
) {
    // Tail blocks repeat the last pixel and discard it.
    let ox = |m: usize| t.ox0 + m.min(t.pixels - 1);
    let runs = g.groups == 1 && g.dilation_w == 1;
    let mut acc = [[s.zero(); NV]; MR];
    for ky in 0..g.kernel_h {
        let Some(iy) = g.in_row(t.oy, ky) else {
            continue;
        };
        // The input row, or its zero-padded copy (which starts `left` columns earlier).
        let (row, left) = match padded {
            Some((buf, len)) => (&buf[ky * len..(ky + 1) * len], 0),
            None => (
                &xn[iy * g.in_w * g.in_c..(iy + 1) * g.in_w * g.in_c],
                g.left,
            ),
        };
        let tap0 = ky * g.kernel_w;
        if runs && t.inside {
            // One contiguous `KW * C` run per pixel and tap row.
            let len = g.kernel_w * g.in_c;
            let w = &panel[tap0 * g.in_c * PANEL..(tap0 * g.in_c + len) * PANEL];
            let rows: [&[f32]; MR] = slices(|m| {
                let ix = ox(m) * g.stride_w - left;
                &row[ix * g.in_c..ix * g.in_c + len]
            });
            gemm_tile::<S, MR, NV>(s, &mut acc, rows, w, col);
            continue;
        }
        for kx in 0..g.kernel_w {
            let tap = tap0 + kx;
            for ch in (0..g.in_per_group).step_by(ZEROS.len()) {
                let len = ZEROS.len().min(g.in_per_group - ch);
                let rows: [&[f32]; MR] = slices(|m| match g.in_col(ox(m), kx) {
                    Some(ix) => {
                        let at = ix * g.in_c + t.c0 + ch;
                        &row[at..at + len]
                    }
                    None => &ZEROS[..len],
                });
                let kk = tap * g.in_per_group + ch;
                let w = &panel[kk * PANEL..(kk + len) * PANEL];
                gemm_tile::<S, MR, NV>(s, &mut acc, rows, w, col);
            }
        }
    }
    let at = (t.oy * g.out_w + t.ox0) * g.out_c + t.oc;
    if t.pixels == MR && t.width == NV * S::LANES {
        let b = whole_bias::<S, NV>(s, bias, t.oc);
        store_whole_tile::<S, MR, NV>(s, &acc, b, op, &mut yn[at..], g.out_c);
        return;
    }
    let add = bias.map(|b| &b[t.oc..t.oc + t.width]);
    for (m, acc_row) in acc.into_iter().enumerate().take(t.pixels) {
        let at = ((t.oy * g.out_w) + t.ox0 + m) * g.out_c + t.oc;
        store_block::<S, NV>(s, acc_row, add, op, &mut yn[at..at + t.width]);
    }
}

/// Output pixels per depthwise block: each weight vector loaded once serves this many.
const DW_PIXELS: usize = 8;

/// Vectors in the depthwise window buffer (on the stack: 12 KiB with AVX-512, 768 bytes
/// with the scalar backend).
const DW_WINDOW: usize = 192;

/// Depthwise convolution, output channels in vector lanes. With a channel multiplier `m`
/// (output channel `o` reads input channel `o / m`) the copy into the ring loads one input
/// vector and spreads its lanes with a permutation ([`Simd::permute`]).
///
/// For one vector of channels and a strip of output columns, the input rows under the
/// window are copied once into a small ring buffer of vectors, zero-padded left and right;
/// the taps then read aligned vectors with no border cases and no partial loads. A window
/// too tall or wide for the buffer (huge dilations) takes the per-pixel path. 3x3 stride 1
/// layers skip the ring ([`depthwise_stream_3x3`]): each step of theirs reads one vector
/// per input row and does 18 multiply-adds, so the copy would cost more than the reads.
#[inline(always)]
fn conv_depthwise<S: Simd>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    match call.act.epilogue() {
        Epilogue::Relu => depthwise_images(s, call, Relu, x, y),
        Epilogue::Linear(op) => depthwise_images(s, call, op, x, y),
        Epilogue::Plain | Epilogue::Afterwards => depthwise_images(s, call, Unchanged, x, y),
    }
}
kernel_entry!(conv_depthwise(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn depthwise_images<S: Simd>(
    s: S,
    call: ConvCall<'_>,
    op: impl VecOp<S>,
    x: &[f32],
    y: &mut [f32],
) {
    let g = &call.g;
    let c = g.out_c;
    let (image_in, image_out) = (g.in_h * g.in_w * g.in_c, g.out_h * g.out_w * c);
    let span_h = (g.kernel_h - 1) * g.dilation_h + 1;
    let reach_w = (g.kernel_w - 1) * g.dilation_w + 1;
    // Output columns per strip: whole blocks, so that `span_h` window rows of the strip
    // fit the buffer.
    let cols = DW_WINDOW / span_h;
    let strip = match cols.checked_sub(reach_w) {
        Some(spare) => (spare / g.stride_w + 1) / DW_PIXELS * DW_PIXELS,
        None => 0,
    };
    let images = x
        .chunks_exact(image_in)
        .zip(y.chunks_exact_mut(image_out))
        .take(g.batch)
        .map(|(xn, yn)| {
            let dw = Depthwise {
                g,
                x: xn,
                packed: call.packed,
                bias: call.bias,
            };
            (dw, yn)
        });
    if g.is_depthwise_3x3() {
        // Straight from the image: no window to zero.
        for (dw, yn) in images {
            for c0 in (0..c).step_by(S::LANES) {
                depthwise_stream_3x3(s, &dw, op, yn, c0, S::LANES.min(c - c0));
            }
        }
        return;
    }
    // Every window column a block reads is written first, so one zeroing per call will do
    // (7x7 images with many channels would otherwise pay it per vector of channels).
    let mut window = [s.zero(); DW_WINDOW];
    for (dw, yn) in images {
        for c0 in (0..c).step_by(S::LANES) {
            let n = S::LANES.min(c - c0);
            if strip == 0 {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        depthwise_pixel(s, &dw, op, yn, oy, ox, c0, n);
                    }
                }
                continue;
            }
            for ox0 in (0..g.out_w).step_by(strip) {
                let width = strip.min(g.out_w - ox0);
                depthwise_strip(s, &dw, op, &mut window, yn, ox0, width, c0, n);
            }
        }
    }
}

/// What the depthwise helpers read: the shape, one image, the weights and the bias.
struct Depthwise<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    packed: &'a [f32],
    bias: Option<&'a [f32]>,
}

/// The first `n <= LANES` floats of `src` (the rest of the lanes zero).
#[inline(always)]
fn load_n<S: Simd>(s: S, src: &[f32], n: usize) -> S::V {
    if n == S::LANES {
        s.load(src)
    } else {
        s.load_partial(&src[..n], 0.0)
    }
}

/// The input values under output channels `c0..c0 + n` of one pixel `px` (all its input
/// channels): output channel `o` reads input channel `o / multiplier`. With a multiplier,
/// one vector load from input channel `c0 / multiplier` and a lane permutation by
/// `idx = expand_index(c0, multiplier)`.
#[inline(always)]
fn load_expanded<S: Simd>(
    s: S,
    px: &[f32],
    (c0, n): (usize, usize),
    multiplier: usize,
    idx: &[u32; MAX_LANES],
) -> S::V {
    if multiplier == 1 {
        return load_n(s, &px[c0..], n);
    }
    let first = c0 / multiplier;
    let len = S::LANES.min(px.len() - first);
    s.permute(load_n(s, &px[first..], len), idx)
}

/// Lane `l` of the vector of output channels from `c0` reads lane `(c0 + l) / multiplier -
/// c0 / multiplier` of the input vector from channel `c0 / multiplier`.
fn expand_index(c0: usize, multiplier: usize) -> [u32; MAX_LANES] {
    let mut idx = [0; MAX_LANES];
    for (l, i) in idx.iter_mut().enumerate() {
        // At most `l < MAX_LANES`: fits in u32.
        *i = ((c0 + l) / multiplier - c0 / multiplier) as u32;
    }
    idx
}

/// Output columns `ox0..ox0 + width` of every row, channels `c0..c0 + n`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn depthwise_strip<S: Simd>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    window: &mut [S::V; DW_WINDOW],
    yn: &mut [f32],
    ox0: usize,
    width: usize,
    c0: usize,
    n: usize,
) {
    let g = dw.g;
    let c = g.in_c;
    let span_h = (g.kernel_h - 1) * g.dilation_h + 1;
    let multiplier = g.out_c / g.in_c;
    let expand = expand_index(c0, multiplier);
    // Enough columns for whole blocks; those past the strip's last window are zeros.
    let blocks = width.div_ceil(DW_PIXELS);
    let cols = (blocks * DW_PIXELS - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1;
    // Window column `j` holds input column `j + first - g.left` (zero outside the image).
    let first = ox0 * g.stride_w;
    let lead = g.left.saturating_sub(first).min(cols);
    let body = (g.left + g.in_w).saturating_sub(first).min(cols);
    let bias = match dw.bias {
        Some(b) => load_n(s, &b[c0..], n),
        None => s.zero(),
    };
    // Input rows `..next` are in the window already; row `iy` lives in slot `iy % span_h`.
    let mut next = 0;
    for oy in 0..g.out_h {
        let lo = (oy * g.stride_h).saturating_sub(g.top).max(next);
        let hi = (oy * g.stride_h + span_h).saturating_sub(g.top).min(g.in_h);
        for iy in lo..hi {
            let row = &dw.x[iy * g.in_w * c..(iy + 1) * g.in_w * c];
            let slot = &mut window[(iy % span_h) * cols..(iy % span_h + 1) * cols];
            slot[..lead].fill(s.zero());
            if body > lead && multiplier > 1 {
                let pixels = row[(lead + first - g.left) * c..].chunks(c);
                for (v, px) in slot[lead..body].iter_mut().zip(pixels) {
                    *v = load_expanded(s, px, (c0, n), multiplier, &expand);
                }
            } else if body > lead {
                // Channel `c0` of each pixel: offsets `c` apart (plain offsets rather than
                // `chunks`, whose length arithmetic doubled this loop's instructions).
                let at = (lead + first - g.left) * c + c0;
                let inside = slot[lead..body].iter_mut().zip((at..).step_by(c));
                if n == S::LANES {
                    for (v, at) in inside {
                        *v = s.load(&row[at..]);
                    }
                } else {
                    for (v, at) in inside {
                        *v = s.load_partial(&row[at..at + n], 0.0);
                    }
                }
            }
            slot[body.max(lead)..].fill(s.zero());
        }
        next = next.max(hi);
        for m0 in (0..blocks * DW_PIXELS).step_by(DW_PIXELS) {
            let keep = DW_PIXELS.min(width - m0);
            let block = (oy, m0, keep, ox0 + m0, c0, n, bias);
            if keep <= DW_PIXELS / 2 {
                depthwise_block_store::<S, { DW_PIXELS / 2 }>(s, dw, op, window, cols, yn, block);
            } else {
                depthwise_block_store::<S, DW_PIXELS>(s, dw, op, window, cols, yn, block);
            }
        }
    }
}

/// One block of `M` pixels (the first `keep` of them stored): `(oy, m0, keep, ox, c0, n,
/// bias)`.
type DwBlock<S> = (usize, usize, usize, usize, usize, usize, <S as Simd>::V);

/// Computes and stores one block; the common 3-wide stride-1 row gets its own copy with
/// constant offsets: no bounds checks, and each window vector loaded once for all three
/// taps.
#[inline(always)]
fn depthwise_block_store<S: Simd, const M: usize>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    window: &[S::V; DW_WINDOW],
    cols: usize,
    yn: &mut [f32],
    (oy, m0, keep, ox, c0, n, bias): DwBlock<S>,
) {
    let g = dw.g;
    let acc = if (g.kernel_w, g.stride_w, g.dilation_w) == (3, 1, 1) {
        depthwise_block::<S, M>(s, dw, window, cols, oy, m0, c0, n, bias, (3, 1, 1))
    } else {
        let taps = (g.kernel_w, g.stride_w, g.dilation_w);
        depthwise_block::<S, M>(s, dw, window, cols, oy, m0, c0, n, bias, taps)
    };
    depthwise_store(s, g, op, yn, (acc, keep), oy, ox, c0, n);
}

/// `M` outputs of row `oy` from strip column `m0`, read from the window buffer.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn depthwise_block<S: Simd, const M: usize>(
    s: S,
    dw: &Depthwise<'_>,
    window: &[S::V; DW_WINDOW],
    cols: usize,
    oy: usize,
    m0: usize,
    c0: usize,
    n: usize,
    bias: S::V,
    (kernel_w, stride, dilation): (usize, usize, usize),
) -> [S::V; M] {
    let g = dw.g;
    let span_h = (g.kernel_h - 1) * g.dilation_h + 1;
    let mut acc = [bias; M];
    for ky in 0..g.kernel_h {
        let Some(iy) = g.in_row(oy, ky) else { continue };
        let row = &window[(iy % span_h) * cols..(iy % span_h + 1) * cols];
        let taps =
            &row[m0 * stride..m0 * stride + (M - 1) * stride + (kernel_w - 1) * dilation + 1];
        for kx in 0..kernel_w {
            let w = load_n(s, &dw.packed[(ky * kernel_w + kx) * g.out_c + c0..], n);
            for (m, a) in acc.iter_mut().enumerate() {
                *a = s.mul_add(taps[m * stride + kx * dilation], w, *a);
            }
        }
    }
    acc
}

/// Depthwise 3x3, stride 1, dilation 1, channels `c0..c0 + n`: two output rows at a time,
/// streaming across the four input rows under them one column at a time, straight from
/// the image (no copy). Rows whose taps leave the image go one at a time, with zeros for
/// the missing input rows.
#[inline(always)]
fn depthwise_stream_3x3<S: Simd>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    yn: &mut [f32],
    c0: usize,
    n: usize,
) {
    let multiplier = dw.g.out_c / dw.g.in_c;
    if multiplier == 1 && n == S::LANES {
        stream_passes::<S, true>(s, dw, op, yn, (c0, n), (c0, n), Whole);
    } else if multiplier == 1 {
        stream_passes::<S, false>(s, dw, op, yn, (c0, n), (c0, n), Part(n));
    } else {
        // As `load_expanded`: one vector from input channel `c0 / multiplier`, spread.
        let first = c0 / multiplier;
        let len = S::LANES.min(dw.g.in_c - first);
        let spread = Spread(len, expand_index(c0, multiplier));
        stream_passes::<S, false>(s, dw, op, yn, (c0, n), (first, len), spread);
    }
}

/// How [`depthwise_stream_3x3`] loads the input vector under its output channels from a
/// slice that starts at the first input channel they read. (A trait, not a closure: a
/// closure can be compiled out of line, without the kernel's target features.)
trait PixelLoad<S: Simd>: Copy {
    fn load(self, s: S, px: &[f32]) -> S::V;
}

/// A whole vector.
#[derive(Clone, Copy)]
struct Whole;

/// The first `.0` floats.
#[derive(Clone, Copy)]
struct Part(usize);

/// The first `.0` floats, lanes spread by [`Simd::permute`] with index `.1` (a channel
/// multiplier).
#[derive(Clone, Copy)]
struct Spread(usize, [u32; MAX_LANES]);

impl<S: Simd> PixelLoad<S> for Whole {
    #[inline(always)]
    fn load(self, s: S, px: &[f32]) -> S::V {
        s.load(px)
    }
}

impl<S: Simd> PixelLoad<S> for Part {
    #[inline(always)]
    fn load(self, s: S, px: &[f32]) -> S::V {
        s.load_partial(&px[..self.0], 0.0)
    }
}

impl<S: Simd> PixelLoad<S> for Spread {
    #[inline(always)]
    fn load(self, s: S, px: &[f32]) -> S::V {
        s.permute(load_n(s, px, self.0), &self.1)
    }
}

/// [`depthwise_stream_3x3`] for output channels `c0..c0 + n`, which read the `len`
/// input channels from `first` (`px` loads their vector from a slice starting there).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn stream_passes<S: Simd, const FULL: bool>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    yn: &mut [f32],
    (c0, n): (usize, usize),
    (first, len): (usize, usize),
    px: impl PixelLoad<S>,
) {
    let g = dw.g;
    let c = g.in_c;
    let w: [S::V; 9] = core::array::from_fn(|t| load_n(s, &dw.packed[t * g.out_c + c0..], n));
    let bias = match dw.bias {
        Some(b) => load_n(s, &b[c0..], n),
        None => s.zero(),
    };
    let (rw, ow) = (g.in_w * c, g.out_w * g.out_c);
    // Input rows and output rows as slices of one length, so that one bounds check
    // covers the loads (stores) of a column.
    let (last_in, last_out) = ((g.in_w - 1) * c + len, (g.out_w - 1) * g.out_c + n);
    let inside = |oy: usize| oy >= g.top && oy - g.top + 3 <= g.in_h;
    let mut oy = 0;
    while oy < g.out_h {
        let from_oy = &mut yn[oy * ow + c0..];
        let (top, rest) = from_oy.split_at_mut(ow.min(from_oy.len()));
        if oy + 1 < g.out_h && inside(oy) && inside(oy + 1) {
            let src = &dw.x[(oy - g.top) * rw + first..];
            let rows = [
                &src[..last_in],
                &src[rw..][..last_in],
                &src[2 * rw..][..last_in],
                &src[3 * rw..][..last_in],
            ];
            let outs = [&mut top[..last_out], &mut rest[..last_out]];
            stream_rows::<S, FULL, 2, 4>(s, &w, bias, (g, op, outs, n), (rows, [c; 4], px));
            oy += 2;
        } else {
            let (r0, s0) = tap_row(dw, oy, 0, first, last_in);
            let (r1, s1) = tap_row(dw, oy, 1, first, last_in);
            let (r2, s2) = tap_row(dw, oy, 2, first, last_in);
            let outs = [&mut top[..last_out]];
            let rows = ([r0, r1, r2], [s0, s1, s2], px);
            stream_rows::<S, FULL, 1, 3>(s, &w, bias, (g, op, outs, n), rows);
            oy += 1;
        }
    }
}

/// Input row `ky` under output row `oy` from channel `first` (`len` floats, to the last
/// pixel's vector) and the step between its pixels; the zero pixel with step 0 if the row
/// is outside the image.
#[inline(always)]
fn tap_row<'a>(
    dw: &Depthwise<'a>,
    oy: usize,
    ky: usize,
    first: usize,
    len: usize,
) -> (&'a [f32], usize) {
    let g = dw.g;
    match g.in_row(oy, ky) {
        Some(iy) => (&dw.x[iy * g.in_w * g.in_c + first..][..len], g.in_c),
        None => (&ZERO_PIXEL[..], 0),
    }
}

/// `OUT` output rows of [`depthwise_stream_3x3`] (`outs`, from channel `c0`), from the
/// `IN = OUT + 2` input rows under them (`rows`, with the step between pixels of each:
/// 0 for the zero pixel above or below the image). Input column `j` (counting padding) is
/// tap column 2 of output column `j - 2`, which it completes, tap column 1 of `j - 1` and
/// tap column 0 of `j`, which it starts: three accumulators per output row roll along.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn stream_rows<S: Simd, const FULL: bool, const OUT: usize, const IN: usize>(
    s: S,
    w: &[S::V; 9],
    bias: S::V,
    (g, op, mut outs, n): (&Geometry, impl VecOp<S>, [&mut [f32]; OUT], usize),
    (rows, steps, px): ([&[f32]; IN], [usize; IN], impl PixelLoad<S>),
) {
    let mut acc = [[bias; 2]; OUT];
    for j in 0..g.out_w + 2 {
        let ix = j.wrapping_sub(g.left);
        let mut v = [s.zero(); IN];
        if ix < g.in_w {
            for r in 0..IN {
                v[r] = px.load(s, &rows[r][ix * steps[r]..]);
            }
        }
        let mut fresh = [bias; OUT];
        for (o, (a, f)) in acc.iter_mut().zip(fresh.iter_mut()).enumerate() {
            for ky in 0..3 {
                a[0] = s.mul_add(v[o + ky], w[ky * 3 + 2], a[0]);
                a[1] = s.mul_add(v[o + ky], w[ky * 3 + 1], a[1]);
                *f = s.mul_add(v[o + ky], w[ky * 3], *f);
            }
        }
        if j >= 2 {
            let at = (j - 2) * g.out_c;
            for (a, out) in acc.iter().zip(outs.iter_mut()) {
                let v = op.apply(s, a[0]);
                if FULL {
                    s.store(v, &mut out[at..]);
                } else {
                    s.store_partial(v, &mut out[at..at + n]);
                }
            }
        }
        for (a, f) in acc.iter_mut().zip(fresh) {
            *a = [a[1], f];
        }
    }
}

/// Zeros standing in for the pixels of an input row outside the image.
static ZERO_PIXEL: [f32; MAX_LANES] = [0.0; MAX_LANES];

/// Stores the first `keep` pixels of `acc` from column `ox`, channels `c0..c0 + n`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn depthwise_store<S: Simd, const M: usize>(
    s: S,
    g: &Geometry,
    op: impl VecOp<S>,
    yn: &mut [f32],
    (acc, keep): ([S::V; M], usize),
    oy: usize,
    ox: usize,
    c0: usize,
    n: usize,
) {
    let at = (oy * g.out_w + ox) * g.out_c + c0;
    if keep == M && n == S::LANES {
        let acc = acc.map(|a| [a]);
        return store_whole_tile::<S, M, 1>(s, &acc, None, op, &mut yn[at..], g.out_c);
    }
    for (m, a) in acc.into_iter().enumerate().take(keep) {
        let at = (oy * g.out_w + ox + m) * g.out_c + c0;
        let v = op.apply(s, a);
        if n == S::LANES {
            s.store(v, &mut yn[at..at + n]);
        } else {
            s.store_partial(v, &mut yn[at..at + n]);
        }
    }
}

/// One pixel, channels `c0..c0 + n`, any position (taps outside are skipped).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn depthwise_pixel<S: Simd>(
    s: S,
    dw: &Depthwise<'_>,
    op: impl VecOp<S>,
    yn: &mut [f32],
    oy: usize,
    ox: usize,
    c0: usize,
    n: usize,
) {
    let g = dw.g;
    let c = g.in_c;
    let multiplier = g.out_c / g.in_c;
    let expand = expand_index(c0, multiplier);
    let mut acc = match dw.bias {
        Some(b) => load_n(s, &b[c0..], n),
        None => s.zero(),
    };
    for ky in 0..g.kernel_h {
        let Some(iy) = g.in_row(oy, ky) else { continue };
        for kx in 0..g.kernel_w {
            let Some(ix) = g.in_col(ox, kx) else { continue };
            let px = &dw.x[(iy * g.in_w + ix) * c..(iy * g.in_w + ix + 1) * c];
            let xv = load_expanded(s, px, (c0, n), multiplier, &expand);
            let wv = load_n(s, &dw.packed[(ky * g.kernel_w + kx) * g.out_c + c0..], n);
            acc = s.mul_add(xv, wv, acc);
        }
    }
    depthwise_store(s, g, op, yn, ([acc], 1), oy, ox, c0, n);
}

impl ConvCall<'_> {
    /// Picks the path for this validated call and runs it on `engine`'s backend. Each path
    /// is its own `#[target_feature]` function: one function holding all of them made LLVM
    /// allocate registers worse in the hot loops (conv_tiny 21 -> 30 us).
    fn run(self, engine: &Engine, x: &[f32], y: &mut [f32]) {
        let call = self;
        let g = &self.g;
        if g.depthwise {
            conv_depthwise::run(engine, call, x, y);
        } else if g.is_pointwise() {
            let layer = Layer {
                packed: call.packed,
                out: g.out_c,
                inp: g.in_c,
                bias: call.bias,
                act: call.act,
            };
            dense_kernel::run(engine, layer, x, y);
        } else if g.winograd {
            conv_winograd_kernel::run(engine, call, x, y);
        } else if g.is_mono() {
            conv_mono_kernel::run(engine, call, x, y);
        } else if g.is_few_channels() {
            conv_few_kernel::run(engine, call, x, y);
        } else {
            conv_rows_kernel::run(engine, call, x, y);
        }
        engine.activate_rest(self.act, y);
    }
}

#[inline(always)]
fn conv_winograd_kernel<S: Blocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.winograd(call, x, y);
}
kernel_entry!(conv_winograd_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn conv_mono_kernel<S: Blocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.conv::<MONO>(call, x, y);
}
kernel_entry!(conv_mono_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn conv_few_kernel<S: Blocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
    s.conv::<FEW>(call, x, y);
}
kernel_entry!(conv_few_kernel(call: ConvCall<'_>, x: &[f32], y: &mut [f32]));

#[inline(always)]
fn conv_rows_kernel<S: Blocking>(s: S, call: ConvCall<'_>, x: &[f32], y: &mut [f32]) {
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
            self.bias_only(bias, act, call.g.out_c, y);
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

impl Conv2dShape {
    /// Frames of history a streaming 1-D convolution keeps: `(kernel_w - 1) * dilation_w`.
    pub const fn stream_history(&self) -> usize {
        self.kernel_w
            .saturating_sub(1)
            .saturating_mul(self.dilation_w)
    }

    /// Length of the caller-owned state of [`Engine::conv1d_stream`]:
    /// [`Conv2dShape::stream_history`] frames of `in_c` channels.
    ///
    /// ```
    /// use simdnn::Conv2dShape;
    /// let kws = Conv2dShape::conv1d(0, 1, 16, 9);
    /// assert_eq!(kws.stream_state_len(), 8);
    /// ```
    pub const fn stream_state_len(&self) -> usize {
        self.stream_history().saturating_mul(self.in_c)
    }

    /// Length of the scratch [`Engine::conv1d_stream`] needs to process `frames` frames at
    /// once: the history plus the new frames.
    pub const fn stream_scratch_len(&self, frames: usize) -> usize {
        self.stream_history()
            .saturating_add(frames)
            .saturating_mul(self.in_c)
    }
}

impl Engine {
    /// Streaming 1-D convolution: feed frames (NWC, `in_c` channels each) in chunks of any
    /// size and get, chunk by chunk, exactly the outputs of one offline call over the whole
    /// stream with causal padding (`Padding::Explicit { left: (k - 1) * dilation, .. }`,
    /// stride 1). `state` keeps the last [`Conv2dShape::stream_history`] frames between
    /// calls (zeros at the start); `scratch` holds history plus chunk
    /// ([`Conv2dShape::stream_scratch_len`]). The shape's `in_w` and padding are ignored.
    ///
    /// ```
    /// use simdnn::{Activation, Conv2dShape, Engine, PackedConv2d, WeightLayout};
    /// let shape = Conv2dShape::conv1d(0, 1, 1, 3); // y[t] = x[t-2] + 2 x[t-1] + 3 x[t]
    /// let mut storage = vec![0.0; shape.packed_weights_len()];
    /// let w = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &[1.0, 2.0, 3.0], &mut storage)?;
    /// let mut state = [0.0; 2];
    /// let mut scratch = [0.0; 2 + 2];
    /// let (nn, mut y) = (Engine::new(), [0.0; 2]);
    /// nn.conv1d_stream(&shape, &w, None, Activation::Identity, &mut state, &[1.0, 0.0], &mut scratch, &mut y)?;
    /// assert_eq!(y, [3.0, 2.0]);
    /// nn.conv1d_stream(&shape, &w, None, Activation::Identity, &mut state, &[0.0, 0.0], &mut scratch, &mut y)?;
    /// assert_eq!(y, [1.0, 0.0]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv1d_stream(
        &self,
        shape: &Conv2dShape,
        weights: &PackedConv2d<'_>,
        bias: Option<&[f32]>,
        act: Activation,
        state: &mut [f32],
        x: &[f32],
        scratch: &mut [f32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        if shape.kernel_h != 1 || shape.stride_w != 1 || shape.stride_h != 1 {
            return Err(Error::InvalidShape {
                what: "streaming conv1d needs kernel_h = 1 and stride 1",
            });
        }
        if shape.in_c == 0 {
            return Err(Error::ZeroDimension { arg: "in_c" });
        }
        if !x.len().is_multiple_of(shape.in_c) {
            return Err(Error::NotAMultiple {
                arg: "x",
                len: x.len(),
                of: shape.in_c,
            });
        }
        let frames = x.len() / shape.in_c;
        let history = shape.stream_history();
        let total = history.checked_add(frames).ok_or(Error::SizeOverflow {
            what: "stream length",
        })?;
        // Over history + chunk, VALID gives exactly one output per new frame.
        let offline = Conv2dShape {
            batch: 1,
            in_h: 1,
            in_w: if frames == 0 { 0 } else { total },
            padding: Padding::Valid,
            ..*shape
        };
        let state_len = checked_mul(history, shape.in_c, "state length")?;
        check_len("state", state.len(), state_len)?;
        let scratch_len = checked_mul(total, shape.in_c, "scratch length")?;
        check_len("scratch", scratch.len(), scratch_len)?;
        check_len("y", y.len(), checked_mul(frames, shape.out_c, "y length")?)?;
        // Everything the convolution checks, before `scratch` is written.
        let x_len = if frames == 0 { 0 } else { scratch_len };
        let call = ConvCall::checked(&offline, weights, bias, act, x_len, y.len())?;
        if frames == 0 {
            return Ok(());
        }
        scratch[..state_len].copy_from_slice(state);
        scratch[state_len..].copy_from_slice(x);
        call.run(self, scratch, y);
        state.copy_from_slice(&scratch[scratch.len() - state_len..]);
        Ok(())
    }
}

/// Packs fixed-size OHWI weights (`[CO][KH][KW][CI]`, TFLite order, one group) for
/// [`Conv2d`] at compile time. `P` must be `Conv2d::<CI, CO, KH, KW, P>::PACKED_LEN`.
///
/// ```
/// use simdnn::{Conv2d, pack_conv2d};
/// const W: [[[[f32; 3]; 3]; 3]; 8] = [[[[0.1; 3]; 3]; 3]; 8];
/// static PACKED: [f32; Conv2d::<3, 8, 3, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
/// assert_eq!(PACKED.len(), 32 * 27);
/// ```
pub const fn pack_conv2d<
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const P: usize,
>(
    w: &[[[[f32; CI]; KW]; KH]; CO],
) -> [f32; P] {
    const {
        assert!(
            P == Conv2dShape::new(0, 0, CI, CO, KH, KW).packed_weights_len(),
            "P must be PACKED_LEN"
        )
    };
    let mut dst = [0.0; P];
    if Conv2dShape::new(0, 0, CI, CO, KH, KW).uses_winograd() {
        let panels = CO.div_ceil(PANEL);
        let mut o = 0;
        while o < CO {
            let mut c = 0;
            while c < CI {
                let mut kernel = [[0.0; 3]; 3];
                let mut t = 0;
                while t < 9 {
                    kernel[t / 3][t % 3] = w[o][t / 3 % KH][t % 3 % KW][c];
                    t += 1;
                }
                let u = winograd::transform_kernel(kernel);
                let mut p = 0;
                while p < winograd::POSITIONS {
                    dst[winograd::packed_index(CI, panels, p, o, c)] = u[p / 4][p % 4];
                    p += 1;
                }
                c += 1;
            }
            o += 1;
        }
        return dst;
    }
    let k = KH * KW * CI;
    let mut i = 0;
    while i < P {
        let (panel, rest) = (i / (PANEL * k), i % (PANEL * k));
        let (kk, j) = (rest / PANEL, rest % PANEL);
        let o = panel * PANEL + j;
        let (tap, c) = (kk / CI, kk % CI);
        if o < CO {
            dst[i] = w[o][tap / KW][tap % KW][c];
        }
        i += 1;
    }
    dst
}

/// A fixed-size stride-1 2-D convolution (one group) over weights packed at compile time
/// with [`pack_conv2d`]; the image size is a type parameter of each call, so shape errors
/// are compile errors and [`Conv2d::forward_same`] / [`Conv2d::forward_valid`] cannot fail.
/// `P` is the packed length (use `0` to name `PACKED_LEN` before it is known).
///
/// ```
/// use simdnn::{Activation, Conv2d, Engine, pack_conv2d};
/// const W: [[[[f32; 1]; 3]; 3]; 1] = [[[[1.0]; 3]; 3]]; // 3x3 box filter
/// static PACKED: [f32; Conv2d::<1, 1, 3, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
/// let conv = Conv2d::<1, 1, 3, 3, { Conv2d::<1, 1, 3, 3, 0>::PACKED_LEN }>::new(&PACKED, None, Activation::Identity);
/// let x = [[[1.0f32]; 4]; 4];
/// let mut y = [[[0.0f32]; 4]; 4];
/// conv.forward_same(&Engine::new(), &x, &mut y);
/// assert_eq!(y[0][0], [4.0]);
/// assert_eq!(y[1][1], [9.0]);
/// ```
///
/// A VALID output of the wrong size does not compile:
///
/// ```compile_fail
/// use simdnn::{Activation, Conv2d, Engine, pack_conv2d};
/// const W: [[[[f32; 1]; 3]; 3]; 1] = [[[[1.0]; 3]; 3]];
/// static PACKED: [f32; Conv2d::<1, 1, 3, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
/// let conv = Conv2d::<1, 1, 3, 3, { Conv2d::<1, 1, 3, 3, 0>::PACKED_LEN }>::new(&PACKED, None, Activation::Identity);
/// let mut y = [[[0.0f32]; 3]; 3]; // must be 2x2
/// conv.forward_valid(&Engine::new(), &[[[1.0f32]; 4]; 4], &mut y);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Conv2d<
    'w,
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const P: usize,
> {
    packed: &'w [f32; P],
    bias: Option<&'w [f32; CO]>,
    act: Activation,
}

impl<'w, const CI: usize, const CO: usize, const KH: usize, const KW: usize, const P: usize>
    Conv2d<'w, CI, CO, KH, KW, P>
{
    /// Length of the packed weights.
    pub const PACKED_LEN: usize = Conv2dShape::new(0, 0, CI, CO, KH, KW).packed_weights_len();

    /// A layer over packed weights (from [`pack_conv2d`]), optional bias and activation.
    pub const fn new(packed: &'w [f32; P], bias: Option<&'w [f32; CO]>, act: Activation) -> Self {
        const { assert!(P == Self::PACKED_LEN && CI > 0 && CO > 0 && KH > 0 && KW > 0) };
        Conv2d { packed, bias, act }
    }

    /// SAME padding: the output has the input's height and width.
    pub fn forward_same<const H: usize, const W: usize>(
        &self,
        engine: &Engine,
        x: &[[[f32; CI]; W]; H],
        y: &mut [[[f32; CO]; W]; H],
    ) {
        self.run(
            engine,
            H,
            W,
            Padding::Same,
            x.as_flattened().as_flattened(),
            y.as_flattened_mut().as_flattened_mut(),
        );
    }

    /// VALID padding: the output is `(H - KH + 1) x (W - KW + 1)`.
    pub fn forward_valid<const H: usize, const W: usize, const OH: usize, const OW: usize>(
        &self,
        engine: &Engine,
        x: &[[[f32; CI]; W]; H],
        y: &mut [[[f32; CO]; OW]; OH],
    ) {
        const {
            assert!(
                H >= KH && W >= KW && OH == H - KH + 1 && OW == W - KW + 1,
                "output must be (H-KH+1) x (W-KW+1)"
            )
        };
        self.run(
            engine,
            H,
            W,
            Padding::Valid,
            x.as_flattened().as_flattened(),
            y.as_flattened_mut().as_flattened_mut(),
        );
    }

    fn run(&self, engine: &Engine, h: usize, w: usize, padding: Padding, x: &[f32], y: &mut [f32]) {
        let shape = Conv2dShape::new(h, w, CI, CO, KH, KW).with_padding(padding);
        // Every size is fixed by the types and checked at compile time, so the shape is valid
        // (a 0-sized image simply has no output).
        if let Ok(g) = shape.geometry() {
            if g.output_len == 0 {
                return;
            }
            let (packed, bias, act) = (
                self.packed.as_slice(),
                self.bias.map(|b| b.as_slice()),
                self.act,
            );
            let call = ConvCall {
                g,
                packed,
                bias,
                act,
            };
            call.run(engine, x, y);
        }
    }
}
