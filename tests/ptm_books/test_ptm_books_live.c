// SPDX-License-Identifier: MIT
/*
 * The books of real processes, read from outside: a libptm process with
 * several arenas, paused, gives exactly the numbers it prints itself from
 * mallinfo2() and ptm_stats_get(); while its threads allocate busily, 1000
 * reads in a row are all consistent; a process without libptm has no books
 * (-ENOENT); a process that is gone says -ESRCH; and a fake block, spoiled
 * in every way the fake program knows, is refused without a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "heap_regions.h"
#include "ptm_books.h"

struct child {
	pid_t pid;
	int to;
	FILE *from;
};

static char build_dir[1024];
static char libptm[1100];

/* Starts argv with a pipe on each side, under libptm when preload is set. */
static int start(char *const argv[], bool preload, const char *arena_max, struct child *c)
{
	int in[2], out[2];

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (preload)
			setenv("LD_PRELOAD", libptm, 1);
		else
			unsetenv("LD_PRELOAD");
		if (arena_max)
			setenv("MALLOC_ARENA_MAX", arena_max, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->to = in[1];
	c->from = fdopen(out[0], "r");
	return 0;
}

/* Sends one command and reads lines up to and including want; false if it never came. */
static bool command(struct child *c, char cmd, const char *want, char lines[][256], int *nlines)
{
	char line[256];
	int n = 0;

	if (cmd && write(c->to, &cmd, 1) != 1)
		return false;
	while (fgets(line, sizeof(line), c->from)) {
		if (lines && n < 64)
			snprintf(lines[n++], 256, "%s", line);
		if (strncmp(line, want, strlen(want)) == 0) {
			if (nlines)
				*nlines = n;
			return true;
		}
	}
	return false;
}

static void stop(struct child *c)
{
	int status;

	close(c->to);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, &status, 0);
	fclose(c->from);
}

