/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The memslot part of include/linux/kvm_host.h in the "modern" state: the
 * tree-based memslots of "KVM: Scalable memslots implementation" (Maciej S.
 * Szmigiero, merged for v5.17) with Sean Christopherson's follow-ups, as in
 * v6.8-v6.12 (KVM_SET_USER_MEMORY_REGION2 and guest_memfd included), plus the
 * x86 arch hooks kvm_main.c calls, as no-ops.
 *
 * Two kvm_memslots sets per address space, active and inactive; each slot
 * embeds one copy of each node per set (id_node[2], hva_node[2], gfn_node[2])
 * and a set uses the copy its node_idx names.
 */
#ifndef MEMSLOT_MODERN_KVM_HOST_H
#define MEMSLOT_MODERN_KVM_HOST_H

#define SHIM_MODERN_SLOT_COUNTS
#include "kernel.h"
#include "hashtable.h"
#include "interval_tree.h"
#include "rbtree.h"

/*
 * The bit 16 ~ bit 31 of kvm_userspace_memory_region::flags are internally
 * used in kvm, other bits are visible for userspace which are defined in
 * include/uapi/linux/kvm.h.
 */
#define KVM_MEMSLOT_INVALID (1UL << 16)

#define KVM_MAX_NR_ADDRESS_SPACES KVM_ADDRESS_SPACE_NUM

/*
 * SHRT_MAX since "KVM: Raise the maximum number of user memslots"
 * (4fc096a99e01).  A state may compile the port with another count
 * (states/modern.c: 512, the v5.6 x86 value, to run beside the array ports).
 */
#ifndef KVM_MEM_SLOTS_NUM
#define KVM_MEM_SLOTS_NUM SHRT_MAX
#endif
#define KVM_USER_MEM_SLOTS (KVM_MEM_SLOTS_NUM - KVM_INTERNAL_MEM_SLOTS)

/*
 * Some of the bitops functions do not support too long bitmaps.
 * This number must be determined not to exceed such limits.
 */
#define KVM_MEM_MAX_NR_PAGES ((1UL << 31) - 1)

#define KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS BIT_ULL(63)

/* ---- uapi/linux/kvm.h: KVM_SET_USER_MEMORY_REGION2 ---------------------- */

/* for KVM_SET_USER_MEMORY_REGION2 */
struct kvm_userspace_memory_region2 {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 guest_memfd_offset;
	__u32 guest_memfd;
	__u32 pad1;
	__u64 pad2[14];
};

#define KVM_MEM_GUEST_MEMFD (1UL << 2)

/* The ioctl numbers, for kvm_vm_ioctl()'s switch (values of uapi/linux/kvm.h). */
#define KVM_SET_USER_MEMORY_REGION 0x4020ae46u
#define KVM_SET_USER_MEMORY_REGION2 0x40a0ae49u

enum kvm_mr_change {
	KVM_MR_CREATE,
	KVM_MR_DELETE,
	KVM_MR_MOVE,
	KVM_MR_FLAGS_ONLY,
};

struct kvm_memory_slot {
	struct hlist_node id_node[2];
	struct interval_tree_node hva_node[2];
	struct rb_node gfn_node[2];
	gfn_t base_gfn;
	unsigned long npages;
	unsigned long *dirty_bitmap;
	struct kvm_arch_memory_slot arch;
	unsigned long userspace_addr;
	u32 flags;
	short id;
	u16 as_id;

	struct {
		/* the guest_memfd the slot is bound to (guest_memfd.h), and where */
		struct shim_gmem_file *file;
		pgoff_t pgoff;
	} gmem;
};

static inline unsigned long kvm_dirty_bitmap_bytes(struct kvm_memory_slot *memslot)
{
	return ALIGN(memslot->npages, BITS_PER_LONG) / 8;
}

struct kvm_memslots {
	u64 generation;
	atomic_long_t last_used_slot;
	struct rb_root_cached hva_tree;
	struct rb_root gfn_tree;
	/*
	 * The mapping table from slot id to memslot.
	 *
	 * 7-bit bucket count matches the size of the old id to index array for
	 * 512 slots, while giving good performance with this slot count.
	 * Higher bucket counts bring only small performance improvements but
	 * always result in higher memory usage (even for lower memslot counts).
	 */
	DECLARE_HASHTABLE(id_hash, 7);
	int node_idx;
};

#include "guest_memfd.h"

struct kvm {
	struct mutex slots_lock;

