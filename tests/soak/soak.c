// SPDX-License-Identifier: MIT
/*
 * A bounded soak of the real heapfragd: for SECONDS (default 60; `make
 * soak` runs 600), with the daemon watching tests/soak_target with -e in
 * exact mode and censusing every 0.2 s under --census-stop-busy:
 *   - short-lived targets started one after another, six at a time, a
 *     third of them forking a child, one in ten killed with SIGKILL soon
 *     after its exec (held at exec, or just attached);
 *   - busy targets (allocating without pause) killed with SIGKILL after up
 *     to 3 s, each while the census holds it where that can be seen within
 *     half a second (/proc/PID/stat state 't');
 *   - survivors with books, started before the load, resting through it;
 *   - HTTP threads asking /metrics, /api/v1/processes and every
 *     per-process route of live, exited and killed PIDs.
 * Then: the daemon's RSS and open file descriptors against their values
 * after the warm-up (a quarter of the run), within the tolerances below;
 * no target left stopped; only the survivors listed once --retention has
 * passed; every survivor's account equal to its own books; no 5xx and no
 * failed connection.  The figures are printed as a table.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "harness.h"

#define SURVIVORS     4
#define SHORT_AT_ONCE 6
#define BUSY_AT_ONCE  2
#define HTTP_THREADS  4
#define MAX_SHORT     64

/*
 * Tolerances: after the warm-up, open descriptors may grow by at most 8
 * (a connection or two in flight, a census file open at that instant) and
 * RSS by at most 16 MiB or 20% of the warm-up value, whichever is larger
 * (the allocator's own fragmentation and caches in heapfragd; a leak of one
 * process's state per target would exceed it within the run).
 */
#define FD_TOLERANCE        8
#define RSS_TOLERANCE_BYTES (16ULL << 20)
#define RSS_TOLERANCE_SHARE 0.20

static struct th_daemon daemon_;
static atomic_int stop_http;
static atomic_ulong http_requests, http_bad, http_not_found;
static pthread_mutex_t pids_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t recent[64];
static unsigned int nr_recent;

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *target_path(void)
{
	return th_build_path("tests/soak_target");
}

/* A PID for the HTTP threads to ask about: live, exited or killed. */
static void remember_pid(pid_t pid)
{
	pthread_mutex_lock(&pids_lock);
	recent[nr_recent++ % 64] = pid;
	pthread_mutex_unlock(&pids_lock);
}

