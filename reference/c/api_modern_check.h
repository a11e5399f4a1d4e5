/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memslot_<state>_check_structure() for the tree-based port: the invariants
 * of both memslot sets of an address space between two requests, which no
 * lookup can see.  The harness's bookkeeping, not kernel code (untraced):
 *  - each set's gfn tree is a red-black tree (parent links, no red child of a
 *    red node, one black height, a black root) in strictly ascending,
 *    non-overlapping base_gfn order;
 *  - its hva tree is one too, ordered by start, each node's __subtree_last
 *    the maximum last of its subtree, rb_leftmost its first node, and each
 *    node's interval the slot's [userspace_addr, end - 1];
 *  - its id hash holds each slot once, in bucket hash_32(id, 7), with
 *    consistent pprev links, and the same slots as both trees;
 *  - last_used_slot is NULL or one of its slots; node_idx is its own index;
 *  - no slot is marked KVM_MEMSLOT_INVALID, and the inactive set holds the
 *    very slot objects of the active one (kvm_activate_memslot() brought it
 *    back in sync).
 * Returns 0, or 1 with what is wrong in @msg; -EINVAL for a bad address space.
 */
#include <stdarg.h>
#include <stdio.h>

struct api_check {
	char *msg;
	int len;
	bool failed;
};

__attribute__((format(printf, 2, 3)))
static bool api_fail(struct api_check *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->failed && c->len > 0) {
		va_start(ap, fmt);
		vsnprintf(c->msg, (size_t)c->len, fmt, ap);
		va_end(ap);
	}
	c->failed = true;
	return false;
}

/* The black height of @node's subtree (-1: broken, reported in @c). */
static int api_check_rb(struct api_check *c, const char *what, int set,
			const struct rb_node *node, const struct rb_node *parent, int depth)
{
	int left, right;

	if (!node)
		return 1;
	if (depth > 128)
		return api_fail(c, "set %d: %s deeper than 128 (a cycle?)", set, what), -1;
	if (rb_parent(node) != parent)
		return api_fail(c, "set %d: %s node's parent link is wrong", set, what), -1;
	if (rb_is_red(node) && parent && rb_is_red(parent))
		return api_fail(c, "set %d: %s has a red child of a red node", set, what), -1;
	left = api_check_rb(c, what, set, node->rb_left, node, depth + 1);
	right = api_check_rb(c, what, set, node->rb_right, node, depth + 1);
	if (left < 0 || right < 0)
		return -1;
	if (left != right)
		return api_fail(c, "set %d: %s black heights differ (%d, %d)", set, what,
				left, right), -1;
	return left + rb_is_black(node);
}

/*
 * The largest `last` in the subtree at @rb into @last, every node's
 * __subtree_last checked against its own subtree's on the way up (one visit
 * per node: at 32k slots a recount per node would be quadratic).
 */
static bool api_check_subtree_last(struct api_check *c, int set, const struct rb_node *rb,
				   unsigned long *last)
{
	const struct interval_tree_node *node;
	unsigned long left = 0, right = 0, max;

	if (!rb)
		return true;
	if (!api_check_subtree_last(c, set, rb->rb_left, &left) ||
	    !api_check_subtree_last(c, set, rb->rb_right, &right))
		return false;
	node = rb_entry(rb, struct interval_tree_node, rb);
	max = node->last;
	if (rb->rb_left && left > max)
		max = left;
	if (rb->rb_right && right > max)
		max = right;
	if (node->__subtree_last != max)
		return api_fail(c, "set %d: hva tree node [%#lx, %#lx] has __subtree_last %#lx, "
				"its subtree's last is %#lx", set, node->start, node->last,
				node->__subtree_last, max);
	*last = max;
	return true;
}

