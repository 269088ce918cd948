// SPDX-License-Identifier: MIT
/*
 * heap_regions.c - finds the allocator's regions among a process's mappings.
 *
 * brk: the kernel does not publish the current break (proc(5) field 48 is
 *   arg_start, not brk), but it labels [heap] the mapping that spans
 *   start_brk..brk rounded up to a page.  The brk span is that mapping's end
 *   minus start_brk (stat field 47, or the mapping's start when the field
 *   reads 0 because we may not ptrace the process).  glibc and libptm move
 *   the break in whole pages, so for them the span is exact; its Rss is the
 *   [heap] mapping's Rss.
 *
 * arena: a glibc/libptm non-main arena is a chain of heaps, each reserved as
 *   HEAP_MAX_SIZE (64 MiB on x86-64) of PROT_NONE address space aligned to
 *   64 MiB, whose head is made readable and writable as the heap grows.  The
 *   heap starts with a heap_info header { ar_ptr, prev, size, mprotect_size }.
 *   At every 64 MiB-aligned address inside a private anonymous rw mapping we
 *   read that header with process_vm_readv and accept a heap when ar_ptr is
 *   set, size <= mprotect_size <= 64 MiB, mprotect_size is whole pages that
 *   lie inside the mapping, and either prev is 0 and ar_ptr points into the
 *   heap's first page (the first heap carries its arena) or prev is another
 *   64 MiB-aligned heap.  The committed part is mprotect_size, the rw head.
 *
 * mmap: chunks the allocator mapped for large requests.  glibc and libptm,
 *   both modes: found by their headers (below), which also finds the chunks
 *   mapped before attach; in exact mode the tracer's spans are added where
 *   they cover anything the headers did not show.  Other allocators: exact
 *   mode, the spans the tracer saw the allocator map, clipped to what is still
 *   mapped; passive mode, unknown.  A chunk made by mmap starts at
 *   the mapping's first byte with the header { prev_size = 0, size = length
 *   | IS_MMAPPED (0x2) }.  A memalign'ed chunk lies o bytes in, with the
 *   header { prev_size = o, size = length - o | IS_MMAPPED }, and glibc
 *   leaves the original header at the mapping's start; while the mapping is
 *   unchanged that header still matches, and once realloc has resized it
 *   with mremap the stale one at least keeps IS_MMAPPED: when its size does
 *   not fit the mapping, or no header follows where it says the chunk ends,
 *   we look for the aligned header in the first 64 KiB.  Adjacent mappings with
 *   equal permissions merge into one, so we walk headers from the mapping's
 *   start: each accepted chunk is followed by the next one, or by an arena
 *   heap, until a header does not fit.  Where something else (a thread
 *   stack, the program's own mmap) comes first, we read the first 16 bytes
 *   of each following page and accept a page whose header is exactly
 *   { 0, length | IS_MMAPPED } (no other flag bit) with a length that fits,
 *   or from which a chain of chunks runs to the mapping's end or to an arena
 *   heap.  Not found: a chunk
 *   between two unrecognised regions of one merged mapping, and a
 *   memalign'ed chunk aligned to more than 64 KiB whose mapping was resized.
 *
 * Resident bytes are counted over exactly those ranges: a mapping's Rss from
 * smaps when a range is the whole mapping, else the present bits of
 * /proc/PID/pagemap for the range.
 */
#include "heap_regions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"

#define HEAP_MAX_SIZE (64ULL << 20)
#define IS_MMAPPED    0x2ULL
#define SIZE_BITS     0x7ULL
#define SCAN_BYTES    (64ULL << 10)
#define SCAN_IOV      512
/*
 * Pages of one unrecognised mapping that find_chain() may read per snapshot.
 * Big sparse mappings (a JVM's reserve, ASan's shadow) would otherwise cost
 * one read per page on every snapshot; a chunk chain hidden deeper than this
 * in a merged mapping is not found.
 */
#define SCAN_MAX_PAGES 4096

