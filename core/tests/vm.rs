//! The `KVM_SET_USER_MEMORY_REGION` front end: validation order, change types, generations,
//! arch limits, lookups.

use memslot_core::{
    ArchLimits, Change, Error, Invalid, MemorySlot, UserMemoryRegion, Vm, KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
};

type Res = Result<Option<Change>, Error>;
const CREATE: Res = Ok(Some(Change::Create));
const DELETE: Res = Ok(Some(Change::Delete));
const MOVE: Res = Ok(Some(Change::Move));
const MB: u64 = 1 << 20;
const PG: u64 = 4096;
const TOP: u64 = u64::MAX - 4095; // the highest page-aligned address

fn inval(why: Invalid) -> Res {
    Err(Error::Invalid(why))
}

/// The hva is derived from the id, so re-issuing a request for an id never changes it.
fn hva(slot: u32) -> u64 {
    (u64::from(slot & 0xffff) + 1) << 32
}

fn req(slot: u32, flags: u32, gpa: u64, size: u64, hva: u64) -> UserMemoryRegion {
    UserMemoryRegion {
        slot,
        flags,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: hva,
    }
}

fn region(slot: u32, gpa: u64, size: u64) -> UserMemoryRegion {
    req(slot, 0, gpa, size, hva(slot))
}

/// Through the ioctl.
fn set(vm: &mut Vm, slot: u32, gpa: u64, size: u64) -> Res {
    vm.set_user_memory_region(&region(slot, gpa, size))
}

/// Through the in-kernel path.
fn kset(vm: &mut Vm, slot: u32, gpa: u64, size: u64) -> Res {
    vm.set_memory_region(&region(slot, gpa, size))
}

fn ids(vm: &Vm, as_id: u16) -> Vec<u16> {
    vm.memslots(as_id).unwrap().iter().map(|s| s.id).collect()
}

fn gen(vm: &Vm, as_id: u16) -> u64 {
    vm.memslots(as_id).unwrap().generation()
}

fn check(vm: &Vm) {
    for as_id in 0..vm.limits().address_space_num {
        let m = vm.memslots(as_id).unwrap();
        m.check_invariants().unwrap();
        for (i, s) in m.iter().enumerate() {
            assert_eq!(
                (m.index_of(s.id), m.id_to_memslot(s.id)),
                (Some(i), Some(s))
            );
        }
    }
}

#[test]
fn change_types_and_generations_in_both_address_spaces() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    assert_eq!((gen(&vm, 0), gen(&vm, 1)), (0, 1));
    let mut r = region(3, 16 * MB, 2 * MB);
    assert_eq!(vm.set_user_memory_region(&r), CREATE);
    assert_eq!(vm.set_user_memory_region(&r), Ok(None)); // identical request: no-op
    assert_eq!(gen(&vm, 0), 2);
    r.flags = KVM_MEM_LOG_DIRTY_PAGES;
    assert_eq!(vm.set_user_memory_region(&r), Ok(Some(Change::FlagsOnly)));
    assert_eq!(gen(&vm, 0), 4);
    r.guest_phys_addr = 64 * MB;
    r.flags = 0; // a move may change LOG_DIRTY_PAGES too
    assert_eq!(vm.set_user_memory_region(&r), MOVE);
    assert_eq!(gen(&vm, 0), 8);
    let want = MemorySlot {
        id: 3,
        base_gfn: 0x4000,
        npages: 512,
        flags: 0,
        userspace_addr: hva(3),
    };
    assert_eq!(vm.memslots(0).unwrap().slots(), [want]);

    // Address space 1: same id, overlapping range; the spaces are independent.
    assert_eq!(set(&mut vm, 1 << 16 | 3, 64 * MB, 4 * MB), CREATE);
    assert_eq!((gen(&vm, 0), gen(&vm, 1)), (8, 3));
    assert_eq!(set(&mut vm, 1 << 16 | 3, 0, 0), DELETE);
    assert_eq!(gen(&vm, 1), 7);
    assert_eq!(set(&mut vm, 3, 0, 0), DELETE);
    assert_eq!(gen(&vm, 0), 12);
    let m = vm.memslots(0).unwrap();
    assert_eq!(
        (m.used_slots(), m.index_of(3), m.id_to_memslot(3)),
        (0, None, None)
    );
    assert!(vm.memslots(2).is_none());
    check(&vm);
}

