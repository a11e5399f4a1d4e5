// SPDX-License-Identifier: GPL-2.0-only
/*
 * post15 with every fix but 1e8617d37fc3: update_memslots() of a MOVE or FLAGS_ONLY
 * for an absent id writes memslots[-1], alone.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15_bug_update_absent_id
#define MEMSLOT_FIX_0774a964ef56_LRU
#define MEMSLOT_FIX_0774a964ef56_EMPTY
#define MEMSLOT_FIX_b6467ab142b7
#include "post15/kvm_main.c"
#include "api_impl.h"