static pid_t some_pid(unsigned int *seed)
{
	pid_t pid;

	pthread_mutex_lock(&pids_lock);
	pid = nr_recent ? recent[rand_r(seed) % (nr_recent < 64 ? nr_recent : 64)] : 1;
	pthread_mutex_unlock(&pids_lock);
	return pid;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

static void *http_load(void *arg)
{
	static const char *const per_pid[] = {"",        "/heapmap", "/sites",   "/history",
					      "/doctor", "/arenas",  "/latency", "/histogram"};
	unsigned int seed = (unsigned int)(uintptr_t)arg * 7919u + 1;
	CURL *curl = curl_easy_init();
	char url[256];

	if (!curl)
		return NULL;
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	while (!atomic_load(&stop_http)) {
		unsigned int r = (unsigned int)rand_r(&seed) % 10;
		long status = 0;
		CURLcode rc;

		if (r == 0)
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", daemon_.port);
		else if (r == 1)
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes",
				 daemon_.port);
		else
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes/%d%s",
				 daemon_.port, (int)some_pid(&seed), per_pid[r - 2]);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		rc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		atomic_fetch_add(&http_requests, 1);
		/*
		 * 404: the process is gone or was never traced; 409: a route with
		 * nothing to say yet (no sites).  Anything else but 200 is wrong.
		 */
		if (rc != CURLE_OK || (status != 200 && status != 404 && status != 409)) {
			if (atomic_fetch_add(&http_bad, 1) < 5)
				fprintf(stderr, "GET %s: %s, status %ld\n", url,
					curl_easy_strerror(rc), status);
		}
		if (status == 404)
			atomic_fetch_add(&http_not_found, 1);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

/* State letter of /proc/PID/stat, or 0 when gone. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	return close_paren && close_paren[1] == ' ' ? close_paren[2] : 0;
}

struct usage {
	uint64_t rss;
	int fds;
};

static struct usage daemon_usage(void)
{
	struct usage u = {0, 0};
	char path[64], line[256];
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_.pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			u.rss = strtoull(line + 6, NULL, 10) * 1024;
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_.pid);
	d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));)
		u.fds += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return u;
}

static pid_t spawn(const char *mode, unsigned int seed, int *in_fd, FILE **out)
{
	char seed_arg[16];
	int in[2] = {-1, -1}, outp[2] = {-1, -1};
	pid_t pid;

	snprintf(seed_arg, sizeof(seed_arg), "%u", seed);
	if (in_fd && (pipe2(in, O_CLOEXEC) || pipe2(outp, O_CLOEXEC)))
		return -1;
	pid = fork();
	if (pid == 0) {
		if (in_fd) {
			dup2(in[0], 0);
			dup2(outp[1], 1);
		} else {
			int null = open("/dev/null", O_RDWR);

			dup2(null, 0);
			dup2(null, 1);
		}
		execl(target_path(), target_path(), "--mode", mode, "--seed", seed_arg,
		      (char *)NULL);
		_exit(127);
	}
	if (in_fd) {
		close(in[0]);
		close(outp[1]);
		*in_fd = in[1];
		*out = fdopen(outp[0], "r");
	}
	if (pid > 0)
		remember_pid(pid);
	return pid;
}

struct survivor {
	pid_t pid;
	int in_fd;
	FILE *out;
	uint64_t base_live, base_requested, base_allocated;
	json_t *truth;
};

static json_t *doc_of(pid_t pid)
{
	char path[64];
	long status;
	json_t *doc;

	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)pid);
	doc = th_get(&daemon_, path, &status);
	if (status != 200) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* A survivor: traced from its exec (-e), its baseline, its phase, its truth. */
static int survivor_start(struct survivor *s, unsigned int seed)
{
	char line[128];
	int ready_pid = 0;
	json_t *doc;

	memset(s, 0, sizeof(*s));
	s->pid = spawn("2", seed, &s->in_fd, &s->out);
	if (s->pid <= 0)
		return -1;
	th_track(s->pid);
	if (!fgets(line, sizeof(line), s->out) || sscanf(line, "READY pid=%d", &ready_pid) != 1 ||
	    ready_pid != s->pid)
		return -1;
	doc = th_wait_doc(&daemon_, s->pid, NULL, NULL, 10);
	if (!doc)
		return -1;
	/* What its start-up allocated (the dynamic linker, libc), before the phase. */
	s->base_live = th_u64(doc, "heap.live_allocations");
	s->base_requested = th_u64(doc, "heap.requested_bytes");
	s->base_allocated = th_u64(doc, "heap.allocated_bytes");
	json_decref(doc);
	if (write(s->in_fd, "go\n", 3) != 3)
		return -1;
	s->truth = th_workload_truth(&(struct th_workload){.pid = s->pid, .out = s->out});
	return s->truth ? 0 : -1;
}

/*
 * The survivor's account since its baseline equals its books (exact mode),
 * and its census equals glibc's own view (both modes).
 */
static void survivor_check(struct survivor *s, bool exact)
{
	json_t *doc = doc_of(s->pid), *c = json_object_get(doc, "census");
	json_t *mi = json_object_get(s->truth, "mallinfo2");

	CHECK_MSG(doc != NULL, "survivor %d is not listed", (int)s->pid);
	if (!doc)
		return;
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "state")), "running");
	if (exact) {
		CHECK_EQ_U64(th_u64(doc, "heap.live_allocations") - s->base_live,
			     th_u64(s->truth, "live_allocations"));
		CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes") - s->base_requested,
			     th_u64(s->truth, "requested_bytes"));
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes") - s->base_allocated,
			     th_u64(s->truth, "chunk_bytes"));
	}
	CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
	/* The census against glibc's own mallinfo2() of the resting heap (one arena). */
	CHECK_STR_EQ(json_string_value(json_object_get(c, "state")), "complete");
	CHECK_EQ_U64(th_u64(c, "free.bytes") - th_u64(c, "free.tcache.bytes"),
		     th_u64(mi, "fordblks"));
	CHECK_EQ_U64(th_u64(c, "in_use.bytes") + th_u64(c, "free.tcache.bytes"),
		     th_u64(mi, "uordblks"));
	CHECK_EQ_U64(th_u64(c, "mmapped.bytes"), th_u64(mi, "hblkhd"));
	CHECK(th_u64(c, "in_use.bytes") >= th_u64(s->truth, "chunk_bytes"));
	printf("survivor %d: live %llu requested %llu chunk bytes %llu (its books), census in use "
	       "%llu + cached %llu = mallinfo2 uordblks %llu\n",
	       (int)s->pid, (unsigned long long)th_u64(s->truth, "live_allocations"),
	       (unsigned long long)th_u64(s->truth, "requested_bytes"),
	       (unsigned long long)th_u64(s->truth, "chunk_bytes"),
	       (unsigned long long)th_u64(c, "in_use.bytes"),
	       (unsigned long long)th_u64(c, "free.tcache.bytes"),
	       (unsigned long long)th_u64(mi, "uordblks"));
	json_decref(doc);
}

