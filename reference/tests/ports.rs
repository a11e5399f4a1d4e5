//! Each port on its own, against the kernel semantics written down in
//! kvm-memslot-facts.md (sections 2.2 to 2.8): every change type, every validation step
//! and its error code, both address spaces, private ids, lookups at the edges.
//! Agreement between the ports and the Rust core is checked in the harness's tests.

use memslot_reference::{
    Family, KvmUserspaceMemoryRegion as Region, KvmUserspaceMemoryRegion2 as Region2, Port, PortVm,
    RawSlot, KVM_MEM_SLOTS_NUM,
};

/// The states whose behaviour these tests pin: the literal pre and post, and pre and post15
/// with every later fix. The zoo states differ from these by one bug each (tests/zoo.rs).
const STATES: [Port; 6] = [
    Port::Pre,
    Port::PreFixed,
    Port::Post,
    Port::PostFixed,
    Port::Post15,
    Port::Modern,
];

const EINVAL: i32 = -22;
const EEXIST: i32 = -17;
const ENOMEM: i32 = -12;
const DIRTY: u32 = 1;
const READONLY: u32 = 2;
const INVALID: u32 = 1 << 16;
const MB: u64 = 1 << 20;
const HVA: u64 = 0x7f00_0000_0000;

fn region(as_id: u16, id: u16, gpa: u64, size: u64, hva: u64, flags: u32) -> Region {
    Region {
        slot: (u32::from(as_id) << 16) | u32::from(id),
        flags,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: hva,
    }
}

fn set(vm: &mut PortVm, as_id: u16, id: u16, gpa: u64, size: u64, flags: u32) -> i32 {
    vm.ioctl_set_memory_region(&region(
        as_id,
        id,
        gpa,
        size,
        HVA + (u64::from(id) << 28),
        flags,
    ))
}

/// (id, base_gfn, npages) of the used entries, in array order.
fn layout(vm: &mut PortVm, as_id: u16) -> Vec<(i16, u64, u64)> {
    let s = vm.state(as_id, KVM_MEM_SLOTS_NUM);
    s.entries[..s.used_slots as usize]
        .iter()
        .map(|e| (e.id, e.base_gfn, e.npages))
        .collect()
}

/// Present ids must map to their entry; checks the kernel's own invariants of the state.
fn check_state(vm: &mut PortVm, as_id: u16) {
    let port = vm.port();
    let s = vm.state(as_id, KVM_MEM_SLOTS_NUM);
    let used = s.used_slots as usize;
    for w in s.entries[..used].windows(2) {
        assert!(
            w[0].base_gfn > w[1].base_gfn,
            "{port}: not strictly descending: {w:?}"
        );
        assert!(
            w[1].base_gfn + w[1].npages <= w[0].base_gfn,
            "{port}: overlap: {w:?}"
        );
    }
    for (i, e) in s.entries[..used].iter().enumerate() {
        assert!(e.npages > 0, "{port}: empty entry {i} below used_slots");
        assert_eq!(
            s.id_to_index[e.id as usize], i as i16,
            "{port}: index of id {}",
            e.id
        );
        assert_eq!(
            e.has_dirty_bitmap,
            e.flags & DIRTY != 0,
            "{port}: dirty bitmap of id {}",
            e.id
        );
        assert_eq!(e.flags & INVALID, 0, "{port}: INVALID left on id {}", e.id);
    }
    match port.family() {
        Family::Pre => {
            // Every id has an entry: id_to_index is a permutation, the tail is empty.
            let mut seen = vec![false; KVM_MEM_SLOTS_NUM];
            for (id, &i) in s.id_to_index.iter().enumerate() {
                assert_eq!(
                    s.entries[i as usize].id as usize, id,
                    "pre: id_to_index[{id}]"
                );
                seen[i as usize] = true;
            }
            assert!(
                seen.iter().all(|&x| x),
                "pre: id_to_index is not a permutation"
            );
            assert!(
                s.entries[used..].iter().all(|e| e.npages == 0),
                "pre: non-empty entry past used_slots"
            );
        }
        Family::Post | Family::Post15 | Family::Modern => {
            let present = s.id_to_index.iter().filter(|&&i| i >= 0).count();
            assert_eq!(present, used, "post: ids with an index vs used_slots");
        }
    }
    let mut walk: Vec<i16> = s.entries[..used].iter().map(|e| e.id).collect();
    let mut visited = vm.for_each_memslot(as_id);
    if port.family() == Family::Modern {
        // kvm_for_each_memslot() walks the id hash: the same ids, in bucket order.
        walk.sort_unstable();
        visited.sort_unstable();
    }
    assert_eq!(visited, walk, "{port}: walk order");
    assert_eq!(vm.check_structure(as_id), Ok(()), "{port}: structure");
}

fn lookup(vm: &mut PortVm, as_id: u16, gfn: u64) -> Option<i16> {
    vm.search_memslots(as_id, gfn).map(|(_, s)| s.id)
}

