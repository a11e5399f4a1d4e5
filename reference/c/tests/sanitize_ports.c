// SPDX-License-Identifier: GPL-2.0-only
/*
 * Drives the ports through their C API under AddressSanitizer and
 * UndefinedBehaviorSanitizer (.ci/run builds it with -fsanitize=address,undefined
 * -fno-sanitize-recover=all): random request/lookup sequences over a small universe of
 * ids and GFNs, checking that pre, post, post15 (the fixed state) and modern agree on every
 * return code, lookup and walk and that none hits a WARN, plus a fill of all 512 slots.
 *
 * Usage: sanitize_ports [ITERATIONS] [SEED]
 */
#include <stdio.h>
#include <stdlib.h>

#include "memslot_api.h"

#define EINVAL_ 22
#define HVA 0x7f0000000000ULL

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (rng_state >> 33) % n;
}

static int failures;

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, "sanitize_ports: " __VA_ARGS__); \
			fputc('\n', stderr);                    \
			failures++;                             \
		}                                               \
	} while (0)

static int walk_ids(int (*walk)(struct kvm *, int, int16_t *, int), struct kvm *kvm, int as_id,
		    int16_t *ids)
{
	return walk(kvm, as_id, ids, MEMSLOT_API_SLOTS_NUM);
}

static void compare_walks(struct kvm *pre, struct kvm *post, struct kvm *post15, int step)
{
	static int16_t a[MEMSLOT_API_SLOTS_NUM], b[MEMSLOT_API_SLOTS_NUM], c[MEMSLOT_API_SLOTS_NUM];
	int as_id, n, m, k, i;

	for (as_id = 0; as_id < MEMSLOT_API_ADDRESS_SPACE_NUM; as_id++) {
		n = walk_ids(memslot_pre_for_each_memslot, pre, as_id, a);
		m = walk_ids(memslot_post_for_each_memslot, post, as_id, b);
		k = walk_ids(memslot_post15_for_each_memslot, post15, as_id, c);
		CHECK(n == m && m == k, "step %d: walk lengths %d, %d, %d", step, n, m, k);
		for (i = 0; i < n && i < m && i < k; i++)
			CHECK(a[i] == b[i] && b[i] == c[i], "step %d: walk[%d] %d, %d, %d", step, i,
			      a[i], b[i], c[i]);
	}
}

/*
 * The tree-based port against post15: the same slots (its walk is in hash order: compared
 * as a set, by looking each id up), and its trees, hash and cache intact.
 */
static void compare_modern(struct kvm *post15, struct kvm *modern, int step)
{
	static int16_t c[MEMSLOT_API_SLOTS_NUM], d[MEMSLOT_API_SLOTS_NUM];
	struct memslot_api_slot sc, sd;
	char msg[256];
	int as_id, k, n, i;

	for (as_id = 0; as_id < MEMSLOT_API_ADDRESS_SPACE_NUM; as_id++) {
		k = walk_ids(memslot_post15_for_each_memslot, post15, as_id, c);
		n = walk_ids(memslot_modern_for_each_memslot, modern, as_id, d);
		CHECK(k == n, "step %d: walk lengths %d (post15), %d (modern)", step, k, n);
		for (i = 0; i < k && i < n; i++) {
			int rc = memslot_post15_id_to_memslot(post15, as_id, c[i], &sc);
			int rd = memslot_modern_id_to_memslot(modern, as_id, c[i], &sd);

			CHECK(rc == rd && sc.base_gfn == sd.base_gfn && sc.npages == sd.npages &&
				      sc.flags == sd.flags,
			      "step %d: id %d at index %d (post15), %d (modern)", step, c[i], rc, rd);
		}
		CHECK(memslot_modern_check_structure(modern, as_id, msg, sizeof(msg)) == 0,
		      "step %d: modern AS %d: %s", step, as_id, msg);
	}
}

static struct memslot_api_region random_region(void)
{
	static const uint64_t sizes[] = { 0, 1, 2, 3, 8 };
	struct memslot_api_region r;
	uint32_t as_id = rnd(16) == 0 ? 2 : (uint32_t)rnd(2);
	uint32_t id = rnd(8) == 0 ? 509 + (uint32_t)rnd(4) : (uint32_t)rnd(12);

	r.slot = as_id << 16 | id;
	r.flags = rnd(10) == 0 ? 4 : (uint32_t)rnd(4);
	r.guest_phys_addr = rnd(48) << 12;
	r.memory_size = sizes[rnd(5)] << 12;
	r.userspace_addr = HVA + ((uint64_t)id << 24);
	if (rnd(20) == 0)
		r.guest_phys_addr |= 1;
	return r;
}

