// SPDX-License-Identifier: MIT
/*
 * Allocation sites against the workload's own books: the real heapfragd in
 * exact mode traces tests/sites/sites_workload (messages from make_message()
 * in the executable, records from make_record() in libsites_records.so, one
 * record after every tenth message, then every message freed).
 *
 *   sites_real fp     built with frame pointers: per-site numbers exact before
 *                     and after the frees; frame 0 of each site (function,
 *                     object, file, line) as addr2line says; main above it;
 *                     the records' site holding >= 90% of the pinned free
 *                     bytes and the sites adding up to the census exactly; the
 *                     doctor naming make_record; /metrics, the folded stacks and
 *                     the pprof profile (read back by go tool pprof)
 *   sites_real nofp   built without frame pointers: frame 0 still exact, and
 *                     every frame above it a real return address
 *   sites_real pool   the records carved from one block: pinned free bytes
 *                     fall to <= 5% of the interleaved run's
 *   sites_real nostacks  --no-stacks: one frame per site, the same numbers
 *   sites_real sampled   on libptm with MALLOC_SAMPLE_INTERVAL_ in passive
 *                        mode: the sampler's sites, frame 0 exact, their
 *                        estimates within their sampling error of the books
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define COUNT "100000"

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *get_sites(const struct th_daemon *d, pid_t pid, const char *query)
{
	char path[128];
	long status = 0;
	json_t *doc;

	snprintf(path, sizeof(path), "/api/v1/processes/%d/sites%s", (int)pid, query);
	doc = th_get(d, path, &status);
	CHECK_MSG(status == 200 && doc, "GET %s answered %ld", path, status);
	return doc;
}

/* The site whose frame 0 names function fn, or NULL. */
static json_t *site_named(json_t *doc, const char *fn)
{
	json_t *sites = json_object_get(doc, "sites");

	for (size_t i = 0; i < json_array_size(sites); i++) {
		json_t *s = json_array_get(sites, i);
		json_t *f0 = json_array_get(json_object_get(s, "frames"), 0);
		const char *name = json_string_value(json_object_get(f0, "function"));

		if (name && strcmp(name, fn) == 0)
			return s;
	}
	return NULL;
}

/* The site's numbers against the workload's books for it. */
static void check_books(json_t *site, json_t *books, uint64_t allocs, uint64_t frees,
			const char *what)
{
	CHECK_MSG(site != NULL, "no site for %s", what);
	if (!site)
		return;
	CHECK_EQ_U64(th_u64(site, "live_allocations"), th_u64(books, "live"));
	CHECK_EQ_U64(th_u64(site, "requested_bytes"), th_u64(books, "requested"));
	CHECK_EQ_U64(th_u64(site, "live_bytes"), th_u64(books, "chunk_bytes"));
	CHECK_EQ_U64(th_u64(site, "allocations"), allocs);
	CHECK_EQ_U64(th_u64(site, "frees"), frees);
}

/* Runs a command and returns its first two output lines (addr2line -f: function, file:line). */
static int run2(const char *cmd, char *l1, size_t n1, char *l2, size_t n2)
{
	FILE *f = popen(cmd, "r");
	int ok;

	if (!f)
		return -1;
	ok = fgets(l1, (int)n1, f) && fgets(l2, (int)n2, f);
	pclose(f);
	if (!ok)
		return -1;
	l1[strcspn(l1, "\n")] = '\0';
	l2[strcspn(l2, "\n")] = '\0';
	return 0;
}

