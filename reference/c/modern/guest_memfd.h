/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the memslot code needs of virt/kvm/guest_memfd.c: kvm_gmem_create()
 * (KVM_CREATE_GUEST_MEMFD), kvm_gmem_bind() and kvm_gmem_unbind(), with the
 * kernel's checks and error codes.  The file and its bindings are modelled:
 * there is no VFS here, so a guest_memfd is an entry of the VM's table whose
 * "fd" is SHIM_GMEM_FD_BASE + its index, and the bindings xarray is a list
 * of [start, end) page ranges.  Nothing is ever mapped; what the harness
 * checks is which binds the kernel accepts and that unbinding frees a range.
 */
#ifndef MEMSLOT_MODERN_GUEST_MEMFD_H
#define MEMSLOT_MODERN_GUEST_MEMFD_H

#include "kernel.h"

#define SHIM_GMEM_FD_BASE 100
#define SHIM_GMEM_MAX_FILES 8

struct kvm_memory_slot;

struct shim_gmem_binding {
	unsigned long start, end; /* pages [start, end) of the file */
	struct kvm_memory_slot *slot;
};

/* struct kvm_gmem and its inode's size, for one file. */
struct shim_gmem_file {
	loff_t size;
	int nr_bindings;
	struct shim_gmem_binding *bindings; /* malloc'd: the shim's, not the port's */
};

struct shim_gmem_files {
	int nr;
	struct shim_gmem_file files[SHIM_GMEM_MAX_FILES];
};

/* fget() + the f_op check: the file of @fd in @gmem, or NULL. */
static inline struct shim_gmem_file *shim_gmem_fget(struct shim_gmem_files *gmem,
						    unsigned int fd)
{
	if (fd < SHIM_GMEM_FD_BASE || fd - SHIM_GMEM_FD_BASE >= (unsigned int)gmem->nr)
		return NULL;
	return &gmem->files[fd - SHIM_GMEM_FD_BASE];
}

/* xa_find(&gmem->bindings, &start, last, XA_PRESENT) != NULL */
static inline bool shim_gmem_bound(const struct shim_gmem_file *f, unsigned long start,
				   unsigned long last)
{
	int i;

	for (i = 0; i < f->nr_bindings; i++)
		if (f->bindings[i].start <= last && start < f->bindings[i].end)
			return true;
	return false;
}

/* xa_store_range(&gmem->bindings, start, end - 1, slot): @slot != NULL only on free ranges. */
static inline int shim_gmem_store_range(struct shim_gmem_file *f, unsigned long start,
					unsigned long end, struct kvm_memory_slot *slot)
{
	struct shim_gmem_binding *b;
	int i;

	if (!slot) {
		for (i = 0; i < f->nr_bindings; i++) {
			if (f->bindings[i].start == start && f->bindings[i].end == end) {
				f->bindings[i] = f->bindings[--f->nr_bindings];
				return 0;
			}
		}
		return 0;
	}
	b = realloc(f->bindings, sizeof(*b) * (size_t)(f->nr_bindings + 1));
	if (!b)
		return -ENOMEM;
	f->bindings = b;
	b[f->nr_bindings++] = (struct shim_gmem_binding){ start, end, slot };
	return 0;
}

#endif /* MEMSLOT_MODERN_GUEST_MEMFD_H */
