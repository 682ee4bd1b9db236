//! Row softmax and log-softmax with an optional additive mask.
//!
//! Three passes over each row, all in L1 for rows up to a few thousand: add the mask and
//! find the maximum; exponentiate `x - max` and sum; scale (or, for log-softmax, subtract
//! `max + ln(sum)`). Masked (`-inf`) and very negative entries go through `exp`'s
//! comparison to an exact 0, so no subnormal is ever produced: masked rows run as fast as
//! unmasked ones. A row whose every entry is `-inf` yields zeros, never NaN. Finite input
//! never gives NaN: where `x + mask` overflows to `+inf` (or an input is `+inf`), the `+inf`
//! entries share the row equally and the rest get 0.

use crate::engine::kernel_entry;
use crate::error::check_len;
use crate::ops::{Scale, SubSub, add_mask_and_max, exp_sum, map_in_place};
use crate::vmath::VecMath;
use crate::{Engine, Error};

/// Softmax or log-softmax.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Softmax,
    LogSoftmax,
}

#[inline(always)]
fn softmax_row<S: VecMath>(s: S, row: &mut [f32], mask: Option<&[f32]>, kind: Kind) {
    let max = add_mask_and_max(s, row, mask);
    if max == f32::NEG_INFINITY {
        // Fully masked, unless a NaN was dropped by the max (x86 `max` keeps its second
        // operand when either is NaN): NaN must still make the whole row NaN.
        let fill = if row.iter().any(|v| v.is_nan()) {
            f32::NAN
        } else {
            0.0
        };
        row.fill(fill);
        return;
    }
    if max == f32::INFINITY {
        infinite_row(row, kind);
        return;
    }
    match kind {
        Kind::Softmax => {
            let sum = exp_sum(s, row, max, true);
            map_in_place(s, row, Scale(1.0 / sum));
        }
        Kind::LogSoftmax => {
            // (x - max) - ln(sum): subtracting max first keeps large rows accurate.
            let log_sum = libm::logf(exp_sum(s, row, max, false));
            map_in_place(s, row, SubSub(max, log_sum));
        }
    }
}

/// A row whose maximum is `+inf` (an infinite input, or finite `x + mask` that overflowed):
/// the limit of the softmax as those entries grow together, so the `+inf` entries share the
/// mass equally and the others get 0 (log-softmax: `-ln(count)` and `-inf`). Never NaN,
/// unless the row holds a NaN. Not a hot path: plain loops.
fn infinite_row(row: &mut [f32], kind: Kind) {
    if row.iter().any(|v| v.is_nan()) {
        row.fill(f32::NAN);
        return;
    }
    let count = row.iter().filter(|&&v| v == f32::INFINITY).count() as f32;
    let (top, rest) = match kind {
        Kind::Softmax => (1.0 / count, 0.0),
        Kind::LogSoftmax => (-libm::logf(count), f32::NEG_INFINITY),
    };
    for v in row {
        *v = if *v == f32::INFINITY { top } else { rest };
    }
}

/// Every row of `data` (`cols` wide, `cols > 0`); `mask` is one row shared by all rows or
/// one per row (lengths checked by the caller).
#[inline(always)]
fn softmax_rows<S: VecMath>(s: S, data: &mut [f32], cols: usize, mask: Option<&[f32]>, kind: Kind) {
    let per_row_mask = mask.filter(|m| m.len() != cols);
    for (i, row) in data.chunks_exact_mut(cols).enumerate() {
        let m = match per_row_mask {
            Some(m) => m.get(i * cols..(i + 1) * cols),
            None => mask,
        };
        softmax_row(s, row, m, kind);
    }
}
kernel_entry!(softmax_rows(data: &mut [f32], cols: usize, mask: Option<&[f32]>, kind: Kind));

/// Checks a softmax call: `data` is whole rows of `cols`, `mask` is one row or one per row.
fn check_rows(data_len: usize, cols: usize, mask: Option<&[f32]>) -> Result<(), Error> {
    if cols == 0 {
        return if data_len == 0 {
            Ok(())
        } else {
            Err(Error::ZeroDimension { arg: "cols" })
        };
    }
    if !data_len.is_multiple_of(cols) {
        return Err(Error::NotAMultiple {
            arg: "x",
            len: data_len,
            of: cols,
        });
    }
    match mask {
        Some(m) if m.len() != cols && m.len() != data_len => Err(Error::LengthMismatch {
            arg: "mask",
            expected: data_len,
            got: m.len(),
        }),
        _ => Ok(()),
    }
}

