// SPDX-License-Identifier: MIT
/*
 * ptm_usdt_test: libptm.so carries the USDT probes ptm_usdt.h lists, under
 * provider "libptm" (readelf shows them in .note.stapsdt); and, with
 * "fire" as argument (a root test), each of them fires under bpftrace while
 * ptm_usdt_workload runs (sampling at 16 KiB in its last phase), as often as libptm's
 * own books say it should, with sane arguments.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const char *const probes[] = {
	"heap_grow",          "heap_shrink", "arena_create", "arena_reuse",  "lock_contended_begin",
	"lock_contended_end", "trim",        "page_release", "sample_alloc", "sample_free",
};
#define NPROBES (sizeof(probes) / sizeof(probes[0]))

static char lib[4096], workload[4096];

static char *slurp_cmd(const char *cmd)
{
	size_t cap = 1 << 16, len = 0, n;
	char *out = malloc(cap);
	FILE *f = popen(cmd, "r");

	if (out == NULL || f == NULL) {
		free(out);
		if (f)
			pclose(f);
		return NULL;
	}
	while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *bigger = realloc(out, cap * 2);

			if (bigger == NULL)
				break;
			out = bigger;
			cap *= 2;
		}
	}
	out[len] = '\0';
	pclose(f);
	return out;
}

static void probes_are_in_the_elf_notes(void)
{
	char cmd[8192];
	char *out;

	snprintf(cmd, sizeof(cmd), "readelf -n '%s'", lib);
	out = slurp_cmd(cmd);
	CHECK(out != NULL);
	if (out == NULL)
		return;
	CHECK(strstr(out, "stapsdt") != NULL);
	CHECK(strstr(out, "Provider: libptm") != NULL);
	for (size_t i = 0; i < NPROBES; i++) {
		char want[128];

		snprintf(want, sizeof(want), "Name: %s\n", probes[i]);
		CHECK_MSG(strstr(out, want) != NULL, "probe %s missing from the notes", probes[i]);
	}
	/* No semaphores: every probe is a bare nop (see ptm_usdt.h). */
	CHECK(strstr(out, "Semaphore: 0x0000000000000000") != NULL);
	for (char *p = strstr(out, "Semaphore: "); p != NULL; p = strstr(p + 1, "Semaphore: "))
		CHECK(strncmp(p, "Semaphore: 0x0000000000000000", 29) == 0);
	free(out);
}

static char *slurp_file(const char *path)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "exec cat -- '%s'", path);
	return slurp_cmd(cmd);
}

/* The value of map "@name: N" in bpftrace's output, or -1. */
static long long map_value(const char *out, const char *name)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "@%s: ", name);
	p = strstr(out, key);
	return p ? atoll(p + strlen(key)) : -1;
}

