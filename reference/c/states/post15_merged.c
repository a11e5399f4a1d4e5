// SPDX-License-Identifier: GPL-2.0-only
/*
 * 36947254e5f9 as merged: exactly sized arrays with all of their bugs.
 * The port and its C API in one translation unit (its functions are static).
 */
#define MEMSLOT_PORT post15_merged
#include "post15/kvm_main.c"
#include "api_impl.h"
