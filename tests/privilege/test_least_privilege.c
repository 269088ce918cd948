// SPDX-License-Identifier: MIT
/*
 * test_least_privilege.c - heapfragd as the user nobody, holding only the
 * capabilities daemon/caps.c lists, given as systemd's AmbientCapabilities=
 * gives them (setpriv --ambient-caps, with the bounding set cut to the
 * same): in exact mode it counts every malloc of a root-owned workload, and
 * a new process of a watched executable, started in a session of its own,
 * is held at exec, traced and resumed; in passive mode, with the smaller
 * set, it reads the workload's heap as /proc says it is and takes a
 * complete census; with file capabilities on its binary and no_new_privs,
 * as the DaemonSet's image runs it, it counts again.  With one capability
 * fewer it refuses to start with one sentence naming it.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "web_harness.h"

#define N_ALLOCS 4000
#define NOBODY   65534

#define EXACT_CAPS   "+bpf,+perfmon,+sys_ptrace,+sys_admin,+dac_override,+kill"
#define PASSIVE_CAPS "+bpf,+perfmon,+sys_ptrace,+dac_read_search"

static char heapfragd[600], heapfragd_fcaps[600], workload[1024];
static int port;

/* The capability bits of names like EXACT_CAPS (those this test uses). */
static unsigned long long mask_of(const char *caps)
{
	static const struct {
		const char *name;
		int bit;
	} known[] = {{"bpf", 39},       {"perfmon", 38},     {"sys_ptrace", 19},
		     {"sys_admin", 21}, {"dac_override", 1}, {"dac_read_search", 2},
		     {"kill", 5}};
	unsigned long long m = 0;
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", caps);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(t + 1, known[i].name) == 0)
				m |= 1ULL << known[i].bit;
	return m;
}

/*
 * heapfragd as nobody with exactly caps: ambient, inheritable and bounding,
 * as systemd's AmbientCapabilities= gives them; or, with file_caps, only
 * the bounding set, no_new_privs and heapfragd_fcaps's file capabilities,
 * as a container runtime runs the DaemonSet's image.
 */
static pid_t start_as(const char *caps, bool file_caps, char *const args[], const char *log,
		      bool wait)
{
	char inh[300], amb[300], bnd[300], listen[64], url[128];
	char *argv[64] = {
		"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", inh, bnd};
	int argc = 6;
	pid_t pid;

	snprintf(inh, sizeof(inh), "--inh-caps=-all%s%s", file_caps ? "" : ",",
		 file_caps ? "" : caps);
	snprintf(amb, sizeof(amb), "--ambient-caps=-all,%s", caps);
	snprintf(bnd, sizeof(bnd), "--bounding-set=-all,%s", caps);
	argv[argc++] = file_caps ? "--no-new-privs" : amb;
	argv[argc++] = "--";
	argv[argc++] = file_caps ? heapfragd_fcaps : heapfragd;
	argv[argc++] = "-l";
	argv[argc++] = listen;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	for (int i = 0; args[i] && argc < 62; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	pid = harness_spawn(argv, log, NULL);
	if (!wait || pid <= 0)
		return pid;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
	if (!http_wait_status(url, 200, 30)) {
		harness_stop(pid);
		return 0;
	}
	return pid;
}

static pid_t start_confined(const char *caps, char *const args[], const char *log, bool wait)
{
	return start_as(caps, false, args, log, wait);
}

/* The "Uid:" and "CapEff:" lines of /proc/PID/status. */
static void read_status(pid_t pid, long *uid, unsigned long long *eff)
{
	char path[64], line[256];
	FILE *f;

	*uid = -1;
	*eff = ~0ULL;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "Uid: %ld", uid);
		sscanf(line, "CapEff: %llx", eff);
	}
	if (f)
		fclose(f);
}

