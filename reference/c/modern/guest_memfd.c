// SPDX-License-Identifier: GPL-2.0
/*
 * The memslot part of virt/kvm/guest_memfd.c (v6.8-v6.12): creating a
 * guest_memfd and binding memslots to ranges of it.  The file itself is
 * modelled (guest_memfd.h): no pages, no VFS, the same checks and errors.
 */
#include "kvm_host.h"

/* KVM_CREATE_GUEST_MEMFD: kvm_gmem_create() and __kvm_gmem_create(), reduced. */
static int kvm_gmem_create(struct kvm *kvm, loff_t size, u64 flags)
{
	struct shim_gmem_file *file;
	u64 valid_flags = 0;

	if (flags & ~valid_flags)
		return -EINVAL;

	if (size <= 0 || !PAGE_ALIGNED(size))
		return -EINVAL;

	if (kvm->gmem.nr >= SHIM_GMEM_MAX_FILES)
		return -EMFILE;

	file = &kvm->gmem.files[kvm->gmem.nr];
	file->size = size;
	file->nr_bindings = 0;
	file->bindings = NULL;
	return SHIM_GMEM_FD_BASE + kvm->gmem.nr++;
}

static int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
			 unsigned int fd, loff_t offset)
{
	loff_t size = slot->npages << PAGE_SHIFT;
	unsigned long start, end;
	struct shim_gmem_file *file;
	int r = -EINVAL;

	file = shim_gmem_fget(&kvm->gmem, fd);
	if (!file)
		return -EBADF;

	if (offset < 0 || !PAGE_ALIGNED(offset) ||
	    offset + size > file->size)
		goto err;

	start = offset >> PAGE_SHIFT;
	end = start + slot->npages;

	if (file->nr_bindings &&
	    shim_gmem_bound(file, start, end - 1))
		goto err;

	/*
	 * No synchronize_rcu() needed, any in-flight readers are guaranteed to
	 * be see either a NULL file or this new file, no need for them to go
	 * away.
	 */
	WRITE_ONCE(slot->gmem.file, file);
	slot->gmem.pgoff = start;

	r = shim_gmem_store_range(file, start, end, slot);
err:
	return r;
}

static void kvm_gmem_unbind(struct kvm_memory_slot *slot)
{
	unsigned long start = slot->gmem.pgoff;
	unsigned long end = start + slot->npages;
	struct shim_gmem_file *file;

	/*
	 * Nothing to do if the underlying file was already closed (or is being
	 * closed right now), kvm_gmem_release() invalidates all bindings.
	 */
	file = slot->gmem.file;
	if (!file)
		return;

	shim_gmem_store_range(file, start, end, NULL);
	slot->gmem.file = NULL;
}

/* The files die with the VM here (the fds would keep it alive in the kernel). */
static void kvm_gmem_release_all(struct kvm *kvm)
{
	int i;

	for (i = 0; i < kvm->gmem.nr; i++)
		free(kvm->gmem.files[i].bindings);
	kvm->gmem.nr = 0;
}
