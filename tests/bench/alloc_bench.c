// SPDX-License-Identifier: MIT
/*
 * alloc_bench - libptm against glibc, jemalloc, tcmalloc and mimalloc.
 *
 * Usage: alloc_bench [-r ROUNDS] [-w WORKLOAD]... [-a NAME=LIBRARY]... [-o]
 *                    [WORKLOADS_BINARY]
 * -a adds an allocator to preload (another libptm build, to compare a change
 * side by side in one run); -o leaves out jemalloc, tcmalloc and mimalloc.
 * Runs every workload of alloc_workloads under each allocator (LD_PRELOAD;
 * glibc is the process's own malloc), ROUNDS times, interleaving allocators
 * within a round so that machine noise falls on all of them alike, and
 * prints the median wall time and peak heap RSS of each as a ratio to glibc.
 * For swiss_cheese it also prints the heap resident right after the frees
 * as a share of that allocator's own peak: (after - base) / (peak - base).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define LIBDIR     "/usr/lib/x86_64-linux-gnu/"
#define MAX_ROUNDS 15
#define MAX_ALLOC  8

struct allocator {
	const char *name;
	char preload[512]; /* "" for glibc */
	int available;
};

static struct allocator allocators[MAX_ALLOC] = {
	{"glibc", "", 1},
	{"libptm", "", 0},
	{"jemalloc", LIBDIR "libjemalloc.so.2", 0},
	{"tcmalloc", LIBDIR "libtcmalloc_minimal.so.4", 0},
	{"mimalloc", LIBDIR "libmimalloc.so.2", 0},
};
static size_t nr_alloc = 5;
#define NR_ALLOC  nr_alloc
#define NR_OTHERS 3 /* jemalloc, tcmalloc, mimalloc: entries 2..4 */

static const char *all_workloads[] = {
	"seed_loop",         "pareto",       "realloc_growth", "larson_2", "larson_8",
	"producer_consumer", "swiss_cheese",
};
#define NR_WORK (sizeof(all_workloads) / sizeof(all_workloads[0]))

struct sample {
	double seconds;
	long base_kb, peak_kb, after_kb;
	double alloc_s, free_s; /* swiss_cheese's two loops; -1 for the others */
};