fn gen(vm: &mut PortVm, as_id: u16) -> u64 {
    vm.state(as_id, 0).generation
}

fn each_port(test: impl Fn(&mut PortVm)) {
    for port in STATES {
        let mut vm = PortVm::new(port);
        test(&mut vm);
        check_state(&mut vm, 0);
        check_state(&mut vm, 1);
        assert_eq!(
            vm.warn_count(),
            0,
            "{port}: unexpected WARN: {:?}",
            vm.last_warn()
        );
    }
}

#[test]
fn c_layout_matches_rust_mirror() {
    memslot_reference::layout_matches_c().unwrap();
}

#[test]
fn new_vm_is_empty_with_per_address_space_generations() {
    each_port(|vm| {
        assert_eq!(gen(vm, 0), 0);
        assert_eq!(gen(vm, 1), 1);
        assert_eq!(vm.state(0, 0).used_slots, 0);
        assert_eq!(vm.for_each_memslot(0), Vec::<i16>::new());
        for gfn in [0, 1, u64::MAX >> 12, u64::MAX] {
            assert_eq!(lookup(vm, 0, gfn), None);
        }
    });
}

#[test]
fn every_change_type_and_its_generation() {
    each_port(|vm| {
        assert_eq!(set(vm, 0, 5, 16 * MB, 2 * MB, 0), 0); // CREATE
        assert_eq!(gen(vm, 0), 2);
        assert_eq!(set(vm, 0, 5, 16 * MB, 2 * MB, 0), 0); // no-op: nothing installed
        assert_eq!(gen(vm, 0), 2);
        assert_eq!(set(vm, 0, 5, 16 * MB, 2 * MB, DIRTY), 0); // FLAGS_ONLY
        assert_eq!(gen(vm, 0), 4);
        assert!(vm.id_to_memslot(0, 5).unwrap().1.has_dirty_bitmap);
        assert_eq!(set(vm, 0, 5, 32 * MB, 2 * MB, 0), 0); // MOVE, dropping dirty logging
        assert_eq!(gen(vm, 0), 8);
        assert_eq!(layout(vm, 0), vec![(5, (32 * MB) >> 12, 512)]);
        assert!(!vm.id_to_memslot(0, 5).unwrap().1.has_dirty_bitmap);
        assert_eq!(set(vm, 0, 5, 0, 0, 0), 0); // DELETE
        assert_eq!(gen(vm, 0), 12);
        assert_eq!(layout(vm, 0), vec![]);
        assert_eq!(gen(vm, 1), 1, "the other address space is untouched");
    });
}

#[test]
fn validation_steps_in_kernel_order() {
    each_port(|vm| {
        let ok = region(0, 1, MB, MB, HVA, 0);
        let cases: &[(&str, Region, i32)] = &[
            ("unknown flag", Region { flags: 4, ..ok }, EINVAL),
            (
                "internal INVALID flag",
                Region {
                    flags: INVALID,
                    ..ok
                },
                EINVAL,
            ),
            (
                "flag beats alignment",
                Region {
                    flags: 4,
                    memory_size: 1,
                    ..ok
                },
                EINVAL,
            ),
            (
                "size not page aligned",
                Region {
                    memory_size: MB + 1,
                    ..ok
                },
                EINVAL,
            ),
            (
                "gpa not page aligned",
                Region {
                    guest_phys_addr: MB + 8,
                    ..ok
                },
                EINVAL,
            ),
            (
                "hva not page aligned",
                Region {
                    userspace_addr: HVA + 1,
                    ..ok
                },
                EINVAL,
            ),
            (
                "hva range past TASK_SIZE_MAX",
                Region {
                    userspace_addr: (1 << 47) - 4096,
                    ..ok
                },
                EINVAL,
            ),
            (
                "hva range wraps",
                Region {
                    userspace_addr: !4095u64,
                    ..ok
                },
                EINVAL,
            ),
            (
                "address space 2",
                Region {
                    slot: 2 << 16 | 1,
                    ..ok
                },
                EINVAL,
            ),
            ("ioctl: private id", Region { slot: 509, ..ok }, EINVAL),
            ("ioctl: id 0xffff", Region { slot: 0xffff, ..ok }, EINVAL),
            (
                "gpa + size wraps",
                Region {
                    guest_phys_addr: !4095u64,
                    ..ok
                },
                EINVAL,
            ),
            (
                "delete of an absent slot",
                Region {
                    memory_size: 0,
                    ..ok
                },
                EINVAL,
            ),
            (
                "more than KVM_MEM_MAX_NR_PAGES",
                Region {
                    memory_size: 1 << 43,
                    userspace_addr: 0,
                    ..ok
                },
                EINVAL,
            ),
        ];
        for (what, r, want) in cases {
            assert_eq!(
                vm.ioctl_set_memory_region(r),
                *want,
                "{}: {what}",
                vm.port()
            );
        }
        assert_eq!(gen(vm, 0), 0, "no refused request installs anything");
        // The largest slot allowed: exactly KVM_MEM_MAX_NR_PAGES pages.
        let max = region(0, 2, 0, ((1 << 31) - 1) << 12, 0x1000, 0);
        assert_eq!(vm.ioctl_set_memory_region(&max), 0);
    });
}

