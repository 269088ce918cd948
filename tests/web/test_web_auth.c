// SPDX-License-Identifier: MIT
/*
 * test_web_auth.c - the access policy: which requests need the bearer
 * token, which only a loopback client may make, and which are open, for
 * each combination of token and listening scope.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "web.h"

/* Routes that carry data: the token guards them beyond loopback. */
static const char *const data_paths[] = {
	"/metrics",
	"/api/v1/processes",
	"/api/v1/processes/42",
	"/api/v1/processes/42/histogram",
	"/api/v1/processes/42/arenas",
	"/api/v1/processes/42/doctor",
	"/api/v1/processes/42/libptm",
	"/api/v1/processes/42/latency",
	"/api/v1/processes/42/heapmap",
	"/api/v1/processes/42/sites",
	"/api/v1/processes/42/profile",
	"/api/v1/processes/42/history",
	/* A route added later is a data route until auth.c names it open. */
	"/api/v2/anything",
	"/debug",
	/* Prefix look-alikes of the open paths are not open, nor paths that climb out. */
	"/healthz/x",
	"/processesx",
	"/processes",
	"/processes/42/x",
	"/processes/../api/v1/processes",
	"/assets",
	"/assets/",
	"/assets/app.js",
	"/assets/x/../../metrics",
	"/assetsx/app.js",
};

/* The dashboard's pages and assets, and liveness: no data, always open. */
static const char *const open_paths[] = {
	"/",
	"/healthz",
	"/processes/42",
	"/assets/dashboard.css",
	"/assets/common.js",
	"/assets/list.js",
	"/assets/process.js",
	"/assets/chart.js",
};

/* The only patterns a route may be marked open with. */
static bool may_be_open(const char *pattern)
{
	return strcmp(pattern, "/") == 0 || strcmp(pattern, "/healthz") == 0 ||
	       strcmp(pattern, "/processes/{pid}") == 0 || strncmp(pattern, "/assets/", 8) == 0;
}

/* Every route of the real table: open only if it holds no data, guarded otherwise. */
static void test_every_route_of_the_table(void)
{
	size_t n;
	const struct hf_route *routes = hf_web_routes(&n);

	CHECK(n > 10);
	for (size_t i = 0; i < n; i++) {
		char path[256];
		const char *pid = strstr(routes[i].pattern, "{pid}");

		if (pid)
			snprintf(path, sizeof(path), "%.*s42%s", (int)(pid - routes[i].pattern),
				 routes[i].pattern, pid + 5);
		else
			snprintf(path, sizeof(path), "%s", routes[i].pattern);
		CHECK_MSG(!routes[i].open ||
				  (routes[i].method == HF_GET && may_be_open(routes[i].pattern)),
			  "%s is marked open", routes[i].pattern);
		if (routes[i].method == HF_GET)
			CHECK_MSG(hf_web_access("GET", path, true, false) ==
					  (routes[i].open ? HF_ACCESS_OPEN : HF_ACCESS_TOKEN),
				  "GET %s: the policy disagrees with the table", path);
		else
			CHECK_MSG(hf_web_access(routes[i].method == HF_POST ? "POST" : "DELETE",
						path, false, false) == HF_ACCESS_LOOPBACK,
				  "%s: a write open beyond loopback", path);
	}
}

/* What a page of another site could make a browser send. */
static void test_requests_a_page_of_another_site_could_make(void)
{
	static const char *const literal_hosts[] = {
		"127.0.0.1", "127.0.0.1:9310", "localhost",     "LOCALHOST:80",
		"[::1]",     "[::1]:9310",     "10.1.2.3:9310",
	};
	static const char *const named_hosts[] = {
		"evil.example",
		"evil.example:9310",
		"127.0.0.1.evil.example",
		"localhost.evil:1",
		"[::1",
		"[::1]x",
		"127.0.0.1:90x",
		"",
		":9310",
		"[evil]:1",
	};

	for (size_t i = 0; i < sizeof(literal_hosts) / sizeof(literal_hosts[0]); i++)
		CHECK_MSG(!hf_web_cross_site("GET", literal_hosts[i], NULL, NULL, true),
			  "Host %s refused on loopback", literal_hosts[i]);
	for (size_t i = 0; i < sizeof(named_hosts) / sizeof(named_hosts[0]); i++) {
		CHECK_MSG(hf_web_cross_site("GET", named_hosts[i], NULL, NULL, true) != NULL,
			  "Host %s (DNS rebinding) answered on loopback", named_hosts[i]);
		/* Beyond loopback names are how the daemon is reached; the token guards data. */
		CHECK(!hf_web_cross_site("GET", named_hosts[i], NULL, NULL, false));
	}
	CHECK(!hf_web_cross_site("GET", NULL, NULL, NULL, true)); /* HTTP/1.0, no browser */
	/* Writes: another origin, or a site's own fetch metadata saying so, is refused. */
	CHECK(hf_web_cross_site("POST", "127.0.0.1:9310", "http://evil.example", NULL, true));
	CHECK(hf_web_cross_site("POST", "127.0.0.1:9310", "null", NULL, true));
	CHECK(hf_web_cross_site("POST", "127.0.0.1:9310", "http://127.0.0.1:9311", NULL, true));
	CHECK(hf_web_cross_site("DELETE", "127.0.0.1:9310", NULL, "cross-site", true));
	CHECK(hf_web_cross_site("POST", "host:1", NULL, "same-site", false));
	CHECK(!hf_web_cross_site("POST", "127.0.0.1:9310", "http://127.0.0.1:9310", "same-origin",
				 true));
	CHECK(!hf_web_cross_site("POST", "node7:9310", "https://node7:9310", NULL, false));
	CHECK(!hf_web_cross_site("POST", "127.0.0.1:9310", NULL, NULL, true)); /* curl */
	/* Reads from elsewhere are the same-origin policy's to keep from the page. */
	CHECK(!hf_web_cross_site("GET", "127.0.0.1:9310", "http://evil.example", "cross-site",
				 true));
}

