/* SPDX-License-Identifier: MIT */
/*
 * options.h - heapfragd's command line.
 *
 * heapfragd [-l ADDR:PORT] [-p PID]... [-e PATH]... [-a] [-m exact|passive]
 *           [-i SECONDS] [--retention SECONDS] [--no-follow-forks]
 *           [--exit-with-command] [--max-live N] [--max-procs N] [--max-mmaps N]
 *           [--census-interval SECONDS] [--census-budget PERCENT] [--census-stop]
 *           [--no-census] [--token-file PATH] [--tls-cert PATH --tls-key PATH]
 *           [-v] [-- COMMAND ARGS...]
 */
#ifndef HF_OPTIONS_H
#define HF_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot.h"

/* Bad usage exits with this status, after one sentence on stderr. */
#define HF_EXIT_USAGE 2

struct hf_options {
	const char *listen;
	pid_t *pids;
	size_t nr_pids;
	char **exes;
	size_t nr_exes;
	bool all;
	enum hf_mode mode;
	double interval;  /* seconds between snapshots */
	double retention; /* seconds an exited process stays listed */
	bool follow_forks;
	bool exit_with_command;
	char **command; /* NULL-terminated, points into argv; NULL without -- */
	uint32_t max_live;
	uint32_t max_procs;
	uint32_t max_mmaps;
	const char *token_file;
	const char *tls_cert_file; /* with tls_key_file: HTTPS only */
	const char *tls_key_file;
	bool verbose;
	/* The heap census (census_worker.h). */
	bool census;
	double census_interval; /* seconds; NAN until set: then the snapshot interval */
	double census_budget;   /* share of one CPU, (0, 1] */
	bool census_stop;       /* freeze the target for the copy */
	bool census_stop_busy;  /* ... only after a walk its changes made partial */
	/* Allocation sites (exact mode; bpf/heapfrag.h). */
	bool sites;
	bool stacks;
	uint32_t stack_depth;
	uint32_t max_sites;
	uint32_t max_stacks;
	uint32_t site_metrics; /* sites per process in /metrics */
	double history_seconds; /* each process's history (history.h); 0: none */
};

/*
 * Parses argv into *opts (defaults first).  Returns 0, or exits with
 * HF_EXIT_USAGE after saying what is wrong (and 0 after --help/--version).
 */
int hf_options_parse(int argc, char **argv, struct hf_options *opts);

void hf_options_free(struct hf_options *opts);

#endif /* HF_OPTIONS_H */
