// SPDX-License-Identifier: MIT
/* workload.c - the books, the protocol and the TRUTH line of workload.h. */
#include "workload.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* stdout's buffer: static, so that printing never calls the allocator. */
static char stdout_buf[1 << 16];

static volatile size_t huge_size = SIZE_MAX / 4;

size_t wl_huge(void)
{
	return huge_size;
}

static void usage(const char *prog, const char *about, const struct wl_opt *opts, size_t n,
		  FILE *to)
{
	fprintf(to, "usage: %s [--OPTION N]...\n%s\n\nOptions (unsigned numbers):\n", prog, about);
	for (size_t i = 0; i < n; i++)
		fprintf(to, "  --%-16s %s (default %" PRIu64 ")\n", opts[i].name, opts[i].help,
			*opts[i].value);
}

void wl_parse(int argc, char **argv, const char *about, const struct wl_opt *opts, size_t n)
{
	for (int a = 1; a < argc; a++) {
		const struct wl_opt *o = NULL;
		char *end;

		if (strcmp(argv[a], "--help") == 0) {
			usage(argv[0], about, opts, n, stdout);
			exit(0);
		}
		for (size_t i = 0; i < n && argv[a][0] == '-' && argv[a][1] == '-'; i++) {
			if (strcmp(argv[a] + 2, opts[i].name) == 0)
				o = &opts[i];
		}
		if (!o || a + 1 >= argc) {
			fprintf(stderr, "%s: unknown option or missing value: %s\n", argv[0],
				argv[a]);
			usage(argv[0], about, opts, n, stderr);
			exit(2);
		}
		errno = 0;
		a++;
		*o->value = strtoull(argv[a], &end, 0);
		if (errno || end == argv[a] || *end || argv[a][0] == '-') {
			fprintf(stderr, "%s: --%s wants an unsigned number, not \"%s\"\n", argv[0],
				o->name, argv[a]);
			exit(2);
		}
	}
}

bool wl_wait_line(void)
{
	char c;

	for (;;) {
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		if (c == '\n')
			return true;
	}
}

void wl_ready(void)
{
	setvbuf(stdout, stdout_buf, _IOLBF, sizeof(stdout_buf));
	printf("READY pid=%d\n", (int)getpid());
	wl_wait_line();
}

void wl_books_init(struct wl_books *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap ? cap : 1;
	b->live = mmap(NULL, b->cap * sizeof(*b->live), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b->live == MAP_FAILED) {
		perror("workload: mmap of the books");
		exit(1);
	}
}

void wl_books_destroy(struct wl_books *b)
{
	munmap(b->live, b->cap * sizeof(*b->live));
	b->live = NULL;
	b->nr_live = b->cap = 0;
}

static void need_room(struct wl_books *b)
{
	if (b->nr_live == b->cap) {
		fprintf(stderr, "workload: more than %zu live blocks; raise the capacity\n",
			b->cap);
		abort();
	}
}

static void *record(struct wl_books *b, void *p, size_t req)
{
	if (!p) {
		b->calls.failed++;
		return NULL;
	}
	b->live[b->nr_live++] = (struct wl_block){p, req};
	return p;
}

void *wl_malloc(struct wl_books *b, size_t n)
{
	need_room(b);
	b->calls.malloc++;
	return record(b, malloc(n), n);
}

void *wl_calloc(struct wl_books *b, size_t nmemb, size_t size)
{
	need_room(b);
	b->calls.calloc++;
	return record(b, calloc(nmemb, size), nmemb * size);
}

void *wl_realloc_null(struct wl_books *b, size_t n)
{
	need_room(b);
	b->calls.realloc++;
	return record(b, realloc(NULL, n), n);
}

static void drop(struct wl_books *b, size_t i)
{
	b->live[i] = b->live[--b->nr_live];
}

void *wl_realloc(struct wl_books *b, size_t i, size_t n)
{
	void *q;

	b->calls.realloc++;
	q = realloc(b->live[i].p, n);
	if (q) {
		b->live[i] = (struct wl_block){q, n};
	} else if (n == 0) {
		/* glibc and jemalloc free the block and return NULL: not a failure. */
		drop(b, i);
	} else {
		/* A failed realloc leaves the old block as it was. */
		b->calls.failed++;
	}
	return q;
}

void *wl_posix_memalign(struct wl_books *b, size_t align, size_t n)
{
	void *p = NULL;

	need_room(b);
	b->calls.posix_memalign++;
	if (posix_memalign(&p, align, n) != 0)
		p = NULL;
	return record(b, p, n);
}

void *wl_aligned_alloc(struct wl_books *b, size_t align, size_t n)
{
	need_room(b);
	b->calls.aligned_alloc++;
	return record(b, aligned_alloc(align, n), n);
}

void *wl_memalign(struct wl_books *b, size_t align, size_t n)
{
	need_room(b);
	b->calls.memalign++;
	return record(b, memalign(align, n), n);
}

void *wl_valloc(struct wl_books *b, size_t n)
{
	need_room(b);
	b->calls.valloc++;
	return record(b, valloc(n), n);
}