#[test]
fn refused_changes_to_an_existing_slot() {
    each_port(|vm| {
        assert_eq!(
            vm.ioctl_set_memory_region(&region(0, 1, MB, MB, HVA, READONLY)),
            0
        );
        let cases = [
            ("new hva", region(0, 1, MB, MB, HVA + 4096, READONLY)),
            ("new size", region(0, 1, MB, 2 * MB, HVA, READONLY)),
            ("READONLY cleared", region(0, 1, MB, MB, HVA, 0)),
            (
                "READONLY cleared while moving",
                region(0, 1, 8 * MB, MB, HVA, DIRTY),
            ),
        ];
        for (what, r) in cases {
            assert_eq!(
                vm.ioctl_set_memory_region(&r),
                EINVAL,
                "{}: {what}",
                vm.port()
            );
        }
        assert_eq!(gen(vm, 0), 2);
        // A MOVE may change LOG_DIRTY_PAGES at the same time.
        assert_eq!(
            vm.ioctl_set_memory_region(&region(0, 1, 8 * MB, MB, HVA, READONLY | DIRTY)),
            0
        );
        assert_eq!(gen(vm, 0), 6);
    });
}

#[test]
fn overlap_is_eexist_and_a_move_may_overlap_itself() {
    each_port(|vm| {
        assert_eq!(set(vm, 0, 1, 4 * MB, 4 * MB, 0), 0);
        for (gpa, size) in [
            (4 * MB, MB),
            (7 * MB, 2 * MB),
            (3 * MB, 2 * MB),
            (0, 16 * MB),
            (8 * MB - 4096, 4096),
        ] {
            assert_eq!(
                set(vm, 0, 2, gpa, size, 0),
                EEXIST,
                "{}: {gpa:#x}+{size:#x}",
                vm.port()
            );
        }
        assert_eq!(set(vm, 0, 2, 8 * MB, MB, 0), 0, "adjacent above");
        assert_eq!(set(vm, 0, 3, 3 * MB, MB, 0), 0, "adjacent below");
        assert_eq!(
            set(vm, 1, 4, 4 * MB, 4 * MB, 0),
            0,
            "other address spaces are not checked"
        );
        // Move slot 1 by one page: overlaps its own old range, allowed.
        assert_eq!(
            set(vm, 0, 1, 4 * MB - 4096, 4 * MB, 0),
            EEXIST,
            "into slot 3"
        );
        assert_eq!(set(vm, 0, 2, 8 * MB - 4096, MB, 0), EEXIST, "into slot 1");
        assert_eq!(
            set(vm, 0, 3, 2 * MB, MB, 0),
            0,
            "moved down, overlapping nothing"
        );
        assert_eq!(
            set(vm, 0, 1, 4 * MB - 4096, 4 * MB, 0),
            0,
            "moved onto its own range"
        );
        assert_eq!(
            layout(vm, 0),
            vec![(2, 2048, 256), (1, 1023, 1024), (3, 512, 256)]
        );
    });
}

#[test]
fn private_ids_only_through_the_in_kernel_path() {
    each_port(|vm| {
        // x86's private slots: TSS, APIC access page, identity page table.
        let private = [
            (509, 0xfeffd000, 0x3000),
            (510, 0xfee00000, 0x1000),
            (511, 0xfeffc000, 0x1000),
        ];
        for (id, gpa, size) in private {
            let r = region(0, id, gpa, size, 0, 0);
            assert_eq!(vm.ioctl_set_memory_region(&r), EINVAL);
            let unaligned = Region {
                userspace_addr: 0x123,
                ..r
            };
            if vm.port() == Port::Modern {
                // 09d952c971a5 (v5.12): the host address of private slots is checked too.
                assert_eq!(vm.set_memory_region(&unaligned), EINVAL);
                assert_eq!(vm.set_memory_region(&r), 0);
            } else {
                // hva 0 and unaligned hvas are fine for private ids: the hva check is skipped.
                assert_eq!(vm.set_memory_region(&unaligned), 0);
            }
        }
        assert_eq!(
            layout(vm, 0),
            vec![(509, 0xfeffd, 3), (511, 0xfeffc, 1), (510, 0xfee00, 1)]
        );
        assert_eq!(lookup(vm, 0, 0xfeffe), Some(509));
        // In-kernel requests still refuse ids past KVM_MEM_SLOTS_NUM.
        assert_eq!(vm.set_memory_region(&region(0, 512, 0, 4096, 0, 0)), EINVAL);
    });
}

