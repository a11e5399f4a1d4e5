//! Literal C ports of Linux's memslot code, before and after
//! "KVM: Terminate memslot walks via used_slots" and the patch after it, behind a safe Rust
//! wrapper.
//!
//! Three ports ([`Family`]):
//! * `c/pre/`: Linux v5.6: fixed array, identity `id_to_index`, walks that stop at the first
//!   empty entry, the single-routine `update_memslots()`.
//! * `c/post/`: the seed patch applied: `used_slots` bounds every walk, -1 marks absent ids,
//!   `kvm_memslot_delete()` / `insert_back()` / `move_backward()` / `move_forward()`,
//!   `id_to_memslot()` may return NULL.
//! * `c/post15/`: "KVM: Dynamically size memslot array based on number of used slots":
//!   `memslots[]` sized to exactly `used_slots` entries, `kvm_dup_memslots()`.
//!
//! Each [`Port`] is one state of a port: the port compiled with a set of the later upstream
//! fixes (`c/states/`), so that each of its bugs can be switched on alone.
//!
//! The wrapper adds nothing to the kernel's behaviour: it passes requests through, copies
//! state out, counts the WARNs each VM's calls hit, and reports an access outside an
//! allocation that the shim caught ([`OutOfBounds`]). The C code is GPL-2.0 (see `LICENSE`).

mod fault;
mod ffi;
mod port;
mod state;
mod vm;

pub use fault::OutOfBounds;
pub use ffi::layout_matches_c;
pub use port::{compiled_states, guard_pages, Family, Port};
pub use state::{api_slot_bytes, RawSlot, RawState, StateRef};
pub use vm::{PortVm, NOT_IN_ARRAY};

/// What a request or lookup returns when the port faulted (see [`PortVm::fault`]).
pub const FAULTED: i32 = ffi::MEMSLOT_API_FAULTED;

/// `enum kvm_mr_change`, for [`PortVm::update_memslots`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum MrChange {
    Create = 0,
    Delete = 1,
    Move = 2,
    FlagsOnly = 3,
}

/// KVM_MEM_SLOTS_NUM on the 2020 ports' x86: 509 user + 3 private slots (the modern-32k
/// state has `SHRT_MAX`: [`PortVm::mem_slots_num`] says each state's).
pub const KVM_MEM_SLOTS_NUM: usize = 512;
/// KVM_USER_MEM_SLOTS on x86.
pub const KVM_USER_MEM_SLOTS: usize = 509;
/// KVM_ADDRESS_SPACE_NUM on x86 (address space 1 is SMM).
pub const KVM_ADDRESS_SPACE_NUM: usize = 2;

/// `struct kvm_userspace_memory_region`, shared with the C side.
pub type KvmUserspaceMemoryRegion = ffi::MemslotApiRegion;
/// `struct kvm_userspace_memory_region2` (v6.8), field for field.
pub type KvmUserspaceMemoryRegion2 = ffi::MemslotApiRegion2;

/// One array entry exactly as the C side copies it out (`struct memslot_api_slot`): 32 bytes
/// without padding, so that arrays of them compare as bytes ([`api_slot_bytes`]).
pub type ApiSlot = ffi::MemslotApiSlot;

const _: () = assert!(
    std::mem::size_of::<ApiSlot>() == 8 + 8 + 8 + 4 + 2 + 1 + 1,
    "ApiSlot has no padding"
);
