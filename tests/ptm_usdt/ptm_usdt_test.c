// SPDX-License-Identifier: MIT
/*
 * ptm_usdt_test: hf_ptm_usdt's numbers for a real libptm process equal
 * libptm's own books wherever libptm counts the same events, and its
 * sampled live-heap estimate lands near the true live heap.
 *
 * "heap": ptm_usdt_target holds 256 MiB live in four sizes, sampled at
 * 512 KiB (MALLOC_SAMPLE_INTERVAL_=524288).  Exact: page_release calls =
 * libptm's release_calls delta; heap grow - shrink bytes = its system_bytes
 * delta.  Estimated: live bytes within 15% of the truth (the estimate's
 * relative standard deviation is about sqrt(interval / live) = 4.4% here,
 * so 15% is more than three of them), each size's bucket within 35% (about
 * 128 samples each: 9%), and at most 5% of the estimate in sizes the target does not use.
 * A samples map too small for them counts the samples it loses as drops.
 * "contend": four threads on one arena (MALLOC_ARENA_MAX_=1): contended
 * waits, their summed and longest wait equal libptm's books exactly, all on
 * the one arena, every end paired with its begin.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ptm_usdt.h"

#define INTERVAL 524288

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		int a_ = (a), b_ = (b);                                                            \
		CHECK_MSG(a_ == b_, "%s = %d, %s = %d", #a, a_, #b, b_);                           \
	} while (0)

struct books {
	unsigned long long system_bytes, release_calls, release_bytes, contended, wait_ns,
		max_wait_ns, narenas;
};

struct target {
	pid_t pid;
	FILE *in;  /* the target's stdin */
	FILE *out; /* its stdout */
};

static char lib[4096], exe[4096];

static int spawn(struct target *t, const char *mode)
{
	int to[2], from[2];

	if (pipe(to) != 0 || pipe(from) != 0)
		return -errno;
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0) {
		char sample[64];

		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		close(to[1]);
		close(from[0]);
		snprintf(sample, sizeof(sample), "%d", INTERVAL);
		setenv("LD_PRELOAD", lib, 1);
		setenv("MALLOC_SAMPLE_INTERVAL_", sample, 1);
		if (strcmp(mode, "contend") == 0)
			setenv("MALLOC_ARENA_MAX_", "1", 1);
		execl(exe, exe, mode, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	t->in = fdopen(to[1], "w");
	t->out = fdopen(from[0], "r");
	return t->in && t->out ? 0 : -ENOMEM;
}

static void say(struct target *t, const char *word)
{
	fprintf(t->in, "%s\n", word);
	fflush(t->in);
}

static int read_books(struct target *t, struct books *b)
{
	char line[512];

	do {
		if (fgets(line, sizeof(line), t->out) == NULL)
			return -EPIPE;
	} while (strncmp(line, "books ", 6) != 0);
	if (sscanf(line,
		   "books system_bytes %llu release_calls %llu release_bytes %llu contended %llu "
		   "wait_ns %llu max_wait_ns %llu narenas %llu",
		   &b->system_bytes, &b->release_calls, &b->release_bytes, &b->contended,
		   &b->wait_ns, &b->max_wait_ns, &b->narenas) != 7)
		return -EPROTO;
	return 0;
}

/* snapshot.h's bucket of a size, from its definition: the first i with s <= hf_hist_le(i). */
static int bucket_of(unsigned long long s)
{
	for (int i = 0; i < HF_HIST_BUCKETS - 1; i++)
		if (s <= hf_hist_le(i))
			return i;
	return HF_HIST_BUCKETS - 1;
}

static void finish(struct target *t)
{
	int status = 0;

	say(t, "exit");
	fclose(t->in);
	fclose(t->out);
	waitpid(t->pid, &status, 0);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "target ended with status %#x",
		  status);
}

static void remove_forgets_the_process(struct hf_ptm_usdt *u, pid_t pid)
{
	static struct hf_ptm_usdt_stats st;

	CHECK_EQ_INT(hf_ptm_usdt_remove(u, pid), 0);
	CHECK_EQ_INT(hf_ptm_usdt_read(u, pid, &st), -ENOENT);
	CHECK_EQ_INT(hf_ptm_usdt_remove(u, pid), -ENOENT);
}

