// SPDX-License-Identifier: GPL-2.0-only
/*
 * After the seed patch, "KVM: Terminate memslot walks via used_slots" (0577d1abe704).
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post
#include "post/kvm_main.c"
#include "api_impl.h"
