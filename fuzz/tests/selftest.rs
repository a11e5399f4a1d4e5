//! Self-test: a deliberately broken core backend (memslot-core's `fault-injection` feature:
//! five faults in the array, three in the tree's two-set swap, interval index and last-used
//! cache) must be caught by the runner within a bounded number of generated programs, and the
//! report must blame the broken implementation, for every fault. If the harness stopped
//! comparing something, this fails.

use memslot_core::Fault;
use memslot_diff::report::disagreeing;
use memslot_diff::runner::{
    implementations_with_fault, standard_implementations, RunOptions, Runner,
};
use memslot_diff::stress::{iteration_seed, program, Kind};

/// Generated programs tried per fault before giving up.
const BUDGET: u64 = 300;

/// Compile-time reminder: a new fault needs no change here (the loop takes `Fault::ALL`), but
/// this match fails to build if a variant is added without being listed in `ALL`'s length.
fn covered(f: Fault) -> bool {
    match f {
        Fault::MoveForwardOffByOne
        | Fault::MoveBackwardStopsEarly
        | Fault::DeleteKeepsIndex
        | Fault::LruNotUpdated
        | Fault::SearchEndInclusive
        | Fault::TreeSkipsResync
        | Fault::IntervalStaleMaxEnd
        | Fault::LastUsedEndInclusive => Fault::ALL.contains(&f),
    }
}

#[test]
fn every_injected_fault_is_caught() {
    let mut report = Vec::new();
    for fault in Fault::ALL {
        assert!(covered(fault));
        let mut caught = None;
        for i in 0..BUDGET {
            let kind = if i % 2 == 0 {
                Kind::Short
            } else {
                Kind::Realistic
            };
            let ops = program(iteration_seed(0xfa17, i), Some(kind));
            let result =
                Runner::new(implementations_with_fault(fault), RunOptions::default()).run(&ops);
            if let Some(d) = result.divergence {
                // The broken implementation is the one that stands out.
                let broken = if fault.in_tree() { "tree" } else { "core" };
                assert_eq!(
                    disagreeing(&d),
                    [broken],
                    "{fault:?}: the divergence does not point at {broken} alone: {d:#?}"
                );
                caught = Some((i + 1, d.step, d.aspect.clone()));
                break;
            }
        }
        let (programs, step, aspect) = caught
            .unwrap_or_else(|| panic!("{fault:?} not caught within {BUDGET} generated programs"));
        report.push(format!(
            "{fault:?}: caught by program {programs}, step {step}: {aspect}"
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn the_unbroken_core_agrees_on_the_same_programs() {
    for i in 0..40 {
        let kind = if i % 2 == 0 {
            Kind::Short
        } else {
            Kind::Realistic
        };
        let ops = program(iteration_seed(0xfa17, i), Some(kind));
        let result = Runner::new(standard_implementations(), RunOptions::default()).run(&ops);
        assert!(result.agreed(), "{:?}", result.divergence.map(|d| d.aspect));
    }
}
