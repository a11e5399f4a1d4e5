/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The C API through which Rust drives the ports.  This header is the one
 * definition of every struct that crosses the boundary; reference/src/ffi.rs
 * mirrors it with #[repr(C)] and checks the mirror against
 * memslot_api_layout(), which reports what the C compiler laid out.
 *
 * Each port state (states/<state>.c: a port compiled with a set of later upstream
 * fixes) exports the same functions under its own prefix, memslot_<state>_*.
 * Every call that runs port code is guarded (shim/guard.h): if the port
 * faults in a guard page, the call returns MEMSLOT_API_FAULTED and
 * memslot_shim_take_fault() says where; the VM must not be used again.
 */
#ifndef MEMSLOT_API_H
#define MEMSLOT_API_H

#include <stddef.h>
#include <stdint.h>

/*
 * KVM_MEM_SLOTS_NUM and KVM_ADDRESS_SPACE_NUM on the 2020 ports' x86 (the
 * modern-32k state has SHRT_MAX slots: API(mem_slots_num) says which).
 */
#define MEMSLOT_API_SLOTS_NUM 512
#define MEMSLOT_API_ADDRESS_SPACE_NUM 2

/* struct kvm_userspace_memory_region, field for field (uapi/linux/kvm.h). */
struct memslot_api_region {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};

/*
 * struct kvm_userspace_memory_region2 (v6.8), field for field: the v1 fields, then
 * the guest_memfd ones and the padding userspace must pass.
 */
struct memslot_api_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};

/* One struct kvm_memory_slot, as the harness sees it. */
struct memslot_api_slot {
	uint64_t base_gfn;
	uint64_t npages;
	uint64_t userspace_addr;
	uint32_t flags;
	int16_t id;
	uint8_t has_dirty_bitmap;
	uint8_t reserved;
};

/* What a call returned when the port faulted (see memslot_shim_take_fault()). */
#define MEMSLOT_API_FAULTED (-100000)

/* enum kvm_mr_change, for memslot_<state>_update_memslots(). */
#define MEMSLOT_API_MR_CREATE 0
#define MEMSLOT_API_MR_DELETE 1
#define MEMSLOT_API_MR_MOVE 2
#define MEMSLOT_API_MR_FLAGS_ONLY 3

/* An access outside an allocation, caught by the shim (shim/guard.h). */
struct memslot_api_fault {
	uint64_t addr;        /* the faulting address (or the overwritten canary) */
	uint64_t alloc_start; /* the allocation it belongs to: start and size */
	uint64_t alloc_size;
	int32_t kind;         /* 0 none, 1 past the end, 2 before the start */
	int32_t is_write;
	char function[48];    /* the API function that was running */
};

/* The fault caught in this thread's latest faulted call, once (1), or 0. */
int memslot_shim_take_fault(struct memslot_api_fault *out);
/* 1 if out-of-bounds accesses are caught by guard pages, 0 under AddressSanitizer. */
int memslot_shim_guarded(void);
/* The shim's allocations this thread made and has not freed. */
int64_t memslot_shim_live_allocations(void);

/*
 * One struct kvm_memslots: the header, the first nr_copied entries and the
 * index, into the caller's buffers of `room` entries each.  The port's
 * KVM_MEM_SLOTS_NUM (API(mem_slots_num)) is always room enough; less is
 * refused with -ENOSPC, so that no id is silently left out of the index.
 */
struct memslot_api_state {
	uint64_t generation;
	int32_t used_slots;
	int32_t lru_slot;
	uint32_t capacity;  /* entries allocated in memslots[] */
	uint32_t nr_copied; /* entries copied into entries[] */
	uint32_t room;      /* in: entries[] and id_to_index[] hold this many */
	uint32_t slots_num; /* out: KVM_MEM_SLOTS_NUM, the ids id_to_index[] gives */
	struct memslot_api_slot *entries;
	int16_t *id_to_index;
};

/* sizeof and offsetof of the structs above, as this compiler laid them out. */
struct memslot_api_layout {
	uint64_t region_size, region_slot, region_flags, region_guest_phys_addr,
		region_memory_size, region_userspace_addr;
	uint64_t slot_size, slot_base_gfn, slot_npages, slot_userspace_addr, slot_flags,
		slot_id, slot_has_dirty_bitmap;
	uint64_t state_size, state_generation, state_used_slots, state_lru_slot,
		state_capacity, state_nr_copied, state_room, state_slots_num, state_entries,
		state_id_to_index;
	uint64_t fault_size, fault_addr, fault_alloc_start, fault_alloc_size, fault_kind,
		fault_is_write, fault_function;
	uint64_t region2_size, region2_userspace_addr, region2_guest_memfd_offset,
		region2_guest_memfd, region2_pad2;
};

