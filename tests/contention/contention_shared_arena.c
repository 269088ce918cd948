// SPDX-License-Identifier: MIT
/*
 * contention_shared_arena MODE: glibc arena-lock contention measured by
 * hf_contention, on a real workload.
 *
 * shared: 8 threads share one arena (MALLOC_ARENA_MAX=1) and free each
 *   other's blocks.  The contended count must be clearly non-zero and within
 *   +-50 % of an independent count of the contended lock path, taken at the
 *   same time by bpftrace: its own uprobe on __lll_lock_wait_private filtered
 *   by the arena's address (a different tool and attribution; it checks that
 *   the address we found is the arena's lock and that our per-CPU sums are
 *   right).  The wait time must likewise be within +-50 % of bpftrace's sum
 *   of FUTEX_WAIT time on that word (tracepoint:syscalls:sys_*_futex by pid
 *   and uaddr).  Counting FUTEX_WAIT calls instead is no measure of
 *   contended acquisitions: a woken waiter often loses the lock to a thread
 *   that never waited and sleeps again, so here there are 1.5-2.5 sleeps per
 *   contended acquisition; the test prints that count too.  The doctor must
 *   name arena contention from these numbers.
 * single: the same loop on one thread: zero contention, and no finding.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../doctor/snapshot_fixture.h"
#include "arena_map.h"
#include "check.h"
#include "contention.h"
#include "doctor.h"
#include "log.h"
#include "workload_ctl.h"

#define THREADS        8
#define OPS_PER_THREAD 1000000
#define JEMALLOC       "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

static double now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the test is waiting for, so that a hang names itself. */
static const char *volatile stage = "start";
static volatile pid_t children[2];

