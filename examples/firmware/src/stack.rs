//! Peak stack of a call, by painting: fill the stack below the caller with a pattern, make
//! the call, and find the deepest word that no longer holds the pattern. What a firmware
//! author must reserve for a simdnn call on top of the stack at the call site.

/// Bytes below the stack pointer painted before a call: more than any kernel needs.
const WINDOW: usize = 32 * 1024;
/// Words just below the stack pointer left unpainted, for safety's sake (the painting loop
/// keeps its state in registers).
const MARGIN: usize = 2;
const PAINT: u32 = 0x5EED_57AC;

/// Runs `f` and returns its result with the stack it took, in bytes, counted from the stack
/// pointer of this function (so including the call itself, a few words).
#[inline(never)]
pub fn peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
    let top = (sp & !3) - MARGIN * 4;
    let bottom = top - WINDOW;
    for addr in (bottom..top).step_by(4) {
        // SAFETY: the words below the stack pointer are free stack (RAM is 4 MiB, the
        // firmware's data takes a few KiB at its bottom); no interrupt handler runs.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
    }
    let result = call(f);
    // The deepest changed word; a call that went past the window (none does) reads as the
    // whole window, a lower bound (no assert: the firmware keeps no panic path).
    let deepest = (bottom..top)
        .step_by(4)
        // SAFETY: as above, the same words, read back.
        .find(|&addr| unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT)
        .unwrap_or(top);
    (result, sp - deepest)
}

/// Calls `f` in a frame of its own below `peak`'s, so that what the optimiser inlines of `f`
/// is counted too.
#[inline(never)]
fn call<R>(f: impl FnOnce() -> R) -> R {
    f()
}
