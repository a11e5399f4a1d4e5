//! The oracle: a model of KVM memslots written to be obviously correct rather than fast.
//!
//! Slots live in a `BTreeMap` by id, one per address space. Validation is transcribed step by
//! step from the kernel's `__kvm_set_memory_region` (kvm-memslot-facts.md §2.8) with post-patch
//! behaviour on a failing arch prepare (§2.7). Lookups are linear scans. Its "array" is the
//! slots sorted by base GFN, highest first, and the index of an id is its rank in that order.
//! It has no LRU hint and no WARNs. It shares no code with the core or the ports.

use std::collections::BTreeMap;

use super::{Found, Implementation, Slot, SpaceSnapshot};
use crate::ops::{
    Op, Region, KVM_ADDRESS_SPACE_NUM, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_MAX_NR_PAGES,
    KVM_MEM_READONLY, KVM_MEM_SLOTS_NUM, KVM_USER_MEM_SLOTS, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX,
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
    /// The slots sorted by base GFN, highest first: the kernel's array order. Rebuilt from
    /// `slots` after every change.
    array: Vec<Slot>,
}

impl Space {
    fn rebuild(&mut self) {
        self.array = self.slots.values().copied().collect();
        self.array.sort_by_key(|s| std::cmp::Reverse(s.base_gfn));
    }

    /// The position of a slot in array order.
    fn rank(&self, id: u16) -> i64 {
        self.array
            .iter()
            .position(|s| s.id == i32::from(id))
            .map_or(-1, |i| i as i64)
    }
}

/// The oracle model. Also the shadow state generators steer by.
#[derive(Clone, Debug)]
pub struct Oracle {
    spaces: Vec<Space>,
    prepare_error: i32,
    reason: Option<String>,
}

impl Default for Oracle {
    fn default() -> Self {
        Oracle::new()
    }
}

impl Oracle {
    /// A VM without slots; the generation of address space `i` starts at `i`.
    pub fn new() -> Oracle {
        Oracle {
            spaces: (0..KVM_ADDRESS_SPACE_NUM)
                .map(|as_id| Space {
                    generation: u64::from(as_id),
                    ..Space::default()
                })
                .collect(),
            prepare_error: 0,
            reason: None,
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
            Op::FailPrepare { errno } => self.prepare_error = *errno,
            Op::Lookup { .. } | Op::Id { .. } => {}
        }
    }

    /// `kvm_vm_ioctl_set_memory_region` (`ioctl`) or `__kvm_set_memory_region`: the change made
    /// (`None`: a no-op request), or the errno and the validation step that refused.
    pub fn request(&mut self, r: &Region, ioctl: bool) -> Result<Option<Change>, (i32, String)> {
        const EINVAL: i32 = -22;
        const EEXIST: i32 = -17;
        let invalid = |why: &str| Err((EINVAL, why.to_string()));

        // The ioctl wrapper: (u16)slot >= KVM_USER_MEM_SLOTS.
        if ioctl && r.id() >= KVM_USER_MEM_SLOTS {
            return invalid("NotUserSlot");
        }
        // 1. check_memory_region_flags
        if r.flags & !(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY) != 0 {
            return invalid("Flags");
        }
        // 2. as_id = slot >> 16, id = (u16)slot
        let (as_id, id) = (r.as_id(), r.id());
        // 3.-4. alignment
        if r.memory_size % PAGE_SIZE != 0 {
            return invalid("SizeUnaligned");
        }
        if r.guest_phys_addr % PAGE_SIZE != 0 {
            return invalid("GpaUnaligned");
        }
        // 5. user slots: page-aligned hva, and access_ok(hva, size) on x86-64
        if id < KVM_USER_MEM_SLOTS {
            if r.userspace_addr % PAGE_SIZE != 0 {
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
        if id >= KVM_MEM_SLOTS_NUM {
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
            let overlap = space.array.iter().find(|s| {
                s.id != new.id && !(end <= s.base_gfn || new.base_gfn >= s.base_gfn + s.npages)
            });
            if let Some(s) = overlap {
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
            space.slots.remove(&id);
        } else {
            space.slots.insert(id, new);
        }
        space.rebuild();
        space.generation += installs * step;
        Ok(Some(change))
    }

    fn rc(&mut self, result: Result<Option<Change>, (i32, String)>) -> i32 {
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

impl Implementation for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn set_user_memory_region(&mut self, r: &Region) -> i32 {
        let result = self.request(r, true);
        self.rc(result)
    }

    fn set_memory_region(&mut self, r: &Region) -> i32 {
        let result = self.request(r, false);
        self.rc(result)
    }

    fn last_reason(&self) -> Option<String> {
        self.reason.clone()
    }

    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found> {
        let space = self.spaces.get(usize::from(as_id))?;
        let index = space
            .array
            .iter()
            .position(|s| s.base_gfn <= gfn && gfn - s.base_gfn < s.npages)?;
        Some(Found {
            index: index as i64,
            slot: Some(space.array[index]),
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