/* A frame against addr2line run on its object at offset - 1 (a return address). */
static void check_frame_addr2line(json_t *frame, const char *fn, const char *object_suffix)
{
	const char *object = json_string_value(json_object_get(frame, "object"));
	const char *off = json_string_value(json_object_get(frame, "offset"));
	const char *function = json_string_value(json_object_get(frame, "function"));
	const char *file = json_string_value(json_object_get(frame, "file"));
	uint64_t line = th_u64(frame, "line");
	char cmd[1200], a_fn[512], a_where[1024], mine[1024];

	CHECK_MSG(object && off && function, "frame incomplete");
	if (!object || !off || !function)
		return;
	CHECK_STR_EQ(function, fn);
	CHECK_MSG(strlen(object) >= strlen(object_suffix) &&
			  strcmp(object + strlen(object) - strlen(object_suffix), object_suffix) == 0,
		  "object %s is not ...%s", object, object_suffix);
	snprintf(cmd, sizeof(cmd), "addr2line -f -e '%s' 0x%llx", object,
		 strtoull(off, NULL, 16) - 1);
	CHECK_MSG(run2(cmd, a_fn, sizeof(a_fn), a_where, sizeof(a_where)) == 0, "%s failed", cmd);
	CHECK_STR_EQ(function, a_fn);
	/* addr2line may add " (discriminator N)". */
	a_where[strcspn(a_where, " ")] = '\0';
	snprintf(mine, sizeof(mine), "%s:%llu", file ? file : "?", (unsigned long long)line);
	CHECK_STR_EQ(mine, a_where);
	printf("frame %s: %s+%s = %s\n", fn, object, off, mine);
}

struct census_after {
	double at;
};

static bool census_after(json_t *doc, void *arg)
{
	const struct census_after *c = arg;
	json_t *cen = json_object_get(doc, "census");
	const char *state = json_string_value(json_object_get(cen, "state"));

	return state && strcmp(state, "complete") == 0 &&
	       json_number_value(json_object_get(cen, "at")) -
			       json_number_value(json_object_get(cen, "duration_seconds")) >
		       c->at;
}

/* /sites with an attribution from a census that began after `after`, and that census's doc. */
static json_t *sites_after(const struct th_daemon *d, pid_t pid, double after, json_t **procdoc)
{
	for (int tries = 0; tries < 100; tries++) {
		struct census_after ca = {.at = after};
		json_t *doc = th_wait_doc(d, pid, census_after, &ca, 30);
		json_t *s = get_sites(d, pid, "?sort=pinned&limit=100000");
		double cat = json_number_value(json_object_get(json_object_get(doc, "census"), "at"));

		if (doc && s && census_after(doc, &ca) &&
		    json_number_value(json_object_get(s, "census_at")) == cat) {
			*procdoc = doc;
			return s;
		}
		json_decref(doc);
		json_decref(s);
		usleep(100 * 1000);
	}
	*procdoc = NULL;
	return NULL;
}

