//! Adapter for the literal C ports of kvm_main.c (`memslot_reference::PortVm`).
//!
//! The tree-based port (`modern`, v5.17 onward) behaves differently from 2020's code in ways
//! that are the kernel's design, not bugs; each is normalised here, where it is named:
//! * `kvm_for_each_memslot()` walks the id hash (a54d806688fe), bucket by bucket: its walk is
//!   compared as the set of ids it visits, put in array order (by rank);
//! * `kvm_for_each_memslot_in_gfn_range()` yields ascending GFNs and the hva interval tree
//!   ascending host addresses: range answers are put in array order the same way;
//! * `last_used_slot` is a pointer cache that a delete clears and a move retargets
//!   (kvm_replace_memslot()): like post15's hint it is compared only right after a hit;
//! * 09d952c971a5 checks the host address of private slots too: an in-kernel request for a
//!   private id with an unaligned or out-of-range `userspace_addr`, which 2020's code accepts,
//!   makes it leave the lockstep ([`Implementation::leaves_lockstep`]);
//! * every slot is its own allocation, shared by both sets: the VM holds one more allocation
//!   per slot than it did when created.

use memslot_reference::{
    ApiSlot, Family, KvmUserspaceMemoryRegion, KvmUserspaceMemoryRegion2, Port, PortVm, RawSlot,
    RawState, NOT_IN_ARRAY,
};

mod ranks;
mod state;

use super::{Found, Implementation, Quick, Slot, SpaceSnapshot};
use crate::arch_profile::ArchProfile;
use crate::ops::{Op, Region, Region2, KVM_ADDRESS_SPACE_NUM, PAGE_SIZE, TASK_SIZE_MAX};
use ranks::{index_in, keep_index, rank_sorted, sort_by_rank};
use state::{array_index, check_raw, normalised_index};

/// The 2020 ports' fixed array: `KVM_MEM_SLOTS_NUM` entries of v5.6's x86.
const ARRAY_SLOTS: usize = memslot_reference::KVM_MEM_SLOTS_NUM;

/// One state of a C port: `pre` (Linux v5.6), `post` (the seed patch applied), `post15`
/// (exactly sized arrays) or one of their zoo states (`memslot_reference::Port`).
pub struct PortImpl {
    vm: PortVm,
    port: Port,
    /// The profile of the state's `KVM_MEM_SLOTS_NUM` (modern-32k: x86-32k).
    arch: ArchProfile,
    /// used_slots seen last time per AS, so that a state copy asks for just enough entries.
    used_hint: [usize; KVM_ADDRESS_SPACE_NUM as usize],
    /// The state copied by the last snapshot, reused by the invariant check that follows it.
    /// Every call into the port clears it.
    last: Option<(u16, RawState)>,
    /// Entries of the last [`Implementation::quick`] copy that are below used_slots.
    quick_used: usize,
    /// The AS whose last call was a search that hit (see [`PortImpl::compares_lru_now`]).
    hit_in: Option<u16>,
    /// Buffers for the batched lookups' raw answers.
    hits: Vec<(Option<(i32, RawSlot)>, i32)>,
    id_hits: Vec<Option<(i32, RawSlot)>>,
    /// Buffers for putting the tree-based port's walks and range answers in array order.
    ranked: Vec<(u32, i32)>,
    range_ids: Vec<u16>,
    /// Per AS, the index of every id as the last state copy since the last request gave it
    /// (the tree-based port only): range answers are ranked from it without a call.
    index_of: [Vec<i16>; KVM_ADDRESS_SPACE_NUM as usize],
    index_kept: [bool; KVM_ADDRESS_SPACE_NUM as usize],
}

impl PortImpl {
    pub fn new(port: Port) -> PortImpl {
        let vm = PortVm::new(port);
        let arch = ArchProfile::ALL
            .into_iter()
            .find(|a| usize::from(a.mem_slots_num()) == vm.mem_slots_num())
            .unwrap_or_else(|| panic!("{}: no arch profile has its slot count", port.name()));
        PortImpl {
            vm,
            port,
            arch,
            used_hint: [0; KVM_ADDRESS_SPACE_NUM as usize],
            last: None,
            quick_used: 0,
            hit_in: None,
            hits: Vec::new(),
            id_hits: Vec::new(),
            ranked: Vec::new(),
            range_ids: Vec::new(),
            index_of: Default::default(),
            index_kept: [false; KVM_ADDRESS_SPACE_NUM as usize],
        }
    }

