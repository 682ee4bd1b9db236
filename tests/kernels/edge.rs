//! Numerical edge cases across the families, on every backend: a NaN reaches exactly the
//! outputs that read it (and every later recurrent state; in attention at least the rows
//! that see it), an infinity saturates or propagates as documented, extreme finite scores
//! stay finite, empty sequences, item sets and batches give the documented results, the
//! same call gives the same bits whatever the buffers' alignment and the scratch's old
//! contents, and the largest difference from the scalar backend per family stays within
//! its bound (printed with `--nocapture`; README "Accuracy contract").

use crate::common;
use simdnn::{
    Activation, AdditiveShape, AttentionShape, Backend, Conv2dShape, ConvAlgorithm, Direction,
    Engine, GruShape, LstmShape, MhaShape, MhaWeights, PackedAdditive, PackedConv2d, PackedDense,
    PackedGru, PackedLstm, PackedMha, PackedRnn, Padding, RnnShape, TorchWeights, WeightLayout,
    dense_packed_len,
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
        // RNN (tanh) 16 -> 32 over 20 steps.
        let rnn = RnnShape::new(16, 32);
        let (w_ih, w_hh) = (
            vals(rnn.weights_ih_len(), 11),
            vals(rnn.weights_hh_len(), 12),
        );
        let w_hh: Vec<f32> = w_hh.iter().map(|w| w * 0.25).collect();
        let mut storage = vec![0.0; rnn.packed_len()];
        let cell = PackedRnn::pack(&rnn, TorchWeights::new(&w_ih, &w_hh), &mut storage).unwrap();
        let run = |en: &Engine| {
            let (mut h, mut out) = (vec![0.0; 32], vec![0.0; 20 * 32]);
            let mut scratch = vec![0.0; rnn.scratch_len(20)];
            en.rnn_sequence(
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
        report.push(("rnn", worst(&run(&e), &run(&s))));
        // LSTM 16 -> 32 with a projection to 24, over 20 steps.
        let lstm = LstmShape::new(16, 32).with_projection(24);
        let (w_ih, w_hh) = (
            vals(lstm.weights_ih_len(), 13),
            vals(lstm.weights_hh_len(), 14),
        );
        let w_hr = vals(lstm.weights_hr_len(), 15);
        let weights = TorchWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: None,
            b_hh: None,
            w_hr: Some(&w_hr),
        };
        let mut storage = vec![0.0; lstm.packed_len()];
        let cell = PackedLstm::pack(&lstm, weights, &mut storage).unwrap();
        let run = |en: &Engine| {
            let (mut h, mut c, mut out) = (vec![0.0; 24], vec![0.0; 32], vec![0.0; 20 * 24]);
            let mut scratch = vec![0.0; lstm.scratch_len(20)];
            en.lstm_sequence(
                &cell,
                Direction::Forward,
                &xs,
                &mut h,
                &mut c,
                Some(&mut out),
                &mut scratch,
            )
            .unwrap();
            [out, c].concat()
        };
        report.push(("lstm", worst(&run(&e), &run(&s))));
        // Additive pooling of a 24-query over 60 keys of 16 projected to 48, values of 10.
        let additive = AdditiveShape::new(24, 16, 48);
        let (w_q, w_k) = (vals(48 * 24, 16), vals(48 * 16, 17));
        let (b, w) = (vals(48, 18), vals(48, 19));
        let mut storage = vec![0.0; additive.packed_len()];
        let att = PackedAdditive::pack(&additive, &w_q, &w_k, Some(&b), &w, &mut storage).unwrap();
        let (keys, values, query) = (vals(60 * 16, 20), vals(60 * 10, 21), vals(24, 22));
        let run = |en: &Engine| {
            let mut projected = vec![0.0; 60 * 48];
            en.additive_keys(&att, &keys, &mut projected).unwrap();
            let (mut weights, mut context, mut scratch) =
                (vec![0.0; 60], vec![0.0; 10], vec![0.0; 48]);
            en.additive_pool(
                &att,
                &query,
                &projected,
                &values,
                &mut weights,
                &mut context,
                &mut scratch,
            )
            .unwrap();
            [weights, context].concat()
        };
        report.push(("additive", worst(&run(&e), &run(&s))));
        // Multi-head attention: 24 tokens of 32, 4 heads of 8 over 2 key/value heads, causal.
        let mha = MhaShape::new(32, 4, 8).with_kv_heads(2);
        let (wq, wkv) = (vals(mha.q_proj_len(), 23), vals(mha.kv_proj_len(), 24));
        let wq: Vec<f32> = wq.iter().map(|w| w * 0.2).collect();
        let wkv: Vec<f32> = wkv.iter().map(|w| w * 0.2).collect();
        let weights = MhaWeights {
            w_q: &wq,
            w_k: &wkv,
            w_v: &wkv,
            w_o: &wq,
            biases: None,
        };
        let mut storage = vec![0.0; mha.packed_len()];
        let layer = PackedMha::pack(&mha, &weights, &mut storage).unwrap();
        let x = vals(24 * 32, 25);
        let run = |en: &Engine| {
            let (mut out, mut scratch) = (vec![0.0; 24 * 32], vec![0.0; mha.scratch_len(24)]);
            en.mha_forward(&layer, &x, true, &mut out, &mut scratch)
                .unwrap();
            out
        };
        report.push(("mha", worst(&run(&e), &run(&s))));
        for (family, w) in report {
            println!(
                "{:<8} {family:<10} worst difference from scalar {w:.2e}",
                e.backend().name()
            );
            assert!(w <= 1e-5, "{:?} {family}: {w}", e.backend());
        }
    }
}

