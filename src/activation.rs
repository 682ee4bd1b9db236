//! Element-wise activations, in place and out of place. ([`Activation`] itself lives in
//! `ops`, where every family fuses it into its output.)

use crate::engine::kernel_entry;
use crate::error::check_len;
use crate::ops::{Activation, activate_in_place_kernel, map};
use crate::vmath::VecMath;
use crate::{Engine, Error};

/// Out of place. Each arm passes a constant, so after inlining every activation gets its
/// own loop with the `match` folded away.
#[inline(always)]
fn activate_kernel<S: VecMath>(s: S, act: Activation, x: &[f32], y: &mut [f32]) {
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
