// SPDX-License-Identifier: MIT
/*
 * doctor.c - GET /api/v1/processes/{pid}/doctor: the heap doctor's findings
 * on the process's latest snapshot, each a sentence with its numbers and a
 * remedy.  An empty list means nothing looked wrong.
 */
#include "web.h"

#include <stdlib.h>
#include <time.h>

#include <microhttpd.h>

#include "doctor.h"

int hf_handle_process_doctor(struct hf_req *req)
{
	struct hf_finding *found = NULL;
	struct hf_snapshot *s = NULL;
	struct timespec ts;
	json_t *list = NULL, *doc = NULL;
	size_t n;
	int err;

	s = malloc(sizeof(*s));
	found = calloc(HF_FINDING_COUNT, sizeof(*found));
	if (!s || !found) {
		err = hf_reply_error(req->conn, HF_E_INTERNAL, "The server ran out of memory.");
		goto cleanup;
	}
	err = req->svc->get(req->svc->ctx, req->pid, s);
	if (err) {
		err = hf_reply_errno(req->conn, err, req->pid);
		goto cleanup;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	n = hf_doctor(s, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, found, HF_FINDING_COUNT);
	list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		if (json_array_append_new(list, json_pack("{s:s,s:s}", "finding",
							  hf_finding_name(found[i].kind), "text",
							  found[i].text))) {
			json_decref(list);
			list = NULL;
		}
	}
	if (list)
		doc = json_pack("{s:i,s:o}", "pid", (int)req->pid, "findings", list);
	/* hf_reply_json() answers 500 itself when doc is NULL. */
	err = hf_reply_json(req->conn, MHD_HTTP_OK, doc);

cleanup:
	free(found);
	free(s);
	return err;
}
