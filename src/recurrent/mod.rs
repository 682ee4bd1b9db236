//! Recurrent cells: Elman RNN, GRU and LSTM, with PyTorch's weight layout, gate order and
//! semantics ([`RnnShape`], [`GruShape`], [`LstmShape`] describe them, [`TorchWeights`]
//! holds PyTorch's tensors, [`PackedRnn`], [`PackedGru`], [`PackedLstm`] the packed form).
//!
//! A sequence runs in two kernels: one GEMM projects the inputs of all steps
//! (`W_ih x_t + b_ih + b_hh`, into the caller's scratch), then each step is one pass over
//! the packed `W_hh` whose epilogue is the gate math, so the gates of a block of units are
//! in registers when their new state is computed. A single step is a sequence of one; a
//! sequence gives bit for bit the states of its steps run one by one.
//!
//! The state is always the caller's: `h` (and an LSTM's `c`) are read as the initial
//! state and hold the final one afterwards; nothing is reset between calls.
//!
//! Compositions, for what PyTorch's `nn.GRU` etc. do in one call:
//! - reverse direction: [`Direction::Reverse`] (outputs stay at their step's index, as
//!   PyTorch and ONNX lay them out);
//! - bidirectional: a forward and a reverse call with cells of their own, each from its
//!   initial state; PyTorch's output row `t` is the forward `h_t` followed by the reverse
//!   one;
//! - stacked layers: the output sequence of one layer (`out`) is the input of the next.

mod fixed;
mod gates;
mod kernel;
mod pack;
mod shape;

pub use fixed::{GruCell, LstmCell, RnnCell, pack_gru, pack_lstm, pack_rnn};
pub use pack::{KerasWeights, OnnxWeights, TfliteLstmWeights, TorchWeights, Weights};
pub use shape::{GruReset, GruShape, LstmShape, RnnActivation, RnnShape};

use crate::error::{check_len, checked_mul};
use crate::gemm::Layer;
use crate::gemm::driver::gemm_packed_kernel;
use crate::ops::Activation;
use crate::{Engine, Error};
use kernel::{CellRef, Steps, gru_steps, lstm_steps, rnn_steps};
use pack::pack_cell;
use shape::{Cell, Kind};

/// The order in which a sequence's steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// First step to last.
    #[default]
    Forward,
    /// Last step to first (the backward half of a bidirectional layer); step `t`'s state
    /// is still written to row `t` of the output.
    Reverse,
}

macro_rules! packed_cell {
    ($name:ident, $shape:ident, $what:literal, $example:literal) => {
        #[doc = concat!("The weights of ", $what, " packed for the kernels, borrowed from caller-owned storage.")]
        ///
        /// The layout is the same for every backend, so weights packed once run anywhere.
        ///
        /// ```
        #[doc = $example]
        /// ```
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a> {
            shape: $shape,
            data: &'a [f32],
        }

        impl<'a> $name<'a> {
            /// Packs weights in any supported format ([`TorchWeights`], [`OnnxWeights`],
            /// [`KerasWeights`], [`TfliteLstmWeights`]) into `storage`, which must be exactly
            #[doc = concat!("[`", stringify!($shape), "::packed_len`] long.")]
            pub fn pack<'w>(
                shape: &$shape,
                weights: impl Into<Weights<'w>>,
                storage: &'a mut [f32],
            ) -> Result<Self, Error> {
                let (cell, weights) = (shape.cell(), weights.into());
                cell.validate()?;
                weights.check(&cell)?;
                check_len("storage", storage.len(), cell.packed_len())?;
                pack_cell(&cell, &weights, storage);
                Ok($name {
                    shape: *shape,
                    data: storage,
                })
            }

            /// Wraps weights packed earlier (e.g. stored from [`Self::pack`]'s storage and
            /// read back with `bytemuck`).
            pub fn from_packed(shape: &$shape, data: &'a [f32]) -> Result<Self, Error> {
                let cell = shape.cell();
                cell.validate()?;
                check_len("data", data.len(), cell.packed_len())?;
                Ok($name {
                    shape: *shape,
                    data,
                })
            }

            /// [`Self::from_packed`] over a blob of little-endian `f32` bytes, read in
            /// place: an error if it is misaligned or not exactly the packed length.
            ///
            /// ```
            #[doc = concat!("use simdnn::{AlignedBytes, ", stringify!($shape), ", ", stringify!($name), "};")]
            #[doc = concat!("let shape = ", stringify!($shape), "::new(2, 3);")]
            /// static BLOB: AlignedBytes<8192> = AlignedBytes([0; 8192]);
            /// let bytes = &BLOB.0[..4 * shape.packed_len()];
            #[doc = concat!("assert!(", stringify!($name), "::from_bytes(&shape, bytes).is_ok());")]
            #[doc = concat!("assert!(", stringify!($name), "::from_bytes(&shape, &bytes[4..]).is_err());")]
            /// ```
            #[cfg(target_endian = "little")]
            pub fn from_bytes(shape: &$shape, bytes: &'a [u8]) -> Result<Self, Error> {
                crate::bytes::packed_from_bytes(bytes, |data| Self::from_packed(shape, data))
            }

            /// The shape.
            pub fn shape(&self) -> &$shape {
                &self.shape
            }

            /// The packed data.
            pub fn as_slice(&self) -> &'a [f32] {
                self.data
            }

            fn packed(&self) -> Packed<'a> {
                Packed::new(self.shape.cell(), self.data)
            }
        }
    };
}