#[test]
fn slots_at_gfn_zero_and_at_the_top_of_the_gfn_space() {
    each_port(|vm| {
        let top = !0xfff_ffffu64; // the last 256 MiB of the 64-bit space
        assert_eq!(
            set(vm, 0, 1, top, 256 * MB - 4096, 0),
            0,
            "ends one page below 2^64"
        );
        assert_eq!(set(vm, 0, 2, 0, MB, 0), 0);
        assert_eq!(
            set(vm, 0, 3, !0xfffu64, 4096, 0),
            EINVAL,
            "the last page: gpa + size wraps to 0"
        );
        let last_gfn = (top >> 12) + ((256 * MB) >> 12) - 2;
        assert_eq!(lookup(vm, 0, last_gfn), Some(1));
        assert_eq!(lookup(vm, 0, last_gfn + 1), None);
        assert_eq!(lookup(vm, 0, 0), Some(2));
        assert_eq!(layout(vm, 0), vec![(1, top >> 12, 65535), (2, 0, 256)]);
    });
}

#[test]
fn delete_then_recreate_the_same_id_elsewhere() {
    each_port(|vm| {
        for (id, gpa) in [(1, 8 * MB), (2, 4 * MB), (3, 0)] {
            assert_eq!(set(vm, 0, id, gpa, MB, 0), 0);
        }
        assert_eq!(set(vm, 0, 2, 0, 0, 0), 0);
        assert_eq!(layout(vm, 0), vec![(1, 2048, 256), (3, 0, 256)]);
        assert_eq!(
            set(vm, 0, 2, 16 * MB, 2 * MB, 0),
            0,
            "re-created with another size above all"
        );
        assert_eq!(
            layout(vm, 0),
            vec![(2, 4096, 512), (1, 2048, 256), (3, 0, 256)]
        );
    });
}

#[test]
fn moves_down_and_up_past_several_slots() {
    each_port(|vm| {
        for id in 0..6u16 {
            assert_eq!(set(vm, 0, id, u64::from(id) * 4 * MB + 4 * MB, MB, 0), 0);
        }
        let ids = |vm: &mut PortVm| layout(vm, 0).iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(ids(vm), [5, 4, 3, 2, 1, 0]);
        assert_eq!(set(vm, 0, 4, 0, MB, 0), 0, "down past four slots");
        assert_eq!(ids(vm), [5, 3, 2, 1, 0, 4]);
        assert_eq!(set(vm, 0, 4, 64 * MB, MB, 0), 0, "up past five slots");
        assert_eq!(ids(vm), [4, 5, 3, 2, 1, 0]);
        assert_eq!(set(vm, 0, 1, 10 * MB, MB, 0), 0, "up, but not past slot 2");
        assert_eq!(ids(vm), [4, 5, 3, 2, 1, 0]);
        assert_eq!(
            set(vm, 0, 1, 14 * MB, MB, 0),
            0,
            "up past one, between 2 and 3"
        );
        assert_eq!(ids(vm), [4, 5, 3, 1, 2, 0]);
        for (gfn, id) in [
            (0, None),
            (1024, Some(0)),
            (2560, None),
            (3584, Some(1)),
            (3072, Some(2)),
            (16384, Some(4)),
        ] {
            assert_eq!(lookup(vm, 0, gfn), id, "{}: gfn {gfn}", vm.port());
        }
    });
}

#[test]
fn fill_all_512_slots_then_refuse_more() {
    each_port(|vm| {
        // Ascending GFNs, each slot one page; the lowest at GFN 0 so that no lookup
        // below the lowest slot reads memslots[512] (a real bug when all are used).
        for id in 0..509u16 {
            assert_eq!(set(vm, 0, id, u64::from(id) * 8192, 4096, 0), 0);
        }
        for id in 509..512u16 {
            assert_eq!(
                vm.set_memory_region(&region(0, id, u64::from(id) * 8192, 4096, 0, 0)),
                0
            );
        }
        assert_eq!(vm.state(0, 0).used_slots, 512);
        // Every id is taken: the only ids left are past KVM_MEM_SLOTS_NUM.
        assert_eq!(
            vm.set_memory_region(&region(0, 512, 0x10_0000_0000, 4096, 0, 0)),
            EINVAL
        );
        assert_eq!(
            vm.ioctl_set_memory_region(&region(0, 509, 0x10_0000_0000, 4096, HVA, 0)),
            EINVAL
        );
        assert_eq!(
            set(vm, 0, 100, 0x10_0000_0000, 8192, 0),
            EINVAL,
            "size change of a used id"
        );
        for id in [0u16, 1, 255, 508, 511] {
            let gfn = u64::from(id) * 2;
            assert_eq!(lookup(vm, 0, gfn), Some(id as i16));
            assert_eq!(lookup(vm, 0, gfn + 1), None, "gap after {id}");
        }
        assert_eq!(layout(vm, 0).first().unwrap().0, 511);
        assert_eq!(layout(vm, 0).last().unwrap().0, 0);
        for id in (0..512u16).step_by(3) {
            let r = region(0, id, 0, 0, 0, 0);
            let rc = if id < 509 {
                vm.ioctl_set_memory_region(&r)
            } else {
                vm.set_memory_region(&r)
            };
            assert_eq!(rc, 0, "delete {id}");
        }
        assert_eq!(vm.state(0, 0).used_slots, 512 - 171);
    });
}

