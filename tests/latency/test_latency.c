// SPDX-License-Identifier: MIT
/*
 * Per-call latency, as heapfragd serves it at /api/v1/processes/{pid}/latency
 * and as heapfrag_allocator_call_duration_seconds:
 *
 * every_call  Two threads calling every entry point (tests/workloads/mixed):
 *             in exact mode each timed op's count is exactly that op's call
 *             counter and the workload's own count; its buckets sum to its
 *             count; free is null (it has no return probe).  In passive mode
 *             every op is null.  The Prometheus histogram says the same.
 * contention  tests/contention's arena_workload, 8 threads swapping blocks in
 *             one arena (MALLOC_ARENA_MAX=1), against the same loop on one
 *             thread: the arena-lock waits heapfragd counts (/arenas) show up
 *             as malloc latency: a mean several times the single thread's,
 *             most of it in a few calls that took over 64 us.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup_labels.h"
#include "check.h"
#include "harness.h"

#define THREADS 8
#define OPS     "40000"

static const char *const timed_ops[] = {"malloc", "calloc", "realloc", "memalign"};

static json_t *get_latency(const struct th_daemon *d, pid_t pid)
{
	char path[96];
	long status = 0;
	json_t *doc;

	snprintf(path, sizeof(path), "/api/v1/processes/%d/latency", (int)pid);
	doc = th_get(d, path, &status);
	CHECK_MSG(status == 200 && doc, "GET %s: status %ld", path, status);
	return doc;
}

/* The op's count, after checking that its buckets are consistent with it. */
static uint64_t checked_count(json_t *calls, const char *op)
{
	json_t *o = json_object_get(calls, op), *buckets = json_object_get(o, "buckets"), *b;
	uint64_t sum = 0, count = th_u64(o, "count");
	double le_prev = 0;
	size_t i;

	CHECK_MSG(json_is_object(o), "latency of %s is an object", op);
	CHECK_MSG(json_is_array(buckets) && json_array_size(buckets) == 24,
		  "%s has the 24 documented buckets", op);
	json_array_foreach(buckets, i, b)
	{
		json_t *le = json_object_get(b, "le");

		sum += th_u64(b, "count");
		if (i + 1 < json_array_size(buckets)) {
			CHECK_MSG(json_is_number(le) && json_number_value(le) > le_prev,
				  "%s bucket %zu has a growing bound", op, i);
			le_prev = json_number_value(le);
		} else {
			CHECK_MSG(json_is_null(le), "%s's last bucket is +Inf (null)", op);
		}
	}
	CHECK_MSG(sum == count, "%s: buckets sum to %llu, count %llu", op, (unsigned long long)sum,
		  (unsigned long long)count);
	CHECK_MSG(count == 0 || json_number_value(json_object_get(o, "sum_seconds")) > 0,
		  "%s: timed calls took time", op);
	return count;
}

static bool calls_reached(json_t *doc, void *arg)
{
	json_t *truth = arg;

	return th_u64(doc, "counters.malloc") >= th_u64(truth, "calls.malloc") &&
	       th_u64(doc, "counters.free") >= th_u64(truth, "calls.free") &&
	       th_u64(doc, "counters.memalign") >= th_u64(truth, "calls.memalign");
}

