//! A VM of one port state: requests, lookups, walks and state copies, each call charged
//! with the WARNs it hit, the allocations it made and the out-of-bounds access it faulted on.

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;

use crate::fault::{OutOfBounds, Poisoned};
use crate::state::{StateBuffer, SPARE_STATES};
use crate::{
    ffi, guard_pages, layout_matches_c, KvmUserspaceMemoryRegion, KvmUserspaceMemoryRegion2,
    MrChange, Port, RawSlot, RawState, StateRef, FAULTED,
};

/// A VM of one port: `kvm_create_vm()` on construction, `kvm_destroy_vm()` on drop.
pub struct PortVm {
    port: Port,
    kvm: NonNull<ffi::Kvm>,
    warns: u64,
    last_warn: Option<String>,
    /// The first out-of-bounds access caught: from then on, no call reaches the C VM.
    fault: Option<OutOfBounds>,
    /// `KVM_MEM_SLOTS_NUM` of the port state: the ids its index and walks cover.
    slots_num: usize,
    /// Reused buffer for state copies (17 KiB at 512 slots): avoids an allocation per
    /// snapshot. `None` only while being dropped.
    state: Option<StateBuffer>,
    /// Reused buffer for [`PortVm::walk`].
    walk: Vec<i16>,
    /// Reused buffer for the range queries.
    ranges: Vec<i16>,
    /// Reused buffers for the batched lookups: slots, indices, LRU hints.
    batch: (Vec<ffi::MemslotApiSlot>, Vec<i32>, Vec<i32>),
    /// The shim's allocations this VM holds (made and not freed in its calls), and how many
    /// it held right after kvm_create_vm.
    allocations: i64,
    created_allocations: i64,
}

// SAFETY: the C VM is owned by this value alone and the ports keep no global state
// except thread-local WARN counters, which are read within the call that bumps them.
unsafe impl Send for PortVm {}

impl PortVm {
    pub fn new(port: Port) -> PortVm {
        assert_layout_once();
        let live = live_allocations();
        // SAFETY: create_vm has no preconditions; NULL means out of memory.
        let kvm = unsafe { (port.fns().create_vm)() };
        let kvm = NonNull::new(kvm).expect("kvm_create_vm: out of memory");
        PortVm::wrap(port, kvm, live)
    }

    /// `KVM_CREATE_VM(vm_type)`: `Err(errno)` where the port's x86 refuses the type (v5.6
    /// knows only type 0; the modern port also `KVM_X86_SW_PROTECTED_VM`, 1).
    pub fn with_vm_type(port: Port, vm_type: u64) -> Result<PortVm, i32> {
        assert_layout_once();
        let live = live_allocations();
        let mut error = 0;
        // SAFETY: `error` is valid for writes; NULL comes with an errno in it.
        let kvm = unsafe { (port.fns().create_vm_type)(vm_type, &mut error) };
        match NonNull::new(kvm) {
            Some(kvm) => Ok(PortVm::wrap(port, kvm, live)),
            None => Err(error),
        }
    }

    fn wrap(port: Port, kvm: NonNull<ffi::Kvm>, live: i64) -> PortVm {
        let created_allocations = live_allocations() - live;
        // SAFETY: a constant of the state.
        let slots_num =
            usize::try_from(unsafe { (port.fns().mem_slots_num)() }).expect("KVM_MEM_SLOTS_NUM");
        PortVm {
            port,
            kvm,
            slots_num,
            warns: 0,
            last_warn: None,
            fault: None,
            state: Some(StateBuffer::take(slots_num)),
            walk: Vec::new(),
            ranges: Vec::new(),
            batch: Default::default(),
            allocations: created_allocations,
            created_allocations,
        }
    }

    /// The shim's allocations this VM holds now, and held right after it was created: the
    /// port's arrays plus one dirty bitmap per slot that logs dirty pages. More is a leak.
    pub fn allocations(&self) -> (i64, i64) {
        (self.allocations, self.created_allocations)
    }

    /// `KVM_MEM_SLOTS_NUM` of the port state: 512 on the 2020 ports' x86, `SHRT_MAX` for
    /// modern-32k. Ids below it have an `id_to_index[]` value in every state copy.
    pub fn mem_slots_num(&self) -> usize {
        self.slots_num
    }

