//! The arch profile a run is at: x86's slot limits in one generation of the kernel.
//!
//! The 2020 ports' x86 has 509 user slots and 3 private ones; 4fc096a99e01 ("KVM: Raise the
//! maximum number of user memslots", v5.12) raised the user count to 32,764, and today's
//! tree-based code runs there. A profile fixes the ids a program may name, the limits every
//! implementation validates against, and which implementations can take part: the array
//! ports' arrays are 512 entries by construction, so they run at `x86-512` only.

use memslot_core::ArchLimits;

/// x86 at one slot count. Both have two address spaces (SMM) and 3 private slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ArchProfile {
    /// v5.6-v5.11: `KVM_USER_MEM_SLOTS` 509, `KVM_MEM_SLOTS_NUM` 512. The default, and the
    /// only profile of the 2020 ports.
    #[default]
    X86_512,
    /// v5.12 onward: `KVM_USER_MEM_SLOTS` 32,764, `KVM_MEM_SLOTS_NUM` `SHRT_MAX` (32,767):
    /// the modern port's `modern-32k` state, the core and the tree at the same limits.
    X86_32k,
}

impl ArchProfile {
    pub const ALL: [ArchProfile; 2] = [ArchProfile::X86_512, ArchProfile::X86_32k];

    /// The name in scenario text (`arch x86-32k`) and on the command line (`--arch`).
    pub fn name(self) -> &'static str {
        match self {
            ArchProfile::X86_512 => "x86-512",
            ArchProfile::X86_32k => "x86-32k",
        }
    }

    pub fn parse(text: &str) -> Result<ArchProfile, String> {
        ArchProfile::ALL
            .into_iter()
            .find(|a| a.name() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = ArchProfile::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown arch profile '{text}' (known: {})",
                    known.join(", ")
                )
            })
    }

    /// `KVM_USER_MEM_SLOTS`: ids below it are the ioctl's; the rest are private.
    pub fn user_mem_slots(self) -> u16 {
        match self {
            ArchProfile::X86_512 => 509,
            ArchProfile::X86_32k => 32_764,
        }
    }

    /// `KVM_MEM_SLOTS_NUM`: user and private slots, the ids an address space can hold.
    pub fn mem_slots_num(self) -> u16 {
        self.user_mem_slots() + 3
    }

    /// The core's limits at this profile.
    pub fn limits(self) -> ArchLimits {
        match self {
            ArchProfile::X86_512 => ArchLimits::X86_64,
            ArchProfile::X86_32k => ArchLimits::custom(self.user_mem_slots(), 3, 2),
        }
    }

    /// `MEMSLOT_DIFF_ARCH` (a profile name), else the default.
    pub fn from_env() -> Result<ArchProfile, String> {
        match std::env::var("MEMSLOT_DIFF_ARCH") {
            Ok(text) if !text.is_empty() => {
                ArchProfile::parse(&text).map_err(|e| format!("MEMSLOT_DIFF_ARCH: {e}"))
            }
            _ => Ok(ArchProfile::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_match_the_kernel_counts() {
        assert_eq!(ArchProfile::X86_512.mem_slots_num(), 512);
        assert_eq!(ArchProfile::X86_32k.mem_slots_num(), i16::MAX as u16);
        for arch in ArchProfile::ALL {
            assert_eq!(ArchProfile::parse(arch.name()), Ok(arch));
            assert_eq!(
                arch.limits().mem_slots_num(),
                usize::from(arch.mem_slots_num())
            );
        }
        assert!(ArchProfile::parse("arm64").unwrap_err().contains("x86-32k"));
    }
}