#[test]
fn lookups_at_the_edges_and_the_lru_hint() {
    each_port(|vm| {
        assert_eq!(set(vm, 0, 1, 16 * MB, MB, 0), 0); // gfns 4096..4352
        assert_eq!(set(vm, 0, 2, 4 * MB, MB, 0), 0); // gfns 1024..1280
        let probes = [
            (4096, Some(1)),
            (4351, Some(1)),
            (4095, None),
            (4352, None),
            (1024, Some(2)),
            (1279, Some(2)),
            (1023, None),
            (1280, None),
            (2000, None),
            (0, None),
            (u64::MAX, None),
        ];
        for (gfn, want) in probes {
            assert_eq!(lookup(vm, 0, gfn), want, "{}: gfn {gfn}", vm.port());
            assert_eq!(lookup(vm, 1, gfn), None, "{}: AS1 is empty", vm.port());
        }
        // The hint follows binary-search hits only: the last hit above was slot 2 (index 1).
        assert_eq!(vm.lru_slot(0), 1);
        assert_eq!(lookup(vm, 0, 4200), Some(1));
        assert_eq!(vm.lru_slot(0), 0);
        assert_eq!(lookup(vm, 0, 4201), Some(1), "LRU hit");
        assert_eq!(lookup(vm, 0, 5000), None, "a miss keeps the hint");
        assert_eq!(vm.lru_slot(0), 0);
        // Delete slot 2 (index 1) after making it the hint: the stale hint never hits.
        assert_eq!(lookup(vm, 0, 1100), Some(2));
        assert_eq!(set(vm, 0, 2, 0, 0, 0), 0);
        if vm.port() == Port::Post15 {
            assert_eq!(
                vm.lru_slot(0),
                0,
                "post15: a hint past the array is reset (0774a964ef56)"
            );
        } else if vm.port() == Port::Modern {
            assert_eq!(
                vm.lru_slot(0),
                -1,
                "modern: kvm_replace_memslot() clears a cache naming the deleted slot"
            );
        } else {
            assert_eq!(vm.lru_slot(0), 1, "the delete copies the hint as is");
        }
        assert_eq!(lookup(vm, 0, 1100), None);
        assert_eq!(lookup(vm, 0, 0), None);
    });
}

#[test]
fn id_queries_differ_only_in_how_absence_is_spelled() {
    for port in STATES {
        let mut vm = PortVm::new(port);
        assert_eq!(set(&mut vm, 0, 7, 0, MB, 0), 0);
        let (i, s) = vm.id_to_memslot(0, 7).unwrap();
        assert_eq!((i, s.id, s.npages), (0, 7, 256));
        let absent = vm.id_to_memslot(0, 8);
        match port.family() {
            // Pre: never NULL, an empty entry that carries the id.
            Family::Pre => assert!(matches!(
                absent,
                Some((
                    _,
                    RawSlot {
                        id: 8,
                        npages: 0,
                        ..
                    }
                ))
            )),
            Family::Post | Family::Post15 | Family::Modern => assert_eq!(absent, None),
        }
        assert_eq!(
            vm.id_to_memslot(0, 512),
            None,
            "ids past KVM_MEM_SLOTS_NUM are refused by the wrapper"
        );
        assert_eq!(vm.id_to_memslot(2, 7), None);
        assert_eq!(vm.warn_count(), 0);
    }
}

#[test]
fn prepare_failure_pre_leaves_the_invalid_copy_installed() {
    for port in STATES {
        let mut vm = PortVm::new(port);
        assert_eq!(set(&mut vm, 0, 1, 0, MB, DIRTY), 0);
        vm.set_prepare_error(ENOMEM);
        assert_eq!(set(&mut vm, 0, 2, 8 * MB, MB, 0), ENOMEM, "CREATE");
        assert_eq!(
            gen(&mut vm, 0),
            2,
            "{port}: a failed CREATE installs nothing"
        );
        assert_eq!(set(&mut vm, 0, 1, 0, 0, 0), ENOMEM, "DELETE");
        let flags = vm.id_to_memslot(0, 1).unwrap().1.flags;
        if port == Port::Pre {
            assert_eq!(gen(&mut vm, 0), 4, "pre: the INVALID copy stays installed");
            assert_eq!(flags, DIRTY | INVALID);
        } else {
            assert_eq!(gen(&mut vm, 0), 6, "{port}: reinstalls the old memslots");
            assert_eq!(flags, DIRTY);
        }
        assert_eq!(
            lookup(&mut vm, 0, 10),
            Some(1),
            "{port}: lookups ignore flags"
        );
        vm.set_prepare_error(0);
        assert_eq!(
            set(&mut vm, 0, 1, 0, 0, 0),
            0,
            "{port}: delete after the failure"
        );
        assert_eq!(layout(&mut vm, 0), vec![]);
        assert_eq!(vm.warn_count(), 0, "{port}: {:?}", vm.last_warn());
    }
}

