//! Recurrent cells against golden outputs of ONNX Runtime's RNN, GRU and LSTM operators
//! (`tests/golden/make_recurrent_golden.py`), from weights in ONNX's layout; and every
//! weight format (PyTorch, ONNX, Keras, TensorFlow Lite) packing to the same bits.
use crate::common;

#[path = "../golden/recurrent_golden.rs"]
mod golden;

use golden::*;
use simdnn::{
    Direction, GruReset, GruShape, KerasWeights, LstmShape, OnnxWeights, PackedGru, PackedLstm,
    PackedRnn, RnnActivation, RnnShape, TfliteLstmWeights, TorchWeights, Weights,
};

/// Within 1e-5 of the larger of the value and 1 (the states are at most about 1; an LSTM's
/// cell state can be larger).
fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{what} [{i}]: {g} vs ORT {w}"
        );
    }
}

enum Cell {
    Rnn(RnnShape),
    Gru(GruShape),
    Lstm(LstmShape),
}

struct Case {
    name: &'static str,
    cell: Cell,
    direction: Direction,
    w: &'static [f32],
    r: &'static [f32],
    b: &'static [f32],
    x: &'static [f32],
    h0: &'static [f32],
    c0: &'static [f32],
    y: &'static [f32],
    y_h: &'static [f32],
    y_c: &'static [f32],
}

fn run(case: &Case) {
    let weights = OnnxWeights {
        w: case.w,
        r: case.r,
        b: Some(case.b),
    };
    let hidden = case.h0.len();
    let steps = case.y.len() / hidden;
    for e in common::engines() {
        let what = format!("{} {:?}", case.name, e.backend());
        let (mut h, mut c) = (case.h0.to_vec(), case.c0.to_vec());
        let mut out = vec![f32::NAN; steps * hidden];
        match &case.cell {
            Cell::Rnn(shape) => {
                let mut storage = vec![0.0; shape.packed_len()];
                let mut scratch = vec![0.0; shape.scratch_len(steps)];
                let p = PackedRnn::pack(shape, weights, &mut storage).unwrap();
                e.rnn_sequence(
                    &p,
                    case.direction,
                    case.x,
                    &mut h,
                    Some(&mut out),
                    &mut scratch,
                )
                .unwrap();
            }
            Cell::Gru(shape) => {
                let mut storage = vec![0.0; shape.packed_len()];
                let mut scratch = vec![0.0; shape.scratch_len(steps)];
                let p = PackedGru::pack(shape, weights, &mut storage).unwrap();
                e.gru_sequence(
                    &p,
                    case.direction,
                    case.x,
                    &mut h,
                    Some(&mut out),
                    &mut scratch,
                )
                .unwrap();
            }
            Cell::Lstm(shape) => {
                let mut storage = vec![0.0; shape.packed_len()];
                let mut scratch = vec![0.0; shape.scratch_len(steps)];
                let p = PackedLstm::pack(shape, weights, &mut storage).unwrap();
                let out = Some(&mut out[..]);
                e.lstm_sequence(
                    &p,
                    case.direction,
                    case.x,
                    &mut h,
                    &mut c,
                    out,
                    &mut scratch,
                )
                .unwrap();
                close(&format!("{what} Y_c"), &c, case.y_c);
            }
        }
        close(&format!("{what} Y"), &out, case.y);
        close(&format!("{what} Y_h"), &h, case.y_h);
    }
}

#[test]
fn rnn_matches_onnx_runtime() {
    for (name, act, w, r, b, x, h0, y, y_h) in [
        (
            "tanh",
            RnnActivation::Tanh,
            RNN_TANH_W,
            RNN_TANH_R,
            RNN_TANH_B,
            RNN_TANH_X,
            RNN_TANH_H0,
            RNN_TANH_Y,
            RNN_TANH_YH,
        ),
        (
            "relu",
            RnnActivation::Relu,
            RNN_RELU_W,
            RNN_RELU_R,
            RNN_RELU_B,
            RNN_RELU_X,
            RNN_RELU_H0,
            RNN_RELU_Y,
            RNN_RELU_YH,
        ),
    ] {
        let shape = RnnShape::new(w.len() / h0.len(), h0.len()).with_activation(act);
        run(&Case {
            name,
            cell: Cell::Rnn(shape),
            direction: Direction::Forward,
            w,
            r,
            b,
            x,
            h0,
            c0: &[],
            y,
            y_h,
            y_c: &[],
        });
    }
}

