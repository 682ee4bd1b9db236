//! The [`Activation`] a kernel fuses into its output, and where it is applied: in the
//! stores of a tile ([`Epilogue`], chosen once by [`with_epilogue!`]) or as one pass over
//! the finished output ([`finish`]).

use super::map::{VecOp, map_in_place};
use crate::Engine;
use crate::engine::kernel_entry;
use crate::simd::Simd;
use crate::vmath::{self, VecMath};

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
    pub(crate) fn apply<S: VecMath>(self, s: S, v: S::V) -> S::V {
        match self {
            Activation::Identity => v,
            Activation::Relu => s.max(s.zero(), v),
            Activation::Relu6 => s.min(s.splat(6.0), s.max(s.zero(), v)),
            Activation::LeakyRelu(alpha) => {
                s.select(s.lt(v, s.zero()), s.mul(v, s.splat(alpha)), v)
            }
            Activation::Tanh => vmath::tanh(s, v),
            Activation::Sigmoid => vmath::sigmoid(s, v),
            Activation::Gelu => vmath::gelu(s, v),
            Activation::Silu => vmath::silu(s, v),
            Activation::Exp => vmath::exp(s, v),
        }
    }
}

impl<S: VecMath> VecOp<S> for Activation {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        Activation::apply(self, s, v)
    }
}

/// Where a kernel applies its activation: decided here once for every family.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue {
    /// Nothing to apply (`Identity`).
    Plain,
    /// `max(v, 0)` in the tile stores, with its own kernel copy (no `match` per store).
    Relu,
    /// Relu6 or LeakyRelu in the tile stores: a few instructions per vector.
    Linear(PiecewiseLinear),
    /// The exp-based ones, as a pass of their own over the finished output
    /// ([`finish`]): their code inside a kernel, even after its loops, made
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

/// Every store epilogue in one: ReLU, ReLU6 or leaky ReLU, matched per stored vector, others
/// left to [`finish`]. Where code size comes first (`Simd::SMALL_CODE`) a kernel has one copy
/// with this instead of one per [`Epilogue`].
#[derive(Clone, Copy)]
pub(crate) struct AnyEpilogue(pub(crate) Activation);

impl<S: Simd> VecOp<S> for AnyEpilogue {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        match self.0 {
            Activation::Relu => s.max(s.zero(), v),
            Activation::Relu6 => s.min(s.splat(6.0), s.max(s.zero(), v)),
            Activation::LeakyRelu(alpha) => {
                s.select(s.lt(v, s.zero()), s.mul(v, s.splat(alpha)), v)
            }
            _ => v,
        }
    }
}

impl<S: Simd> VecOp<S> for PiecewiseLinear {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        match self.0 {
            Activation::Relu6 => s.min(s.splat(6.0), s.max(s.zero(), v)),
            Activation::LeakyRelu(alpha) => {
                s.select(s.lt(v, s.zero()), s.mul(v, s.splat(alpha)), v)
            }
            _ => v,
        }
    }
}

/// Runs `$body` with `$op` bound to the store epilogue of `$act` (a [`VecOp`]): `max(v, 0)`,
/// the piecewise-linear ones, or nothing (the exp-based activations are left to
/// [`finish`]). Each arm is its own copy of the body, so no tile store holds a `match`.
macro_rules! with_epilogue {
    ($s:ty, $act:expr, $op:ident => $body:expr) => {
        // Where code size comes first, one copy of the body, the activation matched per
        // stored vector.
        if <$s as $crate::simd::Simd>::SMALL_CODE {
            let $op = $crate::ops::AnyEpilogue($act);
            $body
        } else {
            match $act.epilogue() {
                $crate::ops::Epilogue::Relu => {
                    let $op = $crate::ops::Relu;
                    $body
                }
                $crate::ops::Epilogue::Linear($op) => $body,
                $crate::ops::Epilogue::Plain | $crate::ops::Epilogue::Afterwards => {
                    let $op = $crate::ops::Unchanged;
                    $body
                }
            }
        }
    };
}
pub(crate) use with_epilogue;

/// `x[i] = act(x[i])`. Each arm passes a constant, so after inlining every activation gets
/// its own loop with the `match` folded away.
#[inline(always)]
pub(crate) fn activate_in_place_kernel<S: VecMath>(s: S, act: Activation, x: &mut [f32]) {
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

/// The activations a kernel left out of its store epilogues ([`Epilogue::Afterwards`]), as
/// one pass of their own over the finished output `y`.
pub(crate) fn finish(engine: &Engine, act: Activation, y: &mut [f32]) {
    if let Epilogue::Afterwards = act.epilogue() {
        activate_in_place_kernel::run(engine, act, y);
    }
}

/// A layer without inputs: every `out`-wide row of `y` is `act(bias)` (or `act(0)`).
pub(crate) fn bias_only(
    engine: &Engine,
    bias: Option<&[f32]>,
    act: Activation,
    out: usize,
    y: &mut [f32],
) {
    for row in y.chunks_exact_mut(out.max(1)) {
        match bias {
            Some(b) => row.copy_from_slice(b),
            None => row.fill(0.0),
        }
    }
    activate_in_place_kernel::run(engine, act, y);
}
