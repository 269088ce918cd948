// SPDX-License-Identifier: MIT
/*
 * test_web_http_api.c - every route and every error of the REST API, against
 * the real heapfragd tracing a real workload, with libcurl as the client.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "web_harness.h"

static char base[128];
static char daemon_log[512];

static void url_of(char *out, size_t len, const char *path)
{
	snprintf(out, len, "%s%s", base, path);
}

/* Checks status, a JSON error body with the code, and returns nothing. */
static void expect_error(const char *method, const char *path, const char *body, long status,
			 const char *code, const char *header)
{
	char url[512];
	struct http_reply r;
	json_t *j;

	url_of(url, sizeof(url), path);
	r = http_do(method, url, body, body ? strlen(body) : 0, header);
	j = http_json(&r);
	CHECK_MSG(r.status == status, "%s %s: status %ld, want %ld (%s)", method, path, r.status,
		  status, r.body);
	CHECK_MSG(j && json_is_string(json_object_get(j, "error")) &&
			  json_is_string(json_object_get(j, "message")) && json_object_size(j) == 2,
		  "%s %s: body %s is not {\"error\",\"message\"}", method, path, r.body);
	if (code)
		CHECK_STR_EQ(json_string_value(json_object_get(j, "error")), code);
	CHECK_STR_EQ(http_header(&r, "Content-Type"), "application/json");
	json_decref(j);
	http_free(&r);
}

static void test_health_index_and_unknown_routes(void)
{
	char url[512];
	struct http_reply r;
	json_t *j;

	url_of(url, sizeof(url), "/healthz");
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200);
	CHECK_STR_EQ(json_string_value(json_object_get(j, "status")), "ok");
	CHECK(json_is_string(json_object_get(j, "version")));
	json_decref(j);
	http_free(&r);

	url_of(url, sizeof(url), "/");
	r = http_get(url);
	CHECK(r.status == 200);
	CHECK(strncmp(http_header(&r, "Content-Type") ?: "", "text/html", 9) == 0);
	CHECK(strstr(r.body, "href=\"/metrics\"") && strstr(r.body, "href=\"/api/v1/processes\""));
	CHECK(strstr(r.body, "/api/v1/processes/{pid}/latency") != NULL);
	http_free(&r);

	/* The dashboard: pages and assets from the binary, with their policy. */
	static const struct {
		const char *path, *type;
		size_t min_len;
	} pages[] = {
		{"/processes/4194304", "text/html", 1000}, /* any pid: the page says if it is traced */
		{"/assets/dashboard.css", "text/css", 1000},
		{"/assets/common.js", "text/javascript", 1000},
		{"/assets/list.js", "text/javascript", 1000},
		{"/assets/process.js", "text/javascript", 1000},
		{"/assets/chart.js", "text/javascript", 100000}, /* Debian's Chart.js */
	};
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		url_of(url, sizeof(url), pages[i].path);
		r = http_get(url);
		CHECK_MSG(r.status == 200 && r.len >= pages[i].min_len, "%s: %ld, %zu bytes",
			  pages[i].path, r.status, r.len);
		CHECK(strncmp(http_header(&r, "Content-Type") ?: "", pages[i].type,
			      strlen(pages[i].type)) == 0);
		CHECK(strstr(http_header(&r, "Content-Security-Policy") ?: "",
			     "script-src 'self'") != NULL);
		http_free(&r);
	}
	url_of(url, sizeof(url), "/assets/chart.js");
	r = http_get(url);
	CHECK(r.body && strstr(r.body, "Chart.js v3") != NULL);
	http_free(&r);
	expect_error("GET", "/processes/0", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/processes/1/heapmap", NULL, 404, "not_found", NULL);
	expect_error("GET", "/assets/nope.js", NULL, 404, "not_found", NULL);
	expect_error("GET", "/assets/../README.md", NULL, 400, "bad_path", NULL);
	expect_error("GET", "/assets/", NULL, 404, "not_found", NULL);

	expect_error("GET", "/nope", NULL, 404, "not_found", NULL);
	expect_error("GET", "/metrics/", NULL, 404, "not_found", NULL);
	expect_error("GET", "/api/v1/processes/1/nope", NULL, 404, "not_found", NULL);
	expect_error("GET", "/index.html", NULL, 404, "not_found", NULL);
}

