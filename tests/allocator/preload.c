/* SPDX-License-Identifier: MIT */
/*
 * preload.c - run one workload on glibc and again on libptm (see preload.h).
 */
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *hf_preload_mode_name(enum hf_preload_mode mode)
{
	return mode == HF_PRELOAD_PTM ? "ptm" : "glibc";
}

int hf_preload_lib_path(char *buf, size_t len)
{
	const char *build = getenv("HF_BUILD_DIR");
	struct stat st;

	if (!build || !*build) {
		fprintf(stderr, "libptm.so not built: HF_BUILD_DIR is not set\n");
		return -ENOENT;
	}
	if ((size_t)snprintf(buf, len, "%s/lib/libptm.so", build) >= len)
		return -ENAMETOOLONG;
	if (stat(buf, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "libptm.so not built: %s does not exist\n", buf);
		return -ENOENT;
	}
	return 0;
}

static const char *object_of(void *addr)
{
	Dl_info info;

	if (!dladdr(addr, &info) || !info.dli_fname)
		return "(unknown)";
	return info.dli_fname;
}

void hf_preload_verify(void)
{
	/*
	 * Taking malloc's address through a volatile pointer makes the
	 * compiler load it from the GOT, i.e. the definition the dynamic
	 * linker chose for this process, which is what every call uses.
	 */
	void *(*volatile malloc_fn)(size_t) = malloc;
	void (*volatile free_fn)(void *) = free;
	const char *mode = getenv("HF_PTM_MODE");
	const char *m_obj = object_of((void *)malloc_fn);
	const char *f_obj = object_of((void *)free_fn);
	void *marker = dlsym(RTLD_DEFAULT, "ptm_version");

	if (!mode) {
		fprintf(stderr, "HF_PTM_MODE is not set: run the test without arguments\n");
		exit(3);
	}
	if (strcmp(mode, "ptm") == 0) {
		if (!marker || !strstr(m_obj, "libptm.so") || !strstr(f_obj, "libptm.so")) {
			fprintf(stderr,
				"libptm was not loaded: ptm_version %s, malloc from %s, free "
				"from %s\n",
				marker ? "found" : "missing", m_obj, f_obj);
			exit(3);
		}
		return;
	}
	if (marker || !strstr(m_obj, "libc.so") || !strstr(f_obj, "libc.so")) {
		fprintf(stderr, "glibc run is not on glibc: malloc from %s, free from %s\n", m_obj,
			f_obj);
		exit(3);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int append(struct hf_preload_child *child, size_t *cap, const char *data, size_t n)
{
	if (child->out_len + n + 1 > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 4096) + n;
		char *nb = realloc(child->out, ncap);

		if (!nb)
			return -ENOMEM;
		child->out = nb;
		*cap = ncap;
	}
	memcpy(child->out + child->out_len, data, n);
	child->out_len += n;
	child->out[child->out_len] = '\0';
	return 0;
}

static void exec_child(enum hf_preload_mode mode, const char *lib, char *const argv[], int wfd)
{
	/* Its own process group, so a timeout also ends what the child forked. */
	setpgid(0, 0);
	dup2(wfd, STDOUT_FILENO);
	dup2(wfd, STDERR_FILENO);
	/*
	 * glibc may write its fatal messages to /dev/tty; the misuse tests
	 * read them from stderr, so ask for stderr.
	 */
	setenv("LIBC_FATAL_STDERR_", "1", 1);
	setenv("HF_PTM_MODE", hf_preload_mode_name(mode), 1);
	if (mode == HF_PRELOAD_PTM)
		setenv("LD_PRELOAD", lib, 1);
	else
		unsetenv("LD_PRELOAD");
	execv("/proc/self/exe", argv);
	fprintf(stderr, "failed to exec /proc/self/exe: %s\n", strerror(errno));
	_exit(127);
}

int hf_preload_spawn(enum hf_preload_mode mode, char *const argv[], int timeout_s,
		     struct hf_preload_child *child)
{
	char lib[4096] = "";
	size_t cap = 0;
	int fds[2] = {-1, -1};
	double deadline;
	pid_t pid;
	int err;

	memset(child, 0, sizeof(*child));
	err = append(child, &cap, "", 0);
	if (err)
		return err;
	if (mode == HF_PRELOAD_PTM) {
		err = hf_preload_lib_path(lib, sizeof(lib));
		if (err)
			return err;
	}
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto cleanup;
	}
	if (pid == 0)
		exec_child(mode, lib, argv, fds[1]);
	close(fds[1]);
	fds[1] = -1;

	deadline = now_s() + timeout_s;
	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		double left = deadline - now_s();
		char buf[4096];
		ssize_t n;

		if (left <= 0) {
			child->timed_out = 1;
			kill(-pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			kill(pid, SIGKILL);
			break;
		}
		n = read(fds[0], buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		err = append(child, &cap, buf, (size_t)n);
		if (err) {
			kill(pid, SIGKILL);
			break;
		}
	}
	/*
	 * EOF comes before the exit when the child's own children still hold
	 * the pipe; the deadline bounds this wait as well.
	 */
	for (;;) {
		pid_t r = waitpid(pid, &child->status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (r == 0 && now_s() > deadline && !child->timed_out) {
			child->timed_out = 1;
			kill(-pid, SIGKILL);
		}
		if (r == 0)
			usleep(10000);
	}
cleanup:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return err;
}

void hf_preload_print(const char *prefix, const struct hf_preload_child *child)
{
	const char *line = child->out;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		int n = end ? (int)(end - line) : (int)strlen(line);

		fprintf(stderr, "%s%.*s\n", prefix, n, line);
		line += n + (end ? 1 : 0);
	}
}

const char *hf_preload_describe(const struct hf_preload_child *child, char *buf, size_t len)
{
	if (child->timed_out)
		snprintf(buf, len, "timed out");
	else if (WIFEXITED(child->status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(child->status));
	else if (WIFSIGNALED(child->status))
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(child->status),
			 strsignal(WTERMSIG(child->status)));
	else
		snprintf(buf, len, "status 0x%x", child->status);
	return buf;
}

bool hf_preload_run_ok(enum hf_preload_mode mode, char *const argv[], int timeout_s,
		       const char *prefix, const char *expect, char *why, size_t len)
{
	struct hf_preload_child child;
	int err = hf_preload_spawn(mode, argv, timeout_s, &child);
	bool ok;

	if (err) {
		snprintf(why, len, "could not start: %s", strerror(-err));
		return false;
	}
	hf_preload_print(prefix, &child);
	ok = !child.timed_out && WIFEXITED(child.status) && WEXITSTATUS(child.status) == 0 &&
	     strstr(child.out, expect);
	if (!ok)
		hf_preload_describe(&child, why, len);
	free(child.out);
	return ok;
}
