//! Vector math throughput (elements/s) per backend, at an embedded size and a large one.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simdnn::{Activation, Backend, Engine};
use std::hint::black_box;

fn math(c: &mut Criterion) {
    for act in [
        Activation::Exp,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Silu,
    ] {
        let mut g = c.benchmark_group(format!("{act:?}").to_lowercase());
        for n in [64usize, 4096] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.013).sin() * 20.0).collect();
            let mut y = vec![0.0; n];
            g.throughput(Throughput::Elements(n as u64));
            for nn in Backend::ALL
                .into_iter()
                .filter_map(|b| Engine::with_backend(b).ok())
            {
                g.bench_function(format!("{}/{n}", nn.backend().name()), |b| {
                    b.iter(|| nn.activate(act, black_box(&x), &mut y).unwrap())
                });
            }
        }
        g.finish();
    }
}

/// The cost of a call itself: backend `match`, length check and a one-element kernel.
fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");
    let (x, mut y) = ([0.5f32], [0.0f32]);
    for nn in Backend::ALL
        .into_iter()
        .filter_map(|b| Engine::with_backend(b).ok())
    {
        g.bench_function(format!("{}/relu_1", nn.backend().name()), |b| {
            b.iter(|| {
                nn.activate(Activation::Relu, black_box(&x), &mut y)
                    .unwrap()
            })
        });
    }
    g.bench_function("engine_new", |b| b.iter(|| black_box(Engine::new())));
    g.finish();
}

criterion_group!(benches, math, dispatch);
criterion_main!(benches);
