/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The C API of one port state, included at the end of that state's
 * translation unit (states/<state>.c) after its kvm_main.c, with MEMSLOT_PORT set to
 * the state's name.  Only this file reaches into the port's structs; it calls
 * the port's own functions and copies their results into the API structs.
 *
 * Return conventions: an index into memslots[] (>= 0) or -1 for NULL;
 * -EINVAL for an address space or id the kernel's callers would never pass;
 * MEMSLOT_API_FAULTED if the port faulted in a guard page (shim/guard.h).
 */
#include <stdio.h>

#include "memslot_api.h"
#include "api_common.h"

_Static_assert(KVM_MEM_SLOTS_NUM == MEMSLOT_API_SLOTS_NUM, "API slot count");
_Static_assert(KVM_ADDRESS_SPACE_NUM == MEMSLOT_API_ADDRESS_SPACE_NUM, "API address spaces");
_Static_assert(sizeof(struct memslot_api_region) == sizeof(struct kvm_userspace_memory_region),
	       "API region is the uapi struct");

static int api_as_id_ok(int as_id)
{
	return as_id >= 0 && as_id < KVM_ADDRESS_SPACE_NUM;
}

/*
 * post15's memslots[] is a flexible array member: its capacity is what the
 * allocation holds.  The other ports' array is fixed.
 */
#ifdef MEMSLOT_POST15_KVM_HOST_H
static uint32_t api_capacity(const struct kvm_memslots *slots)
{
	size_t bytes = shim_alloc_size(slots);

	if (!bytes) /* unknown: what is surely allocated */
		return slots->used_slots > 0 ? (uint32_t)slots->used_slots : 0;
	return (uint32_t)((bytes - offsetof(struct kvm_memslots, memslots)) /
			  sizeof(struct kvm_memory_slot));
}
#else
static uint32_t api_capacity(const struct kvm_memslots *slots)
{
	(void)slots;
	return KVM_MEM_SLOTS_NUM;
}
#endif


static struct kvm_userspace_memory_region api_region(const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region kmem = {
		.slot = mem->slot,
		.flags = mem->flags,
		.guest_phys_addr = mem->guest_phys_addr,
		.memory_size = mem->memory_size,
		.userspace_addr = mem->userspace_addr,
	};
	return kmem;
}

static struct kvm *api_create_vm(void)
{
	struct kvm *kvm = kvm_create_vm(0);

	return IS_ERR(kvm) ? NULL : kvm;
}

struct kvm *API(create_vm)(void)
{
	struct kvm *kvm;

	SHIM_GUARDED_CALL(NULL);
	kvm = api_create_vm();
	SHIM_GUARDED_END();
	return kvm;
}

/* KVM_SET_USER_MEMORY_REGION: copy_from_user, then the ioctl handler. */
static int api_ioctl_set_memory_region(struct kvm *kvm, const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region kvm_userspace_mem = api_region(mem);

	return kvm_vm_ioctl_set_memory_region(kvm, &kvm_userspace_mem);
}

API_GUARDED(ioctl_set_memory_region,
	    (struct kvm *kvm, const struct memslot_api_region *mem),
	    (kvm, mem))

/* An in-kernel caller such as x86's __x86_set_memory_region(). */
static int api_set_memory_region(struct kvm *kvm, const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region m = api_region(mem);

	return kvm_set_memory_region(kvm, &m);
}

API_GUARDED(set_memory_region,
	    (struct kvm *kvm, const struct memslot_api_region *mem),
	    (kvm, mem))

static int api_search_memslots(struct kvm *kvm, int as_id, uint64_t gfn,
			       struct memslot_api_slot *out)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *slot;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	slot = search_memslots(slots, gfn);
	if (!slot)
		return -1;
	api_copy_slot(out, slot);
	return (int)(slot - slots->memslots);
}

