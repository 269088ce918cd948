// SPDX-License-Identifier: MIT
/*
 * fuzz_http - the libFuzzer target for what an HTTP client sends: each input
 * is a raw HTTP/1.1 request (tests/fuzz/http/ holds real ones), split here
 * as libmicrohttpd splits it (request line, headers, body; the path before
 * '?', the query at '&' and '=', nothing percent-decoded, as server.c asks),
 * and then judged by the server's own code in the server's order: the path
 * check (hf_web_path_ok), the route table (hf_route_match), the cross-site
 * and access policy (hf_web_cross_site, hf_web_access in web/auth.c, for
 * each listener and token setting), the declared Content-Length
 * (hf_web_body_too_large), the query of /sites and /profile
 * (hf_query_take, hf_sites_query, hf_profile_query) and the attach body
 * (hf_parse_attach), all in web/routes.c and web/request.c.
 *
 * Beyond not crashing, every verdict is checked against an independent
 * reading of the rules in README.md's API section: a path is accepted
 * exactly when it is printable ASCII without '%', '\\', "//", a "."
 * segment or one that starts with ".."; a matched route printed back with
 * its PID is the path; a PID, a limit or an attach body that is accepted
 * prints back as sent; a query is refused exactly when it names an unknown
 * or repeated parameter or a value out of its set; a write never goes
 * without a token or loopback, a read of an open route never needs one, and
 * a request without Host, Origin or Sec-Fetch-Site is never refused as
 * cross-site, nor one to a listener beyond loopback that only reads.  abort() marks a
 * verdict that breaks them.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The rules of a routable path, read segment by segment. */
static bool path_rules(const char *path)
{
	const char *seg;

	if (path[0] != '/')
		return false;
	for (const char *p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x21 || c > 0x7e || c == '%' || c == '\\')
			return false;
	}
	for (seg = path + 1;; seg += strcspn(seg, "/") + 1) {
		size_t n = strcspn(seg, "/");

		/* An empty segment is "//"; a trailing '/' ends in an empty last segment. */
		if (n == 0 && seg[n] == '/')
			return false;
		/* "." and ".." segments, and (stricter than needed) any that starts with "..". */
		if ((n == 1 && seg[0] == '.') || (n >= 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (!seg[n])
			return true;
	}
}

/* A PID as the API spells it: 1 to 10 digits, no leading zero, at most INT_MAX. */
static bool pid_rules(const char *s, size_t len)
{
	char buf[16];

	if (len == 0 || len > 10 || s[0] == '0' || strspn(s, "0123456789") < len)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return strtoll(buf, NULL, 10) <= INT_MAX;
}

static void check_pid_parser(const char *s, size_t len)
{
	pid_t pid = -1;
	char back[16];
	int ok = hf_web_parse_pid(s, len, &pid) == 0;

	CHECK(ok == pid_rules(s, len));
	if (ok) {
		snprintf(back, sizeof(back), "%d", (int)pid);
		CHECK(strlen(back) == len && memcmp(back, s, len) == 0);
	}
}

static bool has_pid(const struct hf_route *r)
{
	return strstr(r->pattern, "{pid}") != NULL;
}

/* HEAD is served as GET (routes.c). */
static unsigned int method_bit(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ? HF_GET
	       : strcmp(m, "POST") == 0                        ? HF_POST
	       : strcmp(m, "DELETE") == 0                      ? HF_DELETE
							       : 0;
}

/* The route's pattern with the PID written in: the path it matched, byte for byte. */
static void check_route(const struct hf_route *r, const char *method, const char *path, pid_t pid)
{
	const char *at = strstr(r->pattern, "{pid}");
	char back[512];

	CHECK(r->method == method_bit(method));
	if (!at) {
		CHECK(strcmp(r->pattern, path) == 0);
		return;
	}
	CHECK(pid > 0);
	snprintf(back, sizeof(back), "%.*s%d%s", (int)(at - r->pattern), r->pattern, (int)pid,
		 at + 5);
	CHECK(strcmp(back, path) == 0);
}

/* Splits the query at '&' and '=' as libmicrohttpd does, into q. */
static void take_query(char *query, struct hf_query *q, const char **keys, const char **values,
		       size_t *n, size_t max)
{
	*n = 0;
	/* No query, or an empty one, hands over no parameter. */
	for (char *arg = query && *query ? query : NULL; arg;) {
		char *amp = strchr(arg, '&'), *eq;

		if (amp)
			*amp = '\0';
		eq = strchr(arg, '=');
		if (eq)
			*eq = '\0';
		hf_query_take(q, arg, eq ? eq + 1 : NULL);
		if (*n < max) {
			keys[*n] = arg;
			values[*n] = eq ? eq + 1 : "";
			(*n)++;
		}
		arg = amp ? amp + 1 : NULL;
	}
}

/* True when the parameters break the rules: unknown, repeated, or a value outside choices. */
static bool query_wrong(const char *const *known, const char *const *const *choices,
			const char **keys, const char **values, size_t n, int *index_of)
{
	for (size_t i = 0; i < n; i++) {
		int k = -1;

		for (int j = 0; known[j]; j++)
			if (strcmp(keys[i], known[j]) == 0)
				k = j;
		if (k < 0)
			return true;
		for (size_t j = 0; j < i; j++)
			if (strcmp(keys[j], keys[i]) == 0)
				return true;
		if (choices[k]) {
			int c = -1;

			for (int j = 0; choices[k][j]; j++)
				if (strcmp(values[i], choices[k][j]) == 0)
					c = j;
			if (c < 0)
				return true;
			index_of[k] = c;
		}
	}
	return false;
}

#define MAX_ARGS 64

static void check_sites_query(char *query)
{
	static const char *const sorts[] = {"live", "pinned", NULL};
	static const char *const *const choices[] = {sorts, NULL};
	struct hf_query q = {.known = hf_sites_query_keys};
	const char *keys[MAX_ARGS], *values[MAX_ARGS];
	int index_of[2] = {0, 0}, order = -1;
	unsigned long long limit = 0;
	const char *given = NULL;
	bool wrong;
	size_t n;
	int err;

	take_query(query, &q, keys, values, &n, MAX_ARGS);
	err = hf_sites_query(&q, &order, &limit);
	CHECK(memchr(q.bad, '\0', sizeof(q.bad)) != NULL);
	CHECK((err != 0) == (q.bad[0] != '\0'));
	if (n == MAX_ARGS)
		return;
	wrong = query_wrong(hf_sites_query_keys, choices, keys, values, n, index_of);
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], "limit") == 0)
			given = values[i];
	if (!wrong && given) {
		/* 1 to HF_SITES_MAX_LIMIT in plain digits: no sign, no blank. */
		size_t len = strlen(given);
		unsigned long long v = 0;

		errno = 0;
		if (len && strspn(given, "0123456789") == len)
			v = strtoull(given, NULL, 10);
		wrong = errno || v < 1 || v > HF_SITES_MAX_LIMIT;
	}
	CHECK((err != 0) == wrong);
	if (err)
		return;
	CHECK(order == index_of[0]);
	if (given)
		CHECK(limit == strtoull(given, NULL, 10));
	else
		CHECK(limit == HF_SITES_DEFAULT_LIMIT);
}

