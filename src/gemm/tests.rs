//! Tests of the micro-kernels themselves, on every backend this machine runs (forced one by
//! one, as the integration tests do; `SIMDNN_BACKENDS` restricts the list): every tile shape
//! the tables use and the edge ones around them, every column offset of a panel, short and
//! long `k`, strides that are not the row length, operands that end right after their last
//! row (an overread is then a panic), and the stores' partial vectors. The reference sums in
//! f64; a result may differ from it by the bound every kernel documents,
//! `(k + 2) 2^-24 sum |a b|` (plus one rounding of a value the tile started from).

extern crate std;

use super::driver::{gemm_nn, gemm_nt, gemm_packed, gemv_packed};
use super::store::store_dense_tile;
use super::tile::{dot_1x4, slices, tile_packed, tile_packed_windows, tile_row_major};
use super::{Layer, Mat, MatMut, PANEL, pack_into};
use crate::engine::kernel_entry;
use crate::ops::{Activation, Relu, Unchanged};
use crate::simd::Simd;
use crate::{Backend, Engine};
use std::vec;
use std::vec::Vec;

/// Every backend this machine runs, restricted by `SIMDNN_BACKENDS=scalar,avx2,...`.
fn engines() -> Vec<Engine> {
    let only = std::env::var("SIMDNN_BACKENDS").ok();
    Backend::ALL
        .into_iter()
        .filter(|b| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == b.name()))
        })
        .filter_map(|b| Engine::with_backend(b).ok())
        .collect()
}

/// Deterministic values in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32) / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// `got` is within the documented bound of `start + sum_k a_k b_k` (f64), with
/// `mag = sum |a_k b_k|`.
#[track_caller]
fn assert_close(got: f32, start: f32, terms: impl Iterator<Item = (f32, f32)>, what: &str) {
    let (mut sum, mut mag, mut k) = (f64::from(start), f64::from(start).abs(), 0usize);
    for (a, b) in terms {
        sum += f64::from(a) * f64::from(b);
        mag += (f64::from(a) * f64::from(b)).abs();
        k += 1;
    }
    let bound = (k as f64 + 2.0) * (f64::from(f32::EPSILON) / 2.0) * mag + 1e-30;
    assert!(
        (f64::from(got) - sum).abs() <= bound,
        "{what}: got {got}, want {sum} (bound {bound})"
    );
}

/// The lanes of `acc` as one flat row per tile row.
fn lanes_of<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
) -> Vec<Vec<f32>> {
    acc.iter()
        .map(|row| {
            let mut out = vec![0.0; NV * S::LANES];
            for (v, c) in row.iter().zip(out.chunks_exact_mut(S::LANES)) {
                s.store(*v, c);
            }
            out
        })
        .collect()
}

/// Random starting accumulators, also returned as lanes.
fn random_acc<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    rng: &mut Rng,
) -> ([[S::V; NV]; MR], Vec<Vec<f32>>) {
    let mut acc = [[s.zero(); NV]; MR];
    for row in acc.iter_mut() {
        for v in row.iter_mut() {
            *v = s.load(&rng.vec(S::LANES));
        }
    }
    let lanes = lanes_of(s, &acc);
    (acc, lanes)
}

/// Depths `k` of the tile tests (fewer under Miri, which interprets every operation).
const KS: &[usize] = if cfg!(miri) {
    &[0, 5]
} else {
    &[0, 1, 2, 7, 33]
};

/// Column offsets of a panel to test: all of them, or under Miri the first and the last.
fn cols(block: usize) -> impl Iterator<Item = usize> {
    let last = PANEL - block;
    (0..PANEL)
        .step_by(block)
        .filter(move |&c| !cfg!(miri) || c == 0 || c == last)
}

