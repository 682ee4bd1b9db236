//! Dense (linear) layers `y = act(W x + b)`, `W` row-major `[out][in]` as PyTorch
//! `nn.Linear` stores it.
//!
//! Two weight forms:
//! - [`PackedDense`]: `W` repacked once into panels of [`PANEL`] output features, each panel
//!   stored k-major (`panel[k][j] = W[p * PANEL + j][k]`, zero-padded). The GEMM micro-kernel
//!   keeps an `MR x PANEL` block of outputs in registers and streams the panel once per row
//!   block; the GEMV kernel streams several panels at once. Both sum each output in the same
//!   order, so a row's result does not depend on the batch it came in. The layout is the
//!   same for every backend, so weights packed once run anywhere.
//! - Row-major `W` as given ([`Engine::dense_row_major`], [`Dense`]): dot products over
//!   four rows at a time; no packing, so weights can stay in flash.

use crate::error::{check_len, checked_mul};
pub use crate::gemm::PANEL;
use crate::gemm::driver::{gemm_nn_kernel, gemm_nt, gemm_packed_kernel};
use crate::gemm::{Layer, Mat, MatMut, pack_into, packed_len};
use crate::ops::{Activation, activate_in_place_kernel, bias_only, finish};
use crate::{Engine, Error};

/// Number of f32 a packed `out_features x in_features` weight matrix occupies (saturating on
/// overflow; [`PackedDense::pack`] reports the overflow as an error).
///
/// ```
/// assert_eq!(simdnn::dense_packed_len(33, 10), 64 * 10);
/// ```
pub const fn dense_packed_len(out_features: usize, in_features: usize) -> usize {
    packed_len(out_features, in_features)
}

/// Dense weights packed for the GEMM/GEMV kernels, borrowed from caller-owned storage.
///
/// Any storage works; 64-byte aligned storage is faster where vectors are 64 bytes: each
/// panel row is then whole cache lines. A `Vec<f32>` this large is only 16-byte aligned, so
/// every AVX-512 load spans two lines: on a Sapphire Rapids-class core the 256x256 GEMV
/// took 3.9 us instead of 2.1-2.5 us.
///
/// ```
/// use simdnn::{Activation, Engine, PackedDense, dense_packed_len};
/// // y = relu(W x + b) with W = [[1, 2], [3, 4], [5, 6]] (3 outputs, 2 inputs).
/// let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut storage = [0.0; dense_packed_len(3, 2)];
/// let packed = PackedDense::pack(&w, 3, 2, &mut storage)?;
/// let mut y = [0.0; 3];
/// Engine::new().dense(&packed, Some(&[0.0, 0.0, -100.0]), Activation::Relu, &[1.0, 1.0], &mut y)?;
/// assert_eq!(y, [3.0, 7.0, 0.0]);
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PackedDense<'a> {
    data: &'a [f32],
    out_features: usize,
    in_features: usize,
}

impl<'a> PackedDense<'a> {
    /// Packs row-major `w` (`[out_features][in_features]`) into `storage`, which must be
    /// exactly [`dense_packed_len`] long.
    pub fn pack(
        w: &[f32],
        out_features: usize,
        in_features: usize,
        storage: &'a mut [f32],
    ) -> Result<Self, Error> {
        check_len(
            "w",
            w.len(),
            checked_mul(out_features, in_features, "w length")?,
        )?;
        let padded = checked_mul(out_features.div_ceil(PANEL), PANEL, "packed length")?;
        check_len(
            "storage",
            storage.len(),
            checked_mul(padded, in_features, "packed length")?,
        )?;
        pack_into(w, out_features, in_features, storage);
        Ok(PackedDense {
            data: storage,
            out_features,
            in_features,
        })
    }

    /// Wraps weights packed earlier (by [`PackedDense::pack`], [`pack_dense`] at compile
    /// time, or stored from either and read back with `bytemuck`).
    ///
    /// ```
    /// use simdnn::{PackedDense, pack_dense, dense_packed_len};
    /// const W: [[f32; 2]; 3] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    /// static PACKED: [f32; dense_packed_len(3, 2)] = pack_dense(&W);
    /// let packed = PackedDense::from_packed(&PACKED, 3, 2)?;
    /// assert_eq!(packed.out_features(), 3);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn from_packed(
        data: &'a [f32],
        out_features: usize,
        in_features: usize,
    ) -> Result<Self, Error> {
        let padded = checked_mul(out_features.div_ceil(PANEL), PANEL, "packed length")?;
        check_len(
            "data",
            data.len(),
            checked_mul(padded, in_features, "packed length")?,
        )?;
        Ok(PackedDense {
            data,
            out_features,
            in_features,
        })
    }

    /// [`PackedDense::from_packed`] over a blob of little-endian `f32` bytes, read in place
    /// (`include_bytes!` into an [`AlignedBytes`](crate::AlignedBytes)): an error if it is
    /// misaligned or not exactly the packed length.
    ///
    /// ```
    /// use simdnn::{AlignedBytes, PackedDense, dense_packed_len};
    /// static BLOB: AlignedBytes<{ 4 * dense_packed_len(3, 2) }> = AlignedBytes([0; 4 * 64]);
    /// let packed = PackedDense::from_bytes(&BLOB.0, 3, 2)?;
    /// assert_eq!(packed.in_features(), 2);
    /// assert!(PackedDense::from_bytes(&BLOB.0[4..], 3, 2).is_err());
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    #[cfg(target_endian = "little")]
    pub fn from_bytes(
        bytes: &'a [u8],
        out_features: usize,
        in_features: usize,
    ) -> Result<Self, Error> {
        crate::bytes::packed_from_bytes(bytes, |data| {
            Self::from_packed(data, out_features, in_features)
        })
    }

    /// Number of outputs.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Number of inputs.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// The packed data.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }
}

