//! Which ports and states exist: [`Family`] (what a state's array and index look like) and
//! [`Port`] (one port compiled with a set of later upstream fixes).

use std::fmt;

use crate::ffi;

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

    pub(crate) fn fns(self) -> &'static ffi::PortFns {
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
/// [`crate::OutOfBounds`]); `false` under AddressSanitizer, which catches them itself.
pub fn guard_pages() -> bool {
    static GUARDED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: no arguments, no state.
    *GUARDED.get_or_init(|| unsafe { ffi::memslot_shim_guarded() != 0 })
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
