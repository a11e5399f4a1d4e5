/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The C API of one port, included at the end of that port's translation unit
 * (pre_api.c, post_api.c) after its kvm_main.c, with MEMSLOT_PORT set to the
 * port's name.  Only this file reaches into the port's structs; it calls the
 * port's own functions and copies their results into the API structs.
 *
 * Return conventions: an index into memslots[] (>= 0) or -1 for NULL;
 * -EINVAL for an address space or id the kernel's callers would never pass.
 */
#include "memslot_api.h"

#define API_CAT2(a, b, c) a##b##c
#define API_CAT(a, b, c) API_CAT2(a, b, c)
#define API(name) API_CAT(memslot_, MEMSLOT_PORT, _##name)

_Static_assert(KVM_MEM_SLOTS_NUM == MEMSLOT_API_SLOTS_NUM, "API slot count");
_Static_assert(KVM_ADDRESS_SPACE_NUM == MEMSLOT_API_ADDRESS_SPACE_NUM, "API address spaces");
_Static_assert(sizeof(struct memslot_api_region) == sizeof(struct kvm_userspace_memory_region),
	       "API region is the uapi struct");

static void api_copy_slot(struct memslot_api_slot *out, const struct kvm_memory_slot *slot)
{
	out->base_gfn = slot->base_gfn;
	out->npages = slot->npages;
	out->userspace_addr = slot->userspace_addr;
	out->flags = slot->flags;
	out->id = slot->id;
	out->has_dirty_bitmap = slot->dirty_bitmap != NULL;
	out->reserved = 0;
}

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

static int api_as_id_ok(int as_id)
{
	return as_id >= 0 && as_id < KVM_ADDRESS_SPACE_NUM;
}

struct kvm *API(create_vm)(void)
{
	struct kvm *kvm = kvm_create_vm(0);

	return IS_ERR(kvm) ? NULL : kvm;
}

void API(destroy_vm)(struct kvm *kvm)
{
	if (kvm)
		kvm_destroy_vm(kvm);
}

/* KVM_SET_USER_MEMORY_REGION: copy_from_user, then the ioctl handler. */
int API(ioctl_set_memory_region)(struct kvm *kvm, const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region kvm_userspace_mem = api_region(mem);

	return kvm_vm_ioctl_set_memory_region(kvm, &kvm_userspace_mem);
}

/* An in-kernel caller such as x86's __x86_set_memory_region(). */
int API(set_memory_region)(struct kvm *kvm, const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region m = api_region(mem);

	return kvm_set_memory_region(kvm, &m);
}

int API(search_memslots)(struct kvm *kvm, int as_id, uint64_t gfn, struct memslot_api_slot *out)
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

int API(id_to_memslot)(struct kvm *kvm, int as_id, int id, struct memslot_api_slot *out)
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

/* The ids kvm_for_each_memslot() visits, in order; returns how many. */
int API(for_each_memslot)(struct kvm *kvm, int as_id, int16_t *ids, int cap)
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

int API(get_state)(struct kvm *kvm, int as_id, struct memslot_api_state *out, uint32_t max_entries)
{
	struct kvm_memslots *slots;
	uint32_t i, n;

	if (!api_as_id_ok(as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	out->generation = slots->generation;
	out->used_slots = slots->used_slots;
	out->lru_slot = atomic_read(&slots->lru_slot);
	out->capacity = KVM_MEM_SLOTS_NUM;
	n = max_entries < out->capacity ? max_entries : out->capacity;
	for (i = 0; i < n; i++)
		api_copy_slot(&out->entries[i], &slots->memslots[i]);
	out->nr_copied = n;
	memcpy(out->id_to_index, slots->id_to_index, sizeof(out->id_to_index));
	return 0;
}

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

void API(set_prepare_error)(struct kvm *kvm, int error)
{
	kvm->shim_prepare_error = error;
}

uint64_t API(warn_count)(void)
{
	return shim_warn_count;
}

const char *API(last_warn)(void)
{
	return shim_last_warn;
}