#[test]
fn gru_matches_onnx_runtime() {
    let (torch, onnx) = (GruReset::AfterProduct, GruReset::BeforeProduct);
    for (name, reset, clip, direction, w, r, b, x, h0, y, y_h) in [
        (
            "linear_before_reset 1",
            torch,
            None,
            Direction::Forward,
            GRU_TORCH_W,
            GRU_TORCH_R,
            GRU_TORCH_B,
            GRU_TORCH_X,
            GRU_TORCH_H0,
            GRU_TORCH_Y,
            GRU_TORCH_YH,
        ),
        (
            "linear_before_reset 0",
            onnx,
            None,
            Direction::Forward,
            GRU_ONNX_W,
            GRU_ONNX_R,
            GRU_ONNX_B,
            GRU_ONNX_X,
            GRU_ONNX_H0,
            GRU_ONNX_Y,
            GRU_ONNX_YH,
        ),
        (
            "reverse",
            torch,
            None,
            Direction::Reverse,
            GRU_REVERSE_W,
            GRU_REVERSE_R,
            GRU_REVERSE_B,
            GRU_REVERSE_X,
            GRU_REVERSE_H0,
            GRU_REVERSE_Y,
            GRU_REVERSE_YH,
        ),
        (
            "clip",
            onnx,
            Some(0.7),
            Direction::Forward,
            GRU_CLIP_W,
            GRU_CLIP_R,
            GRU_CLIP_B,
            GRU_CLIP_X,
            GRU_CLIP_H0,
            GRU_CLIP_Y,
            GRU_CLIP_YH,
        ),
    ] {
        let hidden = h0.len();
        let shape = GruShape {
            clip,
            ..GruShape::new(w.len() / (3 * hidden), hidden).with_reset(reset)
        };
        run(&Case {
            name,
            cell: Cell::Gru(shape),
            direction,
            w,
            r,
            b,
            x,
            h0,
            c0: &[],
            y,
            y_h,
            y_c: &[],
        });
    }
}

#[test]
fn lstm_matches_onnx_runtime() {
    for (name, clip, w, r, b, x, h0, c0, y, y_h, y_c) in [
        (
            "lstm", None, LSTM_W, LSTM_R, LSTM_B, LSTM_X, LSTM_H0, LSTM_C0, LSTM_Y, LSTM_YH,
            LSTM_YC,
        ),
        (
            "clip",
            Some(0.9),
            LSTM_CLIP_W,
            LSTM_CLIP_R,
            LSTM_CLIP_B,
            LSTM_CLIP_X,
            LSTM_CLIP_H0,
            LSTM_CLIP_C0,
            LSTM_CLIP_Y,
            LSTM_CLIP_YH,
            LSTM_CLIP_YC,
        ),
    ] {
        let hidden = h0.len();
        let shape = LstmShape {
            clip,
            ..LstmShape::new(w.len() / (4 * hidden), hidden)
        };
        run(&Case {
            name,
            cell: Cell::Lstm(shape),
            direction: Direction::Forward,
            w,
            r,
            b,
            x,
            h0,
            c0,
            y,
            y_h,
            y_c,
        });
    }
}

/// Rows `perm[0]`, `perm[1]`, .. of `gates` blocks of `rows` rows each (a gate reorder).
fn reorder(m: &[f32], gates: usize, perm: &[usize]) -> Vec<f32> {
    let block = m.len() / gates;
    perm.iter()
        .flat_map(|&g| m[g * block..(g + 1) * block].to_vec())
        .collect()
}

/// `[rows][cols]` transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols * rows)
        .map(|i| m[(i % rows) * cols + i / rows])
        .collect()
}

fn pack_gru(shape: &GruShape, w: Weights<'_>) -> Vec<u32> {
    let mut storage = vec![f32::NAN; shape.packed_len()];
    PackedGru::pack(shape, w, &mut storage).unwrap();
    storage.iter().map(|v| v.to_bits()).collect()
}

