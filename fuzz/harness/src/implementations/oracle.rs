//! The oracle: a model of KVM memslots written to be obviously correct rather than fast.
//!
//! Slots live in a `BTreeMap` by id, one per address space. Validation is transcribed step by
//! step from the kernel's `__kvm_set_memory_region` (kvm-memslot-facts.md §2.8) with post-patch
//! behaviour on a failing arch prepare (§2.7). Its "array" is the slots sorted by base GFN,
//! highest first (kept sorted as slots come and go), and the index of an id is its rank in
//! that order. Lookups and the overlap check are binary searches in that order.
//! It has no LRU hint and no WARNs. It shares no code with the core or the ports.

use std::collections::BTreeMap;

use memslot_reference::ApiSlot;

use super::{Found, Implementation, Quick, Slot, SpaceSnapshot};
use crate::arch_profile::ArchProfile;
use crate::ops::{
    Op, OpKind, Region, Region2, KVM_ADDRESS_SPACE_NUM, KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_MAX_NR_PAGES, KVM_MEM_READONLY, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX,
};

/// `enum kvm_mr_change`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Delete,
    Move,
    FlagsOnly,
}

#[derive(Clone, Debug, Default)]
struct Space {
    slots: BTreeMap<u16, Slot>,
    generation: u64,
    /// The slots sorted by base GFN, highest first: the kernel's array order. Kept sorted by
    /// [`Space::insert`] and [`Space::remove`], the only places `slots` changes.
    array: Vec<Slot>,
    /// `array` in the ports' copy format, for the runner's byte comparison (see
    /// [`packed_slot`]); always the same length and order as `array`.
    packed: Vec<ApiSlot>,
}

impl Space {
    /// Where a slot with this base goes (or is) in `array`: after every higher base. Bases
    /// are unique (slots never overlap and have npages > 0).
    fn position(&self, base_gfn: u64) -> usize {
        self.array.partition_point(|s| s.base_gfn > base_gfn)
    }

    fn insert(&mut self, slot: Slot) {
        self.remove(slot.id as u16);
        let i = self.position(slot.base_gfn);
        self.array.insert(i, slot);
        self.packed.insert(i, packed_slot(&slot));
        self.slots.insert(slot.id as u16, slot);
    }

    fn remove(&mut self, id: u16) {
        if let Some(old) = self.slots.remove(&id) {
            let i = self.position(old.base_gfn);
            assert_eq!(self.array[i], old, "oracle array out of sync");
            self.array.remove(i);
            self.packed.remove(i);
        }
    }

    /// The position of a slot in array order.
    fn rank(&self, id: u16) -> i64 {
        self.slots
            .get(&id)
            .map_or(-1, |s| self.position(s.base_gfn) as i64)
    }

    /// The first slot in array order, other than `id`, that overlaps `[base, end)`. Slots
    /// with a base at or above `end` cannot; below it the array holds disjoint slots in
    /// descending order, whose ends therefore descend too: if the first one (other than `id`)
    /// ends at or below `base`, so does every later one.
    fn first_overlap(&self, id: i32, base: u64, end: u64) -> Option<&Slot> {
        let start = self.array.partition_point(|s| s.base_gfn >= end);
        self.array[start..]
            .iter()
            .find(|s| s.id != id)
            .filter(|s| base < s.base_gfn + s.npages)
    }

    /// The slot containing `gfn` and its position: the one with the highest base <= gfn, if
    /// it reaches that far (the ones after it end at or below its base).
    fn search(&self, gfn: u64) -> Option<(usize, &Slot)> {
        let i = self.position(gfn);
        let s = self.array.get(i)?;
        (s.base_gfn <= gfn && gfn - s.base_gfn < s.npages).then_some((i, s))
    }
}