static void probes_fire_as_often_as_the_books_say(void)
{
	char script_path[] = "/tmp/ptm_usdtXXXXXX", out_path[] = "/tmp/ptm_usdt_outXXXXXX";
	char cmd[8192];
	int sfd = mkstemp(script_path), ofd = mkstemp(out_path), status = 0, ready = 0;
	unsigned long long release_calls = 0, contended = 0;
	char *out = NULL, *wout, comm[16];
	const char *base;
	FILE *f;
	pid_t bt;

	CHECK(sfd >= 0 && ofd >= 0);
	if (sfd < 0 || ofd < 0)
		return;
	/*
	 * The probes are in libptm.so, whoever maps it: only the workload's
	 * events count (other tests may run libptm programs at the same time).
	 */
	base = strrchr(workload, '/');
	snprintf(comm, sizeof(comm), "%.15s", base ? base + 1 : workload);
	f = fdopen(sfd, "w");
	fprintf(f, "BEGIN { printf(\"ready\\n\"); }\n");
	for (size_t i = 0; i < NPROBES; i++)
		fprintf(f, "usdt:%s:libptm:%s /comm == \"%s\"/ { @%s = count(); }\n", lib,
			probes[i], comm, probes[i]);
	fprintf(f,
		"usdt:%s:libptm:arena_create /comm == \"%s\"/ { @arena_index = max(arg1); }\n"
		"usdt:%s:libptm:page_release /comm == \"%s\"/ { @release_bytes = sum(arg2);"
		" if (arg1 %% 4096 != 0 || arg2 %% 4096 != 0 || arg2 == 0) { @bad_release = "
		"count(); } }\n"
		"usdt:%s:libptm:lock_contended_end /comm == \"%s\"/ { @wait_ns = sum(arg1); }\n"
		"usdt:%s:libptm:sample_alloc /comm == \"%s\"/ { if (arg2 < arg1 || arg0 %% 16 "
		"!= 0) { @bad_sample = count(); } }\n",
		lib, comm, lib, comm, lib, comm, lib, comm);
	fclose(f);

	bt = fork();
	if (bt == 0) {
		dup2(ofd, STDOUT_FILENO);
		dup2(ofd, STDERR_FILENO);
		execlp("timeout", "timeout", "-s", "INT", "60", "bpftrace", script_path,
		       (char *)NULL);
		_exit(127);
	}
	/* BEGIN runs once every probe is attached. */
	for (int i = 0; i < 300 && !ready; i++) {
		char *now;

		usleep(100 * 1000);
		now = slurp_file(out_path);
		ready = now != NULL && strstr(now, "ready") != NULL;
		free(now);
	}
	CHECK_MSG(ready, "bpftrace did not attach within 30 s");
	if (ready) {
		snprintf(cmd, sizeof(cmd), "MALLOC_RELEASE_DELAY_=0 '%s'", workload);
		wout = slurp_cmd(cmd);
		CHECK(wout != NULL && sscanf(wout, "release_calls %llu lock_contended %llu",
					     &release_calls, &contended) == 2);
		free(wout);
		/* Let the last events land in the maps before bpftrace prints them. */
		usleep(500 * 1000);
	}
	kill(bt, SIGINT);
	waitpid(bt, &status, 0);
	out = slurp_file(out_path);
	CHECK(out != NULL);
	if (out != NULL && ready) {
		for (size_t i = 0; i < NPROBES; i++)
			CHECK_MSG(map_value(out, probes[i]) >= 1, "probe %s never fired:\n%s",
				  probes[i], out);
		CHECK_MSG((unsigned long long)map_value(out, "page_release") == release_calls,
			  "page_release %lld, books %llu", map_value(out, "page_release"),
			  release_calls);
		CHECK_MSG((unsigned long long)map_value(out, "lock_contended_end") == contended,
			  "lock_contended_end %lld, books %llu",
			  map_value(out, "lock_contended_end"), contended);
		CHECK_EQ_U64(map_value(out, "lock_contended_begin"),
			     map_value(out, "lock_contended_end"));
		CHECK(map_value(out, "arena_index") >= 1);
		CHECK(map_value(out, "release_bytes") > 0);
		CHECK(map_value(out, "bad_release") <= 0);
		CHECK(map_value(out, "bad_sample") <= 0);
		CHECK(map_value(out, "sample_alloc") >= map_value(out, "sample_free"));
	}
	free(out);
	unlink(script_path);
	unlink(out_path);
}

int main(int argc, char **argv)
{
	const char *build = getenv("HF_BUILD_DIR");

	if (build == NULL)
		build = "build";
	snprintf(lib, sizeof(lib), "%s/lib/libptm.so", build);
	snprintf(workload, sizeof(workload), "%s/tests/ptm_usdt_workload", build);
	if (argc > 1 && strcmp(argv[1], "fire") == 0) {
		if (geteuid() != 0)
			HF_SKIP("needs root for bpftrace");
		if (access(workload, X_OK) != 0)
			HF_SKIP("%s is not built", workload);
		probes_fire_as_often_as_the_books_say();
	} else {
		probes_are_in_the_elf_notes();
	}
	return hf_test_done();
}
