//! Packing a cell's weights (PyTorch layout and gate order) into the kernel's layout:
//! `W_ih` as a dense layer (one GEMM projects every step's input), `W_hh` in blocks of
//! [`UNITS`] hidden units with all gates of a unit side by side (one pass over a block
//! gives every gate of its units, so the gate math runs on registers), the biases pre-added.

use super::shape::{Cell, UNITS};
use crate::Error;
use crate::error::check_len;
use crate::gemm::pack_into;

/// A cell's weights as PyTorch stores them (`nn.RNN`, `nn.GRU`, `nn.LSTM`, layer 0):
/// row-major, gates stacked in PyTorch's order (GRU r, z, n; LSTM i, f, g, o).
///
/// ```
/// use simdnn::CellWeights;
/// let (w_ih, w_hh, b) = ([0.5; 3 * 4 * 2], [0.1; 3 * 4 * 4], [0.0; 3 * 4]);
/// let w = CellWeights::new(&w_ih, &w_hh).with_biases(Some(&b), Some(&b));
/// assert!(w.w_hr.is_none());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CellWeights<'w> {
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

impl<'w> CellWeights<'w> {
    /// Weights without biases or projection.
    pub const fn new(w_ih: &'w [f32], w_hh: &'w [f32]) -> Self {
        CellWeights {
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

    /// Checks every length against `cell` (validated).
    pub(crate) fn check(&self, cell: &Cell) -> Result<(), Error> {
        let rows = cell.rows();
        check_len("w_ih", self.w_ih.len(), rows * cell.input)?;
        check_len("w_hh", self.w_hh.len(), rows * cell.state)?;
        if let Some(b) = self.b_ih {
            check_len("b_ih", b.len(), rows)?;
        }
        if let Some(b) = self.b_hh {
            check_len("b_hh", b.len(), rows)?;
        }
        match (cell.projected(), self.w_hr) {
            (true, w_hr) => check_len(
                "w_hr",
                w_hr.map_or(0, <[f32]>::len),
                cell.state * cell.hidden,
            ),
            (false, None) => Ok(()),
            (false, Some(_)) => Err(Error::InvalidShape {
                what: "w_hr is only for an LSTM with proj_size > 0",
            }),
        }
    }
}

/// Packs checked weights into `dst` (`cell.packed_len()` long). `const` so that the
/// fixed-size cells can pack at compile time.
pub(crate) const fn pack_cell(cell: &Cell, w: &CellWeights<'_>, dst: &mut [f32]) {
    let parts = cell.parts();
    let (w_ih, rest) = dst.split_at_mut(parts.w_ih);
    let (w_hh, rest) = rest.split_at_mut(parts.w_hh);
    let (bias, rest) = rest.split_at_mut(parts.bias);
    let (b_hn, w_hr) = rest.split_at_mut(parts.b_hn);
    let (hidden, state, gates) = (cell.hidden, cell.state, cell.gates());
    pack_into(w.w_ih, cell.rows(), cell.input, w_ih);
    // Block b, state index k, gate g, unit j of the block: W_hh[g * hidden + u][k].
    let mut i = 0;
    while i < w_hh.len() {
        let j = i % UNITS;
        let g = i / UNITS % gates;
        let k = i / (UNITS * gates) % state;
        let u = i / (UNITS * gates * state) * UNITS + j;
        w_hh[i] = if u < hidden {
            w.w_hh[(g * hidden + u) * state + k]
        } else {
            0.0
        };
        i += 1;
    }
    let reset_after = cell.reset_after();
    let mut r = 0;
    while r < bias.len() {
        let from_ih = match w.b_ih {
            Some(b) => b[r],
            None => 0.0,
        };
        // A GRU with the reset after the product keeps b_hn inside `r * (..)`.
        let from_hh = match w.b_hh {
            Some(b) if !(reset_after && r >= 2 * hidden) => b[r],
            _ => 0.0,
        };
        bias[r] = from_ih + from_hh;
        r += 1;
    }
    let mut u = 0;
    while u < b_hn.len() {
        b_hn[u] = match w.b_hh {
            Some(b) => b[2 * hidden + u],
            None => 0.0,
        };
        u += 1;
    }
    if let Some(w_hr_src) = w.w_hr {
        pack_into(w_hr_src, state, hidden, w_hr);
    }
}
