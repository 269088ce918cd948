// SPDX-License-Identifier: MIT
/*
 * -e without a race: a process that starts running the watched executable
 * (started by this test, not by heapfragd) is held at exec until its probes
 * are in, so the daemon's account equals the program's own books exactly,
 * constructor allocations included - in every one of 20 runs.  The hold is
 * real (its parent sees the stop and the SIGCONT: WIFCONTINUED) and short.
 *
 * Never left stopped:
 *   - a daemon that cannot answer (frozen with SIGSTOP): the keeper resumes
 *     the process after the gate's timeout;
 *   - a process someone else sent SIGSTOP while it was held stays stopped
 *     (that stop is theirs), and runs once they send SIGCONT;
 *   - a daemon killed with SIGKILL while a process is held: the keeper
 *     resumes it at once, and a later exec is not held at all;
 *   - the daemon and its keeper killed together: the process stays stopped
 *     until the next heapfragd watching the file starts, which resumes it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define RUNS         20
#define BASELINE     5
#define GATE_TIMEOUT 5.0 /* HF_EXEC_GATE_TIMEOUT_MS of daemon/exec_gate.h, in seconds */

struct target {
	pid_t pid;
	int in_fd;
	FILE *out;
	bool stopped_seen;   /* its parent (us) saw it stop */
	bool continued_seen; /* and saw it continued */
};

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *target_path(void)
{
	return th_build_path("tests/tracer_gate_target");
}

/* Starts the target as our own child; HF_GATE_T0_NS is taken just before execve. */
static int target_start(struct target *t, const char *path)
{
	int in[2], out[2];
	struct timespec ts;
	char t0[32];

	memset(t, 0, sizeof(*t));
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	t->pid = fork();
	if (t->pid < 0)
		return -1;
	if (t->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(t0, sizeof(t0), "%llu",
			 (unsigned long long)ts.tv_sec * 1000000000ULL +
				 (unsigned long long)ts.tv_nsec);
		setenv("HF_GATE_T0_NS", t0, 1);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	th_track(t->pid);
	close(in[0]);
	close(out[1]);
	t->in_fd = in[1];
	t->out = fdopen(out[0], "r");
	return t->out ? 0 : -1;
}

/*
 * Watches the target's state changes as its parent for up to seconds, until
 * it is seen continued (true) or exits; a stop alone keeps waiting.
 */
static bool target_watch(struct target *t, double seconds, bool until_stopped)
{
	double deadline = monotonic() + seconds;
	int st;

	while (monotonic() < deadline) {
		pid_t got = waitpid(t->pid, &st, WUNTRACED | WCONTINUED | WNOHANG);

		if (got == t->pid && WIFSTOPPED(st)) {
			t->stopped_seen = true;
			if (until_stopped)
				return true;
		} else if (got == t->pid && WIFCONTINUED(st)) {
			t->continued_seen = true;
			return true;
		} else if (got == t->pid) {
			th_untrack(t->pid);
			t->pid = 0;
			return false;
		}
		usleep(500);
	}
	return false;
}

/* Its state letter in /proc/PID/stat ('T': stopped). */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *rp;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : '?';
}

/* Reads TRUTH, lets it end, reaps it. */
static json_t *target_truth(struct target *t)
{
	char line[1024];
	json_t *truth = NULL;

	while (fgets(line, sizeof(line), t->out)) {
		if (strncmp(line, "TRUTH ", 6) == 0) {
			truth = json_loads(line + 6, 0, NULL);
			break;
		}
	}
	return truth;
}

static void target_finish(struct target *t)
{
	(void)!write(t->in_fd, "\n", 1);
	close(t->in_fd);
	fclose(t->out);
	if (t->pid > 0) {
		waitpid(t->pid, NULL, 0);
		th_untrack(t->pid);
	}
}

static void target_kill(struct target *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		th_untrack(t->pid);
	}
	close(t->in_fd);
	fclose(t->out);
}

