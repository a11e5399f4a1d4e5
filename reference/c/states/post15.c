// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exactly sized arrays (36947254e5f9) with every later fix: the fixed post15 state.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15
#define MEMSLOT_FIX_0774a964ef56_LRU
#define MEMSLOT_FIX_0774a964ef56_EMPTY
#define MEMSLOT_FIX_b6467ab142b7
#define MEMSLOT_FIX_1e8617d37fc3
#include "post15/kvm_main.c"
#include "api_impl.h"
