//! The fixed-size cells: sizes are const generics, inputs, states and scratch are arrays,
//! weights are packed at compile time (or read from flash); a call cannot fail.

use super::kernel::{gru_steps, lstm_steps, rnn_steps};
use super::pack::{TorchWeights, Weights, pack_cell};
use super::shape::{Cell, GruReset, GruShape, LstmShape, RnnActivation, RnnShape};
use super::{Direction, Io, Packed};
use crate::Engine;

/// `Some(b)` as a slice.
const fn slice<const N: usize>(b: Option<&[f32; N]>) -> Option<&[f32]> {
    match b {
        Some(b) => Some(b.as_slice()),
        None => None,
    }
}

/// `Some(b)` of per-gate biases as one slice.
const fn gates<const H: usize, const G: usize>(b: Option<&[[f32; H]; G]>) -> Option<&[f32]> {
    match b {
        Some(b) => Some(b.as_flattened()),
        None => None,
    }
}

/// Packs PyTorch-layout weights of `cell` into an array (`P` checked by the caller).
const fn pack_array<const P: usize>(cell: Cell, w: TorchWeights<'_>) -> [f32; P] {
    let mut out = [0.0; P];
    pack_cell(&cell, &Weights::Torch(w), &mut out);
    out
}

/// Packs an Elman RNN's PyTorch weights at compile time for [`RnnCell`]: `w_ih`
/// `[hidden][input]`, `w_hh` `[hidden][hidden]`, biases `[hidden]`. `P` must be
/// `RnnCell::<I, H, 0>::PACKED_LEN`; anything else does not compile.
pub const fn pack_rnn<const I: usize, const H: usize, const P: usize>(
    w_ih: &[[f32; I]; H],
    w_hh: &[[f32; H]; H],
    b_ih: Option<&[f32; H]>,
    b_hh: Option<&[f32; H]>,
) -> [f32; P] {
    const {
        assert!(
            P == RnnShape::new(I, H).packed_len(),
            "P must be RnnCell::<I, H, 0>::PACKED_LEN"
        )
    };
    let w = TorchWeights::new(w_ih.as_flattened(), w_hh.as_flattened())
        .with_biases(slice(b_ih), slice(b_hh));
    pack_array(RnnShape::new(I, H).cell(), w)
}

/// Packs a GRU's PyTorch weights at compile time for [`GruCell`]: gates r, z, n, `w_ih`
/// `[3][hidden][input]` (PyTorch's `[3 * hidden][input]` is the same memory), `w_hh`
/// `[3][hidden][hidden]`, biases `[3][hidden]`. The packing serves either reset
/// convention. `P` must be `GruCell::<I, H, 0>::PACKED_LEN`.
pub const fn pack_gru<const I: usize, const H: usize, const P: usize>(
    w_ih: &[[[f32; I]; H]; 3],
    w_hh: &[[[f32; H]; H]; 3],
    b_ih: Option<&[[f32; H]; 3]>,
    b_hh: Option<&[[f32; H]; 3]>,
) -> [f32; P] {
    const {
        assert!(
            P == GruShape::new(I, H).packed_len(),
            "P must be GruCell::<I, H, 0>::PACKED_LEN"
        )
    };
    let w = TorchWeights::new(
        w_ih.as_flattened().as_flattened(),
        w_hh.as_flattened().as_flattened(),
    );
    pack_array(
        GruShape::new(I, H).cell(),
        w.with_biases(gates(b_ih), gates(b_hh)),
    )
}

/// Packs an LSTM's PyTorch weights at compile time for [`LstmCell`]: gates i, f, g, o,
/// `w_ih` `[4][hidden][input]`, `w_hh` `[4][hidden][hidden]`, biases `[4][hidden]`. `P`
/// must be `LstmCell::<I, H, 0>::PACKED_LEN`.
pub const fn pack_lstm<const I: usize, const H: usize, const P: usize>(
    w_ih: &[[[f32; I]; H]; 4],
    w_hh: &[[[f32; H]; H]; 4],
    b_ih: Option<&[[f32; H]; 4]>,
    b_hh: Option<&[[f32; H]; 4]>,
) -> [f32; P] {
    const {
        assert!(
            P == LstmShape::new(I, H).packed_len(),
            "P must be LstmCell::<I, H, 0>::PACKED_LEN"
        )
    };
    let w = TorchWeights::new(
        w_ih.as_flattened().as_flattened(),
        w_hh.as_flattened().as_flattened(),
    );
    pack_array(
        LstmShape::new(I, H).cell(),
        w.with_biases(gates(b_ih), gates(b_hh)),
    )
}