/// Every activation of `±inf`, and the families downstream of an infinite input.
#[test]
fn infinity_saturates_or_propagates_as_documented() {
    use Activation::*;
    let nan = f32::NAN;
    // (activation, f(+inf), f(-inf)); NaN stands for NaN. `gelu` and `silu` of -inf are
    // -inf times 0 in their formulas, NaN as in PyTorch.
    let table = [
        (Identity, f32::INFINITY, f32::NEG_INFINITY),
        (Relu, f32::INFINITY, 0.0),
        (Relu6, 6.0, 0.0),
        (LeakyRelu(0.1), f32::INFINITY, f32::NEG_INFINITY),
        (Tanh, 1.0, -1.0),
        (Sigmoid, 1.0, 0.0),
        (Gelu, f32::INFINITY, nan),
        (Silu, f32::INFINITY, nan),
        (Exp, f32::INFINITY, 0.0),
    ];
    let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
    for e in common::engines() {
        let name = e.backend();
        for (act, up, down) in table {
            let mut y = [0.0; 2];
            e.activate(act, &[f32::INFINITY, f32::NEG_INFINITY], &mut y)
                .unwrap();
            assert!(
                same(y[0], up) && same(y[1], down),
                "{name:?} {act:?}: {y:?}"
            );
        }
        // Dense: one +inf input gives +-inf by the sign of its weight, NaN for a zero one.
        let (out, inp) = (4, 6);
        let mut w = vals(out * inp, 1);
        (w[0], w[inp], w[2 * inp], w[3 * inp]) = (0.5, -0.5, 0.0, 2.0);
        let mut storage = vec![0.0; dense_packed_len(out, inp)];
        let layer = PackedDense::pack(&w, out, inp, &mut storage).unwrap();
        let mut x = vals(inp, 2);
        x[0] = f32::INFINITY;
        let mut y = vec![0.0; out];
        e.dense(&layer, None, Identity, &x, &mut y).unwrap();
        let want = [f32::INFINITY, f32::NEG_INFINITY, nan, f32::INFINITY];
        assert!(
            y.iter().zip(want).all(|(&a, b)| same(a, b)),
            "{name:?} dense {y:?}"
        );
        // Direct convolution: an infinite pixel reaches only the windows that hold it.
        let shape = Conv2dShape::new(5, 5, 2, 3, 3, 3)
            .with_padding(Padding::Valid)
            .with_algorithm(ConvAlgorithm::Direct);
        let wts = vals(shape.weights_len().unwrap(), 3);
        let mut storage = vec![0.0; shape.packed_weights_len()];
        let packed = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &wts, &mut storage).unwrap();
        let mut x = vals(shape.input_len().unwrap(), 4);
        x[0] = f32::INFINITY;
        let mut y = vec![0.0; shape.output_len().unwrap()];
        e.conv2d(&shape, &packed, None, Identity, &x, &mut y)
            .unwrap();
        for (i, v) in y.iter().enumerate() {
            assert_eq!(v.is_finite(), i >= 3, "{name:?} conv output {i}");
        }
        // GRU and LSTM: an infinite input saturates the gates; with no zero weight the states
        // stay finite and within [-1, 1].
        let (input, hidden, steps) = (3, 4, 4);
        let mut xs = vals(steps * input, 5);
        xs[input] = f32::INFINITY;
        xs[2 * input + 1] = f32::NEG_INFINITY;
        let nonzero = |n, seed| -> Vec<f32> {
            vals(n, seed)
                .iter()
                .map(|v| if *v == 0.0 { 0.25 } else { *v })
                .collect()
        };
        let gru = GruShape::new(input, hidden);
        let (w_ih, w_hh) = (
            nonzero(gru.weights_ih_len(), 6),
            nonzero(gru.weights_hh_len(), 7),
        );
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
        assert!(out.iter().all(|v| v.abs() <= 1.0), "{name:?} GRU {out:?}");
        let lstm = LstmShape::new(input, hidden);
        let (w_ih, w_hh) = (
            nonzero(lstm.weights_ih_len(), 8),
            nonzero(lstm.weights_hh_len(), 9),
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
        assert!(
            out.iter().all(|v| v.abs() <= 1.0),
            "{name:?} LSTM h {out:?}"
        );
        assert!(c.iter().all(|v| v.is_finite()), "{name:?} LSTM c {c:?}");
        // Attention, on the row path and the tiled one: a score of -inf (a key with -inf
        // where every query is positive) drops that key, as a mask would; a score of +inf
        // makes the row NaN (inf - inf in the softmax, as in PyTorch's attention).
        for q_len in [2, 40] {
            let shape = AttentionShape::new(1, q_len, 50, 8);
            let mut q = vals(shape.q_size(), 10);
            q.iter_mut().step_by(8).for_each(|x| *x = 0.5);
            let (k, v) = (vals(shape.k_size(), 11), vals(shape.v_size(), 12));
            let mut scratch = vec![0.0; shape.scratch_len()];
            let mut run = |k: &[f32], mask: Option<&[f32]>| {
                let mut out = vec![0.0; shape.out_size()];
                e.attention(&shape, &q, k, &v, mask, &mut out, &mut scratch)
                    .unwrap();
                out
            };
            let mut k_minus = k.clone();
            k_minus[7 * 8] = f32::NEG_INFINITY;
            let mut mask = vec![0.0; shape.mask_size()];
            mask.iter_mut()
                .skip(7)
                .step_by(50)
                .for_each(|m| *m = f32::NEG_INFINITY);
            let (dropped, masked) = (run(&k_minus, None), run(&k, Some(&mask)));
            assert!(
                worst(&dropped, &masked) <= 1e-6,
                "{name:?} -inf score, {q_len} queries"
            );
            let mut k_plus = k.clone();
            k_plus[7 * 8] = f32::INFINITY;
            assert!(
                run(&k_plus, None).iter().all(|v| v.is_nan()),
                "{name:?} +inf score"
            );
        }
    }
}

