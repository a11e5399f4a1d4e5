//! Each injected fault changes observable behaviour (so the harness's self-test can catch it).
#![cfg(feature = "fault-injection")]

use memslot_core::{Fault, UserMemoryRegion, Vm};

const MB: u64 = 1 << 20;

/// (slot, gpa, size) of a `KVM_SET_USER_MEMORY_REGION` request.
type Op = (u32, u64, u64);

/// Run `ops` and then lookups of `probe` with `fault` armed; describe everything observable.
fn run(fault: Option<Fault>, ops: &[Op], probe: &[u64]) -> String {
    let mut vm = Vm::new(Default::default());
    vm.set_fault(fault);
    let results: Vec<_> = ops
        .iter()
        .map(|&(slot, gpa, size)| {
            let userspace_addr = u64::from(slot + 1) << 32;
            let r = UserMemoryRegion {
                slot,
                flags: 0,
                guest_phys_addr: gpa,
                memory_size: size,
                userspace_addr,
            };
            vm.set_user_memory_region(&r)
        })
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
    for (fault, ops, probe) in cases {
        assert_ne!(
            run(None, ops, probe),
            run(Some(fault), ops, probe),
            "{fault:?}"
        );
        // Whatever follows a fault, nothing panics.
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
    assert_eq!(Fault::ALL.len(), 5);
}