static void on_alarm(int sig)
{
	char msg[160];
	int len = snprintf(msg, sizeof(msg), "TIMEOUT while %s\n", stage);

	(void)sig;
	if (write(2, msg, (size_t)len) < 0)
		_exit(2);
	for (int i = 0; i < 2; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	_exit(1);
}

struct independent {
	long calls;    /* calls of __lll_lock_wait_private on the arena's lock */
	long sleeps;   /* FUTEX_WAIT calls on it */
	long sleep_us; /* time blocked in them; bpftrace 0.17 prints %d in 32 bits */
};

/*
 * Starts bpftrace watching lock of pid: its own uprobe on the contended path
 * with the lock address as filter, and the futex syscalls on that word.
 * Returns once its probes are attached.
 */
static int bpftrace_start(struct workload *bt, pid_t pid, const char *libc, uint64_t lock)
{
	static char script[1024];
	char line[256];
	char *argv[] = {"/usr/bin/bpftrace", "-e", script, NULL};

	snprintf(script, sizeof(script),
		 "uprobe:%s:__lll_lock_wait_private /pid == %d && arg0 == 0x%" PRIx64 "/ "
		 "{ @calls++; } "
		 "tracepoint:syscalls:sys_enter_futex /pid == %d && (uint64)args->uaddr == "
		 "0x%" PRIx64 " && (args->op & 0x7f) == 0/ { @sleeps++; @t[tid] = nsecs; } "
		 "tracepoint:syscalls:sys_exit_futex /@t[tid]/ "
		 "{ @us += (nsecs - @t[tid]) / 1000; delete(@t[tid]); } "
		 "BEGIN { printf(\"ready\\n\"); @calls = 0; @sleeps = 0; @us = 0; } "
		 "END { printf(\"counts %%d %%d %%d\\n\", @calls, @sleeps, @us); "
		 "clear(@calls); clear(@sleeps); clear(@us); clear(@t); }",
		 libc, (int)pid, lock, (int)pid, lock);
	if (workload_start(bt, argv, NULL))
		return -1;
	/* bpftrace runs BEGIN once every probe is attached. */
	return workload_expect(bt, "ready", line, sizeof(line));
}

static int bpftrace_stop(struct workload *bt, struct independent *out)
{
	char line[256];
	int err = -1;

	kill(bt->pid, SIGINT);
	if (workload_expect(bt, "counts", line, sizeof(line)) == 0 &&
	    sscanf(line, "counts %ld %ld %ld", &out->calls, &out->sleeps, &out->sleep_us) == 3)
		err = 0;
	fclose(bt->in);
	fclose(bt->out);
	waitpid(bt->pid, NULL, 0);
	return err;
}

int main(int argc, char **argv)
{
	bool shared = argc > 1 && strcmp(argv[1], "shared") == 0;
	char path[512], line[256], nthreads[8], ops[16];
	char *wargv[] = {path, shared ? "shared" : "single", nthreads, ops, NULL};
	char *env[] = {"MALLOC_ARENA_MAX=1", NULL};
	static struct hf_snapshot snap;
	struct hf_lock_waits other = {0};
	struct hf_finding findings[HF_FINDING_COUNT];
	struct hf_contention *c = NULL;
	struct hf_libc_map libc;
	struct workload w = {0}, bt = {0};
	struct independent ind = {-1, -1, -1};
	const struct hf_arena_lock *lock = &snap.arenas[0].lock;
	const char *source = NULL;
	uint64_t main_arena;
	double since;
	size_t nfind;
	char why[256] = "";
	int err;

	snprintf(nthreads, sizeof(nthreads), "%d", shared ? THREADS : 0);
	snprintf(ops, sizeof(ops), "%d", shared ? OPS_PER_THREAD : THREADS * OPS_PER_THREAD);
	workload_path("arena_workload", path, sizeof(path));
	hf_log_route_libbpf();
	if (access("/usr/bin/bpftrace", X_OK) != 0)
		HF_SKIP("bpftrace is not installed: no independent count");
	err = hf_contention_open(NULL, &c);
	if (err)
		HF_SKIP("cannot load the contention BPF object (needs root): %s", strerror(-err));

	signal(SIGALRM, on_alarm);
	alarm(160);
	CHECK(workload_start(&w, wargv, env) == 0);
	children[0] = w.pid;
	stage = "waiting for the workload to be ready";
	CHECK(workload_expect(&w, "ready", line, sizeof(line)) == 0);
	/* An object without glibc's contended-lock path is refused, with a reason. */
	if (access(JEMALLOC, R_OK) == 0) {
		err = hf_contention_add(c, w.pid, JEMALLOC, why, sizeof(why));
		CHECK_MSG(err == -ENOENT && strstr(why, "__lll_lock_wait_private"),
			  "jemalloc refused: %d %s", err, why);
	}
	err = hf_contention_add(c, w.pid, NULL, why, sizeof(why));
	CHECK_MSG(err == 0, "hf_contention_add: %s", why);
	CHECK(hf_contention_add(c, w.pid, NULL, why, sizeof(why)) == -EEXIST);
	since = now_unix();
	err = hf_contention_fill(c, w.pid, &snap, NULL);
	CHECK_MSG(err == 0, "hf_contention_fill before the work: %s", strerror(-err));
	main_arena = hf_contention_main_arena(c, w.pid, &source);
	CHECK(main_arena != 0);
	printf("main_arena at 0x%" PRIx64 " (%s)\n", main_arena, source ? source : "?");
	CHECK(hf_libc_map_read(w.pid, &libc) == 0);
	stage = "starting bpftrace";
	CHECK(bpftrace_start(&bt, w.pid, libc.path, main_arena) == 0);
	children[1] = bt.pid;

	stage = "running the workload";
	CHECK(workload_send(&w, "go") == 0);
	CHECK(workload_expect(&w, "done", line, sizeof(line)) == 0);
	CHECK(workload_expect(&w, "end", line, sizeof(line)) == 0);
	stage = "stopping bpftrace";
	CHECK(bpftrace_stop(&bt, &ind) == 0);
	children[1] = 0;
	stage = "reading the arenas";

	snapshot_unknown(&snap);
	snap.pid = w.pid;
	snap.allocator.kind = HF_ALLOC_GLIBC;
	snap.tracing.since = since;
	err = hf_contention_fill(c, w.pid, &snap, &other);
	CHECK_MSG(err == 0, "hf_contention_fill: %s", strerror(-err));
	CHECK_EQ_U64(snap.nr_arenas, 1); /* MALLOC_ARENA_MAX=1 */
	CHECK(snap.arenas[0].kind == HF_ARENA_MAIN);
	CHECK_EQ_U64(snap.arenas[0].address, main_arena);
	/* The workers are alive, parked on a barrier: all attached to the one arena. */
	CHECK_EQ_U64(snap.arenas[0].threads, 1 + (shared ? THREADS : 0));
	CHECK(lock->acquisitions == HF_UNKNOWN);
	printf("%s: arena contended %" PRIu64 " times, %.6f s blocked, longest %.6f s\n"
	       "bpftrace: %ld calls of the contended path on it, %ld FUTEX_WAITs on it, %.6f s "
	       "blocked\nother private locks: %" PRIu64 " contended\n",
	       shared ? "8 threads" : "1 thread", lock->contended, lock->wait_seconds,
	       lock->max_wait_seconds, ind.calls, ind.sleeps, (double)ind.sleep_us / 1e6,
	       other.count);
	nfind = hf_doctor(&snap, now_unix(), findings, HF_FINDING_COUNT);
	for (size_t i = 0; i < nfind; i++)
		printf("doctor: %s: %s\n", hf_finding_name(findings[i].kind), findings[i].text);

	if (shared) {
		double n = (double)lock->contended, wait = lock->wait_seconds;
		double ref_wait = (double)ind.sleep_us / 1e6;

		/* Clearly non-zero: one thread alone has none (the single test). */
		CHECK_MSG(lock->contended >= 100, "contention clearly non-zero: %.0f", n);
		CHECK_MSG(n >= 0.5 * (double)ind.calls && n <= 1.5 * (double)ind.calls,
			  "%.0f contended vs %ld by bpftrace: not within +-50%%", n, ind.calls);
		CHECK(ind.sleeps > 0);
		CHECK_MSG(wait >= 0.5 * ref_wait && wait <= 1.5 * ref_wait,
			  "%.6f s blocked vs %.6f s by bpftrace: not within +-50%%", wait,
			  ref_wait);
		CHECK(lock->max_wait_seconds > 0 && lock->max_wait_seconds <= lock->wait_seconds);
		CHECK_EQ_U64(nfind, 1);
		CHECK(nfind >= 1 && findings[0].kind == HF_FINDING_ARENA_CONTENTION);
	} else {
		CHECK_EQ_U64(lock->contended, 0);
		CHECK(lock->wait_seconds == 0);
		CHECK_EQ_U64(ind.calls, 0);
		CHECK_EQ_U64(ind.sleeps, 0);
		CHECK_EQ_U64(nfind, 0);
	}
	CHECK_EQ_U64(hf_contention_dropped(c), 0);

	stage = "ending the workload";
	CHECK_EQ_U64(workload_finish(&w), 0);
	children[0] = 0;
	alarm(0);
	CHECK(hf_contention_remove(c, w.pid) == 0);
	CHECK(hf_contention_remove(c, w.pid) == -ENOENT);
	hf_contention_close(c);
	return hf_test_done();
}