impl Engine {
    fn softmax_impl(
        &self,
        data: &mut [f32],
        cols: usize,
        mask: Option<&[f32]>,
        kind: Kind,
    ) -> Result<(), Error> {
        check_rows(data.len(), cols, mask)?;
        if data.is_empty() {
            return Ok(());
        }
        softmax_rows::run(self, data, cols, mask, kind);
        Ok(())
    }

    /// Softmax of each `cols`-wide row of `x` plus `mask`, written to `y`.
    ///
    /// `mask` is additive (use `f32::NEG_INFINITY` to exclude an entry) and is either one row
    /// (`cols` long, shared by every row) or one per row (`x.len()` long). A row whose
    /// entries are all `-inf` gives zeros; a row with `+inf` entries (inputs, or `x + mask`
    /// overflowing) gives them equal shares and the others 0. NaN gives a NaN row; finite
    /// input never does. Error: at most 2 ulp plus 1 ulp per 2^22 of row
    /// sum mass relative to the f64 result (see the crate docs).
    ///
    /// ```
    /// use simdnn::Engine;
    /// let x = [1.0, 2.0, 3.0, 1.0, 1.0, 1.0];
    /// let mask = [0.0, 0.0, f32::NEG_INFINITY];
    /// let mut y = [0.0; 6];
    /// Engine::new().softmax(&x, 3, Some(&mask), &mut y)?;
    /// assert!((y[0] - 0.26894142).abs() < 1e-6 && y[2] == 0.0);
    /// assert!((y[3] - 0.5).abs() < 1e-6);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn softmax(
        &self,
        x: &[f32],
        cols: usize,
        mask: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<(), Error> {
        check_len("y", y.len(), x.len())?;
        check_rows(x.len(), cols, mask)?;
        y.copy_from_slice(x);
        self.softmax_impl(y, cols, mask, Kind::Softmax)
    }

    /// Softmax of each `cols`-wide row of `x` (plus `mask`), in place. See [`Engine::softmax`].
    ///
    /// ```
    /// let mut x = [0.0f32; 4];
    /// simdnn::Engine::new().softmax_in_place(&mut x, 4, None)?;
    /// assert_eq!(x, [0.25; 4]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn softmax_in_place(
        &self,
        x: &mut [f32],
        cols: usize,
        mask: Option<&[f32]>,
    ) -> Result<(), Error> {
        self.softmax_impl(x, cols, mask, Kind::Softmax)
    }

    /// Log-softmax of each row of `x` plus `mask`, written to `y`: `(x - max) - ln(sum e^(x - max))`.
    /// Masked entries give `-inf`; a fully masked row gives zeros.
    ///
    /// ```
    /// let x = [0.0f32, 0.0];
    /// let mut y = [0.0; 2];
    /// simdnn::Engine::new().log_softmax(&x, 2, None, &mut y)?;
    /// assert!((y[0] + core::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn log_softmax(
        &self,
        x: &[f32],
        cols: usize,
        mask: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<(), Error> {
        check_len("y", y.len(), x.len())?;
        check_rows(x.len(), cols, mask)?;
        y.copy_from_slice(x);
        self.softmax_impl(y, cols, mask, Kind::LogSoftmax)
    }

    /// Log-softmax in place. See [`Engine::log_softmax`].
    ///
    /// ```
    /// let mut x = [5.0f32];
    /// simdnn::Engine::new().log_softmax_in_place(&mut x, 1, None)?;
    /// assert_eq!(x, [0.0]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn log_softmax_in_place(
        &self,
        x: &mut [f32],
        cols: usize,
        mask: Option<&[f32]>,
    ) -> Result<(), Error> {
        self.softmax_impl(x, cols, mask, Kind::LogSoftmax)
    }

    /// Fixed-size softmax of each row of an `R x C` array, in place; cannot fail.
    ///
    /// ```
    /// let mut x = [[0.0f32; 2]; 3];
    /// simdnn::Engine::new().softmax_array(&mut x, None);
    /// assert_eq!(x, [[0.5; 2]; 3]);
    /// ```
    pub fn softmax_array<const R: usize, const C: usize>(
        &self,
        x: &mut [[f32; C]; R],
        mask: Option<&[f32; C]>,
    ) {
        if C == 0 {
            return;
        }
        let (data, cols, mask) = (x.as_flattened_mut(), C, mask.map(|m| m.as_slice()));
        let kind = Kind::Softmax;
        softmax_rows::run(self, data, cols, mask, kind);
    }
}
