//! One address space's slots (`struct kvm_memslots`) and the post-patch array algorithms.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[cfg(feature = "fault-injection")]
use crate::fault::Fault;
use crate::set::{overlaps_gfn, overlaps_hva, MemslotSet};
use crate::slot::{Change, MemorySlot};

/// `pick!(self, Fault, broken, correct)`: `broken` when that fault is armed. Without the
/// `fault-injection` feature it expands to `correct` alone, so the faults cost nothing.
#[cfg(feature = "fault-injection")]
macro_rules! pick {
    ($s:ident, $fault:ident, $broken:expr, $correct:expr) => {
        if $s.fault == Some(Fault::$fault) {
            $broken
        } else {
            $correct
        }
    };
}
#[cfg(not(feature = "fault-injection"))]
macro_rules! pick {
    ($s:ident, $fault:ident, $broken:expr, $correct:expr) => {
        $correct
    };
}

/// A request `update_memslots` cannot perform. The kernel WARNs (and, for MOVE of an absent
/// id, writes `memslots[-1]`); we refuse and leave the state untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// MOVE, FLAGS_ONLY or DELETE of an id that has no slot.
    AbsentId(u16),
    /// No slot is in use, yet the id has an index (reachable only with an injected fault).
    Empty,
    /// The id is at or above `mem_slots_num`.
    IdOutOfRange(u16),
    /// CREATE of an id that already has a slot (the kernel does not check; it would duplicate).
    AlreadyPresent(u16),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::AbsentId(id) => write!(f, "slot {id} does not exist"),
            UpdateError::Empty => f.write_str("no slot in use"),
            UpdateError::IdOutOfRange(id) => write!(f, "slot id {id} out of range"),
            UpdateError::AlreadyPresent(id) => write!(f, "slot {id} already exists"),
        }
    }
}

impl std::error::Error for UpdateError {}

/// The slots of one address space: an array sorted by `base_gfn`, highest first, holding
/// exactly `used_slots` entries, plus the id to index map, the LRU hint and the generation.
#[derive(Debug)]
pub struct Memslots {
    slots: Vec<MemorySlot>,
    /// `id_to_index`: one entry per id below `mem_slots_num`; `None` is the kernel's -1.
    /// u16 suffices: ids are u16, so there are never more than 2^16 slots.
    index: Vec<Option<u16>>,
    /// Atomic because lookups take `&self` and, as in the kernel, still move the hint.
    lru: AtomicUsize,
    generation: u64,
    #[cfg(feature = "fault-injection")]
    fault: Option<Fault>,
}

impl Clone for Memslots {
    fn clone(&self) -> Self {
        Memslots {
            slots: self.slots.clone(),
            index: self.index.clone(),
            lru: AtomicUsize::new(self.lru_slot()),
            generation: self.generation,
            #[cfg(feature = "fault-injection")]
            fault: self.fault,
        }
    }
}

