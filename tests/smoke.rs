mod common;
use simdnn::{Activation, Backend, Engine};

#[test]
fn auto_backend_is_the_best_available() {
    let b = Engine::new().backend();
    assert!(b.is_available());
    #[cfg(target_arch = "aarch64")]
    assert_eq!(b, Backend::Neon, "NEON must be selected on aarch64");
    #[cfg(target_arch = "x86_64")]
    if Backend::Avx512.is_available() {
        assert_eq!(b, Backend::Avx512);
    }
}

#[test]
fn print_values() {
    for nn in common::engines() {
        let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.37 - 6.0).collect();
        let mut y = vec![0.0; x.len()];
        for act in [Activation::Exp, Activation::Tanh, Activation::Sigmoid] {
            nn.activate(act, &x, &mut y).unwrap();
            let worst = x.iter().zip(&y).map(|(&a, &b)| common::ulp_error(b, common::act_ref(act, a as f64))).fold(0.0, f64::max);
            println!("{:?} {:?} worst {worst}", nn.backend(), act);
            assert!(worst < 5.0);
        }
    }
}