static void heap_numbers_match_the_books_and_the_estimate_the_live_heap(struct hf_ptm_usdt *u)
{
	static struct hf_ptm_usdt_stats st;
	unsigned long long truth[HF_HIST_BUCKETS] = {0}, live = 0, outside = 0;
	struct books before, after;
	struct target t;
	char line[256];
	double ratio;

	CHECK_EQ_INT(spawn(&t, "heap"), 0);
	CHECK_EQ_INT(read_books(&t, &before), 0);
	CHECK_EQ_INT(hf_ptm_usdt_add(u, t.pid, lib), 0);
	CHECK_EQ_INT(hf_ptm_usdt_add(u, t.pid, lib), -EEXIST);
	say(&t, "go");
	CHECK_EQ_INT(read_books(&t, &after), 0);
	while (fgets(line, sizeof(line), t.out) != NULL && strncmp(line, "done", 4) != 0) {
		unsigned long long size, bytes;

		if (sscanf(line, "live %llu %llu", &size, &bytes) == 2) {
			truth[bucket_of(size)] += bytes;
			live += bytes;
		}
	}
	CHECK_MSG(live > (256ULL << 20), "the target reported %llu live bytes", live);
	CHECK_EQ_INT(hf_ptm_usdt_read(u, t.pid, &st), 0);

	/* Exact: the same events as libptm's books. */
	CHECK_EQ_U64(st.release_calls, after.release_calls - before.release_calls);
	CHECK_MSG(st.release_calls > 0, "the freed halves released no pages");
	/* A merged chunk's madvise covers pages the books counted already (malloc.c). */
	CHECK_MSG(st.release_bytes >= after.release_bytes - before.release_bytes,
		  "page_release bytes %llu < books %llu", (unsigned long long)st.release_bytes,
		  after.release_bytes - before.release_bytes);
	CHECK_MSG(st.count[HF_PTM_USDT_HEAP_GROW] > 0, "heap_grow never fired");
	CHECK_EQ_U64(st.grow_bytes - st.shrink_bytes, after.system_bytes - before.system_bytes);
	CHECK_EQ_U64(st.count[HF_PTM_USDT_LOCK_CONTENDED_END], 0);

	/* The profile's books balance, and nothing was lost. */
	CHECK_EQ_U64(st.sample_drops, 0);
	CHECK_EQ_U64(st.live_samples,
		     st.count[HF_PTM_USDT_SAMPLE_ALLOC] -
			     (st.count[HF_PTM_USDT_SAMPLE_FREE] - st.unknown_frees));
	CHECK_MSG(st.count[HF_PTM_USDT_SAMPLE_FREE] > 100, "only %llu samples freed",
		  (unsigned long long)st.count[HF_PTM_USDT_SAMPLE_FREE]);
	{
		unsigned long long sum = 0;

		for (int i = 0; i < HF_HIST_BUCKETS; i++)
			sum += st.live_by_size[i];
		CHECK_EQ_U64(sum, st.live_weight);
	}

	/* Estimated: the live heap, and by size. */
	ratio = (double)st.live_weight / (double)live;
	printf("# live %llu B, estimate %llu B from %llu samples (ratio %.3f)\n", live,
	       (unsigned long long)st.live_weight, (unsigned long long)st.live_samples, ratio);
	CHECK_MSG(ratio > 0.85 && ratio < 1.15, "estimate %llu B vs live %llu B (ratio %.3f)",
		  (unsigned long long)st.live_weight, live, ratio);
	for (int i = 0; i < HF_HIST_BUCKETS; i++) {
		if (truth[i] == 0)
			outside += st.live_by_size[i];
		if (truth[i] < (32ULL << 20))
			continue;
		ratio = (double)st.live_by_size[i] / (double)truth[i];
		printf("# bucket <= %llu B: live %llu B, estimate %llu B (ratio %.3f)\n",
		       (unsigned long long)hf_hist_le(i), truth[i],
		       (unsigned long long)st.live_by_size[i], ratio);
		CHECK_MSG(ratio > 0.65 && ratio < 1.35, "bucket %d: estimate %llu B vs live %llu B",
			  i, (unsigned long long)st.live_by_size[i], truth[i]);
	}
	CHECK_MSG(outside < st.live_weight / 20,
		  "%llu of %llu estimated bytes in sizes the target does not use", outside,
		  (unsigned long long)st.live_weight);
	remove_forgets_the_process(u, t.pid);
	finish(&t);
}

static void contended_waits_on_one_arena_equal_the_books(struct hf_ptm_usdt *u)
{
	static struct hf_ptm_usdt_stats st;
	struct books before, after;
	struct target t;
	char line[256];
	uint64_t hist = 0;

	CHECK_EQ_INT(spawn(&t, "contend"), 0);
	CHECK_EQ_INT(read_books(&t, &before), 0);
	CHECK_EQ_INT(hf_ptm_usdt_add(u, t.pid, lib), 0);
	say(&t, "go");
	CHECK_EQ_INT(read_books(&t, &after), 0);
	while (fgets(line, sizeof(line), t.out) != NULL && strncmp(line, "done", 4) != 0)
		;
	CHECK_EQ_INT(hf_ptm_usdt_read(u, t.pid, &st), 0);
	printf("# contended %llu (books %llu), wait %llu ns (books %llu), max %llu ns\n",
	       (unsigned long long)st.contended, after.contended - before.contended,
	       (unsigned long long)st.wait_ns, after.wait_ns - before.wait_ns,
	       (unsigned long long)st.max_wait_ns);
	CHECK_EQ_U64(after.narenas, 1);
	CHECK_MSG(after.contended - before.contended >= 100, "only %llu contended waits happened",
		  after.contended - before.contended);
	CHECK_EQ_U64(st.contended, after.contended - before.contended);
	CHECK_EQ_U64(st.wait_ns, after.wait_ns - before.wait_ns);
	/* Nothing waited before the add (one thread), so the longest wait is the same one. */
	CHECK_EQ_U64(before.contended, 0);
	CHECK_EQ_U64(st.max_wait_ns, after.max_wait_ns);
	CHECK_EQ_U64(st.count[HF_PTM_USDT_LOCK_CONTENDED_BEGIN],
		     st.count[HF_PTM_USDT_LOCK_CONTENDED_END]);
	CHECK_EQ_U64(st.count[HF_PTM_USDT_LOCK_CONTENDED_END], st.contended);
	CHECK_EQ_U64(st.unpaired_waits, 0);
	CHECK_EQ_U64(st.waiter_drops, 0);
	CHECK_EQ_U64(st.nr_arenas, 1);
	if (st.nr_arenas == 1) {
		CHECK_EQ_U64(st.arenas[0].contended, st.contended);
		for (int i = 0; i < HF_PTM_USDT_WAIT_SLOTS; i++)
			hist += st.arenas[0].wait_hist[i];
		CHECK_EQ_U64(hist, st.contended);
		CHECK(st.arenas[0].address != 0);
		/* Four threads over the arena limit of one all reuse the main arena. */
		CHECK_EQ_U64(st.arenas[0].index, 0);
		CHECK(st.count[HF_PTM_USDT_ARENA_REUSE] >= 1);
	}
	remove_forgets_the_process(u, t.pid);
	finish(&t);
}