/* Every process on the machine running the target: none may be stopped. */
static int check_none_stopped(const struct survivor *sv)
{
	char path[64], exe[PATH_MAX];
	int running = 0;
	DIR *d = opendir("/proc");

	for (struct dirent *e; d && (e = readdir(d));) {
		pid_t pid;
		ssize_t n;
		char st;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)atoi(e->d_name);
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n <= 0)
			continue;
		exe[n] = '\0';
		if (!strstr(exe, "/soak_target"))
			continue;
		st = proc_state(pid);
		running++;
		CHECK_MSG(st != 'T' && st != 't', "target %d is left stopped (state %c)", (int)pid,
			  st);
		/* Only the survivors are left. */
		{
			bool ours = false;

			for (int i = 0; i < SURVIVORS; i++)
				ours |= sv[i].pid == pid;
			CHECK_MSG(ours, "target %d (%s) outlived the soak", (int)pid, exe);
		}
	}
	if (d)
		closedir(d);
	return running;
}

/* Once --retention passed: only the survivors listed. */
static void check_registry(const struct survivor *sv)
{
	long status;
	json_t *list = th_get(&daemon_, "/api/v1/processes", &status);
	json_t *procs = json_object_get(list, "processes");

	CHECK_MSG(json_array_size(procs) == SURVIVORS, "%zu processes listed, %d survivors",
		  json_array_size(procs), SURVIVORS);
	for (size_t i = 0; i < json_array_size(procs); i++) {
		pid_t pid =
			(pid_t)json_integer_value(json_object_get(json_array_get(procs, i), "pid"));
		bool ours = false;

		for (int k = 0; k < SURVIVORS; k++)
			ours |= sv[k].pid == pid;
		CHECK_MSG(ours, "process %d is still listed after it ended", (int)pid);
	}
	json_decref(list);
}