static void test_wrong_method_is_405_with_allow(void)
{
	char url[512];
	struct http_reply r;

	url_of(url, sizeof(url), "/api/v1/processes");
	r = http_do("PUT", url, "{}", 2, NULL);
	CHECK(r.status == 405);
	CHECK_STR_EQ(http_header(&r, "Allow"), "GET, POST");
	http_free(&r);
	url_of(url, sizeof(url), "/metrics");
	r = http_do("POST", url, "x", 1, NULL);
	CHECK(r.status == 405);
	CHECK_STR_EQ(http_header(&r, "Allow"), "GET");
	http_free(&r);
	url_of(url, sizeof(url), "/api/v1/processes/12");
	r = http_do("PATCH", url, NULL, 0, NULL);
	CHECK(r.status == 405);
	CHECK_STR_EQ(http_header(&r, "Allow"), "GET, DELETE");
	http_free(&r);
	expect_error("DELETE", "/healthz", NULL, 405, "method_not_allowed", NULL);
	url_of(url, sizeof(url), "/api/v1/processes/12/latency");
	r = http_do("POST", url, "{}", 2, NULL);
	CHECK(r.status == 405);
	CHECK_STR_EQ(http_header(&r, "Allow"), "GET");
	http_free(&r);
}

static void test_bad_pids_and_bodies_are_400(void)
{
	char big[70 * 1024 + 1];

	expect_error("GET", "/api/v1/processes/abc", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/-1", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/+1", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/007", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/99999999999", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/12abc/histogram", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/x1/latency", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/processes/0/latency", NULL, 400, "invalid_pid", NULL);
	expect_error("DELETE", "/api/v1/processes/x", NULL, 400, "invalid_pid", NULL);
	expect_error("GET", "/api/v1/../../etc/passwd", NULL, 400, "bad_path", NULL);
	expect_error("GET", "/api/v1/processes/1%00", NULL, 400, "bad_path", NULL);

	expect_error("POST", "/api/v1/processes", "{\"pid\":", 400, "bad_json", NULL);
	expect_error("POST", "/api/v1/processes", "", 400, "bad_json", NULL);
	expect_error("POST", "/api/v1/processes", "[1]", 400, "bad_request", NULL);
	expect_error("POST", "/api/v1/processes", "{\"pid\":\"1\"}", 400, "invalid_pid", NULL);
	expect_error("POST", "/api/v1/processes", "{\"pid\":-4}", 400, "invalid_pid", NULL);
	expect_error("POST", "/api/v1/processes", "{\"pid\":4294967297}", 400, "invalid_pid", NULL);
	expect_error("POST", "/api/v1/processes", "{\"pid\":1,\"mode\":\"loud\"}", 400,
		     "bad_request", NULL);

	/* Over 64 KiB: declared by Content-Length, and sent chunked without one. */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	expect_error("POST", "/api/v1/processes", big, 413, "payload_too_large", NULL);
	expect_error("POST", "/api/v1/processes", big, 413, "payload_too_large",
		     "Transfer-Encoding: chunked");
}

/* A PID that no process has: a child that has been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static json_int_t counter(pid_t pid, const char *path)
{
	char url[512], rel[64];
	struct http_reply r;
	json_int_t v = -1;
	json_t *j;

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)pid);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	if (r.status == 200 && json_is_integer(json_at(j, path)))
		v = json_integer_value(json_at(j, path));
	json_decref(j);
	http_free(&r);
	return v;
}

static json_t *get_json(const char *rel, long *status)
{
	char url[512];
	struct http_reply r;
	json_t *j;

	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	*status = r.status;
	CHECK_STR_EQ(http_header(&r, "Content-Type"), "application/json");
	http_free(&r);
	return j;
}

/*
 * The documented shape of one timed op in /latency: count, sum_seconds and
 * 24 per-bucket counts whose le grow from 2.56e-07 s by doubling, the last
 * null, adding up to count.  Returns count, or -1 when the shape is wrong.
 */
static json_int_t check_latency_op(json_t *op, const char *name)
{
	json_t *buckets = json_object_get(op, "buckets");
	json_int_t total = 0;
	double le_want = 2.56e-07;
	bool ok = json_is_integer(json_object_get(op, "count")) &&
		  json_is_number(json_object_get(op, "sum_seconds")) &&
		  json_number_value(json_object_get(op, "sum_seconds")) >= 0 &&
		  json_is_array(buckets) && json_array_size(buckets) == 24;

	CHECK_MSG(ok, "calls.%s has not the documented shape", name);
	for (size_t i = 0; ok && i < json_array_size(buckets); i++) {
		json_t *b = json_array_get(buckets, i);
		json_t *le = json_object_get(b, "le");

		CHECK_MSG(json_is_integer(json_object_get(b, "count")), "calls.%s bucket %zu", name,
			  i);
		total += json_integer_value(json_object_get(b, "count"));
		if (i + 1 < json_array_size(buckets)) {
			CHECK_MSG(json_is_real(le) && json_real_value(le) == le_want,
				  "calls.%s bucket %zu: le %g, want %g", name, i,
				  json_real_value(le), le_want);
			le_want *= 2;
		} else {
			CHECK_MSG(json_is_null(le), "calls.%s: the last le is not null", name);
		}
	}
	if (!ok)
		return -1;
	CHECK_MSG(total == json_integer_value(json_object_get(op, "count")),
		  "calls.%s: buckets add up to %lld, count %lld", name, (long long)total,
		  (long long)json_integer_value(json_object_get(op, "count")));
	return json_integer_value(json_object_get(op, "count"));
}

static const char *const timed_ops[] = {"malloc", "calloc", "realloc", "memalign"};

/*
 * GET /latency of a traced process: identity as in the main document, mode,
 * and five ops, free always null.  Passive mode: every op null.  Exact mode:
 * every op null until the daemon times calls, then each timed op has the
 * documented shape.  Returns whether the ops carry numbers.
 */
static bool check_latency_route(pid_t pid, const char *mode, json_t **out)
{
	char rel[64];
	long status;
	json_t *lat, *doc, *calls;
	bool timed;

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)pid);
	doc = get_json(rel, &status);
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/latency", (int)pid);
	lat = get_json(rel, &status);
	calls = json_object_get(lat, "calls");
	CHECK_MSG(status == 200, "GET %s: %ld", rel, status);
	CHECK(json_integer_value(json_object_get(lat, "pid")) == pid);
	CHECK(json_is_real(json_object_get(lat, "start_time")) &&
	      json_real_value(json_object_get(lat, "start_time")) ==
		      json_real_value(json_object_get(doc, "start_time")));
	CHECK_STR_EQ(json_string_value(json_object_get(lat, "mode")), mode);
	CHECK(json_is_object(calls) && json_object_size(calls) == 5);
	CHECK_MSG(json_object_get(calls, "free") && json_is_null(json_object_get(calls, "free")),
		  "calls.free is not null");
	timed = json_is_object(json_object_get(calls, "malloc"));
	for (size_t k = 0; k < sizeof(timed_ops) / sizeof(timed_ops[0]); k++) {
		json_t *op = json_object_get(calls, timed_ops[k]);

		CHECK_MSG(op != NULL, "calls.%s is missing", timed_ops[k]);
		if (!strcmp(mode, "passive") || !timed)
			CHECK_MSG(json_is_null(op), "%s mode: calls.%s is not null", mode,
				  timed_ops[k]);
		else
			check_latency_op(op, timed_ops[k]);
	}
	json_decref(doc);
	if (out)
		*out = lat;
	else
		json_decref(lat);
	return timed;
}