	/*
	 * Protects the arch-specific fields of struct kvm_memory_slots in
	 * use by the VM. To be used under the slots_lock (above) or in a
	 * kvm->srcu critical section where acquiring the slots_lock would
	 * lead to deadlock with the synchronize_srcu in
	 * kvm_swap_active_memslots().
	 */
	struct mutex slots_arch_lock;
	unsigned long nr_memslot_pages;
	/* The two memslot sets - active and inactive (per address space) */
	struct kvm_memslots __memslots[KVM_MAX_NR_ADDRESS_SPACES][2];
	/* The current active memslot set for each address space */
	struct kvm_memslots __rcu *memslots[KVM_MAX_NR_ADDRESS_SPACES];
	struct srcu_struct srcu;
	atomic_t nr_memslots_dirty_logging;
	/* x86: kvm->arch.vm_type, KVM_X86_DEFAULT_VM or KVM_X86_SW_PROTECTED_VM */
	unsigned long vm_type;
	/* the VM's guest_memfd files (guest_memfd.h) */
	struct shim_gmem_files gmem;
	/* harness switch: what kvm_arch_prepare_memory_region() returns */
	int shim_prepare_error;
	/* the C API's bookkeeping (api_modern.h), not the kernel's */
	void *shim_api;
};

/* arch/x86/include/uapi/asm/kvm.h */
#define KVM_X86_DEFAULT_VM 0
#define KVM_X86_SW_PROTECTED_VM 1

/* x86: only KVM_X86_SW_PROTECTED_VM has private memory (guest_memfd) here. */
static inline bool kvm_arch_has_private_mem(struct kvm *kvm)
{
	return kvm->vm_type == KVM_X86_SW_PROTECTED_VM;
}

/* x86: every VM without protected state has read-only memslots. */
static inline bool kvm_arch_has_readonly_mem(struct kvm *kvm)
{
	(void)kvm;
	return true;
}

/* x86: SMM is a second address space. */
/* SMM is currently unsupported for guests with private memory. */
static inline int kvm_arch_nr_memslot_as_ids(struct kvm *kvm)
{
	return kvm_arch_has_private_mem(kvm) ? 1 : 2;
}

static inline struct kvm_memslots *__kvm_memslots(struct kvm *kvm, int as_id)
{
	return kvm->memslots[as_id];
}

static inline bool kvm_memslots_empty(struct kvm_memslots *slots)
{
	return RB_EMPTY_ROOT(&slots->gfn_tree);
}

#define kvm_for_each_memslot(memslot, bkt, slots)			      \
	hash_for_each(slots->id_hash, bkt, memslot, id_node[slots->node_idx]) \
		if (WARN_ON_ONCE(!memslot->npages)) {			      \
		} else

static inline
struct kvm_memory_slot *id_to_memslot(struct kvm_memslots *slots, int id)
{
	struct kvm_memory_slot *slot;
	int idx = slots->node_idx;

	hash_for_each_possible(slots->id_hash, slot, id_node[idx], id) {
		if (slot->id == id)
			return slot;
	}

	return NULL;
}

/* Iterator used for walking memslots that overlap a gfn range. */
struct kvm_memslot_iter {
	struct kvm_memslots *slots;
	struct rb_node *node;
	struct kvm_memory_slot *slot;
};

static inline void kvm_memslot_iter_next(struct kvm_memslot_iter *iter)
{
	iter->node = rb_next(iter->node);
	if (!iter->node)
		return;

	iter->slot = container_of(iter->node, struct kvm_memory_slot, gfn_node[iter->slots->node_idx]);
}

static inline void kvm_memslot_iter_start(struct kvm_memslot_iter *iter,
					  struct kvm_memslots *slots,
					  gfn_t start)
{
	int idx = slots->node_idx;
	struct rb_node *tmp;
	struct kvm_memory_slot *slot;

	iter->slots = slots;

	/*
	 * Find the so called "upper bound" of a key - the first node that has
	 * its key strictly greater than the searched one (the start gfn in our case).
	 */
	iter->node = NULL;
	for (tmp = slots->gfn_tree.rb_node; tmp; ) {
		slot = container_of(tmp, struct kvm_memory_slot, gfn_node[idx]);
		if (start < slot->base_gfn) {
			iter->node = tmp;
			tmp = tmp->rb_left;
		} else {
			tmp = tmp->rb_right;
		}
	}

	/*
	 * Find the slot with the lowest gfn that can possibly intersect with
	 * the range, so we'll ideally have slot start <= range start
	 */
	if (iter->node) {
		/*
		 * A NULL previous node means that the very first slot
		 * already has a higher start gfn.
		 * In this case slot start > range start.
		 */
		tmp = rb_prev(iter->node);
		if (tmp)
			iter->node = tmp;
	} else {
		/* a NULL node below means no slots */
		iter->node = rb_last(&slots->gfn_tree);
	}

	if (iter->node) {
		iter->slot = container_of(iter->node, struct kvm_memory_slot, gfn_node[idx]);

		/*
		 * It is possible in the slot start < range start case that the
		 * found slot ends before or at range start (slot end <= range start)
		 * and so it does not overlap the requested range.
		 *
		 * In such non-overlapping case the next slot (if it exists) will
		 * already have slot start > range start, otherwise the logic above
		 * would have found it instead of the current slot.
		 */
		if (iter->slot->base_gfn + iter->slot->npages <= start)
			kvm_memslot_iter_next(iter);
	}
}

static inline bool kvm_memslot_iter_is_valid(struct kvm_memslot_iter *iter, gfn_t end)
{
	if (!iter->node)
		return false;

	/*
	 * If this slot starts beyond or at the end of the range so does
	 * every next one
	 */
	return iter->slot->base_gfn < end;
}

