// SPDX-License-Identifier: MIT
/*
 * test_web_paths.c - strict path handling: PIDs, rejected paths, routes.
 */
#include <string.h>

#include "check.h"
#include "web.h"

static int parse(const char *s, pid_t *pid)
{
	return hf_web_parse_pid(s, strlen(s), pid);
}

static void test_pid_is_a_plain_positive_decimal_that_fits_pid_t(void)
{
	static const char *const bad[] = {
		"",   "0",   "-1",   "+1",         "01",          "1a",         "a1",  " 1",
		"1 ", "1.0", "0x10", "2147483648", "99999999999", "4294967297", "1e3", "١",
	};
	pid_t pid = 0;

	CHECK(parse("1", &pid) == 0 && pid == 1);
	CHECK(parse("4242", &pid) == 0 && pid == 4242);
	CHECK(parse("2147483647", &pid) == 0 && pid == 2147483647);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(parse(bad[i], &pid) != 0, "\"%s\" was accepted", bad[i]);
	/* Only len bytes are read: "12/histogram" with len 2 is 12. */
	CHECK(hf_web_parse_pid("12/histogram", 2, &pid) == 0 && pid == 12);
}

static void test_paths_with_dots_percent_or_controls_are_refused(void)
{
	static const char *const bad[] = {
		"",
		"metrics",
		"/..",
		"/../etc/passwd",
		"/api/v1/../../etc/passwd",
		"/./metrics",
		"/api/v1/processes/1%00",
		"/%2e%2e/etc",
		"//metrics",
		"/metrics\t",
		"/a b",
		"/api\\v1",
		"/x\x7f",
		"/\xc3\xa9",
		"/api/v1/processes/.",
		"/api/v1/processes/..",
	};
	static const char *const good[] = {
		"/", "/metrics", "/healthz", "/api/v1/processes/12/histogram", "/a.b", "/a..b",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(!hf_web_path_ok(bad[i]), "\"%s\" was accepted", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK_MSG(hf_web_path_ok(good[i]), "\"%s\" was refused", good[i]);
}

static void test_routes_match_exactly(void)
{
	const struct hf_route *r = NULL;
	unsigned int allow;
	pid_t pid;

	CHECK(hf_route_match("GET", "/metrics", &r, &pid, &allow) == HF_MATCH_OK);
	CHECK(r->handler == hf_handle_metrics);
	CHECK(hf_route_match("GET", "/api/v1/processes/77", &r, &pid, &allow) == HF_MATCH_OK);
	CHECK(r->handler == hf_handle_process_get && pid == 77);
	CHECK(hf_route_match("GET", "/api/v1/processes/77/histogram", &r, &pid, &allow) ==
	      HF_MATCH_OK);
	CHECK(r->handler == hf_handle_process_histogram && pid == 77);
	CHECK(hf_route_match("GET", "/api/v1/processes/8/arenas", &r, &pid, &allow) == HF_MATCH_OK);
	CHECK(r->handler == hf_handle_process_arenas && pid == 8);
	CHECK(hf_route_match("GET", "/api/v1/processes/31/latency", &r, &pid, &allow) ==
	      HF_MATCH_OK);
	CHECK(r->handler == hf_handle_process_latency && pid == 31);
	CHECK(hf_route_match("GET", "/api/v1/processes/0/latency", &r, &pid, &allow) ==
	      HF_MATCH_BAD_PID);
	CHECK(hf_route_match("POST", "/api/v1/processes/31/latency", &r, &pid, &allow) ==
	      HF_MATCH_BAD_METHOD);
	CHECK(allow == HF_GET);
	CHECK(hf_route_match("POST", "/api/v1/processes", &r, &pid, &allow) == HF_MATCH_OK);
	CHECK(r->handler == hf_handle_process_attach);
	CHECK(hf_route_match("DELETE", "/api/v1/processes/9", &r, &pid, &allow) == HF_MATCH_OK);
	CHECK(r->handler == hf_handle_process_detach && pid == 9);
	CHECK(hf_route_match("GET", "/", &r, &pid, &allow) == HF_MATCH_OK);
	CHECK(r->handler == hf_handle_dashboard_list);

	CHECK(hf_route_match("GET", "/nope", &r, &pid, &allow) == HF_MATCH_NO_ROUTE);
	CHECK(hf_route_match("GET", "/metrics/", &r, &pid, &allow) == HF_MATCH_NO_ROUTE);
	CHECK(hf_route_match("GET", "/api/v1/processes/", &r, &pid, &allow) == HF_MATCH_NO_ROUTE);
	CHECK(hf_route_match("GET", "/api/v1/processes/1/other", &r, &pid, &allow) ==
	      HF_MATCH_NO_ROUTE);
	CHECK(hf_route_match("GET", "/api/v1/processes/abc", &r, &pid, &allow) == HF_MATCH_BAD_PID);
	CHECK(hf_route_match("GET", "/api/v1/processes/-1/arenas", &r, &pid, &allow) ==
	      HF_MATCH_BAD_PID);

	CHECK(hf_route_match("PUT", "/api/v1/processes", &r, &pid, &allow) == HF_MATCH_BAD_METHOD);
	CHECK(allow == (HF_GET | HF_POST));
	CHECK(hf_route_match("POST", "/metrics", &r, &pid, &allow) == HF_MATCH_BAD_METHOD);
	CHECK(allow == HF_GET);
	CHECK(hf_route_match("POST", "/api/v1/processes/5", &r, &pid, &allow) ==
	      HF_MATCH_BAD_METHOD);
	CHECK(allow == (HF_GET | HF_DELETE));
}

static void test_allow_header_lists_methods(void)
{
	char s[64];

	hf_methods_str(HF_GET | HF_DELETE, s, sizeof(s));
	CHECK_STR_EQ(s, "GET, DELETE");
	hf_methods_str(HF_GET, s, sizeof(s));
	CHECK_STR_EQ(s, "GET");
}

static void test_every_error_has_a_status_and_a_code(void)
{
	for (int e = 0; e < HF_E_COUNT; e++) {
		CHECK_MSG(hf_web_error_status(e) >= 400 && hf_web_error_status(e) < 600, "error %d",
			  e);
		CHECK_MSG(hf_web_error_code(e) && hf_web_error_code(e)[0], "error %d", e);
	}
	CHECK(hf_web_error_status(HF_E_PAYLOAD_TOO_LARGE) == 413);
	CHECK(hf_web_error_status(HF_E_ALREADY_TRACED) == 409);
	CHECK(hf_web_error_status(HF_E_CANNOT_ATTACH) == 422);
	CHECK(hf_web_error_status(HF_E_METHOD_NOT_ALLOWED) == 405);
}

int main(void)
{
	test_pid_is_a_plain_positive_decimal_that_fits_pid_t();
	test_paths_with_dots_percent_or_controls_are_refused();
	test_routes_match_exactly();
	test_allow_header_lists_methods();
	test_every_error_has_a_status_and_a_code();
	return hf_test_done();
}