/*
 * /history after a few snapshots: points oldest first, each with the
 * document's field names; requested bytes known in exact mode only.
 */
static void check_history_route(pid_t w, bool exact)
{
	char url[512], rel[128];
	struct http_reply r;
	json_t *j, *points;
	double last = 0;

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/history", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	points = json_object_get(j, "points");
	CHECK_MSG(r.status == 200 && json_is_array(points), "history: %ld %s", r.status, r.body);
	CHECK(json_integer_value(json_object_get(j, "pid")) == w);
	/* The default hour in 720 points: one every 5 s; the ring itself is unit-tested. */
	CHECK(json_number_value(json_object_get(j, "step_seconds")) == 5.0);
	CHECK_MSG(json_array_size(points) >= 1, "%zu history points", json_array_size(points));
	for (size_t i = 0; i < json_array_size(points); i++) {
		json_t *p = json_array_get(points, i);
		double at = json_number_value(json_object_get(p, "at"));

		CHECK(at > last);
		last = at;
		CHECK(json_is_integer(json_object_get(p, "heap.process_rss_bytes")));
		CHECK(json_object_get(p, "census.pages.pinned_free_bytes") != NULL);
		CHECK(json_object_get(p, "fragmentation.external_ratio") != NULL);
		CHECK(exact ? json_is_integer(json_object_get(p, "heap.requested_bytes"))
			    : json_is_null(json_object_get(p, "heap.requested_bytes")));
	}
	json_decref(j);
	http_free(&r);
}

