//! Recurrent cells per backend: the standard sequences (100 steps) and single steps, and a
//! batch of 8 sequences. Throughput in elements/s where one element is one FLOP, so
//! criterion's "Gelem/s" reads as GFLOP/s.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simdnn::{
    Backend, Direction, Engine, GruShape, LstmShape, PackedGru, PackedLstm, PackedRnn, RnnShape,
    TorchWeights,
};
use std::hint::black_box;
#[path = "common/aligned.rs"]
mod aligned;
use aligned::Aligned;

#[derive(Clone, Copy, Debug)]
enum Cell {
    Rnn,
    Gru,
    Lstm,
}

fn data(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37 + k).sin() * 0.2).collect()
}

fn recurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("recurrent");
    // (cell, input, hidden, steps, batch): WORKLOADS.md's rows and a batch.
    for (cell, input, hidden, steps, batch) in [
        (Cell::Rnn, 64, 128, 100, 1),
        (Cell::Gru, 64, 128, 100, 1),
        (Cell::Lstm, 128, 256, 100, 1),
        (Cell::Gru, 64, 128, 1, 1),
        (Cell::Lstm, 128, 256, 1, 1),
        (Cell::Gru, 64, 128, 100, 8),
    ] {
        let gates = match cell {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        };
        let (w_ih, w_hh, b) = (
            data(gates * hidden * input, 0.1),
            data(gates * hidden * hidden, 0.2),
            data(gates * hidden, 0.3),
        );
        let weights = TorchWeights::new(&w_ih, &w_hh).with_biases(Some(&b), Some(&b));
        let (rnn, gru, lstm) = (
            RnnShape::new(input, hidden),
            GruShape::new(input, hidden),
            LstmShape::new(input, hidden),
        );
        let (packed_len, scratch_len) = match cell {
            Cell::Rnn => (rnn.packed_len(), rnn.batch_scratch_len(steps, batch)),
            Cell::Gru => (gru.packed_len(), gru.batch_scratch_len(steps, batch)),
            Cell::Lstm => (lstm.packed_len(), lstm.batch_scratch_len(steps, batch)),
        };
        let mut storage = Aligned::from(&vec![0.0; packed_len]);
        match cell {
            Cell::Rnn => drop(PackedRnn::pack(&rnn, weights, storage.get_mut()).unwrap()),
            Cell::Gru => drop(PackedGru::pack(&gru, weights, storage.get_mut()).unwrap()),
            Cell::Lstm => drop(PackedLstm::pack(&lstm, weights, storage.get_mut()).unwrap()),
        }
        let xs = data(steps * batch * input, 0.4);
        let mut scratch = Aligned::from(&vec![0.0; scratch_len]);
        let (mut h, mut c) = (vec![0.0; batch * hidden], vec![0.0; batch * hidden]);
        let flops = 2 * steps * batch * gates * hidden * (input + hidden);
        g.throughput(Throughput::Elements(flops as u64));
        for nn in Backend::ALL
            .into_iter()
            .filter_map(|b| Engine::with_backend(b).ok())
        {
            let name = format!(
                "{}/{cell:?}/{input}x{hidden}/steps{steps}/batch{batch}",
                nn.backend().name()
            );
            let fwd = Direction::Forward;
            g.bench_function(name, |bench| {
                bench.iter(|| {
                    let (xs, data, s) = (black_box(&xs[..]), storage.get(), scratch.get_mut());
                    match cell {
                        Cell::Rnn => {
                            let p = PackedRnn::from_packed(&rnn, data).unwrap();
                            nn.rnn_sequence(&p, fwd, xs, &mut h, None, s).unwrap()
                        }
                        Cell::Gru => {
                            let p = PackedGru::from_packed(&gru, data).unwrap();
                            nn.gru_sequence(&p, fwd, xs, &mut h, None, s).unwrap()
                        }
                        Cell::Lstm => {
                            let p = PackedLstm::from_packed(&lstm, data).unwrap();
                            nn.lstm_sequence(&p, fwd, xs, &mut h, &mut c, None, s)
                                .unwrap()
                        }
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, recurrent);
criterion_main!(benches);
