//! The bug zoo under plain `cargo test`: `stress` with a fixed seed finds every zoo bug within a
//! bounded number of programs (a count, not a time), reports it as a divergence that names the
//! bug state (an out-of-bounds access caught by the shim's guard pages, not a crash), and
//! reports nothing on the fixed states.

use std::time::Duration;

use memslot_harness::stress::{stress, Options, Outcome};
use memslot_harness::zoo::{Generator, Lockstep, BUGS};

/// Seed of every run here.
const SEED: u64 = 2;
/// Programs within which each bug must be found (the slowest, below-lowest-full, needs a
/// 512-slot fill: a few hundred programs).
const BUDGET: u64 = 3000;
/// Programs each fixed state must survive.
const FIXED_PROGRAMS: u64 = 150;

fn run(lockstep: Lockstep, iters: u64) -> (Outcome, String) {
    let out_dir =
        std::env::temp_dir().join(format!("memslot-diff-zoo-test-{}", std::process::id()));
    let mut out = Vec::new();
    let outcome = stress(
        &Options {
            seed: SEED,
            time: Some(Duration::from_secs(600)),
            iters: Some(iters),
            out_dir,
            lockstep,
            generator: Generator::Steered,
        },
        &mut out,
    );
    (outcome, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn stress_finds_every_zoo_bug_and_names_its_state() {
    for bug in &BUGS {
        let (outcome, report) = run(Lockstep::Zoo { bug, fixed: false }, BUDGET);
        assert!(
            outcome.failure.is_some(),
            "{}: not found in {BUDGET} programs\n{report}",
            bug.name
        );
        assert!(
            report.contains(bug.state.name()),
            "{}: the report does not name {}:\n{report}",
            bug.name,
            bug.state
        );
        // The exactly sized arrays' bugs are out-of-bounds reads, caught as such, and the
        // signature (what the nightly job names its regression file after) names the state
        // whose access faulted.
        if matches!(bug.name, "stale-lru" | "empty-array" | "below-lowest") {
            assert!(
                report.contains("out-of-bounds access") && report.contains("past the end"),
                "{}: {report}",
                bug.name
            );
            let state = bug.state.name();
            let signature = report
                .lines()
                .find_map(|l| l.trim().strip_prefix("signature: "))
                .unwrap_or_else(|| panic!("{}: no signature line:\n{report}", bug.name));
            assert!(
                signature.starts_with("out-of-bounds-access.")
                    && signature.contains(&format!(".{state}  (disagreeing: {state})")),
                "{}: {signature}",
                bug.name
            );
        }
        eprintln!(
            "{}: found after {} programs ({} operations)",
            bug.name, outcome.iterations, outcome.ops
        );
    }
}

#[test]
fn fixed_states_are_never_reported() {
    for bug in &BUGS {
        let (outcome, report) = run(Lockstep::Zoo { bug, fixed: true }, FIXED_PROGRAMS);
        assert!(
            outcome.failure.is_none(),
            "{} fixed ({}) reported:\n{report}",
            bug.name,
            bug.fixed
        );
        assert_eq!(outcome.iterations, FIXED_PROGRAMS);
    }
}