/// Asserts (at compile time where the cell is a constant) that a clip is positive.
const fn positive(clip: f32) -> f32 {
    assert!(clip > 0.0, "a clip must be positive");
    clip
}

/// Runs a fixed-size cell: every length is right by construction, so this cannot fail.
fn run(
    engine: &Engine,
    cell: Cell,
    packed: &[f32],
    io: Io<'_>,
    scratch: &mut [f32],
    kernel: impl FnOnce(&Engine, super::kernel::CellRef<'_>, super::kernel::Steps<'_>),
) {
    let steps = io.xs.len().checked_div(cell.input).unwrap_or(0);
    // The scratch array may be longer than this cell's options need (a GRU's is sized for
    // either convention).
    if let Some(scratch) = scratch.get_mut(..cell.scratch_len(steps)) {
        let _ = Packed::new(cell, packed).run(engine, io, scratch, kernel);
    }
}

/// A fixed-size Elman RNN over weights packed with [`pack_rnn`]: arrays in and out, shape
/// errors are compile errors, a call cannot fail. `P` is the packed length: name it
/// `RnnCell::<I, H, 0>::PACKED_LEN` where a length is needed, and let the compiler infer it
/// elsewhere.
///
/// ```
/// use simdnn::{Direction, Engine, RnnActivation, RnnCell, pack_rnn};
/// // A running sum: h' = relu(x + h).
/// static W: [f32; RnnCell::<1, 1, 0>::PACKED_LEN] = pack_rnn(&[[1.0]], &[[1.0]], None, None);
/// let rnn = RnnCell::<1, 1, _>::new(&W).with_activation(RnnActivation::Relu);
/// let (nn, mut h) = (Engine::new(), [0.0]);
/// let mut scratch = [0.0; RnnCell::<1, 1, 0>::scratch_len(3)];
/// let mut out = [[0.0]; 3];
/// rnn.sequence(&nn, Direction::Forward, &[[1.0], [2.0], [3.0]], &mut h, Some(&mut out), &mut scratch);
/// assert_eq!(out, [[1.0], [3.0], [6.0]]);
/// let mut scratch = [0.0; RnnCell::<1, 1, 0>::STEP_SCRATCH_LEN];
/// rnn.step(&nn, &[4.0], &mut h, &mut scratch);
/// assert_eq!(h, [10.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RnnCell<'w, const I: usize, const H: usize, const P: usize> {
    packed: &'w [f32; P],
    shape: RnnShape,
}

impl<'w, const I: usize, const H: usize, const P: usize> RnnCell<'w, I, H, P> {
    /// Length of the packed weights.
    pub const PACKED_LEN: usize = RnnShape::new(I, H).packed_len();
    /// Length of the scratch of [`RnnCell::step`].
    pub const STEP_SCRATCH_LEN: usize = Self::scratch_len(1);

    /// Length of the scratch of a [`RnnCell::sequence`] of `steps` steps.
    pub const fn scratch_len(steps: usize) -> usize {
        RnnShape::new(I, H).scratch_len(steps)
    }

    /// A tanh cell over packed weights.
    pub const fn new(packed: &'w [f32; P]) -> Self {
        const {
            assert!(
                P == Self::PACKED_LEN,
                "P must be RnnCell::<I, H, 0>::PACKED_LEN"
            );
            assert!(I > 0 && H > 0, "every size must be at least 1");
        };
        RnnCell {
            packed,
            shape: RnnShape::new(I, H),
        }
    }

    /// With the given nonlinearity.
    pub const fn with_activation(mut self, activation: RnnActivation) -> Self {
        self.shape.activation = activation;
        self
    }

    /// With a gate pre-activation clip.
    ///
    /// # Panics
    /// If `clip` is not positive: a compile error where the cell is a constant.
    pub const fn with_clip(mut self, clip: f32) -> Self {
        self.shape.clip = Some(positive(clip));
        self
    }

    /// One step: `h` updated in place from `x`.
    pub fn step<const S: usize>(
        &self,
        engine: &Engine,
        x: &[f32; I],
        h: &mut [f32; H],
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::STEP_SCRATCH_LEN, "S must be STEP_SCRATCH_LEN") };
        self.sequence::<1, S>(engine, Direction::Forward, &[*x], h, None, scratch);
    }

    /// A sequence of `T` steps from the state `h`, which holds the final state afterwards;
    /// every step's state to `out` if given.
    pub fn sequence<const T: usize, const S: usize>(
        &self,
        engine: &Engine,
        direction: Direction,
        xs: &[[f32; I]; T],
        h: &mut [f32; H],
        out: Option<&mut [[f32; H]; T]>,
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::scratch_len(T), "S must be scratch_len(T)") };
        let io = Io {
            direction,
            xs: xs.as_flattened(),
            h,
            c: &mut [],
            out: out.map(|o| o.as_flattened_mut()),
        };
        run(
            engine,
            self.shape.cell(),
            self.packed,
            io,
            scratch,
            rnn_steps::run,
        );
    }
}