/* Lines of the daemon's log holding needle. */
static int log_count(const char *needle)
{
	char line[2048];
	int n = 0;
	FILE *f = fopen(daemon_.log_path, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/*
 * Waits up to 5 s for a child that ended or was killed.  A target killed
 * while the census held it is a zombie its parent cannot reap until the
 * tracer (heapfragd) has: this is how a parent notices that it did not.
 */
static bool reap(pid_t pid)
{
	double until = monotonic() + 5;

	while (monotonic() < until) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		usleep(2000);
	}
	fprintf(stderr, "target %d (state %c) was not reaped within 5 s\n", (int)pid,
		proc_state(pid));
	return false;
}

struct busy {
	pid_t pid;
	double kill_at;
};

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 60;
	const char *mode = argc > 2 ? argv[2] : "passive";
	bool exact = strcmp(mode, "exact") == 0;
	const char *dargs[] = {"-m",
			       mode,
			       "-e",
			       target_path(),
			       "-i",
			       "0.5",
			       "--retention",
			       "2",
			       "--census-interval",
			       "0.2",
			       "--census-budget",
			       "50",
			       "--census-stop-busy",
			       "--history",
			       "60",
			       NULL};
	struct survivor sv[SURVIVORS];
	pid_t shorts[MAX_SHORT] = {0};
	struct busy busy[BUSY_AT_ONCE] = {{0, 0}};
	pthread_t http[HTTP_THREADS];
	struct usage warm = {0, 0}, end, peak = {0, 0};
	unsigned long started_short = 0, started_busy = 0, killed_short = 0, killed_busy = 0;
	unsigned long killed_held = 0, exited = 0, unreaped = 0;
	unsigned int seed = 1;
	double t0, deadline, warm_at, next_sample = 0, next_spawn = 0;
	/*
	 * Exact mode attaches about twenty uprobes to each new process and must
	 * detach them when it ends, at ~100 ms a probe in the kernel: its pace
	 * is about one process every 3 s here (README, "Known limits").
	 * Faster, the detach queue and with it the open descriptors grow
	 * without bound.
	 */
	double spawn_gap = exact ? 4 : 0, drain_start, drained;
	bool warmed = false;
	int left, traced;

	if (seconds < 10)
		seconds = 10;
	th_init("soak", (unsigned int)seconds + 300);
	if (access(target_path(), X_OK) != 0)
		HF_SKIP("%s is not built", target_path());
	if (th_daemon_start(&daemon_, dargs) != 0) {
		CHECK_MSG(0, "heapfragd did not start");
		return hf_test_done();
	}
	for (int i = 0; i < SURVIVORS; i++) {
		CHECK_MSG(survivor_start(&sv[i], 100 + (unsigned int)i) == 0,
			  "survivor %d did not start", i);
	}
	for (int i = 0; i < HTTP_THREADS; i++)
		pthread_create(&http[i], NULL, http_load, (void *)(uintptr_t)i);

	t0 = monotonic();
	deadline = t0 + seconds;
	warm_at = t0 + seconds / 4;
	while (monotonic() < deadline) {
		double now = monotonic();
		/* Reap the short targets that ended (they end by themselves). */
		for (int i = 0; i < MAX_SHORT; i++) {
			if (shorts[i] && waitpid(shorts[i], NULL, WNOHANG) == shorts[i]) {
				shorts[i] = 0;
				exited++;
			}
		}
		for (int i = 0, alive = 0; i < MAX_SHORT && alive < SHORT_AT_ONCE; i++) {
			if (shorts[i]) {
				alive++;
				continue;
			}
			if (now < next_spawn || (exact && (started_short + started_busy) % 3 == 2))
				break;
			next_spawn = now + spawn_gap;
			shorts[i] = spawn("0", seed++, NULL, NULL);
			if (shorts[i] <= 0) {
				shorts[i] = 0;
				continue;
			}
			started_short++;
			alive++;
			/* One in ten killed at once: held at exec, or just attached. */
			if (seed % 10 == 0) {
				usleep((useconds_t)(rand_r(&seed) % 50) * 1000);
				kill(shorts[i], SIGKILL);
				killed_short++;
			}
		}
		for (int i = 0; i < BUSY_AT_ONCE; i++) {
			if (!busy[i].pid) {
				/* Paced, every third new target is a busy one. */
				if (now < next_spawn ||
				    (exact && (started_short + started_busy) % 3 != 2))
					continue;
				next_spawn = now + spawn_gap;
				busy[i].pid = spawn("1", seed++, NULL, NULL);
				busy[i].kill_at = now + 0.5 + (rand_r(&seed) % 2500) / 1000.0;
				if (busy[i].pid > 0) {
					th_track(busy[i].pid);
					started_busy++;
				} else {
					busy[i].pid = 0;
				}
			} else if (now >= busy[i].kill_at) {
				/* Mid-census where it can be caught: held by the census's ptrace
				 * stop. */
				double until = monotonic() + 0.5;
				char st;

				while ((st = proc_state(busy[i].pid)) != 't' && st &&
				       monotonic() < until)
					usleep(1000);
				killed_held += st == 't';
				kill(busy[i].pid, SIGKILL);
				unreaped += !reap(busy[i].pid);
				th_untrack(busy[i].pid);
				killed_busy++;
				exited++;
				busy[i].pid = 0;
			}
		}
		if (!warmed && now >= warm_at) {
			warm = daemon_usage();
			warmed = true;
		}
		if (now >= next_sample) {
			struct usage u = daemon_usage();

			peak.rss = u.rss > peak.rss ? u.rss : peak.rss;
			peak.fds = u.fds > peak.fds ? u.fds : peak.fds;
			next_sample = now + 1;
		}
		usleep(10 * 1000);
	}

	/* The load ends: busy targets killed, short ones let finish. */
	for (int i = 0; i < BUSY_AT_ONCE; i++) {
		if (busy[i].pid) {
			kill(busy[i].pid, SIGKILL);
			unreaped += !reap(busy[i].pid);
			th_untrack(busy[i].pid);
			killed_busy++;
			exited++;
		}
	}
	for (int i = 0; i < MAX_SHORT; i++) {
		if (shorts[i] > 0) {
			unreaped += !reap(shorts[i]);
			exited++;
		}
	}
	atomic_store(&stop_http, 1);
	for (int i = 0; i < HTTP_THREADS; i++)
		pthread_join(http[i], NULL);
	/* --retention (2 s) and a few snapshots, so the ended ones are forgotten. */
	sleep(5);
	/*
	 * The probes of ended processes are detached by a reaper thread, slowly
	 * in exact mode: wait for it (up to 180 s), and say how long it took.
	 */
	drain_start = monotonic();
	do {
		end = daemon_usage();
		if (end.fds <= warm.fds + FD_TOLERANCE)
			break;
		sleep(1);
	} while (monotonic() - drain_start < 180);
	drained = monotonic() - drain_start;

	left = check_none_stopped(sv);
	CHECK_EQ_U64(left, SURVIVORS);
	check_registry(sv);
	for (int i = 0; i < SURVIVORS; i++)
		if (sv[i].truth)
			survivor_check(&sv[i], exact);
	traced = log_count("tracing process");

	printf("\nsoak: %.0f s, heapfragd -m %s -e soak_target, census every 0.2 s with "
	       "--census-stop-busy\n\n",
	       seconds, mode);
	printf("| figure | value |\n|---|---|\n");
	printf("| short-lived targets started (a third fork a child) | %lu |\n", started_short);
	printf("| ... killed with SIGKILL right after exec | %lu |\n", killed_short);
	printf("| busy targets killed with SIGKILL | %lu (%lu while held by the census) |\n",
	       killed_busy, killed_held);
	printf("| processes heapfragd traced (forks included) | %d |\n", traced);
	printf("| HTTP requests served | %lu (%lu answered 404: gone) |\n",
	       (unsigned long)atomic_load(&http_requests),
	       (unsigned long)atomic_load(&http_not_found));
	printf("| heapfragd RSS after warm-up / at the end / peak | %.1f / %.1f / %.1f MiB |\n",
	       warm.rss / 1048576.0, end.rss / 1048576.0, peak.rss / 1048576.0);
	printf("| heapfragd open fds after warm-up / at the end / peak | %d / %d / %d |\n",
	       warm.fds, end.fds, peak.fds);
	printf("| targets ended (exited or killed) | %lu |\n", exited);
	printf("| targets left stopped | 0 of %d alive |\n", left);
	printf("| time for the ended processes' probes to be detached after the load | %.0f s "
	       "|\n\n",
	       drained);

	CHECK_MSG(unreaped == 0, "%lu ended targets could not be reaped by their parent", unreaped);
	CHECK_MSG(atomic_load(&http_bad) == 0, "%lu requests failed or answered 5xx",
		  (unsigned long)atomic_load(&http_bad));
	CHECK(atomic_load(&http_requests) > 100);
	/* Hundreds: passive mode keeps up with 26 new targets a second here. */
	CHECK_MSG(started_short >= (unsigned long)(seconds * (exact ? 0.1 : 3)),
		  "only %lu short-lived targets in %.0f s", started_short, seconds);
	CHECK(killed_busy >= (unsigned long)(seconds / (exact ? 30 : 12)));
	CHECK_MSG(warm.fds > 0 && end.fds <= warm.fds + FD_TOLERANCE,
		  "open fds grew from %d to %d (tolerance %d)", warm.fds, end.fds, FD_TOLERANCE);
	{
		uint64_t tol = (uint64_t)(warm.rss * RSS_TOLERANCE_SHARE);

		if (tol < RSS_TOLERANCE_BYTES)
			tol = RSS_TOLERANCE_BYTES;
		CHECK_MSG(warm.rss > 0 && end.rss <= warm.rss + tol,
			  "RSS grew from %llu to %llu (tolerance %llu)",
			  (unsigned long long)warm.rss, (unsigned long long)end.rss,
			  (unsigned long long)tol);
	}
	if (hf_checks_failed)
		th_daemon_dump_log(&daemon_);
	for (int i = 0; i < SURVIVORS; i++) {
		if (sv[i].pid <= 0)
			continue;
		close(sv[i].in_fd);
		fclose(sv[i].out);
		waitpid(sv[i].pid, NULL, 0);
		th_untrack(sv[i].pid);
		json_decref(sv[i].truth);
	}
	CHECK_EQ_U64(th_daemon_stop(&daemon_), 0);
	return hf_test_done();
}
