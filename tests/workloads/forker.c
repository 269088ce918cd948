// SPDX-License-Identifier: MIT
/*
 * forker - a parent allocates, forks, and the child allocates and frees on
 * its own.  Both report their truth; the child's line comes first.
 *
 * Measured phase, parent: PARENT_COUNT x malloc(PARENT_SIZE), then fork.
 * Child, from the fork on: CHILD_COUNT x malloc(CHILD_SIZE), frees every
 * second one of those, and frees FREE_INHERITED of the blocks it inherited
 * from the parent.  The child's TRUTH counts only the calls the child made;
 * its "live_allocations"/"requested_bytes" cover every block live in the
 * child, split into "own" (allocated by the child) and "inherited".
 *
 * Only the parent reads stdin: after its own TRUTH it waits for a line, then
 * tells the child through a pipe to free everything and exit, and reaps it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

int main(int argc, char **argv)
{
	uint64_t parent_count = 1000, parent_size = 256, child_count = 5000, child_size = 64;
	uint64_t free_inherited = 100, seed = 0;
	const struct wl_opt opts[] = {
		{"parent-count", &parent_count, "blocks the parent allocates before the fork"},
		{"parent-size", &parent_size, "bytes per parent block"},
		{"child-count", &child_count, "blocks the child allocates"},
		{"child-size", &child_size, "bytes per child block"},
		{"free-inherited", &free_inherited, "inherited blocks the child frees"},
		{"seed", &seed, "unused; accepted like every workload's"},
	};
	struct wl_books parent, child;
	int to_parent[2], to_child[2];
	char extra[512], c;
	uint64_t t0, t1;
	pid_t pid;

	wl_parse(argc, argv, "Allocations on both sides of a fork, each with its own truth.", opts,
		 6);
	wl_books_init(&parent, parent_count);
	wl_books_init(&child, child_count + parent_count);
	if (pipe(to_parent) || pipe(to_child)) {
		perror("forker: pipe");
		return 1;
	}
	wl_ready();

	t0 = wl_now_ns();
	for (uint64_t i = 0; i < parent_count; i++)
		memset(wl_malloc(&parent, parent_size), 1, parent_size);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("forker: fork");
		return 1;
	}
	if (pid == 0) {
		uint64_t own_live = 0, own_req = 0, inh_live = 0, inh_req = 0, freed = 0;
		uint64_t c0 = wl_now_ns();

		for (uint64_t i = 0; i < child_count; i++)
			memset(wl_malloc(&child, child_size), 2, child_size);
		for (size_t i = 0; i < child.nr_live; i++)
			wl_free(&child, i); /* swap-removal: every second block goes */
		/* The inherited blocks are the parent's books, copied by fork. */
		while (freed < free_inherited && parent.nr_live) {
			parent.calls.free++;
			free(parent.live[parent.nr_live - 1].p);
			parent.nr_live--;
			freed++;
		}
		child.calls.free += freed;
		wl_live_totals(&child, &own_live, &own_req);
		wl_live_totals(&parent, &inh_live, &inh_req);
		/* The child's books hold every live block, so wl_truth sees them all. */
		for (size_t i = 0; i < parent.nr_live && child.nr_live < child.cap; i++)
			child.live[child.nr_live++] = parent.live[i];
		snprintf(extra, sizeof(extra),
			 ",\"role\":\"child\",\"ppid\":%d,\"own\":{\"live_allocations\":%" PRIu64
			 ",\"requested_bytes\":%" PRIu64
			 "},\"inherited\":{\"live_allocations\":%" PRIu64
			 ",\"requested_bytes\":%" PRIu64 ",\"freed\":%" PRIu64 "}",
			 (int)getppid(), own_live, own_req, inh_live, inh_req, freed);
		wl_truth("forker", seed, wl_now_ns() - c0, &child, 1, extra);
		if (write(to_parent[1], "t", 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(1);
		child.nr_live -= inh_live;
		wl_free_all(&child);
		wl_free_all(&parent);
		_exit(0);
	}
	/* The parent's truth follows the child's, so readers see a fixed order. */
	if (read(to_parent[0], &c, 1) != 1) {
		fprintf(stderr, "forker: the child died before reporting\n");
		return 1;
	}
	t1 = wl_now_ns();
	snprintf(extra, sizeof(extra), ",\"role\":\"parent\",\"child_pid\":%d", (int)pid);
	wl_truth("forker", seed, t1 - t0, &parent, 1, extra);
	wl_wait_line();
	if (write(to_child[1], "x", 1) != 1)
		perror("forker: telling the child to exit");
	waitpid(pid, NULL, 0);
	wl_free_all(&parent);
	wl_books_destroy(&parent);
	wl_books_destroy(&child);
	return 0;
}