/* Runs the workload under heapfragd; returns the pinned free bytes of the census after the frees. */
static uint64_t run(const char *exe, const char *pool, bool stacks, bool full_checks)
{
	const char *args[] = {"--count", COUNT, "--pool", pool, NULL};
	const char *dargs[] = {"-m", "exact", "-i", "0.3", stacks ? NULL : "--no-stacks", NULL};
	struct th_workload w;
	struct th_daemon d;
	json_t *truth = NULL, *doc = NULL, *procdoc = NULL, *msg, *rec;
	uint64_t records, pinned = UINT64_MAX;
	bool fp = strstr(exe, "_fp") != NULL;
	double freed_at;

	if (th_start_traced(&w, exe, args, NULL, &d, dargs) != 0) {
		CHECK_MSG(0, "%s under heapfragd did not start", exe);
		return UINT64_MAX;
	}
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	CHECK_MSG(truth != NULL, "no truth after the build");
	if (!truth)
		goto out;
	records = th_u64(truth, "records.live");

	/* Before the frees: both sites, each equal to the books. */
	doc = get_sites(&d, w.pid, "?limit=100000");
	msg = site_named(doc, "make_message");
	rec = site_named(doc, strcmp(pool, "1") == 0 ? "make_record_pool" : "make_record");
	check_books(msg, json_object_get(truth, "messages"), strtoull(COUNT, NULL, 10), 0,
		    "make_message");
	check_books(rec, json_object_get(truth, "records"), records, 0, "make_record");
	if (msg && rec) {
		json_t *mf = json_object_get(msg, "frames"), *rf = json_object_get(rec, "frames");

		check_frame_addr2line(json_array_get(mf, 0), "make_message", exe);
		check_frame_addr2line(json_array_get(rf, 0),
				      json_string_value(json_object_get(
					      json_array_get(rf, 0), "function")),
				      fp ? "libsites_records_fp.so" : "libsites_records_nofp.so");
		if (!stacks) {
			CHECK_EQ_U64(json_array_size(mf), 1);
			CHECK_EQ_U64(json_array_size(rf), 1);
		} else if (fp) {
			/* With frame pointers the caller of each is main. */
			CHECK_MSG(json_array_size(mf) >= 2 && json_array_size(rf) >= 2,
				  "stacks of %zu and %zu frames", json_array_size(mf),
				  json_array_size(rf));
			CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(mf, 1),
								       "function")),
				     "main");
			CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(rf, 1),
								       "function")),
				     "main");
		}
		/* Whatever the build, a frame above frame 0 is a function's return address. */
		for (size_t k = 1; k < json_array_size(mf); k++)
			CHECK_MSG(json_string_length(json_object_get(json_array_get(mf, k),
								     "object")) > 0,
				  "frame %zu of make_message's site lies in no file", k);
		CHECK(th_u64(msg, "id") != th_u64(rec, "id"));
		CHECK(json_number_value(json_object_get(msg, "oldest_age_seconds")) >= 0);
	}
	json_decref(doc);
	doc = NULL;
	json_decref(truth);

	/* After the frees. */
	th_workload_go(&w);
	freed_at = now_real();
	truth = th_workload_truth(&w);
	CHECK_MSG(truth != NULL, "no truth after the frees");
	if (!truth)
		goto out;
	doc = sites_after(&d, w.pid, freed_at, &procdoc);
	CHECK_MSG(doc != NULL, "no sites from a census after the frees");
	if (!doc)
		goto out;
	msg = site_named(doc, "make_message");
	rec = site_named(doc, strcmp(pool, "1") == 0 ? "make_record_pool" : "make_record");
	check_books(msg, json_object_get(truth, "messages"), strtoull(COUNT, NULL, 10),
		    strtoull(COUNT, NULL, 10), "make_message");
	check_books(rec, json_object_get(truth, "records"), records, 0, "make_record");
	{
		json_t *sites = json_object_get(doc, "sites");
		uint64_t sum = 0, census_pinned =
					  th_u64(json_object_get(procdoc, "census"),
						 "pages.pinned_free_bytes");

		for (size_t i = 0; i < json_array_size(sites); i++)
			sum += th_u64(json_array_get(sites, i), "pinned_free_bytes");
		CHECK_EQ_U64(sum, census_pinned);
		CHECK_EQ_U64(th_u64(doc, "total_pinned_free_bytes"), census_pinned);
		pinned = census_pinned;
		printf("%s pool=%s: census pinned free %llu, records' site %llu (%.1f%%)\n", exe,
		       pool, (unsigned long long)census_pinned,
		       (unsigned long long)th_u64(rec, "pinned_free_bytes"),
		       census_pinned ? 100.0 * (double)th_u64(rec, "pinned_free_bytes") /
					       (double)census_pinned
				     : 0.0);
		if (strcmp(pool, "0") == 0)
			CHECK_MSG((double)th_u64(rec, "pinned_free_bytes") >=
					  0.9 * (double)census_pinned,
				  "the records' site holds %llu of %llu pinned free bytes",
				  (unsigned long long)th_u64(rec, "pinned_free_bytes"),
				  (unsigned long long)census_pinned);
	}
	if (full_checks) {
		char path[128], *text, *metrics;
		long status = 0;
		json_t *dd;
		bool named = false;

		/* The doctor names the records' function; /metrics has the site. */
		snprintf(path, sizeof(path), "/api/v1/processes/%d/doctor", (int)w.pid);
		for (int tries = 0; tries < 50 && !named; tries++) {
			json_t *list;

			dd = th_get(&d, path, &status);
			list = json_object_get(dd, "findings");
			for (size_t i = 0; i < json_array_size(list); i++) {
				json_t *f = json_array_get(list, i);
				const char *t = json_string_value(json_object_get(f, "text"));

				if (strcmp(json_string_value(json_object_get(f, "finding")),
					   "pinned_by_site") == 0 &&
				    t && strstr(t, "make_record (libsites_records_fp.so, records.c:")) {
					named = true;
					printf("doctor: %s\n", t);
				}
			}
			json_decref(dd);
			if (!named)
				usleep(200 * 1000);
		}
		CHECK_MSG(named, "the doctor did not name make_record");
		metrics = th_get_text(&d, "/metrics", &status);
		CHECK(metrics && strstr(metrics, "heapfrag_site_pinned_free_bytes{") &&
		      strstr(metrics, "site=\"make_record\""));
		free(metrics);

		/* Folded stacks: root first, make_record last, its live bytes. */
		snprintf(path, sizeof(path), "/api/v1/processes/%d/profile?format=folded", (int)w.pid);
		text = th_get_text(&d, path, &status);
		CHECK_MSG(status == 200 && text && strstr(text, ";main;make_record 2080000\n"),
			  "folded: %s", text ? text : "(none)");
		free(text);

		/* pprof, read back by a real reader. */
		snprintf(path, sizeof(path), "/api/v1/processes/%d/profile?type=pinned", (int)w.pid);
		text = th_get_text(&d, path, &status);
		CHECK_EQ_U64(status, 200);
		if (text && status == 200) {
			char tmpl[] = "/tmp/hf-pprof-XXXXXX", cmd[512], line[512];
			int fd = mkstemp(tmpl);
			FILE *p;
			bool seen = false;

			/* The body is binary: its length is what the server sent. */
			free(text);
			text = NULL;
			if (fd >= 0) {
				char url[256];

				snprintf(url, sizeof(url),
					 "curl -s -o %s http://127.0.0.1:%d/api/v1/processes/%d/"
					 "profile?type=pinned",
					 tmpl, d.port, (int)w.pid);
				CHECK(system(url) == 0);
				close(fd);
				snprintf(cmd, sizeof(cmd),
					 "HOME=/tmp GOCACHE=/tmp/hf-gocache go tool pprof -top -sample_index=pinned_free_space %s 2>&1",
					 tmpl);
				p = popen(cmd, "r");
				while (p && fgets(line, sizeof(line), p)) {
					if (strstr(line, "make_record"))
						seen = true;
					fputs(line, stdout);
				}
				if (p)
					pclose(p);
				unlink(tmpl);
			}
			CHECK_MSG(seen, "go tool pprof did not show make_record");
		}
		free(text);
	}
