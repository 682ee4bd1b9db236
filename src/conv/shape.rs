//! Convolution shapes: padding rules, the algorithm choice, `Conv2dShape` and its
//! validation into a `Geometry` (every derived size and coordinate bound checked once).

use super::depthwise::DW_PIXELS;
use super::few::FEW_CHANNELS;
use super::mono::{MONO_TILE_MAX, MONO_WINDOW};
use super::rows::PADDED_ROWS;
use super::winograd;
use crate::Error;
use crate::error::checked_mul;
use crate::gemm::PANEL;
use core::num::NonZeroUsize;

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

/// The kernel a convolution shape runs on ([`Conv2dShape::path`]), chosen from the shape
/// alone. Each has its own speed profile (the report prints GFLOP/s per path), so models
/// are tuned by it: e.g. a 3x3 layer with 8 to 64 input channels takes Winograd, 2.25x
/// fewer multiply-adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConvPath {
    /// 1x1, stride 1, no padding, one group: the dense GEMM over pixels.
    Pointwise,
    /// One group per input channel (any channel multiplier): channels in vector lanes.
    Depthwise,
    /// 3x3, stride 1, dilation 1, one group, 8 to 64 input channels, and
    /// [`ConvAlgorithm::Auto`]: Winograd F(2x2, 3x3).
    Winograd,
    /// One input channel, stride 1 across (mono audio, grayscale): tiles of windows one
    /// float apart.
    OneChannel,
    /// Up to 4 input channels otherwise (RGB first layers, sensor streams): the tap rows
    /// under a tile copied to the stack.
    FewChannels,
    /// Everything else: the implicit GEMM (no im2col buffer).
    ImplicitGemm,
}

impl ConvPath {
    /// The cargo feature that compiles this path into the runtime-shaped API
    /// ([`Engine::conv2d`](crate::Engine::conv2d), [`Engine::conv1d_stream`](crate::Engine::conv1d_stream)):
    /// `conv-pointwise`, `conv-depthwise`, `conv-winograd`, `conv-one-channel`,
    /// `conv-few-channels` or `conv-implicit-gemm`, all on by default. A firmware that turns
    /// off the default features names the ones its shapes need and links only those
    /// kernels; a shape whose path was left out is an [`Error::FeatureDisabled`]. The
    /// fixed-size [`Conv2d`](crate::Conv2d) needs none: it links its own path.
    ///
    /// ```
    /// use simdnn::{Conv2dShape, ConvPath};
    /// let kws = Conv2dShape::conv1d(16000, 1, 16, 9);
    /// assert_eq!(kws.path()?.feature(), "conv-one-channel");
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub const fn feature(self) -> &'static str {
        match self {
            ConvPath::Pointwise => "conv-pointwise",
            ConvPath::Depthwise => "conv-depthwise",
            ConvPath::Winograd => "conv-winograd",
            ConvPath::OneChannel => "conv-one-channel",
            ConvPath::FewChannels => "conv-few-channels",
            ConvPath::ImplicitGemm => "conv-implicit-gemm",
        }
    }

    /// Whether this build's runtime-shaped API has this path ([`ConvPath::feature`]).
    pub const fn is_compiled(self) -> bool {
        match self {
            ConvPath::Pointwise => cfg!(feature = "conv-pointwise"),
            ConvPath::Depthwise => cfg!(feature = "conv-depthwise"),
            ConvPath::Winograd => cfg!(feature = "conv-winograd"),
            ConvPath::OneChannel => cfg!(feature = "conv-one-channel"),
            ConvPath::FewChannels => cfg!(feature = "conv-few-channels"),
            ConvPath::ImplicitGemm => cfg!(feature = "conv-implicit-gemm"),
        }
    }
}