void memslot_api_layout(struct memslot_api_layout *out);

struct kvm;

#define MEMSLOT_API_DECLARE(port)                                                             \
	struct kvm *memslot_##port##_create_vm(void);                                         \
	void memslot_##port##_destroy_vm(struct kvm *kvm);                                    \
	int memslot_##port##_ioctl_set_memory_region(struct kvm *kvm,                         \
						     const struct memslot_api_region *mem);   \
	int memslot_##port##_set_memory_region(struct kvm *kvm,                               \
					       const struct memslot_api_region *mem);         \
	int memslot_##port##_search_memslots(struct kvm *kvm, int as_id, uint64_t gfn,        \
					     struct memslot_api_slot *out);                   \
	int memslot_##port##_id_to_memslot(struct kvm *kvm, int as_id, int id,                \
					   struct memslot_api_slot *out);                     \
	int memslot_##port##_search_each(struct kvm *kvm, int as_id, const uint64_t *gfns,    \
					 int n, struct memslot_api_slot *out, int32_t *index, \
					 int32_t *lru);                                       \
	int memslot_##port##_id_to_memslot_each(struct kvm *kvm, int as_id,                   \
						const int32_t *ids, int n,                    \
						struct memslot_api_slot *out,                 \
						int32_t *index);                              \
	int memslot_##port##_for_each_memslot(struct kvm *kvm, int as_id, int16_t *ids,       \
					      int cap);                                       \
	int memslot_##port##_gfn_range_memslots(struct kvm *kvm, int as_id, uint64_t start,   \
						uint64_t end, int16_t *ids, int cap);         \
	int memslot_##port##_hva_range_memslots(struct kvm *kvm, int as_id, uint64_t start,   \
						uint64_t end, int16_t *ids, int cap);         \
	int memslot_##port##_get_state(struct kvm *kvm, int as_id,                            \
				       struct memslot_api_state *out, uint32_t max_entries);  \
	int memslot_##port##_lru_slot(struct kvm *kvm, int as_id);                            \
	void memslot_##port##_set_lru_slot(struct kvm *kvm, int as_id, int lru);              \
	void memslot_##port##_set_prepare_error(struct kvm *kvm, int error);                  \
	int memslot_##port##_update_memslots(struct kvm *kvm, int as_id,                      \
					     const struct memslot_api_slot *slot, int change); \
	uint64_t memslot_##port##_warn_count(void);                                           \
	const char *memslot_##port##_last_warn(void);                                         \
	int memslot_##port##_check_structure(struct kvm *kvm, int as_id, char *msg, int len); \
	struct kvm *memslot_##port##_create_vm_type(unsigned long type, int *error);          \
	int memslot_##port##_ioctl_set_memory_region2(struct kvm *kvm,                        \
						      const struct memslot_api_region2 *mem); \
	int memslot_##port##_create_guest_memfd(struct kvm *kvm, uint64_t size, uint64_t flags); \
	int memslot_##port##_mem_slots_num(void);

MEMSLOT_API_DECLARE(pre)
MEMSLOT_API_DECLARE(pre_fixed)
MEMSLOT_API_DECLARE(pre_bug_prepare_invalid)
MEMSLOT_API_DECLARE(pre_bug_below_lowest_full)
MEMSLOT_API_DECLARE(post)
MEMSLOT_API_DECLARE(post_fixed)
MEMSLOT_API_DECLARE(post15)
MEMSLOT_API_DECLARE(post15_merged)
MEMSLOT_API_DECLARE(post15_bug_stale_lru)
MEMSLOT_API_DECLARE(post15_bug_empty_array)
MEMSLOT_API_DECLARE(post15_bug_below_lowest)
MEMSLOT_API_DECLARE(post15_bug_update_absent_id)
MEMSLOT_API_DECLARE(modern)
MEMSLOT_API_DECLARE(modern_32k)
MEMSLOT_API_DECLARE(modern_selftest_stale_cache)

#endif /* MEMSLOT_API_H */
