//! Which implementations run in lockstep: the standard set, the set at x86-32k, and the
//! self-test's sets with one implementation broken on purpose.

use crate::arch_profile::ArchProfile;
use crate::implementations::core::CoreImpl;
use crate::implementations::oracle::Oracle;
use crate::implementations::port::PortImpl;
use crate::implementations::tree::TreeImpl;
use crate::implementations::Implementation;

/// The implementations compared by default: core (the array backend), the three 2020 ports, the
/// tree-based port of today's kernel (`modern`), tree (the core's tree backend) and the oracle.
/// The 2020 ports carry the later upstream fixes of the bugs they are known to have
/// (pre-fixed, post-fixed, post15: see `memslot_reference::Port`),
/// so that a run is not drowned by a bug fixed in 2020; the literal states, each with its bug,
/// are in the zoo (`crate::zoo`). The core comes first (the self-test replaces it) and the
/// oracle last (it names what a request changed).
pub fn standard_implementations() -> Vec<Box<dyn Implementation>> {
    vec![
        Box::new(CoreImpl::new()),
        Box::new(PortImpl::new(memslot_reference::Port::PreFixed)),
        Box::new(PortImpl::new(memslot_reference::Port::PostFixed)),
        Box::new(PortImpl::new(memslot_reference::Port::Post15)),
        Box::new(PortImpl::new(memslot_reference::Port::Modern)),
        Box::new(TreeImpl::new()),
        Box::new(Oracle::new()),
    ]
}

/// The implementations compared at today's x86 limits (`--arch x86-32k`): core, the modern
/// port's `modern-32k` state, tree and oracle, all at 32,764 user slots. The 2020 ports are
/// left out: their arrays hold v5.6's 512 entries by construction (`KVM_MEM_SLOTS_NUM` sizes
/// `memslots[]` and `id_to_index[]`), so they cannot run at a larger count.
pub fn x86_32k_implementations() -> Vec<Box<dyn Implementation>> {
    let arch = ArchProfile::X86_32k;
    vec![
        Box::new(CoreImpl::with_arch(arch)),
        Box::new(PortImpl::new(memslot_reference::Port::Modern32k)),
        Box::new(TreeImpl::with_arch(arch)),
        Box::new(Oracle::with_arch(arch)),
    ]
}

/// The implementations of a run at `arch` ([`standard_implementations`] at x86-512).
pub fn implementations_at(arch: ArchProfile) -> Vec<Box<dyn Implementation>> {
    match arch {
        ArchProfile::X86_512 => standard_implementations(),
        ArchProfile::X86_32k => x86_32k_implementations(),
    }
}

/// The standard set with the backend the fault is in (`core`, the array, or `tree`) replaced by
/// one with that fault injected (self-test).
pub fn implementations_with_fault(fault: memslot_core::Fault) -> Vec<Box<dyn Implementation>> {
    implementations_with_fault_at(ArchProfile::X86_512, fault)
}

/// [`implementations_with_fault`] for the implementations at `arch` ([`implementations_at`]).
pub fn implementations_with_fault_at(
    arch: ArchProfile,
    fault: memslot_core::Fault,
) -> Vec<Box<dyn Implementation>> {
    let mut impls = implementations_at(arch);
    for imp in impls.iter_mut() {
        match imp.name() {
            "core" if !fault.in_tree() => *imp = Box::new(CoreImpl::with_fault_at(arch, fault)),
            "tree" if fault.in_tree() => *imp = Box::new(TreeImpl::with_fault_at(arch, fault)),
            _ => {}
        }
    }
    impls
}

/// The standard set with `post15` replaced by a port broken on purpose (self-test): the same
/// code with `MEMSLOT_SELFTEST_DELETE_KEEPS_INDEX` compiled in (`memslot_reference::Port`).
pub fn implementations_with_broken_port() -> Vec<Box<dyn Implementation>> {
    with_port_replaced(
        memslot_reference::Port::Post15,
        memslot_reference::Port::Post15SelftestDeleteKeepsIndex,
    )
}

/// The standard set with `modern` replaced by its state broken on purpose (self-test):
/// `MEMSLOT_SELFTEST_STALE_CACHE`, a `last_used_slot` left naming a replaced slot.
pub fn implementations_with_broken_modern_port() -> Vec<Box<dyn Implementation>> {
    with_port_replaced(
        memslot_reference::Port::Modern,
        memslot_reference::Port::ModernSelftestStaleCache,
    )
}

fn with_port_replaced(
    port: memslot_reference::Port,
    broken: memslot_reference::Port,
) -> Vec<Box<dyn Implementation>> {
    let mut impls = standard_implementations();
    for imp in impls.iter_mut() {
        if imp.name() == port.name() {
            *imp = Box::new(PortImpl::new(broken));
        }
    }
    impls
}