fn check_tile_packed<S: Simd, const MR: usize, const NV: usize>(s: S) {
    let block = NV * S::LANES;
    if block > PANEL {
        return;
    }
    let mut rng = Rng(MR as u64 * 31 + NV as u64);
    for &kc in KS {
        let panel = rng.vec(kc * PANEL);
        // Rows `kc + 3` apart in one buffer: the tile must take them wherever they are.
        let buf = rng.vec(MR * (kc + 3));
        let rows: [&[f32]; MR] = slices(|m| &buf[m * (kc + 3)..][..kc]);
        for col in cols(block) {
            let (mut acc, start) = random_acc::<S, MR, NV>(s, &mut rng);
            tile_packed::<S, MR, NV>(s, &mut acc, rows, &panel, col);
            for (m, got) in lanes_of(s, &acc).iter().enumerate() {
                for (j, &g) in got.iter().enumerate() {
                    let terms = (0..kc).map(|k| (rows[m][k], panel[k * PANEL + col + j]));
                    assert_close(g, start[m][j], terms, "tile_packed");
                }
            }
        }
    }
}

fn check_tile_packed_windows<S: Simd, const MR: usize, const NV: usize>(s: S) {
    let block = NV * S::LANES;
    if block > PANEL {
        return;
    }
    let mut rng = Rng(MR as u64 * 37 + NV as u64);
    for kc in KS.iter().copied().filter(|&k| k > 0) {
        for step in 1..=3 {
            let panel = rng.vec(kc * PANEL);
            // Exactly as long as the last window needs.
            let xs = rng.vec((MR - 1) * step + kc);
            for col in cols(block) {
                let (mut acc, start) = random_acc::<S, MR, NV>(s, &mut rng);
                tile_packed_windows::<S, MR, NV>(s, &mut acc, &xs, step, kc, &panel, col);
                for (m, got) in lanes_of(s, &acc).iter().enumerate() {
                    for (j, &g) in got.iter().enumerate() {
                        let terms = (0..kc).map(|k| (xs[m * step + k], panel[k * PANEL + col + j]));
                        assert_close(g, start[m][j], terms, "tile_packed_windows");
                    }
                }
            }
        }
    }
}

fn check_tile_row_major<S: Simd, const MR: usize, const NV: usize>(s: S) {
    let block = NV * S::LANES;
    let mut rng = Rng(MR as u64 * 41 + NV as u64);
    let mut widths = vec![block, 1, block - 1, S::LANES + 1];
    widths.retain(|&w| w >= 1 && w <= block);
    for &kc in KS {
        for &width in &widths {
            for ldb in [width, width + 1, width + 13] {
                // `B` ends right after its last row's `width` columns.
                let b = rng.vec(kc.saturating_sub(1) * ldb + if kc > 0 { width } else { 0 });
                let buf = rng.vec(MR * (kc + 1));
                let rows: [&[f32]; MR] = slices(|m| &buf[m * (kc + 1)..][..kc]);
                let (mut acc, start) = random_acc::<S, MR, NV>(s, &mut rng);
                if width == block {
                    acc = tile_row_major::<S, MR, NV, false>(s, acc, rows, &b, ldb, width);
                } else {
                    acc = tile_row_major::<S, MR, NV, true>(s, acc, rows, &b, ldb, width);
                }
                for (m, got) in lanes_of(s, &acc).iter().enumerate() {
                    for (j, &g) in got.iter().enumerate() {
                        if j < width {
                            let terms = (0..kc).map(|k| (rows[m][k], b[k * ldb + j]));
                            assert_close(g, start[m][j], terms, "tile_row_major");
                        } else {
                            // Lanes past the edge add zeros.
                            assert_eq!(g, start[m][j], "tile_row_major lane past the edge");
                        }
                    }
                }
            }
        }
    }
}

fn check_dot<S: Simd>(s: S) {
    let mut rng = Rng(7);
    for len in 0..=4 * S::LANES + 3 {
        let x = rng.vec(len);
        let stride = len + 5;
        let buf = rng.vec(3 * stride + len);
        let rows: [&[f32]; 4] = slices(|j| &buf[j * stride..][..len]);
        let got = dot_1x4(s, &x, rows);
        for j in 0..4 {
            let terms = x.iter().zip(rows[j]).map(|(&a, &b)| (a, b));
            assert_close(got[j], 0.0, terms, "dot_1x4");
        }
    }
}

