// SPDX-License-Identifier: MIT
/*
 * options.c - heapfragd's command line, parsed with argp.  Every number is
 * parsed strictly (no trailing junk, no sign where none belongs, in range),
 * and a bad argument ends the program with status 2 and one sentence.
 */
#include "options.h"

#include <argp.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bpf/heapfrag.h"

const char *argp_program_version = "heapfragd " HF_VERSION;
const char *argp_program_bug_address = NULL;

enum {
	OPT_RETENTION = 0x100,
	OPT_NO_FOLLOW_FORKS,
	OPT_EXIT_WITH_COMMAND,
	OPT_MAX_LIVE,
	OPT_MAX_PROCS,
	OPT_MAX_MMAPS,
	OPT_TOKEN_FILE,
	OPT_CENSUS_INTERVAL,
	OPT_CENSUS_BUDGET,
	OPT_CENSUS_STOP,
	OPT_NO_CENSUS,
	OPT_CENSUS_STOP_BUSY,
	OPT_NO_SITES,
	OPT_NO_STACKS,
	OPT_STACK_DEPTH,
	OPT_MAX_SITES,
	OPT_MAX_STACKS,
	OPT_SITE_METRICS,
	OPT_HISTORY,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
};

static const char doc[] =
	"heapfragd -- measure the heap fragmentation of running processes from outside.\v"
	"Every traced process is served at http://ADDR:PORT/api/v1/processes/PID and "
	"on /metrics.  Tracing needs root, or the capabilities the README's security section "
	"lists.";

static const char args_doc[] = "[-- COMMAND ARGS...]";

static const struct argp_option options[] = {
	{"listen", 'l', "ADDR:PORT", 0, "Serve HTTP here (default 127.0.0.1:9310)", 0},
	{"pid", 'p', "PID", 0, "Trace this running process (repeatable)", 0},
	{"exe", 'e', "PATH", 0,
	 "Trace every process running this executable, now and as they start (repeatable)", 0},
	{"all", 'a', NULL, 0, "Trace every process", 0},
	{"mode", 'm', "exact|passive", 0,
	 "exact: uprobes on the malloc family (default); passive: syscalls and /proc only", 0},
	{"interval", 'i', "SECONDS", 0, "Seconds between snapshots (default 1)", 0},
	{"retention", OPT_RETENTION, "SECONDS", 0,
	 "Seconds an exited process stays listed (default 300)", 0},
	{"no-follow-forks", OPT_NO_FOLLOW_FORKS, NULL, 0,
	 "Do not trace the children of traced processes", 0},
	{"exit-with-command", OPT_EXIT_WITH_COMMAND, NULL, 0,
	 "With -- COMMAND: exit with its status once it ends", 0},
	{"max-live", OPT_MAX_LIVE, "N", 0,
	 "Live allocations tracked at once, all processes together (default 1048576)", 1},
	{"max-procs", OPT_MAX_PROCS, "N", 0, "Processes traced at once (default 1024)", 1},
	{"max-mmaps", OPT_MAX_MMAPS, "N", 0,
	 "Mmapped chunks tracked at once, all processes together (default 65536)", 1},
	{"census-interval", OPT_CENSUS_INTERVAL, "SECONDS", 0,
	 "Seconds between heap censuses of one process at most (default: the interval)", 1},
	{"census-budget", OPT_CENSUS_BUDGET, "PERCENT", 0,
	 "Share of one CPU the heap censuses may use, 0.01 to 100 (default 2)", 1},
	{"census-stop", OPT_CENSUS_STOP, NULL, 0,
	 "Hold each target still while its heap is copied (default: read it running)", 1},
	{"census-stop-busy", OPT_CENSUS_STOP_BUSY, NULL, 0,
	 "Hold a target still for the copy only when its last census was partial because its "
	 "heap kept changing",
	 1},
	{"no-census", OPT_NO_CENSUS, NULL, 0, "Do not take heap censuses", 1},
	{"no-sites", OPT_NO_SITES, NULL, 0, "Do not keep allocation sites (exact mode)", 1},
	{"no-stacks", OPT_NO_STACKS, NULL, 0,
	 "A site is the allocation call alone, without the stack above it", 1},
	{"stack-depth", OPT_STACK_DEPTH, "N", 0, "Frames kept per site, 1 to 127 (default 32)", 1},
	{"max-sites", OPT_MAX_SITES, "N", 0,
	 "Allocation sites kept at once, all processes together (default 16384)", 1},
	{"max-stacks", OPT_MAX_STACKS, "N", 0,
	 "Distinct stacks kept at once, all processes together (default 16384)", 1},
	{"site-metrics", OPT_SITE_METRICS, "N", 0,
	 "Sites per process in /metrics and the doctor, 0 to 20, by pinned then live bytes "
	 "(default 10)",
	 1},
	{"history", OPT_HISTORY, "SECONDS", 0,
	 "Seconds of each process's past kept for charts, in at most 720 points (default 3600; "
	 "0: none)",
	 1},
	{"token-file", OPT_TOKEN_FILE, "PATH", 0,
	 "Require this file's bearer token to attach or detach and, when listening beyond "
	 "loopback, to read /metrics and /api/",
	 2},
	{"tls-cert", OPT_TLS_CERT, "PATH", 0,
	 "Serve HTTPS only, with this PEM certificate (chain); needs --tls-key", 2},
	{"tls-key", OPT_TLS_KEY, "PATH", 0, "The PEM private key of --tls-cert", 2},
	{"verbose", 'v', NULL, 0, "Log debug messages", 2},
	{0},
};

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double min, double *out)
{
	double v;
	char *end;

	if (!s || !*s || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > 1e9)
		return -EINVAL;
	*out = v;
	return 0;
}

