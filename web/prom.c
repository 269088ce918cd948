// SPDX-License-Identifier: MIT
/*
 * prom.c - the Prometheus text exposition (format 0.0.4) of every snapshot.
 *
 * Families are written one after another, each with its HELP and TYPE lines
 * followed by one sample per process, because the format wants a family's
 * samples together.  Values a process's mode or allocator cannot measure are
 * left out: a missing sample tells Prometheus "unknown", a 0 would lie.
 *
 * The size histogram has buckets and _count but no _sum: the kernel side
 * keeps counts per power-of-two bucket, not the sum of the sizes, and a sum
 * made up from bucket bounds would be a number we never measured.
 * histogram_quantile() needs only the buckets.  The call-latency histogram
 * does have a _sum: the kernel side adds up every timed call's duration.
 *
 * The sampled heap's estimate by size is a gauge per size class, not a
 * histogram: a histogram's buckets count observations cumulatively, while
 * these are byte estimates, one per class, that go down as samples are freed.
 */
#include "web.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum family_type {
	GAUGE,
	COUNTER,
	HISTOGRAM,
};

static const char *const type_names[] = {
	[GAUGE] = "gauge",
	[COUNTER] = "counter",
	[HISTOGRAM] = "histogram",
};

void hf_prom_escape(struct hf_buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'   ? "\\\\"
				  : *s == '"'  ? "\\\""
				  : *s == '\n' ? "\\n"
					       : NULL;

		if (!esc)
			continue;
		hf_buf_append(b, run, (size_t)(s - run));
		hf_buf_puts(b, esc);
		run = s + 1;
	}
	hf_buf_append(b, run, (size_t)(s - run));
}

static void family_header(struct hf_buf *b, const char *name, const char *help,
			  enum family_type type)
{
	hf_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type_names[type]);
}