/* One set's own invariants; its slot count into @nr. */
static bool api_check_set(struct api_check *c, struct kvm *kvm, int as_id, int set, int *nr)
{
	struct kvm_memslots *slots = &kvm->__memslots[as_id][set];
	int idx = slots->node_idx;
	struct kvm_memory_slot *slot, *prev = NULL, *lru;
	struct rb_node *node;
	int n = 0, hashed = 0, intervals = 0, bkt;
	unsigned long prev_start = 0, last;

	if (idx != set)
		return api_fail(c, "set %d has node_idx %d", set, idx);
	if (slots->gfn_tree.rb_node && !rb_is_black(slots->gfn_tree.rb_node))
		return api_fail(c, "set %d: gfn tree root is red", set);
	if (api_check_rb(c, "gfn tree", set, slots->gfn_tree.rb_node, NULL, 0) < 0)
		return false;
	for (node = rb_first(&slots->gfn_tree); node; node = rb_next(node)) {
		slot = container_of(node, struct kvm_memory_slot, gfn_node[idx]);
		if (++n > 2 * KVM_MEM_SLOTS_NUM)
			return api_fail(c, "set %d: gfn tree holds more than %d slots", set,
					2 * KVM_MEM_SLOTS_NUM);
		if (!slot->npages)
			return api_fail(c, "set %d: slot id %d has npages 0", set, slot->id);
		if (slot->flags & KVM_MEMSLOT_INVALID)
			return api_fail(c, "set %d: slot id %d is still KVM_MEMSLOT_INVALID", set,
					slot->id);
		if (slot->as_id != as_id)
			return api_fail(c, "set %d: slot id %d has as_id %u", set, slot->id,
					slot->as_id);
		if (prev && prev->base_gfn + prev->npages > slot->base_gfn)
			return api_fail(c, "set %d: gfn tree out of order or overlapping: id %d at "
					"%#llx, then id %d at %#llx", set, prev->id,
					(unsigned long long)prev->base_gfn, slot->id,
					(unsigned long long)slot->base_gfn);
		if (id_to_memslot(slots, slot->id) != slot)
			return api_fail(c, "set %d: slot id %d of the gfn tree is not the one its "
					"id hashes to", set, slot->id);
		prev = slot;
	}
	if (n > KVM_MEM_SLOTS_NUM)
		return api_fail(c, "set %d: %d slots, more than KVM_MEM_SLOTS_NUM", set, n);

	hash_for_each(slots->id_hash, bkt, slot, id_node[idx]) {
		struct hlist_node *h = &slot->id_node[idx];

		if (++hashed > n)
			return api_fail(c, "set %d: the id hash holds more slots than the gfn tree "
					"(%d)", set, n);
		if (!h->pprev || *h->pprev != h)
			return api_fail(c, "set %d: id hash links of id %d are broken", set,
					slot->id);
		if ((int)hash_min(slot->id, HASH_BITS(slots->id_hash)) != bkt)
			return api_fail(c, "set %d: id %d is in bucket %d, not %u", set, slot->id,
					bkt, hash_min(slot->id, HASH_BITS(slots->id_hash)));
		if (search_memslots(slots, slot->base_gfn, false) != slot)
			return api_fail(c, "set %d: hashed id %d is not the gfn tree's slot at its "
					"base", set, slot->id);
	}
	if (hashed != n)
		return api_fail(c, "set %d: the id hash holds %d slots, the gfn tree %d", set,
				hashed, n);

	node = slots->hva_tree.rb_root.rb_node;
	if (node && !rb_is_black(node))
		return api_fail(c, "set %d: hva tree root is red", set);
	if (api_check_rb(c, "hva tree", set, node, NULL, 0) < 0 ||
	    !api_check_subtree_last(c, set, node, &last))
		return false;
	if (slots->hva_tree.rb_leftmost != rb_first(&slots->hva_tree.rb_root))
		return api_fail(c, "set %d: hva tree's cached leftmost is not its first node",
				set);
	for (node = rb_first(&slots->hva_tree.rb_root); node; node = rb_next(node)) {
		struct interval_tree_node *it = rb_entry(node, struct interval_tree_node, rb);

		slot = container_of(it, struct kvm_memory_slot, hva_node[idx]);
		if (++intervals > n)
			return api_fail(c, "set %d: the hva tree holds more slots than the gfn "
					"tree (%d)", set, n);
		if (intervals > 1 && it->start < prev_start)
			return api_fail(c, "set %d: hva tree out of order at id %d", set, slot->id);
		prev_start = it->start;
		if (it->start != slot->userspace_addr ||
		    it->last != slot->userspace_addr + (slot->npages << PAGE_SHIFT) - 1)
			return api_fail(c, "set %d: id %d's hva node is [%#lx, %#lx], the slot's "
					"range [%#lx, +%lu pages)", set, slot->id, it->start,
					it->last, slot->userspace_addr, slot->npages);
		if (id_to_memslot(slots, slot->id) != slot)
			return api_fail(c, "set %d: id %d of the hva tree is not the hashed slot",
					set, slot->id);
	}
	if (intervals != n)
		return api_fail(c, "set %d: the hva tree holds %d slots, the gfn tree %d", set,
				intervals, n);

	lru = (struct kvm_memory_slot *)atomic_long_read(&slots->last_used_slot);
	if (lru && search_memslots(slots, lru->base_gfn, false) != lru)
		return api_fail(c, "set %d: last_used_slot points at a slot the set does not hold",
				set);
	*nr = n;
	return true;
}

API_UNTRACED
static int api_check_structure(struct kvm *kvm, int as_id, char *msg, int len)
{
	struct api_check c = { msg, len, false };
	struct kvm_memslots *active, *inactive;
	struct kvm_memory_slot *slot;
	int nr[2], bkt;

	if (!api_space_ok(kvm, as_id))
		return -EINVAL;
	if (!api_check_set(&c, kvm, as_id, 0, &nr[0]) || !api_check_set(&c, kvm, as_id, 1, &nr[1]))
		return 1;
	active = __kvm_memslots(kvm, as_id);
	if (active != &kvm->__memslots[as_id][0] && active != &kvm->__memslots[as_id][1])
		return api_fail(&c, "the active set is neither of the two"), 1;
	if (active->generation & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS)
		return api_fail(&c, "the active generation is still marked in progress"), 1;
	inactive = kvm_get_inactive_memslots(kvm, as_id);
	if (nr[0] != nr[1])
		return api_fail(&c, "the sets hold %d and %d slots", nr[0], nr[1]), 1;
	hash_for_each(active->id_hash, bkt, slot, id_node[active->node_idx]) {
		if (id_to_memslot(inactive, slot->id) != slot)
			return api_fail(&c, "id %d: the inactive set holds another slot object "
					"than the active one", slot->id), 1;
	}
	return 0;
}

API_UNTRACED
API_GUARDED(check_structure,
	    (struct kvm *kvm, int as_id, char *msg, int len),
	    (kvm, as_id, msg, len))