#[test]
fn vms_on_one_thread_count_their_own_warns() {
    let mut a = PortVm::new(Port::Post);
    let mut b = PortVm::new(Port::Post);
    assert_eq!(set(&mut a, 0, 1, 0, MB, 0), 0);
    assert_eq!(set(&mut b, 0, 1, 0, MB, 0), 0);
    assert_eq!((a.warn_count(), b.warn_count()), (0, 0));
}

#[test]
fn range_queries_walk_linearly_and_see_overlapping_host_ranges() {
    each_port(|vm| {
        // Slots 1 and 3 alias the same host pages; 2's host range overlaps half of 1's.
        for (id, gfn, hva) in [
            (1u16, 0x100u64, 0x10_0000u64),
            (2, 0x200, 0x10_8000),
            (3, 0x300, 0x10_0000),
        ] {
            let r = region(0, id, gfn << 12, 0x10 << 12, hva, 0);
            assert_eq!(vm.ioctl_set_memory_region(&r), 0);
        }
        if vm.port() == Port::Modern {
            // The interval tree answers by ascending start (ties in insertion order), the
            // gfn iterator by ascending base; a private hva past TASK_SIZE_MAX is refused
            // (09d952c971a5).
            let top = region(0, 509, 0x400 << 12, 0x1000, u64::MAX - 0xfff, 0);
            assert_eq!(vm.set_memory_region(&top), EINVAL);
            assert_eq!(vm.hva_range_memslots(0, 0x10_0000, 0x10_0001), [1, 3]);
            assert_eq!(vm.hva_range_memslots(0, 0x10_f000, 0x11_0000), [1, 3, 2]);
            assert_eq!(vm.hva_range_memslots(0, 0x11_0000, 0x11_8000), [2]);
            assert_eq!(vm.hva_range_memslots(0, 0, u64::MAX), [1, 3, 2]);
            assert!(vm.hva_range_memslots(0, 0x10_8000, 0x10_0000).is_empty());
            assert_eq!(vm.gfn_range_memslots(0, 0x10f, 0x301), [1, 2, 3]);
            assert_eq!(vm.gfn_range_memslots(0, 0x110, 0x300), [2]);
            assert!(vm.gfn_range_memslots(0, 0x110, 0x200).is_empty());
            assert!(vm.gfn_range_memslots(0, 0x300, 0x100).is_empty());
            assert!(vm.gfn_range_memslots(1, 0, u64::MAX).is_empty());
            assert_eq!(vm.warn_count(), 0);
            return;
        }
        // A private slot whose host range would wrap: saturated at the top.
        let top = region(0, 509, 0x400 << 12, 0x1000, u64::MAX - 0xfff, 0);
        assert_eq!(vm.set_memory_region(&top), 0);
        assert_eq!(vm.hva_range_memslots(0, 0x10_0000, 0x10_0001), [3, 1]);
        assert_eq!(vm.hva_range_memslots(0, 0x10_f000, 0x11_0000), [3, 2, 1]);
        assert_eq!(vm.hva_range_memslots(0, 0x11_0000, 0x11_8000), [2]);
        assert_eq!(vm.hva_range_memslots(0, 0, u64::MAX), [509, 3, 2, 1]);
        assert_eq!(vm.hva_range_memslots(0, u64::MAX - 1, u64::MAX), [509]);
        assert!(vm.hva_range_memslots(0, 0x10_8000, 0x10_0000).is_empty());
        assert_eq!(vm.gfn_range_memslots(0, 0x10f, 0x301), [3, 2, 1]);
        assert_eq!(vm.gfn_range_memslots(0, 0x110, 0x300), [2]);
        assert!(vm.gfn_range_memslots(0, 0x110, 0x200).is_empty());
        assert!(vm.gfn_range_memslots(0, 0x300, 0x100).is_empty());
        assert!(vm.gfn_range_memslots(1, 0, u64::MAX).is_empty());
        assert_eq!(vm.warn_count(), 0);
    });
}

