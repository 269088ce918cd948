// SPDX-License-Identifier: MIT
/*
 * A dynamically linked program that brings its own malloc: the dynamic
 * linker resolves malloc to the executable, before libc.  A bump allocator
 * over a static arena is all it needs; it says "ready" and waits.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ARENA_SIZE (8u << 20)

static _Alignas(16) unsigned char arena[ARENA_SIZE];
static size_t used;

void *malloc(size_t size)
{
	size_t *block;

	size = (size + 15) & ~(size_t)15;
	if (size > ARENA_SIZE - used - 16) {
		errno = ENOMEM;
		return NULL;
	}
	block = (size_t *)(arena + used);
	*block = size;
	used += size + 16;
	return (unsigned char *)block + 16;
}

void free(void *p)
{
	(void)p;
}

void *calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > (size_t)-1 / size)
		return NULL;
	p = malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *realloc(void *old, size_t size)
{
	void *p = malloc(size);
	size_t have;

	if (p && old) {
		have = *(size_t *)((unsigned char *)old - 16);
		memcpy(p, old, have < size ? have : size);
	}
	return p;
}

int main(void)
{
	char *volatile s = malloc(32);

	snprintf(s, 32, "ready");
	printf("%s\n", s);
	fflush(stdout);
	pause();
	return 0;
}
