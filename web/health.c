// SPDX-License-Identifier: MIT
/*
 * health.c - GET /healthz: the daemon answers, and says which version it is.
 */
#include "web.h"

#include <microhttpd.h>

int hf_handle_health(struct hf_req *req)
{
	struct hf_daemon_stats stats = {0};

	/* Asking the service proves the core answers, not only this thread. */
	req->svc->daemon_stats(req->svc->ctx, &stats);
	return hf_reply_json(req->conn, MHD_HTTP_OK,
			     json_pack("{s:s,s:s,s:I}", "status", "ok", "version", HF_VERSION,
				       "tracked_processes", (json_int_t)stats.tracked_processes));
}
