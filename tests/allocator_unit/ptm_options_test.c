// SPDX-License-Identifier: MIT
/*
 * ptm_options_test: the MALLOC_*_ environment variables (read once, at the
 * first call, with K/M/G suffixes and warnings for bad values) and mallopt()
 * change libptm's behaviour the way glibc's do.
 *
 * Environment cases run in a fresh copy of this program (re-executed with
 * the variable set and a mode argument), since options are read once.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptm_test.h"

extern char **environ;

/* Runs this program in mode with one extra environment entry; returns exit status. */
static int run_child(const char *mode, const char *env, char *err, size_t errlen)
{
	int pipefd[2], status = -1;
	pid_t pid;
	ssize_t n, got = 0;

	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"ptm_options_test", (char *)mode, NULL};
		char *envp[64];
		int k = 0;

		for (char **e = environ; *e && k < 62; e++)
			if (strncmp(*e, "MALLOC_", 7) != 0)
				envp[k++] = *e;
		if (env)
			envp[k++] = (char *)env;
		envp[k] = NULL;
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	close(pipefd[1]);
	while (got < (ssize_t)errlen - 1 &&
	       (n = read(pipefd[0], err + got, errlen - 1 - (size_t)got)) > 0)
		got += n;
	err[got > 0 ? got : 0] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static pthread_barrier_t barrier;

static void *thread_alloc(void *arg)
{
	void **out = arg;

	/* Together, so that no thread can take over an exited thread's arena. */
	pthread_barrier_wait(&barrier);
	*out = ptm_malloc(500);
	pthread_barrier_wait(&barrier);
	return NULL;
}

/* Child side: each mode checks one behaviour and exits 0 if it holds. */
static int child(const char *mode)
{
	if (strcmp(mode, "first-200k") == 0) {
		/* Top cannot serve 200000 bytes yet: mmapped iff the threshold is below. */
		void *p = ptm_malloc(200000);

		return (size_word(p) & PTM_IS_MMAPPED) ? 10 : 11;
	}
	if (strcmp(mode, "arena-size") == 0) {
		ptm_free(ptm_malloc(10));
		return ptm_mallinfo2().arena >= 1024 * 1024 ? 10 : 11;
	}
	if (strcmp(mode, "perturb") == 0) {
		unsigned char *p = ptm_malloc(100);
		int ok = 1;

		/* Fresh chunks are filled with the perturb byte xor 0xff. */
		for (int i = 0; i < 100; i++)
			ok &= p[i] == (0xab ^ 0xff);
		return ok ? 10 : 11;
	}
	if (strcmp(mode, "arena-max") == 0) {
		pthread_t t[4];
		void *p[4];
		int non_main = 0;

		/* The thread that initialises libptm takes the main arena: be it. */
		ptm_free(ptm_malloc(1));
		pthread_barrier_init(&barrier, NULL, 4);
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, thread_alloc, &p[i]);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			non_main += !!(size_word(p[i]) & PTM_NON_MAIN_ARENA);
		}
		/* With one arena allowed, every thread shares the main arena. */
		if (non_main == 0)
			return 10;
		return non_main == 4 ? 11 : 12;
	}
	if (strcmp(mode, "tcache-off") == 0) {
		void *p[20];
		struct ptm_heap_census c;

		for (int i = 0; i < 20; i++)
			p[i] = ptm_malloc(500);
		for (int i = 0; i < 20; i++)
			ptm_free(p[i]);
		if (ptm_check_heap(&c) != 0)
			return 12;
		return c.tcache_chunks == 0 ? 10 : 11;
	}
	return 99;
}

static void env(const char *mode, const char *var, int want, const char *want_err)
{
	char err[4096];
	int rc = run_child(mode, var, err, sizeof(err));

	CHECK_MSG(rc == want, "%s with %s: exit %d, want %d (stderr: %s)", mode,
		  var ? var : "(none)", rc, want, err);
	if (want_err)
		CHECK_MSG(strstr(err, want_err) != NULL, "stderr \"%s\" lacks \"%s\"", err,
			  want_err);
	else
		CHECK_MSG(err[0] == '\0', "unexpected stderr: %s", err);
}

