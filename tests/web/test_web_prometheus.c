// SPDX-License-Identifier: MIT
/*
 * test_web_prometheus.c - a live scrape of the real heapfragd passes
 * `promtool check metrics`, and a real Prometheus server, started here on
 * loopback, scrapes heapfragd and answers a PromQL query with the same value
 * the REST API gives for a traced workload: a glibc one, and one on libptm
 * with its sampled heap profile on, whose USDT events, sampled heap and
 * call latencies Prometheus must hold exactly as /libptm and /latency say.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cgroup_labels.h"
#include "check.h"
#include "web_harness.h"

/* The workload's own account: N allocations of 100 + i % 64 bytes. */
#define N_ALLOCS 5000
/* The libptm workload: N_CHEESE blocks of 1000 bytes, nine in ten freed, sampled every 64 KiB. */
#define N_CHEESE        20000
#define SAMPLE_INTERVAL 65536

static int hf_port;

/* GET /api/v1/processes/{pid}SUFFIX as JSON (NULL unless 200); the caller drops it. */
static json_t *rest_doc(pid_t pid, const char *suffix)
{
	char url[256];
	struct http_reply r;
	json_t *j;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes/%d%s", hf_port, (int)pid,
		 suffix);
	r = http_get(url);
	j = r.status == 200 ? http_json(&r) : NULL;
	http_free(&r);
	return j;
}

/* The families of the libptm events, each with its key in /libptm's "events". */
static const struct {
	const char *family;
	const char *key;
} event_families[] = {
	{"heapfrag_libptm_heap_grow_bytes_total", "events.heap_grow_bytes"},
	{"heapfrag_libptm_heap_shrink_bytes_total", "events.heap_shrink_bytes"},
	{"heapfrag_libptm_page_releases_total", "events.page_releases"},
	{"heapfrag_libptm_page_release_bytes_total", "events.page_release_bytes"},
	{"heapfrag_libptm_arena_creates_total", "events.arena_creates"},
	{"heapfrag_libptm_arena_reuses_total", "events.arena_reuses"},
	{"heapfrag_libptm_trims_total", "events.trims"},
	{"heapfrag_sampled_live_bytes", "sampled_heap.live_bytes"},
	{"heapfrag_sampled_live_samples", "sampled_heap.live_samples"},
	{"heapfrag_sampled_samples_total", "sampled_heap.samples"},
	{"heapfrag_sampled_dropped_total", "sampled_heap.dropped"},
};
#define NR_EVENT_FAMILIES (sizeof(event_families) / sizeof(event_families[0]))

/* The op names of /latency's "calls" that are timed, and their counter in the document. */
static const char *const timed_ops[] = {"malloc", "calloc", "realloc", "memalign"};
#define NR_TIMED_OPS (sizeof(timed_ops) / sizeof(timed_ops[0]))

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

/* The labels that follow comm for pid p, as its JSON document has them. */
static void cgroup_labels(pid_t p, char *out, size_t len)
{
	json_t *doc = rest_doc(p, "");

	hf_test_cgroup_labels(doc, out, len);
	json_decref(doc);
}

/* The exact sample line of family for pid p with value v, or a note of what the scrape lacks. */
static void check_scrape_line(const char *scrape, const char *family, pid_t p, const char *extra,
			      json_int_t v)
{
	char want[2560], labels[2048];

	cgroup_labels(p, labels, sizeof(labels));
	snprintf(want, sizeof(want), "%s{pid=\"%d\",comm=\"web_workload\"%s%s} %lld\n", family,
		 (int)p, labels, extra, (long long)v);
	CHECK_MSG(strstr(scrape, want) != NULL, "the scrape lacks %s", want);
}

/*
 * The libptm workload's families in the scrape equal /libptm, the same
 * instant's numbers: the workload is idle, so every snapshot agrees.
 */