struct vma {
	uint64_t start;
	uint64_t end;
	uint64_t rss;
	bool anon_rw; /* private, anonymous, readable and writable */
	bool brk;     /* the [heap] mapping */
};

struct vma_list {
	struct vma *v;
	size_t n;
	size_t cap;
};

/* The parts of one read that are being summed. */
struct tally {
	pid_t pid;
	uint64_t page;
	uint64_t arena;
	uint64_t arena_rss;
	uint64_t arena_size;
	uint64_t arena_heaps;
	uint64_t mmap;
	uint64_t mmap_rss;
	uint64_t *scan;       /* SCAN_BYTES of the target, for find_aligned_chunk() */
	struct hf_span *seen; /* heap reservations and chunks found, ascending */
	size_t nr_seen;
	size_t cap_seen;
};

static int collect_vma(const struct hf_mapping *m, void *arg)
{
	struct vma_list *l = arg;
	struct vma *v;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct vma *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	v = &l->v[l->n++];
	v->start = m->start;
	v->end = m->end;
	v->rss = hf_known(m->rss_bytes) ? m->rss_bytes : 0;
	v->brk = strcmp(m->path, "[heap]") == 0;
	/* glibc 2.41+ may name its mappings "[anon: glibc: ...]"; those count as anonymous. */
	v->anon_rw = m->perms[0] == 'r' && m->perms[1] == 'w' && m->perms[3] == 'p' &&
		     m->inode == 0 && (m->path[0] == '\0' || strncmp(m->path, "[anon:", 6) == 0);
	return 0;
}

/* 0, -EFAULT when the memory is not there, -ESRCH when the process is gone. */
static int read_remote(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EFAULT;
	if (errno == ESRCH)
		return -ESRCH;
	if (errno == EPERM)
		return -EPERM;
	return -EFAULT;
}

static int range_resident(struct tally *t, const struct vma *v, uint64_t start, uint64_t len,
			  uint64_t *rss)
{
	if (start == v->start && start + len == v->end) {
		*rss = v->rss;
		return 0;
	}
	return hf_proc_resident_range(t->pid, start, len, rss);
}

