/* SPDX-License-Identifier: MIT */
/*
 * bench_child.h - what the overhead benchmarks (tests/bench's
 * trace_overhead.c and census_overhead.c) need to drive their children:
 * start a workload or a tracer with its stdin and stdout on pipes, pinned to
 * a CPU; read its lines with a timeout; stop and reap it, killing one that
 * will not stop; GET a page of a heapfragd on loopback; and the clocks and
 * the comparison for their medians.  Header-only: each user is a single
 * benchmark program.
 */
#ifndef HF_TEST_BENCH_CHILD_H
#define HF_TEST_BENCH_CHILD_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct child {
	pid_t pid;
	FILE *out; /* the child's stdout */
	int in;    /* the child's stdin */
};

/* What spawn() sends to /dev/null instead of passing it on. */
enum {
	CHILD_NO_STDERR = 1 << 0, /* stderr, which is otherwise ours */
	CHILD_NO_STDOUT = 1 << 1, /* stdout, for output nobody reads: a full pipe stalls */
};

static inline double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/*
 * Starts argv (found on PATH) with pipes on stdin and stdout; cpu >= 0 pins
 * it there; quiet is CHILD_NO_* flags.  Returns 0 or a negative errno.
 */
static inline int spawn(struct child *c, char *const argv[], int cpu, int quiet)
{
	int to[2], from[2], err;

	if (pipe2(to, O_CLOEXEC))
		return -errno;
	if (pipe2(from, O_CLOEXEC)) {
		err = -errno;
		close(to[0]);
		close(to[1]);
		return err;
	}
	c->pid = fork();
	if (c->pid < 0) {
		err = -errno;
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		return err;
	}
	if (c->pid == 0) {
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		dup2(to[0], 0);
		dup2(from[1], 1);
		if ((quiet & CHILD_NO_STDOUT) && !freopen("/dev/null", "w", stdout))
			_exit(127);
		if ((quiet & CHILD_NO_STDERR) && !freopen("/dev/null", "w", stderr))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	c->in = to[1];
	c->out = fdopen(from[0], "r");
	if (!c->out) {
		close(from[0]);
		return -ENOMEM; /* the child runs: reap() it */
	}
	/* Unbuffered, so that poll() on the descriptor sees every line not yet read. */
	setvbuf(c->out, NULL, _IONBF, 0);
	return 0;
}

/*
 * Closes the child's stdin, sends it sig unless sig is 0, and reaps it.
 * After a signal, a child that has not stopped within 60 s is killed, and
 * that is said on stderr after "prog: ".  Returns its wait status (0 when
 * there was no child); c is then empty.
 */
static inline int reap(struct child *c, int sig, const char *prog)
{
	int status = 0;

	if (c->pid <= 0)
		return 0;
	if (sig)
		kill(c->pid, sig);
	if (c->in >= 0)
		close(c->in);
	c->in = -1;
	for (int i = 0; sig && i < 600 && waitpid(c->pid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	if (sig && waitpid(c->pid, &status, WNOHANG) == 0) {
		fprintf(stderr, "%s: %d did not stop within 60 s; killing it\n", prog, (int)c->pid);
		kill(c->pid, SIGKILL);
	}
	waitpid(c->pid, &status, 0);
	if (c->out)
		fclose(c->out);
	c->out = NULL;
	c->pid = 0;
	return status;
}

/*
 * Reads lines until one starts with prefix, for at most timeout seconds.
 * Returns that line (in a buffer the next call reuses), or NULL.
 */
static inline char *read_until(FILE *f, const char *prefix, double timeout)
{
	static char line[8192];
	double end = now_s() + timeout;
	struct pollfd p = {.fd = fileno(f), .events = POLLIN};

	while (now_s() < end) {
		if (poll(&p, 1, (int)((end - now_s()) * 1000) + 1) <= 0)
			continue;
		if (!fgets(line, sizeof(line), f))
			return NULL;
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			return line;
	}
	return NULL;
}

/* GET path from 127.0.0.1:port; returns the HTTP status (-1 for none), body in buf. */
static inline int http_get(int port, const char *path, char *buf, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;
	char req[256];
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	while (got + 1 < len && (n = read(fd, buf + got, len - got - 1)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
		status = -1;
out:
	close(fd);
	return status;
}

/* For qsort() of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#endif /* HF_TEST_BENCH_CHILD_H */
