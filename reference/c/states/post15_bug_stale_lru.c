// SPDX-License-Identifier: GPL-2.0-only
/*
 * post15 with every fix but the LRU reset of 0774a964ef56: a stale LRU hint after a
 * delete reads past the array on the next lookup, alone.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15_bug_stale_lru
#define MEMSLOT_FIX_0774a964ef56_EMPTY
#define MEMSLOT_FIX_b6467ab142b7
#define MEMSLOT_FIX_1e8617d37fc3
#include "post15/kvm_main.c"
#include "api_impl.h"
