//! Executions per second of each fuzz target's entry point on random inputs of a few sizes, on
//! one core: `cargo run --release -p memslot-diff --example throughput [SECONDS_PER_CELL]`.

use std::time::{Duration, Instant};

use memslot_diff::targets::{self, Target};
use rand::{Rng, SeedableRng};

fn main() {
    let budget = Duration::from_secs_f64(
        std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0),
    );
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    println!(
        "{:<12} {:>6} {:>12} {:>14} {:>10}",
        "target", "bytes", "execs/s", "ops per input", "ops/s"
    );
    for target in Target::ALL {
        for len in [16usize, 64, 256, 1024] {
            let inputs: Vec<Vec<u8>> = (0..512)
                .map(|_| (0..len).map(|_| rng.gen()).collect())
                .collect();
            let ops: usize = inputs.iter().map(|i| target.decode(i).ops.len()).sum();
            let start = Instant::now();
            let mut execs = 0usize;
            while start.elapsed() < budget {
                targets::fuzz(target, &inputs[execs % inputs.len()]);
                execs += 1;
            }
            let secs = start.elapsed().as_secs_f64();
            let per_input = ops as f64 / inputs.len() as f64;
            println!(
                "{:<12} {:>6} {:>12.0} {:>14.1} {:>10.0}",
                target.name(),
                len,
                execs as f64 / secs,
                per_input,
                execs as f64 * per_input / secs
            );
        }
    }
}
