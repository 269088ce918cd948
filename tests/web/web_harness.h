/* SPDX-License-Identifier: MIT */
/*
 * web_harness.h - what the HTTP integration tests share: the real heapfragd
 * and workloads as child processes, free loopback ports, and an HTTP client
 * (libcurl) that returns status, headers and body.
 */
#ifndef HF_TEST_WEB_HARNESS_H
#define HF_TEST_WEB_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct http_reply {
	long status;
	char *body;
	size_t len;
	char *headers;
	double seconds;
};

/*
 * Why the real daemon cannot run here (not root, not built), or NULL when it
 * can; the test then calls HF_SKIP, which fails under CI=true.
 */
const char *harness_missing(void);
/* $HF_BUILD_DIR/PATH in a static buffer per call site. */
const char *harness_build_path(char *out, size_t len, const char *rel);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int harness_free_port(void);
/* A fresh directory under /tmp, removed by harness_rmdir(). */
char *harness_tmpdir(const char *tag);
void harness_rmdir(const char *dir);

/*
 * Starts argv with stdout and stderr appended to log (when not NULL); when
 * out_fd is not NULL, stdout is a pipe instead, read end in *out_fd.
 */
pid_t harness_spawn(char *const argv[], const char *log, int *out_fd);
/* The same, with "NAME=value" strings from env (NULL-terminated) added to its environment. */
pid_t harness_spawn_env(char *const argv[], char *const env[], const char *log, int *out_fd);
/*
 * Starts tests/web_workload MODE ARG on libptm.so (LD_PRELOAD) with
 * MALLOC_SAMPLE_INTERVAL_=sample_interval, stdout a pipe in *out_fd.
 */
pid_t harness_spawn_libptm_workload(const char *mode, const char *arg, long sample_interval,
				    int *out_fd);
/* Reads from fd until line (e.g. "ready\n") arrives or timeout passes. */
bool harness_wait_line(int fd, const char *line, double timeout);
/* SIGTERM, then SIGKILL after a grace period; reaps. Returns the wait status. */
int harness_stop(pid_t pid);

/*
 * Starts heapfragd on 127.0.0.1:port (or listen when not NULL) with extra
 * arguments and waits until /healthz answers; 0 when it never does.
 */
pid_t harness_start_daemon(const char *listen, int port, char *const extra[], const char *log);

/*
 * From now on, speak HTTPS to heapfragd, trusting only the CA in ca_file
 * (harness_start_daemon then waits on https://); NULL: plain HTTP again.
 */
void http_use_tls(const char *ca_file);
/* One request; body may be NULL.  extra_header may be NULL. */
struct http_reply http_do(const char *method, const char *url, const char *body, size_t body_len,
			  const char *extra_header);
struct http_reply http_get(const char *url);
void http_free(struct http_reply *r);
/* The value of a response header (case-insensitive name), in a static buffer. */
const char *http_header(const struct http_reply *r, const char *name);
/* The body as JSON, or NULL. */
json_t *http_json(const struct http_reply *r);

/* Polls GET url until it answers status, up to timeout seconds. */
bool http_wait_status(const char *url, long status, double timeout);

/* A dotted path into a JSON document ("heap.mapped_bytes.brk"). */
json_t *json_at(json_t *doc, const char *path);
/* An instant query of the Prometheus on 127.0.0.1:prom_port: its one sample's value, or -1. */
double harness_promql(int prom_port, const char *query);
/*
 * A real Prometheus on 127.0.0.1 (*prom_port), scraping every second by the
 * jobs in scrape_configs (YAML list items), its files and log in dir; ready
 * when this returns its pid, -1 when it did not start.
 */
pid_t harness_start_prometheus(const char *dir, const char *scrape_configs, int *prom_port);

double harness_now(void);
/* Prints the end of a log file to stderr, to explain a failure. */
void harness_show_log(const char *path);

#endif /* HF_TEST_WEB_HARNESS_H */
