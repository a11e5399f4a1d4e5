//! Every implementation behind one trait, and the normalised views the runner compares.
//!
//! * [`core::CoreImpl`]: `memslot_core::Vm` with `ArchLimits::X86_64` (optionally with an
//!   injected fault, for the self-test);
//! * [`tree::TreeImpl`]: `memslot_core::Vm<TreeMemslots>`, the tree backend (the v5.17
//!   design), whose lookups report the slot's rank in GFN order as its index;
//! * [`port::PortImpl`]: the literal C ports of kvm_main.c, `pre` and `post` the seed patch;
//! * [`oracle::Oracle`]: a model written to be obviously correct rather than fast, so that a
//!   difference shared by every array implementation is still caught.
//!
//! Normalisation: an id is *absent* when it has no slot. The pre port's `id_to_index` always
//! points somewhere (an empty entry for an absent id) and its `id_to_memslot` never returns
//! NULL; the post port uses -1. Both become "absent" here. Only the first `used_slots` array
//! entries are compared.

pub mod core;
pub mod oracle;
pub mod port;
pub mod tree;

use memslot_reference::ApiSlot;
use serde::Serialize;

use crate::arch_profile::ArchProfile;
use crate::ops::{flag_letters, Region};

/// One array entry, as every implementation reports it (`id` is the C `short`, so -1 shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Slot {
    pub id: i32,
    pub base_gfn: u64,
    pub npages: u64,
    pub flags: u32,
    pub userspace_addr: u64,
}

impl Slot {
    /// The first GFN past the slot (saturating, for display of broken slots).
    pub fn end_gfn(&self) -> u64 {
        self.base_gfn.saturating_add(self.npages)
    }
}

/// A slot returned by a lookup, with the array index it was found at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    pub index: i64,
    /// `None` when the index does not name an entry of the array (a broken implementation).
    pub slot: Option<Slot>,
}

/// The observable state of one address space, normalised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpaceSnapshot {
    pub generation: u64,
    pub used_slots: i64,
    /// The first `used_slots` entries, index 0 = highest base GFN.
    pub slots: Vec<Slot>,
    /// `(id, index)` ascending by id, from the implementation's own id-to-index map: for every
    /// id with a slot in a full snapshot (all 512 ids looked at, absent ones left out), and for
    /// the ids the array holds in a quick one (-1 if the map says absent).
    pub index: Vec<(u16, i64)>,
    /// The ids `kvm_for_each_memslot` visits, in order.
    pub walk: Vec<i32>,
    /// The LRU hint, for implementations that have one.
    pub lru: Option<i64>,
}

/// What the runner's fast comparison (see `runner`) needs of one address space besides the
/// array itself ([`Implementation::quick_array`]): the header, and two facts about the
/// implementation's own maps, established by the implementation without copying them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quick {
    pub generation: u64,
    pub used_slots: i64,
    /// The LRU hint, for implementations that have one.
    pub lru: Option<i64>,
    /// Entry `i`'s id maps to `i` in the implementation's own id-to-index map, for every `i`
    /// below used_slots: the quick [`SpaceSnapshot::index`] is the inverse of the array.
    pub index_is_inverse: bool,
    /// The walk visits exactly the array's ids, in array order.
    pub walk_is_array: bool,
}

/// Implementation-specific details the runner shows but does not compare.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// Why a request failed, in the words of `memslot_core::Error` (core and oracle only):
    /// the validation step gives the order of the checks, which errno alone does not.
    pub reason: Option<String>,
}

