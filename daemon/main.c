// SPDX-License-Identifier: MIT
/*
 * main.c - heapfragd: parse the command line, load the BPF side, attach to
 * what was asked, serve HTTP, and run the registry's loop until SIGINT or
 * SIGTERM (or the end of the command with --exit-with-command).
 *
 * Start-up problems the user can fix (a bad argument, a process that does
 * not exist or cannot be traced) end with one sentence and status 2.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "http.h"
#include "log.h"
#include "options.h"
#include "registry.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		return -errno;
	/* A client that hangs up mid-reply must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* The token is the file's first line. */
static char *read_token(const char *path)
{
	size_t cap = 4096;
	char *line = malloc(cap);
	ssize_t len;
	FILE *f = line ? fopen(path, "r") : NULL;

	if (!f) {
		free(line);
		return NULL;
	}
	/*
	 * The secret is read straight into line, never through stdio's buffer
	 * (freed unwiped by fclose), in one allocation that getline does not
	 * grow for a token under 4 KiB.
	 */
	setvbuf(f, NULL, _IONBF, 0);
	len = getline(&line, &cap, f);
	fclose(f);
	if (len <= 0) {
		free(line);
		return NULL;
	}
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	if (!len) {
		free(line);
		return NULL;
	}
	return line;
}

static void usage_error(const char *fmt, const char *what, const char *why)
{
	fprintf(stderr, "heapfragd: ");
	fprintf(stderr, fmt, what, why);
	fputc('\n', stderr);
}

/*
 * Names the first capability heapfragd needs for what was asked and does
 * not hold, before libbpf or tracefs fail with a bare EPERM.  1 when one is
 * missing (said on stderr), a negative errno when the set cannot be read.
 */
static int check_capabilities(const struct hf_options *opts)
{
	struct hf_caps_use use = {
		.root = geteuid() == 0,
		.exact = opts->mode == HF_MODE_EXACT,
		.watch_exec = opts->nr_exes > 0,
	};
	const struct hf_cap_need *need;
	uint64_t effective;
	int err = hf_caps_effective(&effective);

	if (err) {
		fprintf(stderr, "heapfragd: cannot read its own capabilities: %s\n",
			strerror(-err));
		return err;
	}
	need = hf_caps_missing(effective, &use);
	if (!need)
		return 0;
	fprintf(stderr,
		"heapfragd: needs %s to %s, and its effective capabilities lack it (see the "
		"README's security section)\n",
		need->name, need->why);
	return 1;
}

int main(int argc, char **argv)
{
	struct hf_http_config http_cfg = {.max_connections = 128, .timeout_seconds = 10};
	struct hf_registry *reg = NULL;
	struct hf_http *http = NULL;
	struct hf_options opts;
	struct hf_service svc;
	char *token = NULL;
	char why[512], what[64];
	int err, status = 0;

	hf_options_parse(argc, argv, &opts);
	hf_log_level = opts.verbose ? HF_LOG_DEBUG : HF_LOG_INFO;
	hf_log_route_libbpf();

	if (opts.token_file) {
		token = read_token(opts.token_file);
		if (!token) {
			usage_error("cannot read a token from %s%s", opts.token_file, "");
			status = HF_EXIT_USAGE;
			goto cleanup;
		}
	}
	http_cfg.tls_cert_file = opts.tls_cert_file;
	http_cfg.tls_key_file = opts.tls_key_file;
	if (hf_http_check_tls(&http_cfg)) {
		status = HF_EXIT_USAGE;
		goto cleanup;
	}
	err = install_signals();
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to install signal handlers: %s", strerror(-err));
		status = 1;
		goto cleanup;
	}
	err = check_capabilities(&opts);
	if (err) {
		status = err < 0 ? 1 : HF_EXIT_USAGE;
		goto cleanup;
	}

	err = hf_registry_new(&opts, &reg);
	if (err) {
		fprintf(stderr, "heapfragd: cannot load the BPF programs: %s\n", strerror(-err));
		status = 1;
		goto cleanup;
	}

	for (size_t i = 0; i < opts.nr_pids; i++) {
		why[0] = '\0';
		err = hf_registry_attach(reg, opts.pids[i], opts.mode, why, sizeof(why));
		if (err == -EEXIST)
			continue;
		if (err) {
			snprintf(what, sizeof(what), "%d", opts.pids[i]);
			usage_error("cannot trace process %s: %s", what,
				    why[0] ? why : strerror(-err));
			status = HF_EXIT_USAGE;
			goto cleanup;
		}
	}
	for (size_t i = 0; i < opts.nr_exes; i++) {
		why[0] = '\0';
		err = hf_registry_watch_exe(reg, opts.exes[i], why, sizeof(why));
		if (err) {
			usage_error("cannot watch %s: %s", opts.exes[i],
				    why[0] ? why : strerror(-err));
			status = HF_EXIT_USAGE;
			goto cleanup;
		}
	}
	if (opts.all) {
		why[0] = '\0';
		err = hf_registry_trace_all(reg, why, sizeof(why));
		if (err) {
			usage_error("cannot trace every process: %s%s", why, "");
			status = 1;
			goto cleanup;
		}
	}
	/* Forked while heapfragd has one thread: before HTTP starts its own. */
	if (opts.command) {
		pid_t child;

		why[0] = '\0';
		err = hf_registry_spawn(reg, opts.command, &child, why, sizeof(why));
		if (err) {
			usage_error("cannot run %s: %s", opts.command[0],
				    why[0] ? why : strerror(-err));
			status = HF_EXIT_USAGE;
			goto cleanup;
		}
		hf_log(HF_LOG_INFO, "started %s as process %d", opts.command[0], child);
	}

	hf_registry_service(reg, &svc);
	http_cfg.listen = opts.listen;
	http_cfg.token = token;
	err = hf_http_start(&http_cfg, &svc, &http);
	if (err) {
		fprintf(stderr, "heapfragd: cannot serve HTTP on %s: %s\n", opts.listen,
			strerror(-err));
		status = 1;
		goto cleanup;
	}
	hf_log(HF_LOG_INFO, "serving %s://%s/", opts.tls_cert_file ? "https" : "http", opts.listen);

	err = hf_registry_run(reg, &stop, &status);
	if (err)
		status = 1;
	hf_log(HF_LOG_INFO, "shutting down");

cleanup:
	hf_http_stop(http);
	hf_registry_free(reg);
	if (token) {
		/* The token is a secret: do not leave it in freed memory. */
		explicit_bzero(token, strlen(token));
		free(token);
	}
	hf_options_free(&opts);
	return status;
}
