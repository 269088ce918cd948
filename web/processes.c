// SPDX-License-Identifier: MIT
/*
 * processes.c - /api/v1/processes: list, attach (POST), one process (GET),
 * detach (DELETE).
 */
#include "web.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

int hf_handle_process_list(struct hf_req *req)
{
	struct hf_snapshot *snaps = NULL;
	json_t *list = NULL;
	size_t n = 0;
	int err;

	err = req->svc->list(req->svc->ctx, &snaps, &n);
	if (err)
		return hf_reply_errno(req->conn, err, 0);
	list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		if (json_array_append_new(list, hf_json_process_summary(&snaps[i]))) {
			json_decref(list);
			list = NULL;
		}
	}
	free(snaps);
	if (!list)
		return hf_reply_error(req->conn, HF_E_INTERNAL, "The server ran out of memory.");
	return hf_reply_json(req->conn, MHD_HTTP_OK, json_pack("{s:o}", "processes", list));
}

/*
 * Copies the process's snapshot into a heap buffer: struct hf_snapshot is
 * too large (about 10 KiB) to keep on libmicrohttpd's thread stacks lightly.
 */
static int get_snapshot(struct hf_req *req, struct hf_snapshot **out)
{
	struct hf_snapshot *s = malloc(sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	err = req->svc->get(req->svc->ctx, req->pid, s);
	if (err) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

/* Answers with render(snapshot) for the process the path names, or why there is none. */
int hf_reply_snapshot(struct hf_req *req, json_t *(*render)(const struct hf_snapshot *s))
{
	struct hf_snapshot *s;
	json_t *doc;
	int err;

	err = get_snapshot(req, &s);
	if (err)
		return hf_reply_errno(req->conn, err, req->pid);
	doc = render(s);
	free(s);
	return hf_reply_json(req->conn, MHD_HTTP_OK, doc);
}

/* Answers with render(snapshot, census detail), taken together. */
static int reply_with_census(struct hf_req *req,
			     json_t *(*render)(const struct hf_snapshot *s,
					       const struct hf_census_detail *d))
{
	struct hf_snapshot *s = malloc(sizeof(*s));
	struct hf_census_detail *d = NULL;
	json_t *doc;
	int err;

	if (!s)
		return hf_reply_errno(req->conn, -ENOMEM, req->pid);
	err = req->svc->census(req->svc->ctx, req->pid, s, &d);
	if (err) {
		free(s);
		return hf_reply_errno(req->conn, err, req->pid);
	}
	doc = render(s, d);
	hf_census_detail_put(d);
	free(s);
	return hf_reply_json(req->conn, MHD_HTTP_OK, doc);
}

int hf_handle_process_get(struct hf_req *req)
{
	return reply_with_census(req, hf_json_process);
}

int hf_handle_process_heapmap(struct hf_req *req)
{
	return reply_with_census(req, hf_json_heapmap);
}

static json_t *render_histograms(const struct hf_snapshot *s)
{
	json_t *doc = hf_json_histograms(s);

	if (doc && json_object_set_new(doc, "pid", json_integer(s->pid))) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

int hf_handle_process_histogram(struct hf_req *req)
{
	return hf_reply_snapshot(req, render_histograms);
}

static json_t *render_arenas(const struct hf_snapshot *s)
{
	return json_pack("{s:i,s:o,s:b}", "pid", (int)s->pid, "arenas", hf_json_arenas(s),
			 "truncated", s->arenas_truncated);
}

int hf_handle_process_arenas(struct hf_req *req)
{
	return hf_reply_snapshot(req, render_arenas);
}

int hf_handle_process_libptm(struct hf_req *req)
{
	return hf_reply_snapshot(req, hf_json_libptm);
}

int hf_handle_process_latency(struct hf_req *req)
{
	return hf_reply_snapshot(req, hf_json_latency);
}

int hf_handle_process_attach(struct hf_req *req)
{
	struct hf_snapshot *s;
	char why[256] = "";
	char location[64];
	enum hf_mode mode = HF_MODE_EXACT;
	enum hf_web_error bad;
	json_t *doc;
	pid_t pid = 0;
	int err;

	bad = hf_parse_attach(req->body, req->body_len, &pid, &mode, why, sizeof(why));
	if (bad != HF_E_COUNT)
		return hf_reply_error(req->conn, bad, "%s", why);
	why[0] = '\0';
	err = req->svc->attach(req->svc->ctx, pid, mode, why, sizeof(why));
	if (err == -ESRCH || err == -EEXIST || err == -ENOMEM)
		return hf_reply_errno(req->conn, err, pid);
	if (err)
		return hf_reply_error(req->conn, HF_E_CANNOT_ATTACH,
				      "Cannot attach to process %d: %s", (int)pid,
				      why[0] ? why : strerror(-err));
	req->pid = pid;
	err = get_snapshot(req, &s);
	if (err)
		return hf_reply_errno(req->conn, err, pid);
	/* Just attached: its first census has not been taken yet. */
	doc = hf_json_process(s, NULL);
	free(s);
	snprintf(location, sizeof(location), "/api/v1/processes/%d", (int)pid);
	return hf_reply_json_created(req->conn, doc, location);
}

int hf_handle_process_detach(struct hf_req *req)
{
	int err = req->svc->detach(req->svc->ctx, req->pid);

	if (err)
		return hf_reply_errno(req->conn, err, req->pid);
	return hf_reply_empty(req->conn, MHD_HTTP_NO_CONTENT);
}
