// SPDX-License-Identifier: GPL-2.0-only
/*
 * The shim's guarded allocator and fault catcher (see guard.h).  One copy for
 * the whole process: every port's translation unit allocates through it and
 * one SIGSEGV handler serves them all.
 */
#define _GNU_SOURCE
#include "guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "memslot_api.h"

/*
 * Allocations made and not yet freed by this thread: a port VM lives in one thread, so the
 * difference across its calls is what it holds (memslot_shim_live_allocations()).
 */
static _Thread_local int64_t shim_live;

int64_t memslot_shim_live_allocations(void)
{
	return shim_live;
}

void *shim_heap_zalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (p)
		shim_live++;
	return p;
}

void shim_heap_free(const void *addr)
{
	if (addr)
		shim_live--;
	free((void *)addr);
}

#ifdef SHIM_ASAN
/* From the sanitizer runtime (declared here: gcc does not always ship its header). */
size_t __sanitizer_get_allocated_size(const volatile void *p);

void *shim_kvzalloc(size_t size)
{
	void *p = calloc(1, size);

	if (p)
		shim_live++;
	return p;
}

void shim_kvfree(const void *addr)
{
	if (addr)
		shim_live--;
	free((void *)addr);
}

/* ASan knows every allocation's requested size. */
size_t shim_alloc_size(const void *addr)
{
	return __sanitizer_get_allocated_size(addr);
}

int memslot_shim_take_fault(struct memslot_api_fault *out)
{
	memset(out, 0, sizeof(*out));
	return 0;
}

int memslot_shim_guarded(void)
{
	return 0;
}

#else /* !SHIM_ASAN */

#define SHIM_PAGE 4096UL
/* Covers memslots[511] read through an array of any size: 512 * 48 bytes < 7 pages. */
#define SHIM_GUARD_PAGES 8UL
#define SHIM_GUARD_LEN (SHIM_GUARD_PAGES * SHIM_PAGE)
/* The canary (and the allocation's bookkeeping) in front of every allocation. */
#define SHIM_REDZONE 64UL
#define SHIM_MAGIC 0x6b766d5f67756172ULL /* "kvm_guar" */
#define SHIM_CANARY_BYTE 0xa5
#define SHIM_MAX_ALLOCS 65536
/* Mappings of up to this many data pages are kept per thread for reuse. */
#define SHIM_CACHE_PAGES 16
#define SHIM_CACHE_DEPTH 8
/*
 * One-page mappings (a slot object of the tree-based port, a small array) are kept deeper:
 * that port allocates every slot on its own, and a VM of 2 x 512 slots freed at once would
 * otherwise unmap (and the next one map and mprotect) each of them: a fifth of a fuzz run.
 * At most 4 MiB of data pages per thread; the guard pages are never backed.
 */
#define SHIM_CACHE_ONE_PAGE_DEPTH 1024

/* Every live guarded allocation, so that the handler can tell its faults. */
struct shim_alloc {
	_Atomic uintptr_t guard; /* first guard page; 0: free entry */
	uintptr_t user;
	size_t size;
};

static struct shim_alloc shim_allocs[SHIM_MAX_ALLOCS];
static atomic_uint shim_alloc_hint;

/* Just before the user pointer, inside the redzone. */
struct shim_header {
	uint64_t magic;
	uint32_t slot;
	uint32_t pad;
	uint64_t map_len;
	uint64_t size;
};

_Static_assert(sizeof(struct shim_header) <= SHIM_REDZONE / 2, "header fits the redzone");

struct shim_mapping {
	void *base;
	size_t len;
};

static _Thread_local struct shim_mapping shim_cache[SHIM_CACHE_PAGES + 1][SHIM_CACHE_DEPTH];
static _Thread_local int shim_cache_len[SHIM_CACHE_PAGES + 1];
static _Thread_local void *shim_cache_one_page[SHIM_CACHE_ONE_PAGE_DEPTH];
static _Thread_local int shim_cache_one_page_len;

_Thread_local sigjmp_buf shim_fault_env;
static _Thread_local volatile int shim_armed;
static _Thread_local const char *shim_api_function;
static _Thread_local struct memslot_api_fault shim_fault;

