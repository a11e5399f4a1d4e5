//! The tree backend: the design of "KVM: Scalable memslots implementation" (Linux v5.17,
//! kvm-memslot-facts.md §4). Slot data is separate from slot *sets*; each address space has
//! two sets, one active and one inactive, and every change is made to the inactive one, which
//! is then swapped in (one install, one generation step) before the other is brought back in
//! sync, so that a reader of the active set never sees a half-made change. A set holds an id
//! hash, a tree ordered by base GFN, an interval index over host addresses and a last-used-slot
//! cache. Both sets point at the same slot objects (`Arc`s) between updates.

use std::collections::BTreeMap;
use std::iter::Rev;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};
use std::sync::Arc;

#[cfg(feature = "fault-injection")]
use crate::fault::Fault;
use crate::interval::IntervalTree;
use crate::memslots::UpdateError;
use crate::set::{hva_end, overlaps_hva, MemslotSet};
use crate::slot::{Change, MemorySlot, KVM_MEMSLOT_INVALID};

type Slot = Arc<MemorySlot>;

/// `id_hash`. The kernel hashes ids into buckets; ids here are dense integers below the set's
/// `mem_slots_num`, so the table is indexed by the id itself: a hash whose function is the
/// identity and which has no collisions. A lookup is one bounds check, where a general hash
/// map probes a bucket group; the id hash is read on every `id_to_memslot` and, per slot, by
/// every invariant check.
#[derive(Clone, Debug, Default)]
struct IdHash {
    slots: Vec<Option<Slot>>,
    len: usize,
}

impl IdHash {
    fn get(&self, id: &u16) -> Option<&Slot> {
        self.slots.get(usize::from(*id))?.as_ref()
    }

    fn contains_key(&self, id: &u16) -> bool {
        self.get(id).is_some()
    }

    /// Files `slot` under `id`; returns the slot it displaces.
    fn insert(&mut self, id: u16, slot: Slot) -> Option<Slot> {
        let i = usize::from(id);
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        let old = self.slots[i].replace(slot);
        self.len += usize::from(old.is_none());
        old
    }

