// SPDX-License-Identifier: GPL-2.0-only
/*
 * The modern state at today's x86 slot count: KVM_MEM_SLOTS_NUM is SHRT_MAX (32,764 user
 * slots and 3 private ones), the default of modern/kvm_host.h. Its slots come from the heap,
 * without guard pages (shim/guard.h: two mappings per guarded allocation would pass Linux's
 * default vm.max_map_count); run it under AddressSanitizer to catch out-of-bounds accesses.
 */
#define MEMSLOT_PORT modern_32k
#define SHIM_HEAP_ALLOC
#include "modern/guest_memfd.c"
#include "modern/kvm_main.c"
#include "api_modern.h"
