// SPDX-License-Identifier: GPL-2.0-only
/*
 * v5.6 with every fix but b6467ab142b7: with all 512 slots in use, a lookup below the
 * lowest slot reads memslots[512], past the fixed array, alone.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT pre_bug_below_lowest_full
#define MEMSLOT_FIX_REINSTALL_OLD_MEMSLOTS
#include "pre/kvm_main.c"
#include "api_impl.h"