/// A fixed-size GRU (PyTorch semantics unless [`GruCell::with_reset`] says otherwise) over
/// weights packed with [`pack_gru`]: arrays in and out, a call cannot fail.
///
/// ```
/// use simdnn::{Engine, GruCell, pack_gru};
/// // All weights zero: r = z = 1/2 and n = 0, so each step halves the state.
/// static W: [f32; GruCell::<2, 3, 0>::PACKED_LEN] =
///     pack_gru(&[[[0.0; 2]; 3]; 3], &[[[0.0; 3]; 3]; 3], None, None);
/// let gru = GruCell::<2, 3, _>::new(&W);
/// let (nn, mut h) = (Engine::new(), [4.0, -2.0, 1.0]);
/// let mut scratch = [0.0; GruCell::<2, 3, 0>::STEP_SCRATCH_LEN];
/// gru.step(&nn, &[1.0, 1.0], &mut h, &mut scratch);
/// assert!((h[0] - 2.0).abs() < 1e-6 && (h[1] + 1.0).abs() < 1e-6);
/// ```
///
/// A scratch of the wrong length does not compile (nor do wrong input or state sizes):
///
/// ```compile_fail
/// use simdnn::{Engine, GruCell, pack_gru};
/// static W: [f32; GruCell::<2, 3, 0>::PACKED_LEN] =
///     pack_gru(&[[[0.0; 2]; 3]; 3], &[[[0.0; 3]; 3]; 3], None, None);
/// let gru = GruCell::<2, 3, _>::new(&W);
/// let mut scratch = [0.0; 5]; // must be GruCell::<2, 3, 0>::STEP_SCRATCH_LEN
/// gru.step(&Engine::new(), &[1.0, 1.0], &mut [0.0; 3], &mut scratch);
/// ```
///
/// Nor do weights packed for another size:
///
/// ```compile_fail
/// use simdnn::pack_gru;
/// static W: [f32; 100] = pack_gru(&[[[0.0; 2]; 3]; 3], &[[[0.0; 3]; 3]; 3], None, None);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GruCell<'w, const I: usize, const H: usize, const P: usize> {
    packed: &'w [f32; P],
    shape: GruShape,
}

impl<'w, const I: usize, const H: usize, const P: usize> GruCell<'w, I, H, P> {
    /// Length of the packed weights.
    pub const PACKED_LEN: usize = GruShape::new(I, H).packed_len();
    /// Length of the scratch of [`GruCell::step`] (either reset convention).
    pub const STEP_SCRATCH_LEN: usize = Self::scratch_len(1);

    /// Length of the scratch of a [`GruCell::sequence`] of `steps` steps (either reset
    /// convention).
    pub const fn scratch_len(steps: usize) -> usize {
        GruShape::new(I, H)
            .with_reset(GruReset::BeforeProduct)
            .scratch_len(steps)
    }

    /// A GRU with PyTorch semantics over packed weights.
    pub const fn new(packed: &'w [f32; P]) -> Self {
        const {
            assert!(
                P == Self::PACKED_LEN,
                "P must be GruCell::<I, H, 0>::PACKED_LEN"
            );
            assert!(I > 0 && H > 0, "every size must be at least 1");
        };
        GruCell {
            packed,
            shape: GruShape::new(I, H),
        }
    }

    /// With the given reset convention (the packed weights serve both).
    pub const fn with_reset(mut self, reset: GruReset) -> Self {
        self.shape.reset = reset;
        self
    }

    /// With a gate pre-activation clip.
    ///
    /// # Panics
    /// If `clip` is not positive: a compile error where the cell is a constant.
    pub const fn with_clip(mut self, clip: f32) -> Self {
        self.shape.clip = Some(positive(clip));
        self
    }

    /// One step: `h` updated in place from `x`.
    pub fn step<const S: usize>(
        &self,
        engine: &Engine,
        x: &[f32; I],
        h: &mut [f32; H],
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::STEP_SCRATCH_LEN, "S must be STEP_SCRATCH_LEN") };
        self.sequence::<1, S>(engine, Direction::Forward, &[*x], h, None, scratch);
    }

    /// A sequence of `T` steps from the state `h`, which holds the final state afterwards;
    /// every step's state to `out` if given.
    pub fn sequence<const T: usize, const S: usize>(
        &self,
        engine: &Engine,
        direction: Direction,
        xs: &[[f32; I]; T],
        h: &mut [f32; H],
        out: Option<&mut [[f32; H]; T]>,
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::scratch_len(T), "S must be scratch_len(T)") };
        let io = Io {
            direction,
            xs: xs.as_flattened(),
            h,
            c: &mut [],
            out: out.map(|o| o.as_flattened_mut()),
        };
        run(
            engine,
            self.shape.cell(),
            self.packed,
            io,
            scratch,
            gru_steps::run,
        );
    }
}