static struct sigaction shim_previous_segv;
static pthread_once_t shim_handler_once = PTHREAD_ONCE_INIT;

static size_t shim_round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static struct shim_header *shim_header_of(const void *user)
{
	return (struct shim_header *)((uintptr_t)user - sizeof(struct shim_header));
}

/* The canary is the part of the redzone in front of the header. */
static unsigned char *shim_canary_of(const void *user)
{
	return (unsigned char *)((uintptr_t)user - SHIM_REDZONE);
}

static int shim_claim(uintptr_t guard, uintptr_t user, size_t size)
{
	unsigned int start = atomic_fetch_add(&shim_alloc_hint, 1);
	unsigned int i;

	for (i = 0; i < SHIM_MAX_ALLOCS; i++) {
		unsigned int slot = (start + i) % SHIM_MAX_ALLOCS;
		uintptr_t expected = 0;

		if (atomic_compare_exchange_strong(&shim_allocs[slot].guard, &expected, guard)) {
			shim_allocs[slot].user = user;
			shim_allocs[slot].size = size;
			return (int)slot;
		}
	}
	return -1;
}

static const struct shim_alloc *shim_find_guard(uintptr_t addr)
{
	unsigned int i;

	for (i = 0; i < SHIM_MAX_ALLOCS; i++) {
		uintptr_t guard = atomic_load(&shim_allocs[i].guard);

		if (guard && addr >= guard && addr < guard + SHIM_GUARD_LEN)
			return &shim_allocs[i];
	}
	return NULL;
}

static void shim_raise(int kind, uintptr_t addr, uintptr_t user, size_t size, int is_write)
{
	shim_fault.kind = kind;
	shim_fault.is_write = is_write;
	shim_fault.addr = addr;
	shim_fault.alloc_start = user;
	shim_fault.alloc_size = size;
	snprintf(shim_fault.function, sizeof(shim_fault.function), "%s",
		 shim_api_function ? shim_api_function : "?");
	if (shim_armed) {
		shim_armed = 0;
		siglongjmp(shim_fault_env, 1);
	}
	fprintf(stderr,
		"memslot shim: %s %#lx bytes %s a %zu-byte allocation at %#lx, outside any port call\n",
		is_write ? "write" : "access", (unsigned long)addr,
		kind == SHIM_FAULT_PAST_END ? "past" : "before", size, (unsigned long)user);
	abort();
}

static void shim_segv(int sig, siginfo_t *info, void *context)
{
	uintptr_t addr = (uintptr_t)info->si_addr;
	const struct shim_alloc *alloc = shim_find_guard(addr);
	int is_write = 0;

#if defined(__x86_64__)
	/* Bit 1 of the page-fault error code: the access was a write. */
	is_write = (((ucontext_t *)context)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
	(void)context;
#endif
	if (alloc && shim_armed)
		shim_raise(SHIM_FAULT_PAST_END, addr, alloc->user, alloc->size, is_write);

	/* Not ours: let the previous disposition handle the re-executed access. */
	sigaction(sig, &shim_previous_segv, NULL);
}

static void shim_install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = shim_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &shim_previous_segv);
}

void shim_fault_arm(const char *api_function)
{
	pthread_once(&shim_handler_once, shim_install_handler);
	shim_api_function = api_function;
	shim_armed = 1;
}

void shim_fault_disarm(void)
{
	shim_armed = 0;
}

/* A mapping of data_len bytes followed by the guard; *reused: it is not fresh (zero). */
static void *shim_map(size_t data_len, int *reused)
{
	size_t pages = data_len / SHIM_PAGE;
	void *base;

	*reused = pages == 1 && shim_cache_one_page_len > 0;
	if (*reused)
		return shim_cache_one_page[--shim_cache_one_page_len];
	*reused = pages <= SHIM_CACHE_PAGES && shim_cache_len[pages] > 0;
	if (*reused)
		return shim_cache[pages][--shim_cache_len[pages]].base;

	base = mmap(NULL, data_len + SHIM_GUARD_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base, data_len, PROT_READ | PROT_WRITE)) {
		munmap(base, data_len + SHIM_GUARD_LEN);
		return NULL;
	}
	return base;
}

