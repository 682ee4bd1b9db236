//! Convolutions per backend on the standard workloads. Throughput is reported as elements/s
//! where one element is one FLOP, so criterion's "Gelem/s" reads as GFLOP/s.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simdnn::{Activation, Backend, Conv2dShape, Engine, PackedConv2d, Padding, WeightLayout};
use std::hint::black_box;
#[path = "common/aligned.rs"]
mod aligned;
use aligned::Aligned;

fn conv(c: &mut Criterion) {
    let same = Padding::Same;
    let pad1 = Padding::Explicit {
        top: 1,
        bottom: 1,
        left: 1,
        right: 1,
    };
    let workloads = [
        (
            "conv_tiny",
            Conv2dShape::new(32, 32, 3, 16, 3, 3).with_padding(same),
        ),
        (
            "conv_small",
            Conv2dShape::new(16, 16, 16, 32, 3, 3).with_padding(same),
        ),
        (
            "conv_resnet",
            Conv2dShape::new(56, 56, 64, 64, 3, 3).with_padding(same),
        ),
        ("conv_pw", Conv2dShape::new(28, 28, 64, 128, 1, 1)),
        (
            "conv_dw",
            Conv2dShape::new(28, 28, 128, 128, 3, 3)
                .with_groups(128)
                .with_padding(same),
        ),
        (
            "conv_s2",
            Conv2dShape::new(56, 56, 32, 64, 3, 3)
                .with_stride(2, 2)
                .with_padding(pad1),
        ),
        (
            "conv1d_kws",
            Conv2dShape::conv1d(16000, 1, 16, 9).with_padding(same),
        ),
    ];
    let mut g = c.benchmark_group("conv");
    g.sample_size(20);
    for (name, shape) in workloads {
        let (oh, ow) = shape.output_hw().unwrap();
        let flops =
            2 * oh * ow * shape.out_c * shape.kernel_h * shape.kernel_w * shape.in_c / shape.groups;
        let w: Vec<f32> = (0..shape.weights_len().unwrap())
            .map(|i| (i as f32 * 0.37).sin() * 0.1)
            .collect();
        let mut storage = Aligned::from(&vec![0.0; shape.packed_weights_len()]);
        let packed = PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, storage.get_mut()).unwrap();
        let x: Vec<f32> = (0..shape.input_len().unwrap())
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let x = Aligned::from(&x);
        let bias = vec![0.1; shape.out_c];
        let mut y = Aligned::from(&vec![0.0; shape.output_len().unwrap()]);
        g.throughput(Throughput::Elements(flops as u64));
        for nn in Backend::ALL
            .into_iter()
            .filter_map(|b| Engine::with_backend(b).ok())
        {
            g.bench_function(format!("{}/{name}", nn.backend().name()), |b| {
                b.iter(|| {
                    nn.conv2d(
                        &shape,
                        &packed,
                        Some(&bias),
                        Activation::Relu,
                        black_box(x.get()),
                        y.get_mut(),
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
