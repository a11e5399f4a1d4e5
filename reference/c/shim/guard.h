/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * KASAN for user space without a sanitizer: the shim's allocator and the
 * fault catcher that turns an out-of-bounds access by a port into a report.
 *
 * Without AddressSanitizer (plain `cargo test`, the `stress` command), every
 * kvzalloc() is placed at the very end of its own mapping and followed by
 * SHIM_GUARD_PAGES inaccessible pages, so reading or writing one byte past the
 * allocation faults at once.  The 64 bytes before it hold a canary that
 * kvfree() checks, which catches writes just before the allocation.  The C API
 * arms a catcher around every call into a port: a fault in a guard page jumps
 * back out of the port and the call returns MEMSLOT_API_FAULTED, with the
 * details in memslot_shim_take_fault().  A fault anywhere else is left to the
 * process's previous SIGSEGV handler.
 *
 * Under AddressSanitizer (cargo fuzz, the sanitizer build of .ci/run) the
 * allocator is plain calloc and nothing is armed: ASan sees every access.
 *
 * Nothing here knows about memslots; it is infrastructure like kernel.h.
 */
#ifndef MEMSLOT_SHIM_GUARD_H
#define MEMSLOT_SHIM_GUARD_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define SHIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHIM_ASAN 1
#endif
#endif

void *shim_kvzalloc(size_t size);
void shim_kvfree(const void *addr);
/* The size kvzalloc() was asked for (0: not an allocation of the shim's). */
size_t shim_alloc_size(const void *addr);
/*
 * Counted heap allocations without guard pages, for a state built with
 * SHIM_HEAP_ALLOC (kernel.h): 32,764 slots need more guarded mappings than
 * Linux's default vm.max_map_count (65,530) allows, two per allocation.
 */
void *shim_heap_zalloc(size_t size);
void shim_heap_free(const void *addr);

/* What memslot_shim_take_fault() reports (memslot_api.h mirrors it). */
enum shim_fault_kind {
	SHIM_FAULT_NONE = 0,
	SHIM_FAULT_PAST_END = 1,      /* access in the guard pages after an allocation */
	SHIM_FAULT_BEFORE_START = 2,  /* canary before an allocation overwritten */
};

#ifndef SHIM_ASAN
/* Per thread: the jump buffer of the API call in progress, if any. */
extern _Thread_local sigjmp_buf shim_fault_env;
void shim_fault_arm(const char *api_function);
void shim_fault_disarm(void);

/*
 * At the top of an API function that calls into a port: returns its
 * argument (nothing, for a void function) from that function if the port
 * faults.  sigsetjmp() does not save the
 * signal mask (a system call per API call otherwise); the handler runs with
 * SA_NODEFER, so the mask is unchanged when it jumps back.
 */
#define SHIM_GUARDED_CALL(...)                             \
	do {                                               \
		if (sigsetjmp(shim_fault_env, 0)) {        \
			return __VA_ARGS__;                \
		}                                          \
		shim_fault_arm(__func__);                  \
	} while (0)
#define SHIM_GUARDED_END() shim_fault_disarm()
#else
#define SHIM_GUARDED_CALL(...) ((void)0)
#define SHIM_GUARDED_END() ((void)0)
#endif

#endif /* MEMSLOT_SHIM_GUARD_H */
