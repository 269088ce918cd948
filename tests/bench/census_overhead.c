// SPDX-License-Identifier: MIT
/*
 * census_overhead_bench - what the heap census costs the process it walks,
 * and how close its walk comes to the cost of copying the heap at all.
 *
 * Usage: census_overhead_bench [--rounds N] [--seconds S] [--floor-reads N] [BUILD_DIR]
 *
 * The census_busy workload builds a ~400 MB fragmented glibc heap (440,000
 * blocks of 500..1500 bytes written through, 10 % of them freed at random),
 * then, on the go, frees a random live block and mallocs a new one for S
 * seconds (default 14) and reports the pairs it made.  Three conditions,
 * interleaved round by round (each round starting one condition further on)
 * so that the noise of a shared machine falls on all alike:
 *   untraced        nothing attached
 *   census-default  heapfragd -m passive -i 1: the default census budget (2 %
 *                   of one CPU) and interval
 *   census-1s       heapfragd -m passive -i 1 --census-interval 1
 *                   --census-budget 100: a census every second
 *   census-stop     census-default with --census-stop: the target held still
 *                   while its heap is copied, so that a busy heap's walk is
 *                   complete instead of partial
 * Passive mode puts no probe in the target, so what it pays is the census's
 * reading of its memory (and the snapshots' /proc reads).  In the censused
 * conditions the go is given only once heapfragd has taken its first census;
 * the walks during the loop are the difference of
 * heapfrag_census_walks_total across it, and a row whose rounds saw no walk
 * is flagged: a census that did not run cannot pass for a cheap one.  Under
 * the default budget the walk after the first comes when its CPU time allows
 * (the first walk's CPU seconds / 0.02 after it, 8 to 11 s here), so S must
 * be longer than that with room to spare.  One walk in S seconds is more
 * census than the default budget gives a busy heap in the long run (a busy
 * walk reads the heap several times and so is spaced further), so the ratio
 * measured is a lower bound of the steady state's.
 *
 * Second, census time per 100 MB against this machine's floor, a bare copy:
 * in the untraced rounds, before the go, the whole [heap] mapping of the idle
 * target read with process_vm_readv in 8 MiB windows into one buffer, as the
 * census copies it (HF_WALK_WINDOW), N times.  Beside it the census's own
 * duration_seconds over bytes_read: of the first walk of each censused
 * round (the target idle, waiting for the go) and of the last walk that
 * began and ended inside a loop (the target busy).  The first copy of a
 * freshly written heap is some 20 % slower than the later ones, and the
 * floor's median is mostly later ones while the idle census is a first
 * copy: the comparison leans against the census.  Everything runs with the
 * workload on CPU 1 and heapfragd and this program on CPU 0.
 *
 * Targets printed: census-default >= 99 % of untraced; the idle census
 * within 2x the floor.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_child.h"
#include "free_port.h"

#define MAX_ROUNDS 15
#define MAX_FLOOR  10
/* The census copies the target through a window of this size (heap_walk.h). */
#define WINDOW (8u << 20)
#define MB     1e6

enum cond { UNTRACED, CENSUS_DEFAULT, CENSUS_1S, CENSUS_STOP, NR_COND };

static const char *const cond_names[NR_COND] = {"untraced", "census-default", "census-1s",
						"census-stop"};

/* One walk as the process document shows it. */
struct walk {
	bool seen;
	bool partial;
	double at; /* Unix seconds when it ended */
	double seconds;
	uint64_t bytes_read;
	uint64_t retries;
};

struct result {
	bool ok;
	double ops_per_s;
	uint64_t walks;   /* during the loop */
	uint64_t partial; /* ... of which partial */
	struct walk idle; /* the first walk, before the go */
	struct walk busy; /* the last walk inside the loop, if one was */
	int nr_floor;
	double floor_s[MAX_FLOOR];
	uint64_t floor_bytes;
};

static char build_dir[1024];
static uint64_t loop_seconds = 14;
static int floor_reads = 3;
static void *window_buf;

/* The number after "key": in s, or NaN when the key is missing or not a number. */
static double json_number(const char *s, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(s, pat);
	if (!p)
		return NAN;
	p += strlen(pat);
	return (*p >= '0' && *p <= '9') ? strtod(p, NULL) : NAN;
}