/* Remembers [start, start + len) as the allocator's, so that no span counts it again. */
static int add_seen(struct tally *t, uint64_t start, uint64_t len)
{
	if (t->nr_seen == t->cap_seen) {
		size_t cap = t->cap_seen ? t->cap_seen * 2 : 64;
		struct hf_span *ns = realloc(t->seen, cap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		t->seen = ns;
		t->cap_seen = cap;
	}
	t->seen[t->nr_seen++] = (struct hf_span){start, len};
	return 0;
}

/* Returns the heap's committed length, 0 if pos holds no heap, or a negative errno. */
static int64_t probe_heap(struct tally *t, const struct vma *v, uint64_t pos, uint64_t *size)
{
	uint64_t h[4]; /* ar_ptr, prev, size, mprotect_size */
	int err;

	if (pos % HEAP_MAX_SIZE)
		return 0;
	err = read_remote(t->pid, pos, h, sizeof(h));
	if (err)
		return err == -EFAULT ? 0 : err;
	if (!h[0] || !h[2] || h[2] > h[3] || h[3] > HEAP_MAX_SIZE || h[3] % t->page ||
	    h[3] > v->end - pos)
		return 0;
	if (h[1] == 0 ? !(h[0] > pos && h[0] < pos + t->page)
		      : h[1] % HEAP_MAX_SIZE != 0 || h[1] == pos)
		return 0;
	*size = h[2];
	return (int64_t)h[3];
}

/*
 * A memalign'ed chunk sits o bytes into its mapping with the header
 * { prev_size = o, size = length - o | IS_MMAPPED }.  Look for it in the
 * first SCAN_BYTES, where every alignment up to that size puts it.
 */
static int64_t find_aligned_chunk(struct tally *t, const struct vma *v, uint64_t pos)
{
	uint64_t room = v->end - pos, want = room < SCAN_BYTES ? room : SCAN_BYTES;
	int err;

	if (!t->scan) {
		t->scan = malloc(SCAN_BYTES);
		if (!t->scan)
			return -ENOMEM;
	}
	err = read_remote(t->pid, pos, t->scan, want);
	if (err)
		return err == -EFAULT ? 0 : err;
	for (uint64_t o = 16; o + 16 <= want; o += 16) {
		uint64_t prev = t->scan[o / 8], size = t->scan[o / 8 + 1];
		uint64_t len = o + (size & ~SIZE_BITS);

		if (prev == o && (size & IS_MMAPPED) && (size & ~SIZE_BITS) && len <= room &&
		    len % t->page == 0)
			return (int64_t)len;
	}
	return 0;
}

/* Returns the chunk's length, 0 if pos holds no mmapped chunk, or a negative errno. */
static int64_t probe_chunk(struct tally *t, const struct vma *v, uint64_t pos)
{
	uint64_t h[2]; /* prev_size, size */
	int64_t aligned;
	uint64_t len;
	int err;

	err = read_remote(t->pid, pos, h, sizeof(h));
	if (err)
		return err == -EFAULT ? 0 : err;
	if (h[0] != 0 || !(h[1] & IS_MMAPPED))
		return 0;
	len = h[1] & ~SIZE_BITS;
	if (!len || len % t->page || len > v->end - pos)
		/* The first header is a memalign'ed chunk's original one, stale since mremap. */
		return find_aligned_chunk(t, v, pos);
	if (pos + len == v->end || (pos + len) % HEAP_MAX_SIZE == 0)
		return (int64_t)len;
	/*
	 * A stale header can also claim less or more than the chunk has since
	 * grown or shrunk to.  When no chunk header follows where this one says
	 * the chunk ends, an aligned header, which is always current, wins.
	 */
	err = read_remote(t->pid, pos + len, h, sizeof(h));
	if (err == -ESRCH)
		return err;
	if (!err && h[0] == 0 && (h[1] & IS_MMAPPED))
		return (int64_t)len;
	aligned = find_aligned_chunk(t, v, pos);
	return aligned != 0 ? aligned : (int64_t)len;
}

/* Whether chunks follow each other from pos to the mapping's end or to a heap. */
static int chain_reaches_end(struct tally *t, const struct vma *v, uint64_t pos)
{
	while (pos < v->end) {
		uint64_t size;
		int64_t len = probe_heap(t, v, pos, &size);

		if (len)
			return len > 0 ? 1 : (int)len;
		len = probe_chunk(t, v, pos);
		if (len <= 0)
			return (int)len;
		pos += (uint64_t)len;
	}
	return 1;
}

/*
 * A mapping that merged with its neighbour can start with something else and
 * hold chunks further in.  Reads the first 16 bytes of every page in
 * [from, limit) (one process_vm_readv per SCAN_IOV pages) and returns the
 * first page whose header starts a chain of chunks that runs to the end of the
 * mapping or to an arena heap; 0 if none does.
 */
static int64_t find_chain(struct tally *t, const struct vma *v, uint64_t from, uint64_t limit)
{
	struct iovec local[SCAN_IOV], remote[SCAN_IOV];
	uint64_t hdr[SCAN_IOV][2];

	while (from < limit) {
		size_t n = 0;
		ssize_t got;

		for (uint64_t q = from; q < limit && n < SCAN_IOV; q += t->page, n++) {
			local[n] = (struct iovec){.iov_base = hdr[n], .iov_len = sizeof(hdr[n])};
			remote[n] = (struct iovec){.iov_base = (void *)(uintptr_t)q,
						   .iov_len = sizeof(hdr[n])};
		}
		got = process_vm_readv(t->pid, local, n, remote, n, 0);
		if (got < 0)
			return errno == ESRCH ? -ESRCH : 0;
		for (size_t i = 0; i < (size_t)got / sizeof(hdr[0]); i++) {
			uint64_t q = from + i * t->page;
			int ok;

			if (hdr[i][0] != 0 || !(hdr[i][1] & IS_MMAPPED))
				continue;
			ok = (hdr[i][1] & SIZE_BITS) == IS_MMAPPED && probe_chunk(t, v, q) > 0;
			if (!ok)
				ok = chain_reaches_end(t, v, q);
			if (ok < 0)
				return ok;
			if (ok)
				return (int64_t)q;
		}
		from += n * t->page;
	}
	return 0;
}

/* Walks one anonymous rw mapping for arena heaps and mmapped chunks. */
static int walk_vma(struct tally *t, const struct vma *v)
{
	uint64_t pos = v->start, scanned = 0, limit;

	while (pos < v->end) {
		uint64_t size = 0, rss = 0, next;
		int64_t len;
		int err;

		len = probe_heap(t, v, pos, &size);
		if (len < 0)
			return (int)len;
		if (len > 0) {
			/* The whole reservation is the heap's, PROT_NONE tail included. */
			if ((err = range_resident(t, v, pos, (uint64_t)len, &rss)) ||
			    (err = add_seen(t, pos, HEAP_MAX_SIZE)))
				return err;
			t->arena += (uint64_t)len;
			t->arena_rss += rss;
			t->arena_size += size;
			t->arena_heaps++;
			pos += (uint64_t)len;
			continue;
		}
		len = probe_chunk(t, v, pos);
		if (len < 0)
			return (int)len;
		if (len > 0) {
			if ((err = range_resident(t, v, pos, (uint64_t)len, &rss)) ||
			    (err = add_seen(t, pos, (uint64_t)len)))
				return err;
			t->mmap += (uint64_t)len;
			t->mmap_rss += rss;
			pos += (uint64_t)len;
			continue;
		}
		/*
		 * Unrecognised: look further in for a chunk chain, up to where a
		 * heap could be.  A mapping with nothing resident holds no chunk
		 * header, and the scan is bounded (SCAN_MAX_PAGES).
		 */
		next = (pos / HEAP_MAX_SIZE + 1) * HEAP_MAX_SIZE;
		if (v->rss == 0 || scanned >= SCAN_MAX_PAGES) {
			pos = next;
			continue;
		}
		limit = next < v->end ? next : v->end;
		if ((limit - pos) / t->page > SCAN_MAX_PAGES - scanned)
			limit = pos + (SCAN_MAX_PAGES - scanned) * t->page;
		scanned += (limit - pos) / t->page;
		len = find_chain(t, v, pos + t->page, limit);
		if (len < 0)
			return (int)len;
		pos = len > 0 ? (uint64_t)len : next;
	}
	return 0;
}

/* Adds [a, b), a piece of mapping v, where no heap or chunk already found lies. */
static int add_known_piece(struct tally *t, const struct vma *v, uint64_t a, uint64_t b)
{
	size_t lo = 0, hi = t->nr_seen;

	/* The first range found that ends above a. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->seen[mid].start + t->seen[mid].len <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (a < b) {
		const struct hf_span *r = lo < t->nr_seen ? &t->seen[lo] : NULL;
		uint64_t stop = r && r->start < b ? r->start : b;
		uint64_t rss = 0;
		int err;

		if (stop > a) {
			if ((err = range_resident(t, v, a, stop - a, &rss)))
				return err;
			t->mmap += stop - a;
			t->mmap_rss += rss;
		}
		if (!r || r->start >= b)
			break;
		a = r->start + r->len > a ? r->start + r->len : a;
		lo++;
	}
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct hf_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sums the tracer's spans over what is still mapped, each byte once. */
static int add_known_mmaps(struct tally *t, const struct vma_list *l, const struct hf_span *spans,
			   size_t n)
{
	struct hf_span *s;
	uint64_t done = 0; /* bytes below this address are already counted */
	size_t i, j = 0;
	int err = 0;

	if (n == 0)
		return 0;
	s = malloc(n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s, spans, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_span);
	for (i = 0; i < n; i++) {
		uint64_t a = s[i].start > done ? s[i].start : done;
		uint64_t b = s[i].start + s[i].len;

		if (b <= a)
			continue;
		done = b;
		while (j < l->n && l->v[j].end <= a)
			j++;
		for (size_t k = j; k < l->n && l->v[k].start < b; k++) {
			const struct vma *v = &l->v[k];
			uint64_t pa = a > v->start ? a : v->start;
			uint64_t pb = b < v->end ? b : v->end;

			/* The brk heap is counted as brk, never twice. */
			if (v->brk || pa >= pb)
				continue;
			if ((err = add_known_piece(t, v, pa, pb)))
				goto cleanup;
		}
	}
cleanup:
	free(s);
	return err;
}

static bool ptmalloc_like(enum hf_allocator kind)
{
	return kind == HF_ALLOC_GLIBC || kind == HF_ALLOC_LIBPTM;
}

int hf_regions_read(pid_t pid, enum hf_allocator kind, enum hf_mode mode,
		    const struct hf_span *known_mmaps, size_t nr_known_mmaps,
		    struct hf_regions *out)
{
	bool traced = mode == HF_MODE_EXACT;
	struct tally t = {.pid = pid, .page = (uint64_t)sysconf(_SC_PAGESIZE)};
	struct vma_list l = {0};
	struct hf_proc_stat st;
	uint64_t brk_rss = 0;
	const struct vma *heap = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	out->mapped.brk = out->mapped.arena = out->mapped.mmap = out->mapped.total = HF_UNKNOWN;
	out->resident_bytes = out->process_rss_bytes = HF_UNKNOWN;
	out->arena_heaps = out->arena_size_bytes = HF_UNKNOWN;
	out->largest_free_chunk_bytes = out->free_chunks = HF_UNKNOWN;

	if ((err = hf_proc_read_stat(pid, &st)))
		goto cleanup;
	/* A zombie's memory is gone already: there is nothing left to account. */
	if (st.state == 'Z' || st.state == 'X') {
		err = -ESRCH;
		goto cleanup;
	}
	if ((err = hf_proc_read_smaps(pid, collect_vma, &l)))
		goto cleanup;
	if ((err = hf_proc_read_rss(pid, &out->process_rss_bytes)))
		goto cleanup;

	for (size_t i = 0; i < l.n; i++) {
		if (l.v[i].brk)
			heap = &l.v[i];
	}
	out->mapped.brk = 0;
	if (heap) {
		uint64_t start = st.start_brk ? st.start_brk : heap->start;

		out->mapped.brk = heap->end > start ? heap->end - start : 0;
		brk_rss = heap->rss;
	}

	if (ptmalloc_like(kind)) {
		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i].anon_rw && (err = walk_vma(&t, &l.v[i])))
				goto cleanup;
		}
		if (t.nr_seen)
			qsort(t.seen, t.nr_seen, sizeof(*t.seen), cmp_span);
		out->mapped.arena = t.arena;
		out->arena_heaps = t.arena_heaps;
		out->arena_size_bytes = t.arena_size;
	} else if (traced) {
		/* These allocators keep all their memory in mappings the tracer sees. */
		out->mapped.arena = 0;
		out->arena_heaps = 0;
		out->arena_size_bytes = 0;
	}
	if (traced && nr_known_mmaps &&
	    (err = add_known_mmaps(&t, &l, known_mmaps, nr_known_mmaps)))
		goto cleanup;
	if (traced || ptmalloc_like(kind))
		out->mapped.mmap = t.mmap;
	out->mapped.total = hf_mapped_total(&out->mapped);
	if (hf_known(out->mapped.total))
		out->resident_bytes = brk_rss + t.arena_rss + t.mmap_rss;
cleanup:
	if (err == -ESRCH)
		hf_log(HF_LOG_DEBUG, "process %d exited while its regions were read", (int)pid);
	else if (err)
		hf_log(HF_LOG_WARN, "cannot read the heap regions of process %d: %s", (int)pid,
		       strerror(-err));
	free(l.v);
	free(t.seen);
	free(t.scan);
	return err;
}
