//! The zoo states, one bug each, against their fixed states: the shortest trigger of each
//! bug (kvm-memslot-facts.md §3) makes the bug state misbehave, and the fixed state not.
//! Out-of-bounds accesses must be caught by the shim's guard pages (without AddressSanitizer)
//! and reported as an [`memslot_reference::OutOfBounds`], not as a crash.

use memslot_reference::{
    compiled_states, guard_pages, KvmUserspaceMemoryRegion as Region, MrChange, Port, PortVm,
    RawSlot, FAULTED,
};

const MB: u64 = 1 << 20;
const DIRTY: u32 = 1;
const INVALID: u32 = 1 << 16;
const ENOMEM: i32 = -12;

fn set(vm: &mut PortVm, id: u16, gpa: u64, size: u64, flags: u32) -> i32 {
    vm.set_memory_region(&Region {
        slot: u32::from(id),
        flags,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: 0x1_0000_0000 + (u64::from(id) << 20),
    })
}

/// Runs `trigger` on the bug state and on the fixed state; returns both VMs.
fn both(bug: Port, fixed: Port, trigger: impl Fn(&mut PortVm)) -> (PortVm, PortVm) {
    let mut b = PortVm::new(bug);
    let mut f = PortVm::new(fixed);
    trigger(&mut b);
    trigger(&mut f);
    assert!(f.fault().is_none(), "{fixed}: {:?}", f.fault());
    (b, f)
}

fn expect_read_past_end(vm: &PortVm, function: &str) {
    if !guard_pages() {
        return; // AddressSanitizer build: it reports the access itself.
    }
    let fault = vm
        .fault()
        .unwrap_or_else(|| panic!("{}: no fault caught", vm.port()));
    assert!(fault.past_end && !fault.is_write, "{}: {fault}", vm.port());
    assert!(fault.function.ends_with(function), "{}: {fault}", vm.port());
}

#[test]
fn every_state_file_is_a_port() {
    let mut names: Vec<String> = Port::ALL.iter().map(|p| p.c_name()).collect();
    names.sort();
    assert_eq!(names, compiled_states());
}

#[test]
fn stale_lru_hint_after_delete_reads_past_the_array() {
    // facts §3.1, sequence 1.
    let (bug, fixed) = both(Port::Post15BugStaleLru, Port::Post15, |vm| {
        assert_eq!(set(vm, 0, 64 * MB, MB, 0), 0); // A, high
        assert_eq!(set(vm, 1, 0, MB, 0), 0); // B, low: index 1
        assert!(vm.search_memslots(0, 1).is_some()); // lru = 1
        assert_eq!(set(vm, 1, 0, 0, 0), 0); // delete B: used_slots 1
        assert_eq!(set(vm, 0, 64 * MB, MB, DIRTY), 0); // FLAGS_ONLY: a 1-entry copy
        vm.search_memslots(0, 0x7000);
    });
    expect_read_past_end(&bug, "search_memslots");
    assert_eq!(fixed.warn_count(), 0);
}

#[test]
fn lookup_in_a_never_used_address_space_reads_past_the_empty_array() {
    let (bug, _) = both(Port::Post15BugEmptyArray, Port::Post15, |vm| {
        assert_eq!(vm.search_memslots(1, 0), None);
    });
    expect_read_past_end(&bug, "search_memslots");
    // Deleting the last slot leaves a one-entry array: lookups stay in bounds.
    let mut vm = PortVm::new(Port::Post15BugEmptyArray);
    assert_eq!(set(&mut vm, 0, 0, MB, 0), 0);
    assert_eq!(set(&mut vm, 0, 0, 0, 0), 0);
    assert_eq!(vm.search_memslots(0, 5), None);
    assert!(vm.fault().is_none());
}

