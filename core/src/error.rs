//! Errors of `KVM_SET_USER_MEMORY_REGION`, convertible to the kernel's errno values.

use std::fmt;

/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `EEXIST`.
pub const EEXIST: i32 = 17;
/// `ENOMEM`.
pub const ENOMEM: i32 = 12;

/// Why a memory region request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// -EINVAL, with the validation step that refused.
    Invalid(Invalid),
    /// -EEXIST: the range overlaps slot `id` (the first one in walk order).
    Exists { id: u16 },
    /// -ENOMEM.
    NoMemory,
    /// An arch hook's negative errno, propagated.
    Arch(i32),
}

/// The validation step that gave -EINVAL, in the order the kernel checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The ioctl names a slot id at or above `user_mem_slots`.
    NotUserSlot,
    /// Unknown flag bits.
    Flags,
    /// `memory_size` not page aligned.
    SizeUnaligned,
    /// `guest_phys_addr` not page aligned.
    GpaUnaligned,
    /// `userspace_addr` not page aligned (user slots only).
    HvaUnaligned,
    /// `access_ok(userspace_addr, memory_size)` failed (user slots only).
    HvaRange,
    /// Address space id too large.
    AddressSpace,
    /// Slot id at or above `mem_slots_num`.
    SlotId,
    /// `guest_phys_addr + memory_size` wraps.
    GpaWraps,
    /// Deleting a slot that does not exist.
    DeleteAbsent,
    /// More than `max_nr_pages`.
    TooManyPages,
    /// An existing slot's `userspace_addr` cannot change.
    HvaChanged,
    /// An existing slot's size cannot change.
    SizeChanged,
    /// `KVM_MEM_READONLY` cannot be toggled on an existing slot.
    ReadonlyToggled,
}

impl Error {
    /// The kernel's return value: a negative errno.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Invalid(_) => -EINVAL,
            Error::Exists { .. } => -EEXIST,
            Error::NoMemory => -ENOMEM,
            Error::Arch(e) => *e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(why) => write!(f, "invalid memory region ({why:?})"),
            Error::Exists { id } => write!(f, "memory region overlaps slot {id}"),
            Error::NoMemory => f.write_str("out of memory"),
            Error::Arch(e) => write!(f, "arch hook failed with errno {e}"),
        }
    }
}

impl std::error::Error for Error {}
