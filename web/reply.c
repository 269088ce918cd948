// SPDX-License-Identifier: MIT
/*
 * reply.c - every response heapfragd's HTTP server sends.
 *
 * Bodies are built here and handed to libmicrohttpd, which frees them when
 * the response is done; content types and the error format are set in this
 * file only.
 */
#include "web.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "log.h"

static const struct {
	unsigned int status;
	const char *code;
} errors[HF_E_COUNT] = {
	[HF_E_BAD_REQUEST] = {MHD_HTTP_BAD_REQUEST, "bad_request"},
	[HF_E_BAD_JSON] = {MHD_HTTP_BAD_REQUEST, "bad_json"},
	[HF_E_BAD_PATH] = {MHD_HTTP_BAD_REQUEST, "bad_path"},
	[HF_E_INVALID_PID] = {MHD_HTTP_BAD_REQUEST, "invalid_pid"},
	[HF_E_UNAUTHORIZED] = {MHD_HTTP_UNAUTHORIZED, "unauthorized"},
	[HF_E_FORBIDDEN] = {MHD_HTTP_FORBIDDEN, "forbidden"},
	[HF_E_NOT_FOUND] = {MHD_HTTP_NOT_FOUND, "not_found"},
	[HF_E_NOT_TRACED] = {MHD_HTTP_NOT_FOUND, "not_traced"},
	[HF_E_NO_SUCH_PROCESS] = {MHD_HTTP_NOT_FOUND, "no_such_process"},
	[HF_E_METHOD_NOT_ALLOWED] = {MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed"},
	[HF_E_ALREADY_TRACED] = {MHD_HTTP_CONFLICT, "already_traced"},
	[HF_E_PAYLOAD_TOO_LARGE] = {MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large"},
	[HF_E_CANNOT_ATTACH] = {MHD_HTTP_UNPROCESSABLE_CONTENT, "cannot_attach"},
	[HF_E_INTERNAL] = {MHD_HTTP_INTERNAL_SERVER_ERROR, "internal"},
	[HF_E_UNAVAILABLE] = {MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable"},
	[HF_E_BAD_QUERY] = {MHD_HTTP_BAD_REQUEST, "bad_query"},
	[HF_E_NO_SITES] = {MHD_HTTP_CONFLICT, "no_sites"},
};

unsigned int hf_web_error_status(enum hf_web_error e)
{
	return errors[e].status;
}

const char *hf_web_error_code(enum hf_web_error e)
{
	return errors[e].code;
}

static int queue(struct MHD_Connection *conn, unsigned int status, struct MHD_Response *resp,
		 const char *content_type)
{
	int ret;

	if (!resp)
		return MHD_NO;
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	/* Nothing here is meant to be cached or sniffed into another type. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int hf_reply_text(struct MHD_Connection *conn, unsigned int status, const char *content_type,
		  char *body, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	return queue(conn, status, resp, content_type);
}

int hf_reply_static(struct MHD_Connection *conn, unsigned int status, const char *content_type,
		    const char *body)
{
	return queue(
		conn, status,
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT),
		content_type);
}

int hf_reply_asset(struct MHD_Connection *conn, const char *content_type, const char *data,
		   size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);

	if (!resp)
		return MHD_NO;
	/*
	 * The pages run only their own scripts and talk only to this daemon: a
	 * name a target gave itself (a comm, a path, a function) that reached
	 * the page as markup could load or send nothing.
	 */
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; style-src 'self'; "
				"img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
				"form-action 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	return queue(conn, MHD_HTTP_OK, resp, content_type);
}

int hf_reply_empty(struct MHD_Connection *conn, unsigned int status)
{
	return queue(conn, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT),
		     NULL);
}

int hf_reply_json(struct MHD_Connection *conn, unsigned int status, json_t *json)
{
	char *body;

	if (!json)
		return hf_reply_error(conn, HF_E_INTERNAL, "The server ran out of memory.");
	body = json_dumps(json, JSON_COMPACT);
	json_decref(json);
	if (!body)
		return hf_reply_error(conn, HF_E_INTERNAL, "The server ran out of memory.");
	return hf_reply_text(conn, status, "application/json", body, strlen(body));
}

/* Sends body (malloc'ed, owned from here on) as JSON with one extra header. */
static int reply_body_with_header(struct MHD_Connection *conn, unsigned int status, char *body,
				  const char *header, const char *value)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, header, value);
	return queue(conn, status, resp, "application/json");
}