/// A fixed-size LSTM over weights packed with [`pack_lstm`] (a projected LSTM runs on
/// [`PackedLstm`](crate::PackedLstm)): arrays in and out, a call cannot fail.
///
/// ```
/// use simdnn::{Engine, LstmCell, pack_lstm};
/// // Zero weights, forget-gate bias +50: c is kept, i = 1/2, g = 0, o = 1/2.
/// const B: [[f32; 1]; 4] = [[0.0], [50.0], [0.0], [0.0]];
/// static W: [f32; LstmCell::<1, 1, 0>::PACKED_LEN] =
///     pack_lstm(&[[[0.0]]; 4], &[[[0.0]]; 4], Some(&B), None);
/// let lstm = LstmCell::<1, 1, _>::new(&W).with_cell_clip(1.5);
/// let (nn, mut h, mut c) = (Engine::new(), [0.0], [2.0]);
/// let mut scratch = [0.0; LstmCell::<1, 1, 0>::STEP_SCRATCH_LEN];
/// lstm.step(&nn, &[3.0], &mut h, &mut c, &mut scratch);
/// assert_eq!(c, [1.5]); // clipped
/// assert!((h[0] - 0.5 * 1.5f32.tanh()).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LstmCell<'w, const I: usize, const H: usize, const P: usize> {
    packed: &'w [f32; P],
    shape: LstmShape,
}

impl<'w, const I: usize, const H: usize, const P: usize> LstmCell<'w, I, H, P> {
    /// Length of the packed weights.
    pub const PACKED_LEN: usize = LstmShape::new(I, H).packed_len();
    /// Length of the scratch of [`LstmCell::step`].
    pub const STEP_SCRATCH_LEN: usize = Self::scratch_len(1);

    /// Length of the scratch of a [`LstmCell::sequence`] of `steps` steps.
    pub const fn scratch_len(steps: usize) -> usize {
        LstmShape::new(I, H).scratch_len(steps)
    }

    /// An LSTM over packed weights.
    pub const fn new(packed: &'w [f32; P]) -> Self {
        const {
            assert!(
                P == Self::PACKED_LEN,
                "P must be LstmCell::<I, H, 0>::PACKED_LEN"
            );
            assert!(I > 0 && H > 0, "every size must be at least 1");
        };
        LstmCell {
            packed,
            shape: LstmShape::new(I, H),
        }
    }

    /// With a gate pre-activation clip.
    ///
    /// # Panics
    /// If `clip` is not positive: a compile error where the cell is a constant.
    pub const fn with_clip(mut self, clip: f32) -> Self {
        self.shape.clip = Some(positive(clip));
        self
    }

    /// With a cell-state clip.
    ///
    /// # Panics
    /// If `cell_clip` is not positive: a compile error where the cell is a constant.
    pub const fn with_cell_clip(mut self, cell_clip: f32) -> Self {
        self.shape.cell_clip = Some(positive(cell_clip));
        self
    }

    /// One step: `h` and `c` updated in place from `x`.
    pub fn step<const S: usize>(
        &self,
        engine: &Engine,
        x: &[f32; I],
        h: &mut [f32; H],
        c: &mut [f32; H],
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::STEP_SCRATCH_LEN, "S must be STEP_SCRATCH_LEN") };
        self.sequence::<1, S>(engine, Direction::Forward, &[*x], h, c, None, scratch);
    }

    /// A sequence of `T` steps from the state `h`, `c`, which hold the final state
    /// afterwards; every step's `h` to `out` if given.
    #[allow(clippy::too_many_arguments)] // the state is two arrays
    pub fn sequence<const T: usize, const S: usize>(
        &self,
        engine: &Engine,
        direction: Direction,
        xs: &[[f32; I]; T],
        h: &mut [f32; H],
        c: &mut [f32; H],
        out: Option<&mut [[f32; H]; T]>,
        scratch: &mut [f32; S],
    ) {
        const { assert!(S == Self::scratch_len(T), "S must be scratch_len(T)") };
        let io = Io {
            direction,
            xs: xs.as_flattened(),
            h,
            c,
            out: out.map(|o| o.as_flattened_mut()),
        };
        run(
            engine,
            self.shape.cell(),
            self.packed,
            io,
            scratch,
            lstm_steps::run,
        );
    }
}