/// Packs fixed-size row-major weights at compile time (or at run time without a storage
/// argument). `P` must be `dense_packed_len(OUT, IN)`; anything else does not compile.
///
/// ```compile_fail
/// const W: [[f32; 2]; 3] = [[0.0; 2]; 3];
/// static P: [f32; 6] = simdnn::pack_dense(&W); // needs dense_packed_len(3, 2) = 64
/// ```
pub const fn pack_dense<const IN: usize, const OUT: usize, const P: usize>(
    w: &[[f32; IN]; OUT],
) -> [f32; P] {
    const {
        assert!(
            P == dense_packed_len(OUT, IN),
            "P must be dense_packed_len(OUT, IN)"
        )
    };
    let mut dst = [0.0; P];
    pack_into(w.as_flattened(), OUT, IN, &mut dst);
    dst
}

/// Checks `x` (whole rows of `inp`), `y` (as many rows of `out`) and `bias`; returns the
/// number of rows.
fn check_dense(
    out: usize,
    inp: usize,
    bias: Option<&[f32]>,
    x: &[f32],
    y: &[f32],
) -> Result<usize, Error> {
    if let Some(b) = bias {
        check_len("bias", b.len(), out)?;
    }
    let rows = if inp == 0 {
        // Without inputs the batch size comes from `y`, and there is no input to pass.
        check_len("x", x.len(), 0)?;
        if out == 0 {
            0
        } else if y.len().is_multiple_of(out) {
            y.len() / out
        } else {
            return Err(Error::NotAMultiple {
                arg: "y",
                len: y.len(),
                of: out,
            });
        }
    } else if x.len().is_multiple_of(inp) {
        x.len() / inp
    } else {
        return Err(Error::NotAMultiple {
            arg: "x",
            len: x.len(),
            of: inp,
        });
    };
    check_len("y", y.len(), checked_mul(rows, out, "y length")?)?;
    Ok(rows)
}

impl Engine {
    /// `y = act(x W^T + b)` for a batch of rows: `x` is `[batch][in]`, `y` is `[batch][out]`,
    /// the batch size is `x.len() / in`. One row runs a GEMV, more a register-blocked GEMM.
    ///
    /// Error bound: each output is within `(in + 2) * 2^-24 * sum_k |W[o][k] x[k]|` of the f64
    /// result, before the activation (whose own bound then applies).
    ///
    /// ```
    /// use simdnn::{Activation, Engine, PackedDense, dense_packed_len};
    /// let w = [1.0, 0.0, 0.0, 1.0]; // 2x2 identity
    /// let mut storage = [0.0; dense_packed_len(2, 2)];
    /// let packed = PackedDense::pack(&w, 2, 2, &mut storage)?;
    /// let x = [1.0, 2.0, 3.0, 4.0]; // two rows
    /// let mut y = [0.0; 4];
    /// Engine::new().dense(&packed, None, Activation::Identity, &x, &mut y)?;
    /// assert_eq!(y, x);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn dense(
        &self,
        weights: &PackedDense<'_>,
        bias: Option<&[f32]>,
        act: Activation,
        x: &[f32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        let (out, inp) = (weights.out_features, weights.in_features);
        check_dense(out, inp, bias, x, y)?;
        if y.is_empty() || inp == 0 {
            bias_only(self, bias, act, out, y);
            return Ok(());
        }
        let layer = Layer {
            packed: weights.data,
            out,
            inp,
            bias,
            act,
        };
        gemm_packed_kernel::run(self, layer, x, y);
        finish(self, act, y);
        Ok(())
    }