/* A process that exits keeps its history for as long as it stays listed. */
static void test_history_outlives_its_process(void)
{
	char workload[1024], body[64], rel[64], url[512];
	char *wargv[] = {workload, "steady", NULL};
	bool exited = false;
	struct http_reply r;
	json_t *j;
	pid_t w;

	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	w = harness_spawn(wargv, NULL, NULL);
	CHECK(w > 0);
	if (w <= 0)
		return;
	snprintf(body, sizeof(body), "{\"pid\":%d,\"mode\":\"exact\"}", (int)w);
	url_of(url, sizeof(url), "/api/v1/processes");
	/* 422 until the workload's dynamic linker has loaded libc. */
	for (int i = 0; i < 50; i++) {
		r = http_do("POST", url, body, strlen(body), NULL);
		if (r.status != 422)
			break;
		http_free(&r);
		usleep(100 * 1000);
	}
	CHECK_MSG(r.status == 201, "attach: %ld %s", r.status, r.body);
	http_free(&r);
	sleep(2);
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)w);
	for (int i = 0; i < 50 && !exited; i++) {
		long status = 0;

		j = get_json(rel, &status);
		exited = status == 200 &&
			 strcmp(json_string_value(json_object_get(j, "state")) ?: "", "exited") == 0;
		json_decref(j);
		if (!exited)
			usleep(200 * 1000);
	}
	CHECK_MSG(exited, "process %d not listed as exited", (int)w);
	check_history_route(w, true);
}

/* /sites and /profile of a process traced in exact mode: shapes, and strict queries. */
static void check_sites_routes(pid_t w)
{
	static const char *const bad[] = {
		"?sort=size",
		"?limit=0",
		"?limit=100001",
		"?limit=-1",
		"?limit=1x",
		"?sort=live&sort=live",
		"?sorted=live",
		"?limit=",
		/* A sign strtoull would take (found by fuzz_http's round trip). */
		"?limit=+5",
	};
	char url[512], rel[160];
	struct http_reply r;
	json_t *j, *sites;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rel, sizeof(rel), "/api/v1/processes/%d/sites%s", (int)w, bad[i]);
		expect_error("GET", rel, NULL, 400, "bad_query", NULL);
	}
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/profile?type=alloc", (int)w);
	expect_error("GET", rel, NULL, 400, "bad_query", NULL);
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/profile?format=svg", (int)w);
	expect_error("GET", rel, NULL, 400, "bad_query", NULL);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/sites?sort=live&limit=1", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	sites = json_object_get(j, "sites");
	CHECK_MSG(r.status == 200 && json_is_array(sites), "sites: %ld %s", r.status, r.body);
	CHECK(json_array_size(sites) == 1);
	CHECK(json_is_integer(json_object_get(j, "total_live_bytes")));
	CHECK(json_is_boolean(json_object_get(j, "truncated")));
	if (json_array_size(sites) == 1) {
		json_t *s0 = json_array_get(sites, 0);
		json_t *f0 = json_array_get(json_object_get(s0, "frames"), 0);

		CHECK(json_is_integer(json_object_get(s0, "id")));
		CHECK(json_is_integer(json_object_get(s0, "live_bytes")));
		CHECK(json_is_integer(json_object_get(s0, "allocations")));
		CHECK(json_is_string(json_object_get(f0, "address")));
		CHECK(json_is_string(json_object_get(f0, "object")));
		CHECK(json_is_string(json_object_get(f0, "offset")));
	}
	json_decref(j);
	http_free(&r);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/profile?format=folded", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	CHECK_MSG(r.status == 200, "folded: %ld %s", r.status, r.body);
	CHECK(strncmp(http_header(&r, "Content-Type") ?: "", "text/plain", 10) == 0);
	http_free(&r);
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/profile", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	/* A gzip stream: pprof's format. */
	CHECK_MSG(r.status == 200 && r.len > 2 && (unsigned char)r.body[0] == 0x1f &&
			  (unsigned char)r.body[1] == 0x8b,
		  "pprof: %ld, %zu bytes", r.status, r.len);
	CHECK_STR_EQ(http_header(&r, "Content-Type"), "application/octet-stream");
	http_free(&r);
}

