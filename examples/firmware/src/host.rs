//! The keyword-spotting model on the host: the raw blobs of `model/` (written by
//! `model/make_model.py`, little-endian f32 in PyTorch's layouts) read and packed with
//! simdnn's `const` packers, called at run time. For the firmware's build script, which
//! writes the packed blobs the firmware reads from flash and the host's result it compares
//! with, and for the host's test and report; each includes this file and `kws.rs` by
//! `#[path]`.

use crate::kws::{ATTN, CLASSES, CONV, CONV_LEN, FRAMES, GRU_LEN, HIDDEN, Model, POOL_LEN, TAPS};
use simdnn::{pack_additive, pack_conv2d, pack_gru};
use std::path::Path;

/// The weights, packed, and the model's one input.
pub struct Packed {
    pub conv: Box<[f32; CONV_LEN]>,
    pub conv_bias: [f32; CONV],
    pub gru: Box<[f32; GRU_LEN]>,
    pub pool: Box<[f32; POOL_LEN]>,
    pub dense: [[f32; HIDDEN]; CLASSES],
    pub dense_bias: [f32; CLASSES],
    pub input: [f32; FRAMES],
}

/// `model/NAME.bin` as floats.
fn read(dir: &Path, name: &str) -> Vec<f32> {
    let path = dir.join(format!("{name}.bin"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `model/NAME.bin` as `R` rows of `C`.
fn rows<const R: usize, const C: usize>(dir: &Path, name: &str) -> [[f32; C]; R] {
    let v = read(dir, name);
    assert_eq!(v.len(), R * C, "{name}.bin");
    core::array::from_fn(|r| core::array::from_fn(|c| v[r * C + c]))
}

/// `model/NAME.bin` as `G` blocks of `R` rows of `C` (PyTorch's stacked gates).
fn blocks<const G: usize, const R: usize, const C: usize>(
    dir: &Path,
    name: &str,
) -> [[[f32; C]; R]; G] {
    let v = read(dir, name);
    assert_eq!(v.len(), G * R * C, "{name}.bin");
    core::array::from_fn(|g| {
        core::array::from_fn(|r| core::array::from_fn(|c| v[(g * R + r) * C + c]))
    })
}

impl Packed {
    /// Reads and packs the model in `dir` (the firmware's `model/`).
    pub fn load(dir: &Path) -> Packed {
        let [conv_bias] = rows::<1, CONV>(dir, "conv_b");
        let conv_w: [[[[f32; 1]; TAPS]; 1]; CONV] =
            blocks::<CONV, 1, TAPS>(dir, "conv_w").map(|[taps]| [taps.map(|t| [t])]);
        let gru_w_ih = blocks::<3, HIDDEN, CONV>(dir, "gru_w_ih");
        let gru_w_hh = blocks::<3, HIDDEN, HIDDEN>(dir, "gru_w_hh");
        let gru_b_ih = rows::<3, HIDDEN>(dir, "gru_b_ih");
        let gru_b_hh = rows::<3, HIDDEN>(dir, "gru_b_hh");
        let pool_w_q = rows::<ATTN, HIDDEN>(dir, "pool_w_q");
        let pool_w_k = rows::<ATTN, HIDDEN>(dir, "pool_w_k");
        let [pool_b] = rows::<1, ATTN>(dir, "pool_b");
        let [pool_w] = rows::<1, ATTN>(dir, "pool_w");
        let [dense_bias] = rows::<1, CLASSES>(dir, "dense_b");
        let [input] = rows::<1, FRAMES>(dir, "input");
        Packed {
            conv: Box::new(pack_conv2d(&conv_w)),
            conv_bias,
            gru: Box::new(pack_gru(
                &gru_w_ih,
                &gru_w_hh,
                Some(&gru_b_ih),
                Some(&gru_b_hh),
            )),
            pool: Box::new(pack_additive(&pool_w_q, &pool_w_k, Some(&pool_b), &pool_w)),
            dense: rows::<CLASSES, HIDDEN>(dir, "dense_w"),
            dense_bias,
            input,
        }
    }

    /// The model over these weights.
    pub fn model(&self) -> Model<'_> {
        Model {
            conv: &self.conv,
            conv_bias: &self.conv_bias,
            gru: &self.gru,
            pool: &self.pool,
            dense: &self.dense,
            dense_bias: &self.dense_bias,
        }
    }
}
