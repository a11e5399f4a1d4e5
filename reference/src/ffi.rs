//! `#[repr(C)]` mirror of `c/memslot_api.h`, the one definition of what crosses the
//! boundary. [`layout_matches_c`] compares this mirror with the layout the C compiler
//! reports, so a drift between the two fails loudly instead of corrupting memory.

use std::ffi::c_char;
use std::mem::{offset_of, size_of};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemslotApiRegion {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemslotApiRegion2 {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
    pub guest_memfd_offset: u64,
    pub guest_memfd: u32,
    pub pad1: u32,
    pub pad2: [u64; 14],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemslotApiSlot {
    pub base_gfn: u64,
    pub npages: u64,
    pub userspace_addr: u64,
    pub flags: u32,
    pub id: i16,
    pub has_dirty_bitmap: u8,
    pub reserved: u8,
}

/// `struct memslot_api_state`: the header, and the caller's buffers the entries and the
/// index are copied into (`room` entries each; less than `KVM_MEM_SLOTS_NUM` is -ENOSPC).
#[repr(C)]
pub struct MemslotApiState {
    pub generation: u64,
    pub used_slots: i32,
    pub lru_slot: i32,
    pub capacity: u32,
    pub nr_copied: u32,
    pub room: u32,
    pub slots_num: u32,
    pub entries: *mut MemslotApiSlot,
    pub id_to_index: *mut i16,
}

/// `MEMSLOT_API_FAULTED`: what a call returns when the port faulted in a guard page.
pub const MEMSLOT_API_FAULTED: i32 = -100_000;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MemslotApiFault {
    pub addr: u64,
    pub alloc_start: u64,
    pub alloc_size: u64,
    pub kind: i32,
    pub is_write: i32,
    pub function: [c_char; 48],
}

impl Default for MemslotApiFault {
    fn default() -> Self {
        MemslotApiFault {
            addr: 0,
            alloc_start: 0,
            alloc_size: 0,
            kind: 0,
            is_write: 0,
            function: [0; 48],
        }
    }
}

#[repr(C)]
#[derive(Default, Debug, PartialEq, Eq)]
pub struct MemslotApiLayout {
    pub region: [u64; 6],
    pub slot: [u64; 7],
    pub state: [u64; 10],
    pub fault: [u64; 7],
    pub region2: [u64; 5],
}

/// Opaque `struct kvm` of one port.
#[repr(C)]
pub struct Kvm {
    _private: [u8; 0],
}

extern "C" {
    pub fn memslot_api_layout(out: *mut MemslotApiLayout);
    pub fn memslot_shim_take_fault(out: *mut MemslotApiFault) -> i32;
    pub fn memslot_shim_guarded() -> i32;
    pub fn memslot_shim_live_allocations() -> i64;
}

/// The functions one port exports, as a table so that the wrapper is written once.
pub struct PortFns {
    pub create_vm: unsafe extern "C" fn() -> *mut Kvm,
    pub destroy_vm: unsafe extern "C" fn(*mut Kvm),
    pub ioctl_set_memory_region: unsafe extern "C" fn(*mut Kvm, *const MemslotApiRegion) -> i32,
    pub set_memory_region: unsafe extern "C" fn(*mut Kvm, *const MemslotApiRegion) -> i32,
    pub search_memslots: unsafe extern "C" fn(*mut Kvm, i32, u64, *mut MemslotApiSlot) -> i32,
    pub id_to_memslot: unsafe extern "C" fn(*mut Kvm, i32, i32, *mut MemslotApiSlot) -> i32,
    pub search_each: unsafe extern "C" fn(
        *mut Kvm,
        i32,
        *const u64,
        i32,
        *mut MemslotApiSlot,
        *mut i32,
        *mut i32,
    ) -> i32,
    pub id_to_memslot_each:
        unsafe extern "C" fn(*mut Kvm, i32, *const i32, i32, *mut MemslotApiSlot, *mut i32) -> i32,
    pub for_each_memslot: unsafe extern "C" fn(*mut Kvm, i32, *mut i16, i32) -> i32,
    pub gfn_range_memslots: unsafe extern "C" fn(*mut Kvm, i32, u64, u64, *mut i16, i32) -> i32,
    pub hva_range_memslots: unsafe extern "C" fn(*mut Kvm, i32, u64, u64, *mut i16, i32) -> i32,
    pub get_state: unsafe extern "C" fn(*mut Kvm, i32, *mut MemslotApiState, u32) -> i32,
    pub lru_slot: unsafe extern "C" fn(*mut Kvm, i32) -> i32,
    pub set_lru_slot: unsafe extern "C" fn(*mut Kvm, i32, i32),
    pub set_prepare_error: unsafe extern "C" fn(*mut Kvm, i32),
    pub update_memslots: unsafe extern "C" fn(*mut Kvm, i32, *const MemslotApiSlot, i32) -> i32,
    pub warn_count: unsafe extern "C" fn() -> u64,
    pub last_warn: unsafe extern "C" fn() -> *const c_char,
    pub check_structure: unsafe extern "C" fn(*mut Kvm, i32, *mut c_char, i32) -> i32,
    pub create_vm_type: unsafe extern "C" fn(u64, *mut i32) -> *mut Kvm,
    pub ioctl_set_memory_region2: unsafe extern "C" fn(*mut Kvm, *const MemslotApiRegion2) -> i32,
    pub create_guest_memfd: unsafe extern "C" fn(*mut Kvm, u64, u64) -> i32,
    pub mem_slots_num: unsafe extern "C" fn() -> i32,
}

// The extern declarations and the `PortFns` table of every port state in `c/states/`
// (`PRE`, `POST15_BUG_STALE_LRU`, ...), and `STATES`, their C names: written by build.rs.
include!(concat!(env!("OUT_DIR"), "/port_states.rs"));

/// The layout of this mirror, in the order `struct memslot_api_layout` lists it.
fn rust_layout() -> MemslotApiLayout {
    type R = MemslotApiRegion;
    type S = MemslotApiSlot;
    type St = MemslotApiState;
    type F = MemslotApiFault;
    type R2 = MemslotApiRegion2;
    let u = |n: usize| n as u64;
    MemslotApiLayout {
        region: [
            u(size_of::<R>()),
            u(offset_of!(R, slot)),
            u(offset_of!(R, flags)),
            u(offset_of!(R, guest_phys_addr)),
            u(offset_of!(R, memory_size)),
            u(offset_of!(R, userspace_addr)),
        ],
        slot: [
            u(size_of::<S>()),
            u(offset_of!(S, base_gfn)),
            u(offset_of!(S, npages)),
            u(offset_of!(S, userspace_addr)),
            u(offset_of!(S, flags)),
            u(offset_of!(S, id)),
            u(offset_of!(S, has_dirty_bitmap)),
        ],
        state: [
            u(size_of::<St>()),
            u(offset_of!(St, generation)),
            u(offset_of!(St, used_slots)),
            u(offset_of!(St, lru_slot)),
            u(offset_of!(St, capacity)),
            u(offset_of!(St, nr_copied)),
            u(offset_of!(St, room)),
            u(offset_of!(St, slots_num)),
            u(offset_of!(St, entries)),
            u(offset_of!(St, id_to_index)),
        ],
        fault: [
            u(size_of::<F>()),
            u(offset_of!(F, addr)),
            u(offset_of!(F, alloc_start)),
            u(offset_of!(F, alloc_size)),
            u(offset_of!(F, kind)),
            u(offset_of!(F, is_write)),
            u(offset_of!(F, function)),
        ],
        region2: [
            u(size_of::<R2>()),
            u(offset_of!(R2, userspace_addr)),
            u(offset_of!(R2, guest_memfd_offset)),
            u(offset_of!(R2, guest_memfd)),
            u(offset_of!(R2, pad2)),
        ],
    }
}

/// Whether this mirror matches what the C compiler laid out; the mismatch, if not.
pub fn layout_matches_c() -> Result<(), String> {
    let mut c = MemslotApiLayout::default();
    // SAFETY: memslot_api_layout only writes the struct it is given.
    unsafe { memslot_api_layout(&mut c) };
    let rust = rust_layout();
    if c == rust {
        Ok(())
    } else {
        Err(format!(
            "C API layout differs from the Rust mirror:\n  C:    {c:?}\n  Rust: {rust:?}"
        ))
    }
}