static void environment_variables_set_the_options(void)
{
	env("first-200k", NULL, 10, NULL);
	env("first-200k", "MALLOC_MMAP_THRESHOLD_=262144", 11, NULL);
	env("first-200k", "MALLOC_MMAP_THRESHOLD_=256K", 11, NULL);
	env("first-200k", "MALLOC_MMAP_MAX_=0", 11, NULL);
	env("first-200k", "MALLOC_MMAP_THRESHOLD_=256Q", 10,
	    "libptm: ignoring MALLOC_MMAP_THRESHOLD_: not a number");
	env("first-200k", "MALLOC_MMAP_THRESHOLD_=1G", 10,
	    "libptm: ignoring MALLOC_MMAP_THRESHOLD_: out of range");
	env("arena-size", NULL, 11, NULL);
	env("arena-size", "MALLOC_TOP_PAD_=2M", 10, NULL);
	env("perturb", "MALLOC_PERTURB_=171", 10, NULL);
	env("perturb", "MALLOC_PERTURB_=0xab", 10, NULL);
	env("perturb", NULL, 11, NULL);
	env("arena-max", NULL, 11, NULL);
	env("arena-max", "MALLOC_ARENA_MAX=1", 10, NULL);
	env("arena-max", "MALLOC_ARENA_MAX_=1", 10, NULL);
	env("tcache-off", NULL, 11, NULL);
	env("tcache-off", "MALLOC_TCACHE_COUNT_=0", 10, NULL);
}

static void mallopt_follows_glibc(void)
{
	void *p[30];
	struct ptm_heap_census c;

	CHECK(ptm_mallopt(M_MXFAST, 161) == 0);
	CHECK(ptm_mallopt(M_MXFAST, -1) == 0);
	CHECK(ptm_mallopt(M_MMAP_THRESHOLD, 33 * 1024 * 1024) == 0);
	CHECK(ptm_mallopt(M_ARENA_MAX, 0) == 1);
	CHECK(ptm_mallopt(12345, 1) == 1);
	CHECK(ptm_mallopt(M_CHECK_ACTION, 3) == 1);

	/* M_MXFAST 0: no fastbins at all. */
	CHECK(ptm_mallopt(M_MXFAST, 0) == 1);
	for (int i = 0; i < 30; i++)
		p[i] = ptm_malloc(40);
	for (int i = 0; i < 30; i++)
		ptm_free(p[i]);
	CHECK(ptm_check_heap(&c) == 0);
	CHECK_EQ_U64(c.fast_chunks, 0);
	CHECK(ptm_mallopt(M_MXFAST, 160) == 1);
	for (int i = 0; i < 30; i++)
		p[i] = ptm_malloc(150);
	for (int i = 0; i < 30; i++)
		ptm_free(p[i]);
	CHECK(ptm_check_heap(&c) == 0);
	CHECK(c.fast_chunks >= 20);

	/* M_MMAP_THRESHOLD and M_MMAP_MAX decide who gets a mapping. */
	CHECK(ptm_mallopt(M_MMAP_THRESHOLD, 64 * 1024) == 1);
	CHECK(ptm_mallopt(M_TOP_PAD, 0) == 1);
	p[0] = ptm_malloc(8u << 20);
	CHECK(size_word(p[0]) & PTM_IS_MMAPPED);
	ptm_free(p[0]);
	CHECK(ptm_mallopt(M_MMAP_MAX, 0) == 1);
	p[0] = ptm_malloc(8u << 20);
	CHECK((size_word(p[0]) & PTM_IS_MMAPPED) == 0);
	ptm_free(p[0]);
	CHECK(ptm_mallopt(M_MMAP_MAX, 65536) == 1);
	/* With the dynamic threshold off, freeing a mapping no longer raises it. */
	p[0] = ptm_malloc(1u << 20);
	ptm_free(p[0]);
	p[0] = ptm_malloc(1u << 20);
	CHECK(size_word(p[0]) & PTM_IS_MMAPPED);
	ptm_free(p[0]);

	/* M_PERTURB fills freed non-cached memory with the byte. */
	CHECK(ptm_mallopt(M_PERTURB, 0x5c) == 1);
	{
		unsigned char *q = ptm_malloc(5000);
		int ok = 1;

		for (int i = 0; i < 5000; i++)
			ok &= q[i] == (0x5c ^ 0xff);
		CHECK(ok);
		ptm_free(q);
	}
	CHECK(ptm_mallopt(M_PERTURB, 0) == 1);
	CHECK(ptm_check_heap(NULL) == 0);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	environment_variables_set_the_options();
	mallopt_follows_glibc();
	return hf_test_done();
}