impl Memslots {
    /// An empty address space for ids `0..mem_slots_num` (`kvm_alloc_memslots`).
    pub fn new(mem_slots_num: usize, generation: u64) -> Memslots {
        Memslots {
            slots: Vec::new(),
            index: vec![None; mem_slots_num.min(1 << 16)],
            lru: AtomicUsize::new(0),
            generation,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }

    /// The generation of the installed array.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The number of slots in use.
    pub fn used_slots(&self) -> usize {
        self.slots.len()
    }

    /// The LRU hint; may equal `used_slots` after a delete, then it never hits.
    pub fn lru_slot(&self) -> usize {
        self.lru.load(Relaxed)
    }

    /// Overwrite the LRU hint, e.g. to restore it after probing lookups.
    pub fn set_lru_slot(&self, index: usize) {
        self.lru.store(index, Relaxed);
    }

    /// The array: index 0 holds the highest `base_gfn`.
    pub fn slots(&self) -> &[MemorySlot] {
        &self.slots
    }

    /// `id_to_index[id]`; `None` for an absent or out-of-range id.
    pub fn index_of(&self, id: u16) -> Option<usize> {
        self.index
            .get(usize::from(id))
            .copied()
            .flatten()
            .map(usize::from)
    }

    /// `id_to_memslot`: the slot with this id, if any.
    pub fn id_to_memslot(&self, id: u16) -> Option<&MemorySlot> {
        self.slots.get(self.index_of(id)?)
    }

    /// `search_memslots`: the slot containing `gfn`, updating the LRU hint as the kernel does.
    pub fn search(&self, gfn: u64) -> Option<&MemorySlot> {
        self.slots.get(self.search_index(gfn)?)
    }

    /// `search_memslots`, returning the array index.
    pub fn search_index(&self, gfn: u64) -> Option<usize> {
        // The kernel probes memslots[lru] unchecked; past used_slots it only ever finds
        // npages == 0 entries, so "out of range" and "miss" are the same thing.
        let lru = self.lru_slot();
        if self.slots.get(lru).is_some_and(|s| self.hit(s, gfn)) {
            return Some(lru);
        }
        // The kernel's binary search: the first index whose base is at or below gfn (bases
        // descend). partition_point finds the same index without a branch per step.
        let lo = self.slots.partition_point(|s| gfn < s.base_gfn);
        // lo == used_slots reads an npages == 0 entry in the kernel: a miss.
        if !self.slots.get(lo).is_some_and(|s| self.hit(s, gfn)) {
            return None;
        }
        pick!(self, LruNotUpdated, (), self.set_lru_slot(lo));
        Some(lo)
    }

    fn hit(&self, s: &MemorySlot, gfn: u64) -> bool {
        pick!(
            self,
            SearchEndInclusive,
            gfn >= s.base_gfn && gfn - s.base_gfn <= s.npages,
            s.contains(gfn)
        )
    }

    /// `kvm_for_each_memslot`: the slots in array order.
    pub fn iter(&self) -> std::slice::Iter<'_, MemorySlot> {
        self.slots.iter()
    }

    /// `update_memslots`: apply `change` for `slot` (its id selects the slot; for Delete only
    /// the id matters). Returns the slot's final index (for Delete: the index it had).
    pub fn update(&mut self, slot: &MemorySlot, change: Change) -> Result<usize, UpdateError> {
        let id = slot.id;
        if usize::from(id) >= self.index.len() {
            return Err(UpdateError::IdOutOfRange(id));
        }
        let i = match change {
            Change::Delete => return self.delete(id),
            Change::Create => {
                if self.index_of(id).is_some() {
                    return Err(UpdateError::AlreadyPresent(id));
                }
                // kvm_memslot_insert_back: i = used_slots++. The pushed copy is only a
                // placeholder; move_forward shifts over it and the final store overwrites it.
                self.slots.push(*slot);
                self.slots.len() - 1
            }
            Change::Move | Change::FlagsOnly => self.move_backward(slot)?,
        };
        let i = self.move_forward(slot, i);
        self.slots[i] = *slot;
        self.set_index(id, Some(i));
        Ok(i)
    }

    /// The current index of an id that must have a slot (the checks of delete/move_backward).
    fn existing(&self, id: u16) -> Result<usize, UpdateError> {
        let i = self.index_of(id).ok_or(UpdateError::AbsentId(id))?;
        if self.slots.is_empty() {
            return Err(UpdateError::Empty);
        }
        // A stale index (only possible with an injected fault) counts as absent.
        if i >= self.slots.len() {
            return Err(UpdateError::AbsentId(id));
        }
        Ok(i)
    }

