//! Puts memory.x where cortex-m-rt's link.x looks for it, and prepares the keyword-spotting
//! model on the host: packs the raw weights of `model/` into the blobs the firmware reads
//! from flash (`OUT_DIR/*.bin`) and computes the host's result for the model's input with
//! simdnn's scalar backend (`OUT_DIR/expected.bin`), which the firmware compares with its
//! own.
use std::{env, fs, path::PathBuf};

#[path = "src/host.rs"]
mod host;
#[path = "src/kws.rs"]
#[allow(dead_code)]
mod kws;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());

    let packed = host::Packed::load("model".as_ref());
    let blobs: [(&str, &[f32]); 7] = [
        ("conv", &packed.conv[..]),
        ("conv_bias", &packed.conv_bias),
        ("gru", &packed.gru[..]),
        ("pool", &packed.pool[..]),
        ("dense", packed.dense.as_flattened()),
        ("dense_bias", &packed.dense_bias),
        ("input", &packed.input),
    ];
    for (name, values) in blobs {
        fs::write(out.join(format!("{name}.bin")), le_bytes(values)).unwrap();
    }
    let scalar = simdnn::Engine::with_backend(simdnn::Backend::Scalar).unwrap();
    let expected = kws::infer(&scalar, &packed.model(), &packed.input);
    fs::write(out.join("expected.bin"), le_bytes(&expected)).unwrap();

    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=model");
    println!("cargo:rerun-if-changed=src/kws.rs");
    println!("cargo:rerun-if-changed=src/host.rs");
}

/// Little-endian bytes of `values`, as the firmware reads them.
fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
