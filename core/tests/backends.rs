//! The tree backend against the array backend through the public API: random requests on
//! both, every result, state, lookup and range query compared after each one.

use memslot_core::{
    ArchLimits, MemorySlot, MemslotSet, Memslots, TreeMemslots, UserMemoryRegion, Vm, PAGE_SIZE,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn walk<S: MemslotSet>(s: &S) -> Vec<MemorySlot> {
    s.walk().copied().collect()
}

fn ids(v: Vec<&MemorySlot>) -> Vec<u16> {
    v.into_iter().map(|s| s.id).collect()
}

fn same_state(array: &Vm<Memslots>, tree: &Vm<TreeMemslots>, as_id: u16, rng: &mut Rng) {
    let (a, t) = (
        array.memslots(as_id).unwrap(),
        tree.memslots(as_id).unwrap(),
    );
    assert_eq!(walk(a), walk(t));
    assert_eq!(a.generation(), MemslotSet::generation(t));
    assert_eq!(a.used_slots(), t.used_slots());
    t.check_invariants().unwrap();
    for id in 0..16 {
        assert_eq!(a.id_to_memslot(id), t.id_to_memslot(id));
    }
    for _ in 0..8 {
        let gfn = rng.below(80);
        assert_eq!(
            MemslotSet::search(a, gfn).copied(),
            MemslotSet::search(t, gfn).copied()
        );
        let (s, e) = (rng.below(80), rng.below(80));
        assert_eq!(ids(a.in_gfn_range(s, e)), ids(t.in_gfn_range(s, e)));
        let (s, e) = (rng.below(24) * PAGE_SIZE, rng.below(24) * PAGE_SIZE);
        assert_eq!(
            ids(a.in_hva_range(s, e)),
            ids(t.in_hva_range(s, e)),
            "[{s:#x}, {e:#x}) {:?}",
            walk(a)
        );
    }
}

#[test]
fn random_requests_agree() {
    let limits = ArchLimits::custom(12, 3, 2);
    let mut rng = Rng(7);
    for _program in 0..200 {
        let mut array = Vm::new(limits);
        let mut tree = Vm::<TreeMemslots>::with_backend(limits);
        for _step in 0..60 {
            let region = UserMemoryRegion {
                slot: (rng.below(2) as u32) << 16 | rng.below(16) as u32,
                flags: [0, 0, 1, 2, 3][rng.below(5) as usize],
                guest_phys_addr: rng.below(64) * PAGE_SIZE,
                memory_size: [0, 1, 2, 4, 8][rng.below(5) as usize] * PAGE_SIZE,
                // Few distinct host addresses: host ranges overlap often.
                userspace_addr: rng.below(16) * PAGE_SIZE,
            };
            if rng.below(20) == 0 {
                let err = (rng.below(2) == 0).then_some(memslot_core::Error::Arch(-12));
                array.set_arch_prepare_error(err);
                tree.set_arch_prepare_error(err);
            }
            let (ra, rt) = if rng.below(4) == 0 {
                (
                    array.set_memory_region(&region),
                    tree.set_memory_region(&region),
                )
            } else {
                (
                    array.set_user_memory_region(&region),
                    tree.set_user_memory_region(&region),
                )
            };
            assert_eq!(ra, rt, "{region:?}");
            for as_id in 0..2 {
                same_state(&array, &tree, as_id, &mut rng);
            }
        }
    }
}
