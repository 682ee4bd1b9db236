//! Row softmax per backend; throughput is in elements/s. Masked rows (half `-inf`) must not
//! be slower than unmasked ones.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simdnn::{Backend, Engine};
use std::hint::black_box;

fn softmax(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax");
    for (rows, cols) in [(1usize, 64usize), (8, 1024)] {
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| (i as f32 * 0.37).sin() * 10.0)
            .collect();
        let half: Vec<f32> = (0..cols)
            .map(|c| {
                if c >= cols / 2 {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mut y = vec![0.0; rows * cols];
        g.throughput(Throughput::Elements((rows * cols) as u64));
        for nn in Backend::ALL
            .into_iter()
            .filter_map(|b| Engine::with_backend(b).ok())
        {
            let name = nn.backend().name();
            g.bench_function(format!("{name}/{rows}x{cols}"), |b| {
                b.iter(|| nn.softmax(black_box(&x), cols, None, &mut y).unwrap())
            });
            g.bench_function(format!("{name}/{rows}x{cols}_masked"), |b| {
                b.iter(|| {
                    nn.softmax(black_box(&x), cols, Some(&half), &mut y)
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, softmax);
criterion_main!(benches);