static int push(void **arr, size_t *n, size_t elem, const void *v)
{
	void *grown = realloc(*arr, (*n + 1) * elem);

	if (!grown)
		return -ENOMEM;
	memcpy((char *)grown + *n * elem, v, elem);
	*arr = grown;
	(*n)++;
	return 0;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct hf_options *o = state->input;
	uint64_t v = 0;

	switch (key) {
	case 'l':
		if (!strchr(arg, ':'))
			argp_error(state, "listen address '%s' is not of the form ADDR:PORT", arg);
		o->listen = arg;
		break;
	case 'p': {
		pid_t pid;

		if (parse_u64(arg, 1, 4194304, &v))
			argp_error(state, "'%s' is not a process id", arg);
		pid = (pid_t)v;
		if (push((void **)&o->pids, &o->nr_pids, sizeof(pid), &pid))
			argp_failure(state, HF_EXIT_USAGE, ENOMEM, "out of memory");
		break;
	}
	case 'e':
		if (!*arg)
			argp_error(state, "-e needs the path of an executable");
		if (push((void **)&o->exes, &o->nr_exes, sizeof(arg), &arg))
			argp_failure(state, HF_EXIT_USAGE, ENOMEM, "out of memory");
		break;
	case 'a':
		o->all = true;
		break;
	case 'm':
		if (strcmp(arg, "exact") == 0)
			o->mode = HF_MODE_EXACT;
		else if (strcmp(arg, "passive") == 0)
			o->mode = HF_MODE_PASSIVE;
		else
			argp_error(state, "mode '%s' is neither exact nor passive", arg);
		break;
	case 'i':
		if (parse_seconds(arg, 0.01, &o->interval))
			argp_error(state, "interval '%s' is not a number of seconds >= 0.01", arg);
		break;
	case OPT_RETENTION:
		if (parse_seconds(arg, 0, &o->retention))
			argp_error(state, "retention '%s' is not a number of seconds >= 0", arg);
		break;
	case OPT_NO_FOLLOW_FORKS:
		o->follow_forks = false;
		break;
	case OPT_EXIT_WITH_COMMAND:
		o->exit_with_command = true;
		break;
	case OPT_MAX_LIVE:
		if (parse_u64(arg, 1, 1u << 28, &v))
			argp_error(state, "--max-live '%s' is not a count from 1 to 268435456",
				   arg);
		o->max_live = (uint32_t)v;
		break;
	case OPT_MAX_PROCS:
		if (parse_u64(arg, 1, 1u << 20, &v))
			argp_error(state, "--max-procs '%s' is not a count from 1 to 1048576", arg);
		o->max_procs = (uint32_t)v;
		break;
	case OPT_MAX_MMAPS:
		if (parse_u64(arg, 1, 1u << 24, &v))
			argp_error(state, "--max-mmaps '%s' is not a count from 1 to 16777216",
				   arg);
		o->max_mmaps = (uint32_t)v;
		break;
	case OPT_CENSUS_INTERVAL:
		if (parse_seconds(arg, 0.01, &o->census_interval))
			argp_error(state, "--census-interval '%s' is not a number of seconds >= 0.01",
				   arg);
		break;
	case OPT_CENSUS_BUDGET: {
		double pct = 0;

		if (parse_seconds(arg, 0.01, &pct) || pct > 100)
			argp_error(state, "--census-budget '%s' is not a percentage from 0.01 to 100",
				   arg);
		o->census_budget = pct / 100;
		break;
	}
	case OPT_CENSUS_STOP:
		o->census_stop = true;
		break;
	case OPT_NO_CENSUS:
		o->census = false;
		break;
	case OPT_CENSUS_STOP_BUSY:
		o->census_stop_busy = true;
		break;
	case OPT_NO_SITES:
		o->sites = false;
		break;
	case OPT_NO_STACKS:
		o->stacks = false;
		break;
	case OPT_STACK_DEPTH:
		if (parse_u64(arg, 1, HFB_MAX_STACK_DEPTH, &v))
			argp_error(state, "--stack-depth '%s' is not a count from 1 to %d", arg,
				   HFB_MAX_STACK_DEPTH);
		o->stack_depth = (uint32_t)v;
		break;
	case OPT_MAX_SITES:
		if (parse_u64(arg, 1, 1u << 24, &v))
			argp_error(state, "--max-sites '%s' is not a count from 1 to 16777216", arg);
		o->max_sites = (uint32_t)v;
		break;
	case OPT_MAX_STACKS:
		if (parse_u64(arg, 1, 1u << 24, &v))
			argp_error(state, "--max-stacks '%s' is not a count from 1 to 16777216", arg);
		o->max_stacks = (uint32_t)v;
		break;
	case OPT_HISTORY:
		if (parse_seconds(arg, 0, &o->history_seconds) || o->history_seconds > 30 * 86400.0)
			argp_error(state, "--history '%s' is not a number of seconds from 0 to 2592000",
				   arg);
		break;
	case OPT_SITE_METRICS:
		if (parse_u64(arg, 0, HF_MAX_TOP_SITES, &v))
			argp_error(state, "--site-metrics '%s' is not a count from 0 to %d", arg,
				   HF_MAX_TOP_SITES);
		o->site_metrics = (uint32_t)v;
		break;
	case OPT_TOKEN_FILE:
		o->token_file = arg;
		break;
	case OPT_TLS_CERT:
		if (!*arg)
			argp_error(state, "--tls-cert needs the path of a PEM certificate");
		o->tls_cert_file = arg;
		break;
	case OPT_TLS_KEY:
		if (!*arg)
			argp_error(state, "--tls-key needs the path of a PEM private key");
		o->tls_key_file = arg;
		break;
	case 'v':
		o->verbose = true;
		break;
	case ARGP_KEY_ARGS:
		/* Everything after "--" (or the first non-option) is the command. */
		o->command = state->argv + state->next;
		state->next = state->argc;
		break;
	case ARGP_KEY_END:
		if (o->exit_with_command && !o->command)
			argp_error(state, "--exit-with-command needs a command after --");
		if (!o->tls_cert_file != !o->tls_key_file)
			argp_error(state, "--tls-cert and --tls-key go together: give both or neither");
		if (isnan(o->census_interval))
			o->census_interval = o->interval;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp argp = {
	.options = options,
	.parser = parse_opt,
	.args_doc = args_doc,
	.doc = doc,
};

int hf_options_parse(int argc, char **argv, struct hf_options *opts)
{
	*opts = (struct hf_options){
		.listen = "127.0.0.1:9310",
		.mode = HF_MODE_EXACT,
		.interval = 1.0,
		.retention = 300.0,
		.follow_forks = true,
		.max_live = HFB_DEFAULT_MAX_LIVE,
		.max_procs = HFB_DEFAULT_MAX_PROCS,
		.max_mmaps = HFB_DEFAULT_MAX_MMAPS,
		.census = true,
		.census_interval = NAN,
		.census_budget = 0.02,
		.sites = true,
		.stacks = true,
		.stack_depth = HFB_DEFAULT_STACK_DEPTH,
		.max_sites = HFB_DEFAULT_MAX_SITES,
		.max_stacks = HFB_DEFAULT_MAX_STACKS,
		.site_metrics = 10,
		.history_seconds = 3600,
	};
	/* argp_error() and argp_failure() exit with this status. */
	argp_err_exit_status = HF_EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, opts) != 0) {
		fprintf(stderr, "heapfragd: cannot parse the command line\n");
		exit(HF_EXIT_USAGE);
	}
	return 0;
}

void hf_options_free(struct hf_options *opts)
{
	free(opts->pids);
	free(opts->exes);
	opts->pids = NULL;
	opts->exes = NULL;
}
