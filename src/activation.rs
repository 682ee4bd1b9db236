//! Element-wise activations, in place and out of place, and the [`Activation`] that dense
//! (and later conv/recurrent) kernels fuse into their output.

use crate::dispatch::kernel_entry;
use crate::error::check_len;
use crate::math;
use crate::simd::{Simd, VecOp, map, map_in_place};
use crate::{Engine, Error};

/// An element-wise function applied to a kernel's output.
///
/// Error bounds (max over every f32 input, against f64, see the crate docs): `Exp` 2 ulp,
/// `Tanh` and `Sigmoid` 4 ulp; results below about 2.4e-38 are flushed to 0.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    /// `x`.
    #[default]
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu(f32),
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    Sigmoid,
    /// GELU, tanh approximation (PyTorch `approximate="tanh"`, Keras `approximate=True`).
    /// Saturates to `-0.0` for large negative finite `x`; `-inf` gives NaN.
    Gelu,
    /// SiLU / swish `x * sigmoid(x)`; `-inf` gives NaN.
    Silu,
    /// `e^x` (Keras `exponential`).
    Exp,
}

impl Activation {
    /// Applies the activation to one vector.
    #[inline(always)]
    pub(crate) fn apply<S: Simd>(self, s: S, v: S::V) -> S::V {
        match self {
            Activation::Identity => v,
            Activation::Relu => s.max(s.zero(), v),
            Activation::Relu6 => s.min(s.splat(6.0), s.max(s.zero(), v)),
            Activation::LeakyRelu(alpha) => {
                s.select(s.lt(v, s.zero()), s.mul(v, s.splat(alpha)), v)
            }
            Activation::Tanh => math::tanh(s, v),
            Activation::Sigmoid => math::sigmoid(s, v),
            Activation::Gelu => math::gelu(s, v),
            Activation::Silu => math::silu(s, v),
            Activation::Exp => math::exp(s, v),
        }
    }
}

impl<S: Simd> VecOp<S> for Activation {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        Activation::apply(self, s, v)
    }
}

/// Where a kernel applies its activation: decided here once for dense and conv.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue {
    /// Nothing to apply (`Identity`).
    Plain,
    /// `max(v, 0)` in the tile stores, with its own kernel copy (no `match` per store).
    Relu,
    /// Relu6 or LeakyRelu in the tile stores: a few instructions per vector.
    Linear(PiecewiseLinear),
    /// The exp-based ones, as a pass of their own over the finished output
    /// ([`Engine::activate_rest`]): their code inside a kernel, even after its loops, made
    /// LLVM spill the tile's registers (AVX2 GEMM 64x256x256 80 -> 131 us).
    Afterwards,
}

impl Activation {
    pub(crate) fn epilogue(self) -> Epilogue {
        match self {
            Activation::Identity => Epilogue::Plain,
            Activation::Relu => Epilogue::Relu,
            Activation::Relu6 | Activation::LeakyRelu(_) => Epilogue::Linear(PiecewiseLinear(self)),
            _ => Epilogue::Afterwards,
        }
    }
}

/// Relu6 or LeakyRelu as a store epilogue (see [`Epilogue::Linear`]).
#[derive(Clone, Copy)]
pub(crate) struct PiecewiseLinear(Activation);

impl<S: Simd> VecOp<S> for PiecewiseLinear {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        match self.0 {
            Activation::Relu6 | Activation::LeakyRelu(_) => self.0.apply(s, v),
            _ => v,
        }
    }
}

