//! The operations a program (a fuzz input, a scenario file, a stress run) is made of.
//!
//! Every operation is concrete: generators resolve their layout-steered "intents" into these
//! before anything runs, so a program can always be printed as scenario text, encoded as bytes
//! and replayed exactly.

use arbitrary::Arbitrary;
use serde::Serialize;

/// `PAGE_SHIFT` (4 KiB pages).
pub const PAGE_SHIFT: u32 = 12;
/// `PAGE_SIZE`.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// `KVM_MEM_LOG_DIRTY_PAGES`.
pub const KVM_MEM_LOG_DIRTY_PAGES: u32 = 1 << 0;
/// `KVM_MEM_READONLY`.
pub const KVM_MEM_READONLY: u32 = 1 << 1;
/// `KVM_MEMSLOT_INVALID` (internal; set while a slot is being deleted or moved).
pub const KVM_MEMSLOT_INVALID: u32 = 1 << 16;
/// x86 `KVM_USER_MEM_SLOTS`.
pub const KVM_USER_MEM_SLOTS: u16 = 509;
/// x86 `KVM_MEM_SLOTS_NUM` (user + 3 private slots).
pub const KVM_MEM_SLOTS_NUM: u16 = 512;
/// x86 `KVM_ADDRESS_SPACE_NUM` (AS 1 is SMM).
pub const KVM_ADDRESS_SPACE_NUM: u16 = 2;
/// `KVM_MEM_MAX_NR_PAGES`.
pub const KVM_MEM_MAX_NR_PAGES: u64 = (1 << 31) - 1;
/// x86-64 `TASK_SIZE_MAX`, the `access_ok()` bound for user slots.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - PAGE_SIZE;
/// The highest GFN a 64-bit guest physical address can name.
pub const MAX_GFN: u64 = (1 << 52) - 1;
/// The x86 private slot ids, as `vmx.h` names them.
pub const TSS_PRIVATE_MEMSLOT: u16 = 509;
/// See [`TSS_PRIVATE_MEMSLOT`].
pub const APIC_ACCESS_PAGE_PRIVATE_MEMSLOT: u16 = 510;
/// See [`TSS_PRIVATE_MEMSLOT`].
pub const IDENTITY_PAGETABLE_PRIVATE_MEMSLOT: u16 = 511;

/// `struct kvm_userspace_memory_region`, field for field (`slot` is `as_id << 16 | id`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Arbitrary, Serialize)]
pub struct Region {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}

impl Region {
    /// A region for slot `id` of address space `as_id`.
    pub fn new(as_id: u16, id: u16, gpa: u64, size: u64, hva: u64, flags: u32) -> Region {
        Region {
            slot: (u32::from(as_id) << 16) | u32::from(id),
            flags,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: hva,
        }
    }

    /// The address space: the high 16 bits of `slot`.
    pub fn as_id(&self) -> u16 {
        (self.slot >> 16) as u16
    }

    /// The slot id: the low 16 bits of `slot`.
    pub fn id(&self) -> u16 {
        self.slot as u16
    }
}

/// `struct kvm_userspace_memory_region2` (v6.8): the v1 fields and the guest_memfd ones (the
/// padding is zero). Only a slot with `KVM_MEM_GUEST_MEMFD` reads the guest_memfd fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Arbitrary, Serialize)]
pub struct Region2 {
    pub region: Region,
    pub guest_memfd_offset: u64,
    pub guest_memfd: u32,
}

/// `KVM_MEM_GUEST_MEMFD` (v6.8): the slot's private memory is a range of a guest_memfd.
pub const KVM_MEM_GUEST_MEMFD: u32 = 1 << 2;

/// One step of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize)]
pub enum Op {
    /// `KVM_SET_USER_MEMORY_REGION` (the ioctl: refuses ids >= `KVM_USER_MEM_SLOTS`).
    Set(Region),
    /// `__kvm_set_memory_region` called from inside the kernel (x86 private slots).
    KSet(Region),
    /// `KVM_SET_USER_MEMORY_REGION2` (v6.8), on the VM every program runs on: x86's default
    /// type, without private memory, so `KVM_MEM_GUEST_MEMFD` is an invalid flag there.
    Set2(Region2),
    /// `search_memslots` (`__gfn_to_memslot`) in one address space; updates the LRU hint.
    Lookup { as_id: u16, gfn: u64 },
    /// `id_to_memslot` in one address space.
    Id { as_id: u16, id: u16 },
    /// Make `kvm_arch_prepare_memory_region` return `errno` from now on (0: succeed again).
    FailPrepare { errno: i32 },
}