static bool calls_reached(json_t *doc, void *arg)
{
	json_t *truth = arg;

	return th_u64(doc, "counters.malloc") >= th_u64(truth, "calls.malloc") &&
	       th_u64(doc, "counters.free") >= th_u64(truth, "calls.free");
}

static bool has_exited(json_t *doc, void *arg)
{
	const char *state = json_string_value(json_object_get(doc, "state"));

	return state && strcmp(state, "exited") == 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The pause each run saw (ms), with nothing holding it: exec and ld.so alone. */
static double baseline_ms(void)
{
	double ms[BASELINE];
	int n = 0;

	for (int i = 0; i < BASELINE; i++) {
		struct target t;
		json_t *truth;

		if (target_start(&t, target_path()) != 0)
			continue;
		truth = target_truth(&t);
		if (truth)
			ms[n++] = (double)th_u64(truth, "pause_ns") / 1e6;
		json_decref(truth);
		target_finish(&t);
	}
	if (!n)
		return -1;
	qsort(ms, (size_t)n, sizeof(ms[0]), cmp_double);
	return ms[n / 2];
}

/* 20 runs against one daemon: every account exact, every run held. */
static void exact_from_the_first_allocation(void)
{
	char link_path[256];
	const char *dargs[] = {"-i", "0.2", "-e", link_path, NULL};
	double pauses[RUNS], base;
	int exact = 0, held = 0, n = 0;
	struct th_daemon d;

	base = baseline_ms();
	/* Watched through a symlink: the gate knows the file, not the name. */
	snprintf(link_path, sizeof(link_path), "/tmp/tracer_exec_gate.%d.link", (int)getpid());
	unlink(link_path);
	if (symlink(target_path(), link_path) != 0) {
		CHECK_MSG(0, "cannot make %s: %s", link_path, strerror(errno));
		return;
	}
	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd -e did not start");
		unlink(link_path);
		return;
	}
	for (int i = 0; i < RUNS; i++) {
		struct target t;
		json_t *truth, *doc;
		bool ok;

		if (target_start(&t, target_path()) != 0) {
			CHECK_MSG(0, "run %d: the target did not start", i);
			continue;
		}
		ok = target_watch(&t, GATE_TIMEOUT + 5, false);
		CHECK_MSG(ok && t.continued_seen, "run %d: process %d was not held and resumed", i,
			  (int)t.pid);
		held += ok && t.continued_seen;
		truth = target_truth(&t);
		CHECK_MSG(truth != NULL, "run %d: no truth", i);
		if (!truth) {
			target_kill(&t);
			continue;
		}
		pauses[n++] = (double)th_u64(truth, "pause_ns") / 1e6;
		doc = th_wait_doc(&d, t.pid, calls_reached, truth, 10);
		ok = doc && th_u64(doc, "counters.malloc") == th_u64(truth, "calls.malloc") &&
		     th_u64(doc, "counters.calloc") == th_u64(truth, "calls.calloc") &&
		     th_u64(doc, "counters.realloc") == th_u64(truth, "calls.realloc") &&
		     th_u64(doc, "counters.free") == th_u64(truth, "calls.free") &&
		     th_u64(doc, "heap.live_allocations") == th_u64(truth, "live_allocations") &&
		     th_u64(doc, "heap.requested_bytes") == th_u64(truth, "requested_bytes");
		CHECK_MSG(
			ok,
			"run %d: heapfragd counted malloc %llu calloc %llu realloc %llu free %llu "
			"live %llu requested %llu; the program %llu %llu %llu %llu %llu %llu",
			i, (unsigned long long)th_u64(doc, "counters.malloc"),
			(unsigned long long)th_u64(doc, "counters.calloc"),
			(unsigned long long)th_u64(doc, "counters.realloc"),
			(unsigned long long)th_u64(doc, "counters.free"),
			(unsigned long long)th_u64(doc, "heap.live_allocations"),
			(unsigned long long)th_u64(doc, "heap.requested_bytes"),
			(unsigned long long)th_u64(truth, "calls.malloc"),
			(unsigned long long)th_u64(truth, "calls.calloc"),
			(unsigned long long)th_u64(truth, "calls.realloc"),
			(unsigned long long)th_u64(truth, "calls.free"),
			(unsigned long long)th_u64(truth, "live_allocations"),
			(unsigned long long)th_u64(truth, "requested_bytes"));
		exact += ok;
		json_decref(doc);
		/* The next run starts once this one's exit is handled (its probes detached). */
		target_finish(&t);
		json_decref(th_wait_doc(&d, t.pid, has_exited, NULL, 10));
		json_decref(truth);
	}
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	unlink(link_path);
	qsort(pauses, (size_t)n, sizeof(pauses[0]), cmp_double);
	printf("exec gate: %d/%d runs exact, %d/%d held and resumed\n", exact, RUNS, held, RUNS);
	if (n)
		printf("exec to first constructor: held median %.1f ms, p90 %.1f ms, max %.1f ms; "
		       "not held median %.1f ms\n",
		       pauses[n / 2], pauses[n * 9 / 10], pauses[n - 1], base);
	CHECK_EQ_U64(exact, RUNS);
	CHECK_EQ_U64(held, RUNS);
}

