// SPDX-License-Identifier: MIT
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "curl_body.h"
#include "free_port.h"

#define MAX_CHILDREN 32

static pid_t children[MAX_CHILDREN];
static const char *test_name = "tracer";

static void remember(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] == 0) {
			children[i] = pid;
			return;
		}
	}
}

static void forget(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

void th_track(pid_t pid)
{
	remember(pid);
}

void th_untrack(pid_t pid)
{
	forget(pid);
}

static void kill_children(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
}

static void on_alarm(int sig)
{
	static const char msg[] = "timed out: killing what the test started\n";

	(void)!write(2, msg, sizeof(msg) - 1);
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	_exit(1);
}

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void th_init(const char *name, unsigned int seconds)
{
	test_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		HF_SKIP("%s needs root to load BPF programs", name);
	if (access(th_build_path("bin/heapfragd"), X_OK) != 0)
		HF_SKIP("heapfragd is not built at %s", th_build_path("bin/heapfragd"));
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(seconds);
	atexit(kill_children);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *th_build_path(const char *rel)
{
	static char bufs[4][512];
	static int next;
	const char *root = getenv("HF_BUILD_DIR");
	char *buf = bufs[next++ % 4];

	snprintf(buf, sizeof(bufs[0]), "%s/%s", root ? root : "build", rel);
	return buf;
}

const char *th_libptm(void)
{
	const char *p = th_build_path("lib/libptm.so");

	return access(p, R_OK) == 0 ? p : NULL;
}

const char *th_libjemalloc(void)
{
	static const char p[] = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

	return access(p, R_OK) == 0 ? p : NULL;
}

int th_daemon_start(struct th_daemon *d, const char *const *args)
{
	const char *argv[64];
	char listen[64];
	int n = 0, fd;
	double deadline;

	memset(d, 0, sizeof(*d));
	d->port = free_loopback_port();
	if (d->port <= 0)
		return -1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
	snprintf(d->log_path, sizeof(d->log_path), "/tmp/%s.%d.heapfragd.log", test_name,
		 (int)getpid());
	argv[n++] = th_build_path("bin/heapfragd");
	argv[n++] = "-l";
	argv[n++] = listen;
	for (int i = 0; args && args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	d->pid = fork();
	if (d->pid < 0)
		return -1;
	if (d->pid == 0) {
		fd = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	remember(d->pid);
	deadline = monotonic() + 20;
	while (monotonic() < deadline) {
		long status = 0;
		json_t *doc = th_get(d, "/healthz", &status);

		json_decref(doc);
		if (status == 200)
			return 0;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			forget(d->pid);
			fprintf(stderr, "heapfragd ended before serving\n");
			th_daemon_dump_log(d);
			d->pid = 0;
			return -1;
		}
		usleep(50 * 1000);
	}
	fprintf(stderr, "heapfragd did not answer /healthz within 20 s\n");
	th_daemon_dump_log(d);
	return -1;
}

int th_daemon_stop(struct th_daemon *d)
{
	int status = 0;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	if (waitpid(d->pid, &status, 0) != d->pid)
		return -1;
	forget(d->pid);
	d->pid = 0;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	/* A daemon that ended well leaves no log behind; one that did not is shown. */
	if (status == 0)
		unlink(d->log_path);
	else
		th_daemon_dump_log(d);
	return status;
}

void th_daemon_dump_log(const struct th_daemon *d)
{
	char line[1024];
	FILE *f = fopen(d->log_path, "r");

	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", d->log_path);
	while (fgets(line, sizeof(line), f))
		if (!strstr(line, "debug: libbpf"))
			fputs(line, stderr);
	fclose(f);
}

#define STRACE_SET "trace=brk,mmap,munmap,mremap,madvise,read,write"

/* Starts the workload, under strace when s is not NULL. */
static int workload_start(struct th_workload *w, const char *name, const char *const *args,
			  const char *preload, struct th_strace *s)
{
	char path[512], line[256], env[600];
	const char *argv[48];
	int in[2], out[2], n = 0;

	memset(w, 0, sizeof(*w));
	snprintf(path, sizeof(path), "%s", th_build_path("tests/workloads"));
	strncat(path, "/", sizeof(path) - strlen(path) - 1);
	strncat(path, name, sizeof(path) - strlen(path) - 1);
	if (s) {
		snprintf(s->out_path, sizeof(s->out_path), "/tmp/%s.%d.%s.strace", test_name,
			 (int)getpid(), name);
		unlink(s->out_path);
		s->pid = 0;
		argv[n++] = "strace";
		argv[n++] = "-f";
		argv[n++] = "--seccomp-bpf";
		argv[n++] = "-qq";
		argv[n++] = "-e";
		argv[n++] = STRACE_SET;
		argv[n++] = "-o";
		argv[n++] = s->out_path;
		if (preload) {
			/* The workload's, not strace's own. */
			snprintf(env, sizeof(env), "LD_PRELOAD=%s", preload);
			argv[n++] = "-E";
			argv[n++] = env;
			preload = NULL;
		}
		argv[n++] = "--";
	}
	argv[n++] = path;
	for (int i = 0; args && args[i] && n < 47; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	w->proc = fork();
	if (w->proc < 0)
		return -1;
	if (w->proc == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (preload)
			setenv("LD_PRELOAD", preload, 1);
		if (s)
			execvp(argv[0], (char *const *)argv);
		else
			execv(path, (char *const *)argv);
		_exit(127);
	}
	remember(w->proc);
	close(in[0]);
	close(out[1]);
	w->in_fd = in[1];
	w->out = fdopen(out[0], "r");
	if (!w->out || !fgets(line, sizeof(line), w->out) ||
	    sscanf(line, "READY pid=%d", &w->pid) != 1) {
		fprintf(stderr, "%s did not say READY\n", name);
		return -1;
	}
	return 0;
}

int th_workload_start(struct th_workload *w, const char *name, const char *const *args,
		      const char *preload)
{
	return workload_start(w, name, args, preload, NULL);
}

int th_workload_start_straced(struct th_workload *w, const char *name, const char *const *args,
			      const char *preload, struct th_strace *s)
{
	return workload_start(w, name, args, preload, s);
}

int th_start_traced(struct th_workload *w, const char *name, const char *const *args,
		    const char *preload, struct th_daemon *d, const char *const *dargs)
{
	const char *argv[32];
	char pid_arg[16];
	size_t n = 0;

	if (th_workload_start(w, name, args, preload) != 0) {
		fprintf(stderr, "%s did not start\n", name);
		return -1;
	}
	while (dargs && dargs[n] && n < 29) {
		argv[n] = dargs[n];
		n++;
	}
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w->pid);
	argv[n++] = "-p";
	argv[n++] = pid_arg;
	argv[n] = NULL;
	if (th_daemon_start(d, argv) != 0) {
		fprintf(stderr, "heapfragd did not start\n");
		th_workload_kill(w);
		return -1;
	}
	return 0;
}

int th_workload_go(struct th_workload *w)
{
	return write(w->in_fd, "go\n", 3) == 3 ? 0 : -1;
}

json_t *th_workload_truth(struct th_workload *w)
{
	char *line = NULL;
	size_t cap = 0;
	json_t *truth = NULL;

	while (getline(&line, &cap, w->out) > 0) {
		if (strncmp(line, "TRUTH ", 6) == 0) {
			json_error_t err;

			truth = json_loads(line + 6, 0, &err);
			if (!truth)
				fprintf(stderr, "bad TRUTH line: %s: %s", err.text, line);
			break;
		}
	}
	free(line);
	return truth;
}

int th_workload_finish(struct th_workload *w)
{
	int status = 0;

	(void)!write(w->in_fd, "done\n", 5);
	close(w->in_fd);
	if (waitpid(w->proc, &status, 0) != w->proc)
		return -1;
	forget(w->proc);
	fclose(w->out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void th_workload_kill(struct th_workload *w)
{
	/* Wrapped (strace): the workload itself too, not only its wrapper. */
	if (w->pid > 0 && w->pid != w->proc)
		kill(w->pid, SIGKILL);
	kill(w->proc, SIGKILL);
	waitpid(w->proc, NULL, 0);
	forget(w->proc);
	close(w->in_fd);
	fclose(w->out);
}

/* The body of one request, NUL-terminated (NULL when none), and its status. */
static char *fetch_body(const struct th_daemon *d, const char *path, const char *post, long *status)
{
	struct curl_body b = {0};
	struct curl_slist *hdrs = NULL;
	char url[512];
	CURL *c;

	*status = 0;
	c = curl_easy_init();
	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", d->port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_body_append);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (post) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	else {
		free(b.data);
		b.data = NULL;
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return b.data;
}

static json_t *request(const struct th_daemon *d, const char *path, const char *post, long *status)
{
	char *body = fetch_body(d, path, post, status);
	json_t *doc = body ? json_loads(body, 0, NULL) : NULL;

	free(body);
	return doc;
}

char *th_get_text(const struct th_daemon *d, const char *path, long *status)
{
	return fetch_body(d, path, NULL, status);
}

json_t *th_get(const struct th_daemon *d, const char *path, long *status)
{
	return request(d, path, NULL, status);
}

json_t *th_post(const struct th_daemon *d, const char *path, const char *body, long *status)
{
	return request(d, path, body, status);
}

json_t *th_wait_doc(const struct th_daemon *d, pid_t pid, th_check_fn check, void *arg,
		    double seconds)
{
	double deadline = monotonic() + seconds;
	char path[64];
	json_t *doc = NULL;

	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)pid);
	do {
		long status;

		json_decref(doc);
		doc = th_get(d, path, &status);
		if (status == 200 && doc && (!check || check(doc, arg)))
			return doc;
		usleep(100 * 1000);
	} while (monotonic() < deadline);
	return doc;
}

uint64_t th_u64(json_t *obj, const char *path)
{
	char buf[256], *save = NULL, *part;
	json_t *cur = obj;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
		cur = json_object_get(cur, part);
	if (!cur || !json_is_integer(cur) || json_integer_value(cur) < 0)
		return UINT64_MAX;
	return (uint64_t)json_integer_value(cur);
}

int th_strace_start(struct th_strace *s, pid_t target)
{
	char pid_arg[32], err_path[300], line[512];
	double deadline;
	int fd;

	snprintf(s->out_path, sizeof(s->out_path), "/tmp/%s.%d.strace", test_name, (int)getpid());
	snprintf(err_path, sizeof(err_path), "%s.err", s->out_path);
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)target);
	unlink(err_path);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		/* A file, not a pipe: strace must outlive our reading of it. */
		fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execlp("strace", "strace", "-f", "-c", "-e", "trace=brk,mmap,munmap,mremap,madvise",
		       "-o", s->out_path, "-p", pid_arg, (char *)NULL);
		_exit(127);
	}
	remember(s->pid);
	/* strace says so on stderr once it is attached; only then may the phase start. */
	deadline = monotonic() + 10;
	while (monotonic() < deadline) {
		FILE *f = fopen(err_path, "r");
		bool attached = false;

		while (f && fgets(line, sizeof(line), f))
			attached |= strstr(line, "attached") != NULL;
		if (f)
			fclose(f);
		if (attached) {
			unlink(err_path);
			/*
			 * strace says "attached" once PTRACE_SEIZE is done, before it
			 * has interrupted the tracee and asked for syscall stops: a
			 * syscall made in that gap is not counted.  The gap is
			 * microseconds; a tenth of a second covers it on a loaded
			 * machine.
			 */
			usleep(100 * 1000);
			return 0;
		}
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			forget(s->pid);
			return -1;
		}
		usleep(20 * 1000);
	}
	return -1;
}

