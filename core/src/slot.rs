//! The memslot and the userspace request, as plain values.

/// Track dirty pages of the slot.
pub const KVM_MEM_LOG_DIRTY_PAGES: u32 = 1 << 0;
/// The guest may only read the slot.
pub const KVM_MEM_READONLY: u32 = 1 << 1;
/// Internal: set while a slot is being deleted or moved. Never visible in a final state here.
pub const KVM_MEMSLOT_INVALID: u32 = 1 << 16;
/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// The page size.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// `struct kvm_memory_slot`, reduced to what the array algorithms use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemorySlot {
    /// Slot id, below `mem_slots_num`.
    pub id: u16,
    /// First guest frame number.
    pub base_gfn: u64,
    /// Size in pages; never 0 in a stored slot.
    pub npages: u64,
    /// `KVM_MEM_*` flags as requested.
    pub flags: u32,
    /// Host virtual address backing `base_gfn`.
    pub userspace_addr: u64,
}

impl MemorySlot {
    /// `base_gfn <= gfn < base_gfn + npages`, computed without overflow.
    pub fn contains(&self, gfn: u64) -> bool {
        gfn >= self.base_gfn && gfn - self.base_gfn < self.npages
    }

    /// First GFN past the slot (saturating; valid slots end far below `u64::MAX`).
    pub fn end_gfn(&self) -> u64 {
        self.base_gfn.saturating_add(self.npages)
    }
}

/// `struct kvm_userspace_memory_region2` (v6.8): the v1 fields and the guest_memfd ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UserMemoryRegion2 {
    pub region: UserMemoryRegion,
    /// Where in the guest_memfd the slot's private memory starts (bytes).
    pub guest_memfd_offset: u64,
    /// The guest_memfd's file descriptor.
    pub guest_memfd: u32,
}

/// `KVM_MEM_GUEST_MEMFD` (v6.8): the slot's private memory is a range of a guest_memfd.
pub const KVM_MEM_GUEST_MEMFD: u32 = 1 << 2;

/// `struct kvm_userspace_memory_region`, field for field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UserMemoryRegion {
    /// Address space in the high 16 bits, slot id in the low 16.
    pub slot: u32,
    /// `KVM_MEM_*` flags.
    pub flags: u32,
    /// Guest physical start address.
    pub guest_phys_addr: u64,
    /// Size in bytes; 0 deletes the slot.
    pub memory_size: u64,
    /// Host virtual start address.
    pub userspace_addr: u64,
}

/// `enum kvm_mr_change`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// A new slot.
    Create,
    /// Remove a slot.
    Delete,
    /// Change an existing slot's base GFN (and possibly its dirty logging).
    Move,
    /// Toggle dirty logging of an existing slot.
    FlagsOnly,
}
