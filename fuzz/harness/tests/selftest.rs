//! Self-test: a deliberately broken core backend (memslot-core's `fault-injection` feature:
//! five faults in the array, three in the tree's two-set swap, interval index and last-used
//! cache), and the C ports compiled with a deliberate bug (`post15` with
//! `MEMSLOT_SELFTEST_DELETE_KEEPS_INDEX`, `modern` with `MEMSLOT_SELFTEST_STALE_CACHE`), must be
//! caught by the runner within a bounded number
//! of generated programs, and the report must blame the broken implementation. If the harness
//! stopped comparing something, this fails.

use memslot_core::Fault;
use memslot_harness::implementations::Implementation;
use memslot_harness::report::disagreeing;
use memslot_harness::runner::{
    implementations_with_broken_modern_port, implementations_with_broken_port,
    implementations_with_fault_at, standard_implementations, RunOptions, Runner,
};
use memslot_harness::stress::{iteration_seed, program, program_with, Kind, Recipe};
use memslot_harness::zoo::Generator;
use memslot_harness::ArchProfile;

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

/// Runs generated programs on `implementations()` until one diverges (at most [`BUDGET`]);
/// the report must blame `broken` alone. Returns what caught it.
fn caught(
    what: &str,
    broken: &str,
    implementations: impl Fn() -> Vec<Box<dyn Implementation>>,
) -> String {
    caught_at(ArchProfile::X86_512, what, broken, implementations)
}

/// [`caught`] with programs generated for `arch` (its user and private ids).
fn caught_at(
    arch: ArchProfile,
    what: &str,
    broken: &str,
    implementations: impl Fn() -> Vec<Box<dyn Implementation>>,
) -> String {
    let recipe = Recipe {
        generator: Generator::Steered,
        fail_prepare: true,
        arch,
    };
    for i in 0..BUDGET {
        let kind = if i % 2 == 0 {
            Kind::Short
        } else {
            Kind::Realistic
        };
        let ops = program_with(recipe, iteration_seed(0xfa17, i), Some(kind));
        let result = Runner::new(implementations(), RunOptions::default()).run(&ops);
        if let Some(d) = result.divergence {
            let blamed = disagreeing(&d);
            if arch == ArchProfile::X86_512 {
                // The broken implementation is the one that stands out.
                assert_eq!(
                    blamed,
                    [broken],
                    "{what}: the divergence does not point at {broken} alone: {d:#?}"
                );
            } else {
                // At x86-32k some aspects have two voters only (the LRU hint: core and
                // modern-32k), where no majority says which one is wrong: then `broken` must
                // be one of the two.
                let voters: Vec<&str> = d
                    .details
                    .iter()
                    .filter(|line| !line.ends_with("(none)"))
                    .filter_map(|line| line.split_whitespace().next())
                    .collect();
                let tie = voters.len() == 2 && voters.contains(&broken);
                assert!(
                    blamed == [broken] || tie,
                    "{what}: the divergence does not point at {broken}: {d:#?}"
                );
            }
            return format!(
                "{what}: caught by program {}, step {}: {}",
                i + 1,
                d.step,
                d.aspect
            );
        }
    }
    panic!("{what} not caught within {BUDGET} generated programs");
}

/// Every injected fault of [`Fault::ALL`] at `arch`, caught and blamed on its backend.
fn every_fault_caught_at(arch: ArchProfile, suffix: &str) {
    let mut report = Vec::new();
    for fault in Fault::ALL {
        assert!(covered(fault));
        let broken = if fault.in_tree() { "tree" } else { "core" };
        report.push(caught_at(
            arch,
            &format!("{fault:?}{suffix}"),
            broken,
            || implementations_with_fault_at(arch, fault),
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn every_injected_fault_is_caught() {
    every_fault_caught_at(ArchProfile::X86_512, "");
}

/// The same faults at today's x86 limits, where the lockstep is core, modern-32k, tree and
/// oracle: the profile's comparisons catch them as the standard set's do.
#[test]
fn every_injected_fault_is_caught_at_x86_32k() {
    every_fault_caught_at(ArchProfile::X86_32k, " at x86-32k");
}

#[test]
fn a_broken_port_is_caught() {
    // post15 compiled with MEMSLOT_SELFTEST_DELETE_KEEPS_INDEX (reference/c/states/).
    let broken = memslot_reference::Port::Post15SelftestDeleteKeepsIndex.name();
    println!(
        "{}",
        caught(broken, broken, implementations_with_broken_port)
    );
}

#[test]
fn a_broken_modern_port_is_caught() {
    // modern compiled with MEMSLOT_SELFTEST_STALE_CACHE (reference/c/states/).
    let broken = memslot_reference::Port::ModernSelftestStaleCache.name();
    println!(
        "{}",
        caught(broken, broken, implementations_with_broken_modern_port)
    );
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
