// SPDX-License-Identifier: MIT
/*
 * ptm_preload_smoke: build/lib/libptm.so really replaces malloc for
 * ordinary programs under LD_PRELOAD: /bin/ls, python3 with threads, and
 * sort print exactly what they print on glibc, and libptm is the malloc in
 * use (python finds ptm_version and the chunk layout it expects).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char lib[4096];

/* Runs argv with stdin from in_path (or /dev/null); returns its stdout. */
static char *run(char *const argv[], const char *in_path, int preload, int *status)
{
	int pipefd[2];
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	pid_t pid;
	ssize_t n;

	if (out == NULL || pipe(pipefd) != 0)
		return NULL;
	pid = fork();
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);

		dup2(in, STDIN_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		if (preload)
			setenv("LD_PRELOAD", lib, 1);
		else
			unsetenv("LD_PRELOAD");
		setenv("LC_ALL", "C", 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], out + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 4096) {
			char *bigger = realloc(out, cap * 2);

			if (bigger == NULL)
				break;
			out = bigger;
			cap *= 2;
		}
	}
	out[len] = '\0';
	close(pipefd[0]);
	waitpid(pid, status, 0);
	return out;
}

static void same_output(const char *what, char *const argv[], const char *in_path)
{
	int st_glibc = -1, st_ptm = -1;
	char *a = run(argv, in_path, 0, &st_glibc), *b = run(argv, in_path, 1, &st_ptm);

	CHECK_MSG(a && b && st_glibc == 0 && st_ptm == 0, "%s: exit %d on glibc, %d on libptm",
		  what, st_glibc, st_ptm);
	CHECK_MSG(a && b && strlen(a) > 0 && strcmp(a, b) == 0, "%s: outputs differ", what);
	free(a);
	free(b);
}

int main(void)
{
	const char *build = getenv("HF_BUILD_DIR");
	char input[] = "/tmp/ptm_smokeXXXXXX";
	int fd, st = -1;
	char *out;

	if (build == NULL)
		HF_SKIP("HF_BUILD_DIR is not set");
	snprintf(lib, sizeof(lib), "%s/lib/libptm.so", build);
	if (access(lib, R_OK) != 0)
		HF_SKIP("%s is not built", lib);

	{
		char *argv[] = {"/bin/ls", "-la", "/usr/lib", NULL};

		same_output("ls", argv, NULL);
	}
	{
		char *argv[] = {
			"python3", "-c",
			"import threading, json, collections\n"
			"res = collections.Counter()\n"
			"def work(k):\n"
			"    d = {i: [str(i) * (i % 50)] for i in range(20000)}\n"
			"    s = json.dumps(d)\n"
			"    res[k] = len(json.loads(s))\n"
			"ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]\n"
			"[t.start() for t in ts]\n"
			"[t.join() for t in ts]\n"
			"print(sorted(res.items()))\n",
			NULL};

		same_output("python3 threads", argv, NULL);
	}

	/* sort over a shuffled file of a few MB. */
	fd = mkstemp(input);
	CHECK(fd >= 0);
	if (fd >= 0) {
		FILE *f = fdopen(fd, "w");
		unsigned rs = 7;

		for (int i = 0; i < 200000; i++)
			fprintf(f, "%08x line %d\n", (unsigned)rand_r(&rs), i);
		fclose(f);
		{
			char *argv[] = {"sort", "-S", "64M", NULL};

			same_output("sort", argv, input);
		}
		unlink(input);
	}

	/* In the preloaded process, malloc is libptm's: it exports ptm_version. */
	{
		char *argv[] = {
			"python3", "-c",
			"import ctypes\n"
			"c = ctypes.CDLL(None)\n"
			"v = ctypes.c_char.in_dll(c, 'ptm_version')\n"
			"print(ctypes.string_at(ctypes.addressof(v)).decode().split()[0])\n",
			NULL};

		out = run(argv, NULL, 1, &st);
		CHECK(out != NULL && st == 0);
		CHECK_STR_EQ(out, "libptm\n");
		free(out);
	}
	return hf_test_done();
}
