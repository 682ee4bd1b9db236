//! CPU detection, the [`Backend`] choice, the [`Engine`] handle and the macro that enters a
//! kernel body with the right `#[target_feature]`s.
//!
//! Detection runs once (`cpuid` + `xgetbv` on x86-64, no `std` needed) and is cached in an
//! atomic; afterwards choosing a backend costs one relaxed load and a `match`.

use crate::Error;
use core::sync::atomic::{AtomicU8, Ordering};

/// A SIMD instruction set a kernel can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Portable Rust, one lane; every target (Cortex-M included).
    Scalar,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512F, 16 lanes, masked tails.
    Avx512,
    /// aarch64 Advanced SIMD, 4 lanes.
    Neon,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 4] = [
        Backend::Scalar,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
    ];

    /// The short name used in reports and JSON: `scalar`, `avx2`, `avx512` or `neon`.
    ///
    /// ```
    /// assert_eq!(simdnn::Backend::Avx512.name(), "avx512");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// f32 lanes per vector: 1, 8, 16 or 4.
    ///
    /// ```
    /// assert_eq!(simdnn::Backend::Avx2.lanes(), 8);
    /// ```
    pub const fn lanes(self) -> usize {
        match self {
            Backend::Scalar => 1,
            Backend::Avx2 => 8,
            Backend::Avx512 => 16,
            Backend::Neon => 4,
        }
    }

    /// Whether this backend is compiled in and this CPU (and OS) supports it.
    ///
    /// ```
    /// assert!(simdnn::Backend::Scalar.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            Backend::Avx2 => cfg!(simdnn_avx2) && cpu().avx2_fma,
            Backend::Avx512 => cfg!(simdnn_avx512) && cpu().avx512f,
            Backend::Neon => cfg!(simdnn_neon),
        }
    }

    /// The fastest available backend (detected once, then cached).
    ///
    /// ```
    /// let b = simdnn::Backend::best();
    /// assert!(b.is_available());
    /// ```
    pub fn best() -> Backend {
        [Backend::Avx512, Backend::Neon, Backend::Avx2]
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Scalar)
    }
}

/// What the CPU offers, as far as simdnn cares.
#[derive(Clone, Copy)]
struct CpuFeatures {
    avx2_fma: bool,
    avx512f: bool,
}

const UNKNOWN: u8 = 0;
const KNOWN: u8 = 1 << 7;
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The cached CPU features; the first call detects them. Racing first calls all compute the
/// same answer, so a relaxed store is enough.
fn cpu() -> CpuFeatures {
    let mut bits = DETECTED.load(Ordering::Relaxed);
    if bits == UNKNOWN {
        let f = detect();
        bits = KNOWN | u8::from(f.avx2_fma) | (u8::from(f.avx512f) << 1);
        DETECTED.store(bits, Ordering::Relaxed);
    }
    CpuFeatures {
        avx2_fma: bits & 1 != 0,
        avx512f: bits & 2 != 0,
    }
}

#[cfg(all(target_arch = "x86_64", feature = "runtime-dispatch", not(miri)))]
fn detect() -> CpuFeatures {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};

    /// SAFETY: only called after CPUID reported OSXSAVE, which makes `xgetbv` legal.
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        // SAFETY: see the function's contract.
        unsafe { _xgetbv(0) }
    }

    let none = CpuFeatures {
        avx2_fma: false,
        avx512f: false,
    };
    // CPUID exists on every x86-64 CPU.
    #[allow(unused_unsafe)]
    // SAFETY: `cpuid` is always available on x86-64.
    let (max_leaf, leaf1) = unsafe { (__cpuid(0).eax, __cpuid(1)) };
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    let fma = leaf1.ecx & (1 << 12) != 0;
    if max_leaf < 7 || !osxsave || !avx {
        return none;
    }
    // SAFETY: OSXSAVE is set, checked above.
    let xcr0 = unsafe { xcr0() };
    let ymm_state = xcr0 & 0b110 == 0b110;
    let zmm_state = xcr0 & 0b1110_0110 == 0b1110_0110;
    #[allow(unused_unsafe)]
    // SAFETY: leaf 7 exists, checked above.
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    let avx2 = leaf7.ebx & (1 << 5) != 0;
    let avx512f = leaf7.ebx & (1 << 16) != 0;
    let avx2_fma = ymm_state && avx2 && fma;
    CpuFeatures {
        avx2_fma,
        avx512f: avx2_fma && zmm_state && avx512f,
    }
}

