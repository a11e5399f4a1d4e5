//! Deliberate one-line bugs, so that the differential harness can prove it notices a broken
//! implementation. Only compiled with the `fault-injection` feature.

/// Each variant changes exactly one line of the algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `kvm_memslot_move_forward` loops while `i > 1` instead of `i > 0`.
    MoveForwardOffByOne,
    /// `kvm_memslot_move_backward` loops while `i < used_slots - 2` instead of `- 1`.
    MoveBackwardStopsEarly,
    /// `kvm_memslot_delete` leaves the deleted id's index in place instead of -1.
    DeleteKeepsIndex,
    /// A binary-search hit in `search_memslots` does not update the LRU hint.
    LruNotUpdated,
    /// The range checks of `search_memslots` use `gfn <= base + npages`.
    SearchEndInclusive,
    /// Tree backend: `kvm_activate_memslot` swaps the sets but does not bring the new
    /// inactive one in line (its `kvm_replace_memslot` is left out).
    TreeSkipsResync,
    /// Tree backend: an insertion into the host-address interval index does not raise the
    /// `max_end` of the nodes it passes on the way down.
    IntervalStaleMaxEnd,
    /// Tree backend: the last-used-slot cache answers for the page just past its slot
    /// (`gfn <= base + npages`).
    LastUsedEndInclusive,
}

impl Fault {
    /// Every fault, for self-tests that try them all.
    pub const ALL: [Fault; 8] = [
        Fault::MoveForwardOffByOne,
        Fault::MoveBackwardStopsEarly,
        Fault::DeleteKeepsIndex,
        Fault::LruNotUpdated,
        Fault::SearchEndInclusive,
        Fault::TreeSkipsResync,
        Fault::IntervalStaleMaxEnd,
        Fault::LastUsedEndInclusive,
    ];

    /// Whether the fault is in the tree backend ([`crate::TreeMemslots`]); the others are in
    /// the array ([`crate::Memslots`]). A backend ignores the other's faults.
    pub fn in_tree(self) -> bool {
        matches!(
            self,
            Fault::TreeSkipsResync | Fault::IntervalStaleMaxEnd | Fault::LastUsedEndInclusive
        )
    }
}