    fn remove(&mut self, id: &u16) -> Option<Slot> {
        let old = self.slots.get_mut(usize::from(*id))?.take();
        self.len -= usize::from(old.is_some());
        old
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
impl std::ops::Index<&u16> for IdHash {
    type Output = Slot;

    fn index(&self, id: &u16) -> &Slot {
        self.get(id).expect("id in the hash")
    }
}

/// `last_used_slot`: a pointer to the slot, as in the kernel, so that a lookup it answers
/// costs what the array's LRU probe costs. Atomic because lookups take `&self` and still
/// update it, as in the kernel.
///
/// Invariant (what makes [`LastUsed::get`] sound): the pointer is null or points at the
/// `MemorySlot` inside an `Arc` that the id hash or the GFN tree of the set owning this
/// cache holds. An `Arc` leaves either only in [`SlotSet::replace`],
/// [`SlotSet::replace_in_place`] and [`SlotSet::hash`], which pass it to
/// [`SlotSet::forget`] to move the pointer off it while it is still alive (whatever the
/// caller's `old`, and even if the indices disagreed); lookups, the only
/// writers through `&self`, store pointers to slots of the same set; a cloned set clones the
/// `Arc`s, so its copy of the pointer names a slot it holds too. [`SlotSet::check`] verifies
/// the invariant.
#[derive(Debug)]
struct LastUsed(AtomicPtr<MemorySlot>);

impl LastUsed {
    fn new() -> LastUsed {
        LastUsed(AtomicPtr::new(ptr::null_mut()))
    }

    fn set(&self, slot: Option<&MemorySlot>) {
        let p = slot.map_or(ptr::null_mut(), |s| ptr::from_ref(s).cast_mut());
        self.0.store(p, Relaxed);
    }

    /// Whether the cache points at `slot` (without reading through the pointer).
    fn points_at(&self, slot: &MemorySlot) -> bool {
        ptr::eq(self.0.load(Relaxed), slot)
    }

    /// The cached slot.
    // The one unsafe block of the crate. A safe cache (the slot's id, then the id hash) made
    // a last-used hit 15-20% slower than the array's LRU hit at 509 slots (2.6-3.6 ns
    // against 2.2-2.4 ns, benches/backends.rs), beyond the 10% the tree may cost there.
    #[allow(unsafe_code)]
    fn get(&self) -> Option<&MemorySlot> {
        let p = self.0.load(Relaxed);
        // SAFETY: by the invariant above, a non-null pointer points at a live `MemorySlot`
        // owned by an `Arc` in the id hash or GFN tree of the set that owns `self`. That
        // `Arc` is only dropped through `&mut` access to the set, which the shared borrow of
        // `self` (part of the set) excludes for the lifetime of the returned reference; and
        // a `MemorySlot` in an `Arc` is never mutated.
        unsafe { p.cast_const().as_ref() }
    }
}

impl Clone for LastUsed {
    fn clone(&self) -> Self {
        LastUsed(AtomicPtr::new(self.0.load(Relaxed)))
    }
}

/// One `struct kvm_memslots` of the tree design.
#[derive(Debug)]
struct SlotSet {
    generation: u64,
    /// `id_hash`.
    id_hash: IdHash,
    /// `gfn_tree`: GFN ranges never overlap, so the base GFN is a key.
    gfn_tree: BTreeMap<u64, Slot>,
    /// `hva_tree`: host ranges may overlap.
    hva_tree: IntervalTree<Slot>,
    /// `last_used_slot`.
    last_used: LastUsed,
}

impl Clone for SlotSet {
    fn clone(&self) -> Self {
        SlotSet {
            generation: self.generation,
            id_hash: self.id_hash.clone(),
            gfn_tree: self.gfn_tree.clone(),
            hva_tree: self.hva_tree.clone(),
            last_used: self.last_used.clone(),
        }
    }
}

impl SlotSet {
    fn new(generation: u64) -> SlotSet {
        SlotSet {
            generation,
            id_hash: IdHash::default(),
            gfn_tree: BTreeMap::new(),
            hva_tree: IntervalTree::default(),
            last_used: LastUsed::new(),
        }
    }

    /// `kvm_replace_memslot` on this set: take `old` out of every index, put `new` in.
    /// Either may be absent (CREATE, DELETE). The last-used cache follows `old` to `new`.
    fn replace(&mut self, old: Option<&Slot>, new: Option<&Slot>) {
        if let (Some(old), Some(new)) = (old, new) {
            if old.id == new.id {
                self.replace_in_place(old, new);
                return;
            }
        }
        if let Some(old) = old {
            if let Some(gone) = self.id_hash.remove(&old.id) {
                self.forget(&gone, new);
            }
            if let Some(gone) = self.gfn_tree.remove(&old.base_gfn) {
                self.forget(&gone, new);
            }
            self.hva_tree.remove((old.userspace_addr, old.id));
        }
        if let Some(new) = new {
            self.hash(new);
            if let Some(gone) = self.gfn_tree.insert(new.base_gfn, Arc::clone(new)) {
                self.forget(&gone, Some(new));
            }
            self.hva_tree
                .insert((new.userspace_addr, new.id), hva_end(new), Arc::clone(new));
        }
    }

    /// [`SlotSet::replace`] of a slot by a new version of itself: each index whose key did
    /// not change has its entry overwritten where it is (FLAGS_ONLY, the INVALID copy and
    /// back, the host range of a MOVE), as the kernel does with `rb_replace_node`. The
    /// last-used cache follows the slot.
    fn replace_in_place(&mut self, old: &Slot, new: &Slot) {
        self.hash(new);
        // Same base: `insert` overwrites the entry where it is.
        let moved = (old.base_gfn != new.base_gfn)
            .then(|| self.gfn_tree.remove(&old.base_gfn))
            .flatten();
        let replaced = self.gfn_tree.insert(new.base_gfn, Arc::clone(new));
        for gone in moved.iter().chain(replaced.iter()) {
            self.forget(gone, Some(new));
        }
        let (old_key, new_key) = ((old.userspace_addr, old.id), (new.userspace_addr, new.id));
        let end = hva_end(new);
        let in_place = old_key == new_key && hva_end(old) == end;
        if !in_place
            || self
                .hva_tree
                .replace(new_key, end, Arc::clone(new))
                .is_err()
        {
            self.hva_tree.remove(old_key);
            self.hva_tree.insert(new_key, end, Arc::clone(new));
        }
    }

    /// Puts `new` in the id hash; the cache follows a slot it displaces.
    fn hash(&mut self, new: &Slot) {
        if let Some(gone) = self.id_hash.insert(new.id, Arc::clone(new)) {
            self.forget(&gone, Some(new));
        }
    }

    /// `gone` has left the id hash or the GFN tree: if the last-used cache points at it, it
    /// points at `next` from now on (the kernel's "last_used_slot follows old to new"). Every
    /// slot that leaves either passes here before it can be dropped (see [`LastUsed`]).
    fn forget(&self, gone: &Slot, next: Option<&Slot>) {
        if self.last_used.points_at(gone) {
            self.last_used.set(next.map(|n| &**n));
        }
    }

    fn last_used(&self) -> Option<&MemorySlot> {
        self.last_used.get()
    }

    /// The three indexes hold as many slots, and every host-tree entry is the slot hashed
    /// under its id, filed under that slot's host range (the tree's own invariants are
    /// checked on the way). The GFN tree is checked with the other set's, in
    /// [`TreeMemslots::check_invariants`].
    fn check_indexes(&self) -> Result<(), String> {
        let n = self.id_hash.len();
        if self.gfn_tree.len() != n || self.hva_tree.len() != n {
            return Err(format!(
                "{n} ids hashed, {} in the gfn tree, {} in the hva tree",
                self.gfn_tree.len(),
                self.hva_tree.len()
            ));
        }
        self.hva_tree.check_each(|(start, id), end, s| {
            self.id_hash.get(&id).is_some_and(|h| Arc::ptr_eq(h, s))
                && start == s.userspace_addr
                && end == hva_end(s)
        })
    }
}

/// The walk of the tree backend: the GFN tree, highest base first.
pub struct TreeWalk<'a>(Rev<std::collections::btree_map::Values<'a, u64, Slot>>);

impl<'a> Iterator for TreeWalk<'a> {
    type Item = &'a MemorySlot;

