// SPDX-License-Identifier: MIT
/*
 * gate_target - a program that allocates from its very first instruction on:
 * a constructor that runs before main allocates, frees, callocs and reallocs,
 * and main allocates more.  It keeps its own books, and prints them once as
 * "TRUTH {json}", then waits for a line on stdin (or EOF) and exits without
 * freeing anything, so the tracer's account is read at a quiet moment.
 *
 * It calls nothing else that allocates: its output is formatted into a static
 * buffer and written with write(2).  It also reports "pause_ns": the time
 * from HF_GATE_T0_NS (CLOCK_MONOTONIC, taken by its launcher just before
 * execve) to its constructor, which includes any time it was held at exec.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CTOR_BLOCKS 64
#define MAIN_BLOCKS 100

static struct {
	uint64_t malloc, calloc, realloc, free;
	uint64_t live, requested;
	uint64_t pause_ns;
} books;

static void *ctor_blocks[CTOR_BLOCKS];
static void *main_blocks[MAIN_BLOCKS];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void keep(void *p)
{
	/* The block escapes: the compiler may not fold the call away. */
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void __attribute__((constructor(101))) first_allocations(void)
{
	const char *t0 = getenv("HF_GATE_T0_NS");
	uint64_t now = now_ns();

	if (t0)
		books.pause_ns = now - strtoull(t0, NULL, 10);
	for (int i = 0; i < CTOR_BLOCKS; i++) {
		ctor_blocks[i] = malloc(24 + 8 * (size_t)i);
		keep(ctor_blocks[i]);
		books.malloc++;
		books.live++;
		books.requested += 24 + 8 * (uint64_t)i;
	}
	for (int i = 0; i < CTOR_BLOCKS; i += 2) {
		free(ctor_blocks[i]);
		books.free++;
		books.live--;
		books.requested -= 24 + 8 * (uint64_t)i;
	}
	ctor_blocks[0] = calloc(10, 100);
	keep(ctor_blocks[0]);
	books.calloc++;
	books.live++;
	books.requested += 1000;
	/* Grown: the same block, a new size. */
	ctor_blocks[1] = realloc(ctor_blocks[1], 4000);
	keep(ctor_blocks[1]);
	books.realloc++;
	books.requested += 4000 - 32;
}

int main(void)
{
	static char out[512];
	char c;
	int n;

	for (int i = 0; i < MAIN_BLOCKS; i++) {
		main_blocks[i] = malloc(1000);
		keep(main_blocks[i]);
		books.malloc++;
		books.live++;
		books.requested += 1000;
	}
	for (int i = 0; i < MAIN_BLOCKS; i += 2) {
		free(main_blocks[i]);
		books.free++;
		books.live--;
		books.requested -= 1000;
	}
	n = snprintf(out, sizeof(out),
		     "TRUTH {\"pid\":%d,\"pause_ns\":%llu,\"calls\":{\"malloc\":%llu,"
		     "\"calloc\":%llu,\"realloc\":%llu,\"free\":%llu},\"live_allocations\":%llu,"
		     "\"requested_bytes\":%llu}\n",
		     (int)getpid(), (unsigned long long)books.pause_ns,
		     (unsigned long long)books.malloc, (unsigned long long)books.calloc,
		     (unsigned long long)books.realloc, (unsigned long long)books.free,
		     (unsigned long long)books.live, (unsigned long long)books.requested);
	if (write(1, out, (size_t)n) != n)
		return 1;
	/* Quiet until told: the tracer reads the account now. */
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	return 0;
}
