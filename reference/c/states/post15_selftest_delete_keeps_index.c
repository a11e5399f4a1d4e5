// SPDX-License-Identifier: GPL-2.0-only
/*
 * post15 with every fix and one deliberate bug that is in no kernel: kvm_memslot_delete()
 * keeps the deleted id's index (MEMSLOT_SELFTEST_DELETE_KEEPS_INDEX). The harness's
 * self-test (fuzz/harness/tests/selftest.rs) must catch it; never part of a lockstep otherwise.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15_selftest_delete_keeps_index
#define MEMSLOT_FIX_0774a964ef56_LRU
#define MEMSLOT_FIX_0774a964ef56_EMPTY
#define MEMSLOT_FIX_b6467ab142b7
#define MEMSLOT_FIX_1e8617d37fc3
#define MEMSLOT_SELFTEST_DELETE_KEEPS_INDEX
#include "post15/kvm_main.c"
#include "api_impl.h"
