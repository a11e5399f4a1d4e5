/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one shim that lets literal ports of virt/kvm/kvm_main.c compile in user
 * space: kernel types, the handful of kernel macros and helpers the memslot
 * code uses, and WARNs that are counted instead of printed.
 *
 * Everything here is infrastructure, not algorithm: no memslot logic lives in
 * this file.  Allocation goes through the guarded allocator of guard.h, so that
 * an access past any array the ports allocate is caught with or without
 * AddressSanitizer.
 */
#ifndef MEMSLOT_SHIM_KERNEL_H
#define MEMSLOT_SHIM_KERNEL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef u32 __u32;
typedef u64 __u64;

/* loff_t and pgoff_t as macros: libc may typedef loff_t already. */
#define loff_t long long
#define pgoff_t unsigned long

typedef u64 gfn_t;
typedef u64 gpa_t;
typedef unsigned long hva_t;

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_ALIGNED(addr) ((((unsigned long)(addr)) & (PAGE_SIZE - 1)) == 0)
#define BITS_PER_LONG 64
#define BIT_ULL(nr) (1ULL << (nr))
#define __ALIGN_MASK(x, mask) (((x) + (mask)) & ~(mask))
#define ALIGN(x, a) __ALIGN_MASK(x, (__typeof__(x))(a) - 1)

#define __user
#define __rcu
#define __force
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define GFP_KERNEL_ACCOUNT 0

/* ---- compiler.h, kernel.h, limits.h ----------------------------------- */

#ifndef __always_inline /* glibc's sys/cdefs.h has one */
#define __always_inline inline __attribute__((__always_inline__))
#endif
#define __maybe_unused __attribute__((__unused__))
#define READ_ONCE(x) (x)
#define WRITE_ONCE(x, val) ((x) = (val))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(arr) (sizeof(arr) / sizeof((arr)[0]))
/* ilog2() of the compile-time constants it is used on here (hash table sizes). */
#define ilog2(n) ((int)(sizeof(unsigned long long) * 8 - 1 - __builtin_clzll(n)))
#define SHRT_MAX 0x7fff
#define max_t(type, x, y) ((type)(x) > (type)(y) ? (type)(x) : (type)(y))
#define min_t(type, x, y) ((type)(x) < (type)(y) ? (type)(x) : (type)(y))
/* BUG(): the kernel oopses; here the process aborts, which the harness reports. */
#define BUG() abort()

#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) unlikely((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long error) { return (void *)error; }
static inline bool IS_ERR(const void *ptr) { return IS_ERR_VALUE((unsigned long)ptr); }
static inline long PTR_ERR(const void *ptr) { return (long)ptr; }

/* ---- WARN_ON: counted per thread, never printed ---------------------- */

/*
 * The kernel prints WARN_ON_ONCE only once per boot, but its value is the
 * condition every time.  The harness wants to know about every hit, so both
 * flavours count every hit; the value they return is the kernel's.
 * Thread-local because cargo test runs tests on several threads; static
 * because each port is its own translation unit and keeps its own count.
 */
static _Thread_local unsigned long shim_warn_count;
static _Thread_local const char *shim_last_warn;

static inline int shim_warn(int cond, const char *where)
{
	if (cond) {
		shim_warn_count++;
		shim_last_warn = where;
	}
	return cond;
}

