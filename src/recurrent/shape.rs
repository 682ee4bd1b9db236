//! The three cells' shapes and options, and the one internal description (`Cell`) every
//! length, the packing and the kernel work from.

use crate::Error;
use crate::error::checked_mul;
use crate::gemm::{PANEL, packed_len};

/// Hidden units per block of the packed recurrent weights: each block holds the rows of all
/// gates for these units, so one pass over it yields every gate of 16 units at once.
pub(crate) const UNITS: usize = 16;

/// The nonlinearity of an Elman RNN (PyTorch `nonlinearity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RnnActivation {
    /// `tanh`, PyTorch's default.
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

/// Where a GRU applies its reset gate to the recurrent term of the candidate state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GruReset {
    /// `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`: PyTorch, ONNX
    /// `linear_before_reset = 1`, Keras `reset_after = True` (its default since TF 2).
    #[default]
    AfterProduct,
    /// `n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)`: ONNX's default
    /// (`linear_before_reset = 0`), Keras `reset_after = False`, the original GRU paper.
    BeforeProduct,
}

/// An Elman RNN cell, `h' = act(W_ih x + b_ih + W_hh h + b_hh)` (PyTorch `nn.RNN`).
///
/// ```
/// use simdnn::{RnnActivation, RnnShape};
/// let shape = RnnShape::new(64, 128).with_activation(RnnActivation::Relu);
/// assert_eq!(shape.state_len(), 128);
/// assert_eq!(shape.weights_ih_len(), 128 * 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnShape {
    /// Input features per step.
    pub input: usize,
    /// Hidden units (the state's length).
    pub hidden: usize,
    /// `tanh` or `relu`.
    pub activation: RnnActivation,
    /// Gate pre-activation clip (ONNX `clip`): the argument of the activation is clamped
    /// to `[-clip, clip]`. `None` clips nothing.
    pub clip: Option<f32>,
}

/// A GRU cell with PyTorch's gate order (r, z, n) and semantics:
/// `r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)`, `z` likewise,
/// `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`, `h' = (1 - z) n + z h`
/// ([`GruReset`] chooses the other convention).
///
/// ```
/// use simdnn::{GruReset, GruShape};
/// let shape = GruShape::new(64, 128).with_reset(GruReset::BeforeProduct);
/// assert_eq!(shape.weights_hh_len(), 3 * 128 * 128);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GruShape {
    /// Input features per step.
    pub input: usize,
    /// Hidden units (the state's length).
    pub hidden: usize,
    /// Where the reset gate applies.
    pub reset: GruReset,
    /// Gate pre-activation clip (ONNX `clip`), applied to the arguments of all three
    /// activations. `None` clips nothing.
    pub clip: Option<f32>,
}

/// An LSTM cell with PyTorch's gate order (i, f, g, o):
/// `c' = f * c + i * g`, `h' = o * tanh(c')`, and with `proj_size > 0` the hidden state
/// projected, `h' = W_hr (o * tanh(c'))` (PyTorch `proj_size`).
///
/// ```
/// use simdnn::LstmShape;
/// let shape = LstmShape::new(128, 256).with_projection(64).with_cell_clip(50.0);
/// assert_eq!(shape.state_len(), 64);
/// assert_eq!(shape.weights_hh_len(), 4 * 256 * 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmShape {
    /// Input features per step.
    pub input: usize,
    /// Hidden units (the cell state's length).
    pub hidden: usize,
    /// Length of the projected hidden state, `0` for none (PyTorch `proj_size`); must be
    /// smaller than `hidden`.
    pub proj_size: usize,
    /// Gate pre-activation clip (ONNX `clip`), applied to the arguments of the gates'
    /// activations. `None` clips nothing.
    pub clip: Option<f32>,
    /// Cell-state clip (CMSIS-NN and TensorFlow Lite `cell_clip`): `c'` is clamped to
    /// `[-cell_clip, cell_clip]` before it is stored and used. `None` clips nothing.
    pub cell_clip: Option<f32>,
}

impl RnnShape {
    /// A tanh RNN without clipping.
    pub const fn new(input: usize, hidden: usize) -> Self {
        RnnShape {
            input,
            hidden,
            activation: RnnActivation::Tanh,
            clip: None,
        }
    }

    /// With the given nonlinearity.
    pub const fn with_activation(mut self, activation: RnnActivation) -> Self {
        self.activation = activation;
        self
    }

    /// With a gate pre-activation clip.
    pub const fn with_clip(mut self, clip: f32) -> Self {
        self.clip = Some(clip);
        self
    }

    pub(crate) const fn cell(&self) -> Cell {
        Cell {
            kind: Kind::Rnn {
                relu: matches!(self.activation, RnnActivation::Relu),
            },
            input: self.input,
            hidden: self.hidden,
            state: self.hidden,
            clip: self.clip,
            cell_clip: None,
        }
    }
}

