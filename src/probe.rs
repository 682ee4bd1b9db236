//! A peak floating-point throughput probe, so reports can state "% of peak" for the
//! machine they run on rather than a datasheet number.

use crate::Engine;
use crate::engine::kernel_entry;
use crate::simd::Simd;

/// Independent FMA chains: enough to cover 2 FMA units x 5 cycles latency.
const CHAINS: usize = 12;

#[inline(always)]
fn fma_chains<S: Simd>(s: S, iterations: u64) -> f32 {
    let mut acc = [s.splat(1.0); CHAINS];
    let (m, c) = (s.splat(0.999_999), s.splat(1.0e-7));
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = s.mul_add(*a, m, c);
        }
    }
    let mut total = s.zero();
    for a in acc {
        total = s.add(total, a);
    }
    s.reduce_add(total)
}
kernel_entry!(fma_chains(iterations: u64) -> f32);

impl Engine {
    /// Runs `iterations` rounds of independent fused multiply-adds on this engine's
    /// backend and returns the floating-point operations performed (a multiply-add counts 2).
    /// Time it to get the core's peak FLOP/s for the backend.
    ///
    /// ```
    /// let nn = simdnn::Engine::new();
    /// let flops = nn.fma_probe(1000);
    /// assert!(flops >= 2 * 1000 * 12);
    /// ```
    pub fn fma_probe(&self, iterations: u64) -> u64 {
        let sink = fma_chains::run(self, iterations);
        core::hint::black_box(sink);
        2 * iterations * (CHAINS as u64) * self.backend().lanes() as u64
    }
}