    pub fn port(&self) -> Port {
        self.port
    }

    /// The out-of-bounds access the shim caught in one of this VM's calls, if any. After one,
    /// every call returns at once (requests and lookups as [`FAULTED`]) and the VM is leaked
    /// rather than destroyed, since its state is whatever the port left when it faulted.
    pub fn fault(&self) -> Option<&OutOfBounds> {
        self.fault.as_ref()
    }

    /// `update_memslots()` called directly on a copy of the installed array, which then
    /// replaces it (no validation, no generation change): 0, -EINVAL for an id, AS or change
    /// the port cannot name, or [`FAULTED`].
    pub fn update_memslots(&mut self, as_id: u16, slot: &RawSlot, change: MrChange) -> i32 {
        let api = ffi::MemslotApiSlot {
            base_gfn: slot.base_gfn,
            npages: slot.npages,
            userspace_addr: slot.userspace_addr,
            flags: slot.flags,
            id: slot.id,
            has_dirty_bitmap: 0,
            reserved: 0,
        };
        // SAFETY: `api` is valid for the duration of the call; the C side range-checks.
        self.call(|f, kvm| unsafe { (f.update_memslots)(kvm, as_id.into(), &api, change as i32) })
    }

    /// Runs `f` on the C VM, charges the WARNs it hits to this VM and records an out-of-bounds
    /// access the shim caught. After one, `f` is not run again.
    fn call<T: Poisoned>(&mut self, f: impl FnOnce(&ffi::PortFns, *mut ffi::Kvm) -> T) -> T {
        if self.fault.is_some() {
            return T::poisoned();
        }
        let fns = self.port.fns();
        // SAFETY: the counters are plain thread-local reads.
        let before = unsafe { (fns.warn_count)() };
        let live = live_allocations();
        let result = f(fns, self.kvm.as_ptr());
        self.allocations += live_allocations() - live;
        // Under AddressSanitizer the shim catches nothing (ASan reports and stops): skip the
        // question on a fuzzer's hot path.
        if guard_pages() {
            let mut fault = ffi::MemslotApiFault::default();
            // SAFETY: `fault` is valid for writes; the record is thread-local, like the call.
            if unsafe { ffi::memslot_shim_take_fault(&mut fault) } != 0 {
                self.fault = Some(OutOfBounds::from_ffi(&fault));
            }
        }
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

    /// `KVM_SET_USER_MEMORY_REGION2` (v6.8): -ENOTTY in the 2020 ports, which predate it.
    pub fn ioctl_set_memory_region2(&mut self, region: &KvmUserspaceMemoryRegion2) -> i32 {
        // SAFETY: the region is a valid pointer for the duration of the call.
        self.call(|f, kvm| unsafe { (f.ioctl_set_memory_region2)(kvm, region) })
    }

    /// `KVM_CREATE_GUEST_MEMFD`: the new file's fd, or a negative errno (-ENOTTY before v6.8).
    pub fn create_guest_memfd(&mut self, size: u64, flags: u64) -> i32 {
        // SAFETY: plain values.
        self.call(|f, kvm| unsafe { (f.create_guest_memfd)(kvm, size, flags) })
    }

    /// An in-kernel request: `kvm_set_memory_region()`, which may name private ids.
    pub fn set_memory_region(&mut self, region: &KvmUserspaceMemoryRegion) -> i32 {
        // SAFETY: as above.
        self.call(|f, kvm| unsafe { (f.set_memory_region)(kvm, region) })
    }

    /// `search_memslots()`: the slot's index (or [`NOT_IN_ARRAY`]) and a copy of it, or None for
    /// NULL or a bad AS.
    pub fn search_memslots(&mut self, as_id: u16, gfn: u64) -> Option<(i32, RawSlot)> {
        let mut out = ffi::MemslotApiSlot::default();
        // SAFETY: `out` is valid for writes; the C side range-checks as_id.
        let index =
            self.call(|f, kvm| unsafe { (f.search_memslots)(kvm, as_id.into(), gfn, &mut out) });
        found(index).then(|| (index, RawSlot::from(&out)))
    }

    /// [`PortVm::search_memslots`] at each of `gfns` in turn, in one call into the port:
    /// `(index, slot, LRU hint after the lookup)` for each (`None` where nothing was found,
    /// or for all of them if the port faulted), into `out`.
    pub fn search_each(
        &mut self,
        as_id: u16,
        gfns: &[u64],
        out: &mut Vec<(Option<(i32, RawSlot)>, i32)>,
    ) {
        let (mut slots, mut index, mut lru) = std::mem::take(&mut self.batch);
        let n = gfns.len();
        slots.resize(n, ffi::MemslotApiSlot::default());
        index.resize(n, -1);
        lru.resize(n, -1);
        // SAFETY: every buffer holds `n` entries; the C side range-checks as_id.
        let r = self.call(|f, kvm| unsafe {
            (f.search_each)(
                kvm,
                as_id.into(),
                gfns.as_ptr(),
                n as i32,
                slots.as_mut_ptr(),
                index.as_mut_ptr(),
                lru.as_mut_ptr(),
            )
        });
        out.clear();
        out.extend((0..n).map(|i| {
            let hit = (r >= 0 && found(index[i])).then(|| (index[i], RawSlot::from(&slots[i])));
            (hit, if r >= 0 { lru[i] } else { -1 })
        }));
        self.batch = (slots, index, lru);
    }

    /// [`PortVm::id_to_memslot`] for each of `ids`, in one call into the port, into `out`.
    pub fn id_to_memslot_each(
        &mut self,
        as_id: u16,
        ids: &[u16],
        out: &mut Vec<Option<(i32, RawSlot)>>,
    ) {
        let (mut slots, mut index, mut wanted) = std::mem::take(&mut self.batch);
        let n = ids.len();
        slots.resize(n, ffi::MemslotApiSlot::default());
        index.resize(n, -1);
        wanted.clear();
        wanted.extend(ids.iter().map(|&id| i32::from(id)));
        // SAFETY: every buffer holds `n` entries; the C side range-checks as_id and each id.
        let r = self.call(|f, kvm| unsafe {
            (f.id_to_memslot_each)(
                kvm,
                as_id.into(),
                wanted.as_ptr(),
                n as i32,
                slots.as_mut_ptr(),
                index.as_mut_ptr(),
            )
        });
        out.clear();
        out.extend(
            (0..n)
                .map(|i| (r >= 0 && found(index[i])).then(|| (index[i], RawSlot::from(&slots[i])))),
        );
        self.batch = (slots, index, wanted);
    }

    /// `id_to_memslot()`. The pre port returns an entry for every id below 512.
    pub fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<(i32, RawSlot)> {
        let mut out = ffi::MemslotApiSlot::default();
        // SAFETY: as above; the C side range-checks as_id and id.
        let index = self
            .call(|f, kvm| unsafe { (f.id_to_memslot)(kvm, as_id.into(), id.into(), &mut out) });
        found(index).then(|| (index, RawSlot::from(&out)))
    }

    /// The ids `kvm_for_each_memslot()` visits, in order, in a buffer reused across calls.
    pub fn walk(&mut self, as_id: u16) -> &[i16] {
        let mut ids = std::mem::take(&mut self.walk);
        ids.resize(self.slots_num, 0);
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

    /// The ids of the slots overlapping the GFN range `[start, end)`, in walk order: the
    /// linear walk of `kvm_zap_gfn_range()` (v5.6-v5.16). Empty for a bad AS.
    pub fn gfn_range_memslots(&mut self, as_id: u16, start: u64, end: u64) -> Vec<i16> {
        self.gfn_ranges(as_id, start, end).to_vec()
    }

    /// The ids of the slots whose host range overlaps `[start, end)`, in walk order: the
    /// linear walk of `kvm_handle_hva_range()` (v5.6-v5.16). Empty for a bad AS.
    pub fn hva_range_memslots(&mut self, as_id: u16, start: u64, end: u64) -> Vec<i16> {
        self.hva_ranges(as_id, start, end).to_vec()
    }

    /// [`PortVm::gfn_range_memslots`] without the copy: a view of a buffer reused across
    /// calls, valid until the next one.
    pub fn gfn_ranges(&mut self, as_id: u16, start: u64, end: u64) -> &[i16] {
        self.range(as_id, start, end, false)
    }

    /// [`PortVm::hva_range_memslots`] without the copy.
    pub fn hva_ranges(&mut self, as_id: u16, start: u64, end: u64) -> &[i16] {
        self.range(as_id, start, end, true)
    }

    fn range(&mut self, as_id: u16, start: u64, end: u64, hva: bool) -> &[i16] {
        // A buffer kept across queries: no allocation of 512 entries per query.
        let mut ids = std::mem::take(&mut self.ranges);
        ids.resize(self.slots_num, 0);
        let cap = ids.len() as i32;
        // SAFETY: `ids` holds `cap` entries and the C side writes at most `cap`.
        let n = self.call(|f, kvm| unsafe {
            let query = if hva {
                f.hva_range_memslots
            } else {
                f.gfn_range_memslots
            };
            query(kvm, as_id.into(), start, end, ids.as_mut_ptr(), cap)
        });
        self.ranges = ids;
        &self.ranges[..n.clamp(0, cap) as usize]
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
        let max = max_entries.min(self.slots_num) as u32;
        let mut buffer = self.state.take().expect("state buffer");
        let state = buffer.header();
        // SAFETY: `state` points at an owned header whose arrays hold `room` entries each,
        // KVM_MEM_SLOTS_NUM of the state (so it never answers -ENOSPC).
        let r = self.call(|f, kvm| unsafe { (f.get_state)(kvm, as_id.into(), state, max) });
        self.state = Some(buffer);
        // After a fault the buffer keeps the previous copy; the caller checks `fault()`.
        assert!(
            r == 0 || r == FAULTED,
            "address space {as_id} does not exist"
        );
        self.last_state()
    }

    /// The state copied by the last [`PortVm::state_ref`] (or [`PortVm::state`]), without a
    /// new copy.
    pub fn last_state(&self) -> StateRef<'_> {
        let b = self.state.as_ref().expect("state buffer");
        let s = &b.header;
        StateRef {
            generation: s.generation,
            used_slots: s.used_slots,
            lru_slot: s.lru_slot,
            capacity: s.capacity as usize,
            entries: &b.entries[..(s.nr_copied as usize).min(b.entries.len())],
            id_to_index: &b.id_to_index,
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

    /// The port's structural invariants of address space `as_id` between two requests, which
    /// no lookup sees: for the tree-based port both sets' red-black and interval trees, the id
    /// hash, `last_used_slot` and the sync of the inactive set; for the array ports the
    /// bounds of `used_slots` and `id_to_index[]`. `Err` says what is wrong.
    pub fn check_structure(&mut self, as_id: u16) -> Result<(), String> {
        let mut msg = [0 as std::ffi::c_char; 256];
        let len = msg.len() as i32;
        // SAFETY: `msg` holds `len` bytes; the C side writes a NUL-terminated message into it.
        let r = self.call(|f, kvm| unsafe {
            (f.check_structure)(kvm, as_id.into(), msg.as_mut_ptr(), len)
        });
        match r {
            0 => Ok(()),
            // The fault itself is reported by the caller's check of `fault()`.
            FAULTED => Ok(()),
            1 => {
                msg[msg.len() - 1] = 0;
                // SAFETY: NUL-terminated just above at the latest.
                Err(unsafe { CStr::from_ptr(msg.as_ptr()) }
                    .to_string_lossy()
                    .into_owned())
            }
            _ => panic!("address space {as_id} does not exist"),
        }
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

/// The index a lookup of the tree-based port reports for a slot its gfn tree does not hold
/// (a stale `last_used_slot`, a hash entry of a removed slot): found, but outside the array.
pub const NOT_IN_ARRAY: i32 = -2;

/// Whether a lookup's index says it found a slot: an array index, or [`NOT_IN_ARRAY`].
fn found(index: i32) -> bool {
    index >= 0 || index == NOT_IN_ARRAY
}

/// The shim's allocations this thread holds.
fn live_allocations() -> i64 {
    // SAFETY: a thread-local read.
    unsafe { ffi::memslot_shim_live_allocations() }
}

impl Drop for PortVm {
    fn drop(&mut self) {
        // SAFETY: the VM was created by this port and is destroyed once (not at all after a
        // fault: `call` does not run then, and the VM leaks).
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

fn assert_layout_once() {
    static CHECK: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if let Err(e) = CHECK.get_or_init(layout_matches_c) {
        panic!("memslot-reference was built with a mismatched C API: {e}");
    }
}
