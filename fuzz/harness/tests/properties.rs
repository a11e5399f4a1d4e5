//! bolero property tests: the fuzz targets' entry points and the format round trips, under
//! plain `cargo test` with random inputs for a bounded number of iterations (and under
//! `cargo bolero test` with a fuzzing engine, unchanged).

use bolero::check;
use memslot_harness::corpus;
use memslot_harness::decode::{decode, encode, Config, MAX_OPS};
use memslot_harness::generate::Weights;
use memslot_harness::{run, scenario, targets, Op, Target};

/// Random inputs per property under `cargo test` (debug build).
const ITERATIONS: usize = 3000;

#[test]
fn differential_target_agrees() {
    check!()
        .with_iterations(ITERATIONS)
        .with_max_len(2048)
        .for_each(|data: &[u8]| targets::differential(data));
}

#[test]
fn lookups_target_agrees() {
    check!()
        .with_iterations(ITERATIONS)
        .with_max_len(2048)
        .for_each(|data: &[u8]| targets::lookups(data));
}

#[test]
fn requests_target_agrees() {
    check!()
        .with_iterations(ITERATIONS)
        .with_max_len(2048)
        .for_each(|data: &[u8]| targets::requests(data));
}

/// Every concrete program, fail-prepare included, survives bytes and text.
#[test]
fn encode_decode_and_text_round_trip() {
    let everything = Config {
        weights: Weights::differential(),
        allow_fail_prepare: true,
        max_ops: MAX_OPS,
        arch: memslot_harness::ArchProfile::X86_512,
    };
    check!()
        .with_arbitrary::<Vec<Op>>()
        .with_iterations(2000)
        .for_each(|ops: &Vec<Op>| {
            let ops = &ops[..ops.len().min(MAX_OPS)];
            assert_eq!(decode(&everything, &encode(ops)).ops, ops);
            assert_eq!(scenario::parse(&scenario::print(ops)).unwrap(), ops);
            let without: Vec<Op> = ops
                .iter()
                .copied()
                .filter(|op| !matches!(op, Op::FailPrepare { .. }))
                .collect();
            for target in Target::ALL {
                assert_eq!(
                    corpus::to_bytes(&without, target).map(|b| target.decode(&b).ops),
                    Ok(without.clone())
                );
            }
        });
}

/// A fuzz input converted to scenario text and back (and to bytes and back) is the same program,
/// so it gets the same verdict.
#[test]
fn artifact_to_text_and_back_keeps_the_verdict() {
    check!()
        .with_iterations(200)
        .with_max_len(256)
        .for_each(|data: &[u8]| {
            for target in Target::ALL {
                let ops = target.decode(data).ops;
                let text = scenario::print(&ops);
                let parsed = scenario::parse(&text).expect("printed scenarios parse");
                assert_eq!(parsed, ops);
                assert_eq!(target.decode(&encode(&parsed)).ops, ops);
            }
            let ops = Target::Differential.decode(data).ops;
            let a = run(&ops);
            let b = run(&scenario::parse(&scenario::print(&ops)).unwrap());
            assert_eq!(a.stats, b.stats);
            assert_eq!(a.agreed(), b.agreed());
        });
}
