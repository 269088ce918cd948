// SPDX-License-Identifier: MIT
/*
 * doctor_real WORKLOAD [ARGS...]: the doctor on a snapshot that heapfragd
 * really took.
 *
 * heapfragd traces the workload (tests/workloads, by PID, before its
 * measured phase); once heapfragd's counts equal the workload's own TRUTH,
 * the test reads /api/v1/processes/PID, turns the JSON back into a
 * struct hf_snapshot (null -> unknown) and runs hf_doctor() on it:
 *
 *   swiss_cheese  the seed's incident (100,000 x 1000-byte messages, 90 %
 *                 freed at random): exactly one finding, external
 *                 fragmentation;
 *   seed_loop     malloc(100)/free pairs (200,000 of them, from the test's
 *                 arguments, to stay quick on a loaded machine), a healthy
 *                 process: none.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../contention/workload_ctl.h"
#include "check.h"
#include "doctor.h"
#include "free_port.h"
#include "snapshot_fixture.h"

#define CATCH_UP_SECONDS 120

/* GET path from 127.0.0.1:port; the body as a JSON object, or NULL unless status 200. */
static json_t *get_json(int port, const char *path)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[256], *buf = NULL, *body;
	size_t len = 0, cap = 0;
	json_t *doc = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	for (;;) {
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap + 65536);

			if (!grown)
				goto out;
			buf = grown;
			cap += 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (!buf)
		goto out;
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 && strncmp(buf, "HTTP/1.0 200", 12) != 0)
		goto out;
	if (body)
		doc = json_loads(body + 4, 0, NULL);
out:
	free(buf);
	close(fd);
	return doc;
}

static uint64_t u64_or_unknown(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : HF_UNKNOWN;
}

