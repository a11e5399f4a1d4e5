//! A port's `struct kvm_memslots` copied out: borrowed ([`StateRef`]) or owned and
//! converted ([`RawState`]), and the reused buffers the C side copies into.

use crate::ffi;
use crate::ApiSlot;

/// The bytes of an array of [`ApiSlot`]s, for a `memcmp`-speed comparison.
pub fn api_slot_bytes(slots: &[ApiSlot]) -> &[u8] {
    // SAFETY: ApiSlot is repr(C), made of integers only and has no padding (asserted above),
    // so every byte of the slice is initialised; u8 has no alignment requirement.
    unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<u8>(), std::mem::size_of_val(slots)) }
}

/// A borrowed view of one `struct kvm_memslots` as copied out of a port by
/// [`crate::PortVm::state_ref`]: nothing is converted or allocated.
#[derive(Clone, Copy, Debug)]
pub struct StateRef<'a> {
    pub generation: u64,
    pub used_slots: i32,
    pub lru_slot: i32,
    /// Entries allocated in `memslots[]`.
    pub capacity: usize,
    /// `memslots[0 .. min(capacity, max_entries)]`.
    pub entries: &'a [ApiSlot],
    /// All `KVM_MEM_SLOTS_NUM` values of `id_to_index[]` (the state's own count).
    pub id_to_index: &'a [i16],
}

impl StateRef<'_> {
    /// The owned, converted copy [`crate::PortVm::state`] returns.
    pub fn to_raw(&self) -> RawState {
        RawState {
            generation: self.generation,
            used_slots: self.used_slots,
            lru_slot: self.lru_slot,
            capacity: self.capacity,
            entries: self.entries.iter().map(RawSlot::from).collect(),
            id_to_index: self.id_to_index.to_vec(),
        }
    }
}

thread_local! {
    /// State buffers of dropped VMs, reused by the next ones: a fuzzer creates VMs for every
    /// input, and a zeroed 17 KiB allocation each time is measurable under AddressSanitizer.
    pub(crate) static SPARE_STATES: std::cell::RefCell<Vec<StateBuffer>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// What a state copy is written into: the header, and `KVM_MEM_SLOTS_NUM` entries and index
/// values of the VM's state (512, or 32,767 for modern-32k).
pub(crate) struct StateBuffer {
    pub(crate) header: ffi::MemslotApiState,
    pub(crate) entries: Vec<ApiSlot>,
    pub(crate) id_to_index: Vec<i16>,
}

impl StateBuffer {
    /// A spare buffer with room for `slots` ids, or a new one.
    pub(crate) fn take(slots: usize) -> StateBuffer {
        let spare = SPARE_STATES.with(|spare| {
            let mut spare = spare.borrow_mut();
            let i = spare.iter().position(|b| b.entries.len() == slots)?;
            Some(spare.swap_remove(i))
        });
        spare.unwrap_or_else(|| StateBuffer {
            header: ffi::MemslotApiState {
                generation: 0,
                used_slots: 0,
                lru_slot: 0,
                capacity: 0,
                nr_copied: 0,
                room: 0,
                slots_num: 0,
                entries: std::ptr::null_mut(),
                id_to_index: std::ptr::null_mut(),
            },
            entries: vec![ApiSlot::default(); slots],
            id_to_index: vec![0; slots],
        })
    }

    /// The header, pointing at this buffer's arrays, for the C side to fill.
    pub(crate) fn header(&mut self) -> *mut ffi::MemslotApiState {
        self.header.room = self.entries.len() as u32;
        self.header.entries = self.entries.as_mut_ptr();
        self.header.id_to_index = self.id_to_index.as_mut_ptr();
        &mut self.header
    }
}

/// One `struct kvm_memory_slot` as copied out of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSlot {
    pub id: i16,
    pub base_gfn: u64,
    pub npages: u64,
    pub flags: u32,
    pub userspace_addr: u64,
    pub has_dirty_bitmap: bool,
}

impl From<&ffi::MemslotApiSlot> for RawSlot {
    fn from(s: &ffi::MemslotApiSlot) -> Self {
        RawSlot {
            id: s.id,
            base_gfn: s.base_gfn,
            npages: s.npages,
            flags: s.flags,
            userspace_addr: s.userspace_addr,
            has_dirty_bitmap: s.has_dirty_bitmap != 0,
        }
    }
}

/// One `struct kvm_memslots` as copied out of a port, raw (not normalised).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawState {
    pub generation: u64,
    pub used_slots: i32,
    pub lru_slot: i32,
    /// Entries allocated in `memslots[]`.
    pub capacity: usize,
    /// `memslots[0 .. min(capacity, max_entries)]`.
    pub entries: Vec<RawSlot>,
    /// All `KVM_MEM_SLOTS_NUM` values of `id_to_index[]`.
    pub id_to_index: Vec<i16>,
}
