//! KVM memslot management in safe Rust, with the semantics of Linux KVM after
//! "KVM: Terminate memslot walks via used_slots": slots sorted by base GFN (highest first), an
//! id to index map, an LRU-hinted binary search, create / move / delete / flags-only updates,
//! and the `KVM_SET_USER_MEMORY_REGION` front end with the kernel's validation order, errno
//! values and generation counting.
//!
//! Two backends sit behind that front end ([`MemslotSet`]): the sorted array of v5.6-v5.16
//! ([`Memslots`], the default) and the tree-based design that replaced it in v5.17
//! ([`TreeMemslots`]: an id hash, a GFN-ordered tree, an interval index over host addresses,
//! two sets per address space swapped on every update, a last-used-slot cache). Pick one
//! with `Vm::<TreeMemslots>::with_backend(limits)` ([`TreeVm`]).

// One `unsafe` block, measured and justified where it is: the tree's last-used cache.
#![deny(unsafe_code)]

mod arch;
mod error;
#[cfg(feature = "fault-injection")]
mod fault;
mod interval;
mod memslots;
mod set;
mod slot;
mod tree;
mod vm;

pub use arch::ArchLimits;
pub use error::{Error, Invalid, EEXIST, EINVAL, ENOMEM};
#[cfg(feature = "fault-injection")]
pub use fault::Fault;
pub use memslots::{Memslots, UpdateError};
pub use set::MemslotSet;
pub use slot::{
    Change, MemorySlot, UserMemoryRegion, UserMemoryRegion2, KVM_MEMSLOT_INVALID,
    KVM_MEM_GUEST_MEMFD, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, PAGE_SHIFT, PAGE_SIZE,
};
pub use tree::{TreeMemslots, TreeWalk};
pub use vm::{ArrayVm, TreeVm, Vm};