    /// `y = act(x W^T + b)` with `W` row-major `[out][in]` as given (no packing), `out` and
    /// `in` from `w.len() == out * in`. Fastest for a single row whose weights are used once
    /// or live in flash; for batches or repeated use, [`Engine::dense`] is faster.
    ///
    /// ```
    /// use simdnn::{Activation, Engine};
    /// let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 outputs x 3 inputs
    /// let mut y = [0.0; 2];
    /// Engine::new().dense_row_major(&w, 3, None, Activation::Identity, &[1.0, 1.0, 1.0], &mut y)?;
    /// assert_eq!(y, [6.0, 15.0]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn dense_row_major(
        &self,
        w: &[f32],
        in_features: usize,
        bias: Option<&[f32]>,
        act: Activation,
        x: &[f32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        let inp = in_features;
        let out = if inp == 0 {
            match bias {
                Some(b) => b.len(),
                None if w.is_empty() => y.len(),
                None => return Err(Error::ZeroDimension { arg: "in_features" }),
            }
        } else if w.len().is_multiple_of(inp) {
            w.len() / inp
        } else {
            return Err(Error::NotAMultiple {
                arg: "w",
                len: w.len(),
                of: inp,
            });
        };
        check_len("w", w.len(), checked_mul(out, inp, "w length")?)?;
        check_dense(out, inp, bias, x, y)?;
        if y.is_empty() || inp == 0 {
            bias_only(self, bias, act, out, y);
            return Ok(());
        }
        row_major(self, w, inp, bias, act, x, y);
        Ok(())
    }

    /// `C = A B` for row-major `A` (`m x k`), `B` (`k x n`) and `C` (`m x n`): the plain
    /// matrix product (NumPy `a @ b`), with `B` as given, e.g. a Keras/TensorFlow kernel
    /// (`[in][out]`) or activations. Lengths must be exactly `m * k`, `k * n` and `m * n`.
    ///
    /// ```
    /// let a = [1.0, 2.0, 3.0, 4.0]; // 2 x 2
    /// let b = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]; // 2 x 3
    /// let mut c = [0.0; 6];
    /// simdnn::Engine::new().matmul(2, 2, 3, &a, &b, &mut c)?;
    /// assert_eq!(c, [1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    pub fn matmul(
        &self,
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
    ) -> Result<(), Error> {
        check_len("a", a.len(), checked_mul(m, k, "a length")?)?;
        check_len("b", b.len(), checked_mul(k, n, "b length")?)?;
        check_len("c", c.len(), checked_mul(m, n, "c length")?)?;
        if c.is_empty() {
            return Ok(());
        }
        let (a, b) = (Mat::dense(a, m, k), Mat::dense(b, k, n));
        gemm_nn_kernel::run(self, a, b, MatMut::dense(c, n), false);
        Ok(())
    }
}

/// A fixed-size dense layer over row-major weights, e.g. `static` in flash; its shapes are
/// checked at compile time, so [`Dense::forward`] cannot fail.
///
/// ```
/// use simdnn::{Activation, Dense, Engine};
/// static W: [[f32; 3]; 2] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
/// static B: [f32; 2] = [0.5, -100.0];
/// let layer = Dense::new(&W, Some(&B), Activation::Relu);
/// let mut y = [0.0; 2];
/// layer.forward(&Engine::new(), &[1.0, 1.0, 1.0], &mut y);
/// assert_eq!(y, [6.5, 0.0]);
/// ```
///
/// An input of the wrong size does not compile:
///
/// ```compile_fail
/// use simdnn::{Activation, Dense, Engine};
/// static W: [[f32; 3]; 2] = [[0.0; 3]; 2];
/// let layer = Dense::new(&W, None, Activation::Relu);
/// let mut y = [0.0; 2];
/// layer.forward(&Engine::new(), &[1.0, 1.0], &mut y);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dense<'w, const IN: usize, const OUT: usize> {
    weights: &'w [[f32; IN]; OUT],
    bias: Option<&'w [f32; OUT]>,
    act: Activation,
}

impl<'w, const IN: usize, const OUT: usize> Dense<'w, IN, OUT> {
    /// A layer `y = act(W x + b)` over borrowed weights.
    pub const fn new(
        weights: &'w [[f32; IN]; OUT],
        bias: Option<&'w [f32; OUT]>,
        act: Activation,
    ) -> Self {
        Dense { weights, bias, act }
    }

    /// Computes `y = act(W x + b)` on `engine`'s backend.
    pub fn forward(&self, engine: &Engine, x: &[f32; IN], y: &mut [f32; OUT]) {
        let (w, inp, act) = (self.weights.as_flattened(), IN, self.act);
        let (bias, x, y) = (
            self.bias.map(|b| b.as_slice()),
            x.as_slice(),
            y.as_mut_slice(),
        );
        if IN == 0 || OUT == 0 {
            bias_only(engine, bias, act, OUT, y);
            return;
        }
        row_major(engine, w, inp, bias, act, x, y);
    }
}

/// `y = act(x W^T + b)` for row-major `W` (lengths checked, `inp > 0`, `W` not empty): the
/// `A B^T` GEMM of dot products, then the activation as a pass of its own.
fn row_major(
    engine: &Engine,
    w: &[f32],
    inp: usize,
    bias: Option<&[f32]>,
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    let (rows, out) = (x.len() / inp, w.len() / inp);
    let (a, b) = (Mat::dense(x, rows, inp), Mat::dense(w, out, inp));
    gemm_nt::run(engine, a, b, bias, MatMut::dense(y, out));
    activate_in_place_kernel::run(engine, act, y);
}
