// SPDX-License-Identifier: MIT
/*
 * heapfragd's command line: --help and --version succeed; every bad
 * argument, a PID that does not exist and a command that cannot run end at
 * start-up with status 2 and one sentence on stderr.  With -- COMMAND the
 * command is traced from its first instruction (its every call is counted),
 * and --exit-with-command makes heapfragd exit with the command's status.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

/* Runs heapfragd with args to its end; its stderr in err[], its stdout in out[]. */
static int run(const char *const *args, char *err, size_t err_len, char *out, size_t out_len)
{
	const char *argv[32];
	int epipe[2], opipe[2], status = 0, n = 0;
	ssize_t got;
	size_t elen = 0, olen = 0;
	pid_t pid;

	argv[n++] = th_build_path("bin/heapfragd");
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(epipe, O_CLOEXEC) || pipe2(opipe, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(epipe[1], 2);
		dup2(opipe[1], 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	th_track(pid);
	close(epipe[1]);
	close(opipe[1]);
	while (elen + 1 < err_len && (got = read(epipe[0], err + elen, err_len - 1 - elen)) > 0)
		elen += (size_t)got;
	err[elen] = '\0';
	while (olen + 1 < out_len && (got = read(opipe[0], out + olen, out_len - 1 - olen)) > 0)
		olen += (size_t)got;
	out[olen] = '\0';
	close(epipe[0]);
	close(opipe[0]);
	waitpid(pid, &status, 0);
	th_untrack(pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void refused(const char *what, const char *const *args)
{
	char err[4096], out[4096];
	int status = run(args, err, sizeof(err), out, sizeof(out));

	CHECK_MSG(status == 2, "%s: exit status %d, expected 2", what, status);
	/* One sentence: libbpf's and argp's noise aside, one line says why. */
	CHECK_MSG(strstr(err, "heapfragd") != NULL && count_lines(err) >= 1 &&
			  count_lines(err) <= 3,
		  "%s: stderr is not one clear sentence:\n%s", what, err);
	printf("%s -> %d: %s", what, status, err);
}

static bool thousand_pairs(json_t *doc, void *arg)
{
	return th_u64(doc, "counters.malloc") >= 1000 && th_u64(doc, "counters.free") >= 1000;
}

static void command_is_traced_from_the_start(void)
{
	char port_arg[32];
	const char *argv[] = {th_build_path("bin/heapfragd"),
			      "-l",
			      port_arg,
			      "-i",
			      "0.2",
			      "--exit-with-command",
			      "--",
			      th_build_path("tests/workloads/seed_loop"),
			      "--count",
			      "1000",
			      NULL};
	struct th_daemon d = {0};
	int in[2], out[2], status = 0;
	char line[4096];
	json_t *doc;
	pid_t child;
	FILE *f;

	d.port = 20000 + (int)(getpid() % 20000);
	snprintf(port_arg, sizeof(port_arg), "127.0.0.1:%d", d.port);
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return;
	d.pid = fork();
	if (d.pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	th_track(d.pid);
	close(in[0]);
	close(out[1]);
	f = fdopen(out[0], "r");
	/* The command's stdout is heapfragd's: READY comes from the workload. */
	CHECK(f && fgets(line, sizeof(line), f) && sscanf(line, "READY pid=%d", &child) == 1);
	(void)!write(in[1], "go\n", 3);
	while (f && fgets(line, sizeof(line), f) && strncmp(line, "TRUTH ", 6) != 0)
		;
	doc = th_wait_doc(&d, child, thousand_pairs, NULL, 10);
	CHECK_MSG(doc != NULL, "the command is not listed");
	/* Every call from its first instruction on: the loader's and libc's too. */
	CHECK_MSG(th_u64(doc, "counters.malloc") >= 1000, "malloc = %llu",
		  (unsigned long long)th_u64(doc, "counters.malloc"));
	CHECK_MSG(th_u64(doc, "counters.free") >= 1000, "free = %llu",
		  (unsigned long long)th_u64(doc, "counters.free"));
	/* Its brk calls from the start, which an attach by PID would have missed. */
	CHECK_MSG(th_u64(doc, "counters.brk") >= 1 && th_u64(doc, "counters.mmap") >= 1,
		  "brk %llu mmap %llu: the start-up was not traced",
		  (unsigned long long)th_u64(doc, "counters.brk"),
		  (unsigned long long)th_u64(doc, "counters.mmap"));
	printf("command: malloc %llu free %llu brk %llu mmap %llu\n",
	       (unsigned long long)th_u64(doc, "counters.malloc"),
	       (unsigned long long)th_u64(doc, "counters.free"),
	       (unsigned long long)th_u64(doc, "counters.brk"),
	       (unsigned long long)th_u64(doc, "counters.mmap"));
	json_decref(doc);
	/* The command ends; so does heapfragd, with its status. */
	close(in[1]);
	waitpid(d.pid, &status, 0);
	th_untrack(d.pid);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "heapfragd status %d", status);
	if (f)
		fclose(f);
}

int main(void)
{
	char err[4096], out[4096];
	int status;

	th_init("tracer_cli", 120);

	status = run((const char *const[]){"--help", NULL}, err, sizeof(err), out, sizeof(out));
	CHECK_EQ_U64(status, 0);
	CHECK(strstr(out, "--max-live") && strstr(out, "--exit-with-command") &&
	      strstr(out, "--retention"));
	status = run((const char *const[]){"--version", NULL}, err, sizeof(err), out, sizeof(out));
	CHECK_EQ_U64(status, 0);
	CHECK(strstr(out, "heapfragd ") != NULL);

	refused("-p abc", (const char *const[]){"-p", "abc", NULL});
	refused("-p 12x", (const char *const[]){"-p", "12x", NULL});
	refused("-p -5", (const char *const[]){"-p", "-5", NULL});
	refused("-m fast", (const char *const[]){"-m", "fast", NULL});
	refused("-i 0", (const char *const[]){"-i", "0", NULL});
	refused("-i 1s", (const char *const[]){"-i", "1s", NULL});
	refused("--max-live 0", (const char *const[]){"--max-live", "0", NULL});
	refused("--retention x", (const char *const[]){"--retention", "x", NULL});
	refused("--bogus", (const char *const[]){"--bogus", NULL});
	refused("--exit-with-command alone", (const char *const[]){"--exit-with-command", NULL});
	refused("-p of no process",
		(const char *const[]){"-l", "127.0.0.1:1", "-p", "4194000", NULL});
	refused("-e of no file",
		(const char *const[]){"-l", "127.0.0.1:1", "-e", "/nonexistent/prog", NULL});
	refused("-- of no program",
		(const char *const[]){"-l", "127.0.0.1:1", "--", "/nonexistent/prog", NULL});

	status = run((const char *const[]){"-l", "127.0.0.1:0", "--exit-with-command", "--",
					   "/bin/sh", "-c", "exit 7", NULL},
		     err, sizeof(err), out, sizeof(out));
	CHECK_MSG(status == 7, "--exit-with-command: status %d, expected the command's 7", status);

	command_is_traced_from_the_start();
	return hf_test_done();
}