/// Scores far beyond exp's range but finite: the softmax subtracts the maximum first, so
/// attention and pooling give the value of the best key, not an overflow.
#[test]
fn extreme_scores_stay_finite() {
    for e in common::engines() {
        let shape = AttentionShape::new(1, 40, 50, 8);
        let q: Vec<f32> = vals(shape.q_size(), 1).iter().map(|x| x * 1e18).collect();
        let (k, v) = (vals(shape.k_size(), 2), vals(shape.v_size(), 3));
        let mut out = vec![0.0; shape.out_size()];
        let mut scratch = vec![0.0; shape.scratch_len()];
        e.attention(&shape, &q, &k, &v, None, &mut out, &mut scratch)
            .unwrap();
        for (i, row) in out.chunks(8).enumerate() {
            let score = |j: usize| -> f64 {
                (0..8)
                    .map(|d| q[i * 8 + d] as f64 * k[j * 8 + d] as f64)
                    .sum()
            };
            let best = (0..50)
                .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                .unwrap();
            assert_eq!(row, &v[best * 8..][..8], "{:?} row {i}", e.backend());
        }
        // Dot-product pooling over the same keys, the first query.
        let (mut weights, mut context) = ([0.0; 50], [0.0; 8]);
        e.attention_pool(&k, &q[..8], &v, &mut weights, &mut context)
            .unwrap();
        assert_eq!(context, out[..8], "{:?} pooling", e.backend());
        assert_eq!(weights.iter().filter(|&&w| w == 1.0).count(), 1);
    }
}