/// Out of place. Each arm passes a constant, so after inlining every activation gets its
/// own loop with the `match` folded away.
#[inline(always)]
fn activate_kernel<S: Simd>(s: S, act: Activation, x: &[f32], y: &mut [f32]) {
    match act {
        Activation::Identity => y.copy_from_slice(x),
        Activation::Relu => map(s, x, y, Activation::Relu),
        Activation::Relu6 => map(s, x, y, Activation::Relu6),
        Activation::LeakyRelu(a) => map(s, x, y, Activation::LeakyRelu(a)),
        Activation::Tanh => map(s, x, y, Activation::Tanh),
        Activation::Sigmoid => map(s, x, y, Activation::Sigmoid),
        Activation::Gelu => map(s, x, y, Activation::Gelu),
        Activation::Silu => map(s, x, y, Activation::Silu),
        Activation::Exp => map(s, x, y, Activation::Exp),
    }
}
kernel_entry!(activate_kernel(act: Activation, x: &[f32], y: &mut [f32]));

/// In place; see [`activate_kernel`].
#[inline(always)]
pub(crate) fn activate_in_place_kernel<S: Simd>(s: S, act: Activation, x: &mut [f32]) {
    match act {
        Activation::Identity => {}
        Activation::Relu => map_in_place(s, x, Activation::Relu),
        Activation::Relu6 => map_in_place(s, x, Activation::Relu6),
        Activation::LeakyRelu(a) => map_in_place(s, x, Activation::LeakyRelu(a)),
        Activation::Tanh => map_in_place(s, x, Activation::Tanh),
        Activation::Sigmoid => map_in_place(s, x, Activation::Sigmoid),
        Activation::Gelu => map_in_place(s, x, Activation::Gelu),
        Activation::Silu => map_in_place(s, x, Activation::Silu),
        Activation::Exp => map_in_place(s, x, Activation::Exp),
    }
}
kernel_entry!(activate_in_place_kernel(act: Activation, x: &mut [f32]));

impl Engine {
    /// `y[i] = act(x[i])`. Fails only if `y.len() != x.len()`.
    ///
    /// ```
    /// use simdnn::{Activation, Engine};
    /// let x = [-1.0, 0.5, 8.0];
    /// let mut y = [0.0; 3];
    /// Engine::new().activate(Activation::Relu6, &x, &mut y)?;
    /// assert_eq!(y, [0.0, 0.5, 6.0]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn activate(&self, act: Activation, x: &[f32], y: &mut [f32]) -> Result<(), Error> {
        check_len("y", y.len(), x.len())?;
        activate_kernel::run(self, act, x, y);
        Ok(())
    }

    /// `x[i] = act(x[i])`; any length.
    ///
    /// ```
    /// use simdnn::{Activation, Engine};
    /// let mut x = [0.0f32, 100.0, -100.0];
    /// Engine::new().activate_in_place(Activation::Tanh, &mut x);
    /// assert_eq!(x, [0.0, 1.0, -1.0]);
    /// ```
    pub fn activate_in_place(&self, act: Activation, x: &mut [f32]) {
        activate_in_place_kernel::run(self, act, x);
    }

    /// The activations kernels leave out of their store epilogues
    /// ([`Epilogue::Afterwards`]), as a pass of their own over the finished output `y`, in
    /// a `#[target_feature]` function of its own.
    pub(crate) fn activate_rest(&self, act: Activation, y: &mut [f32]) {
        if let Epilogue::Afterwards = act.epilogue() {
            self.activate_in_place(act, y);
        }
    }

    /// Fixed-size out-of-place form: lengths are checked by the type system.
    ///
    /// ```
    /// use simdnn::{Activation, Engine};
    /// let mut y = [0.0; 2];
    /// Engine::new().activate_array(Activation::Sigmoid, &[0.0, 0.0], &mut y);
    /// assert_eq!(y, [0.5, 0.5]);
    /// ```
    ///
    /// Mismatched sizes do not compile:
    ///
    /// ```compile_fail
    /// use simdnn::{Activation, Engine};
    /// let mut y = [0.0; 3];
    /// Engine::new().activate_array(Activation::Relu, &[0.0, 0.0], &mut y);
    /// ```
    pub fn activate_array<const N: usize>(&self, act: Activation, x: &[f32; N], y: &mut [f32; N]) {
        let (x, y) = (x.as_slice(), y.as_mut_slice());
        activate_kernel::run(self, act, x, y);
    }
}