impl GruShape {
    /// A GRU with PyTorch semantics, without clipping.
    pub const fn new(input: usize, hidden: usize) -> Self {
        GruShape {
            input,
            hidden,
            reset: GruReset::AfterProduct,
            clip: None,
        }
    }

    /// With the given reset convention.
    pub const fn with_reset(mut self, reset: GruReset) -> Self {
        self.reset = reset;
        self
    }

    /// With a gate pre-activation clip.
    pub const fn with_clip(mut self, clip: f32) -> Self {
        self.clip = Some(clip);
        self
    }

    pub(crate) const fn cell(&self) -> Cell {
        Cell {
            kind: Kind::Gru {
                reset_after: matches!(self.reset, GruReset::AfterProduct),
            },
            input: self.input,
            hidden: self.hidden,
            state: self.hidden,
            clip: self.clip,
            cell_clip: None,
        }
    }
}

impl LstmShape {
    /// An LSTM without projection or clipping.
    pub const fn new(input: usize, hidden: usize) -> Self {
        LstmShape {
            input,
            hidden,
            proj_size: 0,
            clip: None,
            cell_clip: None,
        }
    }

    /// With the hidden state projected to `proj_size` features.
    pub const fn with_projection(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// With a gate pre-activation clip.
    pub const fn with_clip(mut self, clip: f32) -> Self {
        self.clip = Some(clip);
        self
    }

    /// With a cell-state clip.
    pub const fn with_cell_clip(mut self, cell_clip: f32) -> Self {
        self.cell_clip = Some(cell_clip);
        self
    }

    /// The cell state's length (`hidden`).
    pub const fn cell_len(&self) -> usize {
        self.hidden
    }

    /// Length of the projection weights `W_hr`, `[proj_size][hidden]` (0 without one).
    pub const fn weights_hr_len(&self) -> usize {
        self.proj_size.saturating_mul(self.hidden)
    }

    pub(crate) const fn cell(&self) -> Cell {
        Cell {
            kind: Kind::Lstm {
                projected: self.proj_size > 0,
            },
            input: self.input,
            hidden: self.hidden,
            state: if self.proj_size > 0 {
                self.proj_size
            } else {
                self.hidden
            },
            clip: self.clip,
            cell_clip: self.cell_clip,
        }
    }
}

/// The lengths every shape reports, from [`Cell`].
macro_rules! shape_lengths {
    ($($shape:ident),*) => {$(
        impl $shape {
            /// The hidden state's length (`hidden`, or an LSTM's `proj_size` if set).
            pub const fn state_len(&self) -> usize {
                self.cell().state
            }

            /// Length of the input weights `W_ih`, `[gates * hidden][input]` as PyTorch's
            /// `weight_ih_l0` (gates: RNN 1, GRU 3, LSTM 4).
            pub const fn weights_ih_len(&self) -> usize {
                self.cell().rows().saturating_mul(self.input)
            }

            /// Length of the recurrent weights `W_hh`, `[gates * hidden][state_len]` as
            /// PyTorch's `weight_hh_l0`.
            pub const fn weights_hh_len(&self) -> usize {
                self.cell().rows().saturating_mul(self.cell().state)
            }

            /// Length of each bias, `b_ih` and `b_hh`: `gates * hidden`.
            pub const fn bias_len(&self) -> usize {
                self.cell().rows()
            }

            /// Floats the packed weights take (saturating on overflow; packing reports the
            /// overflow as an error).
            pub const fn packed_len(&self) -> usize {
                self.cell().packed_len()
            }

            /// Floats of scratch a sequence of `steps` steps needs (a single step: 1): the
            /// input projections of all steps and a few state-sized buffers.
            pub const fn scratch_len(&self, steps: usize) -> usize {
                self.cell().scratch_len(steps)
            }

            /// Floats of scratch a batch of `batch` sequences of `steps` steps needs.
            pub const fn batch_scratch_len(&self, steps: usize, batch: usize) -> usize {
                self.cell().batch_scratch_len(steps, batch)
            }
        }
    )*};
}
shape_lengths!(RnnShape, GruShape, LstmShape);

/// Which cell, with the options that change the kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Rnn { relu: bool },
    Gru { reset_after: bool },
    Lstm { projected: bool },
}

/// Every cell as the packing and the kernels see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cell {
    pub(crate) kind: Kind,
    pub(crate) input: usize,
    pub(crate) hidden: usize,
    /// The hidden state's length: `hidden`, or an LSTM's projection.
    pub(crate) state: usize,
    pub(crate) clip: Option<f32>,
    pub(crate) cell_clip: Option<f32>,
}