/// A slot in the byte layout the C ports copy their entries out in: the runner compares whole
/// arrays of these as bytes. `has_dirty_bitmap` is what the ports must have (a bitmap exactly
/// when dirty logging is on), so equal bytes also mean the ports' bitmaps are right.
pub fn packed_slot(s: &Slot) -> ApiSlot {
    ApiSlot {
        base_gfn: s.base_gfn,
        npages: s.npages,
        userspace_addr: s.userspace_addr,
        flags: s.flags,
        id: s.id as i16,
        has_dirty_bitmap: u8::from(s.flags & KVM_MEM_LOG_DIRTY_PAGES != 0),
        reserved: 0,
    }
}

/// The oracle model. Also the shadow state generators steer by.
#[derive(Clone, Debug)]
pub struct Oracle {
    arch: ArchProfile,
    spaces: Vec<Space>,
    prepare_error: i32,
    reason: Option<String>,
    /// What the last successful request did, see [`Implementation::last_change`].
    last_change: Option<OpKind>,
    /// The address space of the last [`Implementation::quick`] call.
    quick_as: u16,
}

impl Default for Oracle {
    fn default() -> Self {
        Oracle::new()
    }
}

impl Oracle {
    /// A VM without slots at x86-512; the generation of address space `i` starts at `i`.
    pub fn new() -> Oracle {
        Oracle::with_arch(ArchProfile::X86_512)
    }

    /// [`Oracle::new`] at another profile's slot counts.
    pub fn with_arch(arch: ArchProfile) -> Oracle {
        Oracle {
            arch,
            spaces: (0..KVM_ADDRESS_SPACE_NUM)
                .map(|as_id| Space {
                    generation: u64::from(as_id),
                    ..Space::default()
                })
                .collect(),
            prepare_error: 0,
            reason: None,
            last_change: None,
            quick_as: 0,
        }
    }

    /// The slots of an address space in array order (empty for a bad `as_id`).
    pub fn layout(&self, as_id: u16) -> Vec<Slot> {
        self.spaces
            .get(usize::from(as_id))
            .map(|s| s.array.clone())
            .unwrap_or_default()
    }

    /// The slot with this id, if present.
    pub fn get(&self, as_id: u16, id: u16) -> Option<Slot> {
        self.spaces.get(usize::from(as_id))?.slots.get(&id).copied()
    }

    /// Number of slots in an address space.
    pub fn len(&self, as_id: u16) -> usize {
        self.spaces
            .get(usize::from(as_id))
            .map_or(0, |s| s.slots.len())
    }

    /// Whether an address space has no slots.
    pub fn is_empty(&self, as_id: u16) -> bool {
        self.len(as_id) == 0
    }