static void check_libptm_lines(const char *scrape, pid_t p)
{
	json_t *doc = rest_doc(p, "/libptm");
	json_t *by_size = json_at(doc, "sampled_heap.live_bytes_by_size");
	char extra[64];

	CHECK_MSG(json_is_object(json_at(doc, "events")) &&
			  json_is_object(json_at(doc, "sampled_heap")),
		  "libptm process %d: /libptm has no events or sampled heap", (int)p);
	for (size_t i = 0; i < NR_EVENT_FAMILIES; i++)
		check_scrape_line(scrape, event_families[i].family, p, "",
				  json_integer_value(json_at(doc, event_families[i].key)));
	CHECK(json_array_size(by_size) == 30);
	for (size_t i = 0; i < json_array_size(by_size); i++) {
		json_t *b = json_array_get(by_size, i);
		json_t *le = json_object_get(b, "le");

		if (json_is_integer(le))
			snprintf(extra, sizeof(extra), ",max_size=\"%lld\"",
				 (long long)json_integer_value(le));
		else
			snprintf(extra, sizeof(extra), ",max_size=\"+Inf\"");
		check_scrape_line(scrape, "heapfrag_sampled_live_by_size_bytes", p, extra,
				  json_integer_value(json_object_get(b, "bytes")));
	}
	json_decref(doc);
}

