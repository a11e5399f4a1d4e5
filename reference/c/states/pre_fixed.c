// SPDX-License-Identifier: GPL-2.0-only
/*
 * v5.6 with both later fixes: the fixed state of the pre zoo bugs.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT pre_fixed
#define MEMSLOT_FIX_REINSTALL_OLD_MEMSLOTS
#define MEMSLOT_FIX_b6467ab142b7
#include "pre/kvm_main.c"
#include "api_impl.h"
