/* SPDX-License-Identifier: MIT */
/*
 * curl_body.h - a libcurl write callback that collects what it is given
 * into one NUL-terminated malloc'ed buffer, for the tests' HTTP clients.
 * Header-only: each user is a single test program.
 */
#ifndef HF_TEST_CURL_BODY_H
#define HF_TEST_CURL_BODY_H

#include <stdlib.h>
#include <string.h>

struct curl_body {
	char *data; /* NULL until something arrives; the caller frees it */
	size_t len;
};

/* CURLOPT_WRITEFUNCTION or CURLOPT_HEADERFUNCTION, with a struct curl_body. */
static inline size_t curl_body_append(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct curl_body *b = arg;
	size_t n = size * nmemb;
	char *grown = realloc(b->data, b->len + n + 1);

	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->len += n;
	grown[b->len] = '\0';
	b->data = grown;
	return n;
}

#endif /* HF_TEST_CURL_BODY_H */