packed_cell!(
    PackedRnn,
    RnnShape,
    "an Elman RNN",
    "use simdnn::{TorchWeights, Engine, PackedRnn, RnnShape};
// h' = tanh(x + 0.5 h), one input, one unit.
let shape = RnnShape::new(1, 1);
let mut storage = vec![0.0; shape.packed_len()];
let rnn = PackedRnn::pack(&shape, TorchWeights::new(&[1.0], &[0.5]), &mut storage)?;
let (mut h, mut scratch) = ([0.0], vec![0.0; shape.scratch_len(1)]);
Engine::new().rnn_step(&rnn, &[1.0], &mut h, &mut scratch)?;
assert!((h[0] - 1f32.tanh()).abs() < 1e-6);
# Ok::<(), simdnn::Error>(())"
);
packed_cell!(
    PackedGru,
    GruShape,
    "a GRU",
    "use simdnn::{TorchWeights, Engine, GruShape, PackedGru};
let shape = GruShape::new(2, 3);
let w_ih = vec![0.1; shape.weights_ih_len()];
let w_hh = vec![0.2; shape.weights_hh_len()];
let mut storage = vec![0.0; shape.packed_len()];
let gru = PackedGru::pack(&shape, TorchWeights::new(&w_ih, &w_hh), &mut storage)?;
assert_eq!(gru.shape().hidden, 3);
# Ok::<(), simdnn::Error>(())"
);
packed_cell!(
    PackedLstm,
    LstmShape,
    "an LSTM",
    "use simdnn::{TorchWeights, Engine, LstmShape, PackedLstm};
let shape = LstmShape::new(2, 3);
let w_ih = vec![0.1; shape.weights_ih_len()];
let w_hh = vec![0.2; shape.weights_hh_len()];
let mut storage = vec![0.0; shape.packed_len()];
let lstm = PackedLstm::pack(&shape, TorchWeights::new(&w_ih, &w_hh), &mut storage)?;
assert_eq!(lstm.as_slice().len(), shape.packed_len());
# Ok::<(), simdnn::Error>(())"
);

/// The length of one step's input for the states `h` (`batch * input`), or the error
/// about `h` if it is not whole states.
fn step_input_len(h_len: usize, cell: &Cell) -> Result<usize, Error> {
    if cell.state == 0 || !h_len.is_multiple_of(cell.state) {
        return Err(Error::NotAMultiple {
            arg: "h",
            len: h_len,
            of: cell.state,
        });
    }
    checked_mul(h_len / cell.state, cell.input, "x length")
}

/// A sequence call's inputs and state.
struct Io<'s> {
    direction: Direction,
    xs: &'s [f32],
    h: &'s mut [f32],
    /// An LSTM's cell state (empty for the other cells).
    c: &'s mut [f32],
    out: Option<&'s mut [f32]>,
}

/// A packed cell split into its parts.
struct Packed<'a> {
    cell: Cell,
    w_ih: &'a [f32],
    bias: &'a [f32],
    kernel: CellRef<'a>,
}

impl<'a> Packed<'a> {
    fn new(cell: Cell, data: &'a [f32]) -> Self {
        let parts = cell.parts();
        // (The length was checked on wrapping; short, the parts come out empty.)
        let split = |data: &'a [f32], n| data.split_at_checked(n).unwrap_or_default();
        let (w_ih, rest) = split(data, parts.w_ih);
        let (w_hh, rest) = split(rest, parts.w_hh);
        let (bias, rest) = split(rest, parts.bias);
        let (b_hn, w_hr) = split(rest, parts.b_hn);
        Packed {
            cell,
            w_ih,
            bias,
            kernel: CellRef {
                cell,
                w_hh,
                b_hn,
                w_hr,
            },
        }
    }

