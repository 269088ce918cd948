// SPDX-License-Identifier: MIT
/*
 * sites.c - GET /api/v1/processes/{pid}/sites and .../profile: a process's
 * allocation sites as JSON, as a pprof profile, or as folded stacks.
 *
 * Their query strings are parsed strictly by request.c: a parameter these
 * routes do not know, a repeated one or a value out of its set is 400
 * bad_query, so that a typo never silently gives the default.
 */
#include "web.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "profile.h"
#include "sites.h"

/* libmicrohttpd's iterator over the query, handing each parameter to hf_query_take(). */
static enum MHD_Result take_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	(void)kind;
	hf_query_take(cls, key, value);
	return MHD_YES;
}

static void read_query(struct hf_req *req, struct hf_query *q)
{
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, take_arg, q);
}

static json_t *j_frame(const struct hf_site_frame *f)
{
	return json_pack("{s:o,s:s,s:o,s:o,s:o,s:o}", "address", hf_json_hex(f->address), "object",
			 f->object ? f->object : "", "offset", hf_json_hex(f->offset), "function",
			 f->function ? json_string(f->function) : json_null(), "file",
			 f->file ? json_string(f->file) : json_null(), "line",
			 f->line ? json_integer(f->line) : json_null());
}

static json_t *j_site(const struct hf_site *s)
{
	json_t *frames = json_array(), *doc;

	for (size_t i = 0; frames && i < s->nr_frames; i++) {
		if (json_array_append_new(frames, j_frame(&s->frames[i]))) {
			json_decref(frames);
			frames = NULL;
		}
	}
	if (!frames)
		return NULL;
	doc = json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)s->id,
			"label", s->label ? json_string(s->label) : json_null(), "frames", frames,
			"requested_bytes", hf_json_u64(s->requested_bytes), "live_bytes",
			hf_json_u64(s->live_bytes), "live_allocations",
			hf_json_u64(s->live_allocations), "pinned_free_bytes",
			hf_json_u64(s->pinned_free_bytes), "allocations",
			hf_json_u64(s->allocations), "frees", hf_json_u64(s->frees),
			"oldest_age_seconds", hf_json_real(s->oldest_age_seconds));
	return doc;
}

/* The service's sites for req->pid, or a reply already queued (*ret). */
static struct hf_sites *get_sites(struct hf_req *req, int order, char *why, size_t why_len,
				  int *ret)
{
	struct hf_sites *s = NULL;
	int err;

	why[0] = '\0';
	if (!req->svc->sites) {
		*ret = hf_reply_error(req->conn, HF_E_NOT_FOUND, "This server keeps no sites.");
		return NULL;
	}
	err = req->svc->sites(req->svc->ctx, req->pid, order, &s, why, why_len);
	if (err) {
		*ret = hf_reply_errno(req->conn, err, req->pid);
		return NULL;
	}
	*ret = MHD_YES;
	return s;
}

int hf_handle_process_sites(struct hf_req *req)
{
	struct hf_query q = {.known = hf_sites_query_keys};
	struct hf_sites *s;
	unsigned long long limit;
	int order, ret;
	char why[256];
	json_t *list, *doc;

	read_query(req, &q);
	if (hf_sites_query(&q, &order, &limit))
		return hf_reply_error(req->conn, HF_E_BAD_QUERY, "%s", q.bad);
	s = get_sites(req, order, why, sizeof(why), &ret);
	if (!s && why[0])
		return hf_reply_json(req->conn, MHD_HTTP_OK,
				     json_pack("{s:i,s:n,s:s,s:n,s:n}", "pid", (int)req->pid,
					       "sites", "reason", why, "total_live_bytes",
					       "total_pinned_free_bytes"));
	if (!s)
		return ret;
	list = json_array();
	for (size_t i = 0; list && i < s->n && i < limit; i++) {
		if (json_array_append_new(list, j_site(&s->sites[i]))) {
			json_decref(list);
			list = NULL;
		}
	}
	doc = list ? json_pack("{s:i,s:o,s:b,s:o,s:o,s:o,s:b,s:o}", "pid", (int)req->pid, "sites",
			       list, "truncated", s->n > limit, "total_live_bytes",
			       json_integer((json_int_t)s->total_live_bytes),
			       "total_pinned_free_bytes",
			       hf_json_u64(s->total_pinned_free_bytes), "census_at",
			       hf_json_real(s->census_at),
			       "sampled", s->sampled, "sample_interval_bytes",
			       s->sampled && s->sample_interval
				       ? json_integer((json_int_t)s->sample_interval)
				       : json_null())
		   : NULL;
	req->svc->sites_free(s);
	return hf_reply_json(req->conn, MHD_HTTP_OK, doc);
}

