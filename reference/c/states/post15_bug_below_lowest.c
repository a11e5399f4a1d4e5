// SPDX-License-Identifier: GPL-2.0-only
/*
 * post15 with every fix but b6467ab142b7: a lookup below the lowest slot reads
 * memslots[used_slots], past the array, alone.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15_bug_below_lowest
#define MEMSLOT_FIX_0774a964ef56_LRU
#define MEMSLOT_FIX_0774a964ef56_EMPTY
#define MEMSLOT_FIX_1e8617d37fc3
#include "post15/kvm_main.c"
#include "api_impl.h"
