//! Weights as each framework stores them, and packing them into the kernel's layout:
//! `W_ih` as a dense layer (one GEMM projects every step's input), `W_hh` in blocks of
//! [`UNITS`] hidden units with all gates of a unit side by side (one pass over a block
//! gives every gate of its units, so the gate math runs on registers), the biases pre-added.
//!
//! Internally every format is read through one accessor in PyTorch's terms (gate `g` in
//! PyTorch's order, unit `u`, column `k`), so there is one packer, usable at compile time.

use super::shape::{Cell, Kind, UNITS};
use crate::Error;
use crate::error::check_len;
use crate::gemm::PANEL;

/// A cell's weights as PyTorch stores them (`nn.RNN`, `nn.GRU`, `nn.LSTM`, one layer and
/// direction): row-major, gates stacked in PyTorch's order (GRU r, z, n; LSTM i, f, g, o).
///
/// ```
/// use simdnn::TorchWeights;
/// let (w_ih, w_hh, b) = ([0.5; 3 * 4 * 2], [0.1; 3 * 4 * 4], [0.0; 3 * 4]);
/// let w = TorchWeights::new(&w_ih, &w_hh).with_biases(Some(&b), Some(&b));
/// assert!(w.w_hr.is_none());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TorchWeights<'w> {
    /// `weight_ih_l0`: `[gates * hidden][input]`.
    pub w_ih: &'w [f32],
    /// `weight_hh_l0`: `[gates * hidden][state]` (`state` is `hidden`, or an LSTM's
    /// `proj_size`).
    pub w_hh: &'w [f32],
    /// `bias_ih_l0`: `[gates * hidden]`, or `None` for zeros (PyTorch `bias=False`).
    pub b_ih: Option<&'w [f32]>,
    /// `bias_hh_l0`: `[gates * hidden]`, or `None` for zeros.
    pub b_hh: Option<&'w [f32]>,
    /// `weight_hr_l0` of an LSTM with `proj_size > 0`: `[proj_size][hidden]`; `None`
    /// otherwise.
    pub w_hr: Option<&'w [f32]>,
}

impl<'w> TorchWeights<'w> {
    /// Weights without biases or projection.
    pub const fn new(w_ih: &'w [f32], w_hh: &'w [f32]) -> Self {
        TorchWeights {
            w_ih,
            w_hh,
            b_ih: None,
            b_hh: None,
            w_hr: None,
        }
    }

    /// With biases (either may be `None`).
    pub const fn with_biases(mut self, b_ih: Option<&'w [f32]>, b_hh: Option<&'w [f32]>) -> Self {
        self.b_ih = b_ih;
        self.b_hh = b_hh;
        self
    }

    /// With an LSTM's projection weights.
    pub const fn with_projection(mut self, w_hr: &'w [f32]) -> Self {
        self.w_hr = Some(w_hr);
        self
    }
}

/// A cell's weights as the ONNX `RNN`, `GRU` and `LSTM` operators take them, for one
/// direction (for a bidirectional operator, the forward direction is the first half of
/// each tensor and the reverse one the second). Gate orders: GRU z, r, h; LSTM i, o, f, c.
/// A GRU's `linear_before_reset` is the shape's [`GruReset`](crate::GruReset); ONNX
/// `clip` is the shape's `clip`. Peepholes (`P`) are not supported.
///
/// ```
/// use simdnn::{GruReset, GruShape, OnnxWeights, PackedGru};
/// // linear_before_reset = 0, ONNX's default.
/// let shape = GruShape::new(2, 3).with_reset(GruReset::BeforeProduct);
/// let (w, r, b) = ([0.1; 9 * 2], [0.2; 9 * 3], [0.0; 18]);
/// let mut storage = vec![0.0; shape.packed_len()];
/// let gru = PackedGru::pack(&shape, OnnxWeights { w: &w, r: &r, b: Some(&b) }, &mut storage)?;
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct OnnxWeights<'w> {
    /// `W` of one direction: `[gates * hidden][input]`.
    pub w: &'w [f32],
    /// `R` of one direction: `[gates * hidden][hidden]`.
    pub r: &'w [f32],
    /// `B` of one direction: `[2 * gates * hidden]`, `Wb` then `Rb`; `None` for zeros.
    pub b: Option<&'w [f32]>,
}