#[test]
fn each_validation_step_and_its_order() {
    use Invalid::*;
    let mut vm = Vm::new(ArchLimits::X86_64);
    let (g, s, h) = (16 * MB, 2 * MB, hva(5));
    let a2 = 2 << 16 | 5; // address space 2 does not exist on x86
    let cases = [
        // Each request breaks two rules and must report the earlier one.
        (req(5, 4, g, 1, h), Flags),
        (req(5, 0, 1, 1, h), SizeUnaligned),
        (req(5, 0, 1, s, 1), GpaUnaligned),
        (req(a2, 0, g, s, h + 1), HvaUnaligned),
        (req(a2, 0, g, s, 1 << 47), HvaRange),
        (req(5, 0, g, 0, TOP), HvaRange),       // even for a delete
        (req(a2, 0, g, 2 * PG, TOP), HvaRange), // hva + size wraps
        (req(a2, 0, TOP, s, h), AddressSpace),
        (req(600, 0, TOP, s, 1), SlotId), // ids >= 509 skip the hva checks
        (req(5, 0, TOP, 1 << 43, h), GpaWraps),
        (req(5, 0, TOP, 0, h), DeleteAbsent),
        (req(5, 0, g, 1 << 43, h), TooManyPages),
    ];
    for (r, why) in cases {
        assert_eq!(vm.set_memory_region(&r), inval(why), "{r:?}");
        let ioctl = if r.slot & 0xffff < 509 {
            why
        } else {
            NotUserSlot
        };
        assert_eq!(vm.set_user_memory_region(&r), inval(ioctl), "{r:?}");
    }
    // The hva range may end exactly at TASK_SIZE_MAX, not a page later.
    let end = (1 << 47) - PG;
    assert_eq!(
        vm.set_user_memory_region(&req(5, 0, g, s, end - s + PG)),
        inval(HvaRange)
    );
    assert_eq!(vm.set_user_memory_region(&req(5, 0, g, s, end - s)), CREATE);
    assert_eq!(vm.set_user_memory_region(&req(5, 0, 0, 0, end - s)), DELETE);
    assert_eq!(gen(&vm, 0), 6);

    // Changes to an existing slot: hva, then size, then READONLY, then classification.
    assert_eq!(vm.set_user_memory_region(&req(5, 0, g, s, h)), CREATE);
    let ro = KVM_MEM_READONLY;
    for (r, why) in [
        (req(5, 0, g, MB, h + PG), HvaChanged),
        (req(5, ro, g, MB, h), SizeChanged),
        (req(5, ro, 0, s, h), ReadonlyToggled),
    ] {
        assert_eq!(vm.set_user_memory_region(&r), inval(why), "{r:?}");
    }
    assert_eq!(gen(&vm, 0), 8);
    assert_eq!(set(&mut vm, 5, 0, 0), DELETE);
    assert_eq!(set(&mut vm, 5, 0, 0), inval(DeleteAbsent));
    assert_eq!(Error::Invalid(Flags).errno(), -22);
    assert_eq!(Error::Exists { id: 0 }.errno(), -17);
    assert_eq!(
        (Error::NoMemory.errno(), Error::Arch(-5).errno()),
        (-12, -5)
    );
    check(&vm);
}