/// A VM holds what kvm_create_vm allocated plus one dirty bitmap per dirty-logged slot (and,
/// in the tree-based port, each slot), through creates, moves, flags changes, refused requests
/// and deletes: the harness's leak check (`PortImpl::check_invariants`) relies on it.
#[test]
fn allocations_are_the_arrays_and_one_bitmap_per_dirty_logged_slot() {
    each_port(|vm| {
        let per_slot = i64::from(vm.port() == Port::Modern);
        let (held, created) = vm.allocations();
        assert!(
            created > 0,
            "{}: kvm_create_vm allocated nothing",
            vm.port()
        );
        assert_eq!(held, created);
        // Three slots are in place whenever this is asked.
        let bitmaps = |vm: &PortVm| vm.allocations().0 - created - 3 * per_slot;
        assert_eq!(set(vm, 0, 1, 0, MB, DIRTY), 0);
        assert_eq!(set(vm, 0, 2, 4 * MB, MB, 0), 0);
        assert_eq!(set(vm, 1, 3, 0, MB, DIRTY), 0);
        assert_eq!(bitmaps(vm), 2, "{}", vm.port());
        assert_eq!(
            set(vm, 0, 2, 4 * MB, MB, DIRTY),
            0,
            "flags only: logging on"
        );
        assert_eq!(set(vm, 0, 1, 0, MB, 0), 0, "flags only: logging off");
        assert_eq!(bitmaps(vm), 2, "{}", vm.port());
        assert_eq!(set(vm, 0, 2, 8 * MB, MB, DIRTY), 0, "move");
        assert_ne!(set(vm, 0, 4, 8 * MB, MB, DIRTY), 0, "overlap: refused");
        assert_eq!(bitmaps(vm), 2, "{}", vm.port());
        assert_eq!(set(vm, 0, 2, 0, 0, 0), 0);
        assert_eq!(set(vm, 1, 3, 0, 0, 0), 0);
        assert_eq!(set(vm, 0, 1, 0, 0, 0), 0);
        assert_eq!(vm.allocations(), (created, created), "{}", vm.port());
    });
}

const EBADF: i32 = -9;
const ENOTTY: i32 = -25;
const GUEST_MEMFD: u32 = 1 << 2;

fn region2(id: u16, gpa: u64, size: u64, flags: u32, fd: u32, offset: u64) -> Region2 {
    Region2 {
        slot: u32::from(id),
        flags,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: HVA + (u64::from(id) << 28),
        guest_memfd_offset: offset,
        guest_memfd: fd,
        ..Region2::default()
    }
}

/// KVM_SET_USER_MEMORY_REGION2 (v6.8): on a VM without private memory it is the v1 request
/// with the guest_memfd fields ignored, and KVM_MEM_GUEST_MEMFD is an invalid flag; the
/// 2020 ports have no such ioctl.
#[test]
fn region2_on_a_default_vm_is_the_v1_request() {
    for port in STATES {
        let mut vm = PortVm::new(port);
        let r = region2(1, 0, MB, 0, 7, 0x123);
        if port.family() != Family::Modern {
            assert_eq!(vm.ioctl_set_memory_region2(&r), ENOTTY, "{port}");
            assert_eq!(vm.create_guest_memfd(MB, 0), ENOTTY, "{port}");
            assert_eq!(PortVm::with_vm_type(port, 1).err(), Some(EINVAL), "{port}");
            continue;
        }
        assert_eq!(vm.ioctl_set_memory_region2(&r), 0);
        assert_eq!(layout(&mut vm, 0), vec![(1, 0, 256)]);
        let fd = vm.create_guest_memfd(MB, 0);
        assert!(fd >= 0, "{fd}");
        let private = region2(2, 4 * MB, MB, GUEST_MEMFD, fd as u32, 0);
        assert_eq!(
            vm.ioctl_set_memory_region2(&private),
            EINVAL,
            "no private memory"
        );
        // v1 refuses every flag beyond its own, before any other check.
        let v1 = region(0, 2, 4 * MB, MB, HVA, GUEST_MEMFD);
        assert_eq!(vm.ioctl_set_memory_region(&v1), EINVAL);
        assert_eq!(
            vm.ioctl_set_memory_region2(&region2(1, 0, 0, 0, 0, 0)),
            0,
            "delete"
        );
        assert_eq!(layout(&mut vm, 0), vec![]);
        check_state(&mut vm, 0);
        assert_eq!(vm.warn_count(), 0);
    }
}