/*
 * The latest census in heapfragd's document for pid: false when there is
 * no document; w->seen false while the census is still null.
 */
static bool latest_walk(int port, pid_t pid, struct walk *w, char *why, size_t why_len)
{
	static char buf[1 << 18];
	char path[64];
	const char *c;

	*w = (struct walk){0};
	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)pid);
	if (http_get(port, path, buf, sizeof(buf)) != 200)
		return false;
	c = strstr(buf, "\"census\":");
	if (!c || strncmp(c + strlen("\"census\":"), "null", 4) == 0)
		return true;
	/* The census object's own keys come first, before its arenas. */
	if (strstr(c, "\"state\":\"complete\"") != strstr(c, "\"state\":")) {
		if (strstr(c, "\"state\":\"partial\"") != strstr(c, "\"state\":")) {
			snprintf(why, why_len, "census not complete or partial: %.160s", c);
			return false;
		}
		w->partial = true;
	}
	w->at = json_number(c, "at");
	w->seconds = json_number(c, "duration_seconds");
	w->bytes_read = (uint64_t)json_number(c, "bytes_read");
	w->retries = (uint64_t)json_number(c, "retries");
	w->seen = !isnan(w->at) && !isnan(w->seconds) && w->bytes_read > 0;
	return true;
}

/* heapfrag_census_{walks,partial_walks}_total of pid; 0 before the first walk. */
static bool walk_counts(int port, pid_t pid, uint64_t *walks, uint64_t *partial)
{
	static char buf[1 << 20];
	char pat[96];
	const char *p;

	if (http_get(port, "/metrics", buf, sizeof(buf)) != 200)
		return false;
	snprintf(pat, sizeof(pat), "\nheapfrag_census_walks_total{pid=\"%d\",", (int)pid);
	p = strstr(buf, pat);
	*walks = p && (p = strchr(p, '}')) ? strtoull(p + 1, NULL, 10) : 0;
	snprintf(pat, sizeof(pat), "\nheapfrag_census_partial_walks_total{pid=\"%d\",", (int)pid);
	p = strstr(buf, pat);
	*partial = p && (p = strchr(p, '}')) ? strtoull(p + 1, NULL, 10) : 0;
	return true;
}

/* The [heap] mapping of pid. */
static int heap_mapping(pid_t pid, uint64_t *start, uint64_t *end)
{
	char path[64], line[1024];
	FILE *f;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "[heap]") &&
		    sscanf(line, "%" SCNx64 "-%" SCNx64, start, end) == 2) {
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

/*
 * The floor: [start, start + len) of pid copied window by window into one
 * buffer, as the census copies it, with nothing else done.  Seconds, or a
 * negative number when a read fell short.
 */
static double floor_read(pid_t pid, uint64_t start, uint64_t len)
{
	double t0 = now_s();

	for (uint64_t off = 0; off < len; off += WINDOW) {
		size_t n = len - off < WINDOW ? (size_t)(len - off) : WINDOW;
		struct iovec local = {.iov_base = window_buf, .iov_len = n};
		struct iovec remote = {.iov_base = (void *)(uintptr_t)(start + off), .iov_len = n};

		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)n)
			return -1;
	}
	return now_s() - t0;
}

/* Starts heapfragd for cond on pid and waits for its first census. */
static bool attach(enum cond cond, pid_t pid, struct child *hf, int *port, struct walk *first)
{
	char heapfragd[1200], pid_s[16], listen_s[32], why[256] = "";
	char *argv[16] = {heapfragd, "-l", listen_s, "-p", pid_s, "-m", "passive", "-i", "1"};
	double end = now_s() + 60;
	int n = 9;

	if (cond == CENSUS_1S) {
		argv[n++] = "--census-interval";
		argv[n++] = "1";
		argv[n++] = "--census-budget";
		argv[n++] = "100";
	}
	if (cond == CENSUS_STOP)
		argv[n++] = "--census-stop";
	argv[n] = NULL;
	*port = free_loopback_port();
	snprintf(listen_s, sizeof(listen_s), "127.0.0.1:%d", *port);
	snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
	snprintf(heapfragd, sizeof(heapfragd), "%s/bin/heapfragd", build_dir);
	if (spawn(hf, argv, 0, CHILD_NO_STDOUT | CHILD_NO_STDERR))
		return false;
	while (now_s() < end) {
		if (latest_walk(*port, pid, first, why, sizeof(why)) && first->seen)
			return true;
		if (why[0]) {
			fprintf(stderr, "census_overhead: %s: %s\n", cond_names[cond], why);
			return false;
		}
		if (waitpid(hf->pid, NULL, WNOHANG) == hf->pid) {
			hf->pid = 0;
			return false;
		}
		usleep(50000);
	}
	return false;
}