    fn next(&mut self) -> Option<&'a MemorySlot> {
        self.0.next().map(|s| &**s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// One address space of the tree backend: the two sets (`kvm->__memslots[as_id][2]`) and
/// which of them is active.
#[derive(Clone, Debug)]
pub struct TreeMemslots {
    sets: [SlotSet; 2],
    active: usize,
    mem_slots_num: usize,
    /// Between [`MemslotSet::invalidate`] and the end of the request: the slot as it was and
    /// its INVALID copy. The active set holds the copy, the inactive one still the old slot.
    pending: Option<(Slot, Slot)>,
    /// The injected fault (the harness's self-test), if any.
    #[cfg(feature = "fault-injection")]
    fault: Option<Fault>,
}

/// `faulty!(self, Fault)`: whether that fault is armed; `false` without the
/// `fault-injection` feature, so that the faults cost nothing.
#[cfg(feature = "fault-injection")]
macro_rules! faulty {
    ($s:ident, $fault:ident) => {
        $s.fault == Some(Fault::$fault)
    };
}
#[cfg(not(feature = "fault-injection"))]
macro_rules! faulty {
    ($s:ident, $fault:ident) => {
        false
    };
}

impl TreeMemslots {
    /// An empty address space for ids `0..mem_slots_num`; both sets start at `generation`.
    pub fn new(mem_slots_num: usize, generation: u64) -> TreeMemslots {
        TreeMemslots {
            sets: [SlotSet::new(generation), SlotSet::new(generation)],
            active: 0,
            mem_slots_num,
            pending: None,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }

    fn active(&self) -> &SlotSet {
        &self.sets[self.active]
    }

    fn inactive(&mut self) -> &mut SlotSet {
        &mut self.sets[self.active ^ 1]
    }

    /// Which of the two sets is active (0 or 1): it changes with every install.
    pub fn active_index(&self) -> usize {
        self.active
    }

    /// The id in the active set's last-used-slot cache, if any.
    pub fn last_used_id(&self) -> Option<u16> {
        self.active().last_used().map(|s| s.id)
    }

    /// Empties the last-used-slot cache (`None`) or points it at slot `id` if that exists,
    /// e.g. to restore it after probing lookups.
    pub fn set_last_used_id(&self, id: Option<u16>) {
        let set = self.active();
        set.last_used
            .set(id.and_then(|id| set.id_hash.get(&id)).map(|s| &**s));
    }

    /// `kvm_swap_active_memslots`: the inactive set becomes active, one generation step
    /// past the previously active one.
    fn swap(&mut self, step: u64) {
        let generation = self.active().generation;
        self.active ^= 1;
        self.sets[self.active].generation = generation.wrapping_add(step);
    }

    /// `kvm_activate_memslot`: swap, then bring the new inactive set in line.
    fn activate(&mut self, old: Option<&Slot>, new: Option<&Slot>, step: u64) {
        self.swap(step);
        if !faulty!(self, TreeSkipsResync) {
            self.inactive().replace(old, new);
        }
    }

    fn current(&self, id: u16) -> Result<Slot, UpdateError> {
        if usize::from(id) >= self.mem_slots_num {
            return Err(UpdateError::IdOutOfRange(id));
        }
        self.active()
            .id_hash
            .get(&id)
            .cloned()
            .ok_or(UpdateError::AbsentId(id))
    }
}

impl MemslotSet for TreeMemslots {
    type Walk<'a> = TreeWalk<'a>;

    fn new_set(mem_slots_num: usize, generation: u64) -> Self {
        TreeMemslots::new(mem_slots_num, generation)
    }

    fn generation(&self) -> u64 {
        self.active().generation
    }

    fn used_slots(&self) -> usize {
        self.active().id_hash.len()
    }

    fn id_to_memslot(&self, id: u16) -> Option<&MemorySlot> {
        self.active().id_hash.get(&id).map(|s| &**s)
    }

    /// `search_memslots` of v5.17: the last-used slot if it holds `gfn`, else the GFN tree
    /// (the slot with the highest base at or below `gfn`), which then becomes the last used.
    fn search(&self, gfn: u64) -> Option<&MemorySlot> {
        let set = self.active();
        if let Some(s) = set.last_used() {
            let hit = if faulty!(self, LastUsedEndInclusive) {
                s.base_gfn <= gfn && gfn <= s.end_gfn()
            } else {
                s.contains(gfn)
            };
            if hit {
                return Some(s);
            }
        }
        let (_, s) = set.gfn_tree.range(..=gfn).next_back()?;
        if !s.contains(gfn) {
            return None;
        }
        set.last_used.set(Some(s));
        Some(s)
    }

    fn walk(&self) -> TreeWalk<'_> {
        TreeWalk(self.active().gfn_tree.values().rev())
    }

    /// Below `end_gfn`, highest base first: the slots (other than `id`) are disjoint, so
    /// their ends descend with their bases, and the first one that does not reach
    /// `base_gfn` ends the search.
    fn first_overlap(&self, id: u16, base_gfn: u64, end_gfn: u64) -> Option<&MemorySlot> {
        let s = self
            .active()
            .gfn_tree
            .range(..end_gfn)
            .rev()
            .map(|(_, s)| &**s)
            .find(|s| s.id != id)?;
        (s.end_gfn() > base_gfn).then_some(s)
    }

    fn in_gfn_range(&self, start: u64, end: u64) -> Vec<&MemorySlot> {
        if end <= start {
            return Vec::new();
        }
        self.active()
            .gfn_tree
            .range(..end)
            .rev()
            .map(|(_, s)| &**s)
            .take_while(|s| s.end_gfn() > start)
            .collect()
    }

    fn in_hva_range(&self, start: u64, end: u64) -> Vec<&MemorySlot> {
        let mut out: Vec<&MemorySlot> = self
            .active()
            .hva_tree
            .overlapping(start, end)
            .into_iter()
            .map(|s| &**s)
            .collect();
        debug_assert!(out.iter().all(|s| overlaps_hva(s, start, end)));
        // Into walk order (highest base first). Host addresses usually ascend with GFNs (a
        // VMM maps guest memory in order), so the reversed host order often is it already.
        out.reverse();
        if !out.windows(2).all(|w| w[0].base_gfn > w[1].base_gfn) {
            out.sort_unstable_by_key(|s| std::cmp::Reverse(s.base_gfn));
        }
        out
    }

    /// `kvm_invalidate_memslot`: the INVALID copy replaces the slot in the inactive set,
    /// which becomes active; the other set keeps the old slot until the request ends.
    fn invalidate(&mut self, id: u16, step: u64) -> Result<(), UpdateError> {
        let old = self.current(id)?;
        let invalid = Arc::new(MemorySlot {
            flags: old.flags | KVM_MEMSLOT_INVALID,
            ..*old
        });
        self.inactive().replace(Some(&old), Some(&invalid));
        self.swap(step);
        self.pending = Some((old, invalid));
        Ok(())
    }

    /// `kvm_activate_memslot(kvm, invalid_slot, old)`.
    fn restore(&mut self, id: u16, step: u64) -> Result<(), UpdateError> {
        let (old, invalid) = self.pending.take().ok_or(UpdateError::AbsentId(id))?;
        self.activate(Some(&invalid), Some(&old), step);
        Ok(())
    }

    /// `kvm_create_memslot`, `kvm_delete_memslot`, `kvm_move_memslot`,
    /// `kvm_update_flags_memslot`: the change goes into the inactive set, then
    /// `kvm_activate_memslot`. DELETE and MOVE replace the INVALID copy in the set that was
    /// active (without a preceding invalidate, the old slot itself).
    fn commit(&mut self, new: &MemorySlot, change: Change, step: u64) -> Result<(), UpdateError> {
        let id = new.id;
        if change == Change::Create {
            if usize::from(id) >= self.mem_slots_num {
                return Err(UpdateError::IdOutOfRange(id));
            }
            if self.active().id_hash.contains_key(&id) || self.pending.is_some() {
                return Err(UpdateError::AlreadyPresent(id));
            }
            let new = Arc::new(*new);
            self.inactive().replace(None, Some(&new));
            self.activate(None, Some(&new), step);
            return Ok(());
        }
        let (old, shown) = match self.pending.take() {
            Some((old, invalid)) if old.id == id => (old, invalid),
            Some(pending) => {
                self.pending = Some(pending);
                return Err(UpdateError::AbsentId(id));
            }
            None => {
                let old = self.current(id)?;
                (Arc::clone(&old), old)
            }
        };
        let new = (change != Change::Delete).then(|| Arc::new(*new));
        self.inactive().replace(Some(&old), new.as_ref());
        self.activate(Some(&shown), new.as_ref(), step);
        Ok(())
    }

    #[cfg(feature = "fault-injection")]
    fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
        for set in &mut self.sets {
            set.hva_tree.stale_max_end = fault == Some(Fault::IntervalStaleMaxEnd);
        }
    }

    /// Each set's own invariants, and the two sets agree: the same slot objects, no request
    /// half-done.
    fn check_invariants(&self) -> Result<(), String> {
        for (i, set) in self.sets.iter().enumerate() {
            set.check_indexes().map_err(|e| format!("set {i}: {e}"))?;
        }
        if self.pending.is_some() {
            return Err("a DELETE or MOVE left half done".to_string());
        }
        // Both GFN trees in one walk: at each step the two sets hold the very same slot
        // object, so the slot's own checks run once for both, and each set's filing, id hash
        // and cache are checked against it. With the counts above, the id hashes then hold
        // exactly the GFN trees' slots, and agree.
        let [a, b] = &self.sets;
        if a.gfn_tree.len() != b.gfn_tree.len() {
            return Err("the active and inactive sets hold different slots".to_string());
        }
        let cached = [&a.last_used, &b.last_used].map(|c| c.0.load(Relaxed).cast_const());
        let mut cache_found = cached.map(|p| p.is_null());
        let mut below: Option<&MemorySlot> = None;
        for ((&key_a, s), (&key_b, t)) in a.gfn_tree.iter().zip(&b.gfn_tree) {
            if !Arc::ptr_eq(s, t) {
                return Err("the active and inactive sets hold different slots".to_string());
            }
            for (i, (set, key)) in [(a, key_a), (b, key_b)].into_iter().enumerate() {
                if s.base_gfn != key {
                    return Err(format!("set {i}: slot {} filed under gfn {key:#x}", s.id));
                }
                if !set.id_hash.get(&s.id).is_some_and(|h| Arc::ptr_eq(h, s)) {
                    return Err(format!(
                        "set {i}: slot {} in the gfn tree is not the one hashed",
                        s.id
                    ));
                }
                // The GFN tree holds exactly the hashed slots (with the counts equal): the
                // cache names one of them if it names one of these.
                cache_found[i] |= ptr::eq(Arc::as_ptr(s), cached[i]);
            }
            if s.npages == 0 {
                return Err(format!("slot {} has npages 0", s.id));
            }
            if usize::from(s.id) >= self.mem_slots_num {
                return Err(format!("slot id {} out of range", s.id));
            }
            if s.flags & KVM_MEMSLOT_INVALID != 0 {
                return Err(format!("slot {} left INVALID", s.id));
            }
            if let Some(b) = below.filter(|b| b.end_gfn() > s.base_gfn) {
                return Err(format!("slots {} and {} overlap", b.id, s.id));
            }
            below = Some(s);
        }
        if let Some(i) = cache_found.iter().position(|&found| !found) {
            return Err(format!(
                "set {i}: last_used_slot points at no slot of the set"
            ));
        }
        let inactive = &self.sets[self.active ^ 1];
        if inactive.generation > self.active().generation {
            return Err(format!(
                "inactive set at generation {}, past the active one at {}",
                inactive.generation,
                self.active().generation
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: u16, base_gfn: u64, npages: u64, hva: u64) -> MemorySlot {
        MemorySlot {
            id,
            base_gfn,
            npages,
            flags: 0,
            userspace_addr: hva,
        }
    }

    fn ids<'a>(it: impl IntoIterator<Item = &'a MemorySlot>) -> Vec<u16> {
        it.into_iter().map(|s| s.id).collect()
    }

    /// Three slots, created in both sets, and the invariants hold.
    fn three_slots() -> TreeMemslots {
        let mut t = TreeMemslots::new(16, 0);
        for (id, base) in [(1, 10), (2, 30), (3, 50)] {
            t.commit(
                &slot(id, base, 5, 0x1000 * u64::from(id)),
                Change::Create,
                2,
            )
            .unwrap();
        }
        t.search(31).expect("slot 2, now in the cache");
        t.check_invariants().unwrap();
        t
    }

    fn expect_broken(t: &TreeMemslots, what: &str) {
        let e = t.check_invariants().expect_err(what);
        assert!(e.contains(what), "{e}");
    }

    /// Each way a set can go wrong, made by hand, is found by `check_invariants`.
    #[test]
    fn check_finds_each_broken_invariant() {
        let copy_of = |t: &TreeMemslots, set: usize, id: u16| Arc::new(*t.sets[set].id_hash[&id]);

        let mut t = three_slots();
        let s = t.sets[1].gfn_tree.remove(&30).unwrap();
        t.sets[1].gfn_tree.insert(31, s);
        expect_broken(&t, "set 1: slot 2 filed under gfn 0x1f");

        let mut t = three_slots();
        let copy = copy_of(&t, 0, 3);
        t.sets[0].id_hash.insert(3, copy);
        // Found by the first index checked against the hash (the host tree).
        expect_broken(&t, "set 0: hva tree: entry (12288, 3) is filed wrongly");
        let copy = Arc::clone(&t.sets[0].id_hash[&3]);
        t.sets[0].hva_tree.insert((0x3000, 3), hva_end(&copy), copy);
        expect_broken(&t, "set 0: slot 3 in the gfn tree is not the one hashed");

        let mut t = three_slots();
        let copy = copy_of(&t, 1, 1);
        t.sets[1].gfn_tree.insert(10, copy);
        expect_broken(&t, "hold different slots");

        let mut t = three_slots();
        let copy = copy_of(&t, 0, 2);
        t.sets[1].hva_tree.insert((0x2000, 2), hva_end(&copy), copy);
        expect_broken(&t, "set 1: hva tree: entry (8192, 2) is filed wrongly");

        let mut t = three_slots();
        let s = t.sets[0].id_hash[&2].clone();
        t.sets[0].hva_tree.insert((0x2000, 2), hva_end(&s) + 1, s);
        expect_broken(&t, "set 0: hva tree: entry (8192, 2) is filed wrongly");

        let t = three_slots();
        let stranger = Arc::new(slot(2, 30, 5, 0x2000));
        t.active().last_used.set(Some(&stranger));
        expect_broken(&t, "last_used_slot points at no slot of the set");

        for (what, broken) in [
            ("npages 0", slot(2, 30, 0, 0x2000)),
            ("out of range", slot(20, 30, 5, 0x2000)),
            ("overlap", slot(2, 30, 21, 0x2000)),
            (
                "left INVALID",
                MemorySlot {
                    flags: KVM_MEMSLOT_INVALID,
                    ..slot(2, 30, 5, 0x2000)
                },
            ),
        ] {
            let mut t = three_slots();
            let broken = Arc::new(broken);
            for set in &mut t.sets {
                let old = set.id_hash[&2].clone();
                set.replace(Some(&old), Some(&broken));
            }
            expect_broken(&t, what);
        }

        let mut t = three_slots();
        t.sets[t.active ^ 1].generation = t.generation() + 1;
        expect_broken(&t, "past the active one");
    }

    #[test]
    fn every_change_goes_through_both_sets() {
        let mut t = TreeMemslots::new(16, 0);
        t.commit(&slot(1, 10, 5, 0x1000), Change::Create, 2)
            .unwrap();
        t.commit(&slot(2, 30, 5, 0x1000), Change::Create, 2)
            .unwrap();
        assert_eq!((t.generation(), t.active_index()), (4, 0));
        t.check_invariants().unwrap();
        assert_eq!(ids(t.walk()), [2, 1]);

        // MOVE: invalidate (one install), then the move (another).
        t.invalidate(1, 2).unwrap();
        assert!(t.check_invariants().is_err(), "half done");
        assert_eq!(t.id_to_memslot(1).unwrap().flags, KVM_MEMSLOT_INVALID);
        let inactive = &t.sets[t.active ^ 1];
        assert_eq!(
            inactive.id_hash[&1].flags, 0,
            "the other set keeps the old slot"
        );
        t.commit(&slot(1, 50, 5, 0x1000), Change::Move, 2).unwrap();
        t.check_invariants().unwrap();
        assert_eq!(ids(t.walk()), [1, 2]);
        assert_eq!(t.generation(), 8);

        // FLAGS_ONLY.
        let mut dirty = slot(2, 30, 5, 0x1000);
        dirty.flags = 1;
        t.commit(&dirty, Change::FlagsOnly, 2).unwrap();
        assert_eq!(t.id_to_memslot(2).unwrap().flags, 1);
        t.check_invariants().unwrap();

        // A failing prepare puts the old slot back.
        t.invalidate(2, 2).unwrap();
        t.restore(2, 2).unwrap();
        t.check_invariants().unwrap();
        assert_eq!(*t.id_to_memslot(2).unwrap(), dirty);
        assert_eq!(t.generation(), 14);

        // DELETE.
        t.invalidate(1, 2).unwrap();
        t.commit(&slot(1, 0, 0, 0), Change::Delete, 2).unwrap();
        t.check_invariants().unwrap();
        assert_eq!(ids(t.walk()), [2]);
        assert_eq!(t.generation(), 18);
        assert!(t.id_to_memslot(1).is_none());
    }

    #[test]
    fn refuses_what_cannot_apply() {
        let mut t = TreeMemslots::new(4, 1);
        let s = slot(1, 10, 1, 0);
        assert_eq!(t.commit(&s, Change::Move, 2), Err(UpdateError::AbsentId(1)));
        assert_eq!(t.invalidate(1, 2), Err(UpdateError::AbsentId(1)));
        assert_eq!(
            t.commit(&slot(4, 0, 1, 0), Change::Create, 2),
            Err(UpdateError::IdOutOfRange(4))
        );
        t.commit(&s, Change::Create, 2).unwrap();
        assert_eq!(
            t.commit(&s, Change::Create, 2),
            Err(UpdateError::AlreadyPresent(1))
        );
        assert_eq!(t.generation(), 3);
        t.check_invariants().unwrap();
    }

    #[test]
    fn lookups_and_the_last_used_cache() {
        let mut t = TreeMemslots::new(8, 0);
        for (id, base) in [(0, 0), (1, 100), (2, 200)] {
            t.commit(&slot(id, base, 10, 0), Change::Create, 2).unwrap();
        }
        assert_eq!(t.last_used_id(), None);
        assert_eq!(t.search(105).map(|s| s.id), Some(1));
        assert_eq!(t.last_used_id(), Some(1));
        assert_eq!(t.search(110), None, "one past the end");
        assert_eq!(t.search(99), None, "in a gap");
        assert_eq!(t.last_used_id(), Some(1), "a miss keeps the cache");
        assert_eq!(t.search(0).map(|s| s.id), Some(0));
        assert_eq!(t.search(u64::MAX), None);
        // Deleting the cached slot empties the cache; other changes keep it.
        t.invalidate(0, 2).unwrap();
        t.commit(&slot(0, 0, 0, 0), Change::Delete, 2).unwrap();
        assert_eq!(t.last_used_id(), None);
        t.check_invariants().unwrap();
    }

    #[test]
    fn range_queries_with_overlapping_host_ranges() {
        let mut t = TreeMemslots::new(8, 0);
        // Three slots share host memory: 1 and 3 alias the same pages, 2 overlaps half of 1.
        t.commit(&slot(1, 0x100, 0x10, 0x10_0000), Change::Create, 2)
            .unwrap();
        t.commit(&slot(2, 0x200, 0x10, 0x10_8000), Change::Create, 2)
            .unwrap();
        t.commit(&slot(3, 0x300, 0x10, 0x10_0000), Change::Create, 2)
            .unwrap();
        t.commit(&slot(4, 0x400, 0x1, u64::MAX - 0xfff), Change::Create, 2)
            .unwrap();
        assert_eq!(ids(t.in_hva_range(0x10_0000, 0x10_0001)), [3, 1]);
        assert_eq!(ids(t.in_hva_range(0x10_f000, 0x11_0000)), [3, 2, 1]);
        assert_eq!(ids(t.in_hva_range(0x11_0000, 0x11_8000)), [2]);
        assert_eq!(ids(t.in_hva_range(0, u64::MAX)), [4, 3, 2, 1]);
        assert_eq!(ids(t.in_hva_range(u64::MAX - 1, u64::MAX)), [4]);
        assert!(t.in_hva_range(0x10_0000, 0x10_0000).is_empty());
        assert_eq!(ids(t.in_gfn_range(0x10f, 0x301)), [3, 2, 1]);
        assert_eq!(ids(t.in_gfn_range(0x110, 0x300)), [2]);
        assert!(t.in_gfn_range(0x110, 0x200).is_empty());
        assert!(t.in_gfn_range(5, 5).is_empty());
        assert_eq!(t.first_overlap(2, 0x105, 0x205).map(|s| s.id), Some(1));
        assert_eq!(t.first_overlap(1, 0x105, 0x205).map(|s| s.id), Some(2));
        assert_eq!(t.first_overlap(9, 0x110, 0x200), None);
        // The array backend answers the same.
        let mut a = crate::Memslots::new(8, 0);
        for s in t.walk() {
            a.commit(s, Change::Create, 2).unwrap();
        }
        for (s, e) in [
            (0, u64::MAX),
            (0x10_0000, 0x10_0001),
            (0x10_f000, 0x11_0000),
        ] {
            assert_eq!(ids(a.in_hva_range(s, e)), ids(t.in_hva_range(s, e)));
        }
        for (s, e) in [
            (0, u64::MAX),
            (0x10f, 0x301),
            (0x110, 0x300),
            (0x110, 0x200),
        ] {
            assert_eq!(ids(a.in_gfn_range(s, e)), ids(t.in_gfn_range(s, e)));
        }
    }
}
