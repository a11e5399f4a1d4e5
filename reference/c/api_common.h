/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the C API of every port state shares (api_impl.h for the array ports,
 * api_modern.h for the tree-based one): the exported names, the guarded-call
 * wrapper, the slot copy, and the functions that do not depend on how a port
 * stores its slots.  Included after the port's kvm_main.c.
 */
#ifndef MEMSLOT_API_COMMON_H
#define MEMSLOT_API_COMMON_H

#include "memslot_api.h"

#define API_CAT2(a, b, c) a##b##c
#define API_CAT(a, b, c) API_CAT2(a, b, c)
#define API(name) API_CAT(memslot_, MEMSLOT_PORT, _##name)

_Static_assert(KVM_MR_CREATE == MEMSLOT_API_MR_CREATE && KVM_MR_DELETE == MEMSLOT_API_MR_DELETE &&
		       KVM_MR_MOVE == MEMSLOT_API_MR_MOVE &&
		       KVM_MR_FLAGS_ONLY == MEMSLOT_API_MR_FLAGS_ONLY,
	       "API change codes are enum kvm_mr_change");

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

/*
 * Each function that runs port code arms the shim's fault catcher first
 * (SHIM_GUARDED_CALL) and disarms it before returning (SHIM_GUARDED_END).
 * The work is done in a static helper so that no local of the guarded frame
 * lives across the sigsetjmp().
 */

/*
 * The exported int function `name` around its static helper api_<name>: the
 * catcher's sigsetjmp() must run in the exported function's own frame.
 */
#define API_GUARDED(name, params, args)                      \
	int API(name) params                                  \
	{                                                     \
		int r;                                        \
                                                              \
		SHIM_GUARDED_CALL(MEMSLOT_API_FAULTED);       \
		r = api_##name args;                          \
		SHIM_GUARDED_END();                           \
		return r;                                     \
	}

/*
 * The API's own walks over a whole array (the walk, range queries, the state copy)
 * are the harness's bookkeeping, not kernel code: no coverage feedback from them.
 * Under -fsanitize=fuzzer-no-link every comparison they make for every slot was
 * traced (the range queries alone were 13% of a 512-slot step), for edges that say
 * nothing about the port.  AddressSanitizer still checks their accesses.  The helper is inlined into
 * the exported function, so both carry the attribute.
 */
#if defined(__clang__)
#define API_UNTRACED __attribute__((no_sanitize("coverage")))
#else
#define API_UNTRACED
#endif

/* What the API keeps beside a VM, freed with it (api_modern.h: its rank tables). */
#ifndef API_RELEASE
#define API_RELEASE(kvm) ((void)(kvm))
#endif

void API(destroy_vm)(struct kvm *kvm)
{
	SHIM_GUARDED_CALL();
	if (kvm) {
		API_RELEASE(kvm);
		kvm_destroy_vm(kvm);
	}
	SHIM_GUARDED_END();
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

/* KVM_MEM_SLOTS_NUM of this state: the ids id_to_index[] and the walks cover. */
int API(mem_slots_num)(void)
{
	return KVM_MEM_SLOTS_NUM;
}

#endif /* MEMSLOT_API_COMMON_H */
