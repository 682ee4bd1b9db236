//! Streaming conv1d (stride 1 and 2), weight conversion and the `from_packed` / `stream_*_len` helpers on
//! arbitrary shapes and chunkings: never panics, errors write nothing, and a stream fed in
//! chunks gives exactly (bit for bit) what one call over the whole stream gives.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{Activation, Conv2dShape, Engine, PackedConv2d, WeightLayout, convert_weights};

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let d = |i: usize| data[i] as usize;
    // Mostly small; byte 9 makes one dimension huge to reach the overflow checks.
    let huge = |v: usize, which: usize| if d(9) % 8 == which { usize::MAX / (1 + d(10)) } else { v };
    let shape = Conv2dShape::conv1d(0, huge(1 + d(0) % 4, 1), huge(1 + d(1) % 6, 2), huge(1 + d(2) % 6, 3))
        .with_dilation(1, huge(1 + d(3) % 3, 4))
        .with_stride(1, if d(9) % 8 == 5 { 2 } else { 1 });
    // The helpers are total functions: any shape, no panic.
    let _ = (shape.stream_history(), shape.stream_state_len(), shape.stream_scratch_len(d(4)));
    let layout = [WeightLayout::Ohwi, WeightLayout::Hwio, WeightLayout::Oihw][d(5) % 3];
    let vals: Vec<f32> = data[12..].iter().map(|&b| b as f32 / 16.0 - 8.0).collect();
    let take = |n: usize, skip: usize| -> Vec<f32> {
        (0..n).map(|i| vals.get((skip + i) % vals.len().max(1)).copied().unwrap_or(0.5)).collect()
    };
    let Ok(w_len) = shape.weights_len() else { return };
    let history = shape.stream_state_len();
    if w_len > 1 << 12 || history > 1 << 12 || shape.packed_weights_len() > 1 << 14 {
        return;
    }
    let w = take(w_len, 0);
    // Converting to another layout and back is the identity.
    let (mut other, mut back) = (vec![0.0; w_len], vec![0.0; w_len]);
    let to = [WeightLayout::Hwio, WeightLayout::Oihw, WeightLayout::Ohwi][d(5) % 3];
    convert_weights(&shape, layout, &w, to, &mut other).unwrap();
    convert_weights(&shape, to, &other, layout, &mut back).unwrap();
    assert_eq!(w, back);
    let mut storage = vec![0.0; shape.packed_weights_len()];
    let packed = PackedConv2d::pack(&shape, layout, &w, &mut storage).unwrap();
    let cut = d(6) % 3;
    let all = packed.as_slice();
    let stored = &all[..all.len() - cut.min(all.len())];
    assert_eq!(PackedConv2d::from_packed(&shape, stored).is_ok(), cut == 0 || all.is_empty());

    let (c, o) = (shape.in_c, shape.out_c);
    let frames = d(7) % 40;
    let x = take(frames * c, 3);
    let bias = (d(8) & 1 == 1).then(|| take(o, 1));
    let act = if d(8) & 2 == 0 { Activation::Identity } else { Activation::Tanh };
    let e = Engine::new();
    let mut state = vec![0.0; shape.stream_state_len()];
    // The whole stream at once, then the same in chunks of `step` frames (whole strides).
    let stride = shape.stride_w;
    let outputs = shape.stream_outputs(frames);
    let mut whole = vec![0.0; outputs * o];
    let mut scratch = vec![0.0; shape.stream_scratch_len(frames)];
    let r = e.conv1d_stream(&shape, &packed, bias.as_deref(), act, &mut state, &x, &mut scratch, &mut whole);
    if frames % stride != 0 {
        assert!(r.is_err());
        return;
    }
    r.unwrap();
    state.fill(0.0);
    let step = stride * (1 + d(11) % 7);
    let mut chunked = vec![0.0; outputs * o];
    for (xc, yc) in x.chunks(step * c).zip(chunked.chunks_mut(step / stride * o)) {
        let n = xc.len() / c;
        let mut scratch = vec![0.0; shape.stream_scratch_len(n)];
        // A wrong scratch length first: an error, nothing written.
        let mut short = vec![-1.0; scratch.len().saturating_sub(1)];
        let saved = state.clone();
        if !short.is_empty() {
            assert!(e.conv1d_stream(&shape, &packed, bias.as_deref(), act, &mut state, xc, &mut short, yc).is_err());
            assert!(short.iter().all(|&v| v == -1.0) && state == saved);
        }
        e.conv1d_stream(&shape, &packed, bias.as_deref(), act, &mut state, xc, &mut scratch, yc).unwrap();
    }
    assert!(whole.iter().zip(&chunked).all(|(a, b)| a.to_bits() == b.to_bits()), "chunked != whole");
});