static void test_promtool_accepts_a_live_scrape(const char *dir, pid_t w, pid_t p)
{
	char url[128], file[512], cmd[1200];
	struct http_reply r;
	FILE *f;
	int status;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", hf_port);
	r = http_get(url);
	CHECK(r.status == 200);
	CHECK_STR_EQ(http_header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
	check_scrape_line(r.body, "heapfrag_allocator_calls_total", w, ",op=\"malloc\"",
			  rest_value(w, "counters.malloc"));
	check_libptm_lines(r.body, p);
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

/*
 * Through Prometheus: every libptm and sampled-heap family of the libptm
 * workload equals /libptm, each size class included.  Called once the
 * glibc workload's values have arrived, so the scrapes are recent.
 */
static void check_libptm_through_prometheus(int prom_port, pid_t p)
{
	json_t *doc = rest_doc(p, "/libptm");
	json_t *by_size = json_at(doc, "sampled_heap.live_bytes_by_size");
	char q[256];
	double got = -1, end = harness_now() + 30;

	/* Wait until Prometheus holds a scrape taken after the workload went idle. */
	snprintf(q, sizeof(q), "heapfrag_sampled_samples_total{pid=\"%d\"}", (int)p);
	while (harness_now() < end) {
		got = harness_promql(prom_port, q);
		if (got == (double)json_integer_value(json_at(doc, "sampled_heap.samples")))
			break;
		usleep(500 * 1000);
	}
	for (size_t i = 0; i < NR_EVENT_FAMILIES; i++) {
		json_int_t rest = json_integer_value(json_at(doc, event_families[i].key));

		snprintf(q, sizeof(q), "%s{pid=\"%d\"}", event_families[i].family, (int)p);
		got = harness_promql(prom_port, q);
		CHECK_MSG(got == (double)rest, "PromQL %s = %g, /libptm %s = %lld", q, got,
			  event_families[i].key, (long long)rest);
	}
	/* libptm's own books: known for a libptm process, equal to the document. */
	{
		static const char *const books[][2] = {
			{"heapfrag_free_chunks", "fragmentation.free_chunks"},
			{"heapfrag_largest_free_chunk_bytes",
			 "fragmentation.largest_free_chunk_bytes"},
		};
		json_t *main_doc = rest_doc(p, "");

		for (size_t i = 0; i < 2; i++) {
			json_t *v = json_at(main_doc, books[i][1]);

			snprintf(q, sizeof(q), "%s{pid=\"%d\"}", books[i][0], (int)p);
			got = harness_promql(prom_port, q);
			CHECK_MSG(json_is_integer(v) && got == (double)json_integer_value(v),
				  "PromQL %s = %g, the document's %s = %lld", q, got, books[i][1],
				  (long long)json_integer_value(v));
		}
		json_decref(main_doc);
	}
	for (size_t i = 0; i < json_array_size(by_size); i++) {
		json_t *b = json_array_get(by_size, i);
		json_t *le = json_object_get(b, "le");
		json_int_t rest = json_integer_value(json_object_get(b, "bytes"));

		if (json_is_integer(le))
			snprintf(
				q, sizeof(q),
				"heapfrag_sampled_live_by_size_bytes{pid=\"%d\",max_size=\"%lld\"}",
				(int)p, (long long)json_integer_value(le));
		else
			snprintf(
				q, sizeof(q),
				"heapfrag_sampled_live_by_size_bytes{pid=\"%d\",max_size=\"+Inf\"}",
				(int)p);
		got = harness_promql(prom_port, q);
		CHECK_MSG(got == (double)rest, "PromQL %s = %g, /libptm says %lld", q, got,
			  (long long)rest);
	}
	/* The classes add up to the estimate. */
	snprintf(q, sizeof(q),
		 "sum by (pid) (heapfrag_sampled_live_by_size_bytes{pid=\"%d\"}) - on(pid) "
		 "heapfrag_sampled_live_bytes{pid=\"%d\"}",
		 (int)p, (int)p);
	CHECK_MSG(harness_promql(prom_port, q) == 0, "%s is not 0", q);
	json_decref(doc);
}

/*
 * Through Prometheus: each timed op's latency histogram of a still process
 * counts the calls the main document counts, and histogram_quantile() reads
 * it.
 */
static void check_latency_through_prometheus(int prom_port, pid_t pid)
{
	json_t *lat = rest_doc(pid, "/latency"), *doc = rest_doc(pid, "");
	char q[320], key[64];
	double got;

	CHECK_MSG(lat && doc, "no /latency or document for %d", (int)pid);
	if (!json_is_object(json_at(lat, "calls.malloc"))) {
		CHECK_MSG(0, "process %d: calls are not timed in exact mode (/latency null)",
			  (int)pid);
		goto out;
	}
	for (size_t k = 0; k < NR_TIMED_OPS; k++) {
		json_int_t want;

		snprintf(key, sizeof(key), "counters.%s", timed_ops[k]);
		want = json_integer_value(json_at(doc, key));
		snprintf(q, sizeof(q),
			 "heapfrag_allocator_call_duration_seconds_count{pid=\"%d\",op=\"%s\"}",
			 (int)pid, timed_ops[k]);
		got = harness_promql(prom_port, q);
		CHECK_MSG(got == (double)want, "PromQL %s = %g, %s = %lld", q, got, key,
			  (long long)want);
	}
	snprintf(q, sizeof(q),
		 "count(heapfrag_allocator_call_duration_seconds_count{pid=\"%d\",op=\"free\"}) "
		 "or vector(0)",
		 (int)pid);
	CHECK_MSG(harness_promql(prom_port, q) == 0, "free is exported as timed for %d", (int)pid);
	/* Prometheus takes the family for a histogram: a median between the first and last bound.
	 */
	snprintf(q, sizeof(q),
		 "histogram_quantile(0.5, "
		 "heapfrag_allocator_call_duration_seconds_bucket{pid=\"%d\","
		 "op=\"malloc\"})",
		 (int)pid);
	got = harness_promql(prom_port, q);
	CHECK_MSG(got > 0 && got <= 1.073741824, "%s = %g", q, got);
out:
	json_decref(lat);
	json_decref(doc);
}

/* Replaces every "from" in text by "to", in place; out has room for len bytes. */
static void substitute(char *out, size_t len, const char *from, const char *to)
{
	char tmp[2048];
	char *hit;

	while ((hit = strstr(out, from))) {
		snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(hit - out), out, to,
			 hit + strlen(from));
		snprintf(out, len, "%s", tmp);
	}
}

/*
 * Every PromQL expression of the Grafana dashboard, with its variables
 * filled in, is accepted by the real Prometheus (HTTP 200, status success),
 * and the latency and sampled-heap panels find series for the workloads.
 */
static void check_dashboard_queries(int prom_port)
{
	const char *src = getenv("HF_SOURCE_DIR");
	char path[1024], expr[2048], url[4096];
	json_t *dash, *panels, *p, *t;
	size_t i, k;
	int found_latency = 0, found_sampled = 0, found_census = 0, found_sites = 0;

	/* rate() needs two scrapes in its window. */
	for (double end = harness_now() + 20; harness_now() < end;) {
		if (harness_promql(prom_port, "count_over_time(up{job=\"heapfrag\"}[1m])") >= 3)
			break;
		usleep(500 * 1000);
	}
	snprintf(path, sizeof(path), "%s/web/grafana/heapfrag.json", src ? src : ".");
	dash = json_load_file(path, 0, NULL);
	CHECK_MSG(dash != NULL, "cannot read %s", path);
	panels = json_object_get(dash, "panels");
	json_array_foreach(panels, i, p)
	{
		json_array_foreach(json_object_get(p, "targets"), k, t)
		{
			struct http_reply r;
			json_t *j;
			char *q;

			snprintf(expr, sizeof(expr), "%s",
				 json_string_value(json_object_get(t, "expr")) ?: "");
			substitute(expr, sizeof(expr), "$instance", ".*");
			substitute(expr, sizeof(expr), "$pid", ".*");
			substitute(expr, sizeof(expr), "$__rate_interval", "1m");
			q = curl_easy_escape(NULL, expr, 0);
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s",
				 prom_port, q);
			curl_free(q);
			r = http_get(url);
			j = http_json(&r);
			CHECK_MSG(r.status == 200 &&
					  !strcmp(json_string_value(json_object_get(j, "status"))
							  ?: "",
						  "success"),
				  "Prometheus refused the dashboard's %s: %ld %s", expr, r.status,
				  r.body);
			if (json_array_size(json_at(j, "data.result")) > 0) {
				found_latency += strstr(expr, "call_duration_seconds") != NULL;
				found_sampled += strstr(expr, "sampled_live_by_size") != NULL;
				found_census += strstr(expr, "heapfrag_census_") != NULL;
				found_sites += strstr(expr, "heapfrag_site_") != NULL;
			}
			json_decref(j);
			http_free(&r);
		}
	}
	CHECK_MSG(found_sampled > 0, "the sampled-heap panel finds no series");
	/* Glibc and libptm processes traced in exact mode: a census, and sites. */
	CHECK_MSG(found_census >= 3, "the census panel finds no series");
	CHECK_MSG(found_sites >= 1, "the sites panel finds no series");
	/* The latency panels have series once the daemon times calls. */
	if (harness_promql(prom_port, "count(heapfrag_allocator_call_duration_seconds_count)") > 0)
		CHECK_MSG(found_latency >= 2, "the latency panels find no series");
	json_decref(dash);
}