    /// Before a request, which may change every index: the kept ones are stale.
    fn requesting(&mut self) {
        self.calling();
        self.index_kept = [false; KVM_ADDRESS_SPACE_NUM as usize];
    }

    fn is_modern(&self) -> bool {
        self.port.family() == Family::Modern
    }

    /// A copy of the address space with at least the first `used_slots` entries (all
    /// `KVM_MEM_SLOTS_NUM` when `full`).
    fn state(&mut self, as_id: u16, full: bool) -> RawState {
        let hint = &mut self.used_hint[usize::from(as_id)];
        let want = if full {
            usize::from(self.arch.mem_slots_num())
        } else {
            *hint + 2
        };
        let mut state = self.vm.state(as_id, want);
        let used = state.used_slots.max(0) as usize;
        if used > state.entries.len() && state.entries.len() < state.capacity {
            state = self.vm.state(as_id, used);
        }
        self.used_hint[usize::from(as_id)] = used;
        state
    }

    /// What the VM holds is what it held when created plus one dirty bitmap per slot that
    /// logs dirty pages (and, in the tree-based port, the slot itself): anything else leaked
    /// (or was freed twice).
    fn check_allocations(&mut self) -> Result<(), String> {
        let (mut bitmaps, mut slots) = (0, 0);
        for as_id in 0..KVM_ADDRESS_SPACE_NUM {
            let state = self.state(as_id, false);
            let used = state.used_slots.max(0) as usize;
            bitmaps += state
                .entries
                .iter()
                .take(used)
                .filter(|e| e.has_dirty_bitmap)
                .count() as i64;
            if self.is_modern() {
                slots += used as i64;
            }
        }
        let (held, created) = self.vm.allocations();
        let expected = created + slots + bitmaps;
        if held != expected {
            let slots = if self.is_modern() {
                format!("{slots} slot(s), ")
            } else {
                String::new()
            };
            return Err(format!(
                "the VM holds {held} allocations: {created} from kvm_create_vm, {slots}{bitmaps} \
                 dirty bitmap(s) expected, so {} {}",
                (held - expected).abs(),
                if held > expected {
                    "leaked"
                } else {
                    "freed too often"
                }
            ));
        }
        Ok(())
    }

    /// The tree-based port's checks of both sets' trees, hash and cache (see
    /// `memslot_reference::PortVm::check_structure`).
    fn check_structure(&mut self, as_id: u16) -> Result<(), String> {
        if !self.is_modern() {
            return Ok(());
        }
        self.calling();
        self.vm.check_structure(as_id)
    }

    /// `ids` in array order: sorted by the index `id_to_index` gives each, an id without
    /// one last (so that it shows as a difference). The tree-based port walks in hash order
    /// and answers ranges in ascending order; the array ports' order is kept as it is.
    fn in_array_order(&mut self, id_to_index: &[i16], ids: &mut Vec<i32>) {
        if self.is_modern() {
            sort_by_rank(&mut self.ranked, ids, |id| index_in(id_to_index, id));
        }
    }

    /// A range answer of the tree-based port in array order: the ranks of its ids, from the
    /// index kept since the last request, else in one call (the state copy is left alone: the
    /// fast path's array lives in it).
    fn range_in_array_order(&mut self, as_id: u16, out: &mut Vec<i32>) {
        if !self.is_modern() || out.len() < 2 {
            return;
        }
        let a = usize::from(as_id);
        if self.index_kept.get(a) == Some(&true) {
            let index = &self.index_of[a];
            sort_by_rank(&mut self.ranked, out, |id| index_in(index, id));
            return;
        }
        self.range_ids.clear();
        self.range_ids
            .extend(out.iter().map(|&id| u16::try_from(id).unwrap_or(u16::MAX)));
        let mut hits = std::mem::take(&mut self.id_hits);
        self.vm
            .id_to_memslot_each(as_id, &self.range_ids, &mut hits);
        let mut answers = hits.iter();
        sort_by_rank(&mut self.ranked, out, |_| {
            answers
                .next()
                .and_then(|hit| hit.and_then(|(k, _)| u32::try_from(k).ok()))
        });
        self.id_hits = hits;
    }

    /// post15's states reset a hint past the array on delete (0774a964ef56) or, without that
    /// fix, keep it; the others keep it as the seed patch does. Only the latter compare. The
    /// tree-based port's `last_used_slot` names a slot: a delete clears it, a move follows
    /// the slot (kvm_replace_memslot()).
    fn compares_lru(&self) -> bool {
        !matches!(self.port.family(), Family::Post15 | Family::Modern)
    }