static void random_sequences(long iterations)
{
	struct kvm *pre = NULL, *post = NULL, *post15 = NULL, *modern = NULL;
	struct memslot_api_slot sa, sb, sc, sd;
	long step;

	for (step = 0; step < iterations; step++) {
		if (step % 64 == 0) {
			memslot_pre_destroy_vm(pre);
			memslot_post_destroy_vm(post);
			memslot_post15_destroy_vm(post15);
			memslot_modern_destroy_vm(modern);
			pre = memslot_pre_create_vm();
			post = memslot_post_create_vm();
			post15 = memslot_post15_create_vm();
			modern = memslot_modern_create_vm();
		}
		if (rnd(3) == 0) {
			int as_id = (int)rnd(2);
			uint64_t gfn = rnd(64);
			int a = memslot_pre_search_memslots(pre, as_id, gfn, &sa);
			int b = memslot_post_search_memslots(post, as_id, gfn, &sb);
			int c = memslot_post15_search_memslots(post15, as_id, gfn, &sc);
			int d = memslot_modern_search_memslots(modern, as_id, gfn, &sd);

			CHECK((a < 0) == (b < 0) && (b < 0) == (c < 0) && (c < 0) == (d < 0),
			      "step %ld: lookup %#lx found %d, %d, %d, %d", step, (unsigned long)gfn, a,
			      b, c, d);
			if (a >= 0 && b >= 0 && c >= 0 && d >= 0)
				CHECK(a == b && b == c && c == d && sa.id == sb.id && sb.id == sc.id &&
					      sc.id == sd.id,
				      "step %ld: lookup %#lx: index %d/%d/%d/%d id %d/%d/%d/%d", step,
				      (unsigned long)gfn, a, b, c, d, sa.id, sb.id, sc.id, sd.id);
		} else {
			struct memslot_api_region r = random_region();
			int in_kernel = (r.slot & 0xffff) >= 509;
			int a = in_kernel ? memslot_pre_set_memory_region(pre, &r)
					  : memslot_pre_ioctl_set_memory_region(pre, &r);
			int b = in_kernel ? memslot_post_set_memory_region(post, &r)
					  : memslot_post_ioctl_set_memory_region(post, &r);
			int c = in_kernel ? memslot_post15_set_memory_region(post15, &r)
					  : memslot_post15_ioctl_set_memory_region(post15, &r);
			/* Private ids get page-aligned user addresses: 09d952c971a5 passes them. */
			int d = in_kernel ? memslot_modern_set_memory_region(modern, &r)
					  : memslot_modern_ioctl_set_memory_region(modern, &r);

			CHECK(a == b && b == c && c == d,
			      "step %ld: slot %#x gpa %#lx size %#lx flags %#x: %d, %d, %d, %d", step,
			      r.slot, (unsigned long)r.guest_phys_addr, (unsigned long)r.memory_size,
			      r.flags, a, b, c, d);
		}
		compare_walks(pre, post, post15, (int)step);
		compare_modern(post15, modern, (int)step);
	}
	memslot_pre_destroy_vm(pre);
	memslot_post_destroy_vm(post);
	memslot_post15_destroy_vm(post15);
	memslot_modern_destroy_vm(modern);
}

/* All 512 slots in both address spaces, dirty logging on, then torn down. */
static void fill_all_slots(void)
{
	struct kvm *vms[4] = { memslot_pre_create_vm(), memslot_post_create_vm(),
			       memslot_post15_create_vm(), memslot_modern_create_vm() };
	int (*ioctl[4])(struct kvm *, const struct memslot_api_region *) = {
		memslot_pre_ioctl_set_memory_region, memslot_post_ioctl_set_memory_region,
		memslot_post15_ioctl_set_memory_region, memslot_modern_ioctl_set_memory_region
	};
	int (*kset[4])(struct kvm *, const struct memslot_api_region *) = {
		memslot_pre_set_memory_region, memslot_post_set_memory_region,
		memslot_post15_set_memory_region, memslot_modern_set_memory_region
	};
	int v, as_id, id;

	for (v = 0; v < 4; v++) {
		for (as_id = 0; as_id < MEMSLOT_API_ADDRESS_SPACE_NUM; as_id++) {
			for (id = 0; id < MEMSLOT_API_SLOTS_NUM; id++) {
				/* Descending GFNs: every create moves past the whole array. */
				struct memslot_api_region r = {
					.slot = (uint32_t)(as_id << 16 | id),
					.flags = 1,
					.guest_phys_addr = (uint64_t)(MEMSLOT_API_SLOTS_NUM - id) << 13,
					.memory_size = 4096,
					.userspace_addr = HVA + ((uint64_t)id << 12),
				};
				int rc = id < 509 ? ioctl[v](vms[v], &r) : kset[v](vms[v], &r);

				CHECK(rc == 0, "fill: port %d as %d id %d: %d", v, as_id, id, rc);
			}
		}
	}
	memslot_pre_destroy_vm(vms[0]);
	memslot_post_destroy_vm(vms[1]);
	compare_modern(vms[2], vms[3], -1);
	memslot_post15_destroy_vm(vms[2]);
	memslot_modern_destroy_vm(vms[3]);
}

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? strtol(argv[1], NULL, 0) : 200000;

	rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
	fill_all_slots();
	random_sequences(iterations);
	CHECK(memslot_pre_warn_count() == 0, "pre hit a WARN: %s", memslot_pre_last_warn());
	CHECK(memslot_post_warn_count() == 0, "post hit a WARN: %s", memslot_post_last_warn());
	CHECK(memslot_post15_warn_count() == 0, "post15 hit a WARN: %s", memslot_post15_last_warn());
	CHECK(memslot_modern_warn_count() == 0, "modern hit a WARN: %s", memslot_modern_last_warn());
	printf("sanitize_ports: %ld steps, %d failures\n", iterations, failures);
	return failures ? 1 : 0;
}