    /// Checks every length, then projects the inputs and runs the steps.
    /// `kernel` is the cell's kernel entry (`rnn_steps::run`, ..): naming it here rather
    /// than matching on the cell keeps the other cells' kernels out of a firmware.
    fn run(
        &self,
        engine: &Engine,
        io: Io<'_>,
        scratch: &mut [f32],
        kernel: impl FnOnce(&Engine, CellRef<'_>, Steps<'_>),
    ) -> Result<(), Error> {
        let Io {
            direction,
            xs,
            h,
            c,
            out,
        } = io;
        let cell = &self.cell;
        // The batch is the number of states; every other buffer holds as many rows.
        if !h.len().is_multiple_of(cell.state) {
            return Err(Error::NotAMultiple {
                arg: "h",
                len: h.len(),
                of: cell.state,
            });
        }
        let batch = h.len().checked_div(cell.state).unwrap_or(0);
        let row = checked_mul(batch, cell.input, "xs row length")?;
        if batch == 0 || !xs.len().is_multiple_of(row) {
            // An empty batch takes no input either.
            if batch == 0 && !xs.is_empty() {
                return Err(Error::LengthMismatch {
                    arg: "xs",
                    expected: 0,
                    got: xs.len(),
                });
            }
            if batch > 0 {
                return Err(Error::NotAMultiple {
                    arg: "xs",
                    len: xs.len(),
                    of: row,
                });
            }
        }
        let steps = xs.len().checked_div(row).unwrap_or(0);
        if matches!(cell.kind, Kind::Lstm { .. }) {
            check_len("c", c.len(), checked_mul(batch, cell.hidden, "c length")?)?;
        }
        let states = checked_mul(batch, cell.state, "out length")?;
        if let Some(out) = out.as_deref() {
            check_len("out", out.len(), checked_mul(steps, states, "out length")?)?;
        }
        let projections = checked_mul(steps * batch, cell.rows(), "scratch length")?;
        let scratch_len = checked_mul(batch, cell.work_len(), "scratch length")?
            .checked_add(projections)
            .ok_or(Error::SizeOverflow {
                what: "scratch length",
            })?;
        check_len("scratch", scratch.len(), scratch_len)?;
        if steps == 0 {
            return Ok(());
        }
        let Some((xproj, work)) = scratch.split_at_mut_checked(projections) else {
            return Err(Error::SizeOverflow {
                what: "scratch length",
            });
        };
        let inputs = Layer {
            packed: self.w_ih,
            out: cell.rows(),
            inp: cell.input,
            bias: Some(self.bias),
            act: Activation::Identity,
        };
        gemm_packed_kernel::run(engine, inputs, xs, xproj);
        let run = Steps {
            xproj,
            h,
            c,
            out,
            work,
            batch,
            reverse: direction == Direction::Reverse,
        };
        kernel(engine, self.kernel, run);
        Ok(())
    }
}

impl Engine {
    /// Runs an Elman RNN over the sequence `xs` (`[steps][input]`): `h` is the initial
    /// state and holds the final one afterwards; `out`, if given, receives every step's
    /// state (`[steps][hidden]`). `scratch` is [`RnnShape::scratch_len`]`(steps)` long.
    /// An empty `xs` leaves `h` as it is.
    ///
    /// ```
    /// use simdnn::{TorchWeights, Direction, Engine, PackedRnn, RnnActivation, RnnShape};
    /// // A running sum: h' = relu(x + h).
    /// let shape = RnnShape::new(1, 1).with_activation(RnnActivation::Relu);
    /// let mut storage = vec![0.0; shape.packed_len()];
    /// let rnn = PackedRnn::pack(&shape, TorchWeights::new(&[1.0], &[1.0]), &mut storage)?;
    /// let (mut h, mut out) = ([0.0], [0.0; 3]);
    /// let mut scratch = vec![0.0; shape.scratch_len(3)];
    /// let nn = Engine::new();
    /// nn.rnn_sequence(&rnn, Direction::Forward, &[1.0, 2.0, 3.0], &mut h, Some(&mut out), &mut scratch)?;
    /// assert_eq!((h, out), ([6.0], [1.0, 3.0, 6.0]));
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn rnn_sequence(
        &self,
        cell: &PackedRnn<'_>,
        direction: Direction,
        xs: &[f32],
        h: &mut [f32],
        out: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let io = Io {
            direction,
            xs,
            h,
            c: &mut [],
            out,
        };
        cell.packed().run(self, io, scratch, rnn_steps::run)
    }