static void shim_unmap(void *base, size_t data_len)
{
	size_t pages = data_len / SHIM_PAGE;

	if (pages == 1 && shim_cache_one_page_len < SHIM_CACHE_ONE_PAGE_DEPTH) {
		shim_cache_one_page[shim_cache_one_page_len++] = base;
		return;
	}
	if (pages <= SHIM_CACHE_PAGES && shim_cache_len[pages] < SHIM_CACHE_DEPTH) {
		struct shim_mapping *m = &shim_cache[pages][shim_cache_len[pages]++];

		m->base = base;
		m->len = data_len;
		return;
	}
	munmap(base, data_len + SHIM_GUARD_LEN);
}

void *shim_kvzalloc(size_t size)
{
	size_t rounded = shim_round8(size);
	size_t data_len = (rounded + SHIM_REDZONE + SHIM_PAGE - 1) & ~(SHIM_PAGE - 1);
	int reused;
	unsigned char *base = shim_map(data_len, &reused);
	unsigned char *user;
	struct shim_header *header;
	int slot;

	if (!base)
		return NULL;
	user = base + data_len - rounded;
	slot = shim_claim((uintptr_t)(base + data_len), (uintptr_t)user, size);
	if (slot < 0) {
		shim_unmap(base, data_len);
		return NULL;
	}
	/* Fresh mappings are zero (and dirty bitmaps may be huge: leave them untouched). */
	if (reused)
		memset(user, 0, rounded);
	memset(shim_canary_of(user), SHIM_CANARY_BYTE, SHIM_REDZONE - sizeof(*header));
	header = shim_header_of(user);
	header->magic = SHIM_MAGIC ^ (uint64_t)(uintptr_t)user;
	header->slot = (uint32_t)slot;
	header->pad = 0;
	header->map_len = data_len;
	header->size = size;
	shim_live++;
	return user;
}

static int shim_canary_intact(const void *user)
{
	const unsigned char *canary = shim_canary_of(user);
	size_t i;

	for (i = 0; i < SHIM_REDZONE - sizeof(struct shim_header); i++)
		if (canary[i] != SHIM_CANARY_BYTE)
			return 0;
	return 1;
}

void shim_kvfree(const void *addr)
{
	struct shim_header *header;
	size_t data_len;
	unsigned char *base;

	if (!addr)
		return;
	header = shim_header_of(addr);
	if (header->magic != (SHIM_MAGIC ^ (uint64_t)(uintptr_t)addr) ||
	    header->slot >= SHIM_MAX_ALLOCS ||
	    shim_allocs[header->slot].user != (uintptr_t)addr || !shim_canary_intact(addr)) {
		/* The bytes in front of the allocation were overwritten. */
		size_t size = header->slot < SHIM_MAX_ALLOCS &&
					      shim_allocs[header->slot].user == (uintptr_t)addr
				      ? shim_allocs[header->slot].size
				      : 0;
		shim_raise(SHIM_FAULT_BEFORE_START, (uintptr_t)addr - SHIM_REDZONE,
			   (uintptr_t)addr, size, 1);
		return;
	}
	data_len = header->map_len;
	base = (unsigned char *)addr + shim_round8(header->size) - data_len;
	atomic_store(&shim_allocs[header->slot].guard, 0);
	shim_unmap(base, data_len);
	shim_live--;
}

size_t shim_alloc_size(const void *addr)
{
	const struct shim_header *header = shim_header_of(addr);

	if (header->magic != (SHIM_MAGIC ^ (uint64_t)(uintptr_t)addr))
		return 0;
	return header->size;
}

int memslot_shim_take_fault(struct memslot_api_fault *out)
{
	if (shim_fault.kind == SHIM_FAULT_NONE)
		return 0; /* every call asks: keep the common answer cheap */
	*out = shim_fault;
	memset(&shim_fault, 0, sizeof(shim_fault));
	return 1;
}

int memslot_shim_guarded(void)
{
	return 1;
}

#endif /* SHIM_ASAN */
