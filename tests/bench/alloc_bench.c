// SPDX-License-Identifier: MIT
/*
 * alloc_bench - libptm against glibc, jemalloc, tcmalloc and mimalloc.
 *
 * Usage: alloc_bench [-r ROUNDS] [-w WORKLOAD]... [-a NAME=LIBRARY[,VAR=VALUE]]...
 *                    [-o] [-c] [WORKLOADS_BINARY]
 * -a adds an allocator to preload (another libptm build, to compare a change
 * side by side in one run), with one environment variable set if given
 * (libptm with an option changed: -a norelease=build/lib/libptm.so,
 * MALLOC_RELEASE_THRESHOLD_=0); -o leaves out jemalloc, tcmalloc and
 * mimalloc; -c leaves out the callgrind counts.
 * Runs every workload of alloc_workloads under each allocator (LD_PRELOAD;
 * glibc is the process's own malloc), ROUNDS times (default 11), with the
 * allocators interleaved within a round, in reverse order every other round,
 * so that machine noise falls on all of them alike.  For each workload it
 * prints glibc's median wall time with the 25th and 75th percentiles of its
 * rounds, and for every other allocator the median of its per-round time
 * ratios to glibc's time in the same round, with their 25th and 75th
 * percentiles; the median peak heap RSS as a ratio to glibc's.
 * Beside them, a figure noise cannot move: the instructions per allocator
 * call (Ir/op), counted by valgrind --tool=callgrind in one run of the
 * workload at a tenth of its work (swiss_cheese whole), collecting only
 * inside the workload's call wrappers (see alloc_workloads.c): the user-space
 * instructions of malloc, free and realloc, not the kernel's page faults or
 * system calls.  Without valgrind the column shows nan.
 * For swiss_cheese it also prints the heap resident right after the frees
 * as a share of that allocator's own peak, (after - base) / (peak - base),
 * median with min and max, and its two loops' times apart; and, for an
 * allocator that gave pages back (libptm's books say how many runs and
 * bytes), what the kernel alone charges for that: right after each such
 * run, in the same round, `alloc_workloads release_replay` releases as many
 * runs and bytes from a fresh mapping, and the line shows the median of
 * those times as ratios to glibc's time in the round, and the median of the
 * per-round ratios left without it, (t - replay) / glibc.
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
#define MAX_ROUNDS 51
#define CG_DIVISOR 10 /* the callgrind runs do a tenth of the work */
#define MAX_ALLOC  8

struct allocator {
	const char *name;
	char preload[512]; /* "" for glibc */
	char env[128];     /* VAR=VALUE set for its runs, or "" */
	int available;
};

static struct allocator allocators[MAX_ALLOC] = {
	{"glibc", "", "", 1},
	{"libptm", "", "", 0},
	{"jemalloc", LIBDIR "libjemalloc.so.2", "", 0},
	{"tcmalloc", LIBDIR "libtcmalloc_minimal.so.4", "", 0},
	{"mimalloc", LIBDIR "libmimalloc.so.2", "", 0},
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
	long ops;
	long long release_runs, release_bytes; /* libptm's release books; -1 elsewhere */
};

/*
 * Runs argv (found on PATH with use_path) under allocator a, or with no
 * preload if a is NULL, and reads the first line it prints; 0 or a negative
 * errno (-ECHILD if it did not exit with 0, -EPROTO if it printed nothing).
 */