    /// One step of an Elman RNN: `h` is updated in place from the input `x`
    /// (`[input]`); `scratch` is [`RnnShape::scratch_len`]`(1)` long.
    pub fn rnn_step(
        &self,
        cell: &PackedRnn<'_>,
        x: &[f32],
        h: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        check_len("x", x.len(), step_input_len(h.len(), &cell.shape.cell())?)?;
        self.rnn_sequence(cell, Direction::Forward, x, h, None, scratch)
    }

    /// Runs a GRU over the sequence `xs` (`[steps][input]`): `h` is the initial state and
    /// holds the final one afterwards; `out`, if given, receives every step's state
    /// (`[steps][hidden]`). `scratch` is [`GruShape::scratch_len`]`(steps)` long.
    ///
    /// ```
    /// use simdnn::{TorchWeights, Direction, Engine, GruShape, PackedGru};
    /// // With all weights zero, r = z = 1/2 and n = 0: each step halves the state.
    /// let shape = GruShape::new(1, 2);
    /// let (w_ih, w_hh) = (vec![0.0; shape.weights_ih_len()], vec![0.0; shape.weights_hh_len()]);
    /// let mut storage = vec![0.0; shape.packed_len()];
    /// let gru = PackedGru::pack(&shape, TorchWeights::new(&w_ih, &w_hh), &mut storage)?;
    /// let mut h = [1.0, -4.0];
    /// let mut scratch = vec![0.0; shape.scratch_len(2)];
    /// Engine::new().gru_sequence(&gru, Direction::Forward, &[5.0, 7.0], &mut h, None, &mut scratch)?;
    /// assert!((h[0] - 0.25).abs() < 1e-6 && (h[1] + 1.0).abs() < 1e-6);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn gru_sequence(
        &self,
        cell: &PackedGru<'_>,
        direction: Direction,
        xs: &[f32],
        h: &mut [f32],
        out: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let io = Io {
            direction,
            xs,
            h,
            c: &mut [],
            out,
        };
        cell.packed().run(self, io, scratch, gru_steps::run)
    }

    /// One step of a GRU: `h` is updated in place from the input `x` (`[input]`);
    /// `scratch` is [`GruShape::scratch_len`]`(1)` long.
    pub fn gru_step(
        &self,
        cell: &PackedGru<'_>,
        x: &[f32],
        h: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        check_len("x", x.len(), step_input_len(h.len(), &cell.shape.cell())?)?;
        self.gru_sequence(cell, Direction::Forward, x, h, None, scratch)
    }

    /// Runs an LSTM over the sequence `xs` (`[steps][input]`): `h` (`[state_len]`) and `c`
    /// (`[hidden]`) are the initial state and hold the final one afterwards; `out`, if
    /// given, receives every step's `h` (`[steps][state_len]`). `scratch` is
    /// [`LstmShape::scratch_len`]`(steps)` long.
    ///
    /// ```
    /// use simdnn::{TorchWeights, Direction, Engine, LstmShape, PackedLstm};
    /// // Zero weights, forget-gate bias +50: c is kept, i = 1/2, g = 0, o = 1/2.
    /// let shape = LstmShape::new(1, 1);
    /// let b = [0.0, 50.0, 0.0, 0.0]; // i, f, g, o
    /// let w = TorchWeights::new(&[0.0; 4], &[0.0; 4]).with_biases(Some(&b), None);
    /// let mut storage = vec![0.0; shape.packed_len()];
    /// let lstm = PackedLstm::pack(&shape, w, &mut storage)?;
    /// let (mut h, mut c) = ([0.0], [2.0]);
    /// let mut scratch = vec![0.0; shape.scratch_len(1)];
    /// Engine::new().lstm_sequence(&lstm, Direction::Forward, &[3.0], &mut h, &mut c, None, &mut scratch)?;
    /// assert_eq!(c, [2.0]);
    /// assert!((h[0] - 0.5 * 2f32.tanh()).abs() < 1e-6);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)] // the state is two buffers
    pub fn lstm_sequence(
        &self,
        cell: &PackedLstm<'_>,
        direction: Direction,
        xs: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        out: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let io = Io {
            direction,
            xs,
            h,
            c,
            out,
        };
        cell.packed().run(self, io, scratch, lstm_steps::run)
    }

    /// One step of an LSTM: `h` and `c` are updated in place from the input `x`
    /// (`[input]`); `scratch` is [`LstmShape::scratch_len`]`(1)` long.
    pub fn lstm_step(
        &self,
        cell: &PackedLstm<'_>,
        x: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        check_len("x", x.len(), step_input_len(h.len(), &cell.shape.cell())?)?;
        self.lstm_sequence(cell, Direction::Forward, x, h, c, None, scratch)
    }
}
