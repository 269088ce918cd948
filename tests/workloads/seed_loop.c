// SPDX-License-Identifier: MIT
/*
 * seed_loop - the seed's loop: COUNT times p = malloc(SIZE); free(p).
 *
 * Truth: COUNT mallocs and COUNT frees, nothing live.  With glibc the block
 * comes back from tcache each time, so brk moves once or not at all.
 */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

int main(int argc, char **argv)
{
	uint64_t count = 1000000, size = 100, seed = 0;
	const struct wl_opt opts[] = {
		{"count", &count, "malloc/free pairs"},
		{"size", &size, "bytes per malloc"},
		{"seed", &seed, "unused; accepted like every workload's"},
	};
	struct wl_books books;
	uint64_t t0, t1;

	wl_parse(argc, argv, "The seed's loop: COUNT x (p = malloc(SIZE); free(p)).", opts, 3);
	wl_books_init(&books, 1);
	wl_ready();

	t0 = wl_now_ns();
	for (uint64_t i = 0; i < count; i++) {
		void *p = malloc(size);

		/* Keep the pair from being folded away: p escapes into an empty asm. */
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
	t1 = wl_now_ns();
	books.calls.malloc = count;
	books.calls.free = count;

	wl_truth("seed_loop", seed, t1 - t0, &books, 1, NULL);
	wl_wait_line();
	wl_books_destroy(&books);
	return 0;
}
