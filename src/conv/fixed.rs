//! The fixed-size layer: const-generic shapes, arrays in and out, cannot fail.

use super::ConvCall;
use super::shape::{Conv2dShape, ConvPath, Padding, choose_path};
use crate::Engine;
use crate::ops::Activation;

/// A fixed-size stride-1 2-D convolution (one group) over weights packed at compile time
/// with [`pack_conv2d`](crate::pack_conv2d); the image size is a type parameter of each call, so shape errors
/// are compile errors and [`Conv2d::forward_same`] / [`Conv2d::forward_valid`] cannot fail.
/// `P` is the packed length: name it `Conv2d::<CI, CO, KH, KW, 0>::PACKED_LEN` where a
/// length is needed (the storage's array type), and let the compiler infer it elsewhere:
/// `Conv2d::<CI, CO, KH, KW, _>::new(&PACKED, ..)`.
///
/// ```
/// use simdnn::{Activation, Conv2d, Engine, pack_conv2d};
/// const W: [[[[f32; 1]; 3]; 3]; 1] = [[[[1.0]; 3]; 3]]; // 3x3 box filter
/// static PACKED: [f32; Conv2d::<1, 1, 3, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
/// let conv = Conv2d::<1, 1, 3, 3, _>::new(&PACKED, None, Activation::Identity);
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

    /// The kernel this layer runs on, decided at compile time: a firmware using only this
    /// layer links only this kernel (whatever the `conv-*` features say).
    ///
    /// ```
    /// use simdnn::{Conv2d, ConvPath};
    /// assert_eq!(Conv2d::<16, 32, 3, 3, 0>::PATH, ConvPath::Winograd);
    /// assert_eq!(Conv2d::<1, 8, 1, 9, 0>::PATH, ConvPath::OneChannel);
    /// ```
    pub const PATH: ConvPath = choose_path(
        false,
        KH == 1 && KW == 1,
        Conv2dShape::new(0, 0, CI, CO, KH, KW).uses_winograd(),
        1,
        CI,
        (KH, KW),
        (1, 1),
    );

    /// A layer over packed weights (from [`pack_conv2d`](crate::pack_conv2d)), optional bias and activation.
    pub const fn new(packed: &'w [f32; P], bias: Option<&'w [f32; CO]>, act: Activation) -> Self {
        const {
            assert!(
                P == Self::PACKED_LEN,
                "wrong packed length P: use [f32; Conv2d::<CI, CO, KH, KW, 0>::PACKED_LEN]"
            );
            assert!(
                CI > 0 && CO > 0 && KH > 0 && KW > 0,
                "every size must be at least 1"
            );
        };
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
            call.run_path(Self::PATH, engine, x, y);
        }
    }
}

/// A fixed-size streaming 1-D convolution (causal; strided with [`Conv1dStream::push`]): one frame of `CI` channels
/// in, one frame of `CO` out, over `K` taps. The state is the caller's `window`, the last
/// `K` frames (oldest first, zeros at the start of a stream), so a firmware keeps it in a
/// `static` or on its stack; the outputs are exactly those of
/// [`Engine::conv1d_stream`](crate::Engine::conv1d_stream) and of one offline causal
/// convolution. The path is decided at compile time ([`Conv1dStream::PATH`]): a firmware
/// using only this links only that kernel. Cannot fail.
///
/// ```
/// use simdnn::{Activation, Conv1dStream, Engine, pack_conv2d};
/// // y[t] = x[t-2] + 2 x[t-1] + 3 x[t], one channel in and out: W is [CO][1][K][CI].
/// const W: [[[[f32; 1]; 3]; 1]; 1] = [[[[1.0], [2.0], [3.0]]]];
/// static PACKED: [f32; Conv1dStream::<1, 1, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
/// let conv = Conv1dStream::<1, 1, 3, _>::new(&PACKED, None, Activation::Identity);
/// let (nn, mut window, mut y) = (Engine::new(), [[0.0f32; 1]; 3], [0.0f32; 1]);
/// for (x, want) in [(1.0, 3.0), (0.0, 2.0), (0.0, 1.0), (0.0, 0.0)] {
///     conv.step(&nn, &mut window, &[x], &mut y);
///     assert_eq!(y, [want]);
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Conv1dStream<'w, const CI: usize, const CO: usize, const K: usize, const P: usize> {
    layer: Conv2d<'w, CI, CO, 1, K, P>,
}

impl<'w, const CI: usize, const CO: usize, const K: usize, const P: usize>
    Conv1dStream<'w, CI, CO, K, P>
{
    /// Length of the packed weights (from [`pack_conv2d`](crate::pack_conv2d) of the
    /// `[CO][1][K][CI]` weights).
    pub const PACKED_LEN: usize = Conv2d::<CI, CO, 1, K, P>::PACKED_LEN;

    /// The kernel this layer runs on, decided at compile time.
    pub const PATH: ConvPath = Conv2d::<CI, CO, 1, K, P>::PATH;

    /// A layer over packed weights, optional bias and activation.
    pub const fn new(packed: &'w [f32; P], bias: Option<&'w [f32; CO]>, act: Activation) -> Self {
        Conv1dStream {
            layer: Conv2d::new(packed, bias, act),
        }
    }

    /// Shifts `frame` into `window` (dropping the oldest frame) without computing: the
    /// frames between outputs of a strided stream. Feeding a stream with `step` on every
    /// `s`-th frame (the first included) and `push` on the others gives the offline causal
    /// convolution with stride `s`, as [`Engine::conv1d_stream`](crate::Engine::conv1d_stream)
    /// does with `with_stride(1, s)`.
    ///
    /// ```
    /// use simdnn::{Activation, Conv1dStream, Engine, pack_conv2d};
    /// // Stride 2: y[t] = x[2t - 1] + x[2t].
    /// static PACKED: [f32; Conv1dStream::<1, 1, 2, 0>::PACKED_LEN] = pack_conv2d(&[[[[1.0], [1.0]]]]);
    /// let conv = Conv1dStream::<1, 1, 2, _>::new(&PACKED, None, Activation::Identity);
    /// let (nn, mut window, mut y) = (Engine::new(), [[0.0f32; 1]; 2], [0.0f32; 1]);
    /// let mut out = Vec::new();
    /// for (t, x) in [1.0, 2.0, 3.0, 4.0, 5.0].iter().enumerate() {
    ///     if t % 2 == 0 {
    ///         conv.step(&nn, &mut window, &[*x], &mut y);
    ///         out.push(y[0]);
    ///     } else {
    ///         conv.push(&mut window, &[*x]);
    ///     }
    /// }
    /// assert_eq!(out, [1.0, 5.0, 9.0]);
    /// ```
    pub fn push(&self, window: &mut [[f32; CI]; K], frame: &[f32; CI]) {
        window.copy_within(1.., 0);
        window[K - 1] = *frame;
    }

    /// Feeds `frame`: shifts it into `window` (dropping the oldest frame) and writes the
    /// output frame to `y`.
    pub fn step(
        &self,
        engine: &Engine,
        window: &mut [[f32; CI]; K],
        frame: &[f32; CI],
        y: &mut [f32; CO],
    ) {
        self.push(window, frame);
        let (x, y) = (window.as_flattened(), y.as_mut_slice());
        self.layer.run(engine, 1, K, Padding::Valid, x, y);
    }
}