static int spawn_line(char **argv, bool use_path, const struct allocator *a, char *line,
		      size_t len)
{
	char preload_env[600];
	char **envp;
	size_t n = 0, i = 0;
	int pipefd[2], status, err = 0;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	FILE *f;

	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		if (strncmp(environ[k], "LD_PRELOAD=", 11) != 0)
			envp[i++] = environ[k];
	if (a && a->preload[0]) {
		snprintf(preload_env, sizeof(preload_env), "LD_PRELOAD=%s", a->preload);
		envp[i++] = preload_env;
	}
	if (a && a->env[0])
		envp[i++] = (char *)a->env;
	if (pipe(pipefd)) {
		free(envp);
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	if (use_path)
		err = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
	else
		err = -posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(pipefd[1]);
	if (err) {
		close(pipefd[0]);
		return err;
	}
	f = fdopen(pipefd[0], "r");
	if (!f || !fgets(line, (int)len, f))
		err = -EPROTO;
	if (f)
		fclose(f);
	else
		close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		err = err ? err : -ECHILD;
	return err;
}

/*
 * Runs one workload under one allocator; 0 or a negative errno.  With
 * cg_out set, under callgrind at a tenth of the work, its profile written
 * there.
 */
static int run_one(const char *bin, const char *work, const struct allocator *a,
		   const char *cg_out, struct sample *out)
{
	char line[256], cg_file[600], divisor[16];
	char *plain_argv[] = {(char *)bin, (char *)work, NULL};
	char *cg_argv[] = {"valgrind",        "--tool=callgrind",  "--collect-atstart=no",
			   "--toggle-collect=wl_*", cg_file,            "--log-file=/dev/null",
			   (char *)bin,       (char *)work,        divisor,
			   NULL};
	int err;

	if (cg_out) {
		snprintf(cg_file, sizeof(cg_file), "--callgrind-out-file=%s", cg_out);
		snprintf(divisor, sizeof(divisor), "%d", CG_DIVISOR);
	}
	err = spawn_line(cg_out ? cg_argv : plain_argv, cg_out != NULL, a, line, sizeof(line));
	if (err)
		return err;
	out->release_runs = out->release_bytes = -1;
	if (sscanf(line,
		   "seconds=%lf base_rss_kb=%ld peak_rss_kb=%ld rss_after_kb=%ld alloc_s=%lf "
		   "free_s=%lf ops=%ld release_runs=%lld release_bytes=%lld",
		   &out->seconds, &out->base_kb, &out->peak_kb, &out->after_kb, &out->alloc_s,
		   &out->free_s, &out->ops, &out->release_runs, &out->release_bytes) != 9 ||
	    out->ops <= 0)
		return -EPROTO;
	return 0;
}

/*
 * The kernel's time to release runs page runs of bytes in all, with no
 * allocator (see alloc_workloads' release_replay); 0 or a negative errno,
 * -EPROTO also if VmRSS did not drop by at least nine tenths of bytes.
 */
static int run_replay(const char *bin, long long runs, long long bytes, double *seconds)
{
	char line[256], nruns[24], nbytes[24];
	char *argv[] = {(char *)bin, "release_replay", nruns, nbytes, NULL};
	long r, pages, released_kb;
	int err;

	snprintf(nruns, sizeof(nruns), "%lld", runs);
	snprintf(nbytes, sizeof(nbytes), "%lld", bytes);
	err = spawn_line(argv, false, NULL, line, sizeof(line));
	if (err)
		return err;
	if (sscanf(line, "seconds=%lf runs=%ld pages=%ld released_kb=%ld", seconds, &r, &pages,
		   &released_kb) != 4 ||
	    r != runs || (double)released_kb * 1024.0 < 0.9 * (double)bytes)
		return -EPROTO;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) (sorted in place), interpolated between ranks; NAN when n is 0. */
static double quantile(double *v, int n, double q)
{
	double pos, frac;
	int lo;

	if (n == 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	pos = q * (n - 1);
	lo = (int)pos;
	frac = pos - lo;
	return lo + 1 < n ? v[lo] + frac * (v[lo + 1] - v[lo]) : v[lo];
}

/*
 * Instructions per call of one workload under one allocator, from one
 * callgrind run: the profile's "totals:" line (instructions collected inside
 * the wrappers) over the calls the workload reports.  NAN if valgrind fails.
 */
static double instructions_per_op(const char *bin, const char *work, const struct allocator *a)
{
	char path[64], line[256];
	struct sample s;
	double ir = NAN;
	FILE *f;
	int err;

	snprintf(path, sizeof(path), "/tmp/alloc_bench.%d.cg", (int)getpid());
	err = run_one(bin, work, a, path, &s);
	if (err == 0 && (f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "totals:", 7) == 0)
				ir = strtod(line + 7, NULL) / (double)s.ops;
		fclose(f);
	}
	if (isnan(ir))
		fprintf(stderr, "alloc_bench: no instruction count for %s under %s: %s\n", work,
			a->name, err ? strerror(-err) : "no totals in callgrind's profile");
	unlink(path);
	return ir;
}

/* Whether valgrind runs here at all (it is in the Makefile's package list). */
static bool have_valgrind(void)
{
	return system("valgrind --version >/dev/null 2>&1") == 0;
}

int main(int argc, char **argv)
{
	const char *build = getenv("HF_BUILD_DIR");
	const char *chosen[NR_WORK];
	char bin[512];
	int rounds = 11, nr_chosen = 0, opt, failures = 0;
	bool only_ptm = false, counts = true;

	while ((opt = getopt(argc, argv, "r:w:a:oc")) != -1) {
		char *end, *eq, *comma;

		switch (opt) {
		case 'a':
			eq = strchr(optarg, '=');
			comma = eq ? strchr(eq, ',') : NULL;
			if (!eq || eq == optarg || !eq[1] || nr_alloc == MAX_ALLOC ||
			    (comma && (comma == eq + 1 || !strchr(comma, '=') || comma[1] == '=' ||
				       strlen(comma + 1) >= sizeof(allocators[0].env)))) {
				fprintf(stderr,
					"alloc_bench: -a takes NAME=LIBRARY[,VAR=VALUE], at most %d\n",
					MAX_ALLOC - 5);
				return 2;
			}
			*eq = '\0';
			if (comma) {
				*comma = '\0';
				snprintf(allocators[nr_alloc].env, sizeof(allocators[0].env), "%s",
					 comma + 1);
			}
			allocators[nr_alloc].name = optarg;
			snprintf(allocators[nr_alloc].preload, sizeof(allocators[0].preload), "%s",
				 eq + 1);
			nr_alloc++;
			break;
		case 'o':
			only_ptm = true;
			break;
		case 'c':
			counts = false;
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
					"[-a NAME=LIBRARY[,VAR=VALUE]]... [-o] [-c] [BINARY]\n");
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

	if (counts && !have_valgrind()) {
		printf("note: valgrind is not available: no instruction counts\n");
		counts = false;
	}
	printf("allocator benchmark: %d interleaved rounds. glibc: median seconds [25th-75th "
	       "percentile]; others: median of the per-round time ratios to glibc "
	       "[25th-75th percentile] (t) and median peak heap RSS ratio (m), lower is better; "
	       "Ir/op: instructions per malloc/free/realloc call (callgrind, one run)\n\n",
	       rounds);
	printf("%-18s %21s %9s %7s", "workload", "glibc s [p25-p75]", "glibc MiB", "Ir/op");
	for (size_t a = 1; a < NR_ALLOC; a++)
		if (allocators[a].available)
			printf(" | %-9.9s t [p25-p75]      m   Ir/op", allocators[a].name);
	printf("\n");

	for (int w = 0; w < nr_chosen; w++) {
		double secs[MAX_ALLOC][MAX_ROUNDS], heap[MAX_ALLOC][MAX_ROUNDS];
		double after[MAX_ALLOC][MAX_ROUNDS], alloc_s[MAX_ALLOC][MAX_ROUNDS];
		double free_s[MAX_ALLOC][MAX_ROUNDS], ratio[MAX_ALLOC][MAX_ROUNDS];
		double med_h[MAX_ALLOC], ir[MAX_ALLOC];
		double kernel[MAX_ALLOC][MAX_ROUNDS], rest[MAX_ALLOC][MAX_ROUNDS];
		long long rel_runs[MAX_ALLOC] = {0}, rel_bytes[MAX_ALLOC] = {0};
		int ok[MAX_ALLOC] = {0}, nr_ratio[MAX_ALLOC] = {0}, nr_kernel[MAX_ALLOC] = {0};
		bool replay = strcmp(chosen[w], "swiss_cheese") == 0;

		for (int r = 0; r < rounds; r++) {
			double round_s[MAX_ALLOC], replay_s[MAX_ALLOC];

			for (size_t k = 0; k < NR_ALLOC; k++) {
				size_t a = r % 2 ? NR_ALLOC - 1 - k : k;
				struct sample s;
				int err;

				round_s[a] = replay_s[a] = NAN;
				if (!allocators[a].available)
					continue;
				err = run_one(bin, chosen[w], &allocators[a], NULL, &s);
				if (err) {
					fprintf(stderr, "alloc_bench: %s under %s failed: %s\n",
						chosen[w], allocators[a].name, strerror(-err));
					failures++;
					continue;
				}
				round_s[a] = s.seconds;
				secs[a][ok[a]] = s.seconds;
				alloc_s[a][ok[a]] = s.alloc_s;
				free_s[a][ok[a]] = s.free_s;
				heap[a][ok[a]] = (double)(s.peak_kb - s.base_kb) / 1024.0;
				after[a][ok[a]] = s.peak_kb > s.base_kb
							  ? (double)(s.after_kb - s.base_kb) /
								    (double)(s.peak_kb - s.base_kb)
							  : NAN;
				ok[a]++;
				if (!replay || s.release_runs <= 0 || s.release_bytes <= 0)
					continue;
				rel_runs[a] = s.release_runs;
				rel_bytes[a] = s.release_bytes;
				err = run_replay(bin, s.release_runs, s.release_bytes, &replay_s[a]);
				if (err) {
					fprintf(stderr, "alloc_bench: the release replay for %s failed: %s\n",
						allocators[a].name, strerror(-err));
					replay_s[a] = NAN;
					failures++;
				}
			}
			for (size_t a = 1; a < NR_ALLOC; a++) {
				if (isnan(round_s[a]) || isnan(round_s[0]))
					continue;
				ratio[a][nr_ratio[a]++] = round_s[a] / round_s[0];
				if (isnan(replay_s[a]))
					continue;
				kernel[a][nr_kernel[a]] = replay_s[a] / round_s[0];
				rest[a][nr_kernel[a]++] = (round_s[a] - replay_s[a]) / round_s[0];
			}
		}
		for (size_t a = 0; a < NR_ALLOC; a++) {
			med_h[a] = quantile(heap[a], ok[a], 0.5);
			ir[a] = counts && allocators[a].available
					? instructions_per_op(bin, chosen[w], &allocators[a])
					: NAN;
		}
		printf("%-18s %7.3f [%5.3f-%5.3f] %9.1f %7.1f", chosen[w],
		       quantile(secs[0], ok[0], 0.5), quantile(secs[0], ok[0], 0.25),
		       quantile(secs[0], ok[0], 0.75), med_h[0], ir[0]);
		for (size_t a = 1; a < NR_ALLOC; a++)
			if (allocators[a].available)
				printf(" | %11.2f [%4.2f-%4.2f] %6.2f %7.1f",
				       quantile(ratio[a], nr_ratio[a], 0.5),
				       quantile(ratio[a], nr_ratio[a], 0.25),
				       quantile(ratio[a], nr_ratio[a], 0.75),
				       med_h[0] > 0.5 ? med_h[a] / med_h[0] : NAN, ir[a]);
		printf("\n");
		if (strcmp(chosen[w], "swiss_cheese") == 0) {
			printf("%-18s", "  resident after");
			printf(" the frees, share of own peak heap RSS, median [min-max]:");
			for (size_t a = 0; a < NR_ALLOC; a++)
				if (allocators[a].available)
					printf(" %s %.1f%% [%.1f-%.1f]", allocators[a].name,
					       100.0 * quantile(after[a], ok[a], 0.5),
					       100.0 * quantile(after[a], ok[a], 0),
					       100.0 * quantile(after[a], ok[a], 1));
			printf("\n%-18s", "  its two loops");
			printf(" timed apart, median malloc+memset / free, seconds:");
			for (size_t a = 0; a < NR_ALLOC; a++)
				if (allocators[a].available)
					printf(" %s %.3f/%.3f", allocators[a].name,
					       quantile(alloc_s[a], ok[a], 0.5),
					       quantile(free_s[a], ok[a], 0.5));
			printf("\n");
			for (size_t a = 1; a < NR_ALLOC; a++) {
				if (!nr_kernel[a])
					continue;
				printf("%-18s the kernel's part of %s's page release, replayed alone "
				       "(%lld runs, %.1f MiB, no allocator), and the rest, as shares "
				       "of glibc's time, median [p25-p75]: kernel %.2f [%.2f-%.2f], "
				       "rest %.2f [%.2f-%.2f]\n",
				       "  page release", allocators[a].name, rel_runs[a],
				       (double)rel_bytes[a] / (1 << 20),
				       quantile(kernel[a], nr_kernel[a], 0.5),
				       quantile(kernel[a], nr_kernel[a], 0.25),
				       quantile(kernel[a], nr_kernel[a], 0.75),
				       quantile(rest[a], nr_kernel[a], 0.5),
				       quantile(rest[a], nr_kernel[a], 0.25),
				       quantile(rest[a], nr_kernel[a], 0.75));
			}
		}
		fflush(stdout);
	}
	printf("\n(peak heap RSS = VmHWM - VmRSS before the workload; a ratio is shown as nan "
	       "when glibc's peak heap is under 0.5 MiB)\n");
	return failures ? 1 : 0;
}