    /// Apply an operation, ignoring its result (for shadowing a program while generating it).
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Set(r) => {
                let _ = self.request(r, true);
            }
            Op::KSet(r) => {
                let _ = self.request(r, false);
            }
            Op::Set2(r) => {
                let _ = self.request2(r);
            }
            Op::FailPrepare { errno } => self.prepare_error = *errno,
            Op::Lookup { .. } | Op::Id { .. } => {}
        }
    }

    /// `KVM_SET_USER_MEMORY_REGION2` on x86's default VM type: without private memory,
    /// `check_memory_region_flags()` refuses `KVM_MEM_GUEST_MEMFD` as it refuses any flag
    /// outside dirty logging and read-only (step 1 below), and nothing else reads the
    /// guest_memfd fields; the v1 path does the rest.
    pub fn request2(&mut self, r: &Region2) -> Result<Option<Change>, (i32, String)> {
        self.request(&r.region, true)
    }

    /// `kvm_vm_ioctl_set_memory_region` (`ioctl`) or `__kvm_set_memory_region`: the change made
    /// (`None`: a no-op request), or the errno and the validation step that refused.
    pub fn request(&mut self, r: &Region, ioctl: bool) -> Result<Option<Change>, (i32, String)> {
        const EINVAL: i32 = -22;
        const EEXIST: i32 = -17;
        let invalid = |why: &str| Err((EINVAL, why.to_string()));
        let (user_mem_slots, mem_slots_num) =
            (self.arch.user_mem_slots(), self.arch.mem_slots_num());

        // The ioctl wrapper: (u16)slot >= KVM_USER_MEM_SLOTS.
        if ioctl && r.id() >= user_mem_slots {
            return invalid("NotUserSlot");
        }
        // 1. check_memory_region_flags
        if r.flags & !(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY) != 0 {
            return invalid("Flags");
        }
        // 2. as_id = slot >> 16, id = (u16)slot
        let (as_id, id) = (r.as_id(), r.id());
        // 3.-4. alignment
        if !r.memory_size.is_multiple_of(PAGE_SIZE) {
            return invalid("SizeUnaligned");
        }
        if !r.guest_phys_addr.is_multiple_of(PAGE_SIZE) {
            return invalid("GpaUnaligned");
        }
        // 5. user slots: page-aligned hva, and access_ok(hva, size) on x86-64
        if id < user_mem_slots {
            if !r.userspace_addr.is_multiple_of(PAGE_SIZE) {
                return invalid("HvaUnaligned");
            }
            let access_ok = match r.userspace_addr.checked_add(r.memory_size) {
                Some(end) => end <= TASK_SIZE_MAX,
                None => false,
            };
            if !access_ok {
                return invalid("HvaRange");
            }
        }
        // 6. address space and id bounds
        if as_id >= KVM_ADDRESS_SPACE_NUM {
            return invalid("AddressSpace");
        }
        if id >= mem_slots_num {
            return invalid("SlotId");
        }
        // 7. gpa + size must not wrap
        if r.guest_phys_addr.checked_add(r.memory_size).is_none() {
            return invalid("GpaWraps");
        }
        // 8. the new slot, and the old one
        let new = Slot {
            id: i32::from(id),
            base_gfn: r.guest_phys_addr >> PAGE_SHIFT,
            npages: r.memory_size >> PAGE_SHIFT,
            flags: r.flags,
            userspace_addr: r.userspace_addr,
        };
        let space = &self.spaces[usize::from(as_id)];
        let old = space.slots.get(&id).copied();
        let change = if r.memory_size == 0 {
            // 9. delete
            if old.is_none() {
                return invalid("DeleteAbsent");
            }
            Change::Delete
        } else if new.npages > KVM_MEM_MAX_NR_PAGES {
            // 10.
            return invalid("TooManyPages");
        } else {
            match old {
                // 11.
                None => Change::Create,
                // 12.
                Some(old) => {
                    if new.userspace_addr != old.userspace_addr {
                        return invalid("HvaChanged");
                    }
                    if new.npages != old.npages {
                        return invalid("SizeChanged");
                    }
                    if (new.flags ^ old.flags) & KVM_MEM_READONLY != 0 {
                        return invalid("ReadonlyToggled");
                    }
                    if new.base_gfn != old.base_gfn {
                        Change::Move
                    } else if new.flags != old.flags {
                        Change::FlagsOnly
                    } else {
                        return Ok(None);
                    }
                }
            }
        };
        // 13. overlap with another slot of the same address space, first in walk order
        if matches!(change, Change::Create | Change::Move) {
            let end = new.base_gfn + new.npages;
            if let Some(s) = space.first_overlap(new.id, new.base_gfn, end) {
                return Err((EEXIST, format!("Exists(overlaps id {})", s.id)));
            }
        }
        // 14. install: every install adds KVM_ADDRESS_SPACE_NUM; DELETE and MOVE install the
        // INVALID copy first. A failing arch prepare reinstalls the old array (post-patch).
        let step = u64::from(KVM_ADDRESS_SPACE_NUM);
        let space = &mut self.spaces[usize::from(as_id)];
        let installs = if matches!(change, Change::Delete | Change::Move) {
            2
        } else {
            1
        };
        if self.prepare_error != 0 {
            if installs == 2 {
                space.generation += 2 * step;
            }
            return Err((self.prepare_error, format!("Arch({})", self.prepare_error)));
        }
        if change == Change::Delete {
            space.remove(id);
        } else {
            space.insert(new);
        }
        space.generation += installs * step;
        Ok(Some(change))
    }

    fn rc(&mut self, result: Result<Option<Change>, (i32, String)>) -> i32 {
        self.last_change = match &result {
            Ok(None) => Some(OpKind::NoOp),
            Ok(Some(Change::Create)) => Some(OpKind::Create),
            Ok(Some(Change::Delete)) => Some(OpKind::Delete),
            Ok(Some(Change::Move)) => Some(OpKind::Move),
            Ok(Some(Change::FlagsOnly)) => Some(OpKind::FlagsOnly),
            Err(_) => None,
        };
        match result {
            Ok(_) => {
                self.reason = None;
                0
            }
            Err((errno, why)) => {
                self.reason = Some(why);
                errno
            }
        }
    }
}

