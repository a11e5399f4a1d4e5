//! Adapter for the Rust core's tree backend (`memslot_core::Vm<TreeMemslots>`, at an arch
//! profile's limits): the v5.17 design, compared with the array implementations.
//!
//! It has no array and no index: its lookups return a slot. The adapter reports the slot's
//! rank in the walk (descending GFN order) as its index, which is where the array would hold
//! it; the "array" is the walk itself. Its last-used-slot cache names a slot, not an index,
//! and is not an LRU hint: like post15's, it is saved and restored around the probes but not
//! compared, while every lookup is.

use memslot_core::{Error, Fault, MemorySlot, MemslotSet, TreeMemslots, Vm};
use memslot_reference::ApiSlot;

use super::core::{ids, planted, region, region2, request_rc, slot};
use super::oracle::packed_slot;
use super::{Found, Implementation, Quick, SpaceSnapshot};
use crate::arch_profile::ArchProfile;
use crate::ops::{Region, Region2};

/// `memslot_core::Vm<TreeMemslots>` at x86-512's limits unless built by
/// [`TreeImpl::with_arch`].
pub struct TreeImpl {
    vm: Vm<TreeMemslots>,
    arch: ArchProfile,
    reason: Option<String>,
    /// The walk of the last [`Implementation::quick`] call, in the ports' copy format.
    packed: Vec<ApiSlot>,
    /// Per address space, its walk as `(base_gfn, slot address)`, for the ranks lookups
    /// report; built by [`Implementation::quick`] or the first lookup after a request (only
    /// requests change a walk: the lookups take `&self`), so that a rank costs a binary
    /// search, not a walk.
    ranks: [Ranks; 2],
}

/// A walk as `(base_gfn, slot address)`, highest base first, and whether its bases strictly
/// descend. The buffer is kept across requests, which only mark it stale.
#[derive(Default)]
struct Ranks {
    walk: Vec<(u64, usize)>,
    descending: bool,
    current: bool,
}

impl Ranks {
    fn clear(&mut self) {
        self.walk.clear();
        self.descending = true;
        self.current = true;
    }

    fn push(&mut self, s: &MemorySlot) {
        let base = s.base_gfn;
        if let Some(&(above, _)) = self.walk.last() {
            self.descending &= above > base;
        }
        self.walk.push((base, s as *const MemorySlot as usize));
    }
}

impl TreeImpl {
    /// The tree as shipped (or with the tree fault `MEMSLOT_DIFF_PLANT` names).
    pub fn new() -> TreeImpl {
        TreeImpl::with_arch(ArchProfile::X86_512)
    }

    /// The tree at another profile's limits (today's x86: 32,764 user slots).
    pub fn with_arch(arch: ArchProfile) -> TreeImpl {
        let mut vm = Vm::with_backend(arch.limits());
        vm.set_fault(planted());
        TreeImpl {
            vm,
            arch,
            reason: None,
            packed: Vec::new(),
            ranks: Default::default(),
        }
    }

    /// The tree with a deliberate one-line bug (memslot-core's `fault-injection` feature), for
    /// the harness's self-test. It reports as `tree`, like the real one.
    pub fn with_fault(fault: Fault) -> TreeImpl {
        TreeImpl::with_fault_at(ArchProfile::X86_512, fault)
    }

    /// [`TreeImpl::with_fault`] at another profile's limits.
    pub fn with_fault_at(arch: ArchProfile, fault: Fault) -> TreeImpl {
        let mut tree = TreeImpl::with_arch(arch);
        tree.vm.set_fault(Some(fault));
        tree
    }

    fn space(&self, as_id: u16) -> Option<&TreeMemslots> {
        self.vm.memslots(as_id)
    }
}

impl Default for TreeImpl {
    fn default() -> Self {
        TreeImpl::new()
    }
}

/// The slot with its rank in the walk: the index the array would hold it at (-1 if the walk
/// does not hold that very slot, which the comparison then shows). `ranks` caches the walk.
fn found(space: &TreeMemslots, ranks: &mut Ranks, s: &MemorySlot) -> Found {
    if !ranks.current {
        ranks.clear();
        space.walk().for_each(|w| ranks.push(w));
    }
    let (walk, descending) = (&ranks.walk, ranks.descending);
    let address = s as *const MemorySlot as usize;
    // The first rank holding this very slot, as `walk().position()` finds it. With distinct
    // bases, a slot can only be at the one rank holding its base (the walk reads the base
    // from the slot itself): a binary search.
    let rank = if descending {
        let at = walk.partition_point(|&(base, _)| base > s.base_gfn);
        walk.get(at).filter(|&&(_, a)| a == address).map(|_| at)
    } else {
        walk.iter().position(|&(_, a)| a == address)
    };
    Found {
        index: rank.map_or(-1, |r| r as i64),
        slot: Some(slot(s)),
    }
}