/// A cell's weights as Keras layers (`SimpleRNN`, `GRU`, `LSTM`) store them: `kernel`
/// `[input][gates * hidden]` and `recurrent_kernel` `[hidden][gates * hidden]`
/// (transposed against PyTorch), gates GRU z, r, h and LSTM i, f, c, o; `bias`
/// `[gates * hidden]`, or for a GRU with `reset_after=True` (Keras's default)
/// `[2][3 * hidden]`, input bias then recurrent bias. `reset_after` is the shape's
/// [`GruReset`](crate::GruReset).
///
/// ```
/// use simdnn::{KerasWeights, LstmShape, PackedLstm};
/// let shape = LstmShape::new(2, 3);
/// let (kernel, recurrent, bias) = ([0.1; 2 * 12], [0.2; 3 * 12], [0.0; 12]);
/// let mut storage = vec![0.0; shape.packed_len()];
/// let w = KerasWeights { kernel: &kernel, recurrent_kernel: &recurrent, bias: Some(&bias) };
/// let lstm = PackedLstm::pack(&shape, w, &mut storage)?;
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct KerasWeights<'w> {
    /// `kernel`: `[input][gates * hidden]`.
    pub kernel: &'w [f32],
    /// `recurrent_kernel`: `[hidden][gates * hidden]`.
    pub recurrent_kernel: &'w [f32],
    /// `bias`, or `None` for zeros (`use_bias=False`).
    pub bias: Option<&'w [f32]>,
}