static void check_confined(pid_t d, const char *caps)
{
	unsigned long long eff;
	long uid;

	read_status(d, &uid, &eff);
	CHECK_MSG(uid == NOBODY, "heapfragd runs as uid %ld", uid);
	CHECK_MSG(eff == mask_of(caps), "heapfragd's effective set is %llx, not %llx (%s)", eff,
		  mask_of(caps), caps);
}

static json_t *doc_of(pid_t pid)
{
	char url[128];
	struct http_reply r;
	json_t *j;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes/%d", port, (int)pid);
	r = http_get(url);
	j = r.status == 200 ? http_json(&r) : NULL;
	http_free(&r);
	return j;
}

static json_int_t int_at(pid_t pid, const char *path)
{
	json_t *j = doc_of(pid);
	json_int_t v =
		json_is_integer(json_at(j, path)) ? json_integer_value(json_at(j, path)) : -1;

	json_decref(j);
	return v;
}

/* Waits until path reads want (the daemon's snapshot catches up); the last value. */
static json_int_t wait_for(pid_t pid, const char *path, json_int_t want, double seconds)
{
	json_int_t v = -1;

	for (double end = harness_now() + seconds; harness_now() < end; usleep(300 * 1000)) {
		v = int_at(pid, path);
		if (v == want)
			break;
	}
	return v;
}

static long long requested_sum(void)
{
	long long sum = 0;

	for (int i = 0; i < N_ALLOCS; i++)
		sum += 100 + i % 64;
	return sum;
}

/* The plateau workload as root, in a session of its own; stdout a pipe. */
static pid_t spawn_workload(bool own_session, int *out_fd)
{
	char count[16];
	char *argv[] = {workload, "plateau", count, NULL};
	int p[2];
	pid_t pid;

	snprintf(count, sizeof(count), "%d", N_ALLOCS);
	if (!own_session)
		return harness_spawn(argv, NULL, out_fd);
	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		setsid();
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

static void run_plateau(pid_t w, int out_fd)
{
	kill(w, SIGUSR1);
	CHECK_MSG(harness_wait_line(out_fd, "done", 20), "workload %d did not finish", (int)w);
}

static void test_exact_mode_as_nobody(const char *dir)
{
	char log[600], pid_arg[16], exe_arg[1100];
	char *args[] = {"-p", pid_arg, "-e", exe_arg, NULL};
	int out1 = -1, out2 = -1;
	json_int_t v;
	pid_t w1, w2, d;
	json_t *j;

	snprintf(log, sizeof(log), "%s/exact.log", dir);
	snprintf(exe_arg, sizeof(exe_arg), "%s", workload);
	w1 = spawn_workload(false, &out1);
	CHECK(harness_wait_line(out1, "ready", 10));
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w1);
	d = start_confined(EXACT_CAPS, args, log, true);
	CHECK_MSG(d > 0, "heapfragd as nobody (exact) did not start; see %s", log);
	if (d <= 0)
		goto out;
	check_confined(d, EXACT_CAPS);
	run_plateau(w1, out1);
	v = wait_for(w1, "counters.malloc", N_ALLOCS, 20);
	CHECK_MSG(v == N_ALLOCS, "exact as nobody: malloc calls %lld, the workload made %d",
		  (long long)v, N_ALLOCS);
	v = int_at(w1, "heap.requested_bytes");
	CHECK_MSG(v == requested_sum(), "exact as nobody: requested %lld, the workload asked %lld",
		  (long long)v, requested_sum());

	/* Held at exec, traced, and resumed across sessions: CAP_KILL at work. */
	w2 = spawn_workload(true, &out2);
	CHECK_MSG(harness_wait_line(out2, "ready", 20),
		  "a watched process started in its own session was not resumed (see %s)", log);
	j = doc_of(w2);
	CHECK_MSG(j && !strcmp(json_string_value(json_object_get(j, "mode")) ?: "", "exact"),
		  "the watched process %d is not traced in exact mode", (int)w2);
	json_decref(j);
	run_plateau(w2, out2);
	v = wait_for(w2, "counters.malloc", N_ALLOCS, 20);
	CHECK_MSG(v == N_ALLOCS, "the watched process: malloc calls %lld, it made %d", (long long)v,
		  N_ALLOCS);
	kill(w2, SIGKILL);
	waitpid(w2, NULL, 0);
	close(out2);
	harness_stop(d);
	if (hf_checks_failed)
		harness_show_log(log);
out:
	harness_stop(w1);
	close(out1);
}

