// SPDX-License-Identifier: GPL-2.0-only
/* Reports the C layout of the API structs so that Rust can check its mirror. */
#include "memslot_api.h"

void memslot_api_layout(struct memslot_api_layout *out)
{
	out->region_size = sizeof(struct memslot_api_region);
	out->region_slot = offsetof(struct memslot_api_region, slot);
	out->region_flags = offsetof(struct memslot_api_region, flags);
	out->region_guest_phys_addr = offsetof(struct memslot_api_region, guest_phys_addr);
	out->region_memory_size = offsetof(struct memslot_api_region, memory_size);
	out->region_userspace_addr = offsetof(struct memslot_api_region, userspace_addr);
	out->slot_size = sizeof(struct memslot_api_slot);
	out->slot_base_gfn = offsetof(struct memslot_api_slot, base_gfn);
	out->slot_npages = offsetof(struct memslot_api_slot, npages);
	out->slot_userspace_addr = offsetof(struct memslot_api_slot, userspace_addr);
	out->slot_flags = offsetof(struct memslot_api_slot, flags);
	out->slot_id = offsetof(struct memslot_api_slot, id);
	out->slot_has_dirty_bitmap = offsetof(struct memslot_api_slot, has_dirty_bitmap);
	out->state_size = sizeof(struct memslot_api_state);
	out->state_generation = offsetof(struct memslot_api_state, generation);
	out->state_used_slots = offsetof(struct memslot_api_state, used_slots);
	out->state_lru_slot = offsetof(struct memslot_api_state, lru_slot);
	out->state_capacity = offsetof(struct memslot_api_state, capacity);
	out->state_nr_copied = offsetof(struct memslot_api_state, nr_copied);
	out->state_room = offsetof(struct memslot_api_state, room);
	out->state_slots_num = offsetof(struct memslot_api_state, slots_num);
	out->state_entries = offsetof(struct memslot_api_state, entries);
	out->state_id_to_index = offsetof(struct memslot_api_state, id_to_index);
	out->fault_size = sizeof(struct memslot_api_fault);
	out->fault_addr = offsetof(struct memslot_api_fault, addr);
	out->fault_alloc_start = offsetof(struct memslot_api_fault, alloc_start);
	out->fault_alloc_size = offsetof(struct memslot_api_fault, alloc_size);
	out->fault_kind = offsetof(struct memslot_api_fault, kind);
	out->fault_is_write = offsetof(struct memslot_api_fault, is_write);
	out->fault_function = offsetof(struct memslot_api_fault, function);
	out->region2_size = sizeof(struct memslot_api_region2);
	out->region2_userspace_addr = offsetof(struct memslot_api_region2, userspace_addr);
	out->region2_guest_memfd_offset = offsetof(struct memslot_api_region2, guest_memfd_offset);
	out->region2_guest_memfd = offsetof(struct memslot_api_region2, guest_memfd);
	out->region2_pad2 = offsetof(struct memslot_api_region2, pad2);
}
