// SPDX-License-Identifier: GPL-2.0-only
/* The post port and its C API in one translation unit (its functions are static). */
#define MEMSLOT_PORT post
#include "post/kvm_main.c"
#include "api_impl.h"