fn pack_lstm(shape: &LstmShape, w: Weights<'_>) -> Vec<u32> {
    let mut storage = vec![f32::NAN; shape.packed_len()];
    PackedLstm::pack(shape, w, &mut storage).unwrap();
    storage.iter().map(|v| v.to_bits()).collect()
}

/// The ONNX GRU weights rewritten in PyTorch's and Keras's layouts pack to the same bits.
#[test]
fn gru_formats_pack_alike() {
    let (w, r, b) = (GRU_TORCH_W, GRU_TORCH_R, GRU_TORCH_B);
    let hidden = GRU_TORCH_H0.len();
    let (rows, input) = (3 * hidden, w.len() / (3 * hidden));
    for reset in [GruReset::AfterProduct, GruReset::BeforeProduct] {
        let shape = GruShape::new(input, hidden).with_reset(reset);
        let onnx = pack_gru(&shape, OnnxWeights { w, r, b: Some(b) }.into());
        // PyTorch: r, z, n from ONNX's z, r, h.
        let (b_ih, b_hh) = b.split_at(rows);
        let torch = [
            reorder(w, 3, &[1, 0, 2]),
            reorder(r, 3, &[1, 0, 2]),
            reorder(b_ih, 3, &[1, 0, 2]),
            reorder(b_hh, 3, &[1, 0, 2]),
        ];
        let t =
            TorchWeights::new(&torch[0], &torch[1]).with_biases(Some(&torch[2]), Some(&torch[3]));
        assert_eq!(pack_gru(&shape, t.into()), onnx, "{reset:?} PyTorch");
        // Keras: z, r, h as ONNX, transposed; bias [2][3 * hidden] with the reset after.
        let (kernel, recurrent) = (transpose(w, rows, input), transpose(r, rows, hidden));
        if reset == GruReset::AfterProduct {
            let k = KerasWeights {
                kernel: &kernel,
                recurrent_kernel: &recurrent,
                bias: Some(b),
            };
            assert_eq!(pack_gru(&shape, k.into()), onnx, "Keras");
        } else {
            // Keras folds the recurrent bias into the input bias without reset_after.
            let folded: Vec<f32> = b_ih.iter().zip(b_hh).map(|(a, c)| a + c).collect();
            let k = KerasWeights {
                kernel: &kernel,
                recurrent_kernel: &recurrent,
                bias: Some(&folded),
            };
            let with_folded = OnnxWeights {
                w,
                r,
                b: Some(&[folded.clone(), vec![0.0; rows]].concat()),
            };
            assert_eq!(
                pack_gru(&shape, k.into()),
                pack_gru(&shape, with_folded.into()),
                "Keras"
            );
        }
    }
}

