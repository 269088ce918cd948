// SPDX-License-Identifier: MIT
/*
 * routes.c - the route table and the strict path matcher.
 *
 * A path is matched segment by segment against each pattern; "{pid}" takes
 * one segment and nothing is percent-decoded (server.c turns decoding off),
 * so what a client names is exactly what is matched.  No route reads a file.
 */
#include "web.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const struct hf_route routes[] = {
	{.method = HF_GET, .pattern = "/", .handler = hf_handle_dashboard_list, .open = true},
	{.method = HF_GET,
	 .pattern = "/processes/{pid}",
	 .handler = hf_handle_dashboard_process,
	 .open = true},
	{.method = HF_GET,
	 .pattern = "/assets/dashboard.css",
	 .handler = hf_handle_asset_css,
	 .open = true},
	{.method = HF_GET,
	 .pattern = "/assets/common.js",
	 .handler = hf_handle_asset_common_js,
	 .open = true},
	{.method = HF_GET,
	 .pattern = "/assets/list.js",
	 .handler = hf_handle_asset_list_js,
	 .open = true},
	{.method = HF_GET,
	 .pattern = "/assets/process.js",
	 .handler = hf_handle_asset_process_js,
	 .open = true},
	{.method = HF_GET,
	 .pattern = "/assets/chart.js",
	 .handler = hf_handle_asset_chart_js,
	 .open = true},
	{.method = HF_GET, .pattern = "/healthz", .handler = hf_handle_health, .open = true},
	{.method = HF_GET, .pattern = "/metrics", .handler = hf_handle_metrics},
	{.method = HF_GET, .pattern = "/api/v1/processes", .handler = hf_handle_process_list},
	{.method = HF_POST, .pattern = "/api/v1/processes", .handler = hf_handle_process_attach},
	{.method = HF_GET, .pattern = "/api/v1/processes/{pid}", .handler = hf_handle_process_get},
	{.method = HF_DELETE,
	 .pattern = "/api/v1/processes/{pid}",
	 .handler = hf_handle_process_detach},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/histogram",
	 .handler = hf_handle_process_histogram},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/arenas",
	 .handler = hf_handle_process_arenas},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/doctor",
	 .handler = hf_handle_process_doctor},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/libptm",
	 .handler = hf_handle_process_libptm},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/latency",
	 .handler = hf_handle_process_latency},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/heapmap",
	 .handler = hf_handle_process_heapmap},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/sites",
	 .handler = hf_handle_process_sites},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/profile",
	 .handler = hf_handle_process_profile},
	{.method = HF_GET,
	 .pattern = "/api/v1/processes/{pid}/history",
	 .handler = hf_handle_process_history},
};

const struct hf_route *hf_web_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

int hf_web_parse_pid(const char *s, size_t len, pid_t *out)
{
	long long v = 0;

	/* pid_t is a 32-bit int on Linux: at most 10 digits, no leading zero. */
	if (len == 0 || len > 10 || s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT_MAX)
		return -EINVAL;
	*out = (pid_t)v;
	return 0;
}

bool hf_web_path_ok(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;

		/* No encoded bytes, no control or non-ASCII bytes, no empty segment. */
		if (c <= 0x20 || c >= 0x7f || c == '%' || c == '\\')
			return false;
		if (c == '/' && p[1] == '/')
			return false;
		if (c == '.' && p[-1] == '/' && (p[1] == '.' || p[1] == '/' || p[1] == '\0'))
			return false;
	}
	return true;
}

/* Matches one path against one pattern; *pid_seg gets the {pid} segment. */
static bool pattern_match(const char *pattern, const char *path, const char **pid_seg,
			  size_t *pid_len)
{
	*pid_seg = NULL;
	while (*pattern && *path) {
		if (strncmp(pattern, "{pid}", 5) == 0) {
			size_t n = strcspn(path, "/");

			if (n == 0)
				return false;
			*pid_seg = path;
			*pid_len = n;
			pattern += 5;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

static unsigned int method_bit(const char *method)
{
	/* HEAD is GET without the body, which libmicrohttpd leaves out itself. */
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return HF_GET;
	if (strcmp(method, "POST") == 0)
		return HF_POST;
	if (strcmp(method, "DELETE") == 0)
		return HF_DELETE;
	return 0;
}

enum hf_match hf_route_match(const char *method, const char *path, const struct hf_route **route,
			     pid_t *pid, unsigned int *allow)
{
	unsigned int want = method_bit(method);
	const struct hf_route *found = NULL;
	const char *seg = NULL;
	size_t seg_len = 0;

	*allow = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *s = NULL;
		size_t n = 0;

		if (!pattern_match(routes[i].pattern, path, &s, &n))
			continue;
		*allow |= routes[i].method;
		if (routes[i].method == want && !found) {
			found = &routes[i];
			seg = s;
			seg_len = n;
		}
	}
	if (!*allow)
		return HF_MATCH_NO_ROUTE;
	if (!found)
		return HF_MATCH_BAD_METHOD;
	*route = found;
	*pid = 0;
	if (seg && hf_web_parse_pid(seg, seg_len, pid))
		return HF_MATCH_BAD_PID;
	return HF_MATCH_OK;
}
