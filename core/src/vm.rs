//! `struct kvm`, reduced to its memslots, and the `KVM_SET_USER_MEMORY_REGION` front end.

use crate::arch::ArchLimits;
use crate::error::{Error, Invalid};
#[cfg(feature = "fault-injection")]
use crate::fault::Fault;
use crate::memslots::Memslots;
use crate::set::MemslotSet;
use crate::slot::{
    Change, MemorySlot, UserMemoryRegion, UserMemoryRegion2, KVM_MEM_READONLY, PAGE_SHIFT,
    PAGE_SIZE,
};

/// A VM's memory slots: one `S` per address space. `S` is the backend: [`Memslots`] (the
/// sorted array of v5.6-v5.16, the default) or [`TreeMemslots`](crate::TreeMemslots) (the
/// tree-based design of v5.17). Both answer every request, lookup and walk the same way.
///
/// ```
/// use memslot_core::{ArchLimits, TreeMemslots, Vm};
/// let array = Vm::new(ArchLimits::X86_64);
/// let tree = Vm::<TreeMemslots>::with_backend(ArchLimits::X86_64);
/// assert_eq!(array.limits(), tree.limits());
/// ```
#[derive(Clone, Debug)]
pub struct Vm<S: MemslotSet = Memslots> {
    limits: ArchLimits,
    spaces: Vec<S>,
    /// What `kvm_arch_prepare_memory_region` returns.
    prepare_error: Option<Error>,
}

/// The array backend (`Memslots`).
pub type ArrayVm = Vm<Memslots>;
/// The tree backend (`TreeMemslots`).
pub type TreeVm = Vm<crate::tree::TreeMemslots>;

impl Vm {
    /// A VM with the array backend and no slots; the generation of address space `i` starts
    /// at `i`.
    pub fn new(limits: ArchLimits) -> Vm {
        Vm::with_backend(limits)
    }
}

impl<S: MemslotSet> Vm<S> {
    /// A VM with backend `S` and no slots; the generation of address space `i` starts at `i`.
    pub fn with_backend(limits: ArchLimits) -> Vm<S> {
        let spaces = (0..limits.address_space_num)
            .map(|as_id| S::new_set(limits.mem_slots_num(), u64::from(as_id)))
            .collect();
        Vm {
            limits,
            spaces,
            prepare_error: None,
        }
    }

    /// The architecture limits this VM was created with.
    pub fn limits(&self) -> &ArchLimits {
        &self.limits
    }

    /// The slots of one address space.
    pub fn memslots(&self, as_id: u16) -> Option<&S> {
        self.spaces.get(usize::from(as_id))
    }

    /// Make `kvm_arch_prepare_memory_region` fail with `err` (`None`: succeed).
    pub fn set_arch_prepare_error(&mut self, err: Option<Error>) {
        self.prepare_error = err;
    }

    /// Arm one injected fault (or none) in every address space.
    #[cfg(feature = "fault-injection")]
    pub fn set_fault(&mut self, fault: Option<Fault>) {
        for space in &mut self.spaces {
            space.set_fault(fault);
        }
    }

    /// `KVM_SET_USER_MEMORY_REGION`: userspace may not name the private ids.
    pub fn set_user_memory_region(
        &mut self,
        region: &UserMemoryRegion,
    ) -> Result<Option<Change>, Error> {
        // The ioctl wrapper truncates to u16, i.e. it ignores the address space bits.
        if region.slot as u16 >= self.limits.user_mem_slots {
            return Err(Error::Invalid(Invalid::NotUserSlot));
        }
        self.set_memory_region(region)
    }

    /// `KVM_SET_USER_MEMORY_REGION2` (v6.8) on the VMs this core models, which have no private
    /// memory (x86's default type): `check_memory_region_flags()` then refuses
    /// `KVM_MEM_GUEST_MEMFD` like any unknown flag, so the guest_memfd fields are never read
    /// and the request is validated and applied exactly as the v1 one.
    pub fn set_user_memory_region2(
        &mut self,
        region: &UserMemoryRegion2,
    ) -> Result<Option<Change>, Error> {
        self.set_user_memory_region(&region.region)
    }

    /// `__kvm_set_memory_region`, the in-kernel path (x86 creates its private slots this way).
    /// Validates in the kernel's order; `Ok(None)` is a request that changes nothing.
    pub fn set_memory_region(
        &mut self,
        region: &UserMemoryRegion,
    ) -> Result<Option<Change>, Error> {
        let (as_id, new) = check_region(&self.limits, region)?;
        let space = &self.spaces[usize::from(as_id)];
        let Some(change) = classify(&self.limits, &new, space.id_to_memslot(new.id))? else {
            return Ok(None);
        };
        if matches!(change, Change::Create | Change::Move) {
            if let Some(s) = space.first_overlap(new.id, new.base_gfn, new.end_gfn()) {
                return Err(Error::Exists { id: s.id });
            }
        }
        self.set_memslot(as_id, &new, change).map(Some)
    }

