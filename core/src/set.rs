//! What [`Vm`](crate::Vm) needs of one address space's slots, so that the array backend
//! ([`Memslots`](crate::Memslots)) and the tree backend ([`TreeMemslots`](crate::TreeMemslots))
//! sit behind the same front end: same requests, same errors, same lookups, same walk order,
//! same generation counting.

use std::fmt;

#[cfg(feature = "fault-injection")]
use crate::fault::Fault;
use crate::memslots::UpdateError;
use crate::slot::{Change, MemorySlot, PAGE_SHIFT};

/// One address space's memslots (`struct kvm_memslots` and what `kvm_set_memslot` does to it).
///
/// The read side (`generation` .. `in_hva_range`) is the public query interface. The write
/// side (`invalidate`, `restore`, `commit`) is the install sequence of `kvm_set_memslot`, in
/// the order [`Vm`](crate::Vm) calls it after validating a request; calling it in another
/// order, or with a request that did not pass validation, is refused with an
/// [`UpdateError`] where the backend can tell, and otherwise leaves an inconsistent state
/// that [`MemslotSet::check_invariants`] reports.
pub trait MemslotSet: Clone + fmt::Debug + Send + Sync + Sized {
    /// The walk (`kvm_for_each_memslot`): slots in descending GFN order.
    type Walk<'a>: Iterator<Item = &'a MemorySlot>
    where
        Self: 'a;

    /// An empty address space for ids `0..mem_slots_num`, starting at `generation`.
    fn new_set(mem_slots_num: usize, generation: u64) -> Self;
    /// The generation of the installed (active) slots.
    fn generation(&self) -> u64;
    /// The number of slots in use.
    fn used_slots(&self) -> usize;
    /// `id_to_memslot`.
    fn id_to_memslot(&self, id: u16) -> Option<&MemorySlot>;
    /// `search_memslots`: the slot containing `gfn`; updates the backend's lookup cache.
    fn search(&self, gfn: u64) -> Option<&MemorySlot>;
    /// `kvm_for_each_memslot`, highest base GFN first.
    fn walk(&self) -> Self::Walk<'_>;
    /// The first slot in walk order, other than `id`, that overlaps `[base_gfn, end_gfn)`:
    /// the -EEXIST check of CREATE and MOVE.
    fn first_overlap(&self, id: u16, base_gfn: u64, end_gfn: u64) -> Option<&MemorySlot>;
    /// The slots overlapping the GFN range `[start, end)`, in walk order (none if
    /// `end <= start`).
    fn in_gfn_range(&self, start: u64, end: u64) -> Vec<&MemorySlot>;
    /// The slots whose host range `[userspace_addr, userspace_addr + npages * PAGE_SIZE)`
    /// overlaps `[start, end)`, in walk order (none if `end <= start`). Host ranges may
    /// overlap between slots.
    fn in_hva_range(&self, start: u64, end: u64) -> Vec<&MemorySlot>;

    /// DELETE and MOVE, first install: publish the slot `id` marked `KVM_MEMSLOT_INVALID`
    /// (the generation advances by `step`).
    fn invalidate(&mut self, id: u16, step: u64) -> Result<(), UpdateError>;
    /// The arch preparation failed after [`MemslotSet::invalidate`]: put the old slot back
    /// (another install).
    fn restore(&mut self, id: u16, step: u64) -> Result<(), UpdateError>;
    /// Apply `change` for `new` (for DELETE only the id matters) and install the result.
    fn commit(&mut self, new: &MemorySlot, change: Change, step: u64) -> Result<(), UpdateError>;
    /// The backend's structural invariants.
    fn check_invariants(&self) -> Result<(), String>;

    /// Arm an injected fault; backends without fault injection ignore it.
    #[cfg(feature = "fault-injection")]
    fn set_fault(&mut self, _fault: Option<Fault>) {}
}

/// The last host address of a slot plus one, saturating: private slots are not checked by
/// `access_ok`, so their range may reach the top of the address space.
pub(crate) fn hva_end(s: &MemorySlot) -> u64 {
    s.userspace_addr.saturating_add(s.npages << PAGE_SHIFT)
}

/// Whether `s`'s GFN range overlaps `[start, end)`.
pub(crate) fn overlaps_gfn(s: &MemorySlot, start: u64, end: u64) -> bool {
    s.base_gfn < end && s.end_gfn() > start
}

/// Whether `s`'s host range overlaps `[start, end)`.
pub(crate) fn overlaps_hva(s: &MemorySlot, start: u64, end: u64) -> bool {
    s.userspace_addr < end && hva_end(s) > start
}