/* The shortest of %.15g and %.17g that reads back as the same double. */
static void double_text(char *text, size_t len, double v)
{
	if (isinf(v)) {
		snprintf(text, len, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	snprintf(text, len, "%.15g", v);
	if (strtod(text, NULL) != v)
		snprintf(text, len, "%.17g", v);
}

static void put_double(struct hf_buf *b, double v)
{
	char text[32];

	double_text(text, sizeof(text), v);
	hf_buf_puts(b, text);
}

/* Decimal digits without printf: a scrape writes thousands of numbers. */
static void put_u64(struct hf_buf *b, uint64_t v)
{
	char text[24];
	size_t i = sizeof(text);

	do {
		text[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	hf_buf_append(b, text + i, sizeof(text) - i);
}

static void put_label(struct hf_buf *b, const char *name, const char *value)
{
	hf_buf_puts(b, ",");
	hf_buf_puts(b, name);
	hf_buf_puts(b, "=\"");
	hf_prom_escape(b, value);
	hf_buf_puts(b, "\"");
}

/*
 * Starts a sample line: name{pid="..",comm="..", the process's cgroup,
 * pod_uid and container_id where known (an unknown one is left out, as
 * Prometheus reads an empty label), and, for each extra name that is set,
 * ,name="value"}.  Most families have one extra label; the call-latency
 * histogram has two (op and le).
 */
static void sample_start_labels(struct hf_buf *b, const char *name, const struct hf_snapshot *s,
				const char *name1, const char *value1, const char *name2,
				const char *value2)
{
	hf_buf_puts(b, name);
	hf_buf_puts(b, "{pid=\"");
	put_u64(b, (uint64_t)s->pid);
	hf_buf_puts(b, "\",comm=\"");
	hf_prom_escape(b, s->comm);
	hf_buf_puts(b, "\"");
	if (s->cgroup.path[0])
		put_label(b, "cgroup", s->cgroup.path);
	if (s->cgroup.pod_uid[0])
		put_label(b, "pod_uid", s->cgroup.pod_uid);
	if (s->cgroup.container_id[0])
		put_label(b, "container_id", s->cgroup.container_id);
	if (name1)
		put_label(b, name1, value1);
	if (name2)
		put_label(b, name2, value2);
	hf_buf_puts(b, "} ");
}

static void sample_start(struct hf_buf *b, const char *name, const struct hf_snapshot *s,
			 const char *extra_name, const char *extra_value)
{
	sample_start_labels(b, name, s, extra_name, extra_value, NULL, NULL);
}

enum value_kind {
	U64,
	RATIO,
};

/*
 * The per-process families with one value each.  Rows with the same name
 * form one family whose samples differ by the extra label.  A gated row's
 * value counts only when the snapshot's bool at gate is true: the libptm
 * and sampled-heap structs hold zeros, not HF_UNKNOWN, when not known.
 */
struct family {
	const char *name;
	const char *help;
	enum family_type type;
	enum value_kind kind;
	size_t offset; /* of the value in struct hf_snapshot */
	const char *label;
	const char *label_value;
	bool gated;
	size_t gate; /* of the bool in struct hf_snapshot that says the value is known */
};

#define SNAP_U64(field)   .kind = U64, .offset = offsetof(struct hf_snapshot, field)
#define SNAP_RATIO(field) .kind = RATIO, .offset = offsetof(struct hf_snapshot, field)
#define KNOWN_IF(flag)    .gated = true, .gate = offsetof(struct hf_snapshot, flag)

static const struct family families[] = {
	{.name = "heapfrag_heap_requested_bytes",
	 .help = "Bytes the program asked for, summed over its live allocations.",
	 .type = GAUGE,
	 SNAP_U64(heap.requested_bytes)},
	{.name = "heapfrag_heap_allocated_bytes",
	 .help = "Chunk bytes the allocator set aside for the live allocations, headers and "
		 "rounding included.",
	 .type = GAUGE,
	 SNAP_U64(heap.allocated_bytes)},
	{.name = "heapfrag_heap_mapped_bytes",
	 .help = "Address space the allocator holds, by region: brk heap span, committed part "
		 "of non-main arena heaps, mmapped chunks.",
	 .type = GAUGE,
	 SNAP_U64(heap.mapped_bytes.brk),
	 .label = "region",
	 .label_value = "brk"},
	{.name = "heapfrag_heap_mapped_bytes",
	 .type = GAUGE,
	 SNAP_U64(heap.mapped_bytes.arena),
	 .label = "region",
	 .label_value = "arena"},
	{.name = "heapfrag_heap_mapped_bytes",
	 .type = GAUGE,
	 SNAP_U64(heap.mapped_bytes.mmap),
	 .label = "region",
	 .label_value = "mmap"},
	{.name = "heapfrag_heap_resident_bytes",
	 .help = "Resident bytes of the allocator's heap regions.",
	 .type = GAUGE,
	 SNAP_U64(heap.resident_bytes)},
	{.name = "heapfrag_heap_free_bytes",
	 .help = "Resident heap bytes not allocated to the program: max(0, resident - allocated).",
	 .type = GAUGE,
	 SNAP_U64(heap.free_bytes)},
	{.name = "heapfrag_fragmentation_ratio",
	 .help = "1 - requested / resident: the share of resident heap the program did not ask "
		 "for.",
	 .type = GAUGE,
	 SNAP_RATIO(fragmentation.ratio)},
	{.name = "heapfrag_internal_fragmentation_ratio",
	 .help = "(allocated - requested) / allocated: headers and rounding inside chunks.",
	 .type = GAUGE,
	 SNAP_RATIO(fragmentation.internal_ratio)},
	{.name = "heapfrag_external_fragmentation_ratio",
	 .help = "free / resident: resident heap between chunks.",
	 .type = GAUGE,
	 SNAP_RATIO(fragmentation.external_ratio)},
	{.name = "heapfrag_largest_free_chunk_bytes",
	 .help = "The largest free chunk the allocator holds, from its own books (libptm).",
	 .type = GAUGE,
	 SNAP_U64(fragmentation.largest_free_chunk_bytes)},
	{.name = "heapfrag_free_chunks",
	 .help = "Free chunks the allocator holds, from its own books (libptm): bins, fastbins "
		 "and each arena's top.",
	 .type = GAUGE,
	 SNAP_U64(fragmentation.free_chunks)},
	{.name = "heapfrag_live_allocations",
	 .help = "Allocations made and not yet freed since attach.",
	 .type = GAUGE,
	 SNAP_U64(heap.live_allocations)},
	{.name = "heapfrag_allocator_calls_total",
	 .help = "Calls into the allocator since attach, by operation (memalign counts every "
		 "aligned-allocation entry point).",
	 .type = COUNTER,
	 SNAP_U64(counters.malloc),
	 .label = "op",
	 .label_value = "malloc"},
	{.name = "heapfrag_allocator_calls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.calloc),
	 .label = "op",
	 .label_value = "calloc"},
	{.name = "heapfrag_allocator_calls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.realloc),
	 .label = "op",
	 .label_value = "realloc"},
	{.name = "heapfrag_allocator_calls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.free),
	 .label = "op",
	 .label_value = "free"},
	{.name = "heapfrag_allocator_calls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.memalign),
	 .label = "op",
	 .label_value = "memalign"},
	{.name = "heapfrag_failed_allocations_total",
	 .help = "Allocation calls that returned NULL or an error since attach.",
	 .type = COUNTER,
	 SNAP_U64(counters.failed)},
	{.name = "heapfrag_heap_syscalls_total",
	 .help = "Heap system calls made by the process since attach, by system call.",
	 .type = COUNTER,
	 SNAP_U64(counters.brk),
	 .label = "syscall",
	 .label_value = "brk"},
	{.name = "heapfrag_heap_syscalls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.mmap),
	 .label = "syscall",
	 .label_value = "mmap"},
	{.name = "heapfrag_heap_syscalls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.munmap),
	 .label = "syscall",
	 .label_value = "munmap"},
	{.name = "heapfrag_heap_syscalls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.mremap),
	 .label = "syscall",
	 .label_value = "mremap"},
	{.name = "heapfrag_heap_syscalls_total",
	 .type = COUNTER,
	 SNAP_U64(counters.madvise),
	 .label = "syscall",
	 .label_value = "madvise"},
	{.name = "heapfrag_heap_released_bytes_total",
	 .help = "Heap bytes given back to the kernel since attach (munmap, shrinking brk or "
		 "mremap, MADV_DONTNEED/MADV_FREE on heap regions).",
	 .type = COUNTER,
	 SNAP_U64(heap.released_bytes)},
	{.name = "heapfrag_process_resident_bytes",
	 .help = "Resident set size of the whole process.",
	 .type = GAUGE,
	 SNAP_U64(heap.process_rss_bytes)},
	{.name = "heapfrag_libptm_heap_grow_bytes_total",
	 .help = "Bytes libptm's arenas got from the system (brk, heaps grown or created, mapped "
		 "fallback space) since attach, from its USDT probes.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.heap_grow_bytes),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_libptm_heap_shrink_bytes_total",
	 .help = "Bytes libptm's arenas gave back to the system (break lowered, heaps shrunk or "
		 "unmapped) since attach, from its USDT probes.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.heap_shrink_bytes),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_libptm_page_releases_total",
	 .help = "madvise calls by which libptm gave free chunks' whole pages back to the "
		 "kernel since attach.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.page_releases),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_libptm_page_release_bytes_total",
	 .help = "Bytes of free chunks' pages libptm gave back to the kernel since attach.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.page_release_bytes),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_libptm_arena_creates_total",
	 .help = "Arenas libptm created since attach.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.arena_creates),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_libptm_arena_reuses_total",
	 .help = "Times a thread took an existing libptm arena instead of creating one, since "
		 "attach.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.arena_reuses),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_libptm_trims_total",
	 .help = "Arenas malloc_trim visited in libptm since attach.",
	 .type = COUNTER,
	 SNAP_U64(ptm_events.trims),
	 KNOWN_IF(ptm_events_known)},
	{.name = "heapfrag_sampled_live_bytes",
	 .help = "Estimated live heap from libptm's sampled profile: the summed weights of the "
		 "samples not yet freed.",
	 .type = GAUGE,
	 SNAP_U64(sampled.live_bytes),
	 KNOWN_IF(sampled_known)},
	{.name = "heapfrag_sampled_live_samples",
	 .help = "Sampled allocations not yet freed.",
	 .type = GAUGE,
	 SNAP_U64(sampled.live_samples),
	 KNOWN_IF(sampled_known)},
	{.name = "heapfrag_sampled_samples_total",
	 .help = "Allocations libptm sampled since attach.",
	 .type = COUNTER,
	 SNAP_U64(sampled.samples),
	 KNOWN_IF(sampled_known)},
	{.name = "heapfrag_sampled_dropped_total",
	 .help = "Samples heapfragd lost to a full map since attach.",
	 .type = COUNTER,
	 SNAP_U64(sampled.dropped),
	 KNOWN_IF(sampled_known)},
	/* The heap census: totals only from a complete walk (a partial one leaves arenas out). */
	{.name = "heapfrag_census_in_use_bytes",
	 .help = "Heap census: bytes of chunks in use (not in a bin, fastbin or thread cache), "
		 "mmapped chunks apart.",
	 .type = GAUGE,
	 SNAP_U64(census.total.in_use.bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_free_bytes",
	 .help = "Heap census: bytes of free chunks by where the allocator keeps them.",
	 .type = GAUGE,
	 SNAP_U64(census.total.bins.bytes),
	 .label = "kind",
	 .label_value = "bins",
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_free_bytes",
	 .type = GAUGE,
	 SNAP_U64(census.total.fastbins.bytes),
	 .label = "kind",
	 .label_value = "fastbins",
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_free_bytes",
	 .type = GAUGE,
	 SNAP_U64(census.total.tcache.bytes),
	 .label = "kind",
	 .label_value = "tcache",
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_free_bytes",
	 .type = GAUGE,
	 SNAP_U64(census.total.top_bytes),
	 .label = "kind",
	 .label_value = "top",
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_largest_free_chunk_bytes",
	 .help = "Heap census: the largest chunk in any arena's bins (top not counted).",
	 .type = GAUGE,
	 SNAP_U64(census.total.free_largest_bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_resident_bytes",
	 .help = "Heap census: resident bytes of the arenas' heaps.",
	 .type = GAUGE,
	 SNAP_U64(census.total.resident_bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_pinned_bytes",
	 .help = "Heap census: resident pages that hold a byte of a live, cached or fastbin "
		 "chunk and that trimming cannot return.",
	 .type = GAUGE,
	 SNAP_U64(census.total.pinned_bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_pinned_free_bytes",
	 .help = "Heap census: free bytes lying on pinned pages.",
	 .type = GAUGE,
	 SNAP_U64(census.total.pinned_free_bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_releasable_bytes",
	 .help = "Heap census: resident bytes malloc_trim(0) would give back to the kernel now.",
	 .type = GAUGE,
	 SNAP_U64(census.total.releasable_bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_mmapped_bytes",
	 .help = "Heap census: bytes of chunks with a mapping of their own.",
	 .type = GAUGE,
	 SNAP_U64(census.mmapped.bytes),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_timestamp_seconds",
	 .help = "Unix time the heap census these numbers come from ended.",
	 .type = GAUGE,
	 SNAP_RATIO(census.at),
	 KNOWN_IF(census.complete)},
	{.name = "heapfrag_census_duration_seconds",
	 .help = "Wall time the latest heap census of the process took.",
	 .type = GAUGE,
	 SNAP_RATIO(census.duration_seconds),
	 KNOWN_IF(census.walked)},
	{.name = "heapfrag_census_walks_total",
	 .help = "Heap censuses taken of the process since attach.",
	 .type = COUNTER,
	 SNAP_U64(census.walks),
	 KNOWN_IF(census.walked)},
	{.name = "heapfrag_census_partial_walks_total",
	 .help = "Heap censuses of the process since attach in which an arena could not be walked "
		 "consistently.",
	 .type = COUNTER,
	 SNAP_U64(census.partial_walks),
	 KNOWN_IF(census.walked)},
};

/*
 * A PID seen twice is an exited process and its successor under a recycled
 * PID; both would make the same series, which Prometheus rejects, so only the
 * running one is written.
 */
static bool shadowed(const struct hf_snapshot *snaps, size_t n, size_t i)
{
	if (snaps[i].state != HF_STATE_EXITED)
		return false;
	for (size_t j = 0; j < n; j++) {
		if (j != i && snaps[j].pid == snaps[i].pid &&
		    (snaps[j].state != HF_STATE_EXITED || j < i))
			return true;
	}
	return false;
}

static void write_value_sample(struct hf_buf *b, const struct family *f,
			       const struct hf_snapshot *s)
{
	const char *field = (const char *)s + f->offset;

	if (f->gated) {
		bool known;

		memcpy(&known, (const char *)s + f->gate, sizeof(known));
		if (!known)
			return;
	}
	if (f->kind == U64) {
		uint64_t v;

		memcpy(&v, field, sizeof(v));
		if (!hf_known(v))
			return;
		sample_start(b, f->name, s, f->label, f->label_value);
		put_u64(b, v);
		hf_buf_puts(b, "\n");
	} else {
		double v;

		memcpy(&v, field, sizeof(v));
		if (isnan(v))
			return;
		sample_start(b, f->name, s, f->label, f->label_value);
		put_double(b, v);
		hf_buf_puts(b, "\n");
	}
}

static void write_histogram(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n)
{
	static const char name[] = "heapfrag_allocation_size_bytes";
	char le[HF_HIST_BUCKETS][24];

	for (int k = 0; k < HF_HIST_BUCKETS - 1; k++)
		snprintf(le[k], sizeof(le[k]), "%" PRIu64, hf_hist_le(k));
	snprintf(le[HF_HIST_BUCKETS - 1], sizeof(le[0]), "+Inf");
	family_header(
		b, name,
		"Sizes of the allocation requests made since attach, in power-of-two buckets.",
		HISTOGRAM);
	for (size_t i = 0; i < n; i++) {
		const struct hf_snapshot *s = &snaps[i];
		uint64_t cumulative = 0;

		if (!s->histogram_known || shadowed(snaps, n, i))
			continue;
		for (int k = 0; k < HF_HIST_BUCKETS; k++) {
			cumulative += s->histogram.requests[k];
			sample_start(b, "heapfrag_allocation_size_bytes_bucket", s, "le", le[k]);
			put_u64(b, cumulative);
			hf_buf_puts(b, "\n");
		}
		sample_start(b, "heapfrag_allocation_size_bytes_count", s, NULL, NULL);
		put_u64(b, cumulative);
		hf_buf_puts(b, "\n");
	}
}

/*
 * The sampled estimate by requested size: one gauge per log2 size class,
 * labelled with the class's upper bound (sizes in (max_size / 2, max_size],
 * the first class from 0, the last "+Inf").  Not cumulative, so that
 * sum by (pid) gives heapfrag_sampled_live_bytes.
 */
static void write_sampled_by_size(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n)
{
	static const char name[] = "heapfrag_sampled_live_by_size_bytes";
	char max_size[HF_HIST_BUCKETS][24];

	for (int k = 0; k < HF_HIST_BUCKETS - 1; k++)
		snprintf(max_size[k], sizeof(max_size[k]), "%" PRIu64, hf_hist_le(k));
	snprintf(max_size[HF_HIST_BUCKETS - 1], sizeof(max_size[0]), "+Inf");
	family_header(b, name,
		      "Estimated live heap from libptm's sampled profile by requested size class: "
		      "sizes in (max_size/2, max_size].",
		      GAUGE);
	for (size_t i = 0; i < n; i++) {
		const struct hf_snapshot *s = &snaps[i];

		if (!s->sampled_known || shadowed(snaps, n, i))
			continue;
		for (int k = 0; k < HF_HIST_BUCKETS; k++) {
			if (!hf_known(s->sampled.live_bytes_by_size[k]))
				continue;
			sample_start(b, name, s, "max_size", max_size[k]);
			put_u64(b, s->sampled.live_bytes_by_size[k]);
			hf_buf_puts(b, "\n");
		}
	}
}

/*
 * Allocator call latency in exact mode, per timed op (free has no return
 * probe, so it is never here).  _count is the +Inf bucket, so that the two
 * agree by construction as the format requires.
 */
static void write_latency(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n)
{
	char le[HF_LAT_BUCKETS][32];

	for (int k = 0; k < HF_LAT_BUCKETS - 1; k++)
		double_text(le[k], sizeof(le[k]), (double)hf_lat_le_ns(k) / 1e9);
	snprintf(le[HF_LAT_BUCKETS - 1], sizeof(le[0]), "+Inf");
	family_header(b, "heapfrag_allocator_call_duration_seconds",
		      "Time from entry to return of the allocator calls timed in exact mode, by "
		      "operation (free is not timed).",
		      HISTOGRAM);
	for (size_t i = 0; i < n; i++) {
		const struct hf_snapshot *s = &snaps[i];

		if (!s->latency_known || shadowed(snaps, n, i))
			continue;
		for (int op = 0; op < HF_LAT_OPS; op++) {
			const struct hf_call_latency *l = &s->latency[op];
			const char *op_name = hf_lat_op_name((enum hf_lat_op)op);
			uint64_t cumulative = 0;

			for (int k = 0; k < HF_LAT_BUCKETS; k++) {
				cumulative += l->buckets[k];
				sample_start_labels(
					b, "heapfrag_allocator_call_duration_seconds_bucket", s,
					"op", op_name, "le", le[k]);
				put_u64(b, cumulative);
				hf_buf_puts(b, "\n");
			}
			sample_start(b, "heapfrag_allocator_call_duration_seconds_sum", s, "op",
				     op_name);
			put_double(b, (double)l->sum_ns / 1e9);
			hf_buf_puts(b, "\n");
			sample_start(b, "heapfrag_allocator_call_duration_seconds_count", s, "op",
				     op_name);
			put_u64(b, cumulative);
			hf_buf_puts(b, "\n");
		}
	}
}

/*
 * Arena families.  An arena list is known only for allocators whose arenas
 * heapfragd can read (glibc), and lock numbers only where they were counted:
 * a process without them has no sample, never a 0.
 */
static void write_arenas(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n)
{
	char arena[24];

	family_header(b, "heapfrag_arenas", "Arenas the process's allocator has.", GAUGE);
	for (size_t i = 0; i < n; i++) {
		if (snaps[i].nr_arenas == 0 || shadowed(snaps, n, i))
			continue;
		sample_start(b, "heapfrag_arenas", &snaps[i], NULL, NULL);
		put_u64(b, snaps[i].nr_arenas);
		hf_buf_puts(b, "\n");
	}
	family_header(b, "heapfrag_arena_lock_contentions_total",
		      "Times a thread found the arena's lock taken and had to wait for it.",
		      COUNTER);
	for (size_t i = 0; i < n; i++) {
		if (shadowed(snaps, n, i))
			continue;
		for (uint32_t a = 0; a < snaps[i].nr_arenas && a < HF_MAX_ARENAS; a++) {
			const struct hf_arena *ar = &snaps[i].arenas[a];

			if (!hf_known(ar->lock.contended))
				continue;
			snprintf(arena, sizeof(arena), "0x%" PRIx64, ar->address);
			sample_start(b, "heapfrag_arena_lock_contentions_total", &snaps[i], "arena",
				     arena);
			put_u64(b, ar->lock.contended);
			hf_buf_puts(b, "\n");
		}
	}
	family_header(b, "heapfrag_arena_lock_wait_seconds_total",
		      "Seconds threads spent blocked waiting for the arena's lock.", COUNTER);
	for (size_t i = 0; i < n; i++) {
		if (shadowed(snaps, n, i))
			continue;
		for (uint32_t a = 0; a < snaps[i].nr_arenas && a < HF_MAX_ARENAS; a++) {
			const struct hf_arena *ar = &snaps[i].arenas[a];

			if (isnan(ar->lock.wait_seconds))
				continue;
			snprintf(arena, sizeof(arena), "0x%" PRIx64, ar->address);
			sample_start(b, "heapfrag_arena_lock_wait_seconds_total", &snaps[i],
				     "arena", arena);
			put_double(b, ar->lock.wait_seconds);
			hf_buf_puts(b, "\n");
		}
	}
}

/*
 * The top allocation sites of each process in exact mode (--site-metrics),
 * labelled by site_id (unique in the process, as /sites serves it) and site
 * (frame 0 named, which two sites may share): bounded cardinality, and
 * series that survive as long as a site stays among the top ones.
 */
struct site_family {
	const char *name;
	const char *help;
	enum family_type type;
	size_t offset; /* of the value in struct hf_top_site */
};

static const struct site_family site_families[] = {
	{"heapfrag_site_live_bytes", "Chunk bytes of the site's live blocks.", GAUGE,
	 offsetof(struct hf_top_site, live_bytes)},
	{"heapfrag_site_live_allocations", "The site's live blocks.", GAUGE,
	 offsetof(struct hf_top_site, live_allocations)},
	{"heapfrag_site_pinned_free_bytes",
	 "Free bytes on pinned pages credited to the site's live blocks by the latest complete "
	 "heap census.",
	 GAUGE, offsetof(struct hf_top_site, pinned_free_bytes)},
	{"heapfrag_site_allocations_total", "Allocations made at the site since attach.",
	 COUNTER, offsetof(struct hf_top_site, allocations)},
	{"heapfrag_site_frees_total", "Frees of blocks allocated at the site since attach.",
	 COUNTER, offsetof(struct hf_top_site, frees)},
};

static void write_sites(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n)
{
	char id[24];

	for (size_t f = 0; f < sizeof(site_families) / sizeof(site_families[0]); f++) {
		const struct site_family *sf = &site_families[f];

		family_header(b, sf->name, sf->help, sf->type);
		for (size_t i = 0; i < n; i++) {
			if (!snaps[i].sites_known || shadowed(snaps, n, i))
				continue;
			for (uint32_t k = 0; k < snaps[i].nr_top_sites && k < HF_MAX_TOP_SITES;
			     k++) {
				const struct hf_top_site *t = &snaps[i].top_sites[k];
				uint64_t v;

				memcpy(&v, (const char *)t + sf->offset, sizeof(v));
				if (!hf_known(v))
					continue;
				snprintf(id, sizeof(id), "%" PRIu64, t->id);
				sample_start_labels(b, sf->name, &snaps[i], "site_id", id, "site",
						    t->name);
				put_u64(b, v);
				hf_buf_puts(b, "\n");
			}
		}
	}
}

static void write_daemon(struct hf_buf *b, const struct hf_daemon_stats *st)
{
	family_header(b, "heapfrag_tracked_processes", "Processes heapfragd is tracing now.",
		      GAUGE);
	hf_buf_printf(b, "heapfrag_tracked_processes %" PRIu64 "\n", st->tracked_processes);

	family_header(b, "heapfrag_dropped_events_total",
		      "Events heapfragd could not record, by reason (a full BPF map, for one).",
		      COUNTER);
	for (uint32_t i = 0; i < st->nr_drop_reasons && i < 8; i++) {
		hf_buf_puts(b, "heapfrag_dropped_events_total{reason=\"");
		hf_prom_escape(b, st->dropped[i].reason ? st->dropped[i].reason : "");
		hf_buf_printf(b, "\"} %" PRIu64 "\n", st->dropped[i].count);
	}

	family_header(b, "heapfrag_bpf_map_entries",
		      "Entries in use in each of heapfragd's BPF maps.", GAUGE);
	for (uint32_t i = 0; i < st->nr_maps && i < HF_MAX_MAPS; i++) {
		hf_buf_puts(b, "heapfrag_bpf_map_entries{map=\"");
		hf_prom_escape(b, st->maps[i].name ? st->maps[i].name : "");
		hf_buf_printf(b, "\"} %" PRIu64 "\n", st->maps[i].entries);
	}

	family_header(b, "heapfrag_build_info", "Always 1; the version of heapfragd as a label.",
		      GAUGE);
	hf_buf_puts(b, "heapfrag_build_info{version=\"");
	hf_prom_escape(b, HF_VERSION);
	hf_buf_puts(b, "\"} 1\n");
}

int hf_prom_write(struct hf_buf *b, const struct hf_snapshot *snaps, size_t n,
		  const struct hf_daemon_stats *stats)
{
	size_t nr = sizeof(families) / sizeof(families[0]);

	for (size_t g = 0; g < nr;) {
		size_t end = g + 1;

		/* A family is the run of rows that share its name. */
		while (end < nr && strcmp(families[end].name, families[g].name) == 0)
			end++;
		family_header(b, families[g].name, families[g].help, families[g].type);
		for (size_t i = 0; i < n; i++) {
			if (shadowed(snaps, n, i))
				continue;
			for (size_t r = g; r < end; r++)
				write_value_sample(b, &families[r], &snaps[i]);
		}
		g = end;
	}
	write_histogram(b, snaps, n);
	write_sampled_by_size(b, snaps, n);
	write_latency(b, snaps, n);
	write_arenas(b, snaps, n);
	write_sites(b, snaps, n);
	write_daemon(b, stats);
	return b->err;
}

int hf_prom_write_scrape_duration(struct hf_buf *b, double seconds)
{
	family_header(b, "heapfrag_scrape_duration_seconds",
		      "Time heapfragd spent producing this scrape, up to this line.", GAUGE);
	hf_buf_puts(b, "heapfrag_scrape_duration_seconds ");
	put_double(b, seconds);
	hf_buf_puts(b, "\n");
	return b->err;
}
