// SPDX-License-Identifier: MIT
/*
 * history.c - GET /api/v1/processes/{pid}/history: a process's past numbers
 * (daemon/history.h), oldest first, each point an object whose keys are the
 * dotted names of the document fields it copies, so a chart can take the
 * same name from a snapshot and from its history.
 */
#include "web.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include <microhttpd.h>

#include "history.h"

json_t *hf_json_history_point(const struct hf_history_point *p)
{
	json_t *o = json_object();

	if (!o || json_object_set_new(o, "at", json_real(p->at))) {
		json_decref(o);
		return NULL;
	}
	for (int f = 0; f < HF_HISTORY_FIELDS; f++) {
		if (json_object_set_new(o, hf_history_field_name(f), hf_json_u64(p->v[f]))) {
			json_decref(o);
			return NULL;
		}
	}
	for (int k = 0; k < HF_HISTORY_RATIOS; k++) {
		if (json_object_set_new(o, hf_history_ratio_name(k), hf_json_real(p->ratio[k]))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

int hf_handle_process_history(struct hf_req *req)
{
	struct hf_history_point *points = NULL;
	json_t *list, *doc = NULL;
	size_t n = 0;
	double step = NAN;
	int err;

	if (!req->svc->history)
		return hf_reply_error(req->conn, HF_E_NOT_FOUND, "This server keeps no history.");
	err = req->svc->history(req->svc->ctx, req->pid, &points, &n, &step);
	if (err)
		return hf_reply_errno(req->conn, err, req->pid);
	list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		if (json_array_append_new(list, hf_json_history_point(&points[i]))) {
			json_decref(list);
			list = NULL;
		}
	}
	free(points);
	if (list)
		doc = json_pack("{s:i,s:f,s:o}", "pid", (int)req->pid, "step_seconds", step, "points",
				list);
	return hf_reply_json(req->conn, MHD_HTTP_OK, doc);
}