int th_strace_stop(struct th_strace *s, struct th_syscalls *out)
{
	char line[512];
	FILE *f;

	memset(out, 0, sizeof(*out));
	kill(s->pid, SIGINT);
	waitpid(s->pid, NULL, 0);
	forget(s->pid);
	f = fopen(s->out_path, "r");
	if (!f)
		return -1;
	/* "% time seconds usecs/call calls errors syscall": calls is the 4th column. */
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		double pct, secs;
		unsigned long long usecs, calls;
		uint64_t *slot = NULL;

		if (sscanf(line, "%lf %lf %llu %llu", &pct, &secs, &usecs, &calls) != 4)
			continue;
		{
			/* The name is the last field; the errors column may be empty. */
			char *last = strrchr(line, ' ');

			if (!last)
				continue;
			snprintf(name, sizeof(name), "%s", last + 1);
			name[strcspn(name, "\n")] = '\0';
		}
		if (strcmp(name, "brk") == 0)
			slot = &out->brk;
		else if (strcmp(name, "mmap") == 0)
			slot = &out->mmap;
		else if (strcmp(name, "munmap") == 0)
			slot = &out->munmap;
		else if (strcmp(name, "mremap") == 0)
			slot = &out->mremap;
		else if (strcmp(name, "madvise") == 0)
			slot = &out->madvise;
		if (slot)
			*slot = calls;
	}
	fclose(f);
	unlink(s->out_path);
	return 0;
}

