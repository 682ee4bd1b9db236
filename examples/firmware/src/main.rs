//! simdnn on a Cortex-M4F (scalar backend, no heap): a keyword-spotting model (`kws.rs`: a
//! strided streaming conv1d, a GRU step per frame, additive attention pooling over the GRU
//! states, a dense classifier and a softmax) with simdnn's fixed-size types only, its
//! weights packed on the host by the build script and read in place from flash. Prints the
//! class probabilities and exits QEMU with status 0 only if they equal the host's result
//! (computed by the build script with the same model and simdnn's scalar backend) within
//! `kws::TOLERANCE`.
#![no_std]
#![no_main]

#[cfg(feature = "every-family")]
mod families;
mod kws;
mod probe;
mod stack;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
#[cfg(not(feature = "panic-check"))]
use panic_semihosting as _;
use simdnn::{AlignedBytes, Backend, Engine, Error, f32_array_from_bytes};

/// With `panic-check` no panic may survive optimisation: the handler calls a function that
/// exists nowhere, so a reachable panic is a link error.
#[cfg(feature = "panic-check")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    unsafe extern "C" {
        fn simdnn_firmware_has_a_reachable_panic() -> !;
    }
    // SAFETY: never runs: the symbol is undefined, so a build where this is reachable
    // does not link.
    unsafe { simdnn_firmware_has_a_reachable_panic() }
}

/// A blob the build script wrote, in flash, aligned to be read in place.
macro_rules! blob {
    ($name:ident, $file:literal, $floats:expr) => {
        static $name: AlignedBytes<{ 4 * $floats }> = AlignedBytes(*include_bytes!(concat!(
            env!("OUT_DIR"),
            "/",
            $file,
            ".bin"
        )));
    };
}
blob!(CONV, "conv", kws::CONV_LEN);
blob!(CONV_BIAS, "conv_bias", kws::CONV);
blob!(GRU, "gru", kws::GRU_LEN);
blob!(POOL, "pool", kws::POOL_LEN);
blob!(DENSE, "dense", kws::CLASSES * kws::HIDDEN);
blob!(DENSE_BIAS, "dense_bias", kws::CLASSES);
blob!(INPUT, "input", kws::FRAMES);
blob!(EXPECTED, "expected", kws::CLASSES);

/// The model, its input and the host's result, read in place from the blobs.
#[allow(clippy::type_complexity)]
fn load() -> Result<
    (
        kws::Model<'static>,
        &'static [f32; kws::FRAMES],
        &'static [f32; kws::CLASSES],
    ),
    Error,
> {
    let dense: &[f32; kws::CLASSES * kws::HIDDEN] = f32_array_from_bytes("dense", &DENSE.0)?;
    let (rows, _) = dense.as_chunks::<{ kws::HIDDEN }>();
    let dense = rows.try_into().map_err(|_| Error::LengthMismatch {
        arg: "dense",
        expected: kws::CLASSES,
        got: rows.len(),
    })?;
    let model = kws::Model {
        conv: f32_array_from_bytes("conv", &CONV.0)?,
        conv_bias: f32_array_from_bytes("conv_bias", &CONV_BIAS.0)?,
        gru: f32_array_from_bytes("gru", &GRU.0)?,
        pool: f32_array_from_bytes("pool", &POOL.0)?,
        dense,
        dense_bias: f32_array_from_bytes("dense_bias", &DENSE_BIAS.0)?,
    };
    let input = f32_array_from_bytes("input", &INPUT.0)?;
    let expected = f32_array_from_bytes("expected", &EXPECTED.0)?;
    Ok((model, input, expected))
}

#[entry]
fn main() -> ! {
    let nn = Engine::new();
    let mut ok = nn.backend() == Backend::Scalar;
    let Ok((model, input, expected)) = load() else {
        fail("reading the weights")
    };
    let (probs, stack_model) = stack::peak(|| kws::infer(&nn, &model, input));
    // The largest difference from the host's result.
    let worst = probs
        .iter()
        .zip(expected)
        .map(|(p, e)| (p - e).abs())
        .fold(0.0f32, f32::max);
    ok &= worst <= kws::TOLERANCE;
    // The size probes compiled in, if any.
    ok &= probe::run(&nn);
    #[cfg(feature = "every-family")]
    {
        hprintln!("every family's fixed-size API:");
        ok &= families::run(&nn);
    }
    // A panic the optimiser cannot remove (an index it cannot bound): with `panic-check`
    // this build must fail to link, which .ci/run checks.
    #[cfg(feature = "reachable-panic")]
    {
        let table = [1u32; 4];
        ok &= table[core::hint::black_box(4)] == 1;
    }

    hprintln!(
        "simdnn on Cortex-M4F, backend {}: keyword spotting",
        nn.backend().name()
    );
    for (i, (p, e)) in probs.iter().zip(expected).enumerate() {
        hprintln!(
            "  class {}: {} ppm (host {} ppm)",
            i,
            (p * 1e6) as u32,
            (e * 1e6) as u32
        );
    }
    hprintln!(
        "largest difference from the host: {} ppb (tolerance {} ppb)",
        (worst * 1e9) as u32,
        (kws::TOLERANCE * 1e9) as u32
    );
    // Peak stack of one inference (bytes below the caller's stack pointer), for .ci/size.
    hprintln!("stack kws model: {} bytes", stack_model);
    hprintln!(
        "{}",
        if ok {
            "firmware check: OK"
        } else {
            "firmware check: FAILED"
        }
    );
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

fn fail(what: &str) -> ! {
    hprintln!("error in {}", what);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
