// SPDX-License-Identifier: GPL-2.0-only
/*
 * Linux v5.6, the seed patch's "before" (its bugs: the INVALID copy left installed
 * when arch preparation fails; the read past memslots[] below the lowest of 512 slots).
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT pre
#include "pre/kvm_main.c"
#include "api_impl.h"
