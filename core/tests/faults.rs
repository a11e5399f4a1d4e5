//! Each injected fault changes observable behaviour (so the harness's self-test can catch it).
#![cfg(feature = "fault-injection")]

use memslot_core::{Fault, MemslotSet, TreeMemslots, UserMemoryRegion, Vm};

const MB: u64 = 1 << 20;

/// (slot, gpa, size) of a `KVM_SET_USER_MEMORY_REGION` request.
type Op = (u32, u64, u64);

fn region(&(slot, gpa, size): &Op) -> UserMemoryRegion {
    UserMemoryRegion {
        slot,
        flags: 0,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: u64::from(slot + 1) << 32,
    }
}

/// Run `ops` and then lookups of `probe` with `fault` armed; describe everything observable.
fn run(fault: Option<Fault>, ops: &[Op], probe: &[u64]) -> String {
    let mut vm = Vm::new(Default::default());
    vm.set_fault(fault);
    let results: Vec<_> = ops
        .iter()
        .map(|op| vm.set_user_memory_region(&region(op)))
        .collect();
    let m = vm.memslots(0).unwrap();
    let found: Vec<_> = probe
        .iter()
        .map(|&gfn| (m.search_index(gfn), m.lru_slot()))
        .collect();
    let index: Vec<_> = (0..8).map(|id| m.index_of(id)).collect();
    format!(
        "{results:?} {:?} {index:?} {found:?} {:?}",
        m.slots(),
        m.check_invariants()
    )
}

#[test]
fn every_fault_changes_behaviour() {
    let three: &[Op] = &[(0, 16 * MB, MB), (1, 32 * MB, MB), (2, 48 * MB, MB)];
    let cases: [(Fault, &[Op], &[u64]); 5] = [
        (Fault::MoveForwardOffByOne, three, &[]),
        (
            Fault::MoveBackwardStopsEarly,
            &[three[0], three[1], three[2], (2, 0, MB)],
            &[],
        ),
        (Fault::DeleteKeepsIndex, &[(0, 0, MB), (0, 0, 0)], &[]),
        (Fault::LruNotUpdated, three, &[0x1000]),
        (Fault::SearchEndInclusive, three, &[0x1100]),
    ];
    each_changes_behaviour(&cases, false, run);
}

/// Each case's fault changes what `run` sees, and whatever follows the fault, nothing panics;
/// the cases cover every fault of the backend (`in_tree`).
fn each_changes_behaviour(
    cases: &[(Fault, &[Op], &[u64])],
    in_tree: bool,
    run: fn(Option<Fault>, &[Op], &[u64]) -> String,
) {
    for &(fault, ops, probe) in cases {
        assert_eq!(fault.in_tree(), in_tree, "{fault:?}");
        assert_ne!(
            run(None, ops, probe),
            run(Some(fault), ops, probe),
            "{fault:?}"
        );
        let mut more = ops.to_vec();
        more.extend([
            (0, 64 * MB, MB),
            (1, 0, 0),
            (2, 8 * MB, MB),
            (0, 0, 0),
            (1, 0, MB),
        ]);
        run(Some(fault), &more, &[0, 0x100, 0x1000, 0x3000]);
    }
    let faults = Fault::ALL.iter().filter(|f| f.in_tree() == in_tree).count();
    assert_eq!(faults, cases.len());
}

/// The same on the tree backend: lookups (with the last-used cache), the walk, host-range
/// queries over everything, the cache and the invariant check.
fn run_tree(fault: Option<Fault>, ops: &[Op], probe: &[u64]) -> String {
    let mut vm = Vm::<TreeMemslots>::with_backend(Default::default());
    vm.set_fault(fault);
    let results: Vec<_> = ops
        .iter()
        .map(|op| vm.set_user_memory_region(&region(op)))
        .collect();
    let m = vm.memslots(0).unwrap();
    let found: Vec<_> = probe
        .iter()
        .map(|&gfn| (m.search(gfn).map(|s| s.id), m.last_used_id()))
        .collect();
    let walk: Vec<_> = m.walk().map(|s| s.id).collect();
    let hva: Vec<_> = m.in_hva_range(0, u64::MAX).iter().map(|s| s.id).collect();
    format!(
        "{results:?} {walk:?} {hva:?} {found:?} {:?}",
        m.check_invariants()
    )
}

#[test]
fn every_tree_fault_changes_behaviour() {
    let three: &[Op] = &[(0, 16 * MB, MB), (1, 32 * MB, MB), (2, 48 * MB, MB)];
    let seven: Vec<Op> = (0..7).map(|i| (i, u64::from(i) * 16 * MB, MB)).collect();
    let cases: [(Fault, &[Op], &[u64]); 3] = [
        (
            Fault::TreeSkipsResync,
            &[three[0], three[1], (0, 0, 0)],
            &[],
        ),
        // Enough slots that an insertion passes below another node (and no later one splits
        // that path again, which recomputes it).
        (Fault::IntervalStaleMaxEnd, &seven, &[]),
        // A hit on slot 0 caches it; the page past it is in no slot.
        (Fault::LastUsedEndInclusive, three, &[0x1000, 0x1100]),
    ];
    each_changes_behaviour(&cases, true, run_tree);
}
