//! simdnn on a Cortex-M4F (scalar backend, no heap): a small keyword-spotting-like pipeline
//! of a 1-D convolution streamed frame by frame, a dense layer with weights packed at compile
//! time into flash, and a softmax. Checks the results and exits QEMU with the status.
#![no_std]
#![no_main]

mod probe;
mod stack;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
#[cfg(not(feature = "panic-check"))]
use panic_semihosting as _;

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
use simdnn::{
    Activation, Backend, Conv2dShape, Dense, Engine, PackedConv2d, PackedDense, WeightLayout,
    dense_packed_len, pack_dense,
};

const FRAMES: usize = 32;
const CONV_OUT: usize = 8;
const CLASSES: usize = 4;

/// Conv1d weights, OHWI `[8][1][3][1]`: a few edge and smoothing filters.
const CONV_W: [f32; 24] = [
    1.0, 0.0, -1.0, -1.0, 0.0, 1.0, 0.25, 0.5, 0.25, 1.0, -2.0, 1.0, //
    0.5, 0.5, 0.0, 0.0, 0.5, 0.5, -0.5, 1.0, -0.5, 0.1, 0.2, 0.3,
];
/// Dense weights `[4][8]`, packed into flash at compile time.
const DENSE_W: [[f32; CONV_OUT]; CLASSES] = [
    [0.5, -0.5, 0.1, 0.0, 0.2, 0.2, 0.0, 0.1],
    [-0.2, 0.3, 0.0, 0.4, 0.0, -0.1, 0.2, 0.0],
    [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    [0.0, 0.0, 0.5, -0.5, 0.3, 0.0, -0.3, 0.2],
];
static DENSE_PACKED: [f32; dense_packed_len(CLASSES, CONV_OUT)] = pack_dense(&DENSE_W);

#[entry]
fn main() -> ! {
    let nn = Engine::new();
    let mut ok = nn.backend() == Backend::Scalar;

    // Streaming conv1d: 1 input channel, 8 filters of width 3, fed one frame at a time.
    let shape = Conv2dShape::conv1d(0, 1, CONV_OUT, 3);
    let mut conv_storage = [0.0; 32 * 3];
    let conv = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &CONV_W, &mut conv_storage);
    let dense = PackedDense::from_packed(&DENSE_PACKED, CLASSES, CONV_OUT);
    let (Ok(conv), Ok(dense)) = (conv, dense) else {
        fail("packing")
    };
    let mut state = [0.0; 2];
    let mut scratch = [0.0; 3];
    let mut pooled = [0.0f32; CONV_OUT];
    let mut stack_conv = 0;
    for t in 0..FRAMES {
        let frame = [core::hint::black_box(if t % 8 < 4 { 1.0 } else { -1.0 })];
        let mut features = [0.0; CONV_OUT];
        let (result, stack) = stack::peak(|| {
            nn.conv1d_stream(
                &shape,
                &conv,
                None,
                Activation::Relu,
                &mut state,
                &frame,
                &mut scratch,
                &mut features,
            )
        });
        if result.is_err() {
            fail("conv1d_stream");
        }
        stack_conv = stack_conv.max(stack);
        for (p, f) in pooled.iter_mut().zip(features) {
            *p += f / FRAMES as f32;
        }
    }

    // The same layer through the fixed-size API must agree.
    let mut logits = [0.0; CLASSES];
    let (result, stack_dense) =
        stack::peak(|| nn.dense(&dense, None, Activation::Identity, &pooled, &mut logits));
    if result.is_err() {
        fail("dense");
    }
    let mut fixed = [0.0; CLASSES];
    let ((), stack_fixed_dense) = stack::peak(|| {
        Dense::new(&DENSE_W, None, Activation::Identity).forward(&nn, &pooled, &mut fixed)
    });
    ok &= logits.iter().zip(&fixed).all(|(a, b)| (a - b).abs() < 1e-5);

    let mut probs = [0.0; CLASSES];
    let (result, stack_softmax) = stack::peak(|| nn.softmax(&logits, CLASSES, None, &mut probs));
    if result.is_err() {
        fail("softmax");
    }
    let sum: f32 = probs.iter().sum();
    ok &= (sum - 1.0).abs() < 1e-5 && probs.iter().all(|p| *p > 0.0);
    // A wrong length is an error, not a panic, on the device too.
    ok &= nn.softmax(&logits, 3, None, &mut probs).is_err();
    // The size probes compiled in, if any.
    ok &= probe::run(&nn);

    hprintln!(
        "simdnn on Cortex-M4F: backend {}, logits/probs computed",
        nn.backend().name()
    );
    for (i, p) in probs.iter().enumerate() {
        hprintln!("  class {}: {} / 1000", i, (p * 1000.0) as u32);
    }
    // Peak stack of each call (bytes below the caller's stack pointer), for .ci/size.
    hprintln!("stack conv1d_stream: {} bytes", stack_conv);
    hprintln!("stack dense: {} bytes", stack_dense);
    hprintln!("stack Dense::forward: {} bytes", stack_fixed_dense);
    hprintln!("stack softmax: {} bytes", stack_softmax);
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