static struct result run_once(enum cond cond)
{
	struct result r = {0};
	struct child w = {.in = -1}, hf = {.in = -1};
	char busy[1200], seconds_s[32], *line, why[256] = "";
	char *argv[] = {busy, "--seconds", seconds_s, NULL};
	uint64_t walks0 = 0, partial0 = 0, walks1 = 0, partial1 = 0, heap_start = 0, heap_end = 0;
	double go_at, end_at, ns, ops;
	int port = 0;

	snprintf(busy, sizeof(busy), "%s/tests/workloads/census_busy", build_dir);
	snprintf(seconds_s, sizeof(seconds_s), "%" PRIu64, loop_seconds);
	/* The workload on CPU 1, heapfragd and the floor's reads on CPU 0. */
	if (spawn(&w, argv, 1, 0))
		return r;
	if (!read_until(w.out, "READY pid=", 60))
		goto out;
	if (cond == UNTRACED) {
		if (heap_mapping(w.pid, &heap_start, &heap_end))
			goto out;
		r.floor_bytes = heap_end - heap_start;
		for (int i = 0; i < floor_reads; i++) {
			double s = floor_read(w.pid, heap_start, r.floor_bytes);

			if (s > 0)
				r.floor_s[r.nr_floor++] = s;
		}
	} else {
		if (!attach(cond, w.pid, &hf, &port, &r.idle)) {
			fprintf(stderr, "census_overhead: %s: no census of %d\n", cond_names[cond],
				(int)w.pid);
			goto out;
		}
		if (!walk_counts(port, w.pid, &walks0, &partial0))
			goto out;
	}
	go_at = clock_s(CLOCK_REALTIME);
	if (write(w.in, "\n", 1) != 1)
		goto out;
	line = read_until(w.out, "TRUTH ", (double)loop_seconds + 120);
	end_at = clock_s(CLOCK_REALTIME);
	if (!line)
		goto out;
	ns = json_number(line, "phase_ns");
	ops = json_number(line, "ops");
	if (!(ns > 0) || !(ops > 0))
		goto out;
	r.ops_per_s = ops / (ns / 1e9);
	if (cond != UNTRACED) {
		if (!walk_counts(port, w.pid, &walks1, &partial1) ||
		    !latest_walk(port, w.pid, &r.busy, why, sizeof(why)))
			goto out;
		r.walks = walks1 - walks0;
		r.partial = partial1 - partial0;
		/* Only a walk that began and ended inside the loop saw the target busy. */
		if (r.busy.at - r.busy.seconds < go_at || r.busy.at > end_at)
			r.busy.seen = false;
	}
	r.ok = true;
out:
	reap(&w, 0, "census_overhead");
	reap(&hf, SIGINT, "census_overhead");
	return r;
}

/* Sorts v[0..n) and returns its median (NaN for none). */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n ? v[n / 2] : NAN;
}

/* One line of the time-per-100 MB table: ms per 100 MB of each sample. */
static double print_rate(const char *what, double *ms, int n, double mb_read, const char *note,
			 double floor)
{
	double m = median(ms, n);

	if (!n) {
		printf("%-34s %6s\n", what, "none");
		return NAN;
	}
	printf("%-34s %6d %9.1f %8.1f %7.1f-%-7.1f", what, n, mb_read, m, ms[0], ms[n - 1]);
	if (isnan(floor))
		printf(" %8s", "1.00x");
	else
		printf(" %7.2fx", m / floor);
	printf("%s%s\n", note[0] ? "  " : "", note);
	return m;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--rounds N] [--seconds S] [--floor-reads N] [BUILD_DIR]\n",
		prog);
	exit(2);
}

