//! Weights as bytes: blobs of little-endian `f32` (from `include_bytes!`, a file or a
//! network buffer) read in place, with an [`Error`] instead of a panic when a blob is
//! misaligned or of the wrong size. Little-endian targets only (x86-64, AArch64, Cortex-M):
//! on a big-endian one the bytes would need a copy, and this module does not compile.

use crate::Error;

/// `N` bytes aligned for `f32` and vector loads, so that `include_bytes!` data can be read
/// in place: `static W: AlignedBytes<N> = AlignedBytes(*include_bytes!("w.bin"));`.
///
/// ```
/// use simdnn::{AlignedBytes, f32s_from_bytes};
/// static BLOB: AlignedBytes<8> = AlignedBytes([0, 0, 128, 63, 0, 0, 0, 64]); // 1.0, 2.0
/// assert_eq!(f32s_from_bytes("blob", &BLOB.0)?, &[1.0, 2.0]);
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct AlignedBytes<const N: usize>(pub [u8; N]);

/// `bytes` (little-endian `f32`s) as `&[f32]`, in place. `arg` names the blob in the
/// error: [`Error::Misaligned`] unless `bytes` starts at a multiple of 4,
/// [`Error::NotAMultiple`] unless its length is one.
///
/// ```
/// use simdnn::{AlignedBytes, Error, f32s_from_bytes};
/// static BLOB: AlignedBytes<9> = AlignedBytes([0; 9]);
/// assert_eq!(f32s_from_bytes("w", &BLOB.0[..8])?.len(), 2);
/// assert_eq!(f32s_from_bytes("w", &BLOB.0[1..5]), Err(Error::Misaligned { arg: "w", align: 4 }));
/// assert_eq!(f32s_from_bytes("w", &BLOB.0), Err(Error::NotAMultiple { arg: "w", len: 9, of: 4 }));
/// # Ok::<(), simdnn::Error>(())
/// ```
pub fn f32s_from_bytes<'a>(arg: &'static str, bytes: &'a [u8]) -> Result<&'a [f32], Error> {
    const SIZE: usize = core::mem::size_of::<f32>();
    if !bytes.len().is_multiple_of(SIZE) {
        return Err(Error::NotAMultiple {
            arg,
            len: bytes.len(),
            of: SIZE,
        });
    }
    bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned {
        arg,
        align: core::mem::align_of::<f32>(),
    })
}

/// `bytes` as exactly `P` little-endian `f32`s, in place: the packed weights of a
/// fixed-size layer read from flash. Errors as [`f32s_from_bytes`], and
/// [`Error::LengthMismatch`] unless the blob holds exactly `P` values.
///
/// ```
/// use simdnn::{AlignedBytes, Error, f32_array_from_bytes};
/// static BLOB: AlignedBytes<8> = AlignedBytes([0, 0, 128, 63, 0, 0, 0, 64]);
/// let w: &[f32; 2] = f32_array_from_bytes("w", &BLOB.0)?;
/// assert_eq!(w, &[1.0, 2.0]);
/// assert_eq!(
///     f32_array_from_bytes::<3>("w", &BLOB.0),
///     Err(Error::LengthMismatch { arg: "w", expected: 3, got: 2 })
/// );
/// # Ok::<(), simdnn::Error>(())
/// ```
pub fn f32_array_from_bytes<'a, const P: usize>(
    arg: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [f32; P], Error> {
    let values = f32s_from_bytes(arg, bytes)?;
    values.try_into().map_err(|_| Error::LengthMismatch {
        arg,
        expected: P,
        got: values.len(),
    })
}

/// A family's `from_bytes`: `bytes` as `f32`s handed to its `from_packed` (`wrap`), a
/// length error of the data restated in bytes.
pub(crate) fn packed_from_bytes<'a, T>(
    bytes: &'a [u8],
    wrap: impl FnOnce(&'a [f32]) -> Result<T, Error>,
) -> Result<T, Error> {
    const SIZE: usize = core::mem::size_of::<f32>();
    wrap(f32s_from_bytes("bytes", bytes)?).map_err(|e| match e {
        Error::LengthMismatch {
            arg: "data",
            expected,
            got,
        } => Error::LengthMismatch {
            arg: "bytes",
            expected: expected.saturating_mul(SIZE),
            got: got * SIZE,
        },
        e => e,
    })
}
