// SPDX-License-Identifier: MIT
/*
 * index.c - GET /: a small HTML page linking the routes.
 */
#include "web.h"

#include <microhttpd.h>

static const char page[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\"><head><meta charset=\"utf-8\"><title>heapfragd</title></head>\n"
	"<body>\n"
	"<h1>heapfragd " HF_VERSION "</h1>\n"
	"<p>Heap fragmentation of the processes this daemon traces.</p>\n"
	"<ul>\n"
	"<li><a href=\"/healthz\">GET /healthz</a> &mdash; liveness and version</li>\n"
	"<li><a href=\"/api/v1/processes\">GET /api/v1/processes</a> &mdash; traced processes "
	"with their headline numbers</li>\n"
	"<li>GET /api/v1/processes/{pid} &mdash; one process's full account</li>\n"
	"<li>GET /api/v1/processes/{pid}/histogram &mdash; request-size and live-size "
	"histograms</li>\n"
	"<li>GET /api/v1/processes/{pid}/arenas &mdash; per-arena figures</li>\n"
	"<li>GET /api/v1/processes/{pid}/doctor &mdash; findings, with their numbers and "
	"remedies</li>\n"
	"<li>GET /api/v1/processes/{pid}/libptm &mdash; a libptm process's slow-path events "
	"and sampled live heap</li>\n"
	"<li>GET /api/v1/processes/{pid}/latency &mdash; allocator call latency histograms "
	"(exact mode)</li>\n"
	"<li>GET /api/v1/processes/{pid}/heapmap &mdash; the heap census's map of the heap, "
	"cell by cell</li>\n"
	"<li>GET /api/v1/processes/{pid}/sites?sort=live|pinned&amp;limit=N &mdash; allocation "
	"sites and the free bytes their blocks pin (exact mode)</li>\n"
	"<li>GET /api/v1/processes/{pid}/profile?type=inuse|pinned&amp;format=pprof|folded "
	"&mdash; the sites for go tool pprof or flame graphs</li>\n"
	"<li>POST /api/v1/processes <code>{\"pid\":N,\"mode\":\"exact\"|\"passive\"}</code> "
	"&mdash; attach</li>\n"
	"<li>DELETE /api/v1/processes/{pid} &mdash; detach</li>\n"
	"<li><a href=\"/metrics\">GET /metrics</a> &mdash; Prometheus text exposition</li>\n"
	"</ul>\n"
	"</body></html>\n";

int hf_handle_index(struct hf_req *req)
{
	return hf_reply_static(req->conn, MHD_HTTP_OK, "text/html; charset=utf-8", page);
}