/*
 * A frozen daemon: one process is resumed by the keeper after the timeout;
 * another, sent SIGSTOP by us while held, stays stopped until our SIGCONT.
 */
static void frozen_daemon(void)
{
	const char *dargs[] = {"-i", "0.2", "-e", target_path(), NULL};
	struct target a, b;
	struct th_daemon d;
	double t0, waited;
	json_t *truth;
	bool ok;

	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd -e did not start");
		return;
	}
	kill(d.pid, SIGSTOP);
	if (target_start(&a, target_path()) != 0 || target_start(&b, target_path()) != 0) {
		CHECK_MSG(0, "the targets did not start");
		kill(d.pid, SIGCONT);
		th_daemon_stop(&d);
		return;
	}
	t0 = monotonic();
	CHECK_MSG(target_watch(&a, 5, true) && a.stopped_seen,
		  "a frozen daemon's gate held nothing");
	CHECK_MSG(target_watch(&b, 5, true) && b.stopped_seen,
		  "a frozen daemon's gate held nothing");
	/* Someone else's stop, while the gate holds it. */
	kill(b.pid, SIGSTOP);

	ok = target_watch(&a, GATE_TIMEOUT + 5, false) && a.continued_seen;
	waited = monotonic() - t0;
	CHECK_MSG(ok, "process %d held by a frozen daemon was never resumed", (int)a.pid);
	CHECK_MSG(waited >= GATE_TIMEOUT - 0.5 && waited < GATE_TIMEOUT + 3,
		  "resumed after %.2f s; the timeout is %.1f s", waited, GATE_TIMEOUT);
	printf("frozen daemon: resumed by the keeper after %.2f s\n", waited);
	truth = target_truth(&a);
	CHECK_MSG(truth != NULL, "the resumed process did not run to its end");
	json_decref(truth);
	target_finish(&a);

	/* Past the timeout too, and still stopped: the keeper left it to its stopper. */
	usleep(500 * 1000);
	CHECK_MSG(proc_state(b.pid) == 'T', "process %d stopped by someone else is in state %c",
		  (int)b.pid, proc_state(b.pid));
	CHECK(!b.continued_seen);
	kill(b.pid, SIGCONT);
	truth = target_truth(&b);
	CHECK_MSG(truth != NULL, "the process did not run once its stopper resumed it");
	json_decref(truth);
	target_finish(&b);

	kill(d.pid, SIGCONT);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