static double ratio_or_nan(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static enum hf_allocator allocator_kind(const char *name)
{
	static const char *const names[] = {"unknown",  "glibc",    "libptm",
					    "jemalloc", "tcmalloc", "mimalloc"};

	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return (enum hf_allocator)i;
	return HF_ALLOC_UNKNOWN;
}

static void histogram(json_t *arr, uint64_t *out, bool *known)
{
	size_t i;
	json_t *b;

	if (!json_is_array(arr) || json_array_size(arr) != HF_HIST_BUCKETS) {
		*known = false;
		return;
	}
	json_array_foreach(arr, i, b) out[i] = u64_or_unknown(b, "count");
}

/* The document of GET /api/v1/processes/{pid} (issue 3) as a snapshot. */
static void snapshot_from_json(json_t *doc, struct hf_snapshot *s)
{
	json_t *tracing = json_object_get(doc, "tracing");
	json_t *counters = json_object_get(doc, "counters");
	json_t *heap = json_object_get(doc, "heap");
	json_t *frag = json_object_get(doc, "fragmentation");
	json_t *hist = json_object_get(doc, "histogram");
	json_t *arenas = json_object_get(doc, "arenas");
	json_t *a;
	size_t i;

	snapshot_unknown(s);
	s->pid = (pid_t)json_integer_value(json_object_get(doc, "pid"));
	s->allocator.kind = allocator_kind(
		json_string_value(json_object_get(json_object_get(doc, "allocator"), "name")));
	s->tracing.since = ratio_or_nan(tracing, "since");
	s->tracing.dropped_events = u64_or_unknown(tracing, "dropped_events");
	s->tracing.live_map_entries = u64_or_unknown(tracing, "live_map_entries");
	s->counters.malloc = u64_or_unknown(counters, "malloc");
	s->counters.calloc = u64_or_unknown(counters, "calloc");
	s->counters.realloc = u64_or_unknown(counters, "realloc");
	s->counters.free = u64_or_unknown(counters, "free");
	s->counters.memalign = u64_or_unknown(counters, "memalign");
	s->counters.failed = u64_or_unknown(counters, "failed");
	s->counters.brk = u64_or_unknown(counters, "brk");
	s->counters.mmap = u64_or_unknown(counters, "mmap");
	s->counters.munmap = u64_or_unknown(counters, "munmap");
	s->counters.mremap = u64_or_unknown(counters, "mremap");
	s->counters.madvise = u64_or_unknown(counters, "madvise");
	s->heap.live_allocations = u64_or_unknown(heap, "live_allocations");
	s->heap.requested_bytes = u64_or_unknown(heap, "requested_bytes");
	s->heap.allocated_bytes = u64_or_unknown(heap, "allocated_bytes");
	s->heap.resident_bytes = u64_or_unknown(heap, "resident_bytes");
	s->heap.free_bytes = u64_or_unknown(heap, "free_bytes");
	s->fragmentation.ratio = ratio_or_nan(frag, "ratio");
	s->fragmentation.internal_ratio = ratio_or_nan(frag, "internal_ratio");
	s->fragmentation.external_ratio = ratio_or_nan(frag, "external_ratio");
	s->fragmentation.internal_bytes = u64_or_unknown(frag, "internal_bytes");
	s->fragmentation.external_bytes = u64_or_unknown(frag, "external_bytes");
	s->histogram_known = json_is_object(hist);
	if (s->histogram_known) {
		histogram(json_object_get(hist, "requests"), s->histogram.requests,
			  &s->histogram_known);
		histogram(json_object_get(hist, "live"), s->histogram.live, &s->histogram_known);
	}
	json_array_foreach(arenas, i, a)
	{
		json_t *lock = json_object_get(a, "lock");
		struct hf_arena *ar;

		if (i >= HF_MAX_ARENAS)
			break;
		ar = &s->arenas[s->nr_arenas++];
		ar->kind = strcmp(json_string_value(json_object_get(a, "kind")) ?: "", "main") == 0
				   ? HF_ARENA_MAIN
				   : HF_ARENA_THREAD;
		ar->heaps = u64_or_unknown(a, "heaps");
		ar->mapped_bytes = u64_or_unknown(a, "mapped_bytes");
		ar->threads = u64_or_unknown(a, "threads");
		ar->lock.acquisitions = u64_or_unknown(lock, "acquisitions");
		ar->lock.contended = u64_or_unknown(lock, "contended");
		ar->lock.wait_seconds = ratio_or_nan(lock, "wait_seconds");
		ar->lock.max_wait_seconds = ratio_or_nan(lock, "max_wait_seconds");
	}
}

static double now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "swiss_cheese";
	bool incident = strcmp(name, "swiss_cheese") == 0;
	char wl_path[512], hfd_path[512], listen[64], pidarg[16], api[64], line[4096];
	char *wargv[8] = {wl_path};
	const char *dir = getenv("HF_BUILD_DIR");
	struct workload w = {0}, hfd = {0};
	struct hf_finding found[HF_FINDING_COUNT];
	static struct hf_snapshot snap;
	json_t *truth = NULL, *doc = NULL;
	uint64_t want_malloc, want_free;
	int port, tries;
	size_t n;

	snprintf(wl_path, sizeof(wl_path), "%s/tests/workloads/%s", dir ? dir : ".", name);
	for (int i = 2; i < argc && i < 8; i++)
		wargv[i - 1] = argv[i];
	snprintf(hfd_path, sizeof(hfd_path), "%s/bin/heapfragd", dir ? dir : ".");
	if (access(hfd_path, X_OK) != 0 || access(wl_path, X_OK) != 0)
		HF_SKIP("%s or %s is not built", hfd_path, wl_path);

	CHECK(workload_start(&w, wargv, NULL) == 0);
	CHECK(workload_expect(&w, "READY", line, sizeof(line)) == 0);
	port = free_loopback_port();
	CHECK(port > 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)w.pid);
	snprintf(api, sizeof(api), "/api/v1/processes/%d", (int)w.pid);
	{
		char *hargv[] = {hfd_path, "-l", listen, "-p", pidarg, "-i", "1", NULL};

		CHECK(workload_start(&hfd, hargv, NULL) == 0);
	}
	/* The process is served once its probes are attached. */
	for (tries = 0; tries < 300 && !(doc = get_json(port, api)); tries++)
		usleep(100000);
	CHECK_MSG(doc != NULL, "heapfragd never served %s", api);
	json_decref(doc);
	doc = NULL;

	CHECK(workload_send(&w, "go") == 0);
	CHECK(workload_expect(&w, "TRUTH ", line, sizeof(line)) == 0);
	truth = json_loads(line + 6, 0, NULL);
	CHECK(truth != NULL);
	want_malloc = u64_or_unknown(json_object_get(truth, "calls"), "malloc");
	want_free = u64_or_unknown(json_object_get(truth, "calls"), "free");

	/* Wait for a snapshot taken after the phase: heapfragd's counts equal the truth. */
	for (tries = 0; tries < CATCH_UP_SECONDS * 4; tries++) {
		doc = get_json(port, api);
		if (doc) {
			json_t *c = json_object_get(doc, "counters");

			if (u64_or_unknown(c, "malloc") == want_malloc &&
			    u64_or_unknown(c, "free") == want_free)
				break;
			json_decref(doc);
			doc = NULL;
		}
		usleep(250000);
	}
	CHECK_MSG(doc != NULL,
		  "heapfragd's counts never reached the truth (%" PRIu64 " mallocs, %" PRIu64
		  " frees)",
		  want_malloc, want_free);
	if (doc) {
		snapshot_from_json(doc, &snap);
		printf("%s: requested %" PRIu64 ", allocated %" PRIu64 ", resident %" PRIu64
		       ", external %.3f (%" PRIu64 " bytes), internal %.3f, dropped %" PRIu64 "\n",
		       name, snap.heap.requested_bytes, snap.heap.allocated_bytes,
		       snap.heap.resident_bytes, snap.fragmentation.external_ratio,
		       snap.fragmentation.external_bytes, snap.fragmentation.internal_ratio,
		       snap.tracing.dropped_events);
		n = hf_doctor(&snap, now_unix(), found, HF_FINDING_COUNT);
		for (size_t i = 0; i < n; i++)
			printf("doctor: %s: %s\n", hf_finding_name(found[i].kind), found[i].text);
		if (incident) {
			CHECK_EQ_U64(n, 1);
			CHECK(n >= 1 && found[0].kind == HF_FINDING_EXTERNAL_FRAGMENTATION);
		} else {
			CHECK_EQ_U64(n, 0);
		}
	}

	json_decref(doc);
	json_decref(truth);
	kill(hfd.pid, SIGTERM);
	fclose(hfd.in);
	fclose(hfd.out);
	waitpid(hfd.pid, NULL, 0);
	CHECK_EQ_U64(workload_finish(&w), 0);
	return hf_test_done();
}
