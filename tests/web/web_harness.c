// SPDX-License-Identifier: MIT
/*
 * web_harness.c - child processes, ports and an HTTP client for the tests.
 */
#include "web_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "curl_body.h"
#include "free_port.h"

/* The CA heapfragd's certificate is checked against, or NULL for plain HTTP. */
static const char *tls_ca_file;

void http_use_tls(const char *ca_file)
{
	tls_ca_file = ca_file;
}

double harness_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *harness_build_path(char *out, size_t len, const char *rel)
{
	const char *build = getenv("HF_BUILD_DIR");

	snprintf(out, len, "%s/%s", build ? build : ".", rel);
	return out;
}

const char *harness_missing(void)
{
	static char why[1100];
	char path[1024];

	if (geteuid() != 0)
		return "heapfragd loads BPF programs: run as root";
	if (!getenv("HF_BUILD_DIR"))
		return "HF_BUILD_DIR is not set; run through ctest";
	if (access(harness_build_path(path, sizeof(path), "bin/heapfragd"), X_OK)) {
		snprintf(why, sizeof(why), "%s is not built", path);
		return why;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* A dead peer must fail a write, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	return NULL;
}

int harness_free_port(void)
{
	int port = free_loopback_port();

	return port > 0 ? port : 0;
}

char *harness_tmpdir(const char *tag)
{
	char tmpl[256];

	snprintf(tmpl, sizeof(tmpl), "/tmp/hf-%s-XXXXXX", tag);
	return mkdtemp(tmpl) ? strdup(tmpl) : NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void harness_rmdir(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

pid_t harness_spawn(char *const argv[], const char *log, int *out_fd)
{
	return harness_spawn_env(argv, NULL, log, out_fd);
}

pid_t harness_spawn_env(char *const argv[], char *const env[], const char *log, int *out_fd)
{
	int pipefd[2] = {-1, -1};
	pid_t pid;

	if (out_fd && pipe2(pipefd, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		if (out_fd)
			dup2(pipefd[1], STDOUT_FILENO);
		/* Its own process group, so that a stop reaches its children too. */
		setpgid(0, 0);
		for (int i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	if (out_fd) {
		close(pipefd[1]);
		*out_fd = pipefd[0];
	}
	return pid;
}

pid_t harness_spawn_libptm_workload(const char *mode, const char *arg, long sample_interval,
				    int *out_fd)
{
	static char workload[1024], lib[1100], preload[1200], sample[64];
	char *argv[] = {workload, (char *)mode, (char *)arg, NULL};
	char *env[] = {preload, sample, NULL};

	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	harness_build_path(lib, sizeof(lib), "lib/libptm.so");
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	snprintf(sample, sizeof(sample), "MALLOC_SAMPLE_INTERVAL_=%ld", sample_interval);
	return harness_spawn_env(argv, env, NULL, out_fd);
}

bool harness_wait_line(int fd, const char *line, double timeout)
{
	char buf[256];
	size_t used = 0;
	double end = harness_now() + timeout;

	while (harness_now() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			return false;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, line))
			return true;
		if (used == sizeof(buf) - 1)
			used = 0;
	}
	return false;
}

int harness_stop(pid_t pid)
{
	int status = -1;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

pid_t harness_start_daemon(const char *listen, int port, char *const extra[], const char *log)
{
	char path[1024], addr[64], url[128];
	char *argv[64];
	int argc = 0;
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	argv[argc++] = (char *)harness_build_path(path, sizeof(path), "bin/heapfragd");
	argv[argc++] = "-l";
	argv[argc++] = (char *)(listen ? listen : addr);
	for (int i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	pid = harness_spawn(argv, log, NULL);
	if (pid <= 0)
		return 0;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d/healthz", tls_ca_file ? "https" : "http",
		 port);
	if (!http_wait_status(url, 200, 30)) {
		fprintf(stderr, "heapfragd did not answer %s; its log is %s\n", url,
			log ? log : "(none)");
		harness_stop(pid);
		return 0;
	}
	return pid;
}

struct http_reply http_do(const char *method, const char *url, const char *body, size_t body_len,
			  const char *extra_header)
{
	struct http_reply r = {0};
	struct curl_body b = {0}, h = {0};
	struct curl_slist *headers = NULL;
	double start = harness_now();
	CURL *c = curl_easy_init();

	if (!c)
		return r;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	if (tls_ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, tls_ca_file);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_body_append);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, curl_body_append);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	/* curl would wait a second for "100 Continue" before a large body. */
	headers = curl_slist_append(headers, "Expect:");
	if (extra_header)
		headers = curl_slist_append(headers, extra_header);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	r.seconds = harness_now() - start;
	r.body = b.data ? b.data : strdup("");
	r.len = b.len;
	r.headers = h.data ? h.data : strdup("");
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return r;
}

struct http_reply http_get(const char *url)
{
	return http_do("GET", url, NULL, 0, NULL);
}

void http_free(struct http_reply *r)
{
	free(r->body);
	free(r->headers);
	r->body = r->headers = NULL;
}

const char *http_header(const struct http_reply *r, const char *name)
{
	static char value[512];
	size_t n = strlen(name);

	for (const char *p = r->headers; p && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			size_t len;

			while (*v == ' ')
				v++;
			len = strcspn(v, "\r\n");
			snprintf(value, sizeof(value), "%.*s", (int)len, v);
			return value;
		}
	}
	return NULL;
}

json_t *http_json(const struct http_reply *r)
{
	return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

bool http_wait_status(const char *url, long status, double timeout)
{
	double end = harness_now() + timeout;

	while (harness_now() < end) {
		struct http_reply r = http_get(url);
		long got = r.status;

		http_free(&r);
		if (got == status)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

json_t *json_at(json_t *doc, const char *path)
{
	char buf[256], *save = NULL;
	json_t *j = doc;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = json_object_get(j, k);
	return j;
}

void harness_show_log(const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	if (ftell(f) > (long)sizeof(buf) - 1)
		fseek(f, -(long)(sizeof(buf) - 1), SEEK_END);
	else
		fseek(f, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "--- end of %s ---\n%s--- (end) ---\n", path, buf);
}

/* An instant query of a local Prometheus; the single sample's value, or -1 when there is none. */
double harness_promql(int prom_port, const char *query)
{
	char url[1024];
	struct http_reply r;
	char *q = curl_easy_escape(NULL, query, 0);
	json_t *j, *result;
	double v = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s", prom_port, q);
	curl_free(q);
	r = http_get(url);
	j = http_json(&r);
	result = json_at(j, "data.result");
	if (r.status == 200 && json_array_size(result) == 1) {
		json_t *value = json_object_get(json_array_get(result, 0), "value");

		v = strtod(json_string_value(json_array_get(value, 1)) ?: "-1", NULL);
	}
	json_decref(j);
	http_free(&r);
	return v;
}

pid_t harness_start_prometheus(const char *dir, const char *scrape_configs, int *prom_port)
{
	char config[512], data[512], log[512], url[128];
	char config_arg[600], data_arg[600], listen_arg[100];
	char *argv[] = {"/usr/bin/prometheus", config_arg, data_arg, listen_arg,
			"--log.level=warn",    NULL};
	FILE *f;
	pid_t prom;

	*prom_port = harness_free_port();
	snprintf(config, sizeof(config), "%s/prometheus.yml", dir);
	snprintf(data, sizeof(data), "%s/tsdb", dir);
	snprintf(log, sizeof(log), "%s/prometheus.log", dir);
	snprintf(config_arg, sizeof(config_arg), "--config.file=%s", config);
	snprintf(data_arg, sizeof(data_arg), "--storage.tsdb.path=%s", data);
	snprintf(listen_arg, sizeof(listen_arg), "--web.listen-address=127.0.0.1:%d", *prom_port);
	f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n%s",
		scrape_configs);
	fclose(f);
	prom = harness_spawn(argv, log, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/-/ready", *prom_port);
	if (prom > 0 && !http_wait_status(url, 200, 60)) {
		fprintf(stderr, "Prometheus did not become ready; its log is %s\n", log);
		harness_stop(prom);
		return -1;
	}
	return prom;
}
