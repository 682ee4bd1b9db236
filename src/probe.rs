//! Probes of the machine's peaks, so reports can state "% of peak" for the machine they
//! run on rather than a datasheet number: floating-point throughput, and the bandwidth of
//! streaming loads (from the cache level a buffer of a given size lives in).

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

/// The sum of `x` over eight independent vector chains: one load per add, so it runs at
/// the bandwidth of the loads.
#[inline(always)]
fn load_stream<S: Simd>(s: S, x: &[f32]) -> f32 {
    let mut acc = [s.zero(); 8];
    let block = 8 * S::LANES;
    for chunk in x.chunks_exact(block) {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = s.add(*a, s.load(&chunk[i * S::LANES..][..S::LANES]));
        }
    }
    let mut total = s.zero();
    for a in acc {
        total = s.add(total, a);
    }
    s.reduce_add(total) + x.chunks_exact(block).remainder().iter().sum::<f32>()
}
kernel_entry!(load_stream(x: &[f32]) -> f32);

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

    /// Streams `x` once with this engine's vector loads (a sum over independent chains)
    /// and returns the bytes read. Time it over a buffer the size of a cache level (e.g.
    /// 32 KiB, 1 MiB, 16 MiB, called repeatedly) to get that level's load bandwidth, the
    /// bound of a kernel that streams its weights, such as a recurrent step.
    ///
    /// ```
    /// let nn = simdnn::Engine::new();
    /// assert_eq!(nn.load_probe(&[1.0; 1000]), 4000);
    /// ```
    pub fn load_probe(&self, x: &[f32]) -> usize {
        core::hint::black_box(load_stream::run(self, x));
        core::mem::size_of_val(x)
    }
}
