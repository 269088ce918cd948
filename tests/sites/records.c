// SPDX-License-Identifier: MIT
/*
 * records.c - libsites_records.so: the long-lived records of
 * tests/sites/sites_workload, allocated in a shared library so that a site
 * test sees two objects.  Not inlined, so each call site is a frame of its own.
 */
#include <stddef.h>
#include <stdlib.h>

__attribute__((noinline, visibility("default"))) void *make_record(size_t n)
{
	void *p = malloc(n);

	/* Keeps the call from becoming a tail call, which would leave no frame here. */
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

/* The same records carved from one block: one chunk, however many records. */
__attribute__((noinline, visibility("default"))) void *make_record_pool(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
