//! Weights as bytes: every family's `from_bytes`, `f32s_from_bytes` and
//! `f32_array_from_bytes` over blobs of any length at any alignment. Never panics; `Ok`
//! exactly when the blob is aligned, whole `f32`s and the packed length of the decoded
//! shape; then the floats are the blob's little-endian values, read in place.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simdnn::{
    AdditiveShape, Conv2dShape, Error, GruShape, LstmShape, MhaShape, PackedAdditive,
    PackedConv2d, PackedDense, PackedGru, PackedLstm, PackedMha, PackedRnn, RnnShape,
    dense_packed_len, f32_array_from_bytes, f32s_from_bytes,
};

/// 64-byte aligned storage, so that the blob's offset alone decides its alignment.
#[repr(C, align(64))]
struct Buffer([u8; 1 << 16]);

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let d = |i: usize| data[i] as usize;
    let (a, b, c) = (1 + d(1) % 9, 1 + d(2) % 9, 1 + d(3) % 9);
    // The blob: the rest of the input, placed at offset `shift`, possibly cut to the
    // packed length of the chosen shape plus or minus a few bytes.
    let shift = d(4) % 4;
    let mut buffer = Box::new(Buffer([0; 1 << 16]));
    let payload = &data[8..];
    // The packed length (floats) of the family and shape chosen by byte 0.
    let family = d(0) % 8;
    let floats = match family {
        0 => dense_packed_len(a, b),
        1 => Conv2dShape::new(4, 4, a, b, 1 + c % 3, 1 + c % 3).packed_weights_len(),
        2 => RnnShape::new(a, b).packed_len(),
        3 => GruShape::new(a, b).packed_len(),
        4 => LstmShape::new(a, b).packed_len(),
        5 => AdditiveShape::new(a, b, c).packed_len(),
        6 => MhaShape::new(a * 2, 2, b).with_kv_heads(1 + c % 2).packed_len(),
        _ => c,
    };
    let len = match d(5) % 4 {
        0 => payload.len(),
        // The right length, or a little off.
        k => (4 * floats + k).saturating_sub(2),
    }
    .min((1 << 16) - shift);
    for (i, byte) in buffer.0[shift..shift + len].iter_mut().enumerate() {
        *byte = payload.get(i % payload.len().max(1)).copied().unwrap_or(0x3f);
    }
    let blob = &buffer.0[shift..shift + len];
    let well_formed = shift == 0 && len % 4 == 0;
    let right = well_formed && len == 4 * floats;
    let ptr = |s: &[f32]| s.as_ptr().cast::<u8>();
    let got: Result<*const u8, Error> = match family {
        0 => PackedDense::from_bytes(blob, a, b).map(|p| ptr(p.as_slice())),
        1 => {
            let shape = Conv2dShape::new(4, 4, a, b, 1 + c % 3, 1 + c % 3);
            PackedConv2d::from_bytes(&shape, blob).map(|p| ptr(p.as_slice()))
        }
        2 => PackedRnn::from_bytes(&RnnShape::new(a, b), blob).map(|p| ptr(p.as_slice())),
        3 => PackedGru::from_bytes(&GruShape::new(a, b), blob).map(|p| ptr(p.as_slice())),
        4 => PackedLstm::from_bytes(&LstmShape::new(a, b), blob).map(|p| ptr(p.as_slice())),
        5 => PackedAdditive::from_bytes(&AdditiveShape::new(a, b, c), blob)
            .map(|p| ptr(p.as_slice())),
        6 => {
            let shape = MhaShape::new(a * 2, 2, b).with_kv_heads(1 + c % 2);
            PackedMha::from_bytes(&shape, blob).map(|p| ptr(p.as_slice()))
        }
        _ => {
            let arr = f32_array_from_bytes::<3>("w", blob).map(|p| p.as_ptr().cast::<u8>());
            // `_ => c` above: compare with the 3-float array only when c is 3.
            if c != 3 {
                assert_eq!(arr.is_ok(), well_formed && len == 12);
                return;
            }
            arr
        }
    };
    assert_eq!(got.is_ok(), right, "family {family} len {len} shift {shift} floats {floats}");
    if let Ok(p) = got {
        assert_eq!(p, blob.as_ptr(), "read in place");
    }
    // The raw view: Ok exactly when well formed, the values little-endian.
    match f32s_from_bytes("w", blob) {
        Ok(values) => {
            assert!(well_formed);
            for (v, chunk) in values.iter().zip(blob.chunks_exact(4)) {
                let want = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                assert_eq!(v.to_bits(), want.to_bits());
            }
        }
        Err(_) => assert!(!well_formed),
    }
});