static void check_profile_query(char *query)
{
	static const char *const types[] = {"inuse", "pinned", NULL};
	static const char *const formats[] = {"pprof", "folded", NULL};
	static const char *const *const choices[] = {types, formats};
	struct hf_query q = {.known = hf_profile_query_keys};
	const char *keys[MAX_ARGS], *values[MAX_ARGS];
	int index_of[2] = {0, 0}, type = -1, format = -1;
	size_t n;
	int err;

	take_query(query, &q, keys, values, &n, MAX_ARGS);
	err = hf_profile_query(&q, &type, &format);
	CHECK(memchr(q.bad, '\0', sizeof(q.bad)) != NULL);
	CHECK((err != 0) == (q.bad[0] != '\0'));
	if (n == MAX_ARGS)
		return;
	CHECK((err != 0) == query_wrong(hf_profile_query_keys, choices, keys, values, n, index_of));
	if (!err)
		CHECK(type == index_of[0] && format == index_of[1]);
}

static void check_attach(const char *body, size_t len)
{
	enum hf_mode mode = HF_MODE_PASSIVE, mode2 = HF_MODE_PASSIVE;
	pid_t pid = 0, pid2 = 0;
	char why[256] = "", why2[256], back[64];
	enum hf_web_error e;
	int n;

	e = hf_parse_attach(body, len, &pid, &mode, why, sizeof(why));
	CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	if (e != HF_E_COUNT) {
		CHECK(e == HF_E_BAD_JSON || e == HF_E_BAD_REQUEST || e == HF_E_INVALID_PID);
		CHECK(why[0] != '\0');
		return;
	}
	CHECK(pid > 0 && (mode == HF_MODE_EXACT || mode == HF_MODE_PASSIVE));
	/* The request it was read as, written out, reads back the same. */
	n = snprintf(back, sizeof(back), "{\"pid\":%d,\"mode\":\"%s\"}", (int)pid,
		     mode == HF_MODE_EXACT ? "exact" : "passive");
	CHECK(hf_parse_attach(back, (size_t)n, &pid2, &mode2, why2, sizeof(why2)) == HF_E_COUNT);
	CHECK(pid2 == pid && mode2 == mode);
}