#[test]
fn overlaps_report_the_first_slot_in_walk_order() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    for (id, mb) in [(0, 0), (1, 4), (2, 8)] {
        assert_eq!(set(&mut vm, id, mb * MB, 2 * MB), CREATE);
    }
    assert_eq!(set(&mut vm, 7, MB, 8 * MB), Err(Error::Exists { id: 2 }));
    assert_eq!(set(&mut vm, 7, 7 * MB, PG), CREATE);
    assert_eq!(ids(&vm, 0), [2, 7, 1, 0]);
    // A move may overlap its own old range but not a neighbour.
    assert_eq!(set(&mut vm, 1, MB, 2 * MB), Err(Error::Exists { id: 0 }));
    assert_eq!(
        set(&mut vm, 1, 6 * MB, 2 * MB),
        Err(Error::Exists { id: 7 })
    );
    assert_eq!(set(&mut vm, 1, 3 * MB, 2 * MB), MOVE);
    // Other address spaces are not checked.
    assert_eq!(set(&mut vm, 1 << 16 | 9, 0, 16 * MB), CREATE);
    check(&vm);
}

#[test]
fn private_ids_are_in_kernel_only_and_skip_hva_checks() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    for id in 509..512u32 {
        assert_eq!(
            set(&mut vm, id, u64::from(id) * MB, PG),
            inval(Invalid::NotUserSlot)
        );
        // The ioctl looks at the low 16 bits only.
        assert_eq!(
            set(&mut vm, 1 << 16 | id, 0, 0),
            inval(Invalid::NotUserSlot)
        );
        let bad_hva = if id == 509 { 1 } else { TOP };
        assert_eq!(
            vm.set_memory_region(&req(id, 0, u64::from(id) * MB, PG, bad_hva)),
            CREATE
        );
    }
    assert_eq!(ids(&vm, 0), [511, 510, 509]);
    assert_eq!(
        vm.set_memory_region(&req(508, 0, 0, PG, 1)),
        inval(Invalid::HvaUnaligned)
    );
    assert_eq!(set(&mut vm, 1 << 16 | 5, 0, PG), CREATE);
    check(&vm);
}

#[test]
fn slots_at_gfn_zero_and_at_the_top_of_the_gfn_space() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    let top_gpa = TOP - 2 * PG; // gpa + size == 2^64 - 4096: no wrap
    assert_eq!(kset(&mut vm, 509, top_gpa, 2 * PG), CREATE);
    assert_eq!(
        kset(&mut vm, 510, top_gpa + PG, 2 * PG),
        inval(Invalid::GpaWraps)
    );
    assert_eq!(kset(&mut vm, 510, TOP, PG), inval(Invalid::GpaWraps));
    assert_eq!(set(&mut vm, 0, 0, PG), CREATE);
    assert_eq!(ids(&vm, 0), [509, 0]);
    let m = vm.memslots(0).unwrap();
    let last = (1 << 52) - 1;
    for (gfn, want) in [
        (0, Some(0)),
        (1, None),
        (last - 3, None),
        (last - 2, Some(509)),
        (last - 1, Some(509)),
        (last, None),
        (u64::MAX, None),
    ] {
        assert_eq!(m.search(gfn).map(|s| s.id), want, "gfn {gfn:#x}");
    }
    check(&vm);
}

#[test]
fn delete_then_recreate_elsewhere_and_moves_past_several_slots() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    for id in 0..6 {
        assert_eq!(set(&mut vm, id, u64::from(id) * 16 * MB, MB), CREATE);
    }
    assert_eq!(ids(&vm, 0), [5, 4, 3, 2, 1, 0]);
    let steps: [(u32, u64, [u16; 6]); 5] = [
        (5, 8 * MB, [4, 3, 2, 1, 5, 0]),   // down past four
        (5, 200 * MB, [5, 4, 3, 2, 1, 0]), // up past all
        (0, 56 * MB, [5, 4, 0, 3, 2, 1]),  // the lowest up past three
        (4, 2 * MB, [5, 0, 3, 2, 1, 4]),   // to the very end
        (4, 100 * MB, [5, 4, 0, 3, 2, 1]), // to the second place
    ];
    for (id, gpa, want) in steps {
        assert_eq!(set(&mut vm, id, gpa, MB), MOVE);
        assert_eq!(ids(&vm, 0), want);
        check(&vm);
    }
    assert_eq!(set(&mut vm, 3, 0, 0), DELETE);
    assert_eq!(ids(&vm, 0), [5, 4, 0, 2, 1]);
    // The re-created slot may take any size and flags.
    let r = req(3, KVM_MEM_READONLY, 300 * MB, 2 * MB, hva(3));
    assert_eq!(vm.set_user_memory_region(&r), CREATE);
    assert_eq!(ids(&vm, 0), [3, 5, 4, 0, 2, 1]);
    assert_eq!(
        vm.memslots(0).unwrap().id_to_memslot(3).unwrap().npages,
        512
    );
    check(&vm);
}