/* Iterate over each memslot at least partially intersecting [start, end) range */
#define kvm_for_each_memslot_in_gfn_range(iter, slots, start, end)	\
	for (kvm_memslot_iter_start(iter, slots, start);		\
	     kvm_memslot_iter_is_valid(iter, end);			\
	     kvm_memslot_iter_next(iter))

/*
 * Returns a pointer to the memslot if it contains gfn.
 * Otherwise returns NULL.
 */
static inline struct kvm_memory_slot *
search_memslots(struct kvm_memslots *slots, gfn_t gfn, bool approx)
{
	struct kvm_memory_slot *slot;
	struct rb_node *node;
	int idx = slots->node_idx;

	slot = NULL;
	for (node = slots->gfn_tree.rb_node; node; ) {
		slot = container_of(node, struct kvm_memory_slot, gfn_node[idx]);
		if (gfn >= slot->base_gfn) {
			if (gfn < slot->base_gfn + slot->npages)
				return slot;
			node = node->rb_right;
		} else
			node = node->rb_left;
	}

	return approx ? slot : NULL;
}

static inline struct kvm_memory_slot *
____gfn_to_memslot(struct kvm_memslots *slots, gfn_t gfn, bool approx)
{
	struct kvm_memory_slot *slot;

	slot = (struct kvm_memory_slot *)atomic_long_read(&slots->last_used_slot);
	if (slot && gfn >= slot->base_gfn && gfn < slot->base_gfn + slot->npages)
		return slot;

	slot = search_memslots(slots, gfn, approx);
	if (slot) {
		atomic_long_set(&slots->last_used_slot, (unsigned long)slot);
		return slot;
	}

	return NULL;
}

/*
 * __gfn_to_memslot() and its descendants are here to allow arch code to inline
 * the lookups in hot paths.  gfn_to_memslot() itself isn't here as an inline
 * because that would bloat other code too much.
 */
static inline struct kvm_memory_slot *
__gfn_to_memslot(struct kvm_memslots *slots, gfn_t gfn)
{
	return ____gfn_to_memslot(slots, gfn, false);
}

/* No dirty ring in the harness's VMs: the bitmap is always used. */
static inline bool kvm_use_dirty_bitmap(struct kvm *kvm)
{
	(void)kvm;
	return true;
}

/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is never enabled here. */
static inline bool kvm_dirty_log_manual_protect_and_init_set(struct kvm *kvm)
{
	(void)kvm;
	return false;
}

/*
 * x86 arch hooks (arch/x86/kvm/x86.c), reduced to no-ops that succeed, as in
 * the array ports: this project checks the generic memslot code, not rmaps,
 * shadow pages or the MAXPHYADDR check of kvm_arch_prepare_memory_region().
 * kvm_arch_prepare_memory_region() returns the harness's switch so that the
 * error paths of kvm_set_memslot() can be driven.
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
						 const struct kvm_memory_slot *old,
						 struct kvm_memory_slot *new,
						 enum kvm_mr_change change)
{
	(void)old;
	(void)new;
	(void)change;
	return kvm->shim_prepare_error;
}

static inline void kvm_arch_commit_memory_region(struct kvm *kvm,
						 struct kvm_memory_slot *old,
						 const struct kvm_memory_slot *new,
						 enum kvm_mr_change change)
{
	(void)kvm;
	(void)old;
	(void)new;
	(void)change;
}

/*
 * x86 zaps @slot's shadow pages here.  What makes that enough is generic
 * code's promise just before the call, in kvm_invalidate_memslot(): the
 * active memslots hold an INVALID copy of @slot, so no new shadow page can
 * point at it.  A sequential harness never sees that copy, so the hook checks
 * the promise in the vCPU's place (as shim/arch_flush.h does for the array
 * ports, whose hook gets the INVALID copy itself): the active slot of @slot's
 * id must be another object, kvm_copy_memslot()'s copy of @slot flagged
 * INVALID: the same gfns, host range and dirty bitmap (vCPUs and MMU notifiers
 * still find it in the trees while the update runs, and x86 dirty-logs
 * through it).  A broken promise counts as a WARN.
 */
static inline void kvm_arch_flush_shadow_memslot(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	struct kvm_memory_slot *active = id_to_memslot(__kvm_memslots(kvm, slot->as_id), slot->id);

	if (WARN_ON(!active))
		return;
	WARN_ON(active == slot || active->flags != (slot->flags | KVM_MEMSLOT_INVALID) ||
		active->base_gfn != slot->base_gfn || active->npages != slot->npages ||
		active->userspace_addr != slot->userspace_addr ||
		active->dirty_bitmap != slot->dirty_bitmap);
}

static inline void kvm_arch_guest_memory_reclaimed(struct kvm *kvm)
{
	(void)kvm;
}

static inline void kvm_arch_memslots_updated(struct kvm *kvm, u64 gen)
{
	(void)kvm;
	(void)gen;
}

#endif /* MEMSLOT_MODERN_KVM_HOST_H */