/* Runs one workload under one allocator; 0 or a negative errno. */
static int run_one(const char *bin, const char *work, const struct allocator *a, struct sample *out)
{
	char preload_env[600], line[256];
	char *argv[] = {(char *)bin, (char *)work, NULL};
	char **envp;
	size_t n = 0, i = 0;
	int pipefd[2], status, err = 0;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	FILE *f;

	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		if (strncmp(environ[k], "LD_PRELOAD=", 11) != 0)
			envp[i++] = environ[k];
	if (a->preload[0]) {
		snprintf(preload_env, sizeof(preload_env), "LD_PRELOAD=%s", a->preload);
		envp[i++] = preload_env;
	}
	if (pipe(pipefd)) {
		free(envp);
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	err = -posix_spawn(&pid, bin, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(pipefd[1]);
	if (err) {
		close(pipefd[0]);
		return err;
	}
	f = fdopen(pipefd[0], "r");
	if (!f || !fgets(line, sizeof(line), f) ||
	    sscanf(line,
		   "seconds=%lf base_rss_kb=%ld peak_rss_kb=%ld rss_after_kb=%ld alloc_s=%lf "
		   "free_s=%lf",
		   &out->seconds, &out->base_kb, &out->peak_kb, &out->after_kb, &out->alloc_s,
		   &out->free_s) != 6)
		err = -EPROTO;
	if (f)
		fclose(f);
	else
		close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		err = err ? err : -ECHILD;
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *build = getenv("HF_BUILD_DIR");
	const char *chosen[NR_WORK];
	char bin[512];
	int rounds = 5, nr_chosen = 0, opt, failures = 0;
	bool only_ptm = false;

	while ((opt = getopt(argc, argv, "r:w:a:o")) != -1) {
		char *end, *eq;

		switch (opt) {
		case 'a':
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg || !eq[1] || nr_alloc == MAX_ALLOC) {
				fprintf(stderr, "alloc_bench: -a takes NAME=LIBRARY, at most %d\n",
					MAX_ALLOC - 5);
				return 2;
			}
			*eq = '\0';
			allocators[nr_alloc].name = optarg;
			snprintf(allocators[nr_alloc].preload, sizeof(allocators[0].preload), "%s",
				 eq + 1);
			nr_alloc++;
			break;
		case 'o':
			only_ptm = true;
			break;
		case 'r':
			rounds = (int)strtol(optarg, &end, 10);
			if (*end || rounds < 1 || rounds > MAX_ROUNDS) {
				fprintf(stderr, "alloc_bench: -r takes 1 to %d\n", MAX_ROUNDS);
				return 2;
			}
			break;
		case 'w':
			if (nr_chosen == (int)NR_WORK) {
				fprintf(stderr, "alloc_bench: too many -w\n");
				return 2;
			}
			chosen[nr_chosen++] = optarg;
			break;
		default:
			fprintf(stderr, "usage: alloc_bench [-r ROUNDS] [-w WORKLOAD]... "
					"[-a NAME=LIBRARY]... [-o] [BINARY]\n");
			return 2;
		}
	}
	if (!build)
		build = "build";
	if (optind < argc)
		snprintf(bin, sizeof(bin), "%s", argv[optind]);
	else
		snprintf(bin, sizeof(bin), "%s/tests/alloc_workloads", build);
	if (!nr_chosen)
		for (size_t w = 0; w < NR_WORK; w++)
			chosen[nr_chosen++] = all_workloads[w];

	snprintf(allocators[1].preload, sizeof(allocators[1].preload), "%s/lib/libptm.so", build);
	for (size_t a = 1; a < NR_ALLOC; a++) {
		allocators[a].available = access(allocators[a].preload, R_OK) == 0;
		if (only_ptm && a >= 2 && a < 2 + NR_OTHERS) {
			allocators[a].available = 0;
			continue;
		}
		if (!allocators[a].available)
			printf("note: %s is not available (%s missing)\n", allocators[a].name,
			       allocators[a].preload);
	}

	printf("allocator benchmark: median of %d rounds; time and peak heap RSS as ratios to "
	       "glibc (lower is better)\n\n",
	       rounds);
	printf("%-18s %10s %10s", "workload", "glibc s", "glibc MiB");
	for (size_t a = 1; a < NR_ALLOC; a++)
		if (allocators[a].available)
			printf(" %9.9s t %9.9s m", allocators[a].name, allocators[a].name);
	printf("\n");

	for (int w = 0; w < nr_chosen; w++) {
		double secs[MAX_ALLOC][MAX_ROUNDS], heap[MAX_ALLOC][MAX_ROUNDS];
		double after[MAX_ALLOC][MAX_ROUNDS], alloc_s[MAX_ALLOC][MAX_ROUNDS];
		double free_s[MAX_ALLOC][MAX_ROUNDS];
		double med_s[MAX_ALLOC], med_h[MAX_ALLOC], med_after[MAX_ALLOC];
		double med_alloc[MAX_ALLOC], med_free[MAX_ALLOC];
		int ok[MAX_ALLOC] = {0};

		for (int r = 0; r < rounds; r++) {
			for (size_t a = 0; a < NR_ALLOC; a++) {
				struct sample s;
				int err;

				if (!allocators[a].available)
					continue;
				err = run_one(bin, chosen[w], &allocators[a], &s);
				if (err) {
					fprintf(stderr, "alloc_bench: %s under %s failed: %s\n",
						chosen[w], allocators[a].name, strerror(-err));
					failures++;
					continue;
				}
				secs[a][ok[a]] = s.seconds;
				alloc_s[a][ok[a]] = s.alloc_s;
				free_s[a][ok[a]] = s.free_s;
				heap[a][ok[a]] = (double)(s.peak_kb - s.base_kb) / 1024.0;
				after[a][ok[a]] = s.peak_kb > s.base_kb
							  ? (double)(s.after_kb - s.base_kb) /
								    (double)(s.peak_kb - s.base_kb)
							  : NAN;
				ok[a]++;
			}
		}
		for (size_t a = 0; a < NR_ALLOC; a++) {
			med_s[a] = ok[a] ? median(secs[a], ok[a]) : NAN;
			med_h[a] = ok[a] ? median(heap[a], ok[a]) : NAN;
			med_after[a] = ok[a] ? median(after[a], ok[a]) : NAN;
			med_alloc[a] = ok[a] ? median(alloc_s[a], ok[a]) : NAN;
			med_free[a] = ok[a] ? median(free_s[a], ok[a]) : NAN;
		}
		printf("%-18s %10.3f %10.1f", chosen[w], med_s[0], med_h[0]);
		for (size_t a = 1; a < NR_ALLOC; a++)
			if (allocators[a].available)
				printf(" %11.2f %11.2f", med_s[a] / med_s[0],
				       med_h[0] > 0.5 ? med_h[a] / med_h[0] : NAN);
		printf("\n");
		if (strcmp(chosen[w], "swiss_cheese") == 0) {
			printf("%-18s", "  resident after");
			printf(" the frees, share of own peak heap RSS:");
			for (size_t a = 0; a < NR_ALLOC; a++)
				if (allocators[a].available)
					printf(" %s %.0f%%", allocators[a].name,
					       100.0 * med_after[a]);
			printf("\n%-18s", "  its two loops");
			printf(" timed apart, malloc+memset / free, seconds:");
			for (size_t a = 0; a < NR_ALLOC; a++)
				if (allocators[a].available)
					printf(" %s %.3f/%.3f", allocators[a].name, med_alloc[a],
					       med_free[a]);
			printf("\n");
		}
	}
	printf("\n(peak heap RSS = VmHWM - VmRSS before the workload; a ratio is shown as nan "
	       "when glibc's peak heap is under 0.5 MiB)\n");
	return failures ? 1 : 0;
}