impl Op {
    /// The address space whose state the operation can change or read, if it names a valid one.
    pub fn address_space(&self) -> Option<u16> {
        let as_id = match self {
            Op::Set(r) | Op::KSet(r) | Op::Set2(Region2 { region: r, .. }) => r.as_id(),
            Op::Lookup { as_id, .. } | Op::Id { as_id, .. } => *as_id,
            Op::FailPrepare { .. } => return None,
        };
        (as_id < KVM_ADDRESS_SPACE_NUM).then_some(as_id)
    }

    /// The memory region request, if this is one.
    pub fn region(&self) -> Option<&Region> {
        match self {
            Op::Set(r) | Op::KSet(r) | Op::Set2(Region2 { region: r, .. }) => Some(r),
            _ => None,
        }
    }
}

/// The name of a (negative) errno as the kernel spells it: `-EINVAL`, `-EEXIST`, ... `0` is `0`.
pub fn errno_name(rc: i32) -> String {
    let name = match rc.unsigned_abs() {
        0 => return "0".to_string(),
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        7 => "E2BIG",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        34 => "ERANGE",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        _ => return rc.to_string(),
    };
    if rc < 0 {
        format!("-{name}")
    } else {
        format!("{name} (positive!)")
    }
}

/// The errno value of a name such as `ENOMEM` (without sign), for the scenario parser.
pub fn errno_value(name: &str) -> Option<i32> {
    (1..=200).find(|&v| errno_name(-v) == format!("-{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(0), "0");
        assert_eq!(errno_name(-22), "-EINVAL");
        assert_eq!(errno_name(-17), "-EEXIST");
        assert_eq!(errno_name(-12), "-ENOMEM");
        assert_eq!(errno_name(-1000), "-1000");
        assert_eq!(errno_value("ENOMEM"), Some(12));
        assert_eq!(errno_value("NOPE"), None);
    }

    #[test]
    fn region_slot_split() {
        let r = Region::new(1, 509, 0, 0, 0, 0);
        assert_eq!(r.slot, 0x1_01fd);
        assert_eq!((r.as_id(), r.id()), (1, 509));
    }
}

/// Flags as short names: `0`, `dirty`, `ro`, `dirty|ro`, `dirty|INVALID`, unknown bits in hex.
pub fn flag_letters(flags: u32) -> String {
    if flags == 0 {
        return "0".to_string();
    }
    let mut parts = Vec::new();
    if flags & KVM_MEM_LOG_DIRTY_PAGES != 0 {
        parts.push("dirty".to_string());
    }
    if flags & KVM_MEM_READONLY != 0 {
        parts.push("ro".to_string());
    }
    if flags & KVM_MEMSLOT_INVALID != 0 {
        parts.push("INVALID".to_string());
    }
    let rest = flags & !(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY | KVM_MEMSLOT_INVALID);
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// The kinds of operation a run tells apart (`runner::Stats::kinds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Delete,
    Move,
    FlagsOnly,
    NoOp,
    /// An in-kernel create of a private id (509 and up).
    Private,
    Einval,
    Eexist,
    Enomem,
    LookupHit,
    LookupMiss,
    IdHit,
    IdMiss,
}

impl OpKind {
    pub const ALL: [OpKind; 13] = [
        OpKind::Create,
        OpKind::Delete,
        OpKind::Move,
        OpKind::FlagsOnly,
        OpKind::NoOp,
        OpKind::Private,
        OpKind::Einval,
        OpKind::Eexist,
        OpKind::Enomem,
        OpKind::LookupHit,
        OpKind::LookupMiss,
        OpKind::IdHit,
        OpKind::IdMiss,
    ];

    pub fn name(self) -> &'static str {
        [
            "create",
            "delete",
            "move",
            "flags-only",
            "no-op",
            "private",
            "EINVAL",
            "EEXIST",
            "ENOMEM",
            "lookup-hit",
            "lookup-miss",
            "id-hit",
            "id-miss",
        ][self as usize]
    }

    pub(crate) fn bit(self, as_id: u16) -> u32 {
        1 << (u32::from(as_id) * 16 + self as u32)
    }
}