/* The DaemonSet's way: file capabilities on the binary, no_new_privs, no ambient set. */
static void test_exact_mode_with_file_capabilities(const char *dir)
{
	char log[600], pid_arg[16], cmd[2200];
	char *args[] = {"-p", pid_arg, NULL};
	int out = -1;
	json_int_t v;
	pid_t w, d;

	snprintf(log, sizeof(log), "%s/fcaps.log", dir);
	snprintf(heapfragd_fcaps, sizeof(heapfragd_fcaps), "%s/heapfragd-fcaps", dir);
	snprintf(cmd, sizeof(cmd),
		 "install -m 0755 '%s' '%s' && setcap "
		 "cap_bpf,cap_perfmon,cap_sys_ptrace,cap_sys_admin,cap_dac_override,cap_kill=ep "
		 "'%s'",
		 heapfragd, heapfragd_fcaps, heapfragd_fcaps);
	CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
	w = spawn_workload(false, &out);
	CHECK(harness_wait_line(out, "ready", 10));
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w);
	d = start_as(EXACT_CAPS, true, args, log, true);
	CHECK_MSG(d > 0, "heapfragd with file capabilities did not start; see %s", log);
	if (d <= 0)
		goto out;
	check_confined(d, EXACT_CAPS);
	run_plateau(w, out);
	v = wait_for(w, "counters.malloc", N_ALLOCS, 20);
	CHECK_MSG(v == N_ALLOCS, "file capabilities: malloc calls %lld, the workload made %d",
		  (long long)v, N_ALLOCS);
	harness_stop(d);
	if (hf_checks_failed)
		harness_show_log(log);
out:
	harness_stop(w);
	close(out);
}

/* The size of the [heap] mapping of pid, from /proc/PID/maps. */
static long long brk_heap_bytes(pid_t pid)
{
	char path[64], line[512];
	unsigned long long lo, hi;
	long long bytes = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[heap]") && sscanf(line, "%llx-%llx", &lo, &hi) == 2)
			bytes = (long long)(hi - lo);
	if (f)
		fclose(f);
	return bytes;
}

static void test_passive_mode_as_nobody(const char *dir)
{
	char log[600], pid_arg[16];
	char *args[] = {"-m", "passive", "-p", pid_arg, NULL};
	int out = -1;
	json_int_t v = -1;
	const char *census = "";
	pid_t w, d;
	json_t *j = NULL;

	snprintf(log, sizeof(log), "%s/passive.log", dir);
	w = spawn_workload(false, &out);
	CHECK(harness_wait_line(out, "ready", 10));
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w);
	d = start_confined(PASSIVE_CAPS, args, log, true);
	CHECK_MSG(d > 0, "heapfragd as nobody (passive) did not start; see %s", log);
	if (d <= 0)
		goto out;
	check_confined(d, PASSIVE_CAPS);
	run_plateau(w, out);
	/* The workload is idle now: its brk heap holds still. */
	v = wait_for(w, "heap.mapped_bytes.brk", brk_heap_bytes(w), 20);
	CHECK_MSG(v == brk_heap_bytes(w) && v > 0,
		  "passive as nobody: brk bytes %lld, maps say %lld", (long long)v,
		  brk_heap_bytes(w));
	CHECK_MSG(int_at(w, "counters.brk") > 0, "passive as nobody: no brk call was counted");
	for (double end = harness_now() + 20; harness_now() < end; usleep(300 * 1000)) {
		json_decref(j);
		j = doc_of(w);
		census = json_string_value(json_at(j, "census.state")) ?: "";
		if (!strcmp(census, "complete"))
			break;
	}
	CHECK_MSG(!strcmp(census, "complete"), "passive as nobody: the census is \"%s\"", census);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "mode")) ?: "", "passive"),
		  "the workload is not traced in passive mode");
	json_decref(j);
	harness_stop(d);
	if (hf_checks_failed)
		harness_show_log(log);
