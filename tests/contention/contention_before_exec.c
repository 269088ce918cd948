// SPDX-License-Identifier: MIT
/*
 * contention_before_exec: a process added before it has exec'd its program
 * (as `heapfragd -- COMMAND` does), with the libc path given, is counted once
 * it runs: the uprobe waits on libc's inode and the kernel plants it when
 * the new image maps libc.  main_arena is then found in the new image.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "contention.h"
#include "log.h"
#include "workload_ctl.h"

#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"

int main(void)
{
	char path[512], line[256], why[256] = "";
	char *argv[] = {path, "shared", "8", "500000", NULL};
	static struct hf_snapshot snap;
	struct hf_contention *c = NULL;
	struct workload w = {0};
	int go[2], err;
	pid_t child;

	workload_path("arena_workload", path, sizeof(path));
	hf_log_route_libbpf();
	err = hf_contention_open(NULL, &c);
	if (err)
		HF_SKIP("cannot load the contention BPF object (needs root): %s", strerror(-err));
	CHECK(pipe(go) == 0);
	/* The child waits, then becomes the workload (stdin/stdout on pipes). */
	{
		int to[2], from[2];
		char g;

		CHECK(pipe(to) == 0 && pipe(from) == 0);
		child = fork();
		if (child == 0) {
			close(go[1]);
			if (read(go[0], &g, 1) != 1)
				_exit(3);
			dup2(to[0], 0);
			dup2(from[1], 1);
			putenv("MALLOC_ARENA_MAX=1");
			execv(path, argv);
			_exit(127);
		}
		close(to[0]);
		close(from[1]);
		close(go[0]);
		w.pid = child;
		w.in = fdopen(to[1], "w");
		w.out = fdopen(from[0], "r");
	}
	err = hf_contention_add(c, child, LIBC, why, sizeof(why));
	CHECK_MSG(err == 0, "hf_contention_add before exec: %s", why);
	CHECK(write(go[1], "g", 1) == 1);
	close(go[1]);

	CHECK(workload_expect(&w, "ready", line, sizeof(line)) == 0);
	CHECK(workload_send(&w, "go") == 0);
	CHECK(workload_expect(&w, "end", line, sizeof(line)) == 0);
	err = hf_contention_fill(c, child, &snap, NULL);
	CHECK_MSG(err == 0, "hf_contention_fill: %s", strerror(-err));
	CHECK_EQ_U64(snap.nr_arenas, 1);
	CHECK(snap.arenas[0].lock.contended != HF_UNKNOWN && snap.arenas[0].lock.contended > 0);
	printf("added before exec: %" PRIu64
	       " contended acquisitions on the main arena at 0x%" PRIx64 "\n",
	       snap.arenas[0].lock.contended, snap.arenas[0].address);

	CHECK_EQ_U64(workload_finish(&w), 0);
	CHECK(hf_contention_remove(c, child) == 0);
	hf_contention_close(c);
	return hf_test_done();
}
