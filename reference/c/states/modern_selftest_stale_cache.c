// SPDX-License-Identifier: GPL-2.0-only
/*
 * The modern state with one deliberate bug that is in no kernel: kvm_replace_memslot() leaves
 * last_used_slot pointing at the slot it replaces (MEMSLOT_SELFTEST_STALE_CACHE), so a lookup
 * after a delete can hit the freed slot. The harness's self-test (fuzz/harness/tests/selftest.rs) must
 * catch it; never part of a lockstep otherwise.
 */
#define MEMSLOT_PORT modern_selftest_stale_cache
#define KVM_MEM_SLOTS_NUM 512
#define MEMSLOT_SELFTEST_STALE_CACHE
#include "modern/guest_memfd.c"
#include "modern/kvm_main.c"
#include "api_modern.h"
