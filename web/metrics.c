// SPDX-License-Identifier: MIT
/*
 * metrics.c - GET /metrics: the Prometheus scrape.
 */
#include "web.h"

#include <stdlib.h>
#include <time.h>

#include <microhttpd.h>

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hf_handle_metrics(struct hf_req *req)
{
	struct hf_daemon_stats stats = {0};
	struct hf_snapshot *snaps = NULL;
	struct hf_buf b = {0};
	double start = now_seconds();
	size_t n = 0, len;
	char *text;
	int err;

	err = req->svc->list(req->svc->ctx, &snaps, &n);
	if (err)
		return hf_reply_errno(req->conn, err, 0);
	req->svc->daemon_stats(req->svc->ctx, &stats);
	hf_prom_write(&b, snaps, n, &stats);
	free(snaps);
	hf_prom_write_scrape_duration(&b, now_seconds() - start);
	text = hf_buf_take(&b, &len);
	if (!text)
		return hf_reply_error(req->conn, HF_E_INTERNAL, "The server ran out of memory.");
	return hf_reply_text(req->conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			     text, len);
}