static void test_prometheus_scrapes_the_daemon_value(const char *dir, pid_t w, pid_t p)
{
	char log[512], jobs[256], q[256];
	double mallocs = -1, requested = -1, up = -1, end;
	json_int_t rest_mallocs, rest_requested;
	int prom_port;
	pid_t prom;

	snprintf(jobs, sizeof(jobs),
		 "  - job_name: heapfrag\n"
		 "    static_configs:\n"
		 "      - targets: ['127.0.0.1:%d']\n",
		 hf_port);
	snprintf(log, sizeof(log), "%s/prometheus.log", dir);
	prom = harness_start_prometheus(dir, jobs, &prom_port);
	CHECK_MSG(prom > 0, "Prometheus did not start (see %s)", log);
	if (prom <= 0)
		return;

	rest_mallocs = rest_value(w, "counters.malloc");
	rest_requested = rest_value(w, "heap.requested_bytes");
	/* A scrape a second; allow for start-up and the first few. */
	end = harness_now() + 45;
	while (harness_now() < end) {
		snprintf(q, sizeof(q), "heapfrag_allocator_calls_total{pid=\"%d\",op=\"malloc\"}",
			 (int)w);
		mallocs = harness_promql(prom_port, q);
		snprintf(q, sizeof(q), "heapfrag_heap_requested_bytes{pid=\"%d\"}", (int)w);
		requested = harness_promql(prom_port, q);
		if (mallocs == (double)rest_mallocs && requested == (double)rest_requested)
			break;
		usleep(500 * 1000);
	}
	up = harness_promql(prom_port, "up{job=\"heapfrag\"}");
	CHECK_MSG(up == 1, "up{job=\"heapfrag\"} = %g", up);
	CHECK_MSG(mallocs == (double)rest_mallocs, "PromQL malloc calls %g, REST %lld", mallocs,
		  (long long)rest_mallocs);
	CHECK_MSG(requested == (double)rest_requested, "PromQL requested bytes %g, REST %lld",
		  requested, (long long)rest_requested);
	CHECK(harness_promql(prom_port, "count(heapfrag_build_info)") == 1);
	snprintf(q, sizeof(q),
		 "heapfrag_allocation_size_bytes_bucket{pid=\"%d\",le=\"+Inf\"} - "
		 "on(pid) heapfrag_allocation_size_bytes_count{pid=\"%d\"}",
		 (int)w, (int)w);
	CHECK(harness_promql(prom_port, q) == 0);
	check_libptm_through_prometheus(prom_port, p);
	check_latency_through_prometheus(prom_port, w);
	check_latency_through_prometheus(prom_port, p);
	check_dashboard_queries(prom_port);
	if (hf_checks_failed)
		harness_show_log(log);
	harness_stop(prom);
}

