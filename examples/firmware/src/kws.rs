//! The keyword-spotting model of the firmware, with simdnn's fixed-size types only: 64
//! frames of one feature (a log-energy envelope), a causal conv1d of 8 filters over 5
//! frames with stride 2 and ReLU, a GRU of 16 units over its 32 output frames, additive
//! attention pooling (16 dims) over the GRU states with the last state as the query, a
//! dense layer to 4 classes and a softmax. One source for the firmware (`src/main.rs`), its
//! build script (which computes the host's result) and the host's test and report, which
//! include it by `#[path]`. `no_std`, no heap, no indexing that could panic.

use simdnn::{Activation, AdditivePool, Conv1dStream, Dense, Engine, GruCell};

/// Input frames, and the conv1d's stride over them.
pub const FRAMES: usize = 64;
pub const STRIDE: usize = 2;
/// Frames out of the conv1d: one GRU step each.
pub const STEPS: usize = FRAMES / STRIDE;
pub const TAPS: usize = 5;
pub const CONV: usize = 8;
pub const HIDDEN: usize = 16;
pub const ATTN: usize = 16;
pub const CLASSES: usize = 4;

/// Packed lengths, from the layers' own constants.
pub const CONV_LEN: usize = Conv1dStream::<1, CONV, TAPS, 0>::PACKED_LEN;
pub const GRU_LEN: usize = GruCell::<CONV, HIDDEN, 0>::PACKED_LEN;
pub const POOL_LEN: usize = AdditivePool::<HIDDEN, HIDDEN, ATTN, 0>::PACKED_LEN;

/// How far the firmware's probabilities may be from the host's (both scalar). The sums run
/// in the same order on both; Cortex-M4F fuses each multiply-add into one rounding
/// (`vfma`) where an x86-64 build without FMA rounds twice, so the last bits differ.
pub const TOLERANCE: f32 = 1e-5;

/// The weights: packed for the conv1d, the GRU and the pooling, row-major for the dense
/// layer (as PyTorch stores it).
#[derive(Clone, Copy)]
pub struct Model<'w> {
    pub conv: &'w [f32; CONV_LEN],
    pub conv_bias: &'w [f32; CONV],
    pub gru: &'w [f32; GRU_LEN],
    pub pool: &'w [f32; POOL_LEN],
    pub dense: &'w [[f32; HIDDEN]; CLASSES],
    pub dense_bias: &'w [f32; CLASSES],
}

/// The class probabilities of one utterance.
pub fn infer(nn: &Engine, model: &Model<'_>, input: &[f32; FRAMES]) -> [f32; CLASSES] {
    let conv = Conv1dStream::<1, CONV, TAPS, CONV_LEN>::new(
        model.conv,
        Some(model.conv_bias),
        Activation::Relu,
    );
    let gru = GruCell::<CONV, HIDDEN, GRU_LEN>::new(model.gru);
    let pool = AdditivePool::<HIDDEN, HIDDEN, ATTN, POOL_LEN>::new(model.pool);
    let dense = Dense::new(model.dense, Some(model.dense_bias), Activation::Identity);

    // Frame by frame as a device receives them: the conv1d computes on every second frame
    // and only shifts the others in; each of its outputs is one GRU step.
    let mut window = [[0.0; 1]; TAPS];
    let mut features = [0.0; CONV];
    let mut h = [0.0; HIDDEN];
    let mut gru_scratch = [0.0; GruCell::<CONV, HIDDEN, 0>::STEP_SCRATCH_LEN];
    let mut states = [[0.0; HIDDEN]; STEPS];
    for (frames, state) in input.chunks_exact(STRIDE).zip(&mut states) {
        for (i, &x) in frames.iter().enumerate() {
            if i == 0 {
                conv.step(nn, &mut window, &[x], &mut features);
                gru.step(nn, &features, &mut h, &mut gru_scratch);
            } else {
                conv.push(&mut window, &[x]);
            }
        }
        *state = h;
    }

    // Attention over the utterance: which frames matter for the last state.
    let mut projected = [[0.0; ATTN]; STEPS];
    pool.keys(nn, &states, &mut projected);
    let mut weights = [0.0; STEPS];
    let mut context = [0.0; HIDDEN];
    let mut pool_scratch = [0.0; ATTN];
    pool.pool(
        nn,
        &h,
        &projected,
        &states,
        &mut weights,
        &mut context,
        &mut pool_scratch,
    );

    let mut probs = [[0.0; CLASSES]];
    dense.forward(nn, &context, &mut probs[0]);
    nn.softmax_array(&mut probs, None);
    let [probs] = probs;
    probs
}
