//! Weights as bytes: every family's `from_bytes` reads a blob of little-endian `f32` in
//! place and equals `from_packed`; a misaligned blob, a blob that is not whole `f32`s and
//! one of the wrong length are errors naming it.

use simdnn::{
    AdditiveShape, AlignedBytes, Conv2dShape, Error, GruShape, LstmShape, MhaShape, PackedAdditive,
    PackedConv2d, PackedDense, PackedGru, PackedLstm, PackedMha, PackedRnn, RnnShape,
    f32_array_from_bytes, f32s_from_bytes,
};

/// A blob of `values` as little-endian bytes, at the start of an aligned buffer.
fn blob(values: &[f32]) -> Box<AlignedBytes<65536>> {
    let mut b = Box::new(AlignedBytes([0u8; 65536]));
    for (chunk, v) in b.0.chunks_exact_mut(4).zip(values) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// `from_bytes` over the exact blob reads the same floats in place; shifted by 1 to 3
/// bytes it is misaligned; one float short or long it is the wrong length (in bytes); a
/// byte short it is not whole floats.
fn check(n: usize, from_bytes: impl Fn(&[u8]) -> Result<*const f32, Error>) {
    let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
    let b = blob(&values);
    let bytes = &b.0[..4 * n];
    assert_eq!(
        from_bytes(bytes),
        Ok(bytes.as_ptr().cast::<f32>()),
        "read in place"
    );
    for shift in 1..4 {
        assert_eq!(
            from_bytes(&b.0[shift..shift + 4 * n]).err(),
            Some(Error::Misaligned {
                arg: "bytes",
                align: 4
            })
        );
    }
    for len in [4 * n - 4, 4 * n + 4] {
        assert_eq!(
            from_bytes(&b.0[..len]).err(),
            Some(Error::LengthMismatch {
                arg: "bytes",
                expected: 4 * n,
                got: len
            })
        );
    }
    assert_eq!(
        from_bytes(&b.0[..4 * n - 1]).err(),
        Some(Error::NotAMultiple {
            arg: "bytes",
            len: 4 * n - 1,
            of: 4
        })
    );
}

#[test]
fn every_family_reads_bytes_in_place() {
    let n = simdnn::dense_packed_len(5, 3);
    check(n, |b| {
        PackedDense::from_bytes(b, 5, 3).map(|p| p.as_slice().as_ptr())
    });
    let conv = Conv2dShape::new(6, 6, 3, 8, 3, 3);
    check(conv.packed_weights_len(), |b| {
        PackedConv2d::from_bytes(&conv, b).map(|p| p.as_slice().as_ptr())
    });
    let rnn = RnnShape::new(3, 5);
    check(rnn.packed_len(), |b| {
        PackedRnn::from_bytes(&rnn, b).map(|p| p.as_slice().as_ptr())
    });
    let gru = GruShape::new(3, 5);
    check(gru.packed_len(), |b| {
        PackedGru::from_bytes(&gru, b).map(|p| p.as_slice().as_ptr())
    });
    let lstm = LstmShape::new(3, 5).with_projection(2);
    check(lstm.packed_len(), |b| {
        PackedLstm::from_bytes(&lstm, b).map(|p| p.as_slice().as_ptr())
    });
    let additive = AdditiveShape::new(3, 4, 5);
    check(additive.packed_len(), |b| {
        PackedAdditive::from_bytes(&additive, b).map(|p| p.as_slice().as_ptr())
    });
    let mha = MhaShape::new(8, 2, 4).with_kv_heads(1);
    check(mha.packed_len(), |b| {
        PackedMha::from_bytes(&mha, b).map(|p| p.as_slice().as_ptr())
    });
}

#[test]
fn raw_and_fixed_size_weights_from_bytes() {
    let values = [1.0f32, -2.5, 3.25, f32::MIN_POSITIVE, -0.0, 1e30];
    let b = blob(&values);
    // Little-endian decoding, bit for bit.
    let got = f32s_from_bytes("w", &b.0[..24]).unwrap();
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        values.map(f32::to_bits)
    );
    let arr: &[f32; 6] = f32_array_from_bytes("w", &b.0[..24]).unwrap();
    assert_eq!(arr.as_ptr(), b.0.as_ptr().cast::<f32>());
    assert_eq!(
        f32_array_from_bytes::<5>("w", &b.0[..24]),
        Err(Error::LengthMismatch {
            arg: "w",
            expected: 5,
            got: 6
        })
    );
    assert_eq!(
        f32s_from_bytes("w", &b.0[2..26]),
        Err(Error::Misaligned { arg: "w", align: 4 })
    );
    assert_eq!(f32s_from_bytes("w", &b.0[..0]), Ok(&[][..]));
    // The error says what is wrong.
    let msg = format!("{}", Error::Misaligned { arg: "w", align: 4 });
    assert!(msg.contains("`w`") && msg.contains('4'), "{msg}");
}
