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

mod ffi;

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;

pub use ffi::layout_matches_c;

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
    /// All `KVM_MEM_SLOTS_NUM` values of `id_to_index[]` (the state's own count).
    pub id_to_index: &'a [i16],
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
    static SPARE_STATES: std::cell::RefCell<Vec<StateBuffer>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// What a state copy is written into: the header, and `KVM_MEM_SLOTS_NUM` entries and index
/// values of the VM's state (512, or 32,767 for modern-32k).
struct StateBuffer {
    header: ffi::MemslotApiState,
    entries: Vec<ApiSlot>,
    id_to_index: Vec<i16>,
}

impl StateBuffer {
    /// A spare buffer with room for `slots` ids, or a new one.
    fn take(slots: usize) -> StateBuffer {
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
    fn header(&mut self) -> *mut ffi::MemslotApiState {
        self.header.room = self.entries.len() as u32;
        self.header.entries = self.entries.as_mut_ptr();
        self.header.id_to_index = self.id_to_index.as_mut_ptr();
        &mut self.header
    }
}

/// Which port a state belongs to: what its array and index look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// `c/pre/`: a fixed array of 512 entries, every id always has an index.
    Pre,
    /// `c/post/`: a fixed array, -1 marks absent ids.
    Post,
    /// `c/post15/`: an array of exactly the entries allocated, -1 marks absent ids.
    Post15,
    /// `c/modern/`: no array: an id hash, a gfn rb-tree and an hva interval tree in each of
    /// two sets per address space (a54d806688fe onward). Its C API reports the gfn tree in
    /// descending order as the "array" and a slot's rank in it as its index.
    Modern,
}

/// Which kernel state a port reproduces: a port and the later upstream fixes compiled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// Linux v5.6, before the seed patch.
    Pre,
    /// v5.6 with "KVM: Reinstall old memslots if arch preparation fails" and b6467ab142b7.
    PreFixed,
    /// [`Port::PreFixed`] without the reinstall fix: the INVALID copy stays installed when arch
    /// preparation fails.
    PreBugPrepareInvalid,
    /// [`Port::PreFixed`] without b6467ab142b7: with all 512 slots in use, a lookup below the
    /// lowest slot reads `memslots[512]`.
    PreBugBelowLowestFull,
    /// After the seed patch (upstream 0577d1abe704).
    Post,
    /// [`Port::Post`] with b6467ab142b7, the later fix of the bug it shares with v5.6.
    PostFixed,
    /// Exactly sized arrays (36947254e5f9) with every later fix.
    Post15,
    /// 36947254e5f9 as merged, with all of its bugs.
    Post15Merged,
    /// [`Port::Post15`] without the LRU reset of 0774a964ef56.
    Post15BugStaleLru,
    /// [`Port::Post15`] without the empty-array check of 0774a964ef56.
    Post15BugEmptyArray,
    /// [`Port::Post15`] without b6467ab142b7.
    Post15BugBelowLowest,
    /// [`Port::Post15`] without 1e8617d37fc3.
    Post15BugUpdateAbsentId,
    /// [`Port::Post15`] broken on purpose, in no kernel: `kvm_memslot_delete()` keeps the
    /// deleted id's index. For the harness's self-test only.
    Post15SelftestDeleteKeepsIndex,
    /// The tree-based code (v5.17 onward) as of v6.8-v6.12, with
    /// `KVM_SET_USER_MEMORY_REGION2` and guest_memfd bindings.
    Modern,
    /// [`Port::Modern`] at today's x86 slot count: 32,764 user slots and 3 private ones
    /// (`KVM_MEM_SLOTS_NUM` = `SHRT_MAX`), allocated without guard pages.
    Modern32k,
    /// [`Port::Modern`] broken on purpose, in no kernel: `kvm_replace_memslot()` leaves
    /// `last_used_slot` naming the slot it replaces. For the harness's self-test only.
    ModernSelftestStaleCache,
    /// The user's own copy of a port, built with `MEMSLOT_VARIANT=STATE:DIR` as that state
    /// (see [`Port::variant`]). Not in [`Port::ALL`]; only there when built.
    Variant,
}

impl Port {
    pub const ALL: [Port; 16] = [
        Port::Pre,
        Port::PreFixed,
        Port::PreBugPrepareInvalid,
        Port::PreBugBelowLowestFull,
        Port::Post,
        Port::PostFixed,
        Port::Post15,
        Port::Post15Merged,
        Port::Post15BugStaleLru,
        Port::Post15BugEmptyArray,
        Port::Post15BugBelowLowest,
        Port::Post15BugUpdateAbsentId,
        Port::Post15SelftestDeleteKeepsIndex,
        Port::Modern,
        Port::Modern32k,
        Port::ModernSelftestStaleCache,
    ];