/// The ONNX LSTM weights rewritten in PyTorch's, Keras's and TensorFlow Lite's layouts
/// pack to the same bits.
#[test]
fn lstm_formats_pack_alike() {
    let (w, r, b) = (LSTM_W, LSTM_R, LSTM_B);
    let hidden = LSTM_H0.len();
    let (rows, input) = (4 * hidden, w.len() / (4 * hidden));
    let shape = LstmShape::new(input, hidden);
    let onnx = pack_lstm(&shape, OnnxWeights { w, r, b: Some(b) }.into());
    // i, f, g, o from ONNX's i, o, f, c.
    let order = [0, 2, 3, 1];
    let (b_ih, b_hh) = b.split_at(rows);
    let torch = [
        reorder(w, 4, &order),
        reorder(r, 4, &order),
        reorder(b_ih, 4, &order),
        reorder(b_hh, 4, &order),
    ];
    let t = TorchWeights::new(&torch[0], &torch[1]).with_biases(Some(&torch[2]), Some(&torch[3]));
    assert_eq!(pack_lstm(&shape, t.into()), onnx, "PyTorch");
    // Keras and TFLite carry one bias: compare with the biases summed.
    let summed: Vec<f32> = torch[2].iter().zip(&torch[3]).map(|(a, c)| a + c).collect();
    let one_bias = pack_lstm(
        &shape,
        TorchWeights::new(&torch[0], &torch[1])
            .with_biases(Some(&summed), None)
            .into(),
    );
    let (kernel, recurrent) = (
        transpose(&torch[0], rows, input),
        transpose(&torch[1], rows, hidden),
    );
    let k = KerasWeights {
        kernel: &kernel,
        recurrent_kernel: &recurrent,
        bias: Some(&summed),
    };
    assert_eq!(pack_lstm(&shape, k.into()), one_bias, "Keras");
    let gate = |m: &[f32], g: usize| m[g * m.len() / 4..(g + 1) * m.len() / 4].to_vec();
    let x_to: Vec<Vec<f32>> = (0..4).map(|g| gate(&torch[0], g)).collect();
    let h_to: Vec<Vec<f32>> = (0..4).map(|g| gate(&torch[1], g)).collect();
    let bias: Vec<Vec<f32>> = (0..4).map(|g| gate(&summed, g)).collect();
    let tfl = TfliteLstmWeights {
        input_to: [&x_to[0], &x_to[1], &x_to[2], &x_to[3]],
        recurrent_to: [&h_to[0], &h_to[1], &h_to[2], &h_to[3]],
        bias: Some([&bias[0], &bias[1], &bias[2], &bias[3]]),
        projection: None,
    };
    assert_eq!(pack_lstm(&shape, tfl.into()), one_bias, "TFLite");
    // With a projection: PyTorch's weight_hr and TFLite's projection_weights agree.
    let proj = LstmShape::new(input, hidden).with_projection(5);
    let h_to5: Vec<Vec<f32>> = (0..4)
        .map(|g| {
            (0..hidden * 5)
                .map(|i| (i as f32 * 0.37 + g as f32).sin())
                .collect()
        })
        .collect();
    let w_hh5: Vec<f32> = h_to5.concat();
    let w_hr: Vec<f32> = (0..5 * hidden).map(|i| (i as f32 * 0.11).cos()).collect();
    let t = TorchWeights::new(&torch[0], &w_hh5)
        .with_biases(Some(&summed), None)
        .with_projection(&w_hr);
    let tfl = TfliteLstmWeights {
        recurrent_to: [&h_to5[0], &h_to5[1], &h_to5[2], &h_to5[3]],
        projection: Some(&w_hr),
        ..tfl
    };
    assert_eq!(
        pack_lstm(&proj, t.into()),
        pack_lstm(&proj, tfl.into()),
        "TFLite projection"
    );
}

/// A bidirectional layer as two calls: ONNX Runtime's bidirectional LSTM, its tensors split
/// into the forward and the reverse direction, its output rows interleaved
/// (`Y[t] = [forward h_t, reverse h_t]`).
#[test]
fn bidirectional_is_two_directions() {
    let hidden = LSTM_BIDI_H0.len() / 2;
    let (rows, steps) = (4 * hidden, LSTM_BIDI_Y.len() / (2 * hidden));
    let input = LSTM_BIDI_W.len() / (2 * rows);
    let shape = LstmShape::new(input, hidden);
    for e in common::engines() {
        for (d, direction) in [Direction::Forward, Direction::Reverse]
            .into_iter()
            .enumerate()
        {
            let half = |m: &'static [f32]| &m[d * m.len() / 2..(d + 1) * m.len() / 2];
            let w = OnnxWeights {
                w: half(LSTM_BIDI_W),
                r: half(LSTM_BIDI_R),
                b: Some(half(LSTM_BIDI_B)),
            };
            let mut storage = vec![0.0; shape.packed_len()];
            let lstm = PackedLstm::pack(&shape, w, &mut storage).unwrap();
            let (mut h, mut c) = (half(LSTM_BIDI_H0).to_vec(), half(LSTM_BIDI_C0).to_vec());
            let mut out = vec![f32::NAN; steps * hidden];
            let mut scratch = vec![0.0; shape.scratch_len(steps)];
            e.lstm_sequence(
                &lstm,
                direction,
                LSTM_BIDI_X,
                &mut h,
                &mut c,
                Some(&mut out),
                &mut scratch,
            )
            .unwrap();
            let want: Vec<f32> = (0..steps)
                .flat_map(|t| LSTM_BIDI_Y[(2 * t + d) * hidden..][..hidden].to_vec())
                .collect();
            let what = format!("bidirectional {direction:?} {:?}", e.backend());
            close(&format!("{what} Y"), &out, &want);
            close(&format!("{what} Y_h"), &h, half(LSTM_BIDI_YH));
            close(&format!("{what} Y_c"), &c, half(LSTM_BIDI_YC));
        }
    }
}
