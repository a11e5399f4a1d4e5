/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The memslot part of include/linux/kvm_host.h in the "post15" state: after
 * "KVM: Dynamically size memslot array based on number of used slots"
 * (upstream 36947254e5f9, the patch after the seed), plus the x86 arch hooks
 * that kvm_main.c calls, as no-ops.
 *
 * The later upstream fixes are compiled in one by one (see kvm_main.c beside
 * this file): MEMSLOT_FIX_0774a964ef56_EMPTY and MEMSLOT_FIX_b6467ab142b7
 * change search_memslots() below.
 */
#ifndef MEMSLOT_POST15_KVM_HOST_H
#define MEMSLOT_POST15_KVM_HOST_H

#include "kernel.h"

/*
 * The bit 16 ~ bit 31 of kvm_memory_region::flags are internally used
 * in kvm, other bits are visible for userspace which are defined in
 * include/linux/kvm_h.
 */
#define KVM_MEMSLOT_INVALID (1UL << 16)

#ifndef KVM_ADDRESS_SPACE_NUM
#define KVM_ADDRESS_SPACE_NUM 1
#endif

#define KVM_MEM_SLOTS_NUM (KVM_USER_MEM_SLOTS + KVM_PRIVATE_MEM_SLOTS)

/*
 * Some of the bitops functions do not support too long bitmaps.
 * This number must be determined not to exceed such limits.
 */
#define KVM_MEM_MAX_NR_PAGES ((1UL << 31) - 1)

#define KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS BIT_ULL(63)

enum kvm_mr_change {
	KVM_MR_CREATE,
	KVM_MR_DELETE,
	KVM_MR_MOVE,
	KVM_MR_FLAGS_ONLY,
};

struct kvm_memory_slot {
	gfn_t base_gfn;
	unsigned long npages;
	unsigned long *dirty_bitmap;
	struct kvm_arch_memory_slot arch;
	unsigned long userspace_addr;
	u32 flags;
	short id;
};

static inline unsigned long kvm_dirty_bitmap_bytes(struct kvm_memory_slot *memslot)
{
	return ALIGN(memslot->npages, BITS_PER_LONG) / 8;
}

/*
 * Note:
 * memslots are not sorted by id anymore, please use id_to_memslot()
 * to get the memslot by its id.
 */
struct kvm_memslots {
	u64 generation;
	/* The mapping table from slot id to the index in memslots[]. */
	short id_to_index[KVM_MEM_SLOTS_NUM];
	atomic_t lru_slot;
	int used_slots;
	struct kvm_memory_slot memslots[];
};

struct kvm {
	struct mutex slots_lock;
	struct kvm_memslots __rcu *memslots[KVM_ADDRESS_SPACE_NUM];
	struct srcu_struct srcu;
	/* harness switch: what kvm_arch_prepare_memory_region() returns */
	int shim_prepare_error;
};

static inline struct kvm_memslots *__kvm_memslots(struct kvm *kvm, int as_id)
{
	return kvm->memslots[as_id];
}

#define kvm_for_each_memslot(memslot, slots)				\
	for (memslot = &slots->memslots[0];				\
	     memslot < slots->memslots + slots->used_slots; memslot++)	\
		if (WARN_ON_ONCE(!memslot->npages)) {			\
		} else

static inline
struct kvm_memory_slot *id_to_memslot(struct kvm_memslots *slots, int id)
{
	int index = slots->id_to_index[id];
	struct kvm_memory_slot *slot;

	if (index < 0)
		return NULL;

	slot = &slots->memslots[index];

	WARN_ON(slot->id != id);
	return slot;
}

/*
 * search_memslots() and __gfn_to_memslot() are here because they are
 * used in non-modular code in arch/powerpc/kvm/book3s_hv_rm_mmu.c.
 * gfn_to_memslot() itself isn't here as an inline because that would
 * bloat other code too much.
 *
 * IMPORTANT: Slots are sorted from highest GFN to lowest GFN!
 */
static inline struct kvm_memory_slot *
search_memslots(struct kvm_memslots *slots, gfn_t gfn)
{
	int start = 0, end = slots->used_slots;
	int slot = atomic_read(&slots->lru_slot);
	struct kvm_memory_slot *memslots = slots->memslots;

#ifdef MEMSLOT_FIX_0774a964ef56_EMPTY /* "KVM: Fix out of range accesses to memslots" */
	if (unlikely(!slots->used_slots))
		return NULL;
#endif

	if (gfn >= memslots[slot].base_gfn &&
	    gfn < memslots[slot].base_gfn + memslots[slot].npages)
		return &memslots[slot];

	while (start < end) {
		slot = start + (end - start) / 2;

		if (gfn >= memslots[slot].base_gfn)
			end = slot;
		else
			start = slot + 1;
	}

#ifdef MEMSLOT_FIX_b6467ab142b7 /* "KVM: Check validity of resolved slot when searching memslots" */
	if (start < slots->used_slots && gfn >= memslots[start].base_gfn &&
	    gfn < memslots[start].base_gfn + memslots[start].npages) {
#else
	if (gfn >= memslots[start].base_gfn &&
	    gfn < memslots[start].base_gfn + memslots[start].npages) {
#endif
		atomic_set(&slots->lru_slot, start);
		return &memslots[start];
	}

	return NULL;
}

static inline struct kvm_memory_slot *
__gfn_to_memslot(struct kvm_memslots *slots, gfn_t gfn)
{
	return search_memslots(slots, gfn);
}

/*
 * x86 arch hooks (arch/x86/kvm/x86.c), reduced to no-ops that succeed: this
 * project checks the generic array code, not rmaps or shadow pages.
 * kvm_arch_prepare_memory_region() returns the harness's switch so that the
 * error paths of __kvm_set_memory_region() can be driven;
 * kvm_arch_flush_shadow_memslot() checks the INVALID copy (shim/arch_flush.h).
 */
static inline struct kvm *kvm_arch_alloc_vm(void)
{
	return kvzalloc(sizeof(struct kvm), GFP_KERNEL_ACCOUNT);
}

static inline void kvm_arch_free_vm(struct kvm *kvm)
{
	kvfree(kvm);
}

static inline void kvm_arch_free_memslot(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	(void)kvm;
	(void)slot;
}

static inline int kvm_arch_prepare_memory_region(struct kvm *kvm,
						 struct kvm_memory_slot *memslot,
						 const struct kvm_userspace_memory_region *mem,
						 enum kvm_mr_change change)
{
	(void)memslot;
	(void)mem;
	(void)change;
	return kvm->shim_prepare_error;
}

static inline void kvm_arch_commit_memory_region(struct kvm *kvm,
						 const struct kvm_userspace_memory_region *mem,
						 const struct kvm_memory_slot *old,
						 const struct kvm_memory_slot *new,
						 enum kvm_mr_change change)
{
	(void)kvm;
	(void)mem;
	(void)old;
	(void)new;
	(void)change;
}

#include "arch_flush.h"

static inline void kvm_arch_memslots_updated(struct kvm *kvm, u64 gen)
{
	(void)kvm;
	(void)gen;
}

#endif /* MEMSLOT_POST15_KVM_HOST_H */
