// SPDX-License-Identifier: GPL-2.0-only
/*
 * The tree-based memslot code (a54d806688fe onward, v5.17+; here as of v6.8-v6.12,
 * with KVM_SET_USER_MEMORY_REGION2 and guest_memfd): the modern state.
 * KVM_MEM_SLOTS_NUM is x86's v5.6 count (512, 509 user slots) so that this port runs
 * in lockstep with the array ports; today's x86 count (SHRT_MAX) is the default of
 * modern/kvm_host.h.
 */
#define MEMSLOT_PORT modern
#define KVM_MEM_SLOTS_NUM 512
#include "modern/guest_memfd.c"
#include "modern/kvm_main.c"
#include "api_modern.h"