/// The parts of the packed weights, in order (lengths in floats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PackedParts {
    /// `W_ih` as a dense layer of `gates * hidden` outputs (panels of [`PANEL`]).
    pub(crate) w_ih: usize,
    /// `W_hh` in blocks of [`UNITS`] hidden units, each `state x (gates * UNITS)`.
    pub(crate) w_hh: usize,
    /// `b_ih + b_hh`, but a GRU's candidate gets `b_in` only: its `b_hn` is kept apart
    /// (inside `r * (..)` with the reset after the product; the packing does not depend on
    /// the convention, so the fixed-size cell can choose it at run time).
    pub(crate) bias: usize,
    /// `b_hn`, for a GRU only.
    pub(crate) b_hn: usize,
    /// `W_hr` as a dense layer of `proj_size` outputs, for a projected LSTM only.
    pub(crate) w_hr: usize,
}

impl Cell {
    pub(crate) const fn gates(&self) -> usize {
        match self.kind {
            Kind::Rnn { .. } => 1,
            Kind::Gru { .. } => 3,
            Kind::Lstm { .. } => 4,
        }
    }

    /// Rows of the weight matrices: `gates * hidden`.
    pub(crate) const fn rows(&self) -> usize {
        self.hidden.saturating_mul(self.gates())
    }

    pub(crate) const fn projected(&self) -> bool {
        matches!(self.kind, Kind::Lstm { projected: true })
    }

    pub(crate) const fn reset_after(&self) -> bool {
        matches!(self.kind, Kind::Gru { reset_after: true })
    }

    /// Hidden units rounded up to whole blocks.
    pub(crate) const fn padded_hidden(&self) -> usize {
        self.hidden.div_ceil(UNITS).saturating_mul(UNITS)
    }

    /// Saturating part lengths (exact when [`Cell::validate`] passed).
    pub(crate) const fn parts(&self) -> PackedParts {
        let rows = self.rows();
        PackedParts {
            w_ih: packed_len(rows, self.input),
            w_hh: self
                .padded_hidden()
                .saturating_mul(self.gates())
                .saturating_mul(self.state),
            bias: rows,
            b_hn: if matches!(self.kind, Kind::Gru { .. }) {
                self.hidden
            } else {
                0
            },
            w_hr: if self.projected() {
                packed_len(self.state, self.hidden)
            } else {
                0
            },
        }
    }

    pub(crate) const fn packed_len(&self) -> usize {
        let p = self.parts();
        p.w_ih
            .saturating_add(p.w_hh)
            .saturating_add(p.bias)
            .saturating_add(p.b_hn)
            .saturating_add(p.w_hr)
    }

    /// The state-sized work buffers after the input projections: the new state, and the
    /// LSTM's unprojected output or the GRU's `r * h` and `z` (reset before the product).
    pub(crate) const fn work_len(&self) -> usize {
        let extra = match self.kind {
            Kind::Lstm { projected: true } => self.hidden,
            Kind::Gru { reset_after: false } => self.hidden.saturating_mul(2),
            _ => 0,
        };
        self.state.saturating_add(extra)
    }

    pub(crate) const fn scratch_len(&self, steps: usize) -> usize {
        self.batch_scratch_len(steps, 1)
    }

    /// The input projections of every step and row, and each row's work buffers.
    pub(crate) const fn batch_scratch_len(&self, steps: usize, batch: usize) -> usize {
        steps
            .saturating_mul(batch)
            .saturating_mul(self.rows())
            .saturating_add(self.work_len().saturating_mul(batch))
    }

    /// Checks the sizes and options; every length of the cell then fits in `usize`.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.input == 0 {
            return Err(Error::ZeroDimension { arg: "input" });
        }
        if self.hidden == 0 {
            return Err(Error::ZeroDimension { arg: "hidden" });
        }
        if self.projected() && self.state >= self.hidden {
            return Err(Error::InvalidShape {
                what: "proj_size must be smaller than hidden",
            });
        }
        for clip in [self.clip, self.cell_clip].into_iter().flatten() {
            if clip.is_nan() || clip <= 0.0 {
                return Err(Error::InvalidShape {
                    what: "a clip must be positive",
                });
            }
        }
        let rows = checked_mul(self.hidden, self.gates(), "gates * hidden")?;
        let overflow = Error::SizeOverflow {
            what: "packed length",
        };
        let panels = |n: usize| n.div_ceil(PANEL).checked_mul(PANEL).ok_or(overflow);
        let blocks = self
            .hidden
            .div_ceil(UNITS)
            .checked_mul(UNITS)
            .ok_or(overflow)?;
        let parts = [
            checked_mul(panels(rows)?, self.input, "packed length")?,
            checked_mul(
                checked_mul(blocks, self.gates(), "packed length")?,
                self.state,
                "packed length",
            )?,
            rows,
            checked_mul(self.hidden, 2, "packed length")?,
            checked_mul(panels(self.state)?, self.hidden, "packed length")?,
        ];
        parts
            .into_iter()
            .try_fold(0usize, |sum, part| sum.checked_add(part))
            .ok_or(overflow)?;
        checked_mul(self.state, self.hidden, "weights length")?;
        checked_mul(self.hidden, 3, "scratch length")?;
        Ok(())
    }
}