out:
	harness_stop(w);
	close(out);
}

/* Each capability taken away: status 2 and one line naming it. */
static void test_a_missing_capability_is_named(const char *dir)
{
	static const struct {
		const char *caps;
		const char *mode;
		const char *name;
	} cases[] = {
		{"+perfmon,+sys_ptrace,+dac_read_search", "passive", "CAP_BPF"},
		{"+bpf,+sys_ptrace,+dac_read_search", "passive", "CAP_PERFMON"},
		{"+bpf,+perfmon,+dac_read_search", "passive", "CAP_SYS_PTRACE"},
		{"+bpf,+perfmon,+sys_ptrace", "passive", "CAP_DAC_READ_SEARCH"},
		{"+bpf,+perfmon,+sys_ptrace,+dac_override,+kill", "exact", "CAP_SYS_ADMIN"},
		{"+bpf,+perfmon,+sys_ptrace,+sys_admin,+kill", "exact", "CAP_DAC_OVERRIDE"},
		{"+bpf,+perfmon,+sys_ptrace,+sys_admin,+dac_override", "exact", "CAP_KILL"},
	};
	char log[600], want[64], text[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *args[] = {"-m", (char *)cases[i].mode, "-e", workload, NULL};
		int status = -1, lines = 0;
		size_t n = 0;
		FILE *f;
		pid_t d;

		snprintf(log, sizeof(log), "%s/missing-%zu.log", dir, i);
		d = start_confined(cases[i].caps, args, log, false);
		for (double end = harness_now() + 20; harness_now() < end; usleep(50 * 1000))
			if (waitpid(d, &status, WNOHANG) == d)
				break;
		if (!WIFEXITED(status))
			harness_stop(d);
		f = fopen(log, "r");
		if (f) {
			n = fread(text, 1, sizeof(text) - 1, f);
			fclose(f);
		}
		text[n] = '\0';
		for (size_t k = 0; k < n; k++)
			lines += text[k] == '\n';
		snprintf(want, sizeof(want), "heapfragd: needs %s to ", cases[i].name);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 2,
			  "without %s heapfragd's status is %d", cases[i].name, status);
		CHECK_MSG(strncmp(text, want, strlen(want)) == 0 && lines == 1,
			  "without %s heapfragd said: %s", cases[i].name, text);
	}
}

int main(void)
{
	const char *why = harness_missing();
	char cmd[2400], built[1024], *dir;

	if (why)
		HF_SKIP("%s", why);
	if (access("/usr/bin/setpriv", X_OK) || access("/usr/sbin/setcap", X_OK))
		HF_SKIP("setpriv (util-linux) and setcap (libcap2-bin) are needed");
	dir = harness_tmpdir("privilege");
	/* A copy nobody can reach: the build tree may sit under a private home. */
	chmod(dir, 0755);
	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	snprintf(heapfragd, sizeof(heapfragd), "%s/heapfragd", dir);
	snprintf(cmd, sizeof(cmd), "install -m 0755 '%s' '%s'",
		 harness_build_path(built, sizeof(built), "bin/heapfragd"), heapfragd);
	CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
	port = harness_free_port();

	test_a_missing_capability_is_named(dir);
	test_exact_mode_as_nobody(dir);
	port = harness_free_port();
	test_passive_mode_as_nobody(dir);
	port = harness_free_port();
	test_exact_mode_with_file_capabilities(dir);

	if (!hf_checks_failed)
		harness_rmdir(dir);
	free(dir);
	return hf_test_done();
}
