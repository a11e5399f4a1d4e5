//! Adapter for the Rust memslot core (`memslot_core::Vm`, at an arch profile's limits).

use memslot_core::{
    Error, Fault, MemorySlot, MemslotSet, Memslots, UserMemoryRegion, UserMemoryRegion2, Vm,
};
use memslot_reference::ApiSlot;

use super::oracle::packed_slot;
use super::{Found, Implementation, Quick, Slot, SpaceSnapshot};
use crate::arch_profile::ArchProfile;
use crate::ops::{Region, Region2};

/// `memslot_core::Vm`, at x86-512's limits unless built by [`CoreImpl::with_arch`].
pub struct CoreImpl {
    vm: Vm,
    arch: ArchProfile,
    name: &'static str,
    reason: Option<String>,
    /// The array of the last [`Implementation::quick`] call, in the ports' copy format.
    packed: Vec<ApiSlot>,
}

impl CoreImpl {
    /// The core as shipped (or with the fault `MEMSLOT_DIFF_PLANT` names: see [`planted`]).
    pub fn new() -> CoreImpl {
        CoreImpl::with_arch(ArchProfile::X86_512)
    }

    /// The core at another profile's limits (planted fault as in [`CoreImpl::new`]).
    pub fn with_arch(arch: ArchProfile) -> CoreImpl {
        let mut vm = Vm::new(arch.limits());
        vm.set_fault(planted());
        CoreImpl {
            vm,
            arch,
            name: "core",
            reason: None,
            packed: Vec::new(),
        }
    }

    /// The core with a deliberate one-line bug (memslot-core's `fault-injection` feature), for
    /// the harness's self-test. It reports as `core`, like the real one.
    pub fn with_fault(fault: Fault) -> CoreImpl {
        CoreImpl::with_fault_at(ArchProfile::X86_512, fault)
    }

    /// [`CoreImpl::with_fault`] at another profile's limits.
    pub fn with_fault_at(arch: ArchProfile, fault: Fault) -> CoreImpl {
        let mut core = CoreImpl::with_arch(arch);
        core.vm.set_fault(Some(fault));
        core
    }

    fn space(&self, as_id: u16) -> Option<&Memslots> {
        self.vm.memslots(as_id)
    }
}

impl Default for CoreImpl {
    fn default() -> Self {
        CoreImpl::new()
    }
}

/// The fault `MEMSLOT_DIFF_PLANT=<fault>` (a `Fault` name, e.g. `SearchEndInclusive`) plants
/// in every core backend (each ignores the other's faults: `Fault::in_tree`), so that `ci/nightly --plant` can check the job end to end on a known bug.
/// Only builds with the `plant` feature honour it; any other build refuses to run with the
/// variable set rather than silently test the correct code.
pub fn planted() -> Option<Fault> {
    static PLANTED: std::sync::OnceLock<Option<Fault>> = std::sync::OnceLock::new();
    *PLANTED.get_or_init(|| {
        let name = std::env::var("MEMSLOT_DIFF_PLANT").ok()?;
        let known = fault_names();
        if !cfg!(feature = "plant") {
            panic!(
                "MEMSLOT_DIFF_PLANT={name} is set, but this build of memslot-diff lacks the \
                 `plant` feature: rebuild with --features plant, or unset the variable"
            );
        }
        let fault = Fault::ALL.into_iter().find(|f| format!("{f:?}") == name);
        Some(fault.unwrap_or_else(|| {
            panic!(
                "MEMSLOT_DIFF_PLANT={name}: unknown fault (known: {})",
                known.join(", ")
            )
        }))
    })
}

/// The names `MEMSLOT_DIFF_PLANT` accepts (every `Fault`).
pub fn fault_names() -> Vec<String> {
    Fault::ALL.iter().map(|f| format!("{f:?}")).collect()
}

/// A request's return code, keeping why it failed in `reason` (both core backends).
pub(super) fn request_rc(
    reason: &mut Option<String>,
    result: Result<Option<memslot_core::Change>, Error>,
) -> i32 {
    match result {
        Ok(_) => {
            *reason = None;
            0
        }
        Err(e) => {
            *reason = Some(self::reason(&e));
            e.errno()
        }
    }
}

/// The ids of slots, in their order, into `out` (the range queries' answers); `false` if
/// there are none to give (no such address space).
pub(super) fn ids(slots: Option<Vec<&MemorySlot>>, out: &mut Vec<i32>) -> bool {
    out.clear();
    let Some(slots) = slots else { return false };
    out.extend(slots.into_iter().map(|s| i32::from(s.id)));
    true
}

/// `memslot_core::Error` in the words both the core adapter and the oracle use.
pub fn reason(e: &Error) -> String {
    match e {
        Error::Invalid(why) => format!("{why:?}"),
        Error::Exists { id } => format!("Exists(overlaps id {id})"),
        Error::NoMemory => "NoMemory".to_string(),
        Error::Arch(errno) => format!("Arch({errno})"),
    }
}

pub(super) fn region(r: &Region) -> UserMemoryRegion {
    UserMemoryRegion {
        slot: r.slot,
        flags: r.flags,
        guest_phys_addr: r.guest_phys_addr,
        memory_size: r.memory_size,
        userspace_addr: r.userspace_addr,
    }
}

pub(super) fn region2(r: &Region2) -> UserMemoryRegion2 {
    UserMemoryRegion2 {
        region: region(&r.region),
        guest_memfd_offset: r.guest_memfd_offset,
        guest_memfd: r.guest_memfd,
    }
}