static uint64_t number(const char *prog, const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0)
		usage(prog);
	return v;
}

int main(int argc, char **argv)
{
	static struct result res[NR_COND][MAX_ROUNDS];
	double rates[MAX_ROUNDS], paired[MAX_ROUNDS], med[NR_COND], med_paired[NR_COND];
	double floor_ms[MAX_ROUNDS * MAX_FLOOR];
	double idle_ms[2 * MAX_ROUNDS], busy_ms[2 * MAX_ROUNDS], stop_ms[MAX_ROUNDS];
	double idle_mb = 0, busy_mb = 0, stop_mb = 0, floor_mb = 0, floor_med, idle_med;
	int rounds = 5, done[NR_COND] = {0}, nr_floor = 0, nr_idle = 0, nr_busy = 0;
	int idle_partial = 0, busy_partial = 0, nr_stop = 0, stop_partial = 0;
	const char *dir = getenv("HF_BUILD_DIR");
	bool default_ok, walked_ok = true, census_ok;
	cpu_set_t cpu0;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--rounds") == 0 && a + 1 < argc)
			rounds = (int)number(argv[0], argv[++a]);
		else if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc)
			loop_seconds = number(argv[0], argv[++a]);
		else if (strcmp(argv[a], "--floor-reads") == 0 && a + 1 < argc)
			floor_reads = (int)number(argv[0], argv[++a]);
		else if (argv[a][0] != '-')
			dir = argv[a];
		else
			usage(argv[0]);
	}
	if (rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	if (floor_reads > MAX_FLOOR)
		floor_reads = MAX_FLOOR;
	snprintf(build_dir, sizeof(build_dir), "%s", dir ? dir : "build");
	if (geteuid() != 0) {
		fprintf(stderr, "census_overhead: heapfragd and the floor's reads need root\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	window_buf = malloc(WINDOW);
	if (!window_buf)
		return 1;
	/* This program reads the floor where heapfragd's census thread runs. */
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);

	for (int round = 0; round < rounds; round++) {
		for (int k = 0; k < NR_COND; k++) {
			int c = (round + k) % NR_COND;
			struct result r = run_once((enum cond)c);

			res[c][round] = r;
			if (!r.ok) {
				fprintf(stderr, "round %d %-14s failed\n", round + 1,
					cond_names[c]);
				continue;
			}
			done[c]++;
			fprintf(stderr, "round %d %-14s %10.0f ops/s", round + 1, cond_names[c],
				r.ops_per_s);
			if (c != UNTRACED)
				fprintf(stderr,
					"  walks %" PRIu64 " (%" PRIu64
					" partial), first %.3f s, last %s%.3f s",
					r.walks, r.partial, r.idle.seconds,
					r.busy.seen ? "" : "(not in loop) ", r.busy.seconds);
			fputc('\n', stderr);
		}
	}

	printf("census_busy: ~400 MB fragmented glibc heap, random free + malloc for %" PRIu64
	       " s; median of %d interleaved rounds, workload on CPU 1, heapfragd on CPU 0\n\n",
	       loop_seconds, rounds);
	printf("%-15s %12s %23s %12s %8s %13s %8s\n", "condition", "ops/s", "spread (min-max)",
	       "vs untraced", "paired", "census walks", "partial");
	for (int c = 0; c < NR_COND; c++) {
		uint64_t wmin = UINT64_MAX, wmax = 0, partial = 0;
		char walks[32] = "-", part[16] = "-";
		int n = 0, np = 0;

		for (int i = 0; i < rounds; i++) {
			const struct result *r = &res[c][i];

			if (!r->ok)
				continue;
			rates[n++] = r->ops_per_s;
			wmin = r->walks < wmin ? r->walks : wmin;
			wmax = r->walks > wmax ? r->walks : wmax;
			partial += r->partial;
			/* Against the same round's untraced run: the machine's drifts cancel. */
			if (res[UNTRACED][i].ok)
				paired[np++] = r->ops_per_s / res[UNTRACED][i].ops_per_s;
		}
		med[c] = median(rates, n);
		med_paired[c] = median(paired, np);
		if (!done[c]) {
			printf("%-15s %12s\n", cond_names[c], "failed");
			continue;
		}
		if (c != UNTRACED) {
			snprintf(walks, sizeof(walks), "%" PRIu64 "-%" PRIu64 "/round", wmin, wmax);
			snprintf(part, sizeof(part), "%" PRIu64, partial);
		}
		printf("%-15s %12.0f %11.0f-%-11.0f %11.1f%% %7.1f%% %13s %8s%s\n", cond_names[c],
		       med[c], rates[0], rates[n - 1], 100.0 * med[c] / med[UNTRACED],
		       100.0 * med_paired[c], walks, part,
		       c != UNTRACED && wmin == 0 ? "  FLAGGED: a round saw no census" : "");
		if (c != UNTRACED && wmin == 0)
			walked_ok = false;
	}

	/* Time per 100 MB: each sample's milliseconds over its own bytes. */
	for (int i = 0; i < rounds; i++) {
		const struct result *r = &res[UNTRACED][i];

		for (int k = 0; k < r->nr_floor; k++)
			floor_ms[nr_floor++] =
				r->floor_s[k] * 1e3 / ((double)r->floor_bytes / 100e6);
		if (r->nr_floor)
			floor_mb = (double)r->floor_bytes / MB;
	}
	for (int c = CENSUS_DEFAULT; c < NR_COND; c++) {
		for (int i = 0; i < rounds; i++) {
			const struct walk *idle = &res[c][i].idle, *busy = &res[c][i].busy;

			if (!res[c][i].ok)
				continue;
			/* A held target's walk is told apart below. */
			if (c == CENSUS_STOP) {
				if (busy->seen) {
					stop_ms[nr_stop++] = busy->seconds * 1e3 /
							     ((double)busy->bytes_read / 100e6);
					stop_mb += (double)busy->bytes_read / MB;
					stop_partial += busy->partial;
				}
				continue;
			}
			idle_ms[nr_idle++] =
				idle->seconds * 1e3 / ((double)idle->bytes_read / 100e6);
			idle_mb += (double)idle->bytes_read / MB;
			idle_partial += idle->partial;
			if (!busy->seen)
				continue;
			busy_ms[nr_busy++] =
				busy->seconds * 1e3 / ((double)busy->bytes_read / 100e6);
			busy_mb += (double)busy->bytes_read / MB;
			busy_partial += busy->partial;
		}
	}
	printf("\ncensus time per 100 MB copied, against a bare process_vm_readv of the heap "
	       "in %u MiB windows\n\n",
	       WINDOW >> 20);
	printf("%-34s %6s %9s %8s %15s %8s\n", "", "n", "MB read", "ms/100MB", "spread",
	       "vs floor");
	{
		char note[96];

		floor_med = print_rate("floor: process_vm_readv, idle", floor_ms, nr_floor,
				       floor_mb, "", NAN);
		snprintf(note, sizeof(note), "%d partial", idle_partial);
		idle_med = print_rate("census, target idle (first walk)", idle_ms, nr_idle,
				      nr_idle ? idle_mb / nr_idle : 0, note, floor_med);
		snprintf(note, sizeof(note), "%d partial (each walk's MB read is its retries' sum)",
			 busy_partial);
		print_rate("census, target busy (in the loop)", busy_ms, nr_busy,
			   nr_busy ? busy_mb / nr_busy : 0, note, floor_med);
		snprintf(note, sizeof(note), "%d partial", stop_partial);
		print_rate("census, busy, --census-stop", stop_ms, nr_stop,
			   nr_stop ? stop_mb / nr_stop : 0, note, floor_med);
	}

	default_ok = done[UNTRACED] && done[CENSUS_DEFAULT] && walked_ok &&
		     med[CENSUS_DEFAULT] >= 0.99 * med[UNTRACED];
	census_ok = !isnan(floor_med) && !isnan(idle_med) && idle_med <= 2 * floor_med;
	printf("\ntarget census-default >= 99%% of untraced (with a census in every round): %s\n",
	       default_ok ? "met" : "MISSED");
	printf("target idle census <= 2x the floor per 100 MB: %s\n", census_ok ? "met" : "MISSED");
	free(window_buf);
	for (int c = 0; c < NR_COND; c++)
		if (!done[c])
			return 1;
	return walked_ok ? 0 : 1;
}
