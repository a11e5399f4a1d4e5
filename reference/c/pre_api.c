// SPDX-License-Identifier: GPL-2.0-only
/* The pre port and its C API in one translation unit (its functions are static). */
#define MEMSLOT_PORT pre
#include "pre/kvm_main.c"
#include "api_impl.h"