static void test_attach_query_and_detach_a_workload(pid_t w)
{
	static const char *const doc_keys[] = {
		"pid",           "start_time", "comm",    "exe",      "state",
		"mode",          "allocator",  "tracing", "counters", "heap",
		"fragmentation", "histogram",  "arenas",
	};
	char url[512], rel[128], body[128];
	struct http_reply r;
	json_int_t before, after;
	json_t *j, *hist;
	bool listed = false;

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)w);
	expect_error("GET", rel, NULL, 404, "not_traced", NULL);
	expect_error("DELETE", rel, NULL, 404, "not_traced", NULL);
	snprintf(url, sizeof(url), "/api/v1/processes/%d/doctor", (int)w);
	expect_error("GET", url, NULL, 404, "not_traced", NULL);
	snprintf(url, sizeof(url), "/api/v1/processes/%d/latency", (int)w);
	expect_error("GET", url, NULL, 404, "not_traced", NULL);
	snprintf(url, sizeof(url), "/api/v1/processes/%d/sites", (int)w);
	expect_error("GET", url, NULL, 404, "not_traced", NULL);
	snprintf(url, sizeof(url), "/api/v1/processes/%d/profile", (int)w);
	expect_error("GET", url, NULL, 404, "not_traced", NULL);
	snprintf(url, sizeof(url), "/api/v1/processes/%d/history", (int)w);
	expect_error("GET", url, NULL, 404, "not_traced", NULL);

	snprintf(body, sizeof(body), "{\"pid\":%d}", (int)dead_pid());
	expect_error("POST", "/api/v1/processes", body, 404, "no_such_process", NULL);
	/* kthreadd has no user-space heap to probe. */
	expect_error("POST", "/api/v1/processes", "{\"pid\":2,\"mode\":\"exact\"}", 422,
		     "cannot_attach", NULL);

	snprintf(body, sizeof(body), "{\"pid\":%d,\"mode\":\"exact\"}", (int)w);
	url_of(url, sizeof(url), "/api/v1/processes");
	r = http_do("POST", url, body, strlen(body), NULL);
	j = http_json(&r);
	CHECK_MSG(r.status == 201, "attach: %ld %s", r.status, r.body);
	CHECK_STR_EQ(http_header(&r, "Location"), rel);
	for (size_t i = 0; i < sizeof(doc_keys) / sizeof(doc_keys[0]); i++)
		CHECK_MSG(json_object_get(j, doc_keys[i]) != NULL, "attach document lacks %s",
			  doc_keys[i]);
	CHECK(json_integer_value(json_object_get(j, "pid")) == w);
	CHECK_STR_EQ(json_string_value(json_object_get(j, "mode")), "exact");
	CHECK_STR_EQ(json_string_value(json_object_get(j, "comm")), "web_workload");
	json_decref(j);
	http_free(&r);

	expect_error("POST", "/api/v1/processes", body, 409, "already_traced", NULL);

	/* The account moves: the workload allocates about 2,000 times a second. */
	before = counter(w, "counters.malloc");
	sleep(3);
	after = counter(w, "counters.malloc");
	CHECK_MSG(before >= 0 && after > before + 1000, "malloc count %lld then %lld",
		  (long long)before, (long long)after);
	CHECK(counter(w, "heap.live_allocations") > 0);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/histogram", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	hist = json_object_get(j, "requests");
	CHECK(r.status == 200 && json_integer_value(json_object_get(j, "pid")) == w);
	CHECK(json_is_array(hist) && json_array_size(hist) == 30);
	CHECK(json_is_array(json_object_get(j, "live")));
	json_decref(j);
	http_free(&r);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/arenas", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200 && json_is_array(json_object_get(j, "arenas")));
	/* A glibc process that has called malloc has at least its main arena. */
	CHECK(json_array_size(json_object_get(j, "arenas")) >= 1);
	CHECK_STR_EQ(json_string_value(json_object_get(
			     json_array_get(json_object_get(j, "arenas"), 0), "kind")),
		     "main");
	json_decref(j);
	http_free(&r);

	/* A glibc process has no libptm probes: both parts are null, not zeros. */
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/libptm", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200 && json_integer_value(json_object_get(j, "pid")) == w);
	CHECK(json_is_null(json_object_get(j, "events")));
	CHECK(json_is_null(json_object_get(j, "sampled_heap")));
	json_decref(j);
	http_free(&r);

	/* The steady workload moves too fast to compare counts: only the shape here. */
	check_latency_route(w, "exact", NULL);
	check_sites_routes(w);
	check_history_route(w, true);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/doctor", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200 && json_integer_value(json_object_get(j, "pid")) == w);
	CHECK(json_is_array(json_object_get(j, "findings")));
	for (size_t i = 0; i < json_array_size(json_object_get(j, "findings")); i++) {
		json_t *f = json_array_get(json_object_get(j, "findings"), i);

		CHECK(json_is_string(json_object_get(f, "finding")));
		CHECK(json_is_string(json_object_get(f, "text")));
	}
	json_decref(j);
	http_free(&r);

	url_of(url, sizeof(url), "/api/v1/processes");
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200 && json_is_array(json_object_get(j, "processes")));
	for (size_t i = 0; i < json_array_size(json_object_get(j, "processes")); i++) {
		json_t *p = json_array_get(json_object_get(j, "processes"), i);

		if (json_integer_value(json_object_get(p, "pid")) != w)
			continue;
		listed = true;
		CHECK_STR_EQ(json_string_value(json_object_get(p, "allocator")), "glibc");
		CHECK(json_is_integer(json_at(p, "heap.requested_bytes")));
	}
	CHECK_MSG(listed, "process %d is not listed: %s", (int)w, r.body);
	json_decref(j);
	http_free(&r);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_do("DELETE", url, NULL, 0, NULL);
	CHECK_MSG(r.status == 204 && r.len == 0, "detach: %ld %s", r.status, r.body);
	http_free(&r);
	expect_error("GET", rel, NULL, 404, "not_traced", NULL);
	expect_error("DELETE", rel, NULL, 404, "not_traced", NULL);
}