/* Compares the books read from outside with what the target printed at the same instant. */
static void books_equal_what_the_target_prints(struct child *c, uint64_t addr, uint64_t min_arenas,
					       const char *when, uint64_t *contended)
{
	char lines[64][256];
	int n = 0, arenas_seen = 0;
	struct hf_ptm_books *b = calloc(1, sizeof(*b));
	unsigned long mi[7], stv[6];
	struct hf_regions regions;
	struct hf_arena out[HF_MAX_ARENAS];
	size_t nout = 0;
	bool truncated = true;

	CHECK(command(c, 'p', "end", lines, &n));
	CHECK(hf_ptm_books_read(c->pid, addr, b) == 0);
	CHECK(sscanf(lines[0], "mallinfo2 %lu %lu %lu %lu %lu %lu %lu", &mi[0], &mi[1], &mi[2],
		     &mi[3], &mi[4], &mi[5], &mi[6]) == 7);
	CHECK(sscanf(lines[1], "stats %lu %lu %lu %lu %lu %lu", &stv[0], &stv[1], &stv[2], &stv[3],
		     &stv[4], &stv[5]) == 6);
	printf("%s: %lu arenas, %lu free chunks, system %lu, mmapped %lu in %lu, "
	       "%lu seqlock retries\n",
	       when, (unsigned long)b->narenas, (unsigned long)b->free_chunks, mi[0], mi[4], mi[3],
	       (unsigned long)b->retries);
	CHECK(b->narenas >= min_arenas);
	CHECK_EQ_U64(b->narenas, stv[0]);
	CHECK_EQ_U64(b->main_system_bytes + b->arenas_system_bytes, mi[0]);
	CHECK_EQ_U64(b->free_chunks, mi[1] + mi[2]);
	CHECK_EQ_U64(b->free_chunks, stv[1]);
	CHECK_EQ_U64(b->free_bytes, mi[5]);
	CHECK_EQ_U64(b->mmapped_chunks, mi[3]);
	CHECK_EQ_U64(b->mmapped_bytes, mi[4]);
	CHECK_EQ_U64(b->mmapped_chunks, stv[3]);
	CHECK_EQ_U64(b->released_bytes, stv[5]);
	CHECK(b->has_largest);
	CHECK_EQ_U64(b->largest_free_bytes, stv[2]);
	CHECK_EQ_U64(b->arenas[0].rec.top_bytes, mi[6]);
	for (int i = 2; i < n; i++) {
		unsigned long v[10];
		const struct ptm_abi_arena *a;

		if (sscanf(lines[i], "arena %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) != 10)
			continue;
		/*
		 * ptm_stats_get() walks the arena list in the order the books'
		 * list mirrors, so the k-th arena printed is the k-th record.
		 * (Matching by index would not do: libptm gives arenas created
		 * at the same time the same index.)
		 */
		a = arenas_seen < (int)b->nr_kept ? &b->arenas[arenas_seen].rec : NULL;
		arenas_seen++;
		CHECK_MSG(a != NULL, "arena %lu not in the books", v[0]);
		if (!a)
			continue;
		CHECK_EQ_U64(a->index, v[0]);
		CHECK_EQ_U64(a->system_bytes, v[1]);
		CHECK_EQ_U64(a->threads_attached, v[2]);
		CHECK_EQ_U64(a->lock_acquisitions, v[3]);
		CHECK_EQ_U64(a->lock_contended, v[4]);
		*contended += a->lock_contended;
		CHECK_EQ_U64(a->lock_wait_ns, v[5]);
		CHECK_EQ_U64(a->lock_max_wait_ns, v[6]);
		CHECK_EQ_U64(a->binned_chunks + a->fast_chunks + (a->top_bytes ? 1 : 0), v[7]);
		/* Version 3: the largest free chunk and the heaps, as the target walks them. */
		CHECK_EQ_U64(a->largest_free_bytes, v[8]);
		CHECK_EQ_U64(a->heaps, v[9]);
		CHECK(a->heaps >= 1);
	}
	CHECK_EQ_U64(arenas_seen, b->narenas);
	if (hf_checks_failed) {
		for (int i = 0; i < n; i++)
			fprintf(stderr, "target: %s", lines[i]);
		for (uint32_t k = 0; k < b->nr_kept; k++)
			fprintf(stderr,
				"books: arena %lu system %lu threads %lu acquisitions %lu at "
				"%#lx\n",
				(unsigned long)b->arenas[k].rec.index,
				(unsigned long)b->arenas[k].rec.system_bytes,
				(unsigned long)b->arenas[k].rec.threads_attached,
				(unsigned long)b->arenas[k].rec.lock_acquisitions,
				(unsigned long)b->arenas[k].record_addr);
	}

	/* heapfragd's structures get the same numbers. */
	hf_regions_read(c->pid, HF_ALLOC_LIBPTM, HF_MODE_PASSIVE, NULL, 0, &regions);
	printf("%s: /proc says brk %lu arena %lu (heap_info sizes %lu) mmap %lu; books say main "
	       "%lu arenas %lu mmapped %lu\n",
	       when, (unsigned long)regions.mapped.brk, (unsigned long)regions.mapped.arena,
	       (unsigned long)regions.arena_size_bytes, (unsigned long)regions.mapped.mmap,
	       (unsigned long)b->main_system_bytes, (unsigned long)b->arenas_system_bytes,
	       (unsigned long)b->mmapped_bytes);
	regions.free_chunks = HF_UNKNOWN;
	regions.largest_free_chunk_bytes = HF_UNKNOWN;
	hf_ptm_books_fill(b, &regions, out, HF_MAX_ARENAS, &nout, &truncated);
	CHECK_EQ_U64(regions.free_chunks, stv[1]);
	CHECK_EQ_U64(regions.largest_free_chunk_bytes, stv[2]);
	/* mapped_bytes is what mallinfo2() says the allocator holds: arena + hblkhd. */
	CHECK_EQ_U64(regions.mapped.brk + regions.mapped.arena, mi[0]);
	CHECK_EQ_U64(regions.mapped.mmap, mi[4]);
	CHECK_EQ_U64(regions.mapped.total, mi[0] + mi[4]);
	CHECK_EQ_U64(nout, b->narenas);
	CHECK(!truncated);
	CHECK(out[0].kind == HF_ARENA_MAIN && out[1].kind == HF_ARENA_THREAD);
	CHECK_EQ_U64(out[0].mapped_bytes, b->arenas[0].rec.system_bytes);
	CHECK_EQ_U64(out[1].lock.acquisitions, b->arenas[1].rec.lock_acquisitions);
	CHECK_EQ_U64(out[1].threads, b->arenas[1].rec.threads_attached);
	CHECK(out[1].lock.acquisitions > 0);
	for (size_t k = 0; k < nout; k++)
		CHECK_EQ_U64(out[k].heaps, b->arenas[k].rec.heaps);
	free(b);
}

/*
 * arena_max NULL: each thread gets an arena of its own; "2": three workers
 * and the main thread share two arenas, so their locks are contended.
 */
static void
libptm_books_equal_its_own_numbers_paused_and_stay_consistent_while_busy(const char *arena_max)
{
	uint64_t min_arenas = arena_max ? 2 : 4, contended = 0;
	char target[1100];
	char *argv[] = {target, "3", NULL};
	struct child c;
	uint64_t addr = 0, last_acq[HF_MAX_ARENAS] = {0};
	unsigned bad = 0, errors = 0, retries = 0;
	struct hf_ptm_books *b = calloc(1, sizeof(*b));

	snprintf(target, sizeof(target), "%s/tests/ptm_books_target", build_dir);
	CHECK(start(argv, true, arena_max, &c) == 0);
	CHECK(command(&c, 0, "ready", NULL, NULL));
	CHECK(hf_ptm_books_locate(c.pid, libptm, &addr) == 0);
	CHECK(addr != 0);
	printf("MALLOC_ARENA_MAX %s\n", arena_max ? arena_max : "unset");
	books_equal_what_the_target_prints(&c, addr, min_arenas, "paused", &contended);

	CHECK(command(&c, 'b', "busy", NULL, NULL));
	for (int n = 0; n < 1000; n++) {
		int err = hf_ptm_books_read(c.pid, addr, b);

		if (err) {
			if (errors++ < 3)
				fprintf(stderr, "read %d: %s\n", n, strerror(-err));
			continue;
		}
		retries += (unsigned)b->retries;
		/* Independent of the reader's own checks: what a torn copy would break. */
		for (uint32_t k = 0; k < b->nr_kept; k++) {
			const struct ptm_abi_arena *a = &b->arenas[k].rec;

			if (a->binned_bytes < 32 * a->binned_chunks ||
			    a->fast_bytes < 32 * a->fast_chunks ||
			    a->top_bytes + a->binned_bytes + a->fast_bytes > a->system_bytes ||
			    a->lock_acquisitions < last_acq[k] ||
			    a->largest_free_bytes < a->top_bytes ||
			    a->largest_free_bytes >
				    a->top_bytes + a->binned_bytes + a->fast_bytes ||
			    a->released_bytes != a->release_total_bytes - a->reuse_total_bytes)
				bad++;
			last_acq[k] = a->lock_acquisitions;
		}
	}
	printf("busy: 1000 reads, %u errors, %u inconsistent, %u seqlock retries\n", errors, bad,
	       retries);
	CHECK_EQ_U64(errors, 0);
	CHECK_EQ_U64(bad, 0);
	CHECK(command(&c, 's', "idle", NULL, NULL));
	contended = 0;
	books_equal_what_the_target_prints(&c, addr, min_arenas, "after busy", &contended);
	if (arena_max)
		CHECK_MSG(contended > 0, "threads sharing arenas were never contended");
	stop(&c);
	free(b);
}

static void process_without_libptm_has_no_books(void)
{
	char target[1100];
	char *argv[] = {target, "1", NULL};
	struct child c;
	uint64_t addr = 0;

	snprintf(target, sizeof(target), "%s/tests/ptm_books_fake", build_dir);
	argv[1] = "good";
	CHECK(start(argv, false, NULL, &c) == 0);
	CHECK(command(&c, 0, "ready", NULL, NULL));
	/* libptm.so is not mapped by this process, and glibc exports no books. */
	CHECK(hf_ptm_books_locate(c.pid, libptm, &addr) == -ENOENT);
	CHECK(hf_ptm_books_locate(c.pid, "/lib/x86_64-linux-gnu/libc.so.6", &addr) == -ENOENT);
	stop(&c);
}

static void vanished_process_is_esrch(void)
{
	char target[1100];
	char *argv[] = {target, "1", NULL};
	struct hf_ptm_books *b = calloc(1, sizeof(*b));
	struct child c;
	uint64_t addr = 0;

	snprintf(target, sizeof(target), "%s/tests/ptm_books_target", build_dir);
	CHECK(start(argv, true, NULL, &c) == 0);
	CHECK(command(&c, 0, "ready", NULL, NULL));
	CHECK(hf_ptm_books_locate(c.pid, libptm, &addr) == 0);
	CHECK(hf_ptm_books_read(c.pid, addr, b) == 0);
	stop(&c);
	CHECK(hf_ptm_books_read(c.pid, addr, b) == -ESRCH);
	CHECK(hf_ptm_books_locate(c.pid, libptm, &addr) == -ESRCH);
	free(b);
}

static void fake_blocks_are_refused_without_a_crash(void)
{
	static const struct {
		const char *mode;
		int want;
	} cases[] = {
		{"good", 0},       {"magic", -EPROTO}, {"size", -EPROTO}, {"huge", -EPROTO},
		{"wild", -EPROTO}, {"cycle", -EPROTO}, {"torn", -EPROTO}, {"locked", -EAGAIN},
	};
	char target[1100];
	struct hf_ptm_books *b = calloc(1, sizeof(*b));

	snprintf(target, sizeof(target), "%s/tests/ptm_books_fake", build_dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = {target, (char *)cases[i].mode, NULL};
		struct child c;
		uint64_t addr = 0;
		int err;

		CHECK(start(argv, false, NULL, &c) == 0);
		CHECK(command(&c, 0, "ready", NULL, NULL));
		CHECK(hf_ptm_books_locate(c.pid, target, &addr) == 0);
		err = hf_ptm_books_read(c.pid, addr, b);
		CHECK_MSG(err == cases[i].want, "%s: got %d (%s), want %d", cases[i].mode, err,
			  strerror(-err), cases[i].want);
		if (cases[i].want == 0) {
			CHECK_EQ_U64(b->narenas, 2);
			CHECK_EQ_U64(b->free_chunks, 2 * (3 + 1));
		}
		stop(&c);
	}
	free(b);
}

int main(void)
{
	const char *dir = getenv("HF_BUILD_DIR");

	if (!dir)
		HF_SKIP("HF_BUILD_DIR is not set");
	if (geteuid() != 0)
		HF_SKIP("process_vm_readv of another user's process needs root");
	snprintf(build_dir, sizeof(build_dir), "%s", dir);
	snprintf(libptm, sizeof(libptm), "%s/lib/libptm.so", dir);
	libptm_books_equal_its_own_numbers_paused_and_stay_consistent_while_busy(NULL);
	libptm_books_equal_its_own_numbers_paused_and_stay_consistent_while_busy("2");
	process_without_libptm_has_no_books();
	vanished_process_is_esrch();
	fake_blocks_are_refused_without_a_crash();
	return hf_test_done();
}
