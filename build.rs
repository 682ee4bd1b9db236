//! Decides which SIMD backends are compiled in and exposes the choice as `cfg(simdnn_*)`.
//!
//! A backend is compiled when its cargo feature is on, the target architecture has it, and
//! either `runtime-dispatch` is on (it will be detected) or the target features are enabled
//! at compile time (it is always usable). Firmware builds therefore carry no dead SIMD code.
use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(simdnn_avx2, simdnn_avx512, simdnn_neon)");
    // Set by hand (RUSTFLAGS="--cfg simdnn_small_code") to test the firmware flavour of the
    // scalar backend on a host: see `Simd::SMALL_CODE`.
    println!("cargo::rustc-check-cfg=cfg(simdnn_small_code)");
    println!("cargo::rerun-if-changed=build.rs");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target_features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| target_features.split(',').any(|t| t == f);
    let feature = |f: &str| env::var_os(format!("CARGO_FEATURE_{}", f.to_uppercase())).is_some();
    let dispatch = feature("runtime_dispatch");

    if arch == "x86_64" && feature("avx2") && (dispatch || (has("avx2") && has("fma"))) {
        println!("cargo::rustc-cfg=simdnn_avx2");
    }
    if arch == "x86_64" && feature("avx512") && (dispatch || has("avx512f")) {
        println!("cargo::rustc-cfg=simdnn_avx512");
    }
    // NEON is part of the aarch64 baseline; there is nothing to detect.
    if arch == "aarch64" && feature("neon") && has("neon") {
        println!("cargo::rustc-cfg=simdnn_neon");
    }
}