/// guest_memfd bindings on a KVM_X86_SW_PROTECTED_VM: kvm_gmem_bind()'s checks and errors,
/// private slots immutable, a deleted slot's range free again, no dirty logging or read-only.
#[test]
fn guest_memfd_bindings_on_a_sw_protected_vm() {
    assert_eq!(PortVm::with_vm_type(Port::Modern, 2).err(), Some(EINVAL));
    let mut vm = PortVm::with_vm_type(Port::Modern, 1).expect("KVM_X86_SW_PROTECTED_VM");
    assert_eq!(vm.create_guest_memfd(0, 0), EINVAL, "empty");
    assert_eq!(vm.create_guest_memfd(4097, 0), EINVAL, "unaligned");
    assert_eq!(vm.create_guest_memfd(MB, 1), EINVAL, "unknown flag");
    let fd = vm.create_guest_memfd(2 * MB, 0) as u32;
    let bind = |id: u16, gpa: u64, offset: u64| region2(id, gpa, MB, GUEST_MEMFD, fd, offset);
    assert_eq!(vm.ioctl_set_memory_region2(&bind(1, 0, 0)), 0);
    let smm = Region2 {
        slot: 1 << 16 | 9,
        ..region2(9, 16 * MB, MB, 0, 0, 0)
    };
    assert_eq!(
        vm.ioctl_set_memory_region2(&smm),
        EINVAL,
        "no SMM address space"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&region2(2, 4 * MB, MB, GUEST_MEMFD, fd + 5, 0)),
        EBADF
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&bind(2, 4 * MB, 0x800)),
        EINVAL,
        "unaligned offset"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&bind(2, 4 * MB, 2 * MB)),
        EINVAL,
        "past the file"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&bind(2, 4 * MB, MB / 2)),
        EINVAL,
        "bound range"
    );
    assert_eq!(vm.ioctl_set_memory_region2(&bind(2, 4 * MB, MB)), 0);
    assert_eq!(
        vm.ioctl_set_memory_region2(&bind(2, 8 * MB, MB)),
        EINVAL,
        "immutable: no move"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&region2(3, 8 * MB, MB, GUEST_MEMFD | DIRTY, fd, 0)),
        EINVAL,
        "no dirty logging of private memory"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&region2(3, 8 * MB, MB, GUEST_MEMFD | READONLY, fd, 0)),
        EINVAL,
        "no read-only private memory"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&bind(1, 0, 0).with_size(0)),
        0,
        "delete"
    );
    assert_eq!(
        vm.ioctl_set_memory_region2(&bind(3, 8 * MB, 0)),
        0,
        "the range is free again"
    );
    assert_eq!(
        layout(&mut vm, 0),
        vec![(3, 0x800, 256), (2, 0x400, 256)],
        "both private slots"
    );
    check_state(&mut vm, 0);
    assert_eq!(vm.warn_count(), 0, "{:?}", vm.last_warn());
}

trait WithSize {
    fn with_size(self, size: u64) -> Self;
}

impl WithSize for Region2 {
    fn with_size(self, size: u64) -> Self {
        Region2 {
            memory_size: size,
            ..self
        }
    }
}

/// Today's x86 count: 32,764 user slots and 3 private ones in each address space, every one
/// found by its lookups, the trees intact, and nothing left once all are deleted.
#[test]
fn modern_32k_holds_todays_x86_slot_count() {
    const USER: u16 = 32_764;
    let mut vm = PortVm::new(Port::Modern32k);
    let (_, created) = vm.allocations();
    let slot = |as_id: u16, id: u16, size: u64| Region {
        slot: (u32::from(as_id) << 16) | u32::from(id),
        flags: 0,
        guest_phys_addr: (u64::from(id) * 2) << 12,
        memory_size: size,
        userspace_addr: HVA + (u64::from(id) << 12),
    };
    for as_id in 0..2 {
        for id in 0..USER + 3 {
            let r = slot(as_id, id, 4096);
            let rc = if id < USER {
                vm.ioctl_set_memory_region(&r)
            } else {
                vm.set_memory_region(&r)
            };
            assert_eq!(rc, 0, "as {as_id} id {id}");
        }
        assert_eq!(vm.ioctl_set_memory_region(&slot(as_id, USER, 4096)), EINVAL);
        assert_eq!(vm.set_memory_region(&slot(as_id, USER + 3, 4096)), EINVAL);
        assert_eq!(vm.check_structure(as_id), Ok(()));
    }
    for id in [0, 1, 511, 512, 20_000, USER - 1, USER + 2] {
        let found = vm.search_memslots(1, u64::from(id) * 2).map(|(_, s)| s.id);
        assert_eq!(found, Some(id as i16), "lookup of id {id}");
        assert_eq!(
            vm.search_memslots(1, u64::from(id) * 2 + 1),
            None,
            "gap above {id}"
        );
    }
    let all = usize::from(USER + 3);
    assert_eq!(vm.mem_slots_num(), all, "KVM_MEM_SLOTS_NUM is SHRT_MAX");
    assert_eq!(vm.walk(0).len(), all, "the walk visits every slot");
    let state = vm.state_ref(1, all);
    assert_eq!((state.used_slots, state.entries.len()), (all as i32, all));
    assert_eq!(state.id_to_index.len(), all, "an index value for every id");
    for (rank, entry) in state.entries.iter().enumerate() {
        assert_eq!(
            state.id_to_index[entry.id as usize], rank as i16,
            "id {}",
            entry.id
        );
    }
    assert_eq!(vm.allocations().0, created + 2 * i64::from(USER + 3));
    for as_id in 0..2 {
        for id in 0..USER + 3 {
            assert_eq!(vm.set_memory_region(&slot(as_id, id, 0)), 0);
        }
        assert_eq!(vm.check_structure(as_id), Ok(()));
    }
    assert_eq!(vm.allocations(), (created, created));
    assert_eq!(vm.warn_count(), 0, "{:?}", vm.last_warn());
}