/*
 * Attaches heapfragd (exact mode) to the libptm workload, lets it make its
 * holes, and waits until the daemon's account of it holds still.  Checks
 * that the run did what the comparisons need: pages released, a trim,
 * samples taken, and every call counted.
 */
static void run_libptm_workload(pid_t p, int out_fd)
{
	char url[128], body[64];
	struct http_reply r;
	json_int_t prev = -2, cur = -1;
	json_t *doc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes", hf_port);
	snprintf(body, sizeof(body), "{\"pid\":%d,\"mode\":\"exact\"}", (int)p);
	r = http_do("POST", url, body, strlen(body), NULL);
	CHECK_MSG(r.status == 201, "attach to the libptm workload: %ld %s", r.status, r.body);
	http_free(&r);
	kill(p, SIGUSR1);
	CHECK(harness_wait_line(out_fd, "done", 20));
	for (int i = 0; i < 40 && (cur != prev || cur < N_CHEESE - N_CHEESE / 10); i++) {
		usleep(700 * 1000);
		prev = cur;
		cur = rest_value(p, "counters.free");
	}
	CHECK_MSG(cur == N_CHEESE - N_CHEESE / 10, "free calls %lld, the workload made %d",
		  (long long)cur, N_CHEESE - N_CHEESE / 10);
	doc = rest_doc(p, "/libptm");
	CHECK_MSG(json_integer_value(json_at(doc, "events.heap_grow_bytes")) > 0 &&
			  json_integer_value(json_at(doc, "events.page_releases")) > 0 &&
			  json_integer_value(json_at(doc, "events.page_release_bytes")) > 0 &&
			  json_integer_value(json_at(doc, "events.trims")) > 0,
		  "the libptm workload's events are not all there: %s",
		  json_dumps(json_at(doc, "events"), JSON_COMPACT) ?: "null");
	CHECK_MSG(json_integer_value(json_at(doc, "sampled_heap.samples")) > 0 &&
			  json_integer_value(json_at(doc, "sampled_heap.live_samples")) > 0,
		  "the libptm workload has no samples: %s",
		  json_dumps(json_at(doc, "sampled_heap"), JSON_COMPACT) ?: "null");
	json_decref(doc);
}

int main(void)
{
	const char *why = harness_missing();
	char workload[1024], count[16], cheese[16], pid_arg[16], log[512], *dir;
	char *wargv[] = {workload, "plateau", count, NULL};
	char *extra[] = {"-p", pid_arg, NULL};
	json_int_t prev = -2, cur = -1;
	long long want_requested = 0;
	int out_fd = -1, ptm_fd = -1;
	pid_t d, w, p;

	if (why)
		HF_SKIP("%s", why);
	if (access("/usr/bin/prometheus", X_OK) || system("promtool --version >/dev/null 2>&1"))
		HF_SKIP("Debian's prometheus package (prometheus, promtool) is not installed");
	dir = harness_tmpdir("web-prom");
	snprintf(log, sizeof(log), "%s/heapfragd.log", dir);
	snprintf(count, sizeof(count), "%d", N_ALLOCS);
	snprintf(cheese, sizeof(cheese), "%d", N_CHEESE);
	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	w = harness_spawn(wargv, NULL, &out_fd);
	CHECK(harness_wait_line(out_fd, "ready", 10));
	p = harness_spawn_libptm_workload("cheese", cheese, SAMPLE_INTERVAL, &ptm_fd);
	CHECK(harness_wait_line(ptm_fd, "ready", 10));
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
		run_libptm_workload(p, ptm_fd);
		test_promtool_accepts_a_live_scrape(dir, w, p);
		test_prometheus_scrapes_the_daemon_value(dir, w, p);
		harness_stop(d);
	}
	harness_stop(w);
	harness_stop(p);
	if (hf_checks_failed)
		harness_show_log(log);
	else
		harness_rmdir(dir);
	free(dir);
	return hf_test_done();
}