/* SIGKILL while a process is held: resumed at once; later execs are not held. */
static void killed_daemon(void)
{
	const char *dargs[] = {"-i", "0.2", "-e", target_path(), NULL};
	struct target t;
	struct th_daemon d;
	double t0, waited;
	json_t *truth;
	bool ok;

	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd -e did not start");
		return;
	}
	kill(d.pid, SIGSTOP);
	if (target_start(&t, target_path()) != 0) {
		CHECK_MSG(0, "the target did not start");
		kill(d.pid, SIGKILL);
		waitpid(d.pid, NULL, 0);
		th_untrack(d.pid);
		return;
	}
	CHECK_MSG(target_watch(&t, 5, true) && t.stopped_seen, "the gate held nothing");
	t0 = monotonic();
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	th_untrack(d.pid);
	ok = target_watch(&t, GATE_TIMEOUT + 5, false) && t.continued_seen;
	waited = monotonic() - t0;
	CHECK_MSG(ok, "process %d held when heapfragd was killed was never resumed", (int)t.pid);
	/* Well before the timeout: the keeper saw the daemon go. */
	CHECK_MSG(waited < GATE_TIMEOUT - 1, "resumed %.2f s after the SIGKILL", waited);
	printf("killed daemon: resumed %.3f s after SIGKILL\n", waited);
	truth = target_truth(&t);
	CHECK_MSG(truth != NULL, "the resumed process did not run to its end");
	json_decref(truth);
	target_finish(&t);

	/* The gate died with the daemon: a new exec runs straight through. */
	if (target_start(&t, target_path()) == 0) {
		truth = target_truth(&t);
		CHECK_MSG(truth != NULL, "an exec after the daemon's death did not run");
		CHECK_MSG(!target_watch(&t, 0.2, false) && !t.stopped_seen && !t.continued_seen,
			  "an exec after the daemon's death was held");
		json_decref(truth);
		target_finish(&t);
	}
	th_daemon_dump_log(&d);
	unlink(d.log_path);
}

/* The keeper of the daemon: its child named heapfragd-gate, or 0. */
static pid_t keeper_of(pid_t daemon)
{
	char path[300], buf[512], *rp;
	struct dirent *de;
	pid_t found = 0;
	DIR *dir;

	dir = opendir("/proc");
	while (dir && (de = readdir(dir)) && !found) {
		int ppid;
		char state;
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		rp = strrchr(buf, ')');
		if (rp && strstr(buf, "(heapfragd-gate)") &&
		    sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == daemon)
			found = (pid_t)atoi(de->d_name);
	}
	if (dir)
		closedir(dir);
	return found;
}

/*
 * The daemon and its keeper killed together while a process is held: it
 * stays stopped, and the next heapfragd watching the file resumes it.
 */
static void both_killed(void)
{
	const char *dargs[] = {"-i", "0.2", "-e", target_path(), NULL};
	struct th_daemon d;
	struct target t;
	json_t *truth;
	pid_t keeper;

	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd -e did not start");
		return;
	}
	kill(d.pid, SIGSTOP);
	keeper = keeper_of(d.pid);
	CHECK_MSG(keeper > 0, "heapfragd %d has no keeper", (int)d.pid);
	if (target_start(&t, target_path()) != 0) {
		CHECK_MSG(0, "the target did not start");
		kill(d.pid, SIGKILL);
		waitpid(d.pid, NULL, 0);
		th_untrack(d.pid);
		return;
	}
	CHECK_MSG(target_watch(&t, 5, true) && t.stopped_seen, "the gate held nothing");
	if (keeper > 0)
		kill(keeper, SIGKILL);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	th_untrack(d.pid);
	unlink(d.log_path);
	usleep(1000 * 1000);
	CHECK_MSG(proc_state(t.pid) == 'T' && !t.continued_seen,
		  "with no heapfragd and no keeper, who resumed process %d?", (int)t.pid);

	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "the second heapfragd -e did not start");
		target_kill(&t);
		return;
	}
	CHECK_MSG(target_watch(&t, 5, false) && t.continued_seen,
		  "the next heapfragd did not resume process %d left stopped at exec", (int)t.pid);
	truth = target_truth(&t);
	CHECK_MSG(truth != NULL, "the resumed process did not run to its end");
	json_decref(truth);
	target_finish(&t);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

int main(void)
{
	th_init("tracer_exec_gate", 240);
	if (access(target_path(), X_OK) != 0)
		HF_SKIP("%s is not built", target_path());
	exact_from_the_first_allocation();
	frozen_daemon();
	killed_daemon();
	both_killed();
	return hf_test_done();
}