#ifdef __FILE_NAME__
#define SHIM_FILE __FILE_NAME__
#else
#define SHIM_FILE __FILE__
#endif
#define SHIM_STR2(x) #x
#define SHIM_STR(x) SHIM_STR2(x)
#define WARN_ON(condition) \
	shim_warn(!!(condition), SHIM_FILE ":" SHIM_STR(__LINE__) ": WARN_ON(" #condition ")")
#define WARN_ON_ONCE(condition) \
	shim_warn(!!(condition), SHIM_FILE ":" SHIM_STR(__LINE__) ": WARN_ON_ONCE(" #condition ")")

/* ---- allocation: guarded (guard.h), or calloc under AddressSanitizer -- */

/* A state built with SHIM_HEAP_ALLOC allocates from the heap, unguarded (guard.h). */
#ifdef SHIM_HEAP_ALLOC
#define SHIM_ZALLOC shim_heap_zalloc
#define SHIM_FREE shim_heap_free
#else
#define SHIM_ZALLOC shim_kvzalloc
#define SHIM_FREE shim_kvfree
#endif

static inline void *kvzalloc(size_t size, int flags)
{
	(void)flags;
	return SHIM_ZALLOC(size);
}

static inline void kvfree(const void *addr)
{
	SHIM_FREE(addr);
}

/* kzalloc()/kfree(): the same allocator (one allocation per object). */
static inline void *kzalloc(size_t size, int flags)
{
	(void)flags;
	return SHIM_ZALLOC(size);
}

static inline void kfree(const void *addr)
{
	SHIM_FREE(addr);
}

/* ---- atomics, locks, RCU: single-threaded stand-ins ------------------ */

typedef struct {
	int counter;
} atomic_t;

static inline int atomic_read(const atomic_t *v) { return v->counter; }
static inline void atomic_set(atomic_t *v, int i) { v->counter = i; }

typedef struct {
	long counter;
} atomic_long_t;

static inline long atomic_long_read(const atomic_long_t *v) { return v->counter; }
static inline void atomic_long_set(atomic_long_t *v, long i) { v->counter = i; }

struct mutex {
	int locked;
};

static inline void mutex_init(struct mutex *lock) { lock->locked = 0; }
static inline void mutex_lock(struct mutex *lock) { lock->locked++; }
static inline void mutex_unlock(struct mutex *lock) { lock->locked--; }

struct srcu_struct {
	int unused;
};

#define rcu_assign_pointer(p, v) ((p) = (v))
#define synchronize_srcu_expedited(sp) ((void)(sp))

/* ---- x86-64 access_ok() (arch/x86/include/asm/uaccess.h, v5.6) ------- */

#define TASK_SIZE_MAX ((1UL << 47) - PAGE_SIZE)
#define user_addr_max() TASK_SIZE_MAX

/*
 * Test whether a block of memory is a valid user space address.
 * Returns 0 if the range is valid, nonzero otherwise.
 */
static inline bool __chk_range_not_ok(unsigned long addr, unsigned long size, unsigned long limit)
{
	/*
	 * If we have used "sizeof()" for the size,
	 * we know it won't overflow the limit (but
	 * it might overflow the 'addr', so it's
	 * important to subtract the size from the
	 * limit, not add it to the address).
	 */
	if (__builtin_constant_p(size))
		return unlikely(addr > limit - size);

	/* Arbitrary sizes? Be careful about overflow */
	addr += size;
	if (unlikely(addr < size))
		return true;
	return unlikely(addr > limit);
}

#define __range_not_ok(addr, size, limit) \
	__chk_range_not_ok((unsigned long __force)(addr), size, limit)

#define access_ok(addr, size) likely(!__range_not_ok(addr, size, user_addr_max()))

/*
 * untagged_addr() strips LAM tag bits on x86-64 (v6.4+) only for a process
 * that enabled LAM; the harness's "process" has not, so addresses are kept.
 */
#define untagged_addr(addr) (addr)

/* ---- uapi/linux/kvm.h ------------------------------------------------ */

/* for KVM_SET_USER_MEMORY_REGION */
struct kvm_userspace_memory_region {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size; /* bytes */
	__u64 userspace_addr; /* start of the userspace allocated memory */
};

/*
 * The bit 0 ~ bit 15 of kvm_memory_region::flags are visible for userspace,
 * other bits are reserved for kvm internal use which are defined in
 * include/linux/kvm_host.h.
 */
#define KVM_MEM_LOG_DIRTY_PAGES (1UL << 0)
#define KVM_MEM_READONLY (1UL << 1)

/* x86 has read-only memslots (arch/x86/include/uapi/asm/kvm.h). */
#define __KVM_HAVE_READONLY_MEM

/* ---- arch/x86/include/asm/kvm_host.h: slot counts -------------------- */

#ifndef SHIM_MODERN_SLOT_COUNTS
#define KVM_USER_MEM_SLOTS 509
/* memory slots that are not exposed to userspace */
#define KVM_PRIVATE_MEM_SLOTS 3
#else
/*
 * Since v5.17 x86 names only its internal slots; include/linux/kvm_host.h
 * derives KVM_USER_MEM_SLOTS from KVM_MEM_SLOTS_NUM (modern/kvm_host.h).
 */
#define KVM_INTERNAL_MEM_SLOTS 3
#endif
#define KVM_ADDRESS_SPACE_NUM 2

/*
 * x86's struct kvm_arch_memory_slot holds rmap and large-page tracking
 * pointers.  The arch hooks in this project are no-ops, so one pointer stands
 * in for them: it keeps the struct non-empty and the copies honest.
 */
struct kvm_arch_memory_slot {
	void *rmap;
};

#endif /* MEMSLOT_SHIM_KERNEL_H */