static void a_full_samples_map_counts_drops_and_keeps_its_books(void)
{
	struct hf_ptm_usdt_opts opts = {.max_samples = 64};
	static struct hf_ptm_usdt_stats st;
	struct hf_ptm_usdt *small = NULL;
	struct books before, after;
	struct target t;
	char line[256];

	CHECK_EQ_INT(hf_ptm_usdt_open(&opts, &small), 0);
	if (small == NULL)
		return;
	CHECK_EQ_INT(spawn(&t, "heap"), 0);
	CHECK_EQ_INT(read_books(&t, &before), 0);
	CHECK_EQ_INT(hf_ptm_usdt_add(small, t.pid, lib), 0);
	say(&t, "go");
	CHECK_EQ_INT(read_books(&t, &after), 0);
	while (fgets(line, sizeof(line), t.out) != NULL && strncmp(line, "done", 4) != 0)
		;
	CHECK_EQ_INT(hf_ptm_usdt_read(small, t.pid, &st), 0);
	printf("# 64-entry map: %llu samples, %llu kept live, %llu dropped\n",
	       (unsigned long long)st.count[HF_PTM_USDT_SAMPLE_ALLOC],
	       (unsigned long long)st.live_samples, (unsigned long long)st.sample_drops);
	CHECK_MSG(st.sample_drops > 0, "%llu samples fit in a 64-entry map",
		  (unsigned long long)st.count[HF_PTM_USDT_SAMPLE_ALLOC]);
	CHECK(st.live_samples <= 64);
	/* Dropped samples' frees are unknown frees: what was kept still balances. */
	CHECK_EQ_U64(st.count[HF_PTM_USDT_SAMPLE_ALLOC] - st.sample_drops,
		     st.live_samples + st.count[HF_PTM_USDT_SAMPLE_FREE] - st.unknown_frees);
	finish(&t);
	hf_ptm_usdt_close(small);
}

static void objects_without_libptm_probes_are_refused(struct hf_ptm_usdt *u)
{
	struct target t;
	int err;

	CHECK_EQ_INT(spawn(&t, "heap"), 0);
	err = hf_ptm_usdt_add(u, t.pid, exe);
	CHECK_MSG(err == -ENOENT, "add with %s: %d, expected -ENOENT", exe, err);
	CHECK_EQ_INT(hf_ptm_usdt_remove(u, t.pid), -ENOENT);
	kill(t.pid, SIGKILL);
	fclose(t.in);
	fclose(t.out);
	waitpid(t.pid, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *build = getenv("HF_BUILD_DIR");
	struct hf_ptm_usdt *u = NULL;
	int err;

	if (build == NULL)
		build = "build";
	snprintf(lib, sizeof(lib), "%s/lib/libptm.so", build);
	snprintf(exe, sizeof(exe), "%s/tests/ptm_usdt_target", build);
	if (geteuid() != 0)
		HF_SKIP("needs root for BPF");
	if (access(lib, R_OK) != 0 || access(exe, X_OK) != 0)
		HF_SKIP("%s or %s is not built", lib, exe);
	/* A hang anywhere (a target that never answers) fails the test rather than ctest's timeout.
	 */
	alarm(150);
	signal(SIGPIPE, SIG_IGN);
	err = hf_ptm_usdt_open(NULL, &u);
	CHECK_EQ_INT(err, 0);
	if (err != 0)
		return hf_test_done();
	if (argc > 1 && strcmp(argv[1], "contend") == 0) {
		contended_waits_on_one_arena_equal_the_books(u);
	} else {
		objects_without_libptm_probes_are_refused(u);
		heap_numbers_match_the_books_and_the_estimate_the_live_heap(u);
		a_full_samples_map_counts_drops_and_keeps_its_books();
	}
	hf_ptm_usdt_close(u);
	return hf_test_done();
}