out:
	json_decref(doc);
	json_decref(procdoc);
	json_decref(truth);
	th_workload_finish(&w);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	return pinned;
}

/* est within share of want, printed. */
static void check_estimate(const char *what, uint64_t est, uint64_t want, double share)
{
	double err = want ? ((double)est - (double)want) / (double)want : 0;

	printf("sampled %s: estimate %llu, books %llu (%+.1f%%)\n", what, (unsigned long long)est,
	       (unsigned long long)want, 100 * err);
	CHECK_MSG(err <= share && err >= -share, "%s: estimate %llu against %llu", what,
		  (unsigned long long)est, (unsigned long long)want);
}

/* libptm's sampler in passive mode: sites at the cost of its samples alone. */
static void sampled(void)
{
	const char *args[] = {"--count", COUNT, "--pool", "0", NULL};
	const char *dargs[] = {"-m", "passive", "-i", "0.3", NULL};
	const char *ptm = th_libptm();
	struct th_workload w;
	struct th_daemon d;
	json_t *truth = NULL, *doc = NULL, *msg, *rec;

	if (!ptm)
		HF_SKIP("libptm is not built");
	setenv("MALLOC_SAMPLE_INTERVAL_", "16384", 1);
	if (th_start_traced(&w, "sites_workload_fp", args, ptm, &d, dargs) != 0) {
		unsetenv("MALLOC_SAMPLE_INTERVAL_");
		CHECK_MSG(0, "sites_workload_fp on libptm under heapfragd did not start");
		return;
	}
	unsetenv("MALLOC_SAMPLE_INTERVAL_");
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	CHECK_MSG(truth != NULL, "no truth after the build");
	if (!truth)
		goto out;
	doc = get_sites(&d, w.pid, "?limit=100000");
	CHECK(json_is_true(json_object_get(doc, "sampled")));
	CHECK_EQ_U64(th_u64(doc, "sample_interval_bytes"), 16384);
	msg = site_named(doc, "make_message");
	rec = site_named(doc, "make_record");
	CHECK_MSG(msg && rec, "no sampled site for make_message or make_record");
	if (msg && rec) {
		json_t *books = json_object_get(truth, "messages");

		check_frame_addr2line(json_array_get(json_object_get(msg, "frames"), 0),
				      "make_message", "sites_workload_fp");
		check_frame_addr2line(json_array_get(json_object_get(rec, "frames"), 0),
				      "make_record", "libsites_records_fp.so");
		/* About 6,000 samples of the messages, 120 of the records: within 4 sigma. */
		check_estimate("messages' bytes", th_u64(msg, "live_bytes"),
			       th_u64(books, "requested"), 0.06);
		check_estimate("messages' blocks", th_u64(msg, "live_allocations"),
			       th_u64(books, "live"), 0.06);
		books = json_object_get(truth, "records");
		check_estimate("records' bytes", th_u64(rec, "live_bytes"),
			       th_u64(books, "requested"), 0.40);
		CHECK(json_is_null(json_object_get(msg, "pinned_free_bytes")));
		CHECK(json_is_null(json_object_get(msg, "allocations")));
	}
	json_decref(doc);
	json_decref(truth);
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	/* Every sampled message was freed: its site holds nothing. */
	doc = get_sites(&d, w.pid, "?limit=100000");
	msg = site_named(doc, "make_message");
	CHECK_MSG(msg && th_u64(msg, "live_bytes") == 0 && th_u64(msg, "live_allocations") == 0,
		  "the messages' site after the frees: %llu bytes",
		  msg ? (unsigned long long)th_u64(msg, "live_bytes") : 0ull);
out:
	json_decref(doc);
	json_decref(truth);
	th_workload_finish(&w);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";

	th_init(what, 280);
	if (strcmp(what, "fp") == 0) {
		run("sites_workload_fp", "0", true, true);
	} else if (strcmp(what, "nofp") == 0) {
		run("sites_workload_nofp", "0", true, false);
	} else if (strcmp(what, "nostacks") == 0) {
		run("sites_workload_fp", "0", false, false);
	} else if (strcmp(what, "sampled") == 0) {
		sampled();
	} else if (strcmp(what, "pool") == 0) {
		uint64_t apart = run("sites_workload_fp", "0", true, false);
		uint64_t pooled = run("sites_workload_fp", "1", true, false);

		printf("pinned free bytes: interleaved %llu, pooled %llu\n",
		       (unsigned long long)apart, (unsigned long long)pooled);
		CHECK(apart != UINT64_MAX && pooled != UINT64_MAX);
		CHECK_MSG((double)pooled <= 0.05 * (double)apart,
			  "pooled records pin %llu of the interleaved %llu", (unsigned long long)pooled,
			  (unsigned long long)apart);
	} else {
		fprintf(stderr, "usage: sites_real fp|nofp|nostacks|pool|sampled\n");
		return 2;
	}
	return hf_test_done();
}
