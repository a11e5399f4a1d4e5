// SPDX-License-Identifier: GPL-2.0-only
/*
 * post15 with every fix but the used_slots == 0 check of 0774a964ef56: a lookup in an
 * address space that never had a slot reads past its empty array, alone.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15_bug_empty_array
#define MEMSLOT_FIX_0774a964ef56_LRU
#define MEMSLOT_FIX_b6467ab142b7
#define MEMSLOT_FIX_1e8617d37fc3
#include "post15/kvm_main.c"
#include "api_impl.h"
