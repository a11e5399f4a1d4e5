/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvm_arch_flush_shadow_memslot() for the ports' kvm_host.h, included after
 * __kvm_memslots() and id_to_memslot().
 *
 * x86 zaps the slot's shadow pages here.  What makes that enough is generic
 * code's promise just before the call: "From this point no new shadow pages
 * pointing to a deleted, or moved, memslot will be created", because the
 * installed memslots mark the slot KVM_MEMSLOT_INVALID and gfn_to_hva() and
 * kvm_is_visible_gfn() refuse it.  A sequential harness never sees that copy
 * (the update replaces it before returning), so the hook checks the promise
 * in the vCPU's place: @slot must be the installed entry of its id, flagged
 * INVALID.  A broken promise counts as a WARN.
 */
#ifndef MEMSLOT_SHIM_ARCH_FLUSH_H
#define MEMSLOT_SHIM_ARCH_FLUSH_H

static inline void kvm_arch_flush_shadow_memslot(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	int as_id;

	for (as_id = 0; as_id < KVM_ADDRESS_SPACE_NUM; as_id++) {
		if (id_to_memslot(__kvm_memslots(kvm, as_id), slot->id) == slot) {
			WARN_ON(!(slot->flags & KVM_MEMSLOT_INVALID));
			return;
		}
	}
	WARN_ON(1); /* @slot is not installed */
}

#endif /* MEMSLOT_SHIM_ARCH_FLUSH_H */
