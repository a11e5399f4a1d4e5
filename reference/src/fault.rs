//! An access outside an allocation, caught by the shim's guard pages, and what a VM that
//! faulted answers from then on.

use std::fmt;

use crate::ffi;

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
    pub(crate) fn from_ffi(f: &ffi::MemslotApiFault) -> OutOfBounds {
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
pub(crate) trait Poisoned {
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