#[test]
fn fill_every_slot_then_the_next_create_fails() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    // A scattered order, so creates land all over the array.
    for k in 0..512u32 {
        let (id, gpa) = (k * 197 % 512, u64::from(k * 211 % 512) * 2 * MB);
        let got = if id < 509 {
            set(&mut vm, id, gpa, MB)
        } else {
            kset(&mut vm, id, gpa, MB)
        };
        assert_eq!(got, CREATE);
    }
    check(&vm);
    let m = vm.memslots(0).unwrap();
    assert_eq!((m.used_slots(), m.generation()), (512, 1024));
    for s in m.iter() {
        assert_eq!(m.search(s.base_gfn + 255).map(|f| f.id), Some(s.id));
        assert_eq!(m.search(s.base_gfn + 256), None);
    }
    assert_eq!(
        set(&mut vm, 509, 2048 * MB, MB),
        inval(Invalid::NotUserSlot)
    );
    assert_eq!(kset(&mut vm, 512, 2048 * MB, MB), inval(Invalid::SlotId));
    check(&vm);
}

#[test]
fn lookups_and_the_lru_hint() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    let m = vm.memslots(0).unwrap();
    assert_eq!(
        (m.search(0), m.search(u64::MAX), m.lru_slot()),
        (None, None, 0)
    );
    assert_eq!((m.id_to_memslot(0), m.id_to_memslot(9999)), (None, None));
    // GFN [0x100, 0x110), [0x200, 0x210), [0x300, 0x310) at indices 2, 1, 0.
    for id in 1..=3 {
        assert_eq!(set(&mut vm, id, u64::from(id) * MB, 16 * PG), CREATE);
    }
    let m = vm.memslots(0).unwrap();
    for (i, s) in m.iter().enumerate() {
        let (first, last) = (s.base_gfn, s.end_gfn() - 1);
        for (gfn, hit) in [
            (first, true),
            (last, true),
            (first - 1, false),
            (last + 1, false),
        ] {
            m.set_lru_slot(7); // a stale hint never hits
            assert_eq!(m.search_index(gfn), hit.then_some(i), "gfn {gfn:#x}");
            assert_eq!(m.lru_slot(), if hit { i } else { 7 });
        }
    }
    m.set_lru_slot(0);
    assert_eq!(m.search_index(0x300), Some(0));
    assert_eq!(m.search_index(0x105), Some(2));
    assert_eq!(m.lru_slot(), 2);
    assert_eq!(m.search_index(0x10f), Some(2)); // LRU hit, hint unchanged
    assert_eq!(m.search_index(0x250), None); // gap: unchanged
    assert_eq!(m.search_index(0x50), None); // below everything: unchanged
    assert_eq!(
        m.search_index(0x205).map(|i| (i, m.lru_slot())),
        Some((1, 1))
    );
    assert_eq!(m.search(0x30f).map(|s| s.id), Some(3));
    assert_eq!(m.lru_slot(), 0);
    // Deleting the slot under the hint leaves the hint alone (no reset before v5.7).
    m.set_lru_slot(2);
    assert_eq!(set(&mut vm, 1, 0, 0), DELETE);
    let m = vm.memslots(0).unwrap();
    assert_eq!(
        (m.lru_slot(), m.used_slots(), m.search_index(0x105)),
        (2, 2, None)
    );
    assert_eq!(m.lru_slot(), 2);
    check(&vm);
}

