/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The C API of the tree-based port (modern/), included at the end of its
 * state's translation unit after modern/kvm_main.c, with MEMSLOT_PORT set.
 * It exports the same functions as the array ports' api_impl.h, so that one
 * Rust wrapper drives every port; what an array port reports as such, this
 * one derives from the active set of the address space:
 *  - the "array" is the gfn tree in descending base_gfn order (rb_last(),
 *    then rb_prev()), the order the array ports keep memslots[] in;
 *  - an "index" is a slot's rank in that order; id_to_index[] is the rank of
 *    the slot id_to_memslot() finds, -1 if none;
 *  - used_slots is the number of slots in the gfn tree (the kernel keeps no
 *    count), and the capacity is the same number;
 *  - the LRU hint is the rank of last_used_slot: -1 for NULL, -2 for a
 *    pointer to a slot the gfn tree does not hold.
 * Everything else (the walk, the range walks) comes back in the kernel's own
 * order; the Rust adapter normalises it and says why.
 */
#include "memslot_api.h"

#define API_RELEASE(kvm) free((kvm)->shim_api)
#include "api_common.h"

/* The address spaces this VM has: one without SMM (a VM with private memory). */
static int api_space_ok(struct kvm *kvm, int as_id)
{
	return as_id >= 0 && as_id < kvm_arch_nr_memslot_as_ids(kvm);
}
_Static_assert(KVM_ADDRESS_SPACE_NUM == MEMSLOT_API_ADDRESS_SPACE_NUM, "API address spaces");

/*
 * The ranks of one address space's active set, rebuilt after every request:
 * lookups do not change the trees, so between requests a rank is a binary
 * search by base_gfn, not a walk.
 */
struct api_ranks {
	bool current;
	int nr;       /* slots in the gfn tree, up to KVM_MEM_SLOTS_NUM ranked */
	bool descending; /* bases strictly descend: the binary search is exact */
	struct kvm_memory_slot *slot[KVM_MEM_SLOTS_NUM];
};

struct api_private {
	struct api_ranks ranks[KVM_ADDRESS_SPACE_NUM];
	/* api_get_state()'s scratch: what id_to_memslot() returns for each id. */
	struct kvm_memory_slot *by_id[KVM_MEM_SLOTS_NUM];
};

static struct api_ranks *api_ranks(struct kvm *kvm, int as_id)
{
	struct api_private *p = kvm->shim_api;
	struct api_ranks *r = &p->ranks[as_id];
	struct kvm_memslots *slots;
	struct rb_node *node;
	int idx;

	if (r->current)
		return r;
	slots = __kvm_memslots(kvm, as_id);
	idx = slots->node_idx;
	r->nr = 0;
	r->descending = true;
	for (node = rb_last(&slots->gfn_tree); node; node = rb_prev(node)) {
		struct kvm_memory_slot *s = container_of(node, struct kvm_memory_slot, gfn_node[idx]);

		if (r->nr >= KVM_MEM_SLOTS_NUM) {
			r->nr++; /* counted, not ranked: check_structure() reports it */
			continue;
		}
		if (r->nr && r->slot[r->nr - 1]->base_gfn <= s->base_gfn)
			r->descending = false;
		r->slot[r->nr++] = s;
	}
	r->current = true;
	return r;
}

static void api_requested(struct kvm *kvm)
{
	struct api_private *p = kvm->shim_api;
	int i;

	for (i = 0; i < KVM_ADDRESS_SPACE_NUM; i++)
		p->ranks[i].current = false;
}

static int api_ranked(const struct api_ranks *r)
{
	return r->nr < KVM_MEM_SLOTS_NUM ? r->nr : KVM_MEM_SLOTS_NUM;
}

/* @slot's rank in the active set of @as_id, or -2 if the gfn tree does not hold it. */
static int api_rank_of(struct kvm *kvm, int as_id, const struct kvm_memory_slot *slot)
{
	struct api_ranks *r = api_ranks(kvm, as_id);
	int lo = 0, hi = api_ranked(r), i;

	if (r->descending) {
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;

			if (r->slot[mid]->base_gfn > slot->base_gfn)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < api_ranked(r) && r->slot[lo] == slot ? lo : -2;
	}
	for (i = 0; i < api_ranked(r); i++)
		if (r->slot[i] == slot)
			return i;
	return -2;
}

static int api_lru(struct kvm *kvm, int as_id)
{
	struct kvm_memory_slot *slot;

	slot = (struct kvm_memory_slot *)atomic_long_read(&__kvm_memslots(kvm, as_id)->last_used_slot);
	return slot ? api_rank_of(kvm, as_id, slot) : -1;
}

static struct kvm *api_create_vm(unsigned long type, int *error)
{
	struct kvm *kvm = kvm_create_vm(type);