/// An LSTM's weights as TensorFlow Lite's `LSTM` / `UNIDIRECTIONAL_SEQUENCE_LSTM` operators
/// and CMSIS-NN keep them: one tensor per gate, in the order input, forget, cell, output;
/// `input_to_*` `[hidden][input]`, `recurrent_to_*` `[hidden][state]`, one bias `[hidden]`
/// per gate, and the projection `[proj_size][hidden]` when the shape has one (its bias is
/// not supported, nor are peepholes or layer normalisation). TFLite's `cell_clip` is the
/// shape's `cell_clip`; its `proj_clip` is not supported.
///
/// ```
/// use simdnn::{LstmShape, PackedLstm, TfliteLstmWeights};
/// let shape = LstmShape::new(2, 3);
/// let (x, h, b) = ([0.1; 3 * 2], [0.2; 3 * 3], [0.0; 3]);
/// let w = TfliteLstmWeights {
///     input_to: [&x, &x, &x, &x],
///     recurrent_to: [&h, &h, &h, &h],
///     bias: Some([&b, &b, &b, &b]),
///     projection: None,
/// };
/// let mut storage = vec![0.0; shape.packed_len()];
/// let lstm = PackedLstm::pack(&shape, w, &mut storage)?;
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TfliteLstmWeights<'w> {
    /// `input_to_{input, forget, cell, output}_weights`, each `[hidden][input]`.
    pub input_to: [&'w [f32]; 4],
    /// `recurrent_to_{input, forget, cell, output}_weights`, each `[hidden][state]`.
    pub recurrent_to: [&'w [f32]; 4],
    /// `{input_gate, forget_gate, cell, output_gate}_bias`, each `[hidden]`; `None` for
    /// zeros.
    pub bias: Option<[&'w [f32]; 4]>,
    /// `projection_weights`, `[proj_size][hidden]`, for a shape with a projection.
    pub projection: Option<&'w [f32]>,
}

/// Weights in any of the supported formats; every format converts into it, so the
/// packing functions take any of them.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'w> {
    /// PyTorch's tensors.
    Torch(TorchWeights<'w>),
    /// ONNX's tensors.
    Onnx(OnnxWeights<'w>),
    /// Keras's tensors.
    Keras(KerasWeights<'w>),
    /// TensorFlow Lite's (and CMSIS-NN's) per-gate LSTM tensors.
    TfliteLstm(TfliteLstmWeights<'w>),
}

impl<'w> From<TorchWeights<'w>> for Weights<'w> {
    fn from(w: TorchWeights<'w>) -> Self {
        Weights::Torch(w)
    }
}
impl<'w> From<OnnxWeights<'w>> for Weights<'w> {
    fn from(w: OnnxWeights<'w>) -> Self {
        Weights::Onnx(w)
    }
}
impl<'w> From<KerasWeights<'w>> for Weights<'w> {
    fn from(w: KerasWeights<'w>) -> Self {
        Weights::Keras(w)
    }
}
impl<'w> From<TfliteLstmWeights<'w>> for Weights<'w> {
    fn from(w: TfliteLstmWeights<'w>) -> Self {
        Weights::TfliteLstm(w)
    }
}

/// The format's gate index of PyTorch's gate `g`.
const fn source_gate(w: &Weights<'_>, kind: Kind, g: usize) -> usize {
    match (w, kind) {
        // r, z, n from z, r, h.
        (Weights::Onnx(_) | Weights::Keras(_), Kind::Gru { .. }) => [1, 0, 2][g],
        // i, f, g, o from i, o, f, c.
        (Weights::Onnx(_), Kind::Lstm { .. }) => [0, 2, 3, 1][g],
        _ => g,
    }
}

/// `b[i]`, or 0 without a bias.
const fn at(b: Option<&[f32]>, i: usize) -> f32 {
    match b {
        Some(b) => b[i],
        None => 0.0,
    }
}

impl Weights<'_> {
    /// `W_ih[g * hidden + u][k]` in PyTorch's terms.
    const fn w_ih(&self, cell: &Cell, g: usize, u: usize, k: usize) -> f32 {
        let (h, sg) = (cell.hidden, source_gate(self, cell.kind, g));
        match self {
            Weights::Torch(w) => w.w_ih[(g * h + u) * cell.input + k],
            Weights::Onnx(w) => w.w[(sg * h + u) * cell.input + k],
            Weights::Keras(w) => w.kernel[k * cell.rows() + sg * h + u],
            Weights::TfliteLstm(w) => w.input_to[g][u * cell.input + k],
        }
    }

    /// `W_hh[g * hidden + u][k]` in PyTorch's terms.
    const fn w_hh(&self, cell: &Cell, g: usize, u: usize, k: usize) -> f32 {
        let (h, sg) = (cell.hidden, source_gate(self, cell.kind, g));
        match self {
            Weights::Torch(w) => w.w_hh[(g * h + u) * cell.state + k],
            Weights::Onnx(w) => w.r[(sg * h + u) * cell.state + k],
            Weights::Keras(w) => w.recurrent_kernel[k * cell.rows() + sg * h + u],
            Weights::TfliteLstm(w) => w.recurrent_to[g][u * cell.state + k],
        }
    }

    /// `(b_ih, b_hh)` of gate `g`, unit `u`, in PyTorch's terms.
    const fn biases(&self, cell: &Cell, g: usize, u: usize) -> (f32, f32) {
        let (h, sg) = (cell.hidden, source_gate(self, cell.kind, g));
        match self {
            Weights::Torch(w) => (at(w.b_ih, g * h + u), at(w.b_hh, g * h + u)),
            Weights::Onnx(w) => (at(w.b, sg * h + u), at(w.b, cell.rows() + sg * h + u)),
            Weights::Keras(w) => match w.bias {
                // Keras's [2][3 * hidden] GRU bias: input then recurrent.
                Some(b) if b.len() > cell.rows() => (b[sg * h + u], b[cell.rows() + sg * h + u]),
                b => (at(b, sg * h + u), 0.0),
            },
            Weights::TfliteLstm(w) => match w.bias {
                Some(b) => (b[g][u], 0.0),
                None => (0.0, 0.0),
            },
        }
    }

    /// `W_hr[p][u]`, of a projected LSTM.
    const fn w_hr(&self, cell: &Cell, p: usize, u: usize) -> f32 {
        let w_hr = match self {
            Weights::Torch(w) => w.w_hr,
            Weights::TfliteLstm(w) => w.projection,
            _ => None,
        };
        at(w_hr, p * cell.hidden + u)
    }

    /// Checks every length against `cell` (validated).
    pub(crate) fn check(&self, cell: &Cell) -> Result<(), Error> {
        let (rows, hidden) = (cell.rows(), cell.hidden);
        let projection = match self {
            Weights::Torch(w) => {
                check_len("w_ih", w.w_ih.len(), rows * cell.input)?;
                check_len("w_hh", w.w_hh.len(), rows * cell.state)?;
                if let Some(b) = w.b_ih {
                    check_len("b_ih", b.len(), rows)?;
                }
                if let Some(b) = w.b_hh {
                    check_len("b_hh", b.len(), rows)?;
                }
                w.w_hr
            }
            Weights::Onnx(w) => {
                check_len("w", w.w.len(), rows * cell.input)?;
                check_len("r", w.r.len(), rows * cell.state)?;
                if let Some(b) = w.b {
                    check_len("b", b.len(), 2 * rows)?;
                }
                None
            }
            Weights::Keras(w) => {
                check_len("kernel", w.kernel.len(), cell.input * rows)?;
                check_len(
                    "recurrent_kernel",
                    w.recurrent_kernel.len(),
                    cell.state * rows,
                )?;
                match w.bias {
                    // Input and recurrent bias: a GRU with the reset after the product.
                    Some(b) if b.len() == 2 * rows && cell.reset_after() => {}
                    Some(b) => check_len("bias", b.len(), rows)?,
                    None => {}
                }
                None
            }
            Weights::TfliteLstm(w) => {
                if !matches!(cell.kind, Kind::Lstm { .. }) {
                    return Err(Error::InvalidShape {
                        what: "per-gate TensorFlow Lite weights are an LSTM's",
                    });
                }
                const NAMES: [[&str; 4]; 3] = [
                    ["input_to[0]", "input_to[1]", "input_to[2]", "input_to[3]"],
                    [
                        "recurrent_to[0]",
                        "recurrent_to[1]",
                        "recurrent_to[2]",
                        "recurrent_to[3]",
                    ],
                    ["bias[0]", "bias[1]", "bias[2]", "bias[3]"],
                ];
                for g in 0..4 {
                    check_len(NAMES[0][g], w.input_to[g].len(), hidden * cell.input)?;
                    check_len(NAMES[1][g], w.recurrent_to[g].len(), hidden * cell.state)?;
                    if let Some(b) = w.bias {
                        check_len(NAMES[2][g], b[g].len(), hidden)?;
                    }
                }
                w.projection
            }
        };
        match (cell.projected(), projection) {
            (true, w_hr) => check_len(
                "projection weights",
                w_hr.map_or(0, <[f32]>::len),
                cell.state * hidden,
            ),
            (false, None) => Ok(()),
            (false, Some(_)) => Err(Error::InvalidShape {
                what: "projection weights are only for an LSTM with proj_size > 0",
            }),
        }
    }
}

