//! Literal C ports of Linux's memslot code, before and after
//! "KVM: Terminate memslot walks via used_slots", behind a safe Rust wrapper.
//!
//! * [`Port::Pre`]: Linux v5.6 (`c/pre/`): fixed array, identity `id_to_index`, walks
//!   that stop at the first empty entry, the single-routine `update_memslots()`.
//! * [`Port::Post`]: the seed patch applied (`c/post/`): `used_slots` bounds every walk,
//!   -1 marks absent ids, `kvm_memslot_delete()` / `insert_back()` / `move_backward()` /
//!   `move_forward()`, `id_to_memslot()` may return NULL.
//!
//! The wrapper adds nothing to the kernel's behaviour: it passes requests through,
//! copies state out, and counts the WARNs each VM's calls hit. The C code is GPL-2.0
//! (see `LICENSE`).

mod ffi;

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;

pub use ffi::layout_matches_c;

/// KVM_MEM_SLOTS_NUM on x86: 509 user + 3 private slots.
pub const KVM_MEM_SLOTS_NUM: usize = ffi::MEMSLOT_API_SLOTS_NUM;
/// KVM_USER_MEM_SLOTS on x86.
pub const KVM_USER_MEM_SLOTS: usize = 509;
/// KVM_ADDRESS_SPACE_NUM on x86 (address space 1 is SMM).
pub const KVM_ADDRESS_SPACE_NUM: usize = 2;

/// `struct kvm_userspace_memory_region`, shared with the C side.
pub type KvmUserspaceMemoryRegion = ffi::MemslotApiRegion;

/// One array entry exactly as the C side copies it out (`struct memslot_api_slot`): 32 bytes
/// without padding, so that arrays of them compare as bytes ([`api_slot_bytes`]).
pub type ApiSlot = ffi::MemslotApiSlot;

const _: () = assert!(
    std::mem::size_of::<ApiSlot>() == 8 + 8 + 8 + 4 + 2 + 1 + 1,
    "ApiSlot has no padding"
);

/// The bytes of an array of [`ApiSlot`]s, for a `memcmp`-speed comparison.
pub fn api_slot_bytes(slots: &[ApiSlot]) -> &[u8] {
    // SAFETY: ApiSlot is repr(C), made of integers only and has no padding (asserted above),
    // so every byte of the slice is initialised; u8 has no alignment requirement.
    unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<u8>(), std::mem::size_of_val(slots)) }
}

/// A borrowed view of one `struct kvm_memslots` as copied out of a port by
/// [`PortVm::state_ref`]: nothing is converted or allocated.
#[derive(Clone, Copy, Debug)]
pub struct StateRef<'a> {
    pub generation: u64,
    pub used_slots: i32,
    pub lru_slot: i32,
    /// Entries allocated in `memslots[]`.
    pub capacity: usize,
    /// `memslots[0 .. min(capacity, max_entries)]`.
    pub entries: &'a [ApiSlot],
    /// All `KVM_MEM_SLOTS_NUM` values of `id_to_index[]`.
    pub id_to_index: &'a [i16; KVM_MEM_SLOTS_NUM],
}

impl StateRef<'_> {
    /// The owned, converted copy [`PortVm::state`] returns.
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
    static SPARE_STATES: std::cell::RefCell<Vec<Box<ffi::MemslotApiState>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Which kernel state a port reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// Linux v5.6, before the seed patch.
    Pre,
    /// After the seed patch (upstream 0577d1abe704).
    Post,
}

impl Port {
    pub const ALL: [Port; 2] = [Port::Pre, Port::Post];

