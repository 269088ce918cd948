/* SPDX-License-Identifier: MIT */
/*
 * web.h - what the files of web/ share among themselves (not installed).
 *
 * The server (server.c) parses and guards each request, the route table
 * (routes.c) picks a handler, each handler file answers one resource, and
 * reply.c builds every response, so that content types, ownership of the
 * body and the error format live in one place.  json_doc.c and prom.c are
 * pure formatters over snapshots; the unit tests call them directly.
 */
#ifndef HF_WEB_H
#define HF_WEB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "service.h"
#include "snapshot.h"

struct MHD_Connection;

/* The largest request body accepted; larger ones get 413. */
#define HF_WEB_MAX_BODY (64 * 1024)

/* ---- growable text buffer (buf.c) ---- */

/*
 * A buffer that grows as text is appended.  An allocation failure is sticky
 * (err = -ENOMEM) so that writers can append without checking each call and
 * look once at the end.
 */
struct hf_buf {
	char *data;
	size_t len;
	size_t cap;
	int err;
};

void hf_buf_printf(struct hf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hf_buf_append(struct hf_buf *b, const char *s, size_t n);
void hf_buf_puts(struct hf_buf *b, const char *s);
/* Hands the NUL-terminated text to the caller (who frees it); NULL on error. */
char *hf_buf_take(struct hf_buf *b, size_t *len);
void hf_buf_free(struct hf_buf *b);

/* ---- Prometheus text exposition 0.0.4 (prom.c) ---- */

/*
 * Writes every heapfrag_ family for the given snapshots and daemon stats.  A
 * value a snapshot does not know (HF_UNKNOWN, NaN, no histogram in passive
 * mode) is left out, never written as 0.  Pure: the output depends only on
 * the arguments.  Returns 0 or -ENOMEM.
 */
int hf_prom_write(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n,
		  const struct hf_daemon_stats *stats);
/* The last family, written once the scrape's own duration is known. */
int hf_prom_write_scrape_duration(struct hf_buf *b, double seconds);
/* Appends s as a label value: \ " and newline escaped. */
void hf_prom_escape(struct hf_buf *b, const char *s);

/* ---- JSON documents (json_doc.c) ---- */

/*
 * The per-process document of GET /api/v1/processes/{pid}; d is its latest
 * census detail (may be NULL: the census then lists no arenas).  NULL on
 * ENOMEM.
 */
json_t *hf_json_process(const struct hf_snapshot *s, const struct hf_census_detail *d);
/* Its "census" object: null before the first census, numbers null where not walked. */
json_t *hf_json_census(const struct hf_snapshot *s, const struct hf_census_detail *d);
/*
 * GET /api/v1/processes/{pid}/heapmap: {"pid","state","reason","at",
 * "cell_fields":["in_use_bytes","free_bytes","resident_bytes"],
 * "regions":[{"arena","kind","start","end","cell_bytes","cells":[[u,f,r],...]}]}.
 */
json_t *hf_json_heapmap(const struct hf_snapshot *s, const struct hf_census_detail *d);
struct hf_history_point;
/* One history point: "at" and each field by its dotted name, null where unknown. */
json_t *hf_json_history_point(const struct hf_history_point *p);
/* The document's conventions for the other writers: unknown is null, addresses are hex. */
json_t *hf_json_u64(uint64_t v);
json_t *hf_json_real(double v);
json_t *hf_json_hex(uint64_t v);
/* One entry of GET /api/v1/processes: identity and the headline numbers. */
json_t *hf_json_process_summary(const struct hf_snapshot *s);
/* {"requests":[...],"live":[...]}, each null when the mode keeps none. */
json_t *hf_json_histograms(const struct hf_snapshot *s);
/* [{"arena":"0x...","kind",...}, ...] */
json_t *hf_json_arenas(const struct hf_snapshot *s);
/*
 * {"pid", "events", "sampled_heap"}: a libptm process's slow-path events and
 * sampled live-heap profile from its USDT probes; each null when not known.
 */
json_t *hf_json_libptm(const struct hf_snapshot *s);
/*
 * {"pid","start_time","mode","calls":{"malloc":{"count","sum_seconds",
 * "buckets":[{"le":2.56e-07,"count":N},...,{"le":null,"count":N}]},"calloc",
 * "realloc","memalign","free"}}: per-call latency in exact mode, each op null
 * when calls are not timed; free always null (it has no return probe).
 */
json_t *hf_json_latency(const struct hf_snapshot *s);

/* ---- paths (routes.c) ---- */

/*
 * Parses a PID path segment of len bytes: a positive decimal without sign,
 * leading zeros or anything else, that fits pid_t.  0 or -EINVAL.
 */
int hf_web_parse_pid(const char *s, size_t len, pid_t *out);
/* True when a path may be routed at all: no "..", no "%", no "//", printable. */
bool hf_web_path_ok(const char *path);

/* ---- who may ask what (auth.c) ---- */

enum hf_access {
	HF_ACCESS_OPEN,     /* anyone who reaches the port */
	HF_ACCESS_TOKEN,    /* "Authorization: Bearer <token>" */
	HF_ACCESS_LOOPBACK, /* loopback clients only (no token is configured) */
};

struct sockaddr;

/*
 * What a request needs, from its method and path, whether --token-file gave
 * a token, and whether the server listens on loopback alone.  Pure.
 */
enum hf_access hf_web_access(const char *method, const char *path, bool have_token,
			     bool listen_loopback);
/* True for a GET of a route marked open (routes.c): "/", "/healthz", "/processes/{pid}", "/assets/...". */
bool hf_web_open_path(const char *path);

/*
 * Whether a browser could have been made to send this request by a page of
 * another site: NULL when not, else the sentence to refuse it with (403).
 * On a loopback listener a Host must name an IP address or localhost
 * (a page that rebinds its own name to 127.0.0.1 sends its name); a
 * write must not come from another origin (Origin other than
 * "http(s)://" + Host, or Sec-Fetch-Site cross-site or same-site).
 * Clients that are not browsers send neither header and pass.  host,
 * origin and fetch_site may be NULL (absent).
 */
const char *hf_web_cross_site(const char *method, const char *host, const char *origin,
			      const char *fetch_site, bool listen_loopback);
/* 127.0.0.0/8, ::1 or IPv4-mapped 127.0.0.0/8. */
bool hf_web_addr_is_loopback(const struct sockaddr *sa);

/* ---- requests, routes and replies ---- */

enum hf_method {
	HF_GET = 1 << 0,
	HF_POST = 1 << 1,
	HF_DELETE = 1 << 2,
};

struct hf_req {
	struct MHD_Connection *conn;
	const struct hf_service *svc;
	pid_t pid; /* from a {pid} segment, when the route has one */
	const char *body;
	size_t body_len;
};

typedef int (*hf_handler)(struct hf_req *req);

struct hf_route {
	enum hf_method method;
	const char *pattern; /* segments separated by '/'; "{pid}" matches a PID */
	hf_handler handler;
	/* Holds no data (the dashboard's pages and assets, liveness): open to all (auth.c). */
	bool open;
};

/* The route table, for the access policy's tests. */
const struct hf_route *hf_web_routes(size_t *n);

enum hf_match {
	HF_MATCH_OK,
	HF_MATCH_NO_ROUTE,
	HF_MATCH_BAD_METHOD, /* *allow holds the methods the path accepts */
	HF_MATCH_BAD_PID,
};

/* Finds the route for method and path; on HF_MATCH_OK fills *route and *pid. */
enum hf_match hf_route_match(const char *method, const char *path, const struct hf_route **route,
			     pid_t *pid, unsigned int *allow);
/* "GET, POST" for a set of methods. */
void hf_methods_str(unsigned int methods, char *out, size_t len);

/* Handlers, one file per resource. */
int hf_handle_health(struct hf_req *req);
int hf_handle_dashboard_list(struct hf_req *req);
int hf_handle_dashboard_process(struct hf_req *req);
int hf_handle_asset_css(struct hf_req *req);
int hf_handle_asset_common_js(struct hf_req *req);
int hf_handle_asset_list_js(struct hf_req *req);
int hf_handle_asset_process_js(struct hf_req *req);
int hf_handle_asset_chart_js(struct hf_req *req);
int hf_handle_metrics(struct hf_req *req);
int hf_handle_process_list(struct hf_req *req);
int hf_handle_process_get(struct hf_req *req);
int hf_handle_process_histogram(struct hf_req *req);
int hf_handle_process_arenas(struct hf_req *req);
int hf_handle_process_doctor(struct hf_req *req);
int hf_handle_process_libptm(struct hf_req *req);
int hf_handle_process_latency(struct hf_req *req);
int hf_handle_process_heapmap(struct hf_req *req);
int hf_handle_process_sites(struct hf_req *req);
int hf_handle_process_profile(struct hf_req *req);
int hf_handle_process_history(struct hf_req *req);

/* Answers 200 with render(snapshot) of req->pid's process, or the error why there is none. */
int hf_reply_snapshot(struct hf_req *req, json_t *(*render)(const struct hf_snapshot *s));
int hf_handle_process_attach(struct hf_req *req);
int hf_handle_process_detach(struct hf_req *req);

/*
 * Every error a client can see, with its HTTP status and the "error" code of
 * the JSON body.  The table in reply.c is the one place they are defined.
 */
enum hf_web_error {
	HF_E_BAD_REQUEST,
	HF_E_BAD_JSON,
	HF_E_BAD_PATH,
	HF_E_INVALID_PID,
	HF_E_UNAUTHORIZED,
	HF_E_FORBIDDEN,
	HF_E_NOT_FOUND,
	HF_E_NOT_TRACED,
	HF_E_NO_SUCH_PROCESS,
	HF_E_METHOD_NOT_ALLOWED,
	HF_E_ALREADY_TRACED,
	HF_E_PAYLOAD_TOO_LARGE,
	HF_E_CANNOT_ATTACH,
	HF_E_INTERNAL,
	HF_E_UNAVAILABLE,
	HF_E_BAD_QUERY,
	HF_E_NO_SITES,
	HF_E_COUNT,
};

/*
 * The reply_* calls queue a response on conn and return MHD's result
 * (MHD_YES or MHD_NO), which the handler returns as is.
 */
/* Serialises json (and drops the reference) with Content-Type application/json. */
int hf_reply_json(struct MHD_Connection *conn, unsigned int status, json_t *json);
/* 201 Created with the document and Location. */
int hf_reply_json_created(struct MHD_Connection *conn, json_t *json, const char *location);
/* {"error":"<code>","message":"<sentence>"} with the error's status. */
int hf_reply_error(struct MHD_Connection *conn, enum hf_web_error e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An error with one extra header (Allow, WWW-Authenticate). */
int hf_reply_error_header(struct MHD_Connection *conn, enum hf_web_error e, const char *header,
			  const char *value, const char *message);
/* 405 with Allow listing the methods the path accepts. */
int hf_reply_method_not_allowed(struct MHD_Connection *conn, unsigned int allow);
/* Takes ownership of a malloc'ed body. */
int hf_reply_text(struct MHD_Connection *conn, unsigned int status, const char *content_type,
		  char *body, size_t len);
int hf_reply_static(struct MHD_Connection *conn, unsigned int status, const char *content_type,
		    const char *body);
int hf_reply_empty(struct MHD_Connection *conn, unsigned int status);
/* 200 with a dashboard page or asset built into the binary (dashboard.c). */
int hf_reply_asset(struct MHD_Connection *conn, const char *content_type, const char *data,
		   size_t len);
/* Maps a negative errno from the service to a reply. */
int hf_reply_errno(struct MHD_Connection *conn, int err, pid_t pid);
/* The status and code of an error (for tests and logs). */
unsigned int hf_web_error_status(enum hf_web_error e);
const char *hf_web_error_code(enum hf_web_error e);

/* ---- what a client sends (request.c) ---- */

#define HF_QUERY_MAX           4
#define HF_SITES_DEFAULT_LIMIT 100
#define HF_SITES_MAX_LIMIT     100000

/* A route's query parameters, as libmicrohttpd hands them over one by one. */
struct hf_query {
	const char *const *known;         /* NULL-terminated names the route takes */
	const char *values[HF_QUERY_MAX]; /* by the index in known; "" for "?key" */
	char bad[160];                    /* the first complaint, "" while none */
};

/* Takes one parameter (value NULL for a key without '='). */
void hf_query_take(struct hf_query *q, const char *key, const char *value);
/* The parameters of .../sites and .../profile, in the order hf_*_query reads them. */
extern const char *const hf_sites_query_keys[];
extern const char *const hf_profile_query_keys[];
/*
 * .../sites?sort=live|pinned&limit=N: *order is the index of sort (0, live,
 * by default), *limit 1 to HF_SITES_MAX_LIMIT (HF_SITES_DEFAULT_LIMIT).  0,
 * or -EINVAL with the complaint in q->bad.
 */
int hf_sites_query(struct hf_query *q, int *order, unsigned long long *limit);
/* .../profile?type=inuse|pinned&format=pprof|folded: the indexes, 0 by default. */
int hf_profile_query(struct hf_query *q, int *type, int *format);
/*
 * POST /api/v1/processes's body {"pid":N,"mode":"exact"|"passive"} (mode
 * may be left out: exact).  HF_E_COUNT when it is good, else the error to
 * answer with and its sentence in why.
 */
enum hf_web_error hf_parse_attach(const char *body, size_t len, pid_t *pid, enum hf_mode *mode,
				  char *why, size_t why_len);
/* True when a declared Content-Length is over HF_WEB_MAX_BODY or not a number. */
bool hf_web_body_too_large(const char *content_length);

#endif /* HF_WEB_H */