API_GUARDED(search_memslots,
	    (struct kvm *kvm, int as_id, uint64_t gfn, struct memslot_api_slot *out),
	    (kvm, as_id, gfn, out))

static int api_id_to_memslot(struct kvm *kvm, int as_id, int id, struct memslot_api_slot *out)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *slot;

	if (!api_as_id_ok(as_id) || id < 0 || id >= KVM_MEM_SLOTS_NUM)
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	slot = id_to_memslot(slots, id);
	if (!slot)
		return -1;
	api_copy_slot(out, slot);
	return (int)(slot - slots->memslots);
}

API_GUARDED(id_to_memslot,
	    (struct kvm *kvm, int as_id, int id, struct memslot_api_slot *out),
	    (kvm, as_id, id, out))

/*
 * search_memslots() at gfns[0..n) in turn, as the harness's probes ask: the index found (-1
 * for none) into index[i], the slot into out[i], and the LRU hint after the lookup into
 * lru[i]. One crossing for a whole round of probes instead of three per lookup.
 */
static int api_search_each(struct kvm *kvm, int as_id, const uint64_t *gfns, int n,
			   struct memslot_api_slot *out, int32_t *index, int32_t *lru)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *slot;
	int i;

	if (!api_as_id_ok(as_id) || n < 0)
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	for (i = 0; i < n; i++) {
		slot = search_memslots(slots, gfns[i]);
		index[i] = slot ? (int32_t)(slot - slots->memslots) : -1;
		if (slot)
			api_copy_slot(&out[i], slot);
		lru[i] = atomic_read(&slots->lru_slot);
	}
	return n;
}

API_GUARDED(search_each,
	    (struct kvm *kvm, int as_id, const uint64_t *gfns, int n,
	     struct memslot_api_slot *out, int32_t *index, int32_t *lru),
	    (kvm, as_id, gfns, n, out, index, lru))

/* id_to_memslot() for ids[0..n), as api_id_to_memslot() answers each (-1: none). */
static int api_id_to_memslot_each(struct kvm *kvm, int as_id, const int32_t *ids, int n,
				  struct memslot_api_slot *out, int32_t *index)
{
	int i;

	if (n < 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		index[i] = api_id_to_memslot(kvm, as_id, ids[i], &out[i]);
		if (index[i] < 0)
			index[i] = -1;
	}
	return n;
}

API_GUARDED(id_to_memslot_each,
	    (struct kvm *kvm, int as_id, const int32_t *ids, int n,
	     struct memslot_api_slot *out, int32_t *index),
	    (kvm, as_id, ids, n, out, index))

/* The ids kvm_for_each_memslot() visits, in order; returns how many. */
API_UNTRACED
static int api_for_each_memslot(struct kvm *kvm, int as_id, int16_t *ids, int cap)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *memslot;
	int n = 0;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	kvm_for_each_memslot(memslot, slots) {
		if (n < cap)
			ids[n] = memslot->id;
		n++;
	}
	return n;
}

API_UNTRACED
API_GUARDED(for_each_memslot,
	    (struct kvm *kvm, int as_id, int16_t *ids, int cap),
	    (kvm, as_id, ids, cap))

/*
 * Range queries as the kernel of v5.6-v5.16 answered them: a linear walk with the
 * port's own kvm_for_each_memslot, clipping each slot to the range and skipping it if
 * nothing is left (kvm_zap_gfn_range() for GFNs, kvm_handle_hva_range() of the MMU
 * notifiers for host addresses).  The ids of the slots that overlap [start, end), in
 * walk order; returns how many.  A slot's host range is [userspace_addr,
 * userspace_addr + npages * PAGE_SIZE), saturated at the top of the address space
 * (a private slot's address is not checked by access_ok(), where the kernel's sum
 * would wrap).
 */