#[test]
fn lookup_below_the_lowest_slot_reads_past_the_array() {
    // facts §3.2: one slot at GPA >= 1 page, then GFN 0.
    let (bug, fixed) = both(Port::Post15BugBelowLowest, Port::Post15, |vm| {
        assert_eq!(set(vm, 0, MB, MB, 0), 0);
        vm.search_memslots(0, 0);
    });
    expect_read_past_end(&bug, "search_memslots");
    assert_eq!(fixed.warn_count(), 0);
}

#[test]
fn merged_state_has_the_bugs_of_each() {
    let mut vm = PortVm::new(Port::Post15Merged);
    assert_eq!(vm.search_memslots(0, 0), None);
    expect_read_past_end(&vm, "search_memslots");
    assert_eq!(
        vm.search_memslots(0, 0).map(|f| f.0),
        None,
        "no call after a fault"
    );
    assert_eq!(set(&mut vm, 0, 0, MB, 0), FAULTED);
}

#[test]
fn update_memslots_of_an_absent_id_writes_before_the_array() {
    let absent = RawSlot {
        id: 5,
        base_gfn: 0x100,
        npages: 1,
        flags: 0,
        userspace_addr: 0,
        has_dirty_bitmap: false,
    };
    let (mut bug, mut fixed) = both(Port::Post15BugUpdateAbsentId, Port::Post15, |vm| {
        assert_eq!(set(vm, 0, 0, MB, 0), 0);
        assert_eq!(vm.update_memslots(0, &absent, MrChange::Move), 0);
    });
    // Fixed: WARN_ON_ONCE(i < 0) and nothing changes.
    assert_eq!(fixed.warn_count(), 1, "{:?}", fixed.last_warn());
    let f = fixed.state(0, 512);
    assert_eq!(
        (f.used_slots, f.id_to_index[5], f.id_to_index[0]),
        (1, -1, 0)
    );
    // Bug: memslots[-1] is the tail of the header (id_to_index, lru_slot, used_slots).
    assert!(bug.warn_count() >= 1, "move_backward's WARN");
    let b = bug.state(0, 512);
    assert_ne!(
        (b.used_slots, b.lru_slot, &b.id_to_index[..]),
        (f.used_slots, f.lru_slot, &f.id_to_index[..]),
        "the header was overwritten"
    );
}

#[test]
fn failed_prepare_leaves_the_invalid_copy_installed() {
    let (mut bug, mut fixed) = both(Port::PreBugPrepareInvalid, Port::PreFixed, |vm| {
        assert_eq!(set(vm, 1, 0, MB, 0), 0);
        vm.set_prepare_error(ENOMEM);
        assert_eq!(set(vm, 1, 0, 0, 0), ENOMEM);
    });
    assert_eq!(bug.id_to_memslot(0, 1).unwrap().1.flags, INVALID);
    assert_eq!(fixed.id_to_memslot(0, 1).unwrap().1.flags, 0);
}

#[test]
fn lookup_below_512_slots_reads_past_the_fixed_array() {
    // fuzz/harness/tests/known/lookup-below-512-slots.scenario: the bytes past memslots[511] are the
    // index of ids 0..3, which then reads as a slot covering the GFN.
    let (mut bug, mut fixed) = both(Port::PreBugBelowLowestFull, Port::PreFixed, |vm| {
        let top = 0x3000_0000_0000u64;
        for (k, id) in [3u16, 2, 1, 0].into_iter().chain(4..512).enumerate() {
            assert_eq!(set(vm, id, top - k as u64 * 0x2000, 4096, 0), 0, "id {id}");
        }
    });
    // entry 512 reads as base_gfn 0x1_0002_0003 (ids 0..3 at indices 3, 2, 1, 0), npages
    // 0x7_0006_0005_0004 (ids 4..7): it covers this GFN, below the lowest slot.
    let gfn = 0x2_0000_0000u64;
    assert_eq!(fixed.search_memslots(0, gfn), None);
    let (index, garbage) = bug.search_memslots(0, gfn).expect("a slot past the array");
    assert_eq!(index, 512);
    assert_eq!(garbage.npages, 0x0007_0006_0005_0004);
}