pub(super) fn slot(s: &MemorySlot) -> Slot {
    Slot {
        id: i32::from(s.id),
        base_gfn: s.base_gfn,
        npages: s.npages,
        flags: s.flags,
        userspace_addr: s.userspace_addr,
    }
}

fn found(space: &Memslots, index: usize) -> Found {
    Found {
        index: index as i64,
        slot: space.slots().get(index).map(slot),
    }
}

impl Implementation for CoreImpl {
    fn name(&self) -> &'static str {
        self.name
    }

    fn arch(&self) -> ArchProfile {
        self.arch
    }

    fn set_user_memory_region(&mut self, r: &Region) -> i32 {
        request_rc(&mut self.reason, self.vm.set_user_memory_region(&region(r)))
    }

    fn set_memory_region(&mut self, r: &Region) -> i32 {
        request_rc(&mut self.reason, self.vm.set_memory_region(&region(r)))
    }

    fn set_user_memory_region2(&mut self, r: &Region2) -> i32 {
        request_rc(
            &mut self.reason,
            self.vm.set_user_memory_region2(&region2(r)),
        )
    }

    fn last_reason(&self) -> Option<String> {
        self.reason.clone()
    }

    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found> {
        let space = self.space(as_id)?;
        // Through the trait, as the core's users call it; the index is where the slot sits
        // in the array (its offset: a scan per lookup would slow every execution).
        let hit = MemslotSet::search(space, gfn)?;
        let slots = space.slots();
        let offset = (hit as *const MemorySlot as usize).wrapping_sub(slots.as_ptr() as usize);
        let index = offset / std::mem::size_of::<MemorySlot>();
        // A slot from outside the array gets no index and no slot: a divergence.
        let inside =
            offset.is_multiple_of(std::mem::size_of::<MemorySlot>()) && index < slots.len();
        Some(found(space, if inside { index } else { usize::MAX }))
    }

    fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<Found> {
        let space = self.space(as_id)?;
        space.index_of(id).map(|i| found(space, i))
    }

    fn gfn_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        ids(self.space(as_id).map(|s| s.in_gfn_range(start, end)), out)
    }

    fn hva_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        ids(self.space(as_id).map(|s| s.in_hva_range(start, end)), out)
    }

    fn summary(&mut self, as_id: u16) -> (u64, i64) {
        let space = self.space(as_id).expect("address space");
        (
            MemslotSet::generation(space),
            MemslotSet::used_slots(space) as i64,
        )
    }

    fn snapshot_into(&mut self, as_id: u16, full: bool, out: &mut SpaceSnapshot) {
        let ids = self.arch.mem_slots_num();
        let space = self.space(as_id).expect("address space");
        out.generation = MemslotSet::generation(space);
        out.used_slots = MemslotSet::used_slots(space) as i64;
        out.slots.clear();
        out.slots.extend(space.slots().iter().map(slot));
        out.index.clear();
        if full {
            out.index
                .extend((0..ids).filter_map(|id| space.index_of(id).map(|i| (id, i as i64))));
        } else {
            out.index.extend(
                space
                    .iter()
                    .map(|s| (s.id, space.index_of(s.id).map_or(-1, |i| i as i64))),
            );
            out.index.sort_unstable();
        }
        out.walk.clear();
        // The trait's walk (`kvm_for_each_memslot`), compared with the array above.
        out.walk
            .extend(MemslotSet::walk(space).map(|s| i32::from(s.id)));
        out.lru = Some(space.lru_slot() as i64);
    }

    fn lru(&mut self, as_id: u16) -> Option<i64> {
        self.space(as_id).map(|s| s.lru_slot() as i64)
    }

    fn set_lru(&mut self, as_id: u16, lru: i64) {
        if let Some(space) = self.space(as_id) {
            space.set_lru_slot(lru as usize);
        }
    }

    fn check_invariants(&mut self, as_ids: &[u16], _full: bool) -> Result<(), String> {
        for &as_id in as_ids {
            if let Some(space) = self.space(as_id) {
                space.check_invariants()?;
            }
        }
        Ok(())
    }

    fn set_prepare_error(&mut self, errno: i32) {
        self.vm
            .set_arch_prepare_error((errno != 0).then_some(Error::Arch(errno)));
    }

    fn quick(&mut self, as_id: u16) -> Option<Quick> {
        let space = self.vm.memslots(as_id)?;
        self.packed.clear();
        let mut index_is_inverse = true;
        // The trait's walk must be the array itself, slot for slot (checked in the same pass).
        let mut walk = MemslotSet::walk(space);
        let mut walk_is_array = true;
        for (i, s) in space.slots().iter().enumerate() {
            // Ids are below KVM_MEM_SLOTS_NUM here or the generic check fails on them; a wrapped id only
            // makes the comparison fail, and the slow path shows the real one.
            self.packed.push(packed_slot(&slot(s)));
            index_is_inverse &= s.id < 0x8000 && space.index_of(s.id) == Some(i);
            walk_is_array &= walk.next().is_some_and(|w| std::ptr::eq(w, s));
        }
        walk_is_array &= walk.next().is_none();
        Some(Quick {
            generation: MemslotSet::generation(space),
            used_slots: MemslotSet::used_slots(space) as i64,
            lru: Some(space.lru_slot() as i64),
            index_is_inverse,
            walk_is_array,
        })
    }

    fn quick_array(&self) -> &[ApiSlot] {
        &self.packed
    }

    // The default `quick_invariants` runs `Memslots::check_invariants`, which also proves the
    // full index: with every entry's id mapping back to it, "as many ids indexed as slots"
    // leaves no other id with an index.
}
