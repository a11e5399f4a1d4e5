// SPDX-License-Identifier: GPL-2.0-only
/*
 * v5.6 with every fix but "KVM: Reinstall old memslots if arch preparation fails":
 * the INVALID copy stays installed when arch preparation fails, alone.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT pre_bug_prepare_invalid
#define MEMSLOT_FIX_b6467ab142b7
#include "pre/kvm_main.c"
#include "api_impl.h"