/*
 * Attaches in exact mode to a cheese workload waiting for SIGUSR1, lets it
 * run, and waits until the daemon has counted its last free twice.
 */
static void attach_and_run_still_workload(pid_t pid, int out_fd, const char *what, json_int_t frees)
{
	char url[512], body[64];
	struct http_reply r;
	json_int_t prev = -2, cur = -1;

	snprintf(body, sizeof(body), "{\"pid\":%d,\"mode\":\"exact\"}", (int)pid);
	url_of(url, sizeof(url), "/api/v1/processes");
	r = http_do("POST", url, body, strlen(body), NULL);
	CHECK_MSG(r.status == 201, "attach to %s: %ld %s", what, r.status, r.body);
	http_free(&r);
	kill(pid, SIGUSR1);
	CHECK(harness_wait_line(out_fd, "done", 20));
	for (int i = 0; i < 40 && (cur != prev || cur < frees); i++) {
		usleep(700 * 1000);
		prev = cur;
		cur = counter(pid, "counters.free");
	}
	CHECK_MSG(cur == frees, "%s: free calls %lld, want %lld", what, (long long)cur,
		  (long long)frees);
}

/*
 * A process that holds still: in exact mode, once the daemon times calls,
 * each timed op's latency count equals the main document's counter for it
 * (every timed call passed both probes).
 */
static void check_latency_counts_of_a_still_process(pid_t pid, const char *what)
{
	char key[64];
	json_t *lat = NULL, *calls;

	if (!check_latency_route(pid, "exact", &lat)) {
		CHECK_MSG(0, "%s (pid %d): /latency ops are null in exact mode", what, (int)pid);
		json_decref(lat);
		return;
	}
	calls = json_object_get(lat, "calls");
	for (size_t k = 0; k < sizeof(timed_ops) / sizeof(timed_ops[0]); k++) {
		json_int_t timed, counted;

		timed = json_integer_value(
			json_object_get(json_object_get(calls, timed_ops[k]), "count"));
		snprintf(key, sizeof(key), "counters.%s", timed_ops[k]);
		counted = counter(pid, key);
		CHECK_MSG(timed == counted, "%s: %s timed %lld times, counted %lld", what,
			  timed_ops[k], (long long)timed, (long long)counted);
	}
	/* The workload made this many mallocs after the attach; none is lost. */
	CHECK_MSG(json_integer_value(json_object_get(json_object_get(calls, "malloc"), "count")) ==
			  3000,
		  "%s: malloc timed %lld times, the workload made 3000", what,
		  (long long)json_integer_value(
			  json_object_get(json_object_get(calls, "malloc"), "count")));
	json_decref(lat);
}

static void detach(pid_t pid)
{
	char url[512], rel[64];
	struct http_reply r;

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)pid);
	url_of(url, sizeof(url), rel);
	r = http_do("DELETE", url, NULL, 0, NULL);
	CHECK_MSG(r.status == 204, "detach %d: %ld", (int)pid, r.status);
	http_free(&r);
}

static void test_latency_counts_equal_the_counters(void)
{
	char workload[1024], count[16] = "3000", rel[64];
	char *argv[] = {workload, "cheese", count, NULL};
	int fd = -1;
	long status;
	pid_t g, p;
	json_t *j;

	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	g = harness_spawn(argv, NULL, &fd);
	CHECK(harness_wait_line(fd, "ready", 10));
	attach_and_run_still_workload(g, fd, "a glibc process", 3000 - 300);
	check_latency_counts_of_a_still_process(g, "a glibc process");
	detach(g);
	harness_stop(g);
	close(fd);

	p = harness_spawn_libptm_workload("cheese", count, 16384, &fd);
	CHECK(harness_wait_line(fd, "ready", 10));
	attach_and_run_still_workload(p, fd, "a libptm process", 3000 - 300);
	check_latency_counts_of_a_still_process(p, "a libptm process");
	/* A libptm process with its sampled heap on: /libptm has events and samples. */
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d/libptm", (int)p);
	j = get_json(rel, &status);
	CHECK(status == 200);
	CHECK_MSG(json_is_object(json_object_get(j, "events")) &&
			  json_integer_value(json_at(j, "events.page_releases")) > 0,
		  "libptm process: no events or no page release in /libptm");
	CHECK_MSG(json_integer_value(json_at(j, "sampled_heap.samples")) > 0,
		  "libptm process: no samples in /libptm");
	json_decref(j);
	detach(p);
	harness_stop(p);
	close(fd);
}