fn check_store_dense_tile<S: Simd, const MR: usize>(s: S) {
    let mut rng = Rng(MR as u64);
    let (acc, lanes) = random_acc::<S, MR, 1>(s, &mut rng);
    let bias = rng.vec(S::LANES);
    for with_bias in [false, true] {
        let mut dst = vec![f32::NAN; MR * S::LANES + 1];
        let b = with_bias.then(|| [s.load(&bias)]);
        store_dense_tile::<S, MR, 1>(s, &acc, b, Relu, &mut dst);
        for m in 0..MR {
            for j in 0..S::LANES {
                let want = lanes[m][j] + if with_bias { bias[j] } else { 0.0 };
                assert_eq!(dst[m * S::LANES + j], want.max(0.0), "store_dense_tile");
            }
        }
        assert!(
            dst[MR * S::LANES].is_nan(),
            "store_dense_tile wrote past the tile"
        );
    }
}

/// `y = op(x B + bias)` against the reference, for a packed `B` of `out x inp` (row-major
/// `w`), on `rows` rows.
fn check_packed_case(
    y: &[f32],
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    (rows, out, inp): (usize, usize, usize),
    what: &str,
) {
    for r in 0..rows {
        for o in 0..out {
            let start = bias.map_or(0.0, |b| b[o]);
            let terms = (0..inp).map(|k| (x[r * inp + k], w[o * inp + k]));
            let got = y[r * out + o];
            if relu && got == 0.0 {
                // Relu: the sum must not be clearly positive.
                let sum: f64 = start as f64
                    + (0..inp)
                        .map(|k| f64::from(x[r * inp + k]) * f64::from(w[o * inp + k]))
                        .sum::<f64>();
                assert!(sum <= 1e-5, "{what}: relu gave 0 for {sum}");
            } else {
                assert_close(got, start, terms, what);
            }
        }
    }
}

fn packed(w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let mut p = vec![0.0; out.div_ceil(PANEL) * PANEL * inp];
    pack_into(w, out, inp, &mut p);
    p
}

fn check_gemm_packed<S: Simd, const MR: usize, const NV: usize>(s: S) {
    if NV * S::LANES > PANEL {
        return;
    }
    let mut rng = Rng(MR as u64 * 43 + NV as u64);
    for inp in [1, 5, 20] {
        for out in [1, 17, PANEL, PANEL + 1, 2 * PANEL + 6] {
            if cfg!(miri) && (inp == 20 || !matches!(out, 17 | 70)) {
                continue;
            }
            let w = rng.vec(out * inp);
            let p = packed(&w, out, inp);
            let bias = rng.vec(out);
            for rows in [1, MR.max(2) - 1, MR, MR + 1, 2 * MR + 3] {
                if cfg!(miri) && rows != 2 * MR + 3 {
                    continue;
                }
                let x = rng.vec(rows * inp);
                for (with_bias, relu) in [(false, false), (true, true)] {
                    let layer = Layer {
                        packed: &p,
                        out,
                        inp,
                        bias: with_bias.then_some(&bias[..]),
                        act: Activation::Identity,
                    };
                    let mut y = vec![f32::NAN; rows * out];
                    if relu {
                        gemm_packed::<S, MR, NV>(s, layer, Relu, &x, rows, &mut y);
                    } else {
                        gemm_packed::<S, MR, NV>(s, layer, Unchanged, &x, rows, &mut y);
                    }
                    let shape = (rows, out, inp);
                    check_packed_case(&y, &x, &w, layer.bias, relu, shape, "gemm_packed");
                }
            }
        }
    }
}

