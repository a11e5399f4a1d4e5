//! Per-architecture limits: data, so that no constant is scattered through the code.

use crate::slot::{KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY};

/// The architecture parameters the memslot code depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchLimits {
    /// Short name, for reports.
    pub name: &'static str,
    /// `KVM_USER_MEM_SLOTS`: ids below this are reachable through the ioctl.
    pub user_mem_slots: u16,
    /// `KVM_PRIVATE_MEM_SLOTS`: ids only in-kernel callers may use.
    pub private_mem_slots: u16,
    /// `KVM_ADDRESS_SPACE_NUM`, also the generation step of an install.
    pub address_space_num: u16,
    /// `__KVM_HAVE_READONLY_MEM`: whether `KVM_MEM_READONLY` is a valid flag.
    pub readonly_mem: bool,
    /// `KVM_MEM_MAX_NR_PAGES`.
    pub max_nr_pages: u64,
    /// `access_ok()` bound: a user range must end at or below this.
    pub user_addr_limit: u64,
}

const MAX_NR_PAGES: u64 = (1 << 31) - 1;

impl ArchLimits {
    /// x86-64: 509 user + 3 private slots, 2 address spaces (SMM), `TASK_SIZE_MAX`.
    pub const X86_64: ArchLimits = ArchLimits {
        name: "x86_64",
        user_mem_slots: 509,
        private_mem_slots: 3,
        address_space_num: 2,
        readonly_mem: true,
        max_nr_pages: MAX_NR_PAGES,
        user_addr_limit: (1 << 47) - 4096,
    };
    /// arm64: 512 user slots, one address space.
    pub const ARM64: ArchLimits = ArchLimits {
        name: "arm64",
        user_mem_slots: 512,
        private_mem_slots: 0,
        address_space_num: 1,
        readonly_mem: true,
        max_nr_pages: MAX_NR_PAGES,
        user_addr_limit: 1 << 48,
    };
    /// s390: 32 user slots, no read-only memory, no address limit (only wrap-around is refused).
    pub const S390: ArchLimits = ArchLimits {
        name: "s390",
        user_mem_slots: 32,
        private_mem_slots: 0,
        address_space_num: 1,
        readonly_mem: false,
        max_nr_pages: MAX_NR_PAGES,
        user_addr_limit: u64::MAX,
    };

    /// x86-64 with other slot counts, e.g. the later 32764 user slots.
    pub const fn custom(
        user_mem_slots: u16,
        private_mem_slots: u16,
        address_space_num: u16,
    ) -> ArchLimits {
        ArchLimits {
            name: "custom",
            user_mem_slots,
            private_mem_slots,
            address_space_num,
            ..ArchLimits::X86_64
        }
    }

    /// `KVM_MEM_SLOTS_NUM`: user + private.
    pub fn mem_slots_num(&self) -> usize {
        usize::from(self.user_mem_slots) + usize::from(self.private_mem_slots)
    }

    /// The flags userspace may pass (`check_memory_region_flags`).
    pub fn valid_flags(&self) -> u32 {
        if self.readonly_mem {
            KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY
        } else {
            KVM_MEM_LOG_DIRTY_PAGES
        }
    }

    /// `access_ok(hva, size)`: the range neither wraps nor ends above the user limit.
    pub(crate) fn access_ok(&self, hva: u64, size: u64) -> bool {
        hva.checked_add(size)
            .is_some_and(|end| end <= self.user_addr_limit)
    }
}

impl Default for ArchLimits {
    fn default() -> Self {
        ArchLimits::X86_64
    }
}