/*
 * strace -f lines: "PID name(args...) = result", or "PID name(args... <unfinished
 * ...>" and later "PID <... name resumed>..." when another thread's syscall
 * came in between.  A call is counted by its first line, as strace -c does.
 */
int th_strace_phase(struct th_strace *s, pid_t pid, struct th_syscalls *out)
{
	static const char *const names[] = {"brk", "mmap", "munmap", "mremap", "madvise"};
	bool in_phase = false, seen_start = false, seen_end = false;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	memset(out, 0, sizeof(*out));
	f = fopen(s->out_path, "r");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		uint64_t *slots[] = {&out->brk, &out->mmap, &out->munmap, &out->mremap,
				     &out->madvise};
		char *call;
		int who;

		if (sscanf(line, "%d", &who) != 1 || !(call = strchr(line, ' ')))
			continue;
		/* strace pads the PID column. */
		while (*call == ' ')
			call++;
		if (who == pid && !seen_start && strncmp(call, "read(0, \"\\n\"", 12) == 0) {
			in_phase = seen_start = true;
			continue;
		}
		if (who == pid && in_phase && strncmp(call, "write(1, \"TRUTH ", 16) == 0) {
			in_phase = false;
			seen_end = true;
			break;
		}
		if (!in_phase)
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			size_t len = strlen(names[i]);

			if (strncmp(call, names[i], len) == 0 && call[len] == '(')
				(*slots[i])++;
		}
	}
	free(line);
	fclose(f);
	if (!seen_start || !seen_end) {
		fprintf(stderr, "%s: no phase of process %d found (start %d, end %d)\n",
			s->out_path, (int)pid, seen_start, seen_end);
		return -1;
	}
	unlink(s->out_path);
	return 0;
}