impl Implementation for TreeImpl {
    fn name(&self) -> &'static str {
        "tree"
    }

    fn arch(&self) -> ArchProfile {
        self.arch
    }

    fn set_user_memory_region(&mut self, r: &Region) -> i32 {
        self.ranks.iter_mut().for_each(|r| r.current = false);
        request_rc(&mut self.reason, self.vm.set_user_memory_region(&region(r)))
    }

    fn set_memory_region(&mut self, r: &Region) -> i32 {
        self.ranks.iter_mut().for_each(|r| r.current = false);
        request_rc(&mut self.reason, self.vm.set_memory_region(&region(r)))
    }

    fn set_user_memory_region2(&mut self, r: &Region2) -> i32 {
        self.ranks.iter_mut().for_each(|r| r.current = false);
        request_rc(
            &mut self.reason,
            self.vm.set_user_memory_region2(&region2(r)),
        )
    }

    fn last_reason(&self) -> Option<String> {
        self.reason.clone()
    }

    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found> {
        let space = self.vm.memslots(as_id)?;
        let ranks = &mut self.ranks[usize::from(as_id)];
        space.search(gfn).map(|s| found(space, ranks, s))
    }

    fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<Found> {
        let space = self.vm.memslots(as_id)?;
        let ranks = &mut self.ranks[usize::from(as_id)];
        space.id_to_memslot(id).map(|s| found(space, ranks, s))
    }

    fn gfn_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        ids(self.space(as_id).map(|s| s.in_gfn_range(start, end)), out)
    }

    fn hva_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        ids(self.space(as_id).map(|s| s.in_hva_range(start, end)), out)
    }

    fn summary(&mut self, as_id: u16) -> (u64, i64) {
        let space = self.space(as_id).expect("address space");
        (space.generation(), space.used_slots() as i64)
    }

    fn snapshot_into(&mut self, as_id: u16, full: bool, out: &mut SpaceSnapshot) {
        let ids = self.arch.mem_slots_num();
        let space = self.vm.memslots(as_id).expect("address space");
        let mut ranks = std::mem::take(&mut self.ranks[usize::from(as_id)]);
        out.generation = space.generation();
        out.used_slots = space.used_slots() as i64;
        out.slots.clear();
        out.slots.extend(space.walk().map(slot));
        out.index.clear();
        // The index of an id: the rank of the slot its hash entry holds.
        let mut index = |id: u16| {
            space
                .id_to_memslot(id)
                .map(|s| found(space, &mut ranks, s).index)
        };
        if full {
            out.index
                .extend((0..ids).filter_map(|id| index(id).map(|i| (id, i))));
        } else {
            out.index
                .extend(space.walk().map(|s| (s.id, index(s.id).unwrap_or(-1))));
            out.index.sort_unstable();
        }
        out.walk.clear();
        out.walk.extend(space.walk().map(|s| i32::from(s.id)));
        out.lru = None;
        self.ranks[usize::from(as_id)] = ranks;
    }

    fn lru(&mut self, as_id: u16) -> Option<i64> {
        let space = self.space(as_id)?;
        Some(space.last_used_id().map_or(-1, i64::from))
    }

    fn compared_lru(&mut self, _as_id: u16) -> Option<i64> {
        None
    }

    fn set_lru(&mut self, as_id: u16, lru: i64) {
        if let Some(space) = self.space(as_id) {
            space.set_last_used_id(u16::try_from(lru).ok());
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
        // One walk for the array and for the ranks the probes' lookups will report.
        let ranks = &mut self.ranks[usize::from(as_id)];
        ranks.clear();
        self.packed.clear();
        for s in space.walk() {
            ranks.push(s);
            self.packed.push(packed_slot(&slot(s)));
        }
        Some(Quick {
            generation: space.generation(),
            used_slots: space.used_slots() as i64,
            lru: None,
            // That the id hash holds the very slot the walk visits at each rank is what
            // `TreeMemslots::check_invariants` checks first (every GFN-tree slot is the one
            // hashed under its id); `quick_invariants` runs it on every fast comparison, and a
            // failure there sends the runner to the slow path as a `false` here would.
            index_is_inverse: true,
            // `snapshot_into` takes the walk from `space.walk()`, like the array here.
            walk_is_array: true,
        })
    }

    fn quick_array(&self) -> &[ApiSlot] {
        &self.packed
    }

    // The default `quick_invariants` runs `TreeMemslots::check_invariants`: the sets' own
    // indices agree with each other, and the active and inactive sets hold the same slots.
}