API_UNTRACED
static int api_gfn_range_memslots(struct kvm *kvm, int as_id, uint64_t gfn_start,
				  uint64_t gfn_end, int16_t *ids, int cap)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *memslot;
	int n = 0;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	kvm_for_each_memslot(memslot, slots) {
		gfn_t start, end;

		start = gfn_start > memslot->base_gfn ? gfn_start : memslot->base_gfn;
		end = gfn_end < memslot->base_gfn + memslot->npages ?
			      gfn_end : memslot->base_gfn + memslot->npages;
		if (start >= end)
			continue;
		if (n < cap)
			ids[n] = memslot->id;
		n++;
	}
	return n;
}

API_UNTRACED
API_GUARDED(gfn_range_memslots,
	    (struct kvm *kvm, int as_id, uint64_t start, uint64_t end, int16_t *ids, int cap),
	    (kvm, as_id, start, end, ids, cap))

API_UNTRACED
static int api_hva_range_memslots(struct kvm *kvm, int as_id, uint64_t start, uint64_t end,
				  int16_t *ids, int cap)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *memslot;
	int n = 0;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	kvm_for_each_memslot(memslot, slots) {
		uint64_t hva_start, hva_end, slot_end;

		slot_end = memslot->userspace_addr + (memslot->npages << PAGE_SHIFT);
		if (slot_end < memslot->userspace_addr)
			slot_end = UINT64_MAX;
		hva_start = start > memslot->userspace_addr ? start : memslot->userspace_addr;
		hva_end = end < slot_end ? end : slot_end;
		if (hva_start >= hva_end)
			continue;
		if (n < cap)
			ids[n] = memslot->id;
		n++;
	}
	return n;
}

API_UNTRACED
API_GUARDED(hva_range_memslots,
	    (struct kvm *kvm, int as_id, uint64_t start, uint64_t end, int16_t *ids, int cap),
	    (kvm, as_id, start, end, ids, cap))

/* The header, the first min(max_entries, capacity) entries and the index. */
API_UNTRACED
static int api_get_state(struct kvm *kvm, int as_id, struct memslot_api_state *out,
			 uint32_t max_entries)
{
	struct kvm_memslots *slots;
	uint32_t i, n;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	out->slots_num = KVM_MEM_SLOTS_NUM;
	if (out->room < KVM_MEM_SLOTS_NUM)
		return -ENOSPC;
	slots = __kvm_memslots(kvm, as_id);
	out->generation = slots->generation;
	out->used_slots = slots->used_slots;
	out->lru_slot = atomic_read(&slots->lru_slot);
	out->capacity = api_capacity(slots);
	n = max_entries < out->capacity ? max_entries : out->capacity;
	if (n > out->room)
		n = out->room;
	for (i = 0; i < n; i++)
		api_copy_slot(&out->entries[i], &slots->memslots[i]);
	out->nr_copied = n;
	memcpy(out->id_to_index, slots->id_to_index, sizeof(slots->id_to_index));
	return 0;
}

API_UNTRACED
API_GUARDED(get_state,
	    (struct kvm *kvm, int as_id, struct memslot_api_state *out, uint32_t max_entries),
	    (kvm, as_id, out, max_entries))

/*
 * update_memslots() called directly, the way kvm_set_memslot() calls it but
 * without any validation: on a copy of the installed array (kvm_dup_memslots()
 * in post15, a full copy in the fixed-array ports), which then replaces it.
 * The generation is left alone.  This reaches what the ioctl cannot, such as
 * a MOVE of an absent id.
 */