    pub fn name(self) -> &'static str {
        match self {
            Port::Pre => "pre",
            Port::Post => "post",
        }
    }

    fn fns(self) -> &'static ffi::PortFns {
        match self {
            Port::Pre => &ffi::PRE,
            Port::Post => &ffi::POST,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// A VM of one port: `kvm_create_vm()` on construction, `kvm_destroy_vm()` on drop.
pub struct PortVm {
    port: Port,
    kvm: NonNull<ffi::Kvm>,
    warns: u64,
    last_warn: Option<String>,
    /// Reused buffer for state copies (17 KiB): avoids an allocation per snapshot.
    /// `None` only while being dropped.
    state: Option<Box<ffi::MemslotApiState>>,
    /// Reused buffer for [`PortVm::walk`].
    walk: Vec<i16>,
}

// SAFETY: the C VM is owned by this value alone and the ports keep no global state
// except thread-local WARN counters, which are read within the call that bumps them.
unsafe impl Send for PortVm {}

impl PortVm {
    pub fn new(port: Port) -> PortVm {
        assert_layout_once();
        // SAFETY: create_vm has no preconditions; NULL means out of memory.
        let kvm = unsafe { (port.fns().create_vm)() };
        let kvm = NonNull::new(kvm).expect("kvm_create_vm: out of memory");
        PortVm {
            port,
            kvm,
            warns: 0,
            last_warn: None,
            state: Some(
                SPARE_STATES
                    .with(|spare| spare.borrow_mut().pop())
                    .unwrap_or_else(zeroed_state),
            ),
            walk: Vec::new(),
        }
    }

    pub fn port(&self) -> Port {
        self.port
    }

    /// Runs `f` on the C VM and charges the WARNs it hits to this VM.
    fn call<T>(&mut self, f: impl FnOnce(&ffi::PortFns, *mut ffi::Kvm) -> T) -> T {
        let fns = self.port.fns();
        // SAFETY: the counters are plain thread-local reads.
        let before = unsafe { (fns.warn_count)() };
        let result = f(fns, self.kvm.as_ptr());
        let after = unsafe { (fns.warn_count)() };
        if after != before {
            self.warns += after - before;
            // SAFETY: last_warn is NULL or a string literal of the port.
            let text = unsafe { (fns.last_warn)() };
            if !text.is_null() {
                self.last_warn = Some(
                    unsafe { CStr::from_ptr(text) }
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        result
    }

    /// `KVM_SET_USER_MEMORY_REGION`: `kvm_vm_ioctl_set_memory_region()`.
    pub fn ioctl_set_memory_region(&mut self, region: &KvmUserspaceMemoryRegion) -> i32 {
        // SAFETY: the region is a valid pointer for the duration of the call.
        self.call(|f, kvm| unsafe { (f.ioctl_set_memory_region)(kvm, region) })
    }

    /// An in-kernel request: `kvm_set_memory_region()`, which may name private ids.
    pub fn set_memory_region(&mut self, region: &KvmUserspaceMemoryRegion) -> i32 {
        // SAFETY: as above.
        self.call(|f, kvm| unsafe { (f.set_memory_region)(kvm, region) })
    }

    /// `search_memslots()`: the slot's index and a copy of it, or None for NULL or a bad AS.
    pub fn search_memslots(&mut self, as_id: u16, gfn: u64) -> Option<(i32, RawSlot)> {
        let mut out = ffi::MemslotApiSlot::default();
        // SAFETY: `out` is valid for writes; the C side range-checks as_id.
        let index =
            self.call(|f, kvm| unsafe { (f.search_memslots)(kvm, as_id.into(), gfn, &mut out) });
        (index >= 0).then(|| (index, RawSlot::from(&out)))
    }

    /// `id_to_memslot()`. The pre port returns an entry for every id below 512.
    pub fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<(i32, RawSlot)> {
        let mut out = ffi::MemslotApiSlot::default();
        // SAFETY: as above; the C side range-checks as_id and id.
        let index = self
            .call(|f, kvm| unsafe { (f.id_to_memslot)(kvm, as_id.into(), id.into(), &mut out) });
        (index >= 0).then(|| (index, RawSlot::from(&out)))
    }

    /// The ids `kvm_for_each_memslot()` visits, in order, in a buffer reused across calls.
    pub fn walk(&mut self, as_id: u16) -> &[i16] {
        let mut ids = std::mem::take(&mut self.walk);
        ids.resize(KVM_MEM_SLOTS_NUM, 0);
        let cap = ids.len() as i32;
        // SAFETY: `ids` holds `cap` entries; the walk visits at most KVM_MEM_SLOTS_NUM.
        let n = self.call(|f, kvm| unsafe {
            (f.for_each_memslot)(kvm, as_id.into(), ids.as_mut_ptr(), cap)
        });
        ids.truncate(n.clamp(0, cap) as usize);
        self.walk = ids;
        &self.walk
    }

    /// The walk copied by the last [`PortVm::walk`] (empty before the first).
    pub fn last_walk(&self) -> &[i16] {
        &self.walk
    }

    /// The ids `kvm_for_each_memslot()` visits, in order, as an owned copy of [`PortVm::walk`].
    pub fn for_each_memslot(&mut self, as_id: u16) -> Vec<i16> {
        self.walk(as_id).to_vec()
    }

    /// A copy of address space `as_id`, with at most `max_entries` array entries.
    ///
    /// Panics if `as_id` is not an address space (a caller bug, not a kernel behaviour).
    pub fn state(&mut self, as_id: u16, max_entries: usize) -> RawState {
        self.state_ref(as_id, max_entries).to_raw()
    }

    /// [`PortVm::state`] without the copy: a view of the buffer the C side copied into,
    /// valid until the next call.
    ///
    /// Panics if `as_id` is not an address space (a caller bug, not a kernel behaviour).
    pub fn state_ref(&mut self, as_id: u16, max_entries: usize) -> StateRef<'_> {
        let max = max_entries.min(KVM_MEM_SLOTS_NUM) as u32;
        let mut buffer = self.state.take().expect("state buffer");
        let state: *mut ffi::MemslotApiState = &mut *buffer;
        // SAFETY: `state` points at an owned, properly sized buffer.
        let r = self.call(|f, kvm| unsafe { (f.get_state)(kvm, as_id.into(), state, max) });
        self.state = Some(buffer);
        assert_eq!(r, 0, "address space {as_id} does not exist");
        self.last_state()
    }

    /// The state copied by the last [`PortVm::state_ref`] (or [`PortVm::state`]), without a
    /// new copy.
    pub fn last_state(&self) -> StateRef<'_> {
        let s = self.state.as_deref().expect("state buffer");
        StateRef {
            generation: s.generation,
            used_slots: s.used_slots,
            lru_slot: s.lru_slot,
            capacity: s.capacity as usize,
            entries: &s.entries[..(s.nr_copied as usize).min(KVM_MEM_SLOTS_NUM)],
            id_to_index: &s.id_to_index,
        }
    }

    /// The LRU hint of address space `as_id` (-22 for a bad AS).
    pub fn lru_slot(&mut self, as_id: u16) -> i32 {
        // SAFETY: the C side range-checks as_id.
        self.call(|f, kvm| unsafe { (f.lru_slot)(kvm, as_id.into()) })
    }

    /// Restores the LRU hint after lookups made only to compare implementations.
    pub fn set_lru_slot(&mut self, as_id: u16, lru: i32) {
        // SAFETY: the C side range-checks both values.
        self.call(|f, kvm| unsafe { (f.set_lru_slot)(kvm, as_id.into(), lru) })
    }

    /// What `kvm_arch_prepare_memory_region()` returns from now on (0: success).
    pub fn set_prepare_error(&mut self, errno: i32) {
        // SAFETY: plain store into the VM.
        self.call(|f, kvm| unsafe { (f.set_prepare_error)(kvm, errno) })
    }

    /// WARN_ON / WARN_ON_ONCE hits in this VM's calls so far.
    pub fn warn_count(&self) -> u64 {
        self.warns
    }

    /// `file:line: WARN_ON(condition)` of the latest hit.
    pub fn last_warn(&self) -> Option<&str> {
        self.last_warn.as_deref()
    }
}

impl Drop for PortVm {
    fn drop(&mut self) {
        // SAFETY: the VM was created by this port and is destroyed once.
        self.call(|f, kvm| unsafe { (f.destroy_vm)(kvm) });
        // Keep the state buffer for the next VM (a few, for tests that hold many VMs).
        SPARE_STATES.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < 4 {
                spare.extend(self.state.take());
            }
        });
    }
}

impl fmt::Debug for PortVm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortVm")
            .field("port", &self.port)
            .field("warns", &self.warns)
            .finish()
    }
}

fn zeroed_state() -> Box<ffi::MemslotApiState> {
    // SAFETY: every field is an integer or an array of integers: all-zero is valid.
    unsafe { Box::new(std::mem::zeroed()) }
}

fn assert_layout_once() {
    static CHECK: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if let Err(e) = CHECK.get_or_init(layout_matches_c) {
        panic!("memslot-reference was built with a mismatched C API: {e}");
    }
}