	if (IS_ERR(kvm)) {
		*error = (int)PTR_ERR(kvm);
		return NULL;
	}
	kvm->shim_api = calloc(1, sizeof(struct api_private));
	if (!kvm->shim_api) {
		kvm_destroy_vm(kvm);
		*error = -ENOMEM;
		return NULL;
	}
	*error = 0;
	return kvm;
}

struct kvm *API(create_vm)(void)
{
	struct kvm *kvm;
	int error;

	SHIM_GUARDED_CALL(NULL);
	kvm = api_create_vm(KVM_X86_DEFAULT_VM, &error);
	SHIM_GUARDED_END();
	return kvm;
}

/* KVM_CREATE_VM(type): KVM_X86_DEFAULT_VM or KVM_X86_SW_PROTECTED_VM. */
struct kvm *API(create_vm_type)(unsigned long type, int *error)
{
	struct kvm *kvm;

	SHIM_GUARDED_CALL(NULL);
	kvm = api_create_vm(type, error);
	SHIM_GUARDED_END();
	return kvm;
}

/* KVM_SET_USER_MEMORY_REGION2: the whole struct, through kvm_vm_ioctl(). */
static int api_ioctl_set_memory_region2(struct kvm *kvm, const struct memslot_api_region2 *mem)
{
	struct kvm_userspace_memory_region2 m;

	memcpy(&m, mem, sizeof(m));
	api_requested(kvm);
	return (int)kvm_vm_ioctl(kvm, KVM_SET_USER_MEMORY_REGION2, &m);
}

_Static_assert(sizeof(struct memslot_api_region2) == sizeof(struct kvm_userspace_memory_region2),
	       "API region2 is the uapi struct");

API_GUARDED(ioctl_set_memory_region2,
	    (struct kvm *kvm, const struct memslot_api_region2 *mem),
	    (kvm, mem))

/* KVM_CREATE_GUEST_MEMFD: the new file's fd, or a negative errno. */
static int api_create_guest_memfd(struct kvm *kvm, uint64_t size, uint64_t flags)
{
	return kvm_gmem_create(kvm, (loff_t)size, flags);
}

API_GUARDED(create_guest_memfd,
	    (struct kvm *kvm, uint64_t size, uint64_t flags),
	    (kvm, size, flags))

/* KVM_SET_USER_MEMORY_REGION: the struct as userspace passes it, through kvm_vm_ioctl(). */
static int api_ioctl_set_memory_region(struct kvm *kvm, const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region kvm_userspace_mem = {
		.slot = mem->slot,
		.flags = mem->flags,
		.guest_phys_addr = mem->guest_phys_addr,
		.memory_size = mem->memory_size,
		.userspace_addr = mem->userspace_addr,
	};

	api_requested(kvm);
	return (int)kvm_vm_ioctl(kvm, KVM_SET_USER_MEMORY_REGION, &kvm_userspace_mem);
}

API_GUARDED(ioctl_set_memory_region,
	    (struct kvm *kvm, const struct memslot_api_region *mem),
	    (kvm, mem))

/* An in-kernel caller such as x86's __x86_set_memory_region(): no guest_memfd. */
static int api_set_memory_region(struct kvm *kvm, const struct memslot_api_region *mem)
{
	struct kvm_userspace_memory_region2 m = {
		.slot = mem->slot,
		.flags = mem->flags,
		.guest_phys_addr = mem->guest_phys_addr,
		.memory_size = mem->memory_size,
		.userspace_addr = mem->userspace_addr,
	};

	api_requested(kvm);
	return kvm_set_memory_region(kvm, &m);
}

API_GUARDED(set_memory_region,
	    (struct kvm *kvm, const struct memslot_api_region *mem),
	    (kvm, mem))

/* __gfn_to_memslot(): the last_used_slot cache, then the gfn tree. */
static int api_search_memslots(struct kvm *kvm, int as_id, uint64_t gfn,
			       struct memslot_api_slot *out)
{
	struct kvm_memory_slot *slot;

	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	slot = __gfn_to_memslot(__kvm_memslots(kvm, as_id), gfn);
	if (!slot)
		return -1;
	api_copy_slot(out, slot);
	return api_rank_of(kvm, as_id, slot);
}

API_GUARDED(search_memslots,
	    (struct kvm *kvm, int as_id, uint64_t gfn, struct memslot_api_slot *out),
	    (kvm, as_id, gfn, out))

static int api_id_to_memslot(struct kvm *kvm, int as_id, int id, struct memslot_api_slot *out)
{
	struct kvm_memory_slot *slot;

	if (!api_space_ok(kvm, as_id) || id < 0 || id >= KVM_MEM_SLOTS_NUM)
		return -EINVAL;
	slot = id_to_memslot(__kvm_memslots(kvm, as_id), id);
	if (!slot)
		return -1;
	api_copy_slot(out, slot);
	return api_rank_of(kvm, as_id, slot);
}