void wl_free(struct wl_books *b, size_t i)
{
	b->calls.free++;
	free(b->live[i].p);
	drop(b, i);
}

void wl_free_all(struct wl_books *b)
{
	for (size_t i = 0; i < b->nr_live; i++)
		free(b->live[i].p);
	b->nr_live = 0;
}

uint64_t wl_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t wl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void wl_live_totals(const struct wl_books *b, uint64_t *count, uint64_t *requested)
{
	*count += b->nr_live;
	for (size_t i = 0; i < b->nr_live; i++)
		*requested += b->live[i].req;
}

/* Which object provides the process's malloc, and what it is called. */
static const char *allocator_of(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0)
		return "glibc";
	if (strstr(base, "libptm"))
		return "libptm";
	if (strstr(base, "jemalloc"))
		return "jemalloc";
	if (strstr(base, "tcmalloc"))
		return "tcmalloc";
	if (strstr(base, "mimalloc"))
		return "mimalloc";
	return "unknown";
}

static const char *object_of(const char *sym)
{
	void *addr = dlsym(RTLD_DEFAULT, sym);
	Dl_info info;

	if (!addr || !dladdr(addr, &info) || !info.dli_fname)
		return NULL;
	return info.dli_fname;
}

/* ptmalloc's chunk size word sits just before the block; the low 3 bits are flags. */
static uint64_t chunk_size(const void *p)
{
	uint64_t size;

	memcpy(&size, (const char *)p - sizeof(size), sizeof(size));
	return size & ~7ULL;
}

void wl_truth(const char *workload, uint64_t seed, uint64_t phase_ns, struct wl_books *books,
	      size_t n, const char *extra)
{
	size_t (*usable)(void *) = (size_t(*)(void *))dlsym(RTLD_DEFAULT, "malloc_usable_size");
	const char *malloc_obj = object_of("malloc");
	const char *mi_obj = object_of("mallinfo2");
	const char *name = malloc_obj ? allocator_of(malloc_obj) : "unknown";
	bool ptmalloc = strcmp(name, "glibc") == 0 || strcmp(name, "libptm") == 0;
	struct wl_calls c = {0};
	uint64_t live = 0, requested = 0, usable_bytes = 0, chunk_bytes = 0;
	char mi_json[256] = "null", chunk_json[32] = "null";

	for (size_t k = 0; k < n; k++) {
		const struct wl_books *b = &books[k];

		c.malloc += b->calls.malloc;
		c.calloc += b->calls.calloc;
		c.realloc += b->calls.realloc;
		c.free += b->calls.free;
		c.posix_memalign += b->calls.posix_memalign;
		c.aligned_alloc += b->calls.aligned_alloc;
		c.memalign += b->calls.memalign;
		c.valloc += b->calls.valloc;
		c.failed += b->calls.failed;
		wl_live_totals(b, &live, &requested);
		for (size_t i = 0; i < b->nr_live; i++) {
			usable_bytes += usable ? usable(b->live[i].p) : 0;
			if (ptmalloc)
				chunk_bytes += chunk_size(b->live[i].p);
		}
	}
	if (ptmalloc)
		snprintf(chunk_json, sizeof(chunk_json), "%" PRIu64, chunk_bytes);
	if (malloc_obj && mi_obj && strcmp(malloc_obj, mi_obj) == 0) {
		struct mallinfo2 (*mi2)(void) =
			(struct mallinfo2(*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
		struct mallinfo2 mi = mi2();

		snprintf(mi_json, sizeof(mi_json),
			 "{\"arena\":%zu,\"hblkhd\":%zu,\"uordblks\":%zu,\"fordblks\":%zu}",
			 mi.arena, mi.hblkhd, mi.uordblks, mi.fordblks);
	}
	printf("TRUTH {\"workload\":\"%s\",\"pid\":%d,\"seed\":%" PRIu64 ",\"phase_ns\":%" PRIu64
	       ",\"allocator\":{\"name\":\"%s\",\"path\":\"%s\"}"
	       ",\"calls\":{\"malloc\":%" PRIu64 ",\"calloc\":%" PRIu64 ",\"realloc\":%" PRIu64
	       ",\"free\":%" PRIu64 ",\"memalign\":%" PRIu64 ",\"failed\":%" PRIu64 "}"
	       ",\"by_function\":{\"posix_memalign\":%" PRIu64 ",\"aligned_alloc\":%" PRIu64
	       ",\"memalign\":%" PRIu64 ",\"valloc\":%" PRIu64 "}"
	       ",\"live_allocations\":%" PRIu64 ",\"requested_bytes\":%" PRIu64
	       ",\"usable_bytes\":%" PRIu64 ",\"chunk_bytes\":%s,\"mallinfo2\":%s%s}\n",
	       workload, (int)getpid(), seed, phase_ns, name, malloc_obj ? malloc_obj : "",
	       c.malloc, c.calloc, c.realloc, c.free,
	       c.posix_memalign + c.aligned_alloc + c.memalign + c.valloc, c.failed,
	       c.posix_memalign, c.aligned_alloc, c.memalign, c.valloc, live, requested,
	       usable_bytes, chunk_json, mi_json, extra ? extra : "");
	fflush(stdout);
}