/// A memslot implementation driven by the runner.
pub trait Implementation {
    /// Short name shown in reports: `core`, `pre`, `post`, `oracle`.
    fn name(&self) -> &'static str;
    /// The limits it runs at: every implementation of a lockstep has the same.
    fn arch(&self) -> ArchProfile;
    /// What the last successful request did (`create`, `delete`, `move`, `flags-only`,
    /// `no-op`), for implementations that can tell; counted in `Stats::kinds`.
    fn last_change(&self) -> Option<crate::ops::OpKind> {
        None
    }
    /// Why this implementation cannot take part in `op` and what follows it: a documented
    /// class of legitimate difference (today's kernel refusing what 2020's accepted), named
    /// with its commit. The runner then leaves it out of the lockstep for the rest of the
    /// run, and says so in the run's statistics. `None`: it takes part.
    fn leaves_lockstep(&self, _op: &crate::ops::Op) -> Option<&'static str> {
        None
    }
    /// `KVM_SET_USER_MEMORY_REGION`; returns 0 or a negative errno.
    fn set_user_memory_region(&mut self, r: &Region) -> i32;
    /// `KVM_SET_USER_MEMORY_REGION2` (v6.8) on x86's default VM type. Without private memory
    /// `KVM_MEM_GUEST_MEMFD` is an invalid flag (`check_memory_region_flags()`), so the
    /// guest_memfd fields are never read and the request is the v1 one: implementations that
    /// model no VM type (the 2020 ports, which predate the ioctl, the core, the oracle) answer
    /// it as [`Implementation::set_user_memory_region`] does; the modern port runs its ioctl.
    fn set_user_memory_region2(&mut self, r: &crate::ops::Region2) -> i32 {
        self.set_user_memory_region(&r.region)
    }
    /// `__kvm_set_memory_region` from inside the kernel; returns 0 or a negative errno.
    fn set_memory_region(&mut self, r: &Region) -> i32;
    /// Why the last request failed, if the implementation can say (see [`Extra::reason`]).
    fn last_reason(&self) -> Option<String> {
        None
    }
    /// `search_memslots`: updates the LRU hint as the kernel does.
    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found>;
    /// `id_to_memslot`, normalised: `None` for an absent id, an out-of-range id or AS.
    fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<Found>;
    /// [`Implementation::search`] at each of `gfns` in turn, each answer with the compared
    /// LRU hint after it ([`Implementation::compared_lru`]), into `out` (cleared first): a
    /// round of probes in one call, so that an implementation behind a foreign call crosses
    /// once, not twice per lookup.
    fn search_each(
        &mut self,
        as_id: u16,
        gfns: &[u64],
        out: &mut Vec<(Option<Found>, Option<i64>)>,
    ) {
        out.clear();
        for &gfn in gfns {
            let found = self.search(as_id, gfn);
            out.push((found, self.compared_lru(as_id)));
        }
    }
    /// [`Implementation::id_to_memslot`] for each of `ids`, into `out` (cleared first).
    fn id_to_memslot_each(&mut self, as_id: u16, ids: &[u16], out: &mut Vec<Option<Found>>) {
        out.clear();
        for &id in ids {
            let found = self.id_to_memslot(as_id, id);
            out.push(found);
        }
    }
    /// The ids of the slots overlapping GFNs `[start, end)`, in walk order, into `out`
    /// (cleared first; a buffer the runner reuses). `false`: the implementation cannot answer,
    /// it is left out of the comparison.
    fn gfn_range(&mut self, _as_id: u16, _start: u64, _end: u64, _out: &mut Vec<i32>) -> bool {
        false
    }
    /// The ids of the slots whose host range overlaps `[start, end)`, in walk order, as
    /// [`Implementation::gfn_range`].
    fn hva_range(&mut self, _as_id: u16, _start: u64, _end: u64, _out: &mut Vec<i32>) -> bool {
        false
    }
    /// Generation and used_slots only (cheap), for `as_id` < 2.
    fn summary(&mut self, as_id: u16) -> (u64, i64);
    /// The normalised state of an address space (`as_id` < 2) into `out` (whose buffers are
    /// reused); `full` looks at the index of every id, not only of those in the array (see
    /// [`SpaceSnapshot::index`]).
    fn snapshot_into(&mut self, as_id: u16, full: bool, out: &mut SpaceSnapshot);
    /// [`Implementation::snapshot_into`] a new snapshot.
    fn snapshot(&mut self, as_id: u16, full: bool) -> SpaceSnapshot {
        let mut out = SpaceSnapshot::default();
        self.snapshot_into(as_id, full, &mut out);
        out
    }
    /// The LRU hint, if the implementation has one (saved and restored around the probes).
    fn lru(&mut self, as_id: u16) -> Option<i64>;
    /// The LRU hint if it is compared with the others': implementations whose hint policy
    /// differs (post15's delete resets a hint past the array, 0774a964ef56) answer `None`, as
    /// in their [`Quick::lru`] and [`SpaceSnapshot::lru`]; their lookups are still compared.
    fn compared_lru(&mut self, as_id: u16) -> Option<i64> {
        self.lru(as_id)
    }
    /// Restore an LRU hint saved with [`Implementation::lru`] (after the runner's probes).
    fn set_lru(&mut self, as_id: u16, lru: i64);
    /// WARN_ON hits so far.
    fn warn_count(&self) -> u64 {
        0
    }
    /// The latest WARN_ON hit, as `file:line: condition`.
    fn last_warn(&self) -> Option<String> {
        None
    }
    /// An access outside an allocation that the implementation made and that was caught (the
    /// C ports' guard pages): a finding by itself, whatever the results.
    fn fault(&self) -> Option<String> {
        None
    }
    /// The implementation's own invariants beyond [`check_snapshot`] in the given address
    /// spaces; `full` asks for the expensive ones too (whole fixed-size arrays).
    fn check_invariants(&mut self, as_ids: &[u16], full: bool) -> Result<(), String>;
    /// Make `kvm_arch_prepare_memory_region` return `errno` (0: succeed).
    fn set_prepare_error(&mut self, errno: i32);

    /// The runner's fast path: look at address space `as_id` (< 2) without building a
    /// [`SpaceSnapshot`], keeping the array for [`Implementation::quick_array`]. `None`: not
    /// supported, the runner compares snapshots.
    fn quick(&mut self, _as_id: u16) -> Option<Quick> {
        None
    }

    /// The first used_slots array entries of the last [`Implementation::quick`] call, in the
    /// ports' copy format (see [`oracle::packed_slot`]).
    fn quick_array(&self) -> &[ApiSlot] {
        &[]
    }

    /// Whether the implementation's own invariants hold in `as_id` (`full`: the expensive ones
    /// too, and no id outside the array has an index), given that its last
    /// [`Implementation::quick`] agreed in every respect with the others' and the shared state
    /// passed [`check_snapshot`]. It may skip what that agreement already proves; `false`
    /// sends the runner to the slow path, which reports what is wrong.
    fn quick_invariants(&mut self, as_id: u16, full: bool) -> bool {
        self.check_invariants(&[as_id], full).is_ok()
    }
}