    /// The name reports and command lines use: `pre`, `post15-bug-stale-lru`, ...
    pub fn name(self) -> &'static str {
        match self {
            Port::Pre => "pre",
            Port::PreFixed => "pre-fixed",
            Port::PreBugPrepareInvalid => "pre-bug-prepare-invalid",
            Port::PreBugBelowLowestFull => "pre-bug-below-lowest-full",
            Port::Post => "post",
            Port::PostFixed => "post-fixed",
            Port::Post15 => "post15",
            Port::Post15Merged => "post15-merged",
            Port::Post15BugStaleLru => "post15-bug-stale-lru",
            Port::Post15BugEmptyArray => "post15-bug-empty-array",
            Port::Post15BugBelowLowest => "post15-bug-below-lowest",
            Port::Post15BugUpdateAbsentId => "post15-bug-update-absent-id",
            Port::Post15SelftestDeleteKeepsIndex => "post15-selftest-delete-keeps-index",
            Port::Modern => "modern",
            Port::Modern32k => "modern-32k",
            Port::ModernSelftestStaleCache => "modern-selftest-stale-cache",
            Port::Variant => "variant",
        }
    }

    pub fn from_name(name: &str) -> Option<Port> {
        Port::ALL
            .into_iter()
            .chain(Port::variant().map(|_| Port::Variant))
            .find(|p| p.name() == name)
    }

    /// The state the user's variant was built as and the directory it was built from, if
    /// this build has one (`MEMSLOT_VARIANT=STATE:DIR` at build time).
    pub fn variant() -> Option<(Port, &'static str)> {
        let (_, state, source) = ffi::VARIANT_OF?;
        let base = Port::ALL.into_iter().find(|p| p.c_name() == state)?;
        Some((base, source))
    }

    /// The name of its translation unit, `c/states/<c_name>.c`.
    pub fn c_name(self) -> String {
        self.name().replace('-', "_")
    }

    pub fn family(self) -> Family {
        match self {
            Port::Pre
            | Port::PreFixed
            | Port::PreBugPrepareInvalid
            | Port::PreBugBelowLowestFull => Family::Pre,
            Port::Post | Port::PostFixed => Family::Post,
            Port::Post15
            | Port::Post15Merged
            | Port::Post15BugStaleLru
            | Port::Post15BugEmptyArray
            | Port::Post15BugBelowLowest
            | Port::Post15BugUpdateAbsentId
            | Port::Post15SelftestDeleteKeepsIndex => Family::Post15,
            Port::Modern | Port::Modern32k | Port::ModernSelftestStaleCache => Family::Modern,
            Port::Variant => Port::variant().map_or(Family::Modern, |(base, _)| base.family()),
        }
    }

    fn fns(self) -> &'static ffi::PortFns {
        match self {
            Port::Pre => &ffi::PRE,
            Port::PreFixed => &ffi::PRE_FIXED,
            Port::PreBugPrepareInvalid => &ffi::PRE_BUG_PREPARE_INVALID,
            Port::PreBugBelowLowestFull => &ffi::PRE_BUG_BELOW_LOWEST_FULL,
            Port::Post => &ffi::POST,
            Port::PostFixed => &ffi::POST_FIXED,
            Port::Post15 => &ffi::POST15,
            Port::Post15Merged => &ffi::POST15_MERGED,
            Port::Post15BugStaleLru => &ffi::POST15_BUG_STALE_LRU,
            Port::Post15BugEmptyArray => &ffi::POST15_BUG_EMPTY_ARRAY,
            Port::Post15BugBelowLowest => &ffi::POST15_BUG_BELOW_LOWEST,
            Port::Post15BugUpdateAbsentId => &ffi::POST15_BUG_UPDATE_ABSENT_ID,
            Port::Post15SelftestDeleteKeepsIndex => &ffi::POST15_SELFTEST_DELETE_KEEPS_INDEX,
            Port::Modern => &ffi::MODERN,
            Port::Modern32k => &ffi::MODERN_32K,
            Port::ModernSelftestStaleCache => &ffi::MODERN_SELFTEST_STALE_CACHE,
            Port::Variant => {
                ffi::VARIANT_OF
                    .expect("no variant in this build: build with MEMSLOT_VARIANT=STATE:DIR")
                    .0
            }
        }
    }
}

/// The C name of every state compiled from `c/states/`, for a test that [`Port::ALL`] covers them.
pub fn compiled_states() -> &'static [&'static str] {
    ffi::STATES
}

/// Whether out-of-bounds accesses are caught by the shim's guard pages (and reported as
/// [`OutOfBounds`]); `false` under AddressSanitizer, which catches them itself.
pub fn guard_pages() -> bool {
    static GUARDED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: no arguments, no state.
    *GUARDED.get_or_init(|| unsafe { ffi::memslot_shim_guarded() != 0 })
}

/// An access outside an allocation made by a port, caught by the shim: the call that made it
/// returned early and the VM is not used again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// The C API function that was running (`memslot_post15_search_memslots`, ...).
    pub function: String,
    pub addr: u64,
    pub alloc_start: u64,
    pub alloc_size: u64,
    /// In the guard pages after the allocation (else: the canary before it was overwritten).
    pub past_end: bool,
    pub is_write: bool,
}

impl OutOfBounds {
    fn from_ffi(f: &ffi::MemslotApiFault) -> OutOfBounds {
        let bytes: Vec<u8> = f
            .function
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        OutOfBounds {
            function: String::from_utf8_lossy(&bytes).into_owned(),
            addr: f.addr,
            alloc_start: f.alloc_start,
            alloc_size: f.alloc_size,
            past_end: f.kind == 1,
            is_write: f.is_write != 0,
        }
    }
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.past_end {
            let offset = self.addr.wrapping_sub(self.alloc_start + self.alloc_size);
            write!(
                f,
                "{} {} bytes past the end of a {}-byte allocation, in {}",
                if self.is_write { "write" } else { "read" },
                offset,
                self.alloc_size,
                self.function
            )
        } else {
            write!(
                f,
                "write before the start of a {}-byte allocation (its canary was overwritten), \
                 found in {}",
                self.alloc_size, self.function
            )
        }
    }
}

/// What a call into a VM that already faulted returns instead of running.
trait Poisoned {
    fn poisoned() -> Self;
}

impl Poisoned for i32 {
    fn poisoned() -> Self {
        ffi::MEMSLOT_API_FAULTED
    }
}

impl Poisoned for () {
    fn poisoned() -> Self {}
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
