//! The harness's own speed: executions per second of each fuzz target over a fixed input set,
//! and where a step's time goes (generation, each implementation, comparison).
//!
//! The fixed set of a target is its committed seeds and regressions in byte form (what
//! `memslot-diff seed-corpus` writes) and [`GENERATED`] pseudo-random inputs drawn from a
//! fixed seed, so that two builds or two commits are measured on exactly the same work.
//!
//! * `memslot-diff throughput` measures in this process (the release build, no sanitizer);
//! * `ci/throughput` measures the cargo-fuzz build over the same files, with the breakdown
//!   taken inside the fuzz target (`memslot_harness::profile`).

use std::time::{Duration, Instant};

use memslot_harness::targets::Target;
use memslot_harness::{corpus, lowlevel, zoo};
use rand::{Rng, SeedableRng};

/// Pseudo-random inputs per target in the fixed set.
pub const GENERATED: usize = 256;

/// The fixed input set of a target (one of [`corpus::FUZZ_TARGETS`]): `(name, bytes)`, the
/// committed seeds and regressions first, then the generated inputs (`generated-NNN`).
pub fn fixed_inputs(target: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut inputs = corpus::fuzz_inputs(&corpus::dir(), target)?.inputs;
    inputs.extend(generated_inputs());
    Ok(inputs)
}

/// [`GENERATED`] inputs of 16 to 4096 bytes (log-uniform: most are short, as in a fuzzing
/// run's corpus), from seed 1.
pub fn generated_inputs() -> Vec<(String, Vec<u8>)> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    (0..GENERATED)
        .map(|i| {
            let len = 2f64.powf(rng.gen_range(4.0..12.0)) as usize;
            let bytes = (0..len).map(|_| rng.gen()).collect();
            (format!("generated-{i:03}"), bytes)
        })
        .collect()
}

/// Run one input as the fuzz target `target` does (without the crash reporting).
fn execute(target: &str, data: &[u8]) {
    match Target::from_name(target) {
        Some(t) => {
            let program = t.decode(data);
            std::hint::black_box(memslot_harness::zoo::run(&program.ops).agreed());
        }
        None => {
            let calls = lowlevel::decode(data);
            std::hint::black_box(lowlevel::check(lowlevel::port(&zoo::selected()), &calls).is_ok());
        }
    }
}

/// Executions per second over `inputs`, cycling through them until `budget` is spent (at least
/// one whole pass).
pub fn executions_per_second(target: &str, inputs: &[(String, Vec<u8>)], budget: Duration) -> f64 {
    let start = Instant::now();
    let mut execs = 0usize;
    while execs < inputs.len() || start.elapsed() < budget {
        execute(target, &inputs[execs % inputs.len()].1);
        execs += 1;
    }
    execs as f64 / start.elapsed().as_secs_f64()
}