/// Without run-time dispatch (and under Miri, which cannot run `cpuid`), only what the
/// compiler was told the target has is used.
#[cfg(not(all(target_arch = "x86_64", feature = "runtime-dispatch", not(miri))))]
fn detect() -> CpuFeatures {
    let avx2_fma = cfg!(all(target_feature = "avx2", target_feature = "fma"));
    CpuFeatures {
        avx2_fma,
        avx512f: avx2_fma && cfg!(target_feature = "avx512f"),
    }
}

/// A handle that runs every kernel on one backend. It is `Copy` and costs nothing to keep.
///
/// [`Engine::new`] picks the fastest backend of this CPU; [`Engine::with_backend`] pins one
/// (tests use it to check every backend on one machine).
///
/// ```
/// use simdnn::{Backend, Engine};
/// let auto = Engine::new();
/// let scalar = Engine::with_backend(Backend::Scalar)?;
/// assert_eq!(scalar.backend(), Backend::Scalar);
/// assert!(auto.backend().is_available());
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    // Invariant: `backend.is_available()`. Dispatch relies on it to call
    // `#[target_feature]` code soundly.
    backend: Backend,
}

impl Engine {
    /// The fastest backend this CPU and build support.
    pub fn new() -> Engine {
        Engine {
            backend: Backend::best(),
        }
    }

    /// A specific backend, or [`Error::UnsupportedBackend`] if this CPU or build lacks it.
    pub fn with_backend(backend: Backend) -> Result<Engine, Error> {
        if backend.is_available() {
            Ok(Engine { backend })
        } else {
            Err(Error::UnsupportedBackend(backend))
        }
    }

    /// The backend this engine runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

/// Defines `mod $kernel` holding `run(engine, args..)`, which calls the generic kernel
/// `$kernel::<S>(s, args..)` with the backend of `engine`. Invoke it at module level, next
/// to the kernel.
///
/// Each backend gets a function of its own that builds the backend token and calls the
/// kernel, which is `#[inline(always)]` and so compiled with that function's
/// `#[target_feature]`s. Each of these functions sits in a module of its own because rustc
/// splits a crate into codegen units by (top-level) module: with every backend's copy of the
/// large convolution kernels in one module, building this crate was one long single-threaded
/// LLVM job.
macro_rules! kernel_entry {
    // One backend's module: `run` with that backend's attribute, calling the kernel with its
    // token.
    (@backend $cfg:meta, $module:ident, $attr:meta, $token:expr;
        $kernel:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        #[cfg($cfg)]
        mod $module {
            use super::*;
            #[$attr]
            pub(super) fn run($($arg: $ty),*) $(-> $ret)? {
                $kernel($token, $($arg),*)
            }
        }
    };
    ($kernel:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?) => {
        pub(crate) mod $kernel {
            #[allow(unused_imports)]
            use super::*;

            pub(crate) fn run(engine: &$crate::Engine, $($arg: $ty),*) $(-> $ret)? {
                match engine.backend() {
                    #[cfg(simdnn_avx512)]
                    // SAFETY: an `Engine` holds only available backends: avx512f, avx2 and
                    // fma were detected (or enabled at compile time).
                    $crate::Backend::Avx512 => unsafe { avx512::run($($arg),*) },
                    #[cfg(simdnn_avx2)]
                    // SAFETY: an `Engine` holds only available backends: avx2 and fma were
                    // detected (or enabled at compile time).
                    $crate::Backend::Avx2 => unsafe { avx2::run($($arg),*) },
                    #[cfg(simdnn_neon)]
                    $crate::Backend::Neon => neon::run($($arg),*),
                    _ => scalar::run($($arg),*),
                }
            }

            $crate::engine::kernel_entry!(@backend simdnn_avx512, avx512,
                target_feature(enable = "avx512f,avx2,fma"), $crate::simd::Avx512::new();
                $kernel($($arg: $ty),*) $(-> $ret)?);
            $crate::engine::kernel_entry!(@backend simdnn_avx2, avx2,
                target_feature(enable = "avx2,fma"), $crate::simd::Avx2::new();
                $kernel($($arg: $ty),*) $(-> $ret)?);
            $crate::engine::kernel_entry!(@backend simdnn_neon, neon,
                inline(never), $crate::simd::Neon::new();
                $kernel($($arg: $ty),*) $(-> $ret)?);
            $crate::engine::kernel_entry!(@backend all(), scalar,
                inline(never), $crate::simd::Scalar;
                $kernel($($arg: $ty),*) $(-> $ret)?);
        }
    };
}
pub(crate) use kernel_entry;