    /// Whether the hint is compared after a search (`hit`: it found a slot): always where
    /// [`PortImpl::compares_lru`], and in post15 too right after a hit, when every state's hint
    /// is the index of the slot found (search_memslots' `atomic_set(&slots->lru_slot, start)`).
    fn compares_lru_now(&self, hit: bool) -> bool {
        self.compares_lru() || hit
    }

    /// Every call into the port goes through here first: it invalidates the last state copy
    /// and the last search's hit.
    fn calling(&mut self) {
        self.last = None;
        self.hit_in = None;
    }

    fn found(&self, (index, raw): (i32, RawSlot)) -> Option<Found> {
        // The pre port returns the entry of an absent id (npages 0): normalise to absent.
        if self.port.family() == Family::Pre && raw.npages == 0 {
            return None;
        }
        Some(Found {
            index: i64::from(index),
            slot: Some(slot(&raw)),
        })
    }
}

fn region(r: &Region) -> KvmUserspaceMemoryRegion {
    KvmUserspaceMemoryRegion {
        slot: r.slot,
        flags: r.flags,
        guest_phys_addr: r.guest_phys_addr,
        memory_size: r.memory_size,
        userspace_addr: r.userspace_addr,
    }
}

fn slot(s: &RawSlot) -> Slot {
    Slot {
        id: i32::from(s.id),
        base_gfn: s.base_gfn,
        npages: s.npages,
        flags: s.flags,
        userspace_addr: s.userspace_addr,
    }
}