/* Passive mode: what it cannot measure is null in JSON and absent from /metrics. */
static void test_passive_mode_reports_unknown_as_null_and_absent(pid_t w)
{
	char url[512], rel[64], body[64], series[128];
	struct http_reply r;
	json_t *j;

	snprintf(body, sizeof(body), "{\"pid\":%d,\"mode\":\"passive\"}", (int)w);
	url_of(url, sizeof(url), "/api/v1/processes");
	r = http_do("POST", url, body, strlen(body), NULL);
	j = http_json(&r);
	CHECK_MSG(r.status == 201, "passive attach: %ld %s", r.status, r.body);
	CHECK_STR_EQ(json_string_value(json_object_get(j, "mode")), "passive");
	json_decref(j);
	http_free(&r);
	sleep(2);

	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)w);
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200);
	CHECK(json_is_null(json_at(j, "counters.malloc")));
	CHECK(json_is_null(json_at(j, "heap.requested_bytes")));
	CHECK(json_is_null(json_at(j, "histogram.requests")));
	CHECK(json_is_integer(json_at(j, "counters.brk")));
	CHECK(json_is_integer(json_at(j, "heap.process_rss_bytes")));
	json_decref(j);
	http_free(&r);
	CHECK_MSG(!check_latency_route(w, "passive", NULL), "passive mode times calls");
	check_history_route(w, false);

	/* Passive mode keeps no sites: null with the reason, and no profile. */
	snprintf(url, sizeof(url), "%s/api/v1/processes/%d/sites", base, (int)w);
	r = http_get(url);
	j = http_json(&r);
	CHECK(r.status == 200);
	CHECK(json_is_null(json_object_get(j, "sites")));
	CHECK(json_is_null(json_object_get(j, "total_live_bytes")));
	CHECK(json_string_length(json_object_get(j, "reason")) > 0);
	json_decref(j);
	http_free(&r);
	snprintf(url, sizeof(url), "/api/v1/processes/%d/profile", (int)w);
	expect_error("GET", url, NULL, 409, "no_sites", NULL);

	url_of(url, sizeof(url), "/metrics");
	r = http_get(url);
	snprintf(series, sizeof(series), "heapfrag_allocator_calls_total{pid=\"%d\"", (int)w);
	CHECK_MSG(!strstr(r.body, series), "passive mode exports %s", series);
	snprintf(series, sizeof(series), "heapfrag_heap_requested_bytes{pid=\"%d\"", (int)w);
	CHECK_MSG(!strstr(r.body, series), "passive mode exports %s", series);
	snprintf(series, sizeof(series), "heapfrag_allocation_size_bytes_bucket{pid=\"%d\"",
		 (int)w);
	CHECK_MSG(!strstr(r.body, series), "passive mode exports %s", series);
	snprintf(series, sizeof(series), "heapfrag_heap_syscalls_total{pid=\"%d\"", (int)w);
	CHECK_MSG(strstr(r.body, series), "passive mode lacks %s", series);
	snprintf(series, sizeof(series), "heapfrag_process_resident_bytes{pid=\"%d\"", (int)w);
	CHECK_MSG(strstr(r.body, series), "passive mode lacks %s", series);
	http_free(&r);

	url_of(url, sizeof(url), rel);
	r = http_do("DELETE", url, NULL, 0, NULL);
	CHECK(r.status == 204);
	http_free(&r);
}

static void test_token_guards_mutating_routes(const char *dir, pid_t w)
{
	char token_file[512], url[512], body[64], rel[64];
	char *extra[] = {"--token-file", token_file, NULL};
	struct http_reply r;
	int port = harness_free_port();
	pid_t d;
	FILE *f;

	snprintf(token_file, sizeof(token_file), "%s/token", dir);
	f = fopen(token_file, "w");
	fputs("s3cret-token\n", f);
	fclose(f);
	d = harness_start_daemon(NULL, port, extra, daemon_log);
	CHECK(d > 0);
	if (d <= 0)
		return;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	snprintf(body, sizeof(body), "{\"pid\":%d}", (int)w);
	snprintf(rel, sizeof(rel), "/api/v1/processes/%d", (int)w);

	expect_error("POST", "/api/v1/processes", body, 401, "unauthorized", NULL);
	expect_error("POST", "/api/v1/processes", body, 401, "unauthorized",
		     "Authorization: Bearer wrong");
	expect_error("POST", "/api/v1/processes", body, 401, "unauthorized",
		     "Authorization: Bearer s3cret-token-and-more");
	expect_error("DELETE", rel, NULL, 401, "unauthorized", NULL);
	url_of(url, sizeof(url), "/api/v1/processes");
	r = http_do("POST", url, body, strlen(body), NULL);
	CHECK_STR_EQ(http_header(&r, "WWW-Authenticate"), "Bearer realm=\"heapfragd\"");
	http_free(&r);
	r = http_do("POST", url, body, strlen(body), "Authorization: Bearer s3cret-token");
	CHECK_MSG(r.status == 201, "attach with token: %ld %s", r.status, r.body);
	http_free(&r);
	/* Reading needs no token. */
	url_of(url, sizeof(url), rel);
	r = http_get(url);
	CHECK(r.status == 200);
	http_free(&r);
	r = http_do("DELETE", url, NULL, 0, "Authorization: Bearer s3cret-token");
	CHECK_MSG(r.status == 204, "detach with token: %ld", r.status);
	http_free(&r);
	harness_stop(d);
}

