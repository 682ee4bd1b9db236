//! Dense layers per backend. Throughput is reported as elements/s where one element is one
//! FLOP, so criterion's "Gelem/s" reads as GFLOP/s.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simdnn::{Activation, Backend, Engine, PackedDense, dense_packed_len};
use std::hint::black_box;
#[path = "common/aligned.rs"]
mod aligned;
use aligned::Aligned;

fn dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("dense");
    // (batch, out, in): embedded GEMV, the GEMV and GEMM, a recurrent-cell-sized GEMV.
    for (batch, out, inp) in [
        (1usize, 32usize, 64usize),
        (1, 256, 256),
        (64, 256, 256),
        (1, 384, 128),
    ] {
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.7).sin()).collect();
        let w = Aligned::from(&w);
        let x: Vec<f32> = (0..batch * inp).map(|i| (i as f32 * 0.3).cos()).collect();
        let x = Aligned::from(&x);
        let bias = vec![0.1; out];
        let mut storage = Aligned::from(&vec![0.0; dense_packed_len(out, inp)]);
        let packed = PackedDense::pack(w.get(), out, inp, storage.get_mut()).unwrap();
        let mut y = vec![0.0; batch * out];
        g.throughput(Throughput::Elements((2 * batch * out * inp) as u64));
        for nn in Backend::ALL
            .into_iter()
            .filter_map(|b| Engine::with_backend(b).ok())
        {
            let name = nn.backend().name();
            g.bench_function(format!("{name}/packed/{batch}x{out}x{inp}"), |b| {
                b.iter(|| {
                    nn.dense(
                        &packed,
                        Some(&bias),
                        Activation::Identity,
                        black_box(x.get()),
                        &mut y,
                    )
                    .unwrap()
                })
            });
            if batch == 1 {
                g.bench_function(format!("{name}/row_major/{batch}x{out}x{inp}"), |b| {
                    b.iter(|| {
                        nn.dense_row_major(
                            w.get(),
                            inp,
                            Some(&bias),
                            Activation::Identity,
                            black_box(x.get()),
                            &mut y,
                        )
                        .unwrap()
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, dense);
criterion_main!(benches);