static void test_reads_of_data_need_the_token_only_beyond_loopback(void)
{
	for (size_t i = 0; i < sizeof(data_paths) / sizeof(data_paths[0]); i++) {
		const char *p = data_paths[i];

		CHECK_MSG(hf_web_access("GET", p, true, false) == HF_ACCESS_TOKEN,
			  "GET %s with a token, listening beyond loopback, is not guarded", p);
		CHECK_MSG(hf_web_access("HEAD", p, true, false) == HF_ACCESS_TOKEN,
			  "HEAD %s with a token, listening beyond loopback, is not guarded", p);
		CHECK_MSG(hf_web_access("GET", p, true, true) == HF_ACCESS_OPEN,
			  "GET %s listening on loopback needs the token", p);
		/* Without a token there is nothing to ask for: reads stay open. */
		CHECK_MSG(hf_web_access("GET", p, false, false) == HF_ACCESS_OPEN,
			  "GET %s without a token is not open", p);
		CHECK_MSG(hf_web_access("GET", p, false, true) == HF_ACCESS_OPEN,
			  "GET %s without a token on loopback is not open", p);
	}
}

static void test_pages_assets_and_liveness_are_always_open(void)
{
	for (size_t i = 0; i < sizeof(open_paths) / sizeof(open_paths[0]); i++) {
		const char *p = open_paths[i];

		CHECK_MSG(hf_web_open_path(p), "%s is not an open path", p);
		for (int tok = 0; tok < 2; tok++)
			for (int lo = 0; lo < 2; lo++)
				CHECK_MSG(hf_web_access("GET", p, tok, lo) == HF_ACCESS_OPEN,
					  "GET %s (token %d, loopback %d) is not open", p, tok, lo);
	}
	for (size_t i = 0; i < sizeof(data_paths) / sizeof(data_paths[0]); i++)
		CHECK_MSG(!hf_web_open_path(data_paths[i]), "%s is an open path", data_paths[i]);
}

static void test_writes_need_the_token_or_a_loopback_client(void)
{
	static const char *const writes[] = {"POST", "DELETE", "PUT", "PATCH", "OPTIONS", "get"};
	static const char *const paths[] = {"/api/v1/processes", "/api/v1/processes/42", "/",
					    "/healthz", "/assets/chart.js"};

	for (size_t m = 0; m < sizeof(writes) / sizeof(writes[0]); m++)
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			for (int lo = 0; lo < 2; lo++) {
				CHECK_MSG(hf_web_access(writes[m], paths[i], true, lo) ==
						  HF_ACCESS_TOKEN,
					  "%s %s with a token is not guarded", writes[m], paths[i]);
				CHECK_MSG(hf_web_access(writes[m], paths[i], false, lo) ==
						  HF_ACCESS_LOOPBACK,
					  "%s %s without a token is open beyond loopback",
					  writes[m], paths[i]);
			}
}

static void test_loopback_addresses(void)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	static const char *const v4_loop[] = {"127.0.0.1", "127.255.0.9"};
	static const char *const v4_wide[] = {"0.0.0.0", "10.0.0.1", "128.0.0.1", "126.0.0.1"};
	static const char *const v6_loop[] = {"::1", "::ffff:127.0.0.1"};
	static const char *const v6_wide[] = {"::", "::2", "fe80::1", "::ffff:10.0.0.1"};

	for (size_t i = 0; i < 2; i++) {
		inet_pton(AF_INET, v4_loop[i], &in.sin_addr);
		CHECK_MSG(hf_web_addr_is_loopback((struct sockaddr *)&in), "%s", v4_loop[i]);
		inet_pton(AF_INET6, v6_loop[i], &in6.sin6_addr);
		CHECK_MSG(hf_web_addr_is_loopback((struct sockaddr *)&in6), "%s", v6_loop[i]);
	}
	for (size_t i = 0; i < 4; i++) {
		inet_pton(AF_INET, v4_wide[i], &in.sin_addr);
		CHECK_MSG(!hf_web_addr_is_loopback((struct sockaddr *)&in), "%s", v4_wide[i]);
		inet_pton(AF_INET6, v6_wide[i], &in6.sin6_addr);
		CHECK_MSG(!hf_web_addr_is_loopback((struct sockaddr *)&in6), "%s", v6_wide[i]);
	}
	CHECK(!hf_web_addr_is_loopback(NULL));
}

int main(void)
{
	test_reads_of_data_need_the_token_only_beyond_loopback();
	test_pages_assets_and_liveness_are_always_open();
	test_writes_need_the_token_or_a_loopback_client();
	test_loopback_addresses();
	test_every_route_of_the_table();
	test_requests_a_page_of_another_site_could_make();
	return hf_test_done();
}