/// The shape and options of a 2-D convolution. Start from [`Conv2dShape::new`] (input
/// height, width and channels, output channels, kernel height and width) and adjust with the
/// `with_*` methods, or name every field and take the rest from [`Default`] (batch 1,
/// stride 1, dilation 1, `Valid` padding, one group); every field is public.
///
/// ```
/// use simdnn::Conv2dShape;
/// let named = Conv2dShape {
///     in_h: 28,
///     in_w: 28,
///     in_c: 1,
///     out_c: 8,
///     kernel_h: 5,
///     kernel_w: 5,
///     ..Default::default()
/// };
/// assert_eq!(named, Conv2dShape::new(28, 28, 1, 8, 5, 5));
/// ```
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

/// Every size 0 (set them), batch 1, stride 1, dilation 1, `Valid` padding, one group,
/// [`ConvAlgorithm::Auto`].
impl Default for Conv2dShape {
    fn default() -> Self {
        Conv2dShape::new(0, 0, 0, 0, 0, 0)
    }
}

impl Conv2dShape {
    /// `in_h x in_w x in_c` input, `out_c` output channels, a `kernel_h x kernel_w` kernel;
    /// batch 1, stride 1, dilation 1, `Valid` padding, one group.
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
    /// (For [`Engine::conv1d_stream`](crate::Engine::conv1d_stream) the length is not
    /// used: pass 0.)
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

    /// The kernel this shape runs on, or why the shape is invalid.
    ///
    /// ```
    /// use simdnn::{Conv2dShape, ConvAlgorithm, ConvPath};
    /// assert_eq!(Conv2dShape::new(16, 16, 16, 32, 3, 3).path()?, ConvPath::Winograd);
    /// let direct = Conv2dShape::new(16, 16, 16, 32, 3, 3).with_algorithm(ConvAlgorithm::Direct);
    /// assert_eq!(direct.path()?, ConvPath::ImplicitGemm);
    /// assert_eq!(Conv2dShape::new(8, 8, 32, 64, 1, 1).path()?, ConvPath::Pointwise);
    /// assert_eq!(Conv2dShape::conv1d(100, 1, 8, 9).path()?, ConvPath::OneChannel);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn path(&self) -> Result<ConvPath, Error> {
        self.geometry().map(|g| g.path())
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

    /// Length of the weights in any [`WeightLayout`](crate::WeightLayout): `out_c * KH * KW * in_c / groups`.
    pub fn weights_len(&self) -> Result<usize, Error> {
        self.geometry().map(|g| g.weights_len)
    }

