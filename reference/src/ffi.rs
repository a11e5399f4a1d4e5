//! `#[repr(C)]` mirror of `c/memslot_api.h`, the one definition of what crosses the
//! boundary. [`layout_matches_c`] compares this mirror with the layout the C compiler
//! reports, so a drift between the two fails loudly instead of corrupting memory.

use std::ffi::c_char;
use std::mem::{offset_of, size_of};

pub const MEMSLOT_API_SLOTS_NUM: usize = 512;

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

#[repr(C)]
pub struct MemslotApiState {
    pub generation: u64,
    pub used_slots: i32,
    pub lru_slot: i32,
    pub capacity: u32,
    pub nr_copied: u32,
    pub entries: [MemslotApiSlot; MEMSLOT_API_SLOTS_NUM],
    pub id_to_index: [i16; MEMSLOT_API_SLOTS_NUM],
}

#[repr(C)]
#[derive(Default, Debug, PartialEq, Eq)]
pub struct MemslotApiLayout {
    pub region: [u64; 6],
    pub slot: [u64; 7],
    pub state: [u64; 8],
}

/// Opaque `struct kvm` of one port.
#[repr(C)]
pub struct Kvm {
    _private: [u8; 0],
}

extern "C" {
    pub fn memslot_api_layout(out: *mut MemslotApiLayout);
}

/// The functions one port exports, as a table so that the wrapper is written once.
pub struct PortFns {
    pub create_vm: unsafe extern "C" fn() -> *mut Kvm,
    pub destroy_vm: unsafe extern "C" fn(*mut Kvm),
    pub ioctl_set_memory_region: unsafe extern "C" fn(*mut Kvm, *const MemslotApiRegion) -> i32,
    pub set_memory_region: unsafe extern "C" fn(*mut Kvm, *const MemslotApiRegion) -> i32,
    pub search_memslots: unsafe extern "C" fn(*mut Kvm, i32, u64, *mut MemslotApiSlot) -> i32,
    pub id_to_memslot: unsafe extern "C" fn(*mut Kvm, i32, i32, *mut MemslotApiSlot) -> i32,
    pub for_each_memslot: unsafe extern "C" fn(*mut Kvm, i32, *mut i16, i32) -> i32,
    pub get_state: unsafe extern "C" fn(*mut Kvm, i32, *mut MemslotApiState, u32) -> i32,
    pub lru_slot: unsafe extern "C" fn(*mut Kvm, i32) -> i32,
    pub set_lru_slot: unsafe extern "C" fn(*mut Kvm, i32, i32),
    pub set_prepare_error: unsafe extern "C" fn(*mut Kvm, i32),
    pub warn_count: unsafe extern "C" fn() -> u64,
    pub last_warn: unsafe extern "C" fn() -> *const c_char,
}

macro_rules! port_fns {
    ($table:ident, $($name:ident => $sym:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        extern "C" {
            $(fn $sym($(_: $arg),*) $(-> $ret)?;)*
        }
        pub static $table: PortFns = PortFns { $($name: $sym,)* };
    };
}

port_fns! { PRE,
    create_vm => memslot_pre_create_vm: fn() -> *mut Kvm;
    destroy_vm => memslot_pre_destroy_vm: fn(*mut Kvm);
    ioctl_set_memory_region => memslot_pre_ioctl_set_memory_region: fn(*mut Kvm, *const MemslotApiRegion) -> i32;
    set_memory_region => memslot_pre_set_memory_region: fn(*mut Kvm, *const MemslotApiRegion) -> i32;
    search_memslots => memslot_pre_search_memslots: fn(*mut Kvm, i32, u64, *mut MemslotApiSlot) -> i32;
    id_to_memslot => memslot_pre_id_to_memslot: fn(*mut Kvm, i32, i32, *mut MemslotApiSlot) -> i32;
    for_each_memslot => memslot_pre_for_each_memslot: fn(*mut Kvm, i32, *mut i16, i32) -> i32;
    get_state => memslot_pre_get_state: fn(*mut Kvm, i32, *mut MemslotApiState, u32) -> i32;
    lru_slot => memslot_pre_lru_slot: fn(*mut Kvm, i32) -> i32;
    set_lru_slot => memslot_pre_set_lru_slot: fn(*mut Kvm, i32, i32);
    set_prepare_error => memslot_pre_set_prepare_error: fn(*mut Kvm, i32);
    warn_count => memslot_pre_warn_count: fn() -> u64;
    last_warn => memslot_pre_last_warn: fn() -> *const c_char;
}

port_fns! { POST,
    create_vm => memslot_post_create_vm: fn() -> *mut Kvm;
    destroy_vm => memslot_post_destroy_vm: fn(*mut Kvm);
    ioctl_set_memory_region => memslot_post_ioctl_set_memory_region: fn(*mut Kvm, *const MemslotApiRegion) -> i32;
    set_memory_region => memslot_post_set_memory_region: fn(*mut Kvm, *const MemslotApiRegion) -> i32;
    search_memslots => memslot_post_search_memslots: fn(*mut Kvm, i32, u64, *mut MemslotApiSlot) -> i32;
    id_to_memslot => memslot_post_id_to_memslot: fn(*mut Kvm, i32, i32, *mut MemslotApiSlot) -> i32;
    for_each_memslot => memslot_post_for_each_memslot: fn(*mut Kvm, i32, *mut i16, i32) -> i32;
    get_state => memslot_post_get_state: fn(*mut Kvm, i32, *mut MemslotApiState, u32) -> i32;
    lru_slot => memslot_post_lru_slot: fn(*mut Kvm, i32) -> i32;
    set_lru_slot => memslot_post_set_lru_slot: fn(*mut Kvm, i32, i32);
    set_prepare_error => memslot_post_set_prepare_error: fn(*mut Kvm, i32);
    warn_count => memslot_post_warn_count: fn() -> u64;
    last_warn => memslot_post_last_warn: fn() -> *const c_char;
}

/// The layout of this mirror, in the order `struct memslot_api_layout` lists it.
fn rust_layout() -> MemslotApiLayout {
    type R = MemslotApiRegion;
    type S = MemslotApiSlot;
    type St = MemslotApiState;
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
            u(offset_of!(St, entries)),
            u(offset_of!(St, id_to_index)),
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