API_GUARDED(id_to_memslot,
	    (struct kvm *kvm, int as_id, int id, struct memslot_api_slot *out),
	    (kvm, as_id, id, out))

/* api_search_memslots() at gfns[0..n), with the LRU hint after each (as api_impl.h). */
static int api_search_each(struct kvm *kvm, int as_id, const uint64_t *gfns, int n,
			   struct memslot_api_slot *out, int32_t *index, int32_t *lru)
{
	int i;

	if (!api_space_ok(kvm, as_id) || n < 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		index[i] = api_search_memslots(kvm, as_id, gfns[i], &out[i]);
		if (index[i] < -1)
			index[i] = -2; /* found a slot the gfn tree does not hold */
		lru[i] = api_lru(kvm, as_id);
	}
	return n;
}

API_GUARDED(search_each,
	    (struct kvm *kvm, int as_id, const uint64_t *gfns, int n,
	     struct memslot_api_slot *out, int32_t *index, int32_t *lru),
	    (kvm, as_id, gfns, n, out, index, lru))

static int api_id_to_memslot_each(struct kvm *kvm, int as_id, const int32_t *ids, int n,
				  struct memslot_api_slot *out, int32_t *index)
{
	int i;

	if (n < 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		index[i] = api_id_to_memslot(kvm, as_id, ids[i], &out[i]);
		if (index[i] == -EINVAL)
			index[i] = -1;
	}
	return n;
}

API_GUARDED(id_to_memslot_each,
	    (struct kvm *kvm, int as_id, const int32_t *ids, int n,
	     struct memslot_api_slot *out, int32_t *index),
	    (kvm, as_id, ids, n, out, index))