/// The invariants every implementation's normalised state must satisfy: strictly descending
/// bases, npages > 0, no overlap, the index map the inverse of the array, the walk visiting the
/// array in order, and the LRU hint inside the fixed array bounds (`slots_num` entries).
pub fn check_snapshot(s: &SpaceSnapshot, slots_num: u16) -> Result<(), String> {
    if s.used_slots < 0 || s.used_slots > i64::from(slots_num) {
        return Err(format!("used_slots {} out of range", s.used_slots));
    }
    if s.slots.len() as i64 != s.used_slots {
        return Err(format!(
            "{} entries for used_slots {}",
            s.slots.len(),
            s.used_slots
        ));
    }
    for (i, slot) in s.slots.iter().enumerate() {
        if slot.npages == 0 {
            return Err(format!(
                "entry {i} (id {}) has npages 0 below used_slots",
                slot.id
            ));
        }
        if slot.id < 0 || slot.id >= i32::from(slots_num) {
            return Err(format!("entry {i} has id {}", slot.id));
        }
        if let Some(next) = s.slots.get(i + 1) {
            if slot.base_gfn <= next.base_gfn {
                return Err(format!(
                    "bases not strictly descending: entry {i} (id {}) base {:#x}, entry {} (id {}) base {:#x}",
                    slot.id,
                    slot.base_gfn,
                    i + 1,
                    next.id,
                    next.base_gfn
                ));
            }
            if next.base_gfn.saturating_add(next.npages) > slot.base_gfn {
                return Err(format!(
                    "entries {i} (id {}) and {} (id {}) overlap",
                    slot.id,
                    i + 1,
                    next.id
                ));
            }
        }
    }
    if s.index.len() != s.slots.len() {
        return Err(format!(
            "{} ids have an index but used_slots is {}",
            s.index.len(),
            s.used_slots
        ));
    }
    for &(id, index) in &s.index {
        match usize::try_from(index).ok().and_then(|i| s.slots.get(i)) {
            Some(slot) if slot.id == i32::from(id) => {}
            Some(slot) => {
                return Err(format!(
                    "index of id {id} is {index}, but that entry has id {}",
                    slot.id
                ))
            }
            None => {
                return Err(format!(
                    "index of id {id} is {index}, outside the used entries"
                ))
            }
        }
    }
    // Every entry's id maps back to it (ids are < slots_num here, checked above).
    let mut index_of = vec![-2i64; usize::from(slots_num)];
    for &(id, index) in &s.index {
        if let Some(slot) = index_of.get_mut(usize::from(id)) {
            *slot = index;
        }
    }
    for (i, slot) in s.slots.iter().enumerate() {
        match index_of[slot.id as usize] {
            -2 => {
                return Err(format!(
                    "entry {i} holds id {}, which has no index",
                    slot.id
                ))
            }
            k if k != i as i64 => {
                return Err(format!(
                    "entry {i} holds id {}, whose index is {k}",
                    slot.id
                ))
            }
            _ => {}
        }
    }
    if !s.walk.iter().copied().eq(s.slots.iter().map(|s| s.id)) {
        return Err(format!(
            "walk visits {:?}, the array holds {:?}",
            s.walk,
            ids(&s.slots)
        ));
    }
    if let Some(lru) = s.lru {
        if !(0..i64::from(slots_num)).contains(&lru) {
            return Err(format!("LRU hint {lru} outside the array"));
        }
    }
    Ok(())
}

fn ids(slots: &[Slot]) -> Vec<i32> {
    slots.iter().map(|s| s.id).collect()
}

/// A lookup result: `slot id 3 at index 1: gfn [0x100, 0x300) flags dirty` or `none (NULL)`.
pub fn found_text(found: Option<&Found>) -> String {
    match found {
        None => "none (NULL)".to_string(),
        Some(Found { index, slot: None }) => format!("index {index}, outside the array"),
        Some(Found {
            index,
            slot: Some(s),
        }) => format!(
            "slot id {} at index {index}: gfn [{:#x}, {:#x}) flags {} hva {:#x}",
            s.id,
            s.base_gfn,
            s.end_gfn(),
            flag_letters(s.flags),
            s.userspace_addr
        ),
    }
}
