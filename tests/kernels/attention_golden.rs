//! Attention against ONNX Runtime (`tests/golden/make_attention_golden.py`): its Attention
//! operator for grouped-query attention, and the MatMul/Softmax/MatMul graph with masks for a
//! causal query offset, a sliding window and a per-head additive mask (its NaN for a fully
//! masked row stored as simdnn's zeros).
use crate::common;

#[path = "../golden/attention_golden.rs"]
mod golden;

use golden::*;
use simdnn::AttentionShape;

fn check(
    what: &str,
    shape: AttentionShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    want: &[f32],
) {
    for e in common::engines() {
        let mut out = vec![f32::NAN; shape.out_size()];
        let mut scratch = vec![f32::NAN; shape.scratch_len()];
        e.attention(&shape, q, k, v, mask, &mut out, &mut scratch)
            .unwrap();
        for (i, (&g, &w)) in out.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{what} {:?} [{i}]: {g} vs ORT {w}",
                e.backend()
            );
        }
    }
}

#[test]
fn grouped_query_operator() {
    let shape = AttentionShape::new(GQA_HEADS, GQA_Q_LEN, GQA_KV_LEN, GQA_D)
        .with_kv_heads(GQA_KV_HEADS)
        .with_value_dim(GQA_DV);
    check("GQA", shape, GQA_Q, GQA_K, GQA_V, None, GQA_OUT);
}

#[test]
fn causal_with_query_offset() {
    let shape = AttentionShape::new(
        CAUSAL_OFFSET_HEADS,
        CAUSAL_OFFSET_Q_LEN,
        CAUSAL_OFFSET_KV_LEN,
        CAUSAL_OFFSET_D,
    )
    .with_kv_heads(CAUSAL_OFFSET_KV_HEADS)
    .with_value_dim(CAUSAL_OFFSET_DV)
    .with_causal(CAUSAL_OFFSET_OFFSET);
    check(
        "causal offset",
        shape,
        CAUSAL_OFFSET_Q,
        CAUSAL_OFFSET_K,
        CAUSAL_OFFSET_V,
        None,
        CAUSAL_OFFSET_OUT,
    );
}

#[test]
fn sliding_window() {
    let shape = AttentionShape::new(WINDOW_HEADS, WINDOW_Q_LEN, WINDOW_KV_LEN, WINDOW_D)
        .with_value_dim(WINDOW_DV)
        .with_causal(WINDOW_OFFSET)
        .with_window(WINDOW_WINDOW);
    check(
        "window", shape, WINDOW_Q, WINDOW_K, WINDOW_V, None, WINDOW_OUT,
    );
}

#[test]
fn per_head_mask_with_a_fully_masked_row() {
    let shape = AttentionShape::new(MASKED_HEADS, MASKED_Q_LEN, MASKED_KV_LEN, MASKED_D)
        .with_kv_heads(MASKED_KV_HEADS)
        .with_value_dim(MASKED_DV)
        .with_scale(0.5);
    check(
        "masked",
        shape,
        MASKED_Q,
        MASKED_K,
        MASKED_V,
        Some(MASKED_MASK),
        MASKED_OUT,
    );
}