#[test]
fn arch_prepare_failure_for_each_change_type() {
    let mut vm = Vm::new(ArchLimits::X86_64);
    assert_eq!(set(&mut vm, 2, 64 * MB, MB), CREATE);
    vm.set_arch_prepare_error(Some(Error::Arch(-5)));
    assert_eq!(set(&mut vm, 1, 16 * MB, MB), Err(Error::Arch(-5)));
    assert_eq!((gen(&vm, 0), ids(&vm, 0)), (2, vec![2]));
    vm.set_arch_prepare_error(None);
    assert_eq!(set(&mut vm, 1, 16 * MB, MB), CREATE);
    let before = vm.memslots(0).unwrap().slots().to_vec();
    vm.set_arch_prepare_error(Some(Error::NoMemory));
    let log = KVM_MEM_LOG_DIRTY_PAGES;
    // MOVE, FLAGS_ONLY, DELETE: the INVALID copy and the reinstalled old array count.
    for (r, step) in [
        (region(1, 0, MB), 4),
        (req(1, log, 16 * MB, MB, hva(1)), 0),
        (region(1, 0, 0), 4),
    ] {
        let g = gen(&vm, 0);
        assert_eq!(vm.set_user_memory_region(&r), Err(Error::NoMemory));
        assert_eq!(
            (gen(&vm, 0), vm.memslots(0).unwrap().slots()),
            (g + step, &before[..])
        );
    }
    // Validation failures and the no-op never reach the hook.
    assert_eq!(set(&mut vm, 3, 64 * MB, MB), Err(Error::Exists { id: 2 }));
    assert_eq!(set(&mut vm, 1, 16 * MB, MB), Ok(None));
    assert_eq!(gen(&vm, 0), 12);
    check(&vm);
}

#[test]
fn other_architectures() {
    let mut arm = Vm::new(ArchLimits::ARM64);
    assert_eq!(set(&mut arm, 511, 0, MB), CREATE);
    assert_eq!(
        set(&mut arm, 1 << 16 | 1, 8 * MB, MB),
        inval(Invalid::AddressSpace)
    );
    let ro = req(2, KVM_MEM_READONLY, 8 * MB, MB, (1 << 48) - MB);
    assert_eq!(arm.set_user_memory_region(&ro), CREATE);
    assert_eq!(gen(&arm, 0), 2);

    let mut s390 = Vm::new(ArchLimits::S390);
    assert_eq!(s390.set_user_memory_region(&ro), inval(Invalid::Flags));
    assert_eq!(
        s390.set_user_memory_region(&req(2, 0, 0, MB, TOP - MB)),
        CREATE
    );
    assert_eq!(
        s390.set_user_memory_region(&req(3, 0, MB, MB, TOP - MB + PG)),
        inval(Invalid::HvaRange)
    );
    assert_eq!(set(&mut s390, 32, 0, MB), inval(Invalid::NotUserSlot));

    let limits = ArchLimits::custom(32764, 4, 2);
    assert_eq!(
        (limits.mem_slots_num(), limits.max_nr_pages),
        (32768, (1 << 31) - 1)
    );
    let mut big = Vm::new(limits);
    for id in 0..32764u32 {
        // Descending GPAs: each create stays at the back, as a VMM filling memory would do.
        assert_eq!(
            set(&mut big, id, u64::from(32764 - id) * 2 * MB, MB),
            CREATE
        );
    }
    assert_eq!(set(&mut big, 32764, 0, MB), inval(Invalid::NotUserSlot));
    assert_eq!(kset(&mut big, 32767, 0, MB), CREATE);
    assert_eq!(set(&mut big, 100, 0, 0), DELETE);
    assert_eq!(set(&mut big, 0, 3 * MB, MB), MOVE); // from the front to the third-last place
    check(&big);
    let m = big.memslots(0).unwrap();
    assert_eq!((m.used_slots(), m.slots()[0].id), (32764, 1));
    assert_eq!(
        (m.index_of(0), m.index_of(32767)),
        (Some(32761), Some(32763))
    );
    assert_eq!(m.search((32764 - 5) * 512 + 3).map(|s| s.id), Some(5));
}