/// The ids of the slots whose `[first, last)` (from `range`) shares a point with
/// `[start, end)`, in array order: max of the starts below min of the ends.
fn intersecting(
    array: &[Slot],
    range: impl Fn(&Slot) -> (u128, u128),
    start: u64,
    end: u64,
    out: &mut Vec<i32>,
) -> bool {
    out.clear();
    out.extend(
        array
            .iter()
            .filter(|s| {
                let (first, last) = range(s);
                first.max(u128::from(start)) < last.min(u128::from(end))
            })
            .map(|s| s.id),
    );
    true
}

impl Implementation for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn arch(&self) -> ArchProfile {
        self.arch
    }

    fn last_change(&self) -> Option<OpKind> {
        self.last_change
    }

    fn set_user_memory_region(&mut self, r: &Region) -> i32 {
        let result = self.request(r, true);
        self.rc(result)
    }

    fn set_memory_region(&mut self, r: &Region) -> i32 {
        let result = self.request(r, false);
        self.rc(result)
    }

    fn set_user_memory_region2(&mut self, r: &Region2) -> i32 {
        let result = self.request2(r);
        self.rc(result)
    }

    fn last_reason(&self) -> Option<String> {
        self.reason.clone()
    }

    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found> {
        let space = self.spaces.get(usize::from(as_id))?;
        let (index, slot) = space.search(gfn)?;
        Some(Found {
            index: index as i64,
            slot: Some(*slot),
        })
    }

    fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<Found> {
        let space = self.spaces.get(usize::from(as_id))?;
        let slot = space.slots.get(&id)?;
        Some(Found {
            index: space.rank(id),
            slot: Some(*slot),
        })
    }

    /// Every slot in array order whose pages intersect `[start, end)`.
    fn gfn_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        let Some(space) = self.spaces.get(usize::from(as_id)) else {
            return false;
        };
        let pages = |s: &Slot| (u128::from(s.base_gfn), u128::from(s.base_gfn + s.npages));
        intersecting(&space.array, pages, start, end, out)
    }

    /// Every slot in array order whose host bytes intersect `[start, end)`; a host range that
    /// would pass 2^64 ends there.
    fn hva_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        let Some(space) = self.spaces.get(usize::from(as_id)) else {
            return false;
        };
        let bytes = |s: &Slot| {
            let first = u128::from(s.userspace_addr);
            let last = first + (u128::from(s.npages) << PAGE_SHIFT);
            (first, last.min(u128::from(u64::MAX)))
        };
        intersecting(&space.array, bytes, start, end, out)
    }

    fn summary(&mut self, as_id: u16) -> (u64, i64) {
        let space = &self.spaces[usize::from(as_id)];
        (space.generation, space.slots.len() as i64)
    }

    fn snapshot_into(&mut self, as_id: u16, _full: bool, out: &mut SpaceSnapshot) {
        let space = &self.spaces[usize::from(as_id)];
        out.generation = space.generation;
        out.used_slots = space.array.len() as i64;
        out.slots.clone_from(&space.array);
        out.index.clear();
        out.index.extend(
            space
                .array
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id as u16, i as i64)),
        );
        out.index.sort_unstable();
        out.walk.clear();
        out.walk.extend(space.array.iter().map(|s| s.id));
        out.lru = None;
    }

    fn lru(&mut self, _as_id: u16) -> Option<i64> {
        None
    }

    fn set_lru(&mut self, _as_id: u16, _lru: i64) {}

    fn check_invariants(&mut self, _as_ids: &[u16], _full: bool) -> Result<(), String> {
        Ok(())
    }

    fn set_prepare_error(&mut self, errno: i32) {
        self.prepare_error = errno;
    }

    fn quick(&mut self, as_id: u16) -> Option<Quick> {
        let space = self.spaces.get(usize::from(as_id))?;
        self.quick_as = as_id;
        Some(Quick {
            generation: space.generation,
            used_slots: space.array.len() as i64,
            lru: None,
            // `snapshot_into` derives the index (each entry's rank) and the walk from the
            // array itself: both hold by construction.
            index_is_inverse: true,
            walk_is_array: true,
        })
    }

    fn quick_array(&self) -> &[ApiSlot] {
        &self.spaces[usize::from(self.quick_as)].packed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(o: &mut Oracle, as_id: u16, id: u16, gpa: u64, size: u64, flags: u32) -> i32 {
        o.set_user_memory_region(&Region::new(as_id, id, gpa, size, 0x1000_0000, flags))
    }

    #[test]
    fn follows_the_kernel_rules() {
        let mut o = Oracle::new();
        assert_eq!(set(&mut o, 0, 1, 0x10000, 0x4000, 0), 0);
        assert_eq!(o.summary(0), (2, 1));
        assert_eq!(set(&mut o, 0, 2, 0x13000, 0x1000, 0), -17);
        assert_eq!(o.last_reason().as_deref(), Some("Exists(overlaps id 1)"));
        assert_eq!(set(&mut o, 0, 2, 0x14000, 0x1000, 0), 0);
        // no-op, flags-only, readonly toggle, move over itself, delete, delete absent
        assert_eq!(set(&mut o, 0, 2, 0x14000, 0x1000, 0), 0);
        assert_eq!(o.summary(0), (4, 2));
        assert_eq!(set(&mut o, 0, 2, 0x14000, 0x1000, 1), 0);
        assert_eq!(set(&mut o, 0, 2, 0x14000, 0x1000, 2), -22);
        assert_eq!(o.last_reason().as_deref(), Some("ReadonlyToggled"));
        assert_eq!(set(&mut o, 0, 1, 0x11000, 0x4000, 0), -17);
        assert_eq!(set(&mut o, 0, 1, 0x0f000, 0x4000, 0), 0);
        assert_eq!(o.summary(0), (10, 2));
        let snap = o.snapshot(0, true);
        assert_eq!(snap.walk, vec![2, 1]);
        assert_eq!(snap.index, vec![(1, 1), (2, 0)]);
        assert_eq!(o.search(0, 0x12).map(|f| f.index), Some(1));
        assert_eq!(o.search(0, 0x13), None);
        assert_eq!(set(&mut o, 0, 1, 0, 0, 0), 0);
        assert_eq!(set(&mut o, 0, 1, 0, 0, 0), -22);
        assert_eq!(o.last_reason().as_deref(), Some("DeleteAbsent"));
        assert_eq!(o.summary(0), (14, 1));
        assert_eq!(o.summary(1), (1, 0));
        assert_eq!(set(&mut o, 0, 509, 0, 0x1000, 0), -22);
        assert_eq!(o.last_reason().as_deref(), Some("NotUserSlot"));
        assert_eq!(
            o.set_memory_region(&Region::new(1, 509, 0xfeffd000, 0x3000, 0x123, 0)),
            0
        );
        assert_eq!(o.summary(1), (3, 1));
    }

    #[test]
    fn failing_prepare_reinstalls_the_old_array() {
        let mut o = Oracle::new();
        assert_eq!(set(&mut o, 0, 1, 0, 0x1000, 0), 0);
        o.set_prepare_error(-12);
        assert_eq!(set(&mut o, 0, 1, 0, 0, 0), -12);
        assert_eq!(o.summary(0), (6, 1));
        assert_eq!(set(&mut o, 0, 2, 0x1000, 0x1000, 0), -12);
        assert_eq!(o.summary(0), (6, 1));
    }
}