/* The sample value of a Prometheus line starting with prefix, or NAN. */
static double prom_value(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while (p && *p) {
		if (strncmp(p, prefix, n) == 0)
			return strtod(p + n, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NAN;
}

static char *get_metrics(const struct th_daemon *d)
{
	char cmd[128], *text;
	size_t cap = 1 << 22, len = 0, got;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%d/metrics", d->port);
	f = popen(cmd, "r");
	text = malloc(cap + 1);
	if (!f || !text) {
		if (f)
			pclose(f);
		free(text);
		return NULL;
	}
	while ((got = fread(text + len, 1, cap - len, f)) > 0)
		len += got;
	text[len] = '\0';
	pclose(f);
	return text;
}

static void every_call(const char *mode)
{
	const char *dargs[] = {"-i", "0.2", "-m", mode, NULL};
	const char *args[] = {"--seed", "7", NULL};
	bool exact = strcmp(mode, "exact") == 0;
	struct th_workload w;
	struct th_daemon d;
	json_t *truth, *doc, *lat, *calls;
	char line[2400];
	char *metrics;

	if (th_start_traced(&w, "mixed", args, NULL, &d, dargs) != 0) {
		CHECK_MSG(0, "mixed under heapfragd did not start");
		return;
	}
	json_decref(th_wait_doc(&d, w.pid, NULL, NULL, 5));
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	doc = th_wait_doc(&d, w.pid, exact ? calls_reached : NULL, truth, 10);
	/* One more interval, so that /latency and /metrics read the same snapshot. */
	usleep(400 * 1000);
	json_decref(doc);
	doc = th_wait_doc(&d, w.pid, NULL, NULL, 5);
	lat = get_latency(&d, w.pid);
	metrics = get_metrics(&d);
	calls = json_object_get(lat, "calls");
	CHECK(json_is_object(calls));
	CHECK_STR_EQ(json_string_value(json_object_get(lat, "mode")), mode);
	CHECK_MSG(json_is_null(json_object_get(calls, "free")), "free is never timed");
	for (size_t i = 0; i < sizeof(timed_ops) / sizeof(timed_ops[0]); i++) {
		const char *op = timed_ops[i];
		char key[64];
		double prom_count;

		char labels[2048];

		hf_test_cgroup_labels(doc, labels, sizeof(labels));
		snprintf(line, sizeof(line),
			 "heapfrag_allocator_call_duration_seconds_count{pid=\"%d\",comm=\"mixed\""
			 "%s,op=\"%s\"} ",
			 (int)w.pid, labels, op);
		prom_count = metrics ? prom_value(metrics, line) : NAN;
		if (!exact) {
			CHECK_MSG(json_is_null(json_object_get(calls, op)),
				  "passive mode cannot time %s: null", op);
			CHECK_MSG(isnan(prom_count), "passive mode: no %s sample", op);
			continue;
		}
		snprintf(key, sizeof(key), "counters.%s", op);
		uint64_t count = checked_count(calls, op);

		CHECK_EQ_U64(count, th_u64(doc, key));
		snprintf(key, sizeof(key), "calls.%s", op);
		CHECK_EQ_U64(count, th_u64(truth, key));
		CHECK_MSG(prom_count == (double)count, "Prometheus %s count %.0f, JSON %llu", op,
			  prom_count, (unsigned long long)count);
		printf("%s %s: %llu calls, mean %.2f us\n", mode, op, (unsigned long long)count,
		       count ? json_number_value(
				       json_object_get(json_object_get(calls, op), "sum_seconds")) /
				       (double)count * 1e6
			     : 0.0);
	}
	free(metrics);
	json_decref(lat);
	json_decref(doc);
	json_decref(truth);
	th_workload_finish(&w);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

/* arena_workload MODE, its stdin and stdout, talking its one-word protocol. */
struct arena_run {
	pid_t pid;
	int in_fd;
	FILE *out;
};

static int arena_start(struct arena_run *r, const char *mode, const char *threads)
{
	int in[2], out[2];

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	r->pid = fork();
	if (r->pid < 0)
		return -errno;
	if (r->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		setenv("MALLOC_ARENA_MAX", "1", 1);
		execl(th_build_path("tests/arena_workload"), "arena_workload", mode, threads, OPS,
		      (char *)NULL);
		_exit(127);
	}
	th_track(r->pid);
	close(in[0]);
	close(out[1]);
	r->in_fd = in[1];
	r->out = fdopen(out[0], "r");
	return r->out ? 0 : -ENOMEM;
}

/* Reads lines until one starts with word. */
static int arena_expect(struct arena_run *r, const char *word)
{
	char line[4096];

	while (fgets(line, sizeof(line), r->out))
		if (strncmp(line, word, strlen(word)) == 0)
			return 0;
	return -EIO;
}

static void arena_send(struct arena_run *r, const char *word)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%s\n", word);

	if (write(r->in_fd, line, (size_t)n) != n)
		CHECK_MSG(0, "arena_workload's stdin closed");
}

struct contention_run {
	uint64_t mallocs, contended;
	double mean_us, sum_seconds, tail_seconds, wait_seconds;
};

/*
 * At least how long the op's calls that took longer than seconds took
 * together: each bucket whose lower bound (the previous bucket's le) is at
 * least seconds counts its calls at that lower bound.
 */
static double time_slower_than(json_t *op, double seconds)
{
	json_t *buckets = json_object_get(op, "buckets");
	double t = 0, lower;

	for (size_t i = 1; i < json_array_size(buckets); i++) {
		lower = json_number_value(json_object_get(json_array_get(buckets, i - 1), "le"));
		if (lower >= seconds)
			t += lower * (double)th_u64(json_array_get(buckets, i), "count");
	}
	return t;
}

static int contention(const char *mode, struct contention_run *out)
{
	const char *dargs[] = {"-i", "0.2", "-p", NULL, NULL};
	struct arena_run r;
	struct th_daemon d;
	json_t *lat, *doc, *arenas, *malloc_lat;
	char pid_arg[16], path[96];
	long status = 0;

	memset(out, 0, sizeof(*out));
	if (arena_start(&r, mode, strcmp(mode, "shared") == 0 ? "8" : "0") != 0 ||
	    arena_expect(&r, "ready") != 0) {
		CHECK_MSG(0, "arena_workload %s did not start", mode);
		return -1;
	}
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)r.pid);
	dargs[3] = pid_arg;
	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd did not start");
		kill(r.pid, SIGKILL);
		return -1;
	}
	json_decref(th_wait_doc(&d, r.pid, NULL, NULL, 5));
	arena_send(&r, "go");
	CHECK(arena_expect(&r, "done") == 0);
	CHECK(arena_expect(&r, "end") == 0);
	usleep(600 * 1000);
	doc = th_wait_doc(&d, r.pid, NULL, NULL, 5);
	lat = get_latency(&d, r.pid);
	snprintf(path, sizeof(path), "/api/v1/processes/%d/arenas", (int)r.pid);
	arenas = th_get(&d, path, &status);
	malloc_lat = json_object_get(json_object_get(lat, "calls"), "malloc");
	out->mallocs = checked_count(json_object_get(lat, "calls"), "malloc");
	CHECK_EQ_U64(out->mallocs, th_u64(doc, "counters.malloc"));
	out->sum_seconds = json_number_value(json_object_get(malloc_lat, "sum_seconds"));
	out->tail_seconds = time_slower_than(malloc_lat, 64e-6);
	out->mean_us = out->mallocs ? out->sum_seconds / (double)out->mallocs * 1e6 : 0;
	out->contended =
		th_u64(json_array_get(json_object_get(arenas, "arenas"), 0), "lock.contended");
	out->wait_seconds = json_number_value(json_object_get(
		json_object_get(json_array_get(json_object_get(arenas, "arenas"), 0), "lock"),
		"wait_seconds"));
	printf("%s: %llu mallocs, mean %.2f us, %.3f s in all, at least %.3f s in calls over "
	       "64 us; arena lock contended %llu times, %.3f s waited\n",
	       mode, (unsigned long long)out->mallocs, out->mean_us, out->sum_seconds,
	       out->tail_seconds, (unsigned long long)out->contended, out->wait_seconds);
	json_decref(arenas);
	json_decref(lat);
	json_decref(doc);
	arena_send(&r, "exit");
	waitpid(r.pid, NULL, 0);
	th_untrack(r.pid);
	fclose(r.out);
	close(r.in_fd);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	return 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "every_call";
	struct contention_run shared, single;

	th_init("latency", 240);
	if (strcmp(what, "every_call") == 0) {
		every_call("exact");
		every_call("passive");
	} else if (contention("single", &single) == 0 && contention("shared", &shared) == 0) {
		/* The same loop, THREADS times the calls: compare fractions. */
		CHECK(shared.contended >= 100);
		CHECK_EQ_U64(single.contended, 0);
		/*
		 * Waiting shows as a few very slow calls, not as every call a
		 * little slower: the mean grows, and a large part of the time
		 * lies in calls that took over 64 us.
		 */
		CHECK_MSG(shared.mean_us > 3 * single.mean_us,
			  "mean malloc latency %.2f us shared, %.2f us alone", shared.mean_us,
			  single.mean_us);
		CHECK_MSG(shared.tail_seconds >= 0.25 * shared.sum_seconds,
			  "%.3f s of %.3f s in mallocs over 64 us", shared.tail_seconds,
			  shared.sum_seconds);
	}
	return hf_test_done();
}
