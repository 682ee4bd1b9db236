//! Tails never leave their slices: every runtime-shaped entry point runs with each of its
//! inputs and outputs (and packed weights and scratch) in its own mapping, placed at the
//! very end of the mapped pages with an unmapped page right after it, then at the very
//! start with an unmapped page right before it, over every tail length of a vector, on
//! every backend. A read or write past a slice is a segmentation fault, not a silent pass.
//! (Not under Miri, which cannot call `mmap`; Miri checks bounds itself.)
#![cfg(all(unix, not(miri)))]

#[path = "common/mod.rs"]
mod common;

use simdnn::{
    Activation, AdditiveShape, AttentionPartial, AttentionShape, Conv2dShape, Direction, GruShape,
    KvCache, LstmShape, MhaShape, MhaWeights, PackedAdditive, PackedConv2d, PackedDense, PackedGru,
    PackedLstm, PackedMha, PackedRnn, Padding, RnnShape, TorchWeights, WeightLayout,
    dense_packed_len,
};

/// `len` floats in a mapping of their own, flush against an unmapped guard page: after the
/// last float (`at_end`) or before the first.
struct Guarded {
    base: *mut libc::c_void,
    total: usize,
    data: *mut f32,
    len: usize,
}

impl Guarded {
    fn new(values: &[f32], at_end: bool) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let bytes = values.len() * 4;
        let pages = bytes.div_ceil(page).max(1);
        let total = (pages + 2) * page;
        // SAFETY: a fresh anonymous private mapping; checked below.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        // SAFETY: the first and last pages of our own mapping become inaccessible.
        unsafe {
            assert_eq!(libc::mprotect(base, page, libc::PROT_NONE), 0);
            let last = base.cast::<u8>().add((pages + 1) * page).cast();
            assert_eq!(libc::mprotect(last, page, libc::PROT_NONE), 0);
        }
        let start = (pages + 1) * page - if at_end { bytes } else { pages * page };
        // SAFETY: `start..start + bytes` lies in the accessible pages of the mapping and is
        // 4-aligned (page-aligned minus a multiple of 4).
        let data = unsafe { base.cast::<u8>().add(start).cast::<f32>() };
        // SAFETY: as above; the mapping is ours and zero-filled.
        unsafe { core::ptr::copy_nonoverlapping(values.as_ptr(), data, values.len()) };
        Guarded {
            base,
            total,
            data,
            len: values.len(),
        }
    }

    fn zeros(len: usize, at_end: bool) -> Self {
        Self::new(&vec![0.0; len], at_end)
    }

    fn get(&self) -> &[f32] {
        // SAFETY: `len` floats written in `new`, alive as long as `self`.
        unsafe { core::slice::from_raw_parts(self.data, self.len) }
    }

    fn get_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `get`, borrowed mutably through `self`.
        unsafe { core::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`, no longer borrowed.
        unsafe { libc::munmap(self.base, self.total) };
    }
}

/// Deterministic values in [-1, 1).
fn vals(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

/// Runs `f(tail, at_end)` for every tail length of the widest vector (and one past it),
/// both placements.
fn for_tails(mut f: impl FnMut(usize, bool)) {
    for at_end in [true, false] {
        for tail in 0..=17 {
            f(tail, at_end);
        }
    }
}

#[test]
fn elementwise_softmax_and_dense() {
    for e in common::engines() {
        for_tails(|t, end| {
            let n = 16 + t;
            let g = |v: &[f32]| Guarded::new(v, end);
            let x = g(&vals(n, 1));
            let mut y = Guarded::zeros(n, end);
            e.activate(Activation::Gelu, x.get(), y.get_mut()).unwrap();
            e.activate_in_place(Activation::Tanh, y.get_mut());
            // Softmax and log-softmax, two rows, with a mask.
            let cols = 1 + t;
            let (x, mask) = (g(&vals(2 * cols, 2)), g(&vals(cols, 3)));
            let mut y = Guarded::zeros(2 * cols, end);
            e.softmax(x.get(), cols, Some(mask.get()), y.get_mut())
                .unwrap();
            e.log_softmax(x.get(), cols, None, y.get_mut()).unwrap();
            // Dense: packed, row-major, and the matrix product.
            let (inp, out) = (1 + t, 1 + (3 * t) % 37);
            let w = vals(out * inp, 4);
            let mut storage = Guarded::zeros(dense_packed_len(out, inp), end);
            PackedDense::pack(&w, out, inp, storage.get_mut()).unwrap();
            let packed = PackedDense::from_packed(storage.get(), out, inp).unwrap();
            let (w, bias, x) = (g(&w), g(&vals(out, 5)), g(&vals(3 * inp, 6)));
            let mut y = Guarded::zeros(3 * out, end);
            let act = Activation::Relu;
            e.dense(&packed, Some(bias.get()), act, x.get(), y.get_mut())
                .unwrap();
            let x1 = g(&vals(inp, 7));
            let mut y1 = Guarded::zeros(out, end);
            e.dense(&packed, None, act, x1.get(), y1.get_mut()).unwrap();
            e.dense_row_major(w.get(), inp, Some(bias.get()), act, x.get(), y.get_mut())
                .unwrap();
            e.matmul(3, inp, out, x.get(), &vals(inp * out, 8), y.get_mut())
                .unwrap();
        });
    }
}

#[test]
fn convolutions() {
    for e in common::engines() {
        for_tails(|t, end| {
            let g = |v: &[f32]| Guarded::new(v, end);
            let w = 2 + t;
            // One path each: one channel, few channels, Winograd, implicit GEMM (stride 2),
            // pointwise, depthwise.
            let shapes = [
                Conv2dShape::new(3, w, 1, 4, 3, 3).with_padding(Padding::Same),
                Conv2dShape::new(3, w, 3, 5, 3, 3).with_padding(Padding::Same),
                Conv2dShape::new(4, w, 8, 9, 3, 3).with_padding(Padding::Same),
                Conv2dShape::new(4, w + 2, 6, 7, 3, 3).with_stride(2, 2),
                Conv2dShape::new(2, w, 5, 1 + t, 1, 1),
                Conv2dShape::new(3, w, 8, 8, 3, 3)
                    .with_groups(8)
                    .with_padding(Padding::Same),
            ];
            for shape in shapes {
                let weights = vals(shape.weights_len().unwrap(), 9);
                let mut storage = Guarded::zeros(shape.packed_weights_len(), end);
                PackedConv2d::pack(&shape, WeightLayout::Ohwi, &weights, storage.get_mut())
                    .unwrap();
                let packed = PackedConv2d::from_packed(&shape, storage.get()).unwrap();
                let (x, bias) = (
                    g(&vals(shape.input_len().unwrap(), 10)),
                    g(&vals(shape.out_c, 11)),
                );
                let mut y = Guarded::zeros(shape.output_len().unwrap(), end);
                let act = Activation::Relu6;
                e.conv2d(&shape, &packed, Some(bias.get()), act, x.get(), y.get_mut())
                    .unwrap();
            }
            // The stream, stride 1 and 2.
            for stride in [1, 2] {
                let shape = Conv2dShape::conv1d(0, 2, 3, 3).with_stride(1, stride);
                let weights = vals(shape.weights_len().unwrap(), 12);
                let mut storage = Guarded::zeros(shape.packed_weights_len(), end);
                PackedConv2d::pack(&shape, WeightLayout::Ohwi, &weights, storage.get_mut())
                    .unwrap();
                let packed = PackedConv2d::from_packed(&shape, storage.get()).unwrap();
                let frames = stride * (1 + t);
                let x = g(&vals(frames * 2, 13));
                let mut state = Guarded::zeros(shape.stream_state_len(), end);
                let mut scratch = Guarded::zeros(shape.stream_scratch_len(frames), end);
                let mut y = Guarded::zeros(shape.stream_outputs(frames) * 3, end);
                e.conv1d_stream(
                    &shape,
                    &packed,
                    None,
                    Activation::Identity,
                    state.get_mut(),
                    x.get(),
                    scratch.get_mut(),
                    y.get_mut(),
                )
                .unwrap();
            }
        });
    }
}

#[test]
fn recurrent_cells() {
    for e in common::engines() {
        for_tails(|t, end| {
            let g = |v: &[f32]| Guarded::new(v, end);
            let (input, hidden, steps, batch) = (1 + t, 1 + (5 * t) % 19, 3, 1 + t % 3);
            let xs = g(&vals(steps * batch * input, 14));
            let mut h = Guarded::zeros(batch * hidden, end);
            let mut c = Guarded::zeros(batch * hidden, end);
            let mut out = Guarded::zeros(steps * batch * hidden, end);
            let dir = if t % 2 == 0 {
                Direction::Forward
            } else {
                Direction::Reverse
            };
            // RNN.
            let shape = RnnShape::new(input, hidden);
            let (w_ih, w_hh) = (
                vals(shape.weights_ih_len(), 15),
                vals(shape.weights_hh_len(), 16),
            );
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let cell = PackedRnn::pack(&shape, TorchWeights::new(&w_ih, &w_hh), storage.get_mut())
                .unwrap();
            let mut scratch = Guarded::zeros(shape.batch_scratch_len(steps, batch), end);
            e.rnn_sequence(
                &cell,
                dir,
                xs.get(),
                h.get_mut(),
                Some(out.get_mut()),
                scratch.get_mut(),
            )
            .unwrap();
            // GRU.
            let shape = GruShape::new(input, hidden);
            let (w_ih, w_hh) = (
                vals(shape.weights_ih_len(), 17),
                vals(shape.weights_hh_len(), 18),
            );
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let cell = PackedGru::pack(&shape, TorchWeights::new(&w_ih, &w_hh), storage.get_mut())
                .unwrap();
            let mut scratch = Guarded::zeros(shape.batch_scratch_len(steps, batch), end);
            e.gru_sequence(
                &cell,
                dir,
                xs.get(),
                h.get_mut(),
                Some(out.get_mut()),
                scratch.get_mut(),
            )
            .unwrap();
            // LSTM, with a projection when the tail is odd.
            let mut shape = LstmShape::new(input, hidden);
            if t % 2 == 1 {
                shape = shape.with_projection(1 + t % 5);
            }
            let (w_ih, w_hh) = (
                vals(shape.weights_ih_len(), 19),
                vals(shape.weights_hh_len(), 20),
            );
            let mut weights = TorchWeights::new(&w_ih, &w_hh);
            let w_hr = vals(shape.weights_hr_len(), 21);
            if t % 2 == 1 {
                weights = weights.with_projection(&w_hr);
            }
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let cell = PackedLstm::pack(&shape, weights, storage.get_mut()).unwrap();
            let state = shape.state_len();
            let mut h = Guarded::zeros(batch * state, end);
            let mut out = Guarded::zeros(steps * batch * state, end);
            let mut scratch = Guarded::zeros(shape.batch_scratch_len(steps, batch), end);
            e.lstm_sequence(
                &cell,
                dir,
                xs.get(),
                h.get_mut(),
                c.get_mut(),
                Some(out.get_mut()),
                scratch.get_mut(),
            )
            .unwrap();
            // One step of each cell (the batch's inputs of the first step).
            let x = g(&vals(batch * input, 37));
            let mut scratch = Guarded::zeros(shape.batch_scratch_len(1, batch), end);
            e.lstm_step(&cell, x.get(), h.get_mut(), c.get_mut(), scratch.get_mut())
                .unwrap();
            let shape = GruShape::new(input, hidden);
            let (w_ih, w_hh) = (
                vals(shape.weights_ih_len(), 38),
                vals(shape.weights_hh_len(), 39),
            );
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let cell = PackedGru::pack(&shape, TorchWeights::new(&w_ih, &w_hh), storage.get_mut())
                .unwrap();
            let mut h = Guarded::zeros(batch * hidden, end);
            let mut scratch = Guarded::zeros(shape.batch_scratch_len(1, batch), end);
            e.gru_step(&cell, x.get(), h.get_mut(), scratch.get_mut())
                .unwrap();
            let shape = RnnShape::new(input, hidden);
            let (w_ih, w_hh) = (
                vals(shape.weights_ih_len(), 40),
                vals(shape.weights_hh_len(), 41),
            );
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let cell = PackedRnn::pack(&shape, TorchWeights::new(&w_ih, &w_hh), storage.get_mut())
                .unwrap();
            let mut scratch = Guarded::zeros(shape.batch_scratch_len(1, batch), end);
            e.rnn_step(&cell, x.get(), h.get_mut(), scratch.get_mut())
                .unwrap();
        });
    }
}

#[test]
fn attention() {
    for e in common::engines() {
        for_tails(|t, end| {
            let g = |v: &[f32]| Guarded::new(v, end);
            // A few queries (the row path) and many (the tiled path), causal with a window.
            for q_len in [1 + t % 4, 5 + 4 * t] {
                let (kv_len, d) = (1 + 3 * t, 1 + t);
                let shape = AttentionShape::new(2, q_len, kv_len, d)
                    .with_kv_heads(1)
                    .with_value_dim(1 + (t + 5) % 17)
                    .with_causal(kv_len.saturating_sub(q_len))
                    .with_window(1 + t);
                let (q, k, v) = (
                    g(&vals(shape.q_size(), 22)),
                    g(&vals(shape.k_size(), 23)),
                    g(&vals(shape.v_size(), 24)),
                );
                let mask = g(&vals(q_len * kv_len, 25));
                let mut out = Guarded::zeros(shape.out_size(), end);
                let mut scratch = Guarded::zeros(shape.scratch_len(), end);
                e.attention(
                    &shape,
                    q.get(),
                    k.get(),
                    v.get(),
                    Some(mask.get()),
                    out.get_mut(),
                    scratch.get_mut(),
                )
                .unwrap();
                // Two partials over halves of the keys, merged and finished.
                let rows = 2 * q_len;
                let (mut m1, mut s1, mut a1) = (
                    Guarded::zeros(rows, end),
                    Guarded::zeros(rows, end),
                    Guarded::zeros(shape.out_size(), end),
                );
                let (mut m2, mut s2, mut a2) = (
                    Guarded::zeros(rows, end),
                    Guarded::zeros(rows, end),
                    Guarded::zeros(shape.out_size(), end),
                );
                let mut p1 = AttentionPartial {
                    max: m1.get_mut(),
                    sum: s1.get_mut(),
                    acc: a1.get_mut(),
                };
                let mut p2 = AttentionPartial {
                    max: m2.get_mut(),
                    sum: s2.get_mut(),
                    acc: a2.get_mut(),
                };
                let half = kv_len / 2;
                e.attention_partial(
                    &shape,
                    0..half,
                    q.get(),
                    k.get(),
                    v.get(),
                    None,
                    &mut p1,
                    scratch.get_mut(),
                )
                .unwrap();
                e.attention_partial(
                    &shape,
                    half..kv_len,
                    q.get(),
                    k.get(),
                    v.get(),
                    None,
                    &mut p2,
                    scratch.get_mut(),
                )
                .unwrap();
                e.attention_merge(&mut p1, &p2).unwrap();
                e.attention_finish(&p1, out.get_mut()).unwrap();
            }
            // Pooling: additive and dot-product over 1 + 2t items.
            let n = 1 + 2 * t;
            let shape = AdditiveShape::new(1 + t, 2 + t, 1 + (7 * t) % 35);
            let a = shape.attn_dim;
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let (w_q, w_k, b, w) = (
                vals(a * shape.query_dim, 26),
                vals(a * shape.key_dim, 27),
                vals(a, 28),
                vals(a, 29),
            );
            PackedAdditive::pack(&shape, &w_q, &w_k, Some(&b), &w, storage.get_mut()).unwrap();
            let att = PackedAdditive::from_packed(&shape, storage.get()).unwrap();
            let (keys, query, values) = (
                g(&vals(n * shape.key_dim, 30)),
                g(&vals(shape.query_dim, 31)),
                g(&vals(n * 3, 32)),
            );
            let mut projected = Guarded::zeros(n * a, end);
            let (mut weights, mut context, mut scratch) = (
                Guarded::zeros(n, end),
                Guarded::zeros(3, end),
                Guarded::zeros(a, end),
            );
            e.additive_keys(&att, keys.get(), projected.get_mut())
                .unwrap();
            e.additive_pool(
                &att,
                query.get(),
                projected.get(),
                values.get(),
                weights.get_mut(),
                context.get_mut(),
                scratch.get_mut(),
            )
            .unwrap();
            let dot_query = g(&vals(a, 33));
            e.attention_pool(
                projected.get(),
                dot_query.get(),
                values.get(),
                weights.get_mut(),
                context.get_mut(),
            )
            .unwrap();
            // The multi-head layer over 1 + t tokens.
            let shape = MhaShape::new(4, 2, 1 + t % 9).with_kv_heads(1);
            let (wq, wkv) = (vals(shape.q_proj_len(), 34), vals(shape.kv_proj_len(), 35));
            let weights = MhaWeights {
                w_q: &wq,
                w_k: &wkv,
                w_v: &wkv,
                w_o: &wq,
                biases: None,
            };
            let mut storage = Guarded::zeros(shape.packed_len(), end);
            let mha = PackedMha::pack(&shape, &weights, storage.get_mut()).unwrap();
            let tokens = 1 + t;
            let x = g(&vals(tokens * 4, 36));
            let mut out = Guarded::zeros(tokens * 4, end);
            let mut scratch = Guarded::zeros(shape.scratch_len(tokens), end);
            e.mha_forward(&mha, x.get(), t % 2 == 0, out.get_mut(), scratch.get_mut())
                .unwrap();
            // Decoding the same tokens one by one over a cache whose storage ends (or starts)
            // at a guard page: appends write its last rows.
            let d = shape.head_dim;
            let mut k = Guarded::zeros(tokens * d, end);
            let mut v = Guarded::zeros(tokens * d, end);
            let mut cache = KvCache::new(k.get_mut(), v.get_mut(), 1, tokens, d, d).unwrap();
            let mut scratch = Guarded::zeros(shape.scratch_len(1), end);
            for token in 0..tokens {
                let x = g(&vals(4, 42 + token));
                let mut out = Guarded::zeros(4, end);
                e.mha_decode(&mha, x.get(), &mut cache, out.get_mut(), scratch.get_mut())
                    .unwrap();
            }
            // The cache read by attention_cached, two query heads over its one head.
            let shape = AttentionShape::new(2, 1, tokens, d)
                .with_kv_heads(1)
                .with_causal(tokens - 1);
            let q = g(&vals(shape.q_size(), 43));
            let mut out = Guarded::zeros(shape.out_size(), end);
            let mut scratch = Guarded::zeros(shape.scratch_len(), end);
            e.attention_cached(
                &shape,
                q.get(),
                &cache,
                None,
                out.get_mut(),
                scratch.get_mut(),
            )
            .unwrap();
        });
    }
}