    /// `kvm_memslot_delete`: shift the tail forward over the slot.
    fn delete(&mut self, id: u16) -> Result<usize, UpdateError> {
        let i = self.existing(id)?;
        self.slots.remove(i);
        for j in i..self.slots.len() {
            self.set_index(self.slots[j].id, Some(j));
        }
        pick!(self, DeleteKeepsIndex, (), self.set_index(id, None));
        // No LRU reset here: that came with 0774a964 (v5.7). A hint left at used_slots is
        // harmless, it just never hits.
        Ok(i)
    }

    /// `kvm_memslot_move_backward`: shift slots with a base >= the new one's towards the
    /// front, so the slot's hole moves towards the back (lower GFNs).
    fn move_backward(&mut self, new: &MemorySlot) -> Result<usize, UpdateError> {
        let mut i = self.existing(new.id)?;
        while i + pick!(self, MoveBackwardStopsEarly, 2, 1) < self.slots.len() {
            let next = self.slots[i + 1];
            if new.base_gfn > next.base_gfn {
                break;
            }
            self.slots[i] = next;
            self.set_index(next.id, Some(i));
            i += 1;
        }
        Ok(i)
    }

    /// `kvm_memslot_move_forward`: shift slots with a base <= the new one's towards the back,
    /// so the hole moves towards the front (higher GFNs). Returns the final index.
    fn move_forward(&mut self, new: &MemorySlot, mut i: usize) -> usize {
        while i > pick!(self, MoveForwardOffByOne, 1, 0) {
            let prev = self.slots[i - 1];
            if new.base_gfn < prev.base_gfn {
                break;
            }
            self.slots[i] = prev;
            self.set_index(prev.id, Some(i));
            i -= 1;
        }
        i
    }

    fn set_index(&mut self, id: u16, i: Option<usize>) {
        if let Some(entry) = self.index.get_mut(usize::from(id)) {
            // Indices fit in u16: ids are unique u16 values, so used_slots <= 2^16.
            *entry = i.map(|i| i as u16);
        }
    }

    /// Account for one install of a new array (`install_new_memslots`).
    pub(crate) fn install(&mut self, step: u64) {
        self.generation = self.generation.wrapping_add(step);
    }

    /// Check the structural invariants: strictly descending bases, no overlap, npages > 0,
    /// the index map is exactly the inverse of the array, and the LRU hint is below
    /// `mem_slots_num` (it may equal `used_slots`).
    pub fn check_invariants(&self) -> Result<(), String> {
        for (i, s) in self.slots.iter().enumerate() {
            if s.npages == 0 {
                return Err(format!("slot {} at index {i} has npages 0", s.id));
            }
            if self.index_of(s.id) != Some(i) {
                let got = self.index_of(s.id);
                return Err(format!("slot {} at index {i}, id_to_index {got:?}", s.id));
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &self.slots[p]) {
                if prev.base_gfn <= s.base_gfn {
                    return Err(format!("bases not descending at index {i}"));
                }
                if s.end_gfn() > prev.base_gfn {
                    return Err(format!("slots {} and {} overlap", prev.id, s.id));
                }
            }
        }
        // Every array entry points back at itself, so any other present id is stale.
        let present = self.index.iter().filter(|i| i.is_some()).count();
        if present != self.slots.len() {
            return Err(format!("{present} ids indexed, {} slots", self.slots.len()));
        }
        let lru = self.lru_slot();
        if lru != 0 && lru >= self.index.len() {
            return Err(format!("lru_slot {lru} out of range"));
        }
        Ok(())
    }
}

/// The array backend: `kvm_set_memslot` at the seed's state, where each install publishes a
/// new array and only its generation step is observable here (nothing reads concurrently),
/// and the range queries answering what the linear walks of the kernel of that time found.
impl MemslotSet for Memslots {
    type Walk<'a> = std::slice::Iter<'a, MemorySlot>;

    fn new_set(mem_slots_num: usize, generation: u64) -> Self {
        Memslots::new(mem_slots_num, generation)
    }

    fn generation(&self) -> u64 {
        Memslots::generation(self)
    }