    /// Length of the packed weights ([`PackedConv2d::pack`](crate::PackedConv2d::pack)); 0 if the shape is invalid
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
    /// direct convolution's (see [`Engine::conv2d`](crate::Engine::conv2d) and [`ConvAlgorithm::Direct`]).
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
    pub(super) const fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_c
    }

    /// The geometry of the kernel alone (spatial size and padding ignored): what weight
    /// packing and layout conversion need.
    pub(super) fn kernel_geometry(&self) -> Result<Geometry, Error> {
        let kernel_only = Conv2dShape {
            in_h: 0,
            in_w: 0,
            padding: Padding::Valid,
            ..*self
        };
        kernel_only.geometry()
    }

    /// Everything the kernels need, with every product checked for overflow.
    pub(super) fn geometry(&self) -> Result<Geometry, Error> {
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
            // Nonzero as checked above, and so for the compiler: no division that can panic.
            let stride = NonZeroUsize::new(stride).ok_or(Error::ZeroDimension { arg: "stride" })?;
            let (before, after) = match pad {
                Some(p) => p,
                None => {
                    // SAME: out = ceil(len / stride), odd padding after.
                    let out = len / stride + usize::from(len % stride != 0);
                    if out == 0 {
                        return Ok((0, 0, 0));
                    }
                    let need = (out - 1)
                        .checked_mul(stride.get())
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
        let in_per_group = s.in_c.checked_div(s.groups).unwrap_or(0);
        let weights_len = checked_mul(
            checked_mul(taps, in_per_group, "weights length")?,
            s.out_c,
            "weights length",
        )?;
        let out_per_group = s.out_c.checked_div(s.groups).unwrap_or(0);
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
    pub(super) batch: usize,
    pub(super) in_h: usize,
    pub(super) in_w: usize,
    pub(super) in_c: usize,
    pub(super) out_c: usize,
    pub(super) out_h: usize,
    pub(super) out_w: usize,
    pub(super) kernel_h: usize,
    pub(super) kernel_w: usize,
    pub(super) stride_h: usize,
    pub(super) stride_w: usize,
    pub(super) dilation_h: usize,
    pub(super) dilation_w: usize,
    pub(super) top: usize,
    pub(super) left: usize,
    pub(super) groups: usize,
    pub(super) in_per_group: usize,
    pub(super) out_per_group: usize,
    pub(super) depthwise: bool,
    pub(super) winograd: bool,
    pub(super) input_len: usize,
    pub(super) output_len: usize,
    pub(super) weights_len: usize,
}

impl Geometry {
    /// The kernel this validated shape runs on.
    pub(super) fn path(&self) -> ConvPath {
        choose_path(
            self.depthwise,
            self.is_pointwise(),
            self.winograd,
            self.groups,
            self.in_c,
            (self.kernel_h, self.kernel_w),
            (self.stride_w, self.dilation_w),
        )
    }

    /// Taps per output channel: `KH * KW * in_per_group`.
    pub(super) fn k(&self) -> usize {
        self.kernel_h * self.kernel_w * self.in_per_group
    }
    /// The pointwise case: one GEMM over all pixels.
    pub(super) fn is_pointwise(&self) -> bool {
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
    /// Input row `iy` for output row `oy` and tap row `ky`, if inside the image.
    #[inline(always)]
    pub(super) fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride_h + ky * self.dilation_h)
            .checked_sub(self.top)
            .filter(|&r| r < self.in_h)
    }
    /// Depthwise 3x3, stride 1, dilation 1: the depthwise path's own streaming kernel.
    #[inline(always)]
    pub(super) fn is_depthwise_3x3(&self) -> bool {
        self.depthwise
            && (self.kernel_h, self.stride_h, self.dilation_h) == (3, 1, 1)
            && (self.kernel_w, self.stride_w, self.dilation_w) == (3, 1, 1)
    }
    /// Input column for output column `ox` and tap column `kx`, if inside the image.
    #[inline(always)]
    pub(super) fn in_col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.stride_w + kx * self.dilation_w)
            .checked_sub(self.left)
            .filter(|&c| c < self.in_w)
    }
}

/// The path of a valid shape, from the facts that decide it (`pointwise`: 1x1, stride 1, no
/// padding, one group). A `const fn`, so the fixed-size layer decides at compile time and
/// links that one kernel:
/// - one input channel, stride 1 and dilation 1 across, one group, and a kernel row narrow
///   enough for the one-channel kernel's stack window (whatever the backend's tile width);
/// - otherwise at most [`FEW_CHANNELS`] input channels, one group, dilation 1 across, and
///   the tap rows under a tile of the widest backend fit the few-channel stack buffer.
pub(super) const fn choose_path(
    depthwise: bool,
    pointwise: bool,
    winograd: bool,
    groups: usize,
    in_c: usize,
    (kernel_h, kernel_w): (usize, usize),
    (stride_w, dilation_w): (usize, usize),
) -> ConvPath {
    let one_group_dense_rows = groups == 1 && dilation_w == 1;
    if depthwise {
        ConvPath::Depthwise
    } else if pointwise {
        ConvPath::Pointwise
    } else if winograd {
        ConvPath::Winograd
    } else if one_group_dense_rows
        && in_c == 1
        && stride_w == 1
        && kernel_w + MONO_TILE_MAX <= MONO_WINDOW
    {
        ConvPath::OneChannel
    } else if one_group_dense_rows
        && in_c <= FEW_CHANNELS
        && ((MONO_TILE_MAX - 1) * stride_w + kernel_w) * in_c * kernel_h <= PADDED_ROWS
    {
        ConvPath::FewChannels
    } else {
        ConvPath::ImplicitGemm
    }
}