int hf_reply_json_created(struct MHD_Connection *conn, json_t *json, const char *location)
{
	char *body;

	if (!json)
		return hf_reply_error(conn, HF_E_INTERNAL, "The server ran out of memory.");
	body = json_dumps(json, JSON_COMPACT);
	json_decref(json);
	if (!body)
		return hf_reply_error(conn, HF_E_INTERNAL, "The server ran out of memory.");
	return reply_body_with_header(conn, MHD_HTTP_CREATED, body, MHD_HTTP_HEADER_LOCATION,
				      location);
}

/* The error body, or a fixed one when even that cannot be built. */
static int reply_error_body(struct MHD_Connection *conn, enum hf_web_error e, const char *message)
{
	json_t *json = json_pack("{s:s,s:s}", "error", errors[e].code, "message", message);
	char *body = json ? json_dumps(json, JSON_COMPACT) : NULL;

	json_decref(json);
	if (!body)
		return hf_reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
				       "{\"error\":\"internal\",\"message\":\"The server ran out "
				       "of memory.\"}");
	return hf_reply_text(conn, errors[e].status, "application/json", body, strlen(body));
}

int hf_reply_error(struct MHD_Connection *conn, enum hf_web_error e, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return reply_error_body(conn, e, message);
}

void hf_methods_str(unsigned int methods, char *out, size_t len)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {{HF_GET, "GET"}, {HF_POST, "POST"}, {HF_DELETE, "DELETE"}};
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(methods & names[i].bit))
			continue;
		used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%s",
					 used ? ", " : "", names[i].name);
		if (used >= len)
			break;
	}
}

int hf_reply_error_header(struct MHD_Connection *conn, enum hf_web_error e, const char *header,
			  const char *value, const char *message)
{
	json_t *json = json_pack("{s:s,s:s}", "error", errors[e].code, "message", message);
	char *body = json ? json_dumps(json, JSON_COMPACT) : NULL;

	json_decref(json);
	if (!body)
		return reply_error_body(conn, HF_E_INTERNAL, "The server ran out of memory.");
	return reply_body_with_header(conn, errors[e].status, body, header, value);
}

int hf_reply_method_not_allowed(struct MHD_Connection *conn, unsigned int allow)
{
	char methods[64], message[128];

	hf_methods_str(allow, methods, sizeof(methods));
	snprintf(message, sizeof(message), "This path accepts only %s.", methods);
	return hf_reply_error_header(conn, HF_E_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, methods,
				     message);
}

int hf_reply_errno(struct MHD_Connection *conn, int err, pid_t pid)
{
	switch (err) {
	case -ENOENT:
		return hf_reply_error(conn, HF_E_NOT_TRACED, "Process %d is not traced.", (int)pid);
	case -ESRCH:
		return hf_reply_error(conn, HF_E_NO_SUCH_PROCESS, "There is no process %d.",
				      (int)pid);
	case -EEXIST:
		return hf_reply_error(conn, HF_E_ALREADY_TRACED, "Process %d is already traced.",
				      (int)pid);
	case -ENOMEM:
		return hf_reply_error(conn, HF_E_INTERNAL, "The server ran out of memory.");
	default:
		hf_log(HF_LOG_WARN, "http: service call for pid %d failed: %s", (int)pid,
		       strerror(-err));
		return hf_reply_error(conn, HF_E_INTERNAL, "The daemon failed: %s.",
				      strerror(-err));
	}
}