static int api_update_memslots(struct kvm *kvm, int as_id, const struct memslot_api_slot *in,
			       int change)
{
	struct kvm_memslots *slots, *old;
	struct kvm_memory_slot memslot;

	if (!api_as_id_ok(as_id) || in->id < 0 || in->id >= KVM_MEM_SLOTS_NUM ||
	    change < MEMSLOT_API_MR_CREATE || change > MEMSLOT_API_MR_FLAGS_ONLY)
		return -EINVAL;
	memset(&memslot, 0, sizeof(memslot));
	memslot.base_gfn = in->base_gfn;
	memslot.npages = in->npages;
	memslot.userspace_addr = in->userspace_addr;
	memslot.flags = in->flags;
	memslot.id = in->id;

	old = __kvm_memslots(kvm, as_id);
#ifdef MEMSLOT_POST15_KVM_HOST_H
	slots = kvm_dup_memslots(old, (enum kvm_mr_change)change);
#else
	slots = kvzalloc(sizeof(struct kvm_memslots), GFP_KERNEL_ACCOUNT);
	if (slots)
		memcpy(slots, old, sizeof(struct kvm_memslots));
#endif
	if (!slots)
		return -ENOMEM;
	update_memslots(slots, &memslot, (enum kvm_mr_change)change);
	rcu_assign_pointer(kvm->memslots[as_id], slots);
	kvfree(old);
	return 0;
}

API_GUARDED(update_memslots,
	    (struct kvm *kvm, int as_id, const struct memslot_api_slot *slot, int change),
	    (kvm, as_id, slot, change))

int API(lru_slot)(struct kvm *kvm, int as_id)
{
	if (!api_as_id_ok(as_id))
		return -EINVAL;
	return atomic_read(&__kvm_memslots(kvm, as_id)->lru_slot);
}

/* Lets the harness restore the hint after lookups it made only to compare. */
void API(set_lru_slot)(struct kvm *kvm, int as_id, int lru)
{
	if (api_as_id_ok(as_id) && lru >= 0 && lru < KVM_MEM_SLOTS_NUM)
		atomic_set(&__kvm_memslots(kvm, as_id)->lru_slot, lru);
}


/*
 * The array's bounds, which the harness's own comparison of get_state() assumes:
 * used_slots within the capacity and every id_to_index[] entry -1 or within it.
 * Returns 0, or 1 with what is wrong in @msg; -EINVAL for a bad address space.
 */
API_UNTRACED
static int api_check_structure(struct kvm *kvm, int as_id, char *msg, int len)
{
	struct kvm_memslots *slots;
	uint32_t capacity;
	int id;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	capacity = api_capacity(slots);
	if (slots->used_slots < 0 || (uint32_t)slots->used_slots > capacity) {
		if (len > 0)
			snprintf(msg, (size_t)len, "used_slots %d outside [0, %u]",
				 slots->used_slots, capacity);
		return 1;
	}
	for (id = 0; id < KVM_MEM_SLOTS_NUM; id++) {
		int index = slots->id_to_index[id];

		if (index < -1 || (index >= 0 && (uint32_t)index >= capacity)) {
			if (len > 0)
				snprintf(msg, (size_t)len, "id_to_index[%d] = %d outside [-1, %u)",
					 id, index, capacity);
			return 1;
		}
	}
	return 0;
}

API_UNTRACED
API_GUARDED(check_structure,
	    (struct kvm *kvm, int as_id, char *msg, int len),
	    (kvm, as_id, msg, len))

/* x86's kvm_arch_init_vm() in v5.6 refuses every VM type but 0: -EINVAL. */
struct kvm *API(create_vm_type)(unsigned long type, int *error)
{
	struct kvm *kvm;

	if (type) {
		*error = -EINVAL;
		return NULL;
	}
	kvm = API(create_vm)();
	*error = kvm ? 0 : -ENOMEM;
	return kvm;
}

/* KVM_SET_USER_MEMORY_REGION2 and KVM_CREATE_GUEST_MEMFD came with v6.8: unknown ioctls here. */
int API(ioctl_set_memory_region2)(struct kvm *kvm, const struct memslot_api_region2 *mem)
{
	(void)kvm;
	(void)mem;
	return -ENOTTY;
}

int API(create_guest_memfd)(struct kvm *kvm, uint64_t size, uint64_t flags)
{
	(void)kvm;
	(void)size;
	(void)flags;
	return -ENOTTY;
}