    fn used_slots(&self) -> usize {
        Memslots::used_slots(self)
    }

    fn id_to_memslot(&self, id: u16) -> Option<&MemorySlot> {
        Memslots::id_to_memslot(self, id)
    }

    fn search(&self, gfn: u64) -> Option<&MemorySlot> {
        Memslots::search(self, gfn)
    }

    fn walk(&self) -> Self::Walk<'_> {
        self.slots.iter()
    }

    fn first_overlap(&self, id: u16, base_gfn: u64, end_gfn: u64) -> Option<&MemorySlot> {
        self.slots
            .iter()
            .find(|s| s.id != id && overlaps_gfn(s, base_gfn, end_gfn))
    }

    /// From the highest slot below `end`, down while the slots reach `start`: the slots are
    /// disjoint and sorted, so their ends descend with their bases (as in the tree backend).
    fn in_gfn_range(&self, start: u64, end: u64) -> Vec<&MemorySlot> {
        if end <= start {
            return Vec::new();
        }
        let below_end = self.slots.partition_point(|s| s.base_gfn >= end);
        self.slots[below_end..]
            .iter()
            .take_while(|s| s.end_gfn() > start)
            .collect()
    }

    fn in_hva_range(&self, start: u64, end: u64) -> Vec<&MemorySlot> {
        if end <= start {
            return Vec::new();
        }
        self.slots
            .iter()
            .filter(|s| overlaps_hva(s, start, end))
            .collect()
    }

    fn invalidate(&mut self, _id: u16, step: u64) -> Result<(), UpdateError> {
        // The INVALID copy is a whole new array, installed and replaced again before
        // anything here can read it: only its generation step remains.
        self.install(step);
        Ok(())
    }

    fn restore(&mut self, _id: u16, step: u64) -> Result<(), UpdateError> {
        // Post-patch: the old array goes back (pre-patch left the INVALID copy installed).
        self.install(step);
        Ok(())
    }

    fn commit(&mut self, new: &MemorySlot, change: Change, step: u64) -> Result<(), UpdateError> {
        self.update(new, change)?;
        self.install(step);
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), String> {
        Memslots::check_invariants(self)
    }

    #[cfg(feature = "fault-injection")]
    fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: u16, base_gfn: u64, npages: u64) -> MemorySlot {
        MemorySlot {
            id,
            base_gfn,
            npages,
            flags: 0,
            userspace_addr: 0,
        }
    }

    fn ids(m: &Memslots) -> Vec<u16> {
        m.iter().map(|s| s.id).collect()
    }

    #[test]
    fn update_refuses_what_the_kernel_would_warn_about() {
        let mut m = Memslots::new(8, 0);
        let s = slot(1, 10, 1);
        assert_eq!(m.update(&s, Change::Move), Err(UpdateError::AbsentId(1)));
        assert_eq!(m.update(&s, Change::Delete), Err(UpdateError::AbsentId(1)));
        assert_eq!(
            m.update(&slot(8, 0, 1), Change::Create),
            Err(UpdateError::IdOutOfRange(8))
        );
        assert_eq!(m.update(&s, Change::Create), Ok(0));
        assert_eq!(
            m.update(&s, Change::Create),
            Err(UpdateError::AlreadyPresent(1))
        );
        assert_eq!(
            m.update(&slot(2, 0, 1), Change::FlagsOnly),
            Err(UpdateError::AbsentId(2))
        );
        assert_eq!(ids(&m), [1]);
        m.check_invariants().unwrap();
    }

    #[test]
    fn invariants_catch_a_broken_index() {
        let mut m = Memslots::new(4, 0);
        m.update(&slot(0, 0, 1), Change::Create).unwrap();
        m.index[3] = Some(0);
        assert!(m.check_invariants().is_err());
        m.index[3] = None;
        m.set_lru_slot(4);
        assert!(m.check_invariants().is_err());
    }
}
