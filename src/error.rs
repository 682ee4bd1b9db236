//! The one error type of the runtime-shaped API.

use crate::Backend;
use core::fmt;

/// Why a call was refused. Every runtime-shaped entry point checks all lengths up front and
/// returns one of these instead of panicking; nothing is written when an error is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A slice argument has the wrong length.
    LengthMismatch {
        /// The argument's name, as in the function signature.
        arg: &'static str,
        /// The length the other arguments imply.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A slice's length must be a whole number of rows (or vectors) of a given size.
    NotAMultiple {
        /// The argument's name.
        arg: &'static str,
        /// The length that was passed.
        len: usize,
        /// The row size it must be a multiple of.
        of: usize,
    },
    /// A dimension that must be positive is zero.
    ZeroDimension {
        /// The dimension's name.
        arg: &'static str,
    },
    /// A size computed from the shape does not fit in `usize`.
    SizeOverflow {
        /// What was being computed.
        what: &'static str,
    },
    /// The shape is inconsistent in a way no single length describes.
    InvalidShape {
        /// What is wrong.
        what: &'static str,
    },
    /// The backend was asked for explicitly but is not compiled in or not supported by this CPU.
    UnsupportedBackend(Backend),
    /// A byte blob does not start at a multiple of the alignment its values need.
    Misaligned {
        /// The argument's name.
        arg: &'static str,
        /// The alignment, in bytes.
        align: usize,
    },
    /// The call needs a kernel this build leaves out: the cargo feature that compiles it in
    /// is off (e.g. a convolution path, see `ConvPath::feature`).
    FeatureDisabled {
        /// The cargo feature.
        feature: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::LengthMismatch { arg, expected, got } => {
                write!(f, "`{arg}` has length {got}, expected {expected}")
            }
            Error::NotAMultiple { arg, len, of } => {
                write!(
                    f,
                    "`{arg}` has length {len}, which is not a multiple of {of}"
                )
            }
            Error::ZeroDimension { arg } => write!(f, "`{arg}` must be positive"),
            Error::SizeOverflow { what } => write!(f, "{what} overflows usize"),
            Error::InvalidShape { what } => write!(f, "invalid shape: {what}"),
            Error::UnsupportedBackend(b) => {
                write!(
                    f,
                    "backend `{}` is not available on this CPU or build",
                    b.name()
                )
            }
            Error::Misaligned { arg, align } => {
                write!(f, "`{arg}` does not start at a multiple of {align} bytes")
            }
            Error::FeatureDisabled { feature } => write!(
                f,
                "this call needs the `{feature}` cargo feature, which this build leaves out"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Checks that a slice has exactly the expected length.
pub(crate) fn check_len(arg: &'static str, got: usize, expected: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch { arg, expected, got })
    }
}

/// Multiplies two sizes, naming what overflowed.
pub(crate) fn checked_mul(a: usize, b: usize, what: &'static str) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::SizeOverflow { what })
}