fn check_gemv_packed<S: Simd, const NV: usize, const PG: usize>(s: S) {
    if NV * S::LANES > PANEL {
        return;
    }
    let mut rng = Rng(NV as u64 * 47 + PG as u64);
    for inp in [1, 3, 17] {
        for out in [1, 5, PANEL - 1, PANEL, PANEL + 1, 4 * PANEL + 1, 5 * PANEL] {
            if cfg!(miri) && (inp == 17 || !matches!(out, 1 | 33 | 129)) {
                continue;
            }
            let w = rng.vec(out * inp);
            let p = packed(&w, out, inp);
            let bias = rng.vec(out);
            let x = rng.vec(inp);
            for with_bias in [false, true] {
                let layer = Layer {
                    packed: &p,
                    out,
                    inp,
                    bias: with_bias.then_some(&bias[..]),
                    act: Activation::Identity,
                };
                let mut y = vec![f32::NAN; out];
                gemv_packed::<S, NV, PG>(s, layer, Unchanged, &x, &mut y);
                let shape = (1, out, inp);
                check_packed_case(&y, &x, &w, layer.bias, false, shape, "gemv_packed");
            }
        }
    }
}

/// A strided matrix in a buffer that ends right after its last row, with NaN in the gaps
/// between rows (a read of a gap poisons the result).
fn strided(rng: &mut Rng, rows: usize, cols: usize, stride: usize) -> Vec<f32> {
    let len = if rows == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    };
    let mut v = vec![f32::NAN; len];
    for r in 0..rows {
        for c in 0..cols {
            v[r * stride + c] = rng.next();
        }
    }
    v
}

