// SPDX-License-Identifier: MIT
/*
 * swiss_cheese - the seed's incident: COUNT messages of SIZE bytes, then all
 * but KEEP_PERCENT of them freed in a seeded random order.  The survivors are
 * spread over the whole heap, which can no longer shrink: resident memory
 * stays near COUNT * SIZE while the program holds a tenth of it.
 *
 * Truth after the frees: COUNT mallocs, the frees, the survivors live.
 */
#include <string.h>
#include <sys/mman.h>

#include "workload.h"

int main(int argc, char **argv)
{
	uint64_t count = 100000, size = 1000, keep = 10, seed = 1;
	const struct wl_opt opts[] = {
		{"count", &count, "messages"},
		{"size", &size, "bytes per message"},
		{"keep-percent", &keep, "share of messages kept live"},
		{"seed", &seed, "random order of the frees"},
	};
	struct wl_books books;
	uint64_t t0, t1, nfree, state;

	wl_parse(argc, argv, "The seed's incident: many messages, most freed at random.", opts, 4);
	if (keep > 100)
		keep = 100;
	wl_books_init(&books, count);
	wl_ready();

	t0 = wl_now_ns();
	for (uint64_t i = 0; i < count; i++) {
		char *p = wl_malloc(&books, size);

		/* A message is written, so its pages are resident. */
		if (p)
			memset(p, (int)(i & 0xff), size);
	}
	/* Free a random block each time: swap-removal keeps the rest packed. */
	nfree = count - count * keep / 100;
	state = seed;
	for (uint64_t i = 0; i < nfree; i++)
		wl_free(&books, (size_t)(wl_rand(&state) % books.nr_live));
	t1 = wl_now_ns();

	wl_truth("swiss_cheese", seed, t1 - t0, &books, 1, NULL);
	wl_wait_line();
	wl_free_all(&books);
	wl_books_destroy(&books);
	return 0;
}