/* The sites as the profile writers take them; frames point into s. */
static int to_profile(const struct hf_sites *s, struct hf_profile_site **out,
		      struct hf_profile_frame **frames_out)
{
	struct hf_profile_site *ps = calloc(s->n ? s->n : 1, sizeof(*ps));
	struct hf_profile_frame *pf;
	size_t total = 0, at = 0;

	for (size_t i = 0; i < s->n; i++)
		total += s->sites[i].nr_frames ? s->sites[i].nr_frames : 1;
	pf = calloc(total ? total : 1, sizeof(*pf));
	if (!ps || !pf) {
		free(ps);
		free(pf);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct hf_site *site = &s->sites[i];

		ps[i].frames = &pf[at];
		if (site->label) {
			/* A labelled site is one frame named by its label. */
			pf[at++] = (struct hf_profile_frame){.object = "", .function = site->label};
			ps[i].nr_frames = 1;
		} else {
			for (size_t k = 0; k < site->nr_frames; k++)
				pf[at++] = (struct hf_profile_frame){
					.address = site->frames[k].address,
					.object = site->frames[k].object,
					.offset = site->frames[k].offset,
					.function = site->frames[k].function,
					.file = site->frames[k].file,
					.line = site->frames[k].line,
				};
			ps[i].nr_frames = site->nr_frames;
		}
		ps[i].allocations = site->allocations == HF_UNKNOWN ? 0 : site->allocations;
		/* The kernel keeps live requested bytes, not those of every allocation: no alloc_space. */
		ps[i].requested_bytes = HF_PROFILE_UNKNOWN;
		ps[i].live_allocations = site->live_allocations == HF_UNKNOWN ? 0
									       : site->live_allocations;
		ps[i].live_bytes = site->live_bytes == HF_UNKNOWN ? 0 : site->live_bytes;
		ps[i].pinned_free_bytes =
			site->pinned_free_bytes == HF_UNKNOWN ? 0 : site->pinned_free_bytes;
	}
	*out = ps;
	*frames_out = pf;
	return 0;
}

int hf_handle_process_profile(struct hf_req *req)
{
	struct hf_query q = {.known = hf_profile_query_keys};
	struct hf_profile_site *ps = NULL;
	struct hf_profile_frame *pf = NULL;
	struct hf_sites *s;
	int type, format, ret, err;
	char why[256];

	read_query(req, &q);
	if (hf_profile_query(&q, &type, &format))
		return hf_reply_error(req->conn, HF_E_BAD_QUERY, "%s", q.bad);
	s = get_sites(req, type == 1 ? HF_SITES_BY_PINNED : HF_SITES_BY_LIVE, why, sizeof(why),
		      &ret);
	if (!s && why[0])
		return hf_reply_error(req->conn, HF_E_NO_SITES, "%s", why);
	if (!s)
		return ret;
	if (type == 1 && s->total_pinned_free_bytes == HF_UNKNOWN) {
		req->svc->sites_free(s);
		return hf_reply_error(req->conn, HF_E_NO_SITES,
				      "No complete heap census has credited pinned pages to "
				      "sites yet.");
	}
	err = to_profile(s, &ps, &pf);
	if (!err && format == 1) {
		char *text = NULL;
		size_t len = 0;

		err = hf_profile_folded(ps, s->n, type ? HF_PROFILE_PINNED : HF_PROFILE_INUSE,
					&text, &len);
		if (!err)
			ret = hf_reply_text(req->conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
					    text, len);
	} else if (!err) {
		unsigned char *bytes = NULL;
		size_t len = 0;

		err = hf_profile_pprof(ps, s->n, type ? HF_PROFILE_PINNED : HF_PROFILE_INUSE,
				       (double)time(NULL), &bytes, &len);
		if (!err)
			ret = hf_reply_text(req->conn, MHD_HTTP_OK, "application/octet-stream",
					    (char *)bytes, len);
	}
	free(ps);
	free(pf);
	req->svc->sites_free(s);
	return err ? hf_reply_errno(req->conn, err, req->pid) : ret;
}