/// Empty batches: nothing to compute is not an error, and nothing is written.
#[test]
fn empty_batches() {
    for e in common::engines() {
        let name = e.backend();
        let mut storage = vec![0.0; dense_packed_len(4, 3)];
        let layer = PackedDense::pack(&vals(12, 1), 4, 3, &mut storage).unwrap();
        assert!(
            e.dense(&layer, None, Activation::Tanh, &[], &mut [])
                .is_ok(),
            "{name:?} dense"
        );
        let gru = GruShape::new(3, 4);
        let (w_ih, w_hh) = (vals(gru.weights_ih_len(), 2), vals(gru.weights_hh_len(), 3));
        let mut storage = vec![0.0; gru.packed_len()];
        let cell = PackedGru::pack(&gru, TorchWeights::new(&w_ih, &w_hh), &mut storage).unwrap();
        let mut scratch = vec![0.0; gru.batch_scratch_len(5, 0)];
        let r = e.gru_sequence(&cell, Direction::Forward, &[], &mut [], None, &mut scratch);
        assert!(r.is_ok(), "{name:?} GRU batch 0: {r:?}");
        let shape = AttentionShape::new(2, 0, 5, 4);
        let mut scratch = vec![0.0; shape.scratch_len()];
        let (k, v) = (vals(shape.k_size(), 4), vals(shape.v_size(), 5));
        let r = e.attention(&shape, &[], &k, &v, None, &mut [], &mut scratch);
        assert!(r.is_ok(), "{name:?} attention of no queries: {r:?}");
        assert!(
            e.softmax(&[], 7, None, &mut []).is_ok(),
            "{name:?} softmax of no rows"
        );
        let mha = MhaShape::new(8, 2, 4);
        let w = vals(mha.q_proj_len(), 6);
        let weights = MhaWeights {
            w_q: &w,
            w_k: &w,
            w_v: &w,
            w_o: &w,
            biases: None,
        };
        let mut storage = vec![0.0; mha.packed_len()];
        let layer = PackedMha::pack(&mha, &weights, &mut storage).unwrap();
        let mut scratch = vec![0.0; mha.scratch_len(0)];
        let r = e.mha_forward(&layer, &[], true, &mut [], &mut scratch);
        assert!(
            r.is_ok(),
            "{name:?} multi-head attention of no tokens: {r:?}"
        );
    }
}