    /// `kvm_set_memslot`: the install sequence around the update. Each install advances
    /// the generation by `address_space_num`, keeping the address spaces' generations
    /// disjoint.
    fn set_memslot(
        &mut self,
        as_id: u16,
        new: &MemorySlot,
        change: Change,
    ) -> Result<Change, Error> {
        let step = u64::from(self.limits.address_space_num);
        let prepare_error = self.prepare_error;
        let space = &mut self.spaces[usize::from(as_id)];
        // Validation guarantees the steps apply; they fail only on a state broken by an
        // injected fault, which the harness reports as a divergence anyway.
        let broken = |_| Error::Invalid(Invalid::SlotId);
        // DELETE and MOVE first publish the slot marked INVALID.
        let invalidates = matches!(change, Change::Delete | Change::Move);
        if invalidates {
            space.invalidate(new.id, step).map_err(broken)?;
        }
        if let Some(err) = prepare_error {
            // Post-patch: put the old slot back (pre-patch left the INVALID copy installed).
            if invalidates {
                space.restore(new.id, step).map_err(broken)?;
            }
            return Err(err);
        }
        space.commit(new, change, step).map_err(broken)?;
        Ok(change)
    }
}

// The validation is not generic over the backend, and not inlined, so that it is compiled
// once, in this crate and with its options, for both backends (a generic function, or one
// inlined into it, is compiled in the crate that names the backend, with that crate's options:
// a fuzz build that traces only this crate would not see it).

/// The checks of `__kvm_set_memory_region` that need no slot, in the kernel's order: the
/// address space and the slot the request names.
#[inline(never)]
fn check_region(l: &ArchLimits, region: &UserMemoryRegion) -> Result<(u16, MemorySlot), Error> {
    let invalid = |why| Err(Error::Invalid(why));
    let (size, gpa, hva) = (
        region.memory_size,
        region.guest_phys_addr,
        region.userspace_addr,
    );
    if region.flags & !l.valid_flags() != 0 {
        return invalid(Invalid::Flags);
    }
    let as_id = (region.slot >> 16) as u16;
    let id = region.slot as u16;
    if size % PAGE_SIZE != 0 {
        return invalid(Invalid::SizeUnaligned);
    }
    if gpa % PAGE_SIZE != 0 {
        return invalid(Invalid::GpaUnaligned);
    }
    // Private slots are backed by kernel-chosen addresses, so only user slots are checked.
    if id < l.user_mem_slots {
        if hva % PAGE_SIZE != 0 {
            return invalid(Invalid::HvaUnaligned);
        }
        if !l.access_ok(hva, size) {
            return invalid(Invalid::HvaRange);
        }
    }
    if as_id >= l.address_space_num {
        return invalid(Invalid::AddressSpace);
    }
    if usize::from(id) >= l.mem_slots_num() {
        return invalid(Invalid::SlotId);
    }
    if gpa.checked_add(size).is_none() {
        return invalid(Invalid::GpaWraps);
    }
    let new = MemorySlot {
        id,
        base_gfn: gpa >> PAGE_SHIFT,
        npages: size >> PAGE_SHIFT,
        flags: region.flags,
        userspace_addr: hva,
    };
    Ok((as_id, new))
}

/// What the request `new` does to the slot `old` that has its id (`None`: nothing), with the
/// kernel's checks of that; `Ok(None)` changes nothing. A zero size (`npages == 0`) deletes.
#[inline(never)]
fn classify(
    l: &ArchLimits,
    new: &MemorySlot,
    old: Option<&MemorySlot>,
) -> Result<Option<Change>, Error> {
    let invalid = |why| Err(Error::Invalid(why));
    if new.npages == 0 {
        if old.is_none() {
            return invalid(Invalid::DeleteAbsent);
        }
        return Ok(Some(Change::Delete));
    }
    if new.npages > l.max_nr_pages {
        return invalid(Invalid::TooManyPages);
    }
    let Some(old) = old else {
        return Ok(Some(Change::Create));
    };
    if new.userspace_addr != old.userspace_addr {
        return invalid(Invalid::HvaChanged);
    }
    if new.npages != old.npages {
        return invalid(Invalid::SizeChanged);
    }
    if (new.flags ^ old.flags) & KVM_MEM_READONLY != 0 {
        return invalid(Invalid::ReadonlyToggled);
    }
    Ok(if new.base_gfn != old.base_gfn {
        Some(Change::Move)
    } else if new.flags != old.flags {
        Some(Change::FlagsOnly)
    } else {
        None
    })
}