impl Implementation for PortImpl {
    fn name(&self) -> &'static str {
        self.port.name()
    }

    fn arch(&self) -> ArchProfile {
        self.arch
    }

    fn leaves_lockstep(&self, op: &Op) -> Option<&'static str> {
        match op {
            Op::KSet(r) if self.is_modern() && checks_private_hva(r, self.arch) => Some(
                "09d952c971a5 checks the host address of private slots too: an \
                 unaligned or out-of-range userspace_addr is -EINVAL there",
            ),
            _ => None,
        }
    }

    fn set_user_memory_region(&mut self, r: &Region) -> i32 {
        self.requesting();
        self.vm.ioctl_set_memory_region(&region(r))
    }

    fn set_user_memory_region2(&mut self, r: &Region2) -> i32 {
        self.requesting();
        if !self.is_modern() {
            // 2020's code has no KVM_SET_USER_MEMORY_REGION2 (v6.8): on a VM without
            // private memory it is the v1 request (see the trait), which these ports answer.
            return self.vm.ioctl_set_memory_region(&region(&r.region));
        }
        let v2 = KvmUserspaceMemoryRegion2 {
            slot: r.region.slot,
            flags: r.region.flags,
            guest_phys_addr: r.region.guest_phys_addr,
            memory_size: r.region.memory_size,
            userspace_addr: r.region.userspace_addr,
            guest_memfd_offset: r.guest_memfd_offset,
            guest_memfd: r.guest_memfd,
            ..KvmUserspaceMemoryRegion2::default()
        };
        self.vm.ioctl_set_memory_region2(&v2)
    }

    fn set_memory_region(&mut self, r: &Region) -> i32 {
        self.requesting();
        self.vm.set_memory_region(&region(r))
    }

    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found> {
        self.calling();
        let hit = self.vm.search_memslots(as_id, gfn)?;
        self.hit_in = Some(as_id);
        Some(Found {
            index: i64::from(hit.0),
            slot: Some(slot(&hit.1)),
        })
    }

    fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<Found> {
        self.calling();
        let hit = self.vm.id_to_memslot(as_id, id)?;
        self.found(hit)
    }

    fn search_each(
        &mut self,
        as_id: u16,
        gfns: &[u64],
        out: &mut Vec<(Option<Found>, Option<i64>)>,
    ) {
        self.calling();
        let mut hits = std::mem::take(&mut self.hits);
        self.vm.search_each(as_id, gfns, &mut hits);
        out.clear();
        out.extend(hits.iter().map(|(hit, lru)| {
            let found = hit.map(|(index, raw)| Found {
                index: i64::from(index),
                slot: Some(slot(&raw)),
            });
            let compared = self.compares_lru_now(found.is_some());
            (found, compared.then_some(i64::from(*lru)))
        }));
        self.hits = hits;
    }

    fn id_to_memslot_each(&mut self, as_id: u16, ids: &[u16], out: &mut Vec<Option<Found>>) {
        self.calling();
        let mut hits = std::mem::take(&mut self.id_hits);
        self.vm.id_to_memslot_each(as_id, ids, &mut hits);
        out.clear();
        out.extend(hits.iter().map(|hit| hit.and_then(|h| self.found(h))));
        self.id_hits = hits;
    }

    fn gfn_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        self.calling();
        out.clear();
        out.extend(
            self.vm
                .gfn_ranges(as_id, start, end)
                .iter()
                .map(|&id| i32::from(id)),
        );
        self.range_in_array_order(as_id, out);
        true
    }

    fn hva_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        self.calling();
        out.clear();
        out.extend(
            self.vm
                .hva_ranges(as_id, start, end)
                .iter()
                .map(|&id| i32::from(id)),
        );
        self.range_in_array_order(as_id, out);
        true
    }

    fn summary(&mut self, as_id: u16) -> (u64, i64) {
        self.calling();
        let state = self.vm.state_ref(as_id, 0);
        (state.generation, i64::from(state.used_slots))
    }

    fn snapshot_into(&mut self, as_id: u16, full: bool, out: &mut SpaceSnapshot) {
        let state = self.state(as_id, false);
        let used = (state.used_slots.max(0) as usize).min(state.entries.len());
        out.generation = state.generation;
        out.used_slots = i64::from(state.used_slots);
        out.slots.clear();
        out.slots.extend(state.entries[..used].iter().map(slot));
        out.index = if full {
            normalised_index(self.port.family(), &state)
        } else {
            array_index(&state, used)
        };
        let mut walk = std::mem::take(&mut out.walk);
        walk.clear();
        walk.extend(self.vm.for_each_memslot(as_id).into_iter().map(i32::from));
        self.in_array_order(&state.id_to_index, &mut walk);
        if self.is_modern() {
            let a = usize::from(as_id);
            keep_index(
                &mut self.index_of[a],
                &mut self.index_kept[a],
                &state.id_to_index,
            );
        }
        out.walk = walk;
        out.lru = self.compares_lru().then_some(i64::from(state.lru_slot));
        self.last = Some((as_id, state));
    }

    fn lru(&mut self, as_id: u16) -> Option<i64> {
        Some(i64::from(self.vm.lru_slot(as_id)))
    }

    fn compared_lru(&mut self, as_id: u16) -> Option<i64> {
        self.compares_lru_now(self.hit_in == Some(as_id))
            .then(|| i64::from(self.vm.lru_slot(as_id)))
    }

    fn set_lru(&mut self, as_id: u16, lru: i64) {
        self.calling();
        self.vm.set_lru_slot(as_id, lru as i32);
    }

    fn warn_count(&self) -> u64 {
        self.vm.warn_count()
    }

    fn last_warn(&self) -> Option<String> {
        self.vm.last_warn().map(|w| w.to_string())
    }

    fn fault(&self) -> Option<String> {
        self.vm.fault().map(|f| f.to_string())
    }

    fn check_invariants(&mut self, as_ids: &[u16], full: bool) -> Result<(), String> {
        for &as_id in as_ids {
            let state = match self.last.take() {
                Some((cached, state)) if cached == as_id && !full => state,
                _ => self.state(as_id, full),
            };
            check_raw(self.port.family(), &state, full, self.arch)?;
            if full {
                self.check_structure(as_id)?;
            }
        }
        if full && self.vm.fault().is_none() {
            self.check_allocations()?;
        }
        Ok(())
    }

    fn set_prepare_error(&mut self, errno: i32) {
        self.calling();
        self.vm.set_prepare_error(errno);
    }

    fn quick(&mut self, as_id: u16) -> Option<Quick> {
        self.calling();
        if as_id >= KVM_ADDRESS_SPACE_NUM {
            return None;
        }
        // As `state`: at least the first used_slots entries.
        let want = self.used_hint[usize::from(as_id)] + 2;
        let state = self.vm.state_ref(as_id, want);
        let (copied, capacity) = (state.entries.len(), state.capacity);
        let used = state.used_slots.max(0) as usize;
        if used > copied && copied < capacity {
            self.vm.state_ref(as_id, used);
        }
        self.used_hint[usize::from(as_id)] = used;
        self.vm.walk(as_id);
        let state = self.vm.last_state();
        let entries = &state.entries[..used.min(state.entries.len())];
        let modern = self.port.family() == Family::Modern;
        if modern {
            let a = usize::from(as_id);
            keep_index(
                &mut self.index_of[a],
                &mut self.index_kept[a],
                state.id_to_index,
            );
        }
        self.quick_used = entries.len();
        let index_is_inverse = entries.iter().enumerate().all(|(i, e)| {
            usize::try_from(e.id)
                .ok()
                .and_then(|id| state.id_to_index.get(id))
                .is_some_and(|&k| usize::try_from(k) == Ok(i))
        });
        let walk = self.vm.last_walk();
        let walk_is_array = if modern {
            // Hash order: the walk is the array's ids if, put in array order, their indices
            // are 0..used (the index is the inverse of the array, checked above).
            walk.len() == entries.len() && {
                let ids = walk.iter().map(|&w| i32::from(w));
                rank_sorted(&mut self.ranked, ids, |id| index_in(state.id_to_index, id));
                self.ranked
                    .iter()
                    .enumerate()
                    .all(|(i, &(k, _))| k as usize == i)
            }
        } else {
            walk.len() == entries.len() && walk.iter().zip(entries).all(|(&w, e)| w == e.id)
        };
        Some(Quick {
            generation: state.generation,
            used_slots: i64::from(state.used_slots),
            lru: self.compares_lru().then_some(i64::from(state.lru_slot)),
            index_is_inverse,
            walk_is_array,
        })
    }

    fn quick_array(&self) -> &[ApiSlot] {
        &self.vm.last_state().entries[..self.quick_used]
    }

    fn quick_invariants(&mut self, as_id: u16, full: bool) -> bool {
        // The quick part of `check_raw` (used_slots in range, a dirty bitmap exactly on the
        // used entries with dirty logging) is implied by the agreement: used_slots passed the
        // generic range check, and the used entries equal the others' byte for byte,
        // has_dirty_bitmap included (see `oracle::packed_slot`). Its cache check is not: the
        // tree-based port's hint is not compared.
        if self.is_modern() && self.vm.last_state().lru_slot == NOT_IN_ARRAY {
            return false;
        }
        if !full {
            return true;
        }
        if self.vm.fault().is_none() && self.check_allocations().is_err() {
            // The slow path's check_invariants reports it.
            return false;
        }
        // The full part, with the used entries already known to map back to themselves.
        let used = self.quick_used;
        match self.port.family() {
            Family::Pre => {
                // Every one of the 512 entries maps back to itself: then the ids are 512
                // distinct values below 512, id_to_index is their inverse permutation, and
                // the ids below used_slots are exactly the array's (the normalised full
                // index). The entries past used_slots are empty.
                let state = self.vm.state_ref(as_id, ARRAY_SLOTS);
                state.entries.len() == ARRAY_SLOTS
                    && state.entries.iter().enumerate().all(|(i, e)| {
                        usize::try_from(e.id)
                            .ok()
                            .and_then(|id| state.id_to_index.get(id))
                            .is_some_and(|&k| usize::try_from(k) == Ok(i))
                    })
                    && state.entries[used..].iter().all(|e| e.npages == 0)
            }
            Family::Post | Family::Post15 | Family::Modern => {
                // Exactly used_slots ids are not -1: with the array's ids among them, no other
                // id has an index (the normalised full index is the quick one).
                let state = self.vm.state_ref(as_id, 0);
                let indexed = state.used_slots as usize == used
                    && state.id_to_index.iter().filter(|&&k| k != -1).count() == used;
                indexed && self.check_structure(as_id).is_ok()
            }
        }
    }
}

/// Whether an in-kernel request for a private id fails 09d952c971a5's host address check
/// (`__kvm_set_memory_region()` since then: page aligned, untagged, `access_ok()`), which
/// 2020's code applies to user ids only.
fn checks_private_hva(r: &Region, arch: ArchProfile) -> bool {
    let hva = r.userspace_addr;
    let access_ok = hva
        .checked_add(r.memory_size)
        .is_some_and(|end| end <= TASK_SIZE_MAX);
    // Past the ids and address spaces a VM has, every state refuses the request alike.
    let names_a_slot = r.id() < arch.mem_slots_num() && r.as_id() < KVM_ADDRESS_SPACE_NUM;
    names_a_slot
        && r.id() >= arch.user_mem_slots()
        && (!hva.is_multiple_of(PAGE_SIZE) || !access_ok)
}