/// The same call gives the same bits whatever the alignment of its buffers (offset by 0 to
/// 15 floats) and whatever the scratch held before (zeros or NaN).
#[test]
#[cfg_attr(miri, ignore = "16 offsets of several families: too slow for Miri")]
fn same_bits_whatever_alignment_and_scratch() {
    // `v` placed `off` floats into a fresh buffer.
    fn at(v: &[f32], off: usize) -> Vec<f32> {
        let mut b = vec![-7.0; off];
        b.extend_from_slice(v);
        b
    }
    for e in common::engines() {
        let name = e.backend();
        let mut reference: Vec<Vec<f32>> = Vec::new();
        for off in 0..16 {
            let fill = if off % 2 == 0 { 0.0 } else { f32::NAN };
            let mut results = Vec::new();
            // Dense, 3 rows.
            let mut storage = at(&vec![0.0; dense_packed_len(40, 24)], off);
            let layer = PackedDense::pack(&vals(40 * 24, 1), 40, 24, &mut storage[off..]).unwrap();
            let (x, mut y) = (at(&vals(3 * 24, 2), off), at(&[0.0; 3 * 40], off));
            e.dense(&layer, None, Activation::Gelu, &x[off..], &mut y[off..])
                .unwrap();
            results.push(y[off..].to_vec());
            // Winograd convolution.
            let shape = Conv2dShape::new(6, 7, 8, 12, 3, 3).with_padding(Padding::Same);
            let wts = vals(shape.weights_len().unwrap(), 3);
            let mut storage = at(&vec![0.0; shape.packed_weights_len()], off);
            let packed =
                PackedConv2d::pack(&shape, WeightLayout::Ohwi, &wts, &mut storage[off..]).unwrap();
            let x = at(&vals(shape.input_len().unwrap(), 4), off);
            let mut y = at(&vec![0.0; shape.output_len().unwrap()], off);
            e.conv2d(
                &shape,
                &packed,
                None,
                Activation::Relu,
                &x[off..],
                &mut y[off..],
            )
            .unwrap();
            results.push(y[off..].to_vec());
            // LSTM with a projection, 6 steps.
            let lstm = LstmShape::new(5, 12).with_projection(7);
            let w_ih = vals(lstm.weights_ih_len(), 5);
            let w_hh = vals(lstm.weights_hh_len(), 6);
            let w_hr = vals(lstm.weights_hr_len(), 7);
            let weights = TorchWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: None,
                b_hh: None,
                w_hr: Some(&w_hr),
            };
            let mut storage = at(&vec![0.0; lstm.packed_len()], off);
            let cell = PackedLstm::pack(&lstm, weights, &mut storage[off..]).unwrap();
            let (mut h, mut c) = (at(&[0.1; 7], off), at(&[0.2; 12], off));
            let mut scratch = at(&vec![fill; lstm.scratch_len(6)], off);
            let xs = at(&vals(6 * 5, 8), off);
            e.lstm_sequence(
                &cell,
                Direction::Reverse,
                &xs[off..],
                &mut h[off..],
                &mut c[off..],
                None,
                &mut scratch[off..],
            )
            .unwrap();
            results.push([&h[off..], &c[off..]].concat());
            // Causal attention with a window, tiled path.
            let shape = AttentionShape::new(2, 37, 45, 12)
                .with_causal(8)
                .with_window(20);
            let (q, k, v) = (
                at(&vals(shape.q_size(), 9), off),
                at(&vals(shape.k_size(), 10), off),
                at(&vals(shape.v_size(), 11), off),
            );
            let mut out = at(&vec![0.0; shape.out_size()], off);
            let mut scratch = at(&vec![fill; shape.scratch_len()], off);
            e.attention(
                &shape,
                &q[off..],
                &k[off..],
                &v[off..],
                None,
                &mut out[off..],
                &mut scratch[off..],
            )
            .unwrap();
            results.push(out[off..].to_vec());
            if off == 0 {
                reference = results;
            } else {
                for (family, (a, b)) in reference.iter().zip(&results).enumerate() {
                    let equal = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        equal,
                        "{name:?} family {family}: offset {off} changed the bits"
                    );
                }
            }
        }
    }
}
