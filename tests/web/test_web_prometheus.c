// SPDX-License-Identifier: MIT
/*
 * test_web_prometheus.c - a live scrape of the real heapfragd passes
 * `promtool check metrics`, and a real Prometheus server, started here on
 * loopback, scrapes heapfragd and answers a PromQL query with the same value
 * the REST API gives for a traced workload.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "web_harness.h"

/* The workload's own account: N allocations of 100 + i % 64 bytes. */
#define N_ALLOCS 5000

static int hf_port;

static json_int_t rest_value(pid_t w, const char *path)
{
	char url[256];
	struct http_reply r;
	json_int_t v = -1;
	json_t *j;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes/%d", hf_port, (int)w);
	r = http_get(url);
	j = http_json(&r);
	if (json_is_integer(json_at(j, path)))
		v = json_integer_value(json_at(j, path));
	json_decref(j);
	http_free(&r);
	return v;
}

/* An instant query; the single sample's value, or -1 when there is none. */
static double promql(int prom_port, const char *query)
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

static void test_promtool_accepts_a_live_scrape(const char *dir, pid_t w)
{
	char url[128], file[512], cmd[1200], want[256];
	struct http_reply r;
	FILE *f;
	int status;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", hf_port);
	r = http_get(url);
	CHECK(r.status == 200);
	CHECK_STR_EQ(http_header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
	snprintf(want, sizeof(want),
		 "heapfrag_allocator_calls_total{pid=\"%d\",comm=\"web_workload\",op=\"malloc\"} "
		 "%lld\n",
		 (int)w, (long long)rest_value(w, "counters.malloc"));
	CHECK_MSG(strstr(r.body, want) != NULL, "the scrape lacks %s", want);
	snprintf(file, sizeof(file), "%s/scrape.txt", dir);
	f = fopen(file, "w");
	fwrite(r.body, 1, r.len, f);
	fclose(f);
	http_free(&r);
	/* promtool prints lint problems and exits non-zero on any of them. */
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s.lint' 2>&1", file, file);
	status = system(cmd);
	CHECK_MSG(status == 0, "promtool check metrics failed on %s (see %s.lint)", file, file);
	if (status) {
		snprintf(cmd, sizeof(cmd), "%s.lint", file);
		harness_show_log(cmd);
	}
}

static void test_prometheus_scrapes_the_daemon_value(const char *dir, pid_t w)
{
	char config[512], data[512], listen[64], log[512], q[256], url[128];
	char config_arg[600], data_arg[600], listen_arg[100];
	char *argv[] = {"/usr/bin/prometheus", config_arg, data_arg, listen_arg,
			"--log.level=warn",    NULL};
	int prom_port = harness_free_port();
	double mallocs = -1, requested = -1, up = -1, end;
	json_int_t rest_mallocs, rest_requested;
	FILE *f;
	pid_t prom;

	snprintf(config, sizeof(config), "%s/prometheus.yml", dir);
	snprintf(data, sizeof(data), "%s/tsdb", dir);
	snprintf(log, sizeof(log), "%s/prometheus.log", dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", prom_port);
	snprintf(config_arg, sizeof(config_arg), "--config.file=%s", config);
	snprintf(data_arg, sizeof(data_arg), "--storage.tsdb.path=%s", data);
	snprintf(listen_arg, sizeof(listen_arg), "--web.listen-address=%s", listen);
	f = fopen(config, "w");
	fprintf(f,
		"global:\n"
		"  scrape_interval: 1s\n"
		"  scrape_timeout: 1s\n"
		"scrape_configs:\n"
		"  - job_name: heapfrag\n"
		"    static_configs:\n"
		"      - targets: ['127.0.0.1:%d']\n",
		hf_port);
	fclose(f);
	prom = harness_spawn(argv, log, NULL);
	snprintf(url, sizeof(url), "http://%s/-/ready", listen);
	CHECK_MSG(http_wait_status(url, 200, 60), "Prometheus did not become ready (see %s)", log);

	rest_mallocs = rest_value(w, "counters.malloc");
	rest_requested = rest_value(w, "heap.requested_bytes");
	/* A scrape a second; allow for start-up and the first few. */
	end = harness_now() + 45;
	while (harness_now() < end) {
		snprintf(q, sizeof(q), "heapfrag_allocator_calls_total{pid=\"%d\",op=\"malloc\"}",
			 (int)w);
		mallocs = promql(prom_port, q);
		snprintf(q, sizeof(q), "heapfrag_heap_requested_bytes{pid=\"%d\"}", (int)w);
		requested = promql(prom_port, q);
		if (mallocs == (double)rest_mallocs && requested == (double)rest_requested)
			break;
		usleep(500 * 1000);
	}
	up = promql(prom_port, "up{job=\"heapfrag\"}");
	CHECK_MSG(up == 1, "up{job=\"heapfrag\"} = %g", up);
	CHECK_MSG(mallocs == (double)rest_mallocs, "PromQL malloc calls %g, REST %lld", mallocs,
		  (long long)rest_mallocs);
	CHECK_MSG(requested == (double)rest_requested, "PromQL requested bytes %g, REST %lld",
		  requested, (long long)rest_requested);
	CHECK(promql(prom_port, "count(heapfrag_build_info)") == 1);
	snprintf(q, sizeof(q),
		 "heapfrag_allocation_size_bytes_bucket{pid=\"%d\",le=\"+Inf\"} - "
		 "on(pid) heapfrag_allocation_size_bytes_count{pid=\"%d\"}",
		 (int)w, (int)w);
	CHECK(promql(prom_port, q) == 0);
	if (hf_checks_failed)
		harness_show_log(log);
	harness_stop(prom);
}

int main(void)
{
	const char *why = harness_missing();
	char workload[1024], count[16], pid_arg[16], log[512], *dir;
	char *wargv[] = {workload, "plateau", count, NULL};
	char *extra[] = {"-p", pid_arg, NULL};
	json_int_t prev = -2, cur = -1;
	long long want_requested = 0;
	int out_fd = -1;
	pid_t d, w;

	if (why)
		HF_SKIP("%s", why);
	if (access("/usr/bin/prometheus", X_OK) || system("promtool --version >/dev/null 2>&1"))
		HF_SKIP("Debian's prometheus package (prometheus, promtool) is not installed");
	dir = harness_tmpdir("web-prom");
	snprintf(log, sizeof(log), "%s/heapfragd.log", dir);
	snprintf(count, sizeof(count), "%d", N_ALLOCS);
	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	w = harness_spawn(wargv, NULL, &out_fd);
	CHECK(harness_wait_line(out_fd, "ready", 10));
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w);
	hf_port = harness_free_port();
	d = harness_start_daemon(NULL, hf_port, extra, log);
	CHECK_MSG(d > 0, "heapfragd did not start; see %s", log);
	if (d > 0) {
		kill(w, SIGUSR1);
		CHECK(harness_wait_line(out_fd, "done", 10));
		/* Wait for a snapshot after the last allocation: two equal readings. */
		for (int i = 0; i < 40 && (cur != prev || cur < N_ALLOCS); i++) {
			usleep(700 * 1000);
			prev = cur;
			cur = rest_value(w, "counters.malloc");
		}
		/* The daemon's count is the workload's own. */
		for (int i = 0; i < N_ALLOCS; i++)
			want_requested += 100 + i % 64;
		CHECK_MSG(cur == N_ALLOCS, "malloc calls %lld, the workload made %d",
			  (long long)cur, N_ALLOCS);
		CHECK_MSG(rest_value(w, "heap.requested_bytes") == want_requested,
			  "requested bytes %lld, the workload asked for %lld",
			  (long long)rest_value(w, "heap.requested_bytes"), want_requested);
		test_promtool_accepts_a_live_scrape(dir, w);
		test_prometheus_scrapes_the_daemon_value(dir, w);
		harness_stop(d);
	}
	harness_stop(w);
	if (hf_checks_failed)
		harness_show_log(log);
	else
		harness_rmdir(dir);
	free(dir);
	return hf_test_done();
}