fn check_gemm_nn<S: Simd, const MR: usize, const NV: usize>(s: S) {
    let mut rng = Rng(MR as u64 * 53 + NV as u64);
    let block = NV * S::LANES;
    for m in [1, MR, MR + 1, 2 * MR + 1] {
        for k in [0, 1, 9] {
            for n in [1, S::LANES + 1, block, block + 3, 2 * block + 1] {
                for pad in [0, 3] {
                    // Under Miri: one shape per kind of edge.
                    if cfg!(miri) && (pad == 0 || m == MR || k == 1 || n == block) {
                        continue;
                    }
                    let (lda, ldb, ldc) = (k + pad, n + 2 * pad, n + pad);
                    let a = strided(&mut rng, m, k, lda);
                    let b = strided(&mut rng, k, n, ldb);
                    let c0 = strided(&mut rng, m, n, ldc);
                    for accumulate in [false, true] {
                        let mut c = c0.clone();
                        let (am, bm) = (
                            Mat {
                                data: &a,
                                rows: m,
                                cols: k,
                                stride: lda,
                            },
                            Mat {
                                data: &b,
                                rows: k,
                                cols: n,
                                stride: ldb,
                            },
                        );
                        let cm = MatMut {
                            data: &mut c,
                            cols: n,
                            stride: ldc,
                        };
                        gemm_nn::<S, MR, NV>(s, am, bm, cm, accumulate);
                        for i in 0..m {
                            for j in 0..n {
                                let start = if accumulate { c0[i * ldc + j] } else { 0.0 };
                                let terms = (0..k).map(|t| (a[i * lda + t], b[t * ldb + j]));
                                assert_close(c[i * ldc + j], start, terms, "gemm_nn");
                            }
                            // The gaps between rows of `C` are left alone.
                            if i + 1 < m {
                                assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|v| v.is_nan()));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn check_gemm_nt<S: Simd>(s: S) {
    let mut rng = Rng(59);
    for m in [1, 3] {
        for k in [0, 1, S::LANES + 1, 4 * S::LANES + 3] {
            for n in [1, 3, 4, 9] {
                for pad in [0, 2] {
                    if cfg!(miri) && (pad == 0 || k == 0 || n < 4) {
                        continue;
                    }
                    let (lda, ldb, ldc) = (k + pad, k + 2 * pad + 1, n + pad);
                    let a = strided(&mut rng, m, k, lda);
                    let b = strided(&mut rng, n, k, ldb);
                    let bias = rng.vec(n);
                    let mut c = strided(&mut rng, m, n, ldc);
                    let am = Mat {
                        data: &a,
                        rows: m,
                        cols: k,
                        stride: lda,
                    };
                    let bm = Mat {
                        data: &b,
                        rows: n,
                        cols: k,
                        stride: ldb,
                    };
                    let cm = MatMut {
                        data: &mut c,
                        cols: n,
                        stride: ldc,
                    };
                    gemm_nt(s, am, bm, Some(&bias), cm);
                    for i in 0..m {
                        for j in 0..n {
                            let terms = (0..k).map(|t| (a[i * lda + t], b[j * ldb + t]));
                            assert_close(c[i * ldc + j], bias[j], terms, "gemm_nt");
                        }
                    }
                }
            }
        }
    }
}

/// Calls `$check::<S, MR, NV>(s)` for every tile shape of the tables and the edges around
/// them.
macro_rules! each_tile {
    ($check:ident, $s:expr) => {
        each_tile!(@nv $check, $s, 1, 2, 3, 4, 6, 8, 12, 16)
    };
    (@nv $check:ident, $s:expr, $($mr:literal),*) => {
        $(
            // Under Miri (minutes per shape otherwise) a short, an odd and a tall tile of
            // one and two vectors: every code path, the unsafe loads and stores included.
            if !cfg!(miri) || matches!($mr, 1 | 3 | 12) {
                $check::<S, $mr, 1>($s);
                $check::<S, $mr, 2>($s);
            }
            if !cfg!(miri) {
                $check::<S, $mr, 4>($s);
                $check::<S, $mr, 8>($s);
            }
        )*
    };
}

#[inline(always)]
fn tiles<S: Simd>(s: S) {
    each_tile!(check_tile_packed, s);
    each_tile!(check_tile_packed_windows, s);
    each_tile!(check_tile_row_major, s);
    check_dot(s);
    check_store_dense_tile::<S, 1>(s);
    check_store_dense_tile::<S, 12>(s);
    check_store_dense_tile::<S, 16>(s);
}
kernel_entry!(tiles());

#[inline(always)]
fn drivers<S: Simd>(s: S) {
    // The (MR, NV) of every table, and a 1-row tile; under Miri AVX2's and the 1-row one.
    if cfg!(miri) {
        check_gemm_packed::<S, 6, 2>(s);
        check_gemm_packed::<S, 1, 1>(s);
        check_gemv_packed::<S, 4, 2>(s);
        check_gemm_nn::<S, 6, 2>(s);
        check_gemm_nt(s);
        return;
    }
    check_gemm_packed::<S, 12, 2>(s);
    check_gemm_packed::<S, 4, 2>(s);
    check_gemm_packed::<S, 6, 2>(s);
    check_gemm_packed::<S, 3, 2>(s);
    check_gemm_packed::<S, 3, 8>(s);
    check_gemm_packed::<S, 2, 8>(s);
    check_gemm_packed::<S, 1, 1>(s);
    check_gemv_packed::<S, 2, 4>(s);
    check_gemv_packed::<S, 4, 2>(s);
    check_gemv_packed::<S, 8, 1>(s);
    check_gemv_packed::<S, 1, 1>(s);
    check_gemm_nn::<S, 12, 2>(s);
    check_gemm_nn::<S, 6, 2>(s);
    check_gemm_nn::<S, 3, 8>(s);
    check_gemm_nn::<S, 2, 8>(s);
    check_gemm_nn::<S, 1, 1>(s);
    check_gemm_nt(s);
}
kernel_entry!(drivers());

#[test]
fn tiles_match_reference_on_every_backend() {
    for e in engines() {
        tiles::run(&e);
    }
}

#[test]
fn drivers_match_reference_on_every_backend() {
    for e in engines() {
        drivers::run(&e);
    }
}

#[inline(always)]
fn lanes<S: Simd>(_: S) -> usize {
    S::LANES
}
kernel_entry!(lanes() -> usize);

#[test]
fn backend_lanes_are_the_vector_width() {
    for e in engines() {
        assert_eq!(lanes::run(&e), e.backend().lanes(), "{:?}", e.backend());
    }
}
