//! Numerical edge cases across the families, on every backend: a NaN reaches exactly the
//! outputs that read it (and every later recurrent state; in attention at least the rows
//! that see it), empty sequences and item sets
//! give the documented results, and the largest difference from the scalar backend per
//! family stays within its bound (printed with `--nocapture`; README "Accuracy contract").

use crate::common;
use simdnn::{
    Activation, AdditiveShape, AttentionShape, Backend, Conv2dShape, Direction, Engine, GruShape,
    LstmShape, PackedAdditive, PackedConv2d, PackedDense, PackedGru, PackedLstm, Padding,
    TorchWeights, WeightLayout, dense_packed_len,
};

fn vals(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

fn scalar() -> Engine {
    Engine::with_backend(Backend::Scalar).unwrap()
}

/// Largest `|got - want| / max(|want|, 1)`.
fn worst(got: &[f32], want: &[f32]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn nan_reaches_exactly_what_reads_it() {
    for e in common::engines() {
        // Dense: a NaN input poisons every output; a NaN weight row only its output.
        let (out, inp) = (5, 7);
        let mut w = vals(out * inp, 1);
        w[2 * inp + 3] = f32::NAN;
        let mut storage = vec![0.0; dense_packed_len(out, inp)];
        let layer = PackedDense::pack(&w, out, inp, &mut storage).unwrap();
        let mut y = vec![0.0; out];
        e.dense(&layer, None, Activation::Identity, &vals(inp, 2), &mut y)
            .unwrap();
        for (o, v) in y.iter().enumerate() {
            assert_eq!(v.is_nan(), o == 2, "{:?} dense output {o}", e.backend());
        }
        // Direct convolution: a NaN pixel reaches the outputs whose window holds it.
        let shape = Conv2dShape::new(5, 5, 2, 3, 3, 3).with_padding(Padding::Valid);
        let wts = vals(shape.weights_len().unwrap(), 3);
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &wts, &mut storage).unwrap();
        let mut x = vals(shape.input_len().unwrap(), 4);
        x[0] = f32::NAN; // pixel (0, 0), channel 0: only output pixel (0, 0) reads it
        let mut y = vec![0.0; shape.output_len().unwrap()];
        e.conv2d(&shape, &packed, None, Activation::Identity, &x, &mut y)
            .unwrap();
        for (i, v) in y.iter().enumerate() {
            assert_eq!(v.is_nan(), i < 3, "{:?} conv output {i}", e.backend());
        }
        // GRU and LSTM: a NaN input at step 2 makes that state and every later one NaN.
        let (input, hidden, steps) = (3, 4, 5);
        let mut xs = vals(steps * input, 5);
        xs[2 * input] = f32::NAN;
        let gru = GruShape::new(input, hidden);
        let (w_ih, w_hh) = (vals(gru.weights_ih_len(), 6), vals(gru.weights_hh_len(), 7));
        let mut storage = vec![0.0; gru.packed_len()];
        let cell = PackedGru::pack(&gru, TorchWeights::new(&w_ih, &w_hh), &mut storage).unwrap();
        let (mut h, mut out) = (vec![0.0; hidden], vec![0.0; steps * hidden]);
        let mut scratch = vec![0.0; gru.scratch_len(steps)];
        e.gru_sequence(
            &cell,
            Direction::Forward,
            &xs,
            &mut h,
            Some(&mut out),
            &mut scratch,
        )
        .unwrap();
        for (t, row) in out.chunks(hidden).enumerate() {
            assert!(
                row.iter().all(|v| v.is_nan() == (t >= 2)),
                "{:?} GRU step {t}",
                e.backend()
            );
        }
        let lstm = LstmShape::new(input, hidden);
        let (w_ih, w_hh) = (
            vals(lstm.weights_ih_len(), 8),
            vals(lstm.weights_hh_len(), 9),
        );
        let mut storage = vec![0.0; lstm.packed_len()];
        let cell = PackedLstm::pack(&lstm, TorchWeights::new(&w_ih, &w_hh), &mut storage).unwrap();
        let (mut h, mut c) = (vec![0.0; hidden], vec![0.0; hidden]);
        let mut scratch = vec![0.0; lstm.scratch_len(steps)];
        e.lstm_sequence(
            &cell,
            Direction::Forward,
            &xs,
            &mut h,
            &mut c,
            Some(&mut out),
            &mut scratch,
        )
        .unwrap();
        for (t, row) in out.chunks(hidden).enumerate() {
            assert!(
                row.iter().all(|v| v.is_nan() == (t >= 2)),
                "{:?} LSTM step {t}",
                e.backend()
            );
        }
        // Attention, causal: a NaN in key 3's value reaches every row that sees key 3, in
        // that column only. (A row of the same tile that the mask hides from key 3 may get
        // it too, its weight 0 times NaN, as in a framework's matmul-softmax-matmul.)
        for q_len in [3, 9] {
            let shape = AttentionShape::new(1, q_len, 9, 4).with_causal(9 - q_len);
            let (q, k) = (vals(shape.q_size(), 10), vals(shape.k_size(), 11));
            let mut v = vals(shape.v_size(), 12);
            v[3 * 4 + 1] = f32::NAN;
            let mut out = vec![0.0; shape.out_size()];
            let mut scratch = vec![0.0; shape.scratch_len()];
            e.attention(&shape, &q, &k, &v, None, &mut out, &mut scratch)
                .unwrap();
            for (i, row) in out.chunks(4).enumerate() {
                let sees = 9 - q_len + i >= 3;
                assert!(
                    row[1].is_nan() || !sees,
                    "{:?} attention row {i} of {q_len}",
                    e.backend()
                );
                assert!(!row[0].is_nan(), "{:?} only the NaN column", e.backend());
            }
        }
    }
}

#[test]
fn empty_sequences_and_item_sets() {
    for e in common::engines() {
        // No steps: the state is left as it is.
        let gru = GruShape::new(3, 4);
        let (w_ih, w_hh) = (vals(gru.weights_ih_len(), 1), vals(gru.weights_hh_len(), 2));
        let mut storage = vec![0.0; gru.packed_len()];
        let cell = PackedGru::pack(&gru, TorchWeights::new(&w_ih, &w_hh), &mut storage).unwrap();
        let mut h = vec![0.5; 4];
        let mut scratch = vec![0.0; gru.scratch_len(0)];
        e.gru_sequence(
            &cell,
            Direction::Forward,
            &[],
            &mut h,
            Some(&mut []),
            &mut scratch,
        )
        .unwrap();
        assert_eq!(h, [0.5; 4]);
        // No keys: zero output rows; no items: zero context and no weights.
        let shape = AttentionShape::new(2, 3, 0, 4);
        let mut out = vec![f32::NAN; shape.out_size()];
        let mut scratch = vec![0.0; shape.scratch_len()];
        e.attention(
            &shape,
            &vals(shape.q_size(), 3),
            &[],
            &[],
            None,
            &mut out,
            &mut scratch,
        )
        .unwrap();
        assert!(out.iter().all(|&v| v == 0.0));
        let mut context = [f32::NAN; 3];
        e.attention_pool(&[], &[1.0, 2.0], &[], &mut [], &mut context)
            .unwrap();
        assert_eq!(context, [0.0; 3]);
        let additive = AdditiveShape::new(2, 2, 3);
        let mut storage = vec![0.0; additive.packed_len()];
        let att = PackedAdditive::pack(
            &additive,
            &[0.1; 6],
            &[0.2; 6],
            None,
            &[1.0; 3],
            &mut storage,
        )
        .unwrap();
        e.additive_pool(
            &att,
            &[1.0, 2.0],
            &[],
            &[],
            &mut [],
            &mut context,
            &mut [0.0; 3],
        )
        .unwrap();
        assert_eq!(context, [0.0; 3]);
    }
}

/// The largest difference from the scalar backend per family on ordinary data (relative to
/// `max(|value|, 1)`), every backend: printed, and bounded by 1e-5 (the goldens' bound).
#[test]
#[cfg_attr(miri, ignore = "a comparison of backends, at sizes too slow for Miri")]
fn backends_differ_by_rounding_only() {
    let s = scalar();
    for e in common::engines() {
        let mut report = Vec::new();
        // Dense 64 -> 48 over 3 rows.
        let (out, inp) = (48, 64);
        let w = vals(out * inp, 1);
        let mut storage = vec![0.0; dense_packed_len(out, inp)];
        let layer = PackedDense::pack(&w, out, inp, &mut storage).unwrap();
        let x = vals(3 * inp, 2);
        let run = |en: &Engine| {
            let mut y = vec![0.0; 3 * out];
            en.dense(&layer, None, Activation::Tanh, &x, &mut y)
                .unwrap();
            y
        };
        report.push(("dense", worst(&run(&e), &run(&s))));
        // Convolution 8x8x16 -> 16, 3x3 same (Winograd where compiled in).
        let shape = Conv2dShape::new(8, 8, 16, 16, 3, 3).with_padding(Padding::Same);
        let wts = vals(shape.weights_len().unwrap(), 3);
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &wts, &mut storage).unwrap();
        let x = vals(shape.input_len().unwrap(), 4);
        let run = |en: &Engine| {
            let mut y = vec![0.0; shape.output_len().unwrap()];
            en.conv2d(&shape, &packed, None, Activation::Identity, &x, &mut y)
                .unwrap();
            y
        };
        report.push(("conv", worst(&run(&e), &run(&s))));
        // GRU 16 -> 32 over 20 steps.
        let gru = GruShape::new(16, 32);
        let (w_ih, w_hh) = (vals(gru.weights_ih_len(), 5), vals(gru.weights_hh_len(), 6));
        let mut storage = vec![0.0; gru.packed_len()];
        let cell = PackedGru::pack(&gru, TorchWeights::new(&w_ih, &w_hh), &mut storage).unwrap();
        let xs = vals(20 * 16, 7);
        let run = |en: &Engine| {
            let (mut h, mut out) = (vec![0.0; 32], vec![0.0; 20 * 32]);
            let mut scratch = vec![0.0; gru.scratch_len(20)];
            en.gru_sequence(
                &cell,
                Direction::Forward,
                &xs,
                &mut h,
                Some(&mut out),
                &mut scratch,
            )
            .unwrap();
            out
        };
        report.push(("gru", worst(&run(&e), &run(&s))));
        // Attention, 2 heads, 70 queries over 90 keys of 16.
        let shape = AttentionShape::new(2, 70, 90, 16).with_causal(20);
        let (q, k, v) = (
            vals(shape.q_size(), 8),
            vals(shape.k_size(), 9),
            vals(shape.v_size(), 10),
        );
        let run = |en: &Engine| {
            let mut out = vec![0.0; shape.out_size()];
            let mut scratch = vec![0.0; shape.scratch_len()];
            en.attention(&shape, &q, &k, &v, None, &mut out, &mut scratch)
                .unwrap();
            out
        };
        report.push(("attention", worst(&run(&e), &run(&s))));
        for (family, w) in report {
            println!(
                "{:<8} {family:<10} worst difference from scalar {w:.2e}",
                e.backend().name()
            );
            assert!(w <= 1e-5, "{:?} {family}: {w}", e.backend());
        }
    }
}
