// SPDX-License-Identifier: MIT
/*
 * buf.c - a growable text buffer for the formatters.
 */
#include "web.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(struct hf_buf *b, size_t extra)
{
	size_t want, cap;
	char *data;

	if (b->err)
		return b->err;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->err = -ENOMEM;
		return b->err;
	}
	want = b->len + extra + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = data;
	b->cap = cap;
	return 0;
}

void hf_buf_append(struct hf_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void hf_buf_puts(struct hf_buf *b, const char *s)
{
	hf_buf_append(b, s, strlen(s));
}

void hf_buf_printf(struct hf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf_reserve(b, 128))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		/* Did not fit: grow to the exact size and format again. */
		if (buf_reserve(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

char *hf_buf_take(struct hf_buf *b, size_t *len)
{
	char *data;

	if (b->err || buf_reserve(b, 0)) {
		hf_buf_free(b);
		return NULL;
	}
	b->data[b->len] = '\0';
	data = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}

void hf_buf_free(struct hf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