/* Who may ask: the policy for every listener and token setting. */
static void check_policy(const char *method, const char *path, const char *host, const char *origin,
			 const char *fetch_site)
{
	bool read = method_bit(method) == HF_GET;

	for (int token = 0; token < 2; token++) {
		for (int loopback = 0; loopback < 2; loopback++) {
			enum hf_access a = hf_web_access(method, path, token, loopback);
			const char *why =
				hf_web_cross_site(method, host, origin, fetch_site, loopback);

			CHECK(a == HF_ACCESS_OPEN || a == HF_ACCESS_TOKEN ||
			      a == HF_ACCESS_LOOPBACK);
			if (!read)
				CHECK(a == (token ? HF_ACCESS_TOKEN : HF_ACCESS_LOOPBACK));
			if (read && hf_web_open_path(path))
				CHECK(a == HF_ACCESS_OPEN);
			if (!token)
				CHECK(a != HF_ACCESS_TOKEN);
			if (!host && !origin && !fetch_site)
				CHECK(why == NULL);
			if (!loopback && read)
				CHECK(why == NULL);
			if (why)
				CHECK(why[0] != '\0');
		}
	}
}

/* "Content-Length: N": accepted only when it reads as a number no larger than the limit. */
static void check_content_length(const char *cl)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(cl, &end, 10);
	if (!hf_web_body_too_large(cl))
		CHECK(errno == 0 && end != cl && n <= HF_WEB_MAX_BODY);
}

/* The next line of the head: [*p, eol) without "\r\n"; NULL at the end of the head. */
static char *next_line(char **p)
{
	char *line = *p, *nl = strchr(line, '\n');

	if (!nl)
		return NULL;
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	*p = nl + 1;
	return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct hf_route *route = NULL;
	char *req, *p, *line, *method, *target, *version, *query, *cl = NULL;
	const char *host = NULL, *origin = NULL, *fetch_site = NULL;
	const char *body;
	size_t body_len;
	unsigned int allow = 0;
	enum hf_match m;
	pid_t pid = 0;

	/* The head ends at the first empty line; libmicrohttpd reads no NUL in it. */
	req = malloc(size + 1);
	if (!req)
		return 0;
	memcpy(req, data, size);
	req[size] = '\0';
	p = req;
	line = next_line(&p);
	if (!line)
		goto out;
	method = line;
	target = strchr(method, ' ');
	if (!target)
		goto out;
	*target++ = '\0';
	version = strchr(target, ' ');
	if (!version || strncmp(version + 1, "HTTP/1.", 7) != 0)
		goto out;
	*version = '\0';
	while ((line = next_line(&p)) != NULL && line[0]) {
		if (strncasecmp(line, "Content-Length:", 15) == 0 && !cl) {
			cl = line + 15;
			cl += strspn(cl, " \t");
		} else if (strncasecmp(line, "Host:", 5) == 0 && !host) {
			host = line + 5 + strspn(line + 5, " \t");
		} else if (strncasecmp(line, "Origin:", 7) == 0 && !origin) {
			origin = line + 7 + strspn(line + 7, " \t");
		} else if (strncasecmp(line, "Sec-Fetch-Site:", 15) == 0 && !fetch_site) {
			fetch_site = line + 15 + strspn(line + 15, " \t");
		}
	}
	if (!line)
		goto out;
	body = (const char *)data + (size_t)(p - req);
	body_len = size - (size_t)(p - req);

	query = strchr(target, '?');
	if (query)
		*query++ = '\0';
	/* The server's order (server.c on_headers): path, route, policy, PID, declared length. */
	CHECK(hf_web_path_ok(target) == path_rules(target));
	if (!hf_web_path_ok(target))
		goto out;
	m = hf_route_match(method, target, &route, &pid, &allow);
	switch (m) {
	case HF_MATCH_NO_ROUTE:
		CHECK(allow == 0);
		goto out;
	case HF_MATCH_BAD_METHOD:
		CHECK(allow != 0 && !(allow & method_bit(method)));
		goto out;
	case HF_MATCH_BAD_PID:
	case HF_MATCH_OK:
		CHECK(allow & method_bit(method));
		break;
	}
	check_policy(method, target, host, origin, fetch_site);
	if (has_pid(route)) {
		/* Everything before {pid} is literal: the segment sits where the pattern has it. */
		const char *seg = target + (strstr(route->pattern, "{pid}") - route->pattern);
		size_t len = strcspn(seg, "/");

		CHECK(pid_rules(seg, len) == (m == HF_MATCH_OK));
		check_pid_parser(seg, len);
	}
	if (m == HF_MATCH_BAD_PID)
		goto out;
	check_route(route, method, target, pid);
	if (cl) {
		check_content_length(cl);
		if (hf_web_body_too_large(cl))
			goto out;
	}
	if (body_len > HF_WEB_MAX_BODY)
		goto out;
	if (route->handler == hf_handle_process_sites)
		check_sites_query(query ? query : (char[]){""});
	else if (route->handler == hf_handle_process_profile)
		check_profile_query(query ? query : (char[]){""});
	else if (route->handler == hf_handle_process_attach)
		check_attach(body, body_len);
out:
	free(req);
	return 0;
}
