use simdnn::*;
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let shape = match which.as_str() {
        "dw" => Conv2dShape::new(28, 28, 128, 128, 3, 3)
            .with_groups(128)
            .with_padding(Padding::Same),
        "tiny" => Conv2dShape::new(32, 32, 3, 16, 3, 3).with_padding(Padding::Same),
        _ => Conv2dShape::conv1d(16000, 1, 16, 9).with_padding(Padding::Same),
    };
    let w = vec![0.5; shape.weights_len().unwrap()];
    let mut st = vec![0.0; shape.packed_weights_len()];
    let p = PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, &mut st).unwrap();
    let x = vec![0.25; shape.input_len().unwrap()];
    let mut y = vec![0.0; shape.output_len().unwrap()];
    let nn = Engine::with_backend(Backend::Avx512).unwrap();
    let b = vec![0.1; shape.out_c];
    for _ in 0..3000 {
        nn.conv2d(
            &shape,
            &p,
            Some(&b),
            Activation::Identity,
            std::hint::black_box(&x),
            &mut y,
        )
        .unwrap();
    }
}