/* An address of this machine that is not loopback, or false. */
static bool non_loopback_ipv4(char *out, size_t len)
{
	struct ifaddrs *ifs, *i;
	bool found = false;

	if (getifaddrs(&ifs))
		return false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;

		if (!sin || sin->sin_family != AF_INET ||
		    (ntohl(sin->sin_addr.s_addr) >> 24) == 127)
			continue;
		found = inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)len) != NULL;
	}
	freeifaddrs(ifs);
	return found;
}

static void test_without_token_only_loopback_may_mutate(pid_t w)
{
	char addr[64], listen[80], url[512], body[64], other[INET_ADDRSTRLEN];
	struct http_reply r;
	int port = harness_free_port();
	pid_t d;
	json_t *j;

	if (!non_loopback_ipv4(other, sizeof(other))) {
		fprintf(stderr, "no non-loopback IPv4 address here: the 403 case is not run\n");
		CHECK_MSG(getenv("CI") == NULL || strcmp(getenv("CI"), "true") != 0,
			  "CI must be able to test the non-loopback refusal");
		return;
	}
	snprintf(listen, sizeof(listen), "0.0.0.0:%d", port);
	d = harness_start_daemon(listen, port, NULL, daemon_log);
	CHECK(d > 0);
	if (d <= 0)
		return;
	snprintf(body, sizeof(body), "{\"pid\":%d}", (int)w);
	snprintf(addr, sizeof(addr), "http://%s:%d", other, port);
	snprintf(url, sizeof(url), "%s/api/v1/processes", addr);
	r = http_do("POST", url, body, strlen(body), NULL);
	j = http_json(&r);
	CHECK_MSG(r.status == 403, "POST from %s: %ld %s", other, r.status, r.body);
	CHECK_STR_EQ(json_string_value(json_object_get(j, "error")), "forbidden");
	json_decref(j);
	http_free(&r);
	snprintf(url, sizeof(url), "%s/api/v1/processes/%d", addr, (int)w);
	r = http_do("DELETE", url, NULL, 0, NULL);
	CHECK(r.status == 403);
	http_free(&r);
	/* Reading is open to every client the listen address admits. */
	snprintf(url, sizeof(url), "%s/healthz", addr);
	r = http_get(url);
	CHECK(r.status == 200);
	http_free(&r);
	/* The same request from loopback is allowed. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes", port);
	r = http_do("POST", url, body, strlen(body), NULL);
	CHECK_MSG(r.status == 201, "POST from loopback: %ld %s", r.status, r.body);
	http_free(&r);
	harness_stop(d);
}

int main(void)
{
	const char *why = harness_missing();
	char workload[1024], *dir;
	char *wargv[] = {workload, "steady", NULL};
	int port;
	pid_t d, w;

	if (why)
		HF_SKIP("%s", why);
	dir = harness_tmpdir("web-api");
	snprintf(daemon_log, sizeof(daemon_log), "%s/heapfragd.log", dir);
	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	w = harness_spawn(wargv, NULL, NULL);
	port = harness_free_port();
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	d = harness_start_daemon(NULL, port, NULL, daemon_log);
	CHECK_MSG(d > 0, "heapfragd did not start; see %s", daemon_log);
	if (d > 0) {
		test_health_index_and_unknown_routes();
		test_wrong_method_is_405_with_allow();
		test_bad_pids_and_bodies_are_400();
		test_attach_query_and_detach_a_workload(w);
		test_passive_mode_reports_unknown_as_null_and_absent(w);
		test_latency_counts_equal_the_counters();
		test_history_outlives_its_process();
		CHECK(waitpid(d, NULL, WNOHANG) == 0);
		harness_stop(d);
		test_token_guards_mutating_routes(dir, w);
		test_without_token_only_loopback_may_mutate(w);
	}
	harness_stop(w);
	if (hf_checks_failed)
		harness_show_log(daemon_log);
	else
		harness_rmdir(dir);
	free(dir);
	return hf_test_done();
}
