// SPDX-License-Identifier: MIT
/*
 * doctor.c - GET /api/v1/processes/{pid}/doctor: the heap doctor's findings
 * on the process's latest snapshot, each a sentence with its numbers and a
 * remedy.  An empty list means nothing looked wrong.
 */
#include "web.h"

#include <time.h>

#include "doctor.h"

static json_t *render_findings(const struct hf_snapshot *s)
{
	struct hf_finding found[HF_FINDING_COUNT];
	struct timespec ts;
	json_t *list;
	size_t n;

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
	return list ? json_pack("{s:i,s:o}", "pid", (int)s->pid, "findings", list) : NULL;
}

int hf_handle_process_doctor(struct hf_req *req)
{
	return hf_reply_snapshot(req, render_findings);
}
