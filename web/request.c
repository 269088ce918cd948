// SPDX-License-Identifier: MIT
/*
 * request.c - what a client sends, parsed without libmicrohttpd: query
 * parameters, the attach body and a declared Content-Length.
 *
 * The handlers and the server call these on what libmicrohttpd hands them,
 * and the libFuzzer target fuzz_http (tests/fuzz/) calls them on mutated
 * requests, so that the fuzzer runs the code the server runs.  Query
 * strings are parsed strictly: a parameter a route does not know, a repeated
 * one or a value out of its set is a complaint in q->bad, so that a typo
 * never silently gives the default.
 */
#include "web.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hf_query_take(struct hf_query *q, const char *key, const char *value)
{
	for (size_t i = 0; i < HF_QUERY_MAX && q->known[i]; i++) {
		if (strcmp(key, q->known[i]) != 0)
			continue;
		if (q->values[i] && !q->bad[0])
			snprintf(q->bad, sizeof(q->bad), "The query names '%s' twice.",
				 q->known[i]);
		q->values[i] = value ? value : "";
		return;
	}
	if (!q->bad[0])
		snprintf(q->bad, sizeof(q->bad), "This route takes no query parameter '%.64s'.",
			 key);
}

/* The index of value in choices (NULL-terminated), or -1. */
static int choice(const char *value, const char *const *choices)
{
	for (int i = 0; choices[i]; i++)
		if (strcmp(value, choices[i]) == 0)
			return i;
	return -1;
}

/*
 * A whole number of digits only, from 1 to max.  strtoull alone would also
 * take leading blanks and a '+' ("limit=+5", "limit= 5"), which a strict
 * parser refuses like any other typo.
 */
static int parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!s[0])
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > max)
			return -EINVAL;
	}
	if (v < 1)
		return -EINVAL;
	*out = v;
	return 0;
}

const char *const hf_sites_query_keys[] = {"sort", "limit", NULL};

int hf_sites_query(struct hf_query *q, int *order, unsigned long long *limit)
{
	static const char *const sorts[] = {"live", "pinned", NULL};

	*order = 0;
	*limit = HF_SITES_DEFAULT_LIMIT;
	if (!q->bad[0] && q->values[0] && (*order = choice(q->values[0], sorts)) < 0)
		snprintf(q->bad, sizeof(q->bad), "sort is live or pinned.");
	if (!q->bad[0] && q->values[1] && parse_count(q->values[1], HF_SITES_MAX_LIMIT, limit))
		snprintf(q->bad, sizeof(q->bad), "limit is a whole number from 1 to %d.",
			 HF_SITES_MAX_LIMIT);
	return q->bad[0] ? -EINVAL : 0;
}

const char *const hf_profile_query_keys[] = {"type", "format", NULL};

int hf_profile_query(struct hf_query *q, int *type, int *format)
{
	static const char *const types[] = {"inuse", "pinned", NULL};
	static const char *const formats[] = {"pprof", "folded", NULL};

	*type = 0;
	*format = 0;
	if (!q->bad[0] && q->values[0] && (*type = choice(q->values[0], types)) < 0)
		snprintf(q->bad, sizeof(q->bad), "type is inuse or pinned.");
	if (!q->bad[0] && q->values[1] && (*format = choice(q->values[1], formats)) < 0)
		snprintf(q->bad, sizeof(q->bad), "format is pprof or folded.");
	return q->bad[0] ? -EINVAL : 0;
}

enum hf_web_error hf_parse_attach(const char *body, size_t len, pid_t *pid, enum hf_mode *mode,
				  char *why, size_t why_len)
{
	enum hf_web_error e = HF_E_COUNT;
	json_error_t jerr;
	json_t *doc, *jpid, *jmode;
	json_int_t v;

	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		snprintf(why, why_len, "The body is not valid JSON (line %d, column %d: %s).",
			 jerr.line, jerr.column, jerr.text);
		return HF_E_BAD_JSON;
	}
	if (!json_is_object(doc)) {
		snprintf(why, why_len, "The body must be a JSON object {\"pid\":N,\"mode\":...}.");
		e = HF_E_BAD_REQUEST;
		goto out;
	}
	jpid = json_object_get(doc, "pid");
	jmode = json_object_get(doc, "mode");
	v = json_is_integer(jpid) ? json_integer_value(jpid) : 0;
	if (v <= 0 || v > INT_MAX) {
		snprintf(why, why_len, "\"pid\" must be a positive integer that fits a PID.");
		e = HF_E_INVALID_PID;
		goto out;
	}
	*pid = (pid_t)v;
	*mode = HF_MODE_EXACT;
	if (jmode) {
		const char *m = json_string_value(jmode);

		if (m && strcmp(m, "exact") == 0) {
			*mode = HF_MODE_EXACT;
		} else if (m && strcmp(m, "passive") == 0) {
			*mode = HF_MODE_PASSIVE;
		} else {
			snprintf(why, why_len, "\"mode\" must be \"exact\" or \"passive\".");
			e = HF_E_BAD_REQUEST;
			goto out;
		}
	}
out:
	json_decref(doc);
	return e;
}

bool hf_web_body_too_large(const char *content_length)
{
	unsigned long long n;
	char *end;

	if (!content_length)
		return false;
	errno = 0;
	n = strtoull(content_length, &end, 10);
	return errno || end == content_length || n > HF_WEB_MAX_BODY;
}
