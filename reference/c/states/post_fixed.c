// SPDX-License-Identifier: GPL-2.0-only
/*
 * After the seed patch, with b6467ab142b7: the post of the standard lockstep, in which the
 * read past memslots[] below the lowest of 512 slots (a bug shared with v5.6, fixed in 2020)
 * does not drown every fuzzing run. The literal state is states/post.c.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post_fixed
#define MEMSLOT_FIX_b6467ab142b7
#include "post/kvm_main.c"
#include "api_impl.h"