/// Packs checked weights into `dst` (`cell.packed_len()` long). `const` so that the
/// fixed-size cells can pack at compile time.
pub(crate) const fn pack_cell(cell: &Cell, w: &Weights<'_>, dst: &mut [f32]) {
    let parts = cell.parts();
    let (w_ih, rest) = dst.split_at_mut(parts.w_ih);
    let (w_hh, rest) = rest.split_at_mut(parts.w_hh);
    let (bias, rest) = rest.split_at_mut(parts.bias);
    let (b_hn, w_hr) = rest.split_at_mut(parts.b_hn);
    let (hidden, state, gates, input) = (cell.hidden, cell.state, cell.gates(), cell.input);
    let rows = cell.rows();
    // W_ih as a dense layer of `rows` outputs, in the layout of `gemm::pack_into` (panels of
    // PANEL rows, k-major), read through the format's accessor.
    let mut i = 0;
    while i < w_ih.len() {
        let (p, rest) = (i / (PANEL * input), i % (PANEL * input));
        let (k, j) = (rest / PANEL, rest % PANEL);
        let r = p * PANEL + j;
        w_ih[i] = if r < rows {
            w.w_ih(cell, r / hidden, r % hidden, k)
        } else {
            0.0
        };
        i += 1;
    }
    // Block b, state index k, gate g, unit j of the block: W_hh[g * hidden + u][k].
    let mut i = 0;
    while i < w_hh.len() {
        let j = i % UNITS;
        let g = i / UNITS % gates;
        let k = i / (UNITS * gates) % state;
        let u = i / (UNITS * gates * state) * UNITS + j;
        w_hh[i] = if u < hidden {
            w.w_hh(cell, g, u, k)
        } else {
            0.0
        };
        i += 1;
    }
    // A GRU keeps b_hn apart (inside `r * (..)` with the reset after the product).
    let gru = matches!(cell.kind, Kind::Gru { .. });
    let mut r = 0;
    while r < rows {
        let (g, u) = (r / hidden, r % hidden);
        let (b_i, b_h) = w.biases(cell, g, u);
        bias[r] = if gru && g == 2 { b_i } else { b_i + b_h };
        r += 1;
    }
    let mut u = 0;
    while u < b_hn.len() {
        b_hn[u] = w.biases(cell, 2, u).1;
        u += 1;
    }
    // W_hr as a dense layer of `state` outputs.
    let mut i = 0;
    while i < w_hr.len() {
        let (p, rest) = (i / (PANEL * hidden), i % (PANEL * hidden));
        let (k, j) = (rest / PANEL, rest % PANEL);
        let o = p * PANEL + j;
        w_hr[i] = if o < state { w.w_hr(cell, o, k) } else { 0.0 };
        i += 1;
    }
}