/* The ids kvm_for_each_memslot() visits: the id hash, bucket by bucket. */
API_UNTRACED
static int api_for_each_memslot(struct kvm *kvm, int as_id, int16_t *ids, int cap)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *memslot;
	int bkt, n = 0;

	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	slots = __kvm_memslots(kvm, as_id);
	kvm_for_each_memslot(memslot, bkt, slots) {
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
 * kvm_for_each_memslot_in_gfn_range() as kvm_zap_gfn_range()'s rmap walk uses
 * it: an empty range is refused up front (the caller's WARN, not counted: the
 * harness asks such ranges on purpose), and each slot the iterator yields is
 * clipped to the range, where the caller WARNs if nothing is left.  The ids in
 * the iterator's order (ascending gfn).
 */
API_UNTRACED
static int api_gfn_range_memslots(struct kvm *kvm, int as_id, uint64_t gfn_start,
				  uint64_t gfn_end, int16_t *ids, int cap)
{
	struct kvm_memslots *slots;
	struct kvm_memslot_iter iter;
	int n = 0;

	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	if (gfn_end <= gfn_start)
		return 0;
	slots = __kvm_memslots(kvm, as_id);
	kvm_for_each_memslot_in_gfn_range(&iter, slots, gfn_start, gfn_end) {
		struct kvm_memory_slot *memslot = iter.slot;
		gfn_t start, end;

		start = max_t(gfn_t, gfn_start, memslot->base_gfn);
		end = min_t(gfn_t, gfn_end, memslot->base_gfn + memslot->npages);
		if (WARN_ON_ONCE(start >= end))
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

/*
 * kvm_for_each_memslot_in_hva_range() as __kvm_handle_hva_range() uses it
 * for the MMU notifiers: [start, end - 1] in the interval tree, each slot
 * clipped to the range.  The ids in the tree's order (ascending start).
 */
API_UNTRACED
static int api_hva_range_memslots(struct kvm *kvm, int as_id, uint64_t start, uint64_t end,
				  int16_t *ids, int cap)
{
	struct kvm_memslots *slots;
	struct interval_tree_node *node;
	int n = 0;

	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	if (end <= start)
		return 0;
	slots = __kvm_memslots(kvm, as_id);
	kvm_for_each_memslot_in_hva_range(node, slots, start, end - 1) {
		struct kvm_memory_slot *slot;
		unsigned long hva_start, hva_end;

		slot = container_of(node, struct kvm_memory_slot, hva_node[slots->node_idx]);
		hva_start = max_t(unsigned long, start, slot->userspace_addr);
		hva_end = min_t(unsigned long, end,
				slot->userspace_addr + (slot->npages << PAGE_SHIFT));
		if (hva_start >= hva_end)
			continue;
		if (n < cap)
			ids[n] = slot->id;
		n++;
	}
	return n;
}

API_UNTRACED
API_GUARDED(hva_range_memslots,
	    (struct kvm *kvm, int as_id, uint64_t start, uint64_t end, int16_t *ids, int cap),
	    (kvm, as_id, start, end, ids, cap))

/*
 * What id_to_memslot() returns for each id, from one walk of the id hash: the
 * first slot with that id in the chain of the bucket the id hashes to, which
 * is where id_to_memslot() looks.  NULL when @nr slots are few enough for a
 * lookup each (chains are short below one slot per bucket).
 */
API_UNTRACED
static struct kvm_memory_slot **api_by_id(struct kvm *kvm, struct kvm_memslots *slots, int nr)
{
	struct kvm_memory_slot **by_id = ((struct api_private *)kvm->shim_api)->by_id;
	struct kvm_memory_slot *slot;
	int bkt, id;

	if (nr <= HASH_SIZE(slots->id_hash))
		return NULL;
	for (id = 0; id < KVM_MEM_SLOTS_NUM; id++)
		by_id[id] = NULL;
	hash_for_each(slots->id_hash, bkt, slot, id_node[slots->node_idx]) {
		id = slot->id;
		if (id >= 0 && id < KVM_MEM_SLOTS_NUM && !by_id[id] &&
		    hash_min(id, HASH_BITS(slots->id_hash)) == (u32)bkt)
			by_id[id] = slot;
	}
	return by_id;
}

/*
 * The header, the first min(max_entries, slots) ranks, and the index of every id: for
 * each slot of the gfn tree, the rank of the slot id_to_memslot() finds for its id (so
 * a hash entry naming another object shows at once); -1 for every other id.  An id the
 * hash holds but the trees do not is check_structure()'s to find (the full checks), and
 * the probes' id queries': asking every id here cost more than the port's requests.
 */
API_UNTRACED
static int api_get_state(struct kvm *kvm, int as_id, struct memslot_api_state *out,
			 uint32_t max_entries)
{
	struct kvm_memory_slot **by_id;
	struct kvm_memslots *slots;
	struct api_ranks *r;
	uint32_t i, n;
	int id;

	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	out->slots_num = KVM_MEM_SLOTS_NUM;
	if (out->room < KVM_MEM_SLOTS_NUM)
		return -ENOSPC;
	slots = __kvm_memslots(kvm, as_id);
	r = api_ranks(kvm, as_id);
	out->generation = slots->generation;
	out->used_slots = r->nr;
	out->lru_slot = api_lru(kvm, as_id);
	out->capacity = (uint32_t)api_ranked(r);
	n = max_entries < out->capacity ? max_entries : out->capacity;
	if (n > out->room)
		n = out->room;
	for (i = 0; i < n; i++)
		api_copy_slot(&out->entries[i], r->slot[i]);
	out->nr_copied = n;
	for (id = 0; id < KVM_MEM_SLOTS_NUM; id++)
		out->id_to_index[id] = -1;
	by_id = api_by_id(kvm, slots, api_ranked(r));
	for (i = 0; i < (uint32_t)api_ranked(r); i++) {
		struct kvm_memory_slot *slot;

		id = r->slot[i]->id;
		if (id < 0 || id >= KVM_MEM_SLOTS_NUM)
			continue;
		slot = by_id ? by_id[id] : id_to_memslot(slots, id);
		if (slot == r->slot[i])
			out->id_to_index[id] = (int16_t)i;
		else
			out->id_to_index[id] = slot ? (int16_t)api_rank_of(kvm, as_id, slot) : -1;
	}
	return 0;
}

API_UNTRACED
API_GUARDED(get_state,
	    (struct kvm *kvm, int as_id, struct memslot_api_state *out, uint32_t max_entries),
	    (kvm, as_id, out, max_entries))

/*
 * The array code's update_memslots() has no counterpart since a54d806688fe:
 * the tree-based code edits the inactive set in kvm_replace_memslot(), which
 * only kvm_set_memslot()'s helpers call.
 */
int API(update_memslots)(struct kvm *kvm, int as_id, const struct memslot_api_slot *slot,
			 int change)
{
	(void)kvm;
	(void)as_id;
	(void)slot;
	(void)change;
	return -EOPNOTSUPP;
}

int API(lru_slot)(struct kvm *kvm, int as_id)
{
	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	return api_lru(kvm, as_id);
}

/* Restores the cache after lookups made only to compare: a rank, or -1 for NULL. */
void API(set_lru_slot)(struct kvm *kvm, int as_id, int lru)
{
	struct api_ranks *r;

	if (!api_space_ok(kvm, as_id))
		return;
	r = api_ranks(kvm, as_id);
	if (lru == -1)
		atomic_long_set(&__kvm_memslots(kvm, as_id)->last_used_slot, 0);
	else if (lru >= 0 && lru < api_ranked(r))
		atomic_long_set(&__kvm_memslots(kvm, as_id)->last_used_slot,
				(long)r->slot[lru]);
}

#include "api_modern_check.h"
