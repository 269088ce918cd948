// SPDX-License-Identifier: MIT
/*
 * census_capture - census_capture PID OUT.img: a heap image (heap_image.h)
 * of a live process, for the fuzzer's corpus.
 *
 * It runs heapfragd's own census, the room (room.h) of whichever allocator
 * gives PID its malloc (probe_site.h), so the parameters are found exactly
 * as the daemon finds them.  Through the census tap (census.h) it hands the
 * walker a reader that records, as whole pages, everything the walker reads
 * and the state of every page it asks about, and it keeps the walk's
 * parameters and verdict.  Run it as root (or with CAP_SYS_PTRACE) on a
 * process that holds still: tests/fuzz/capture_corpus.sh does both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "census.h"
#include "heap_image.h"
#include "heap_walk.h"
#include "probe_site.h"
#include "room.h"

#define PS HF_IMAGE_PAGE

struct page {
	uint64_t addr;
	uint8_t state;
	bool queried; /* state came from pages(); else the page was only read */
	uint8_t *data;
};

struct recorder {
	struct hf_mem mem; /* what the walk reads through */
	struct hf_mem *inner;
	struct page *pages; /* sorted by address */
	size_t nr_pages, cap;
	int err; /* the first page that could not be recorded */
	/* What the tap saw after the walk. */
	bool walked;
	int walk_err;
	struct hf_census out;
	struct hf_walk_params params;
	struct hf_ptmalloc_layout layout;
	uint64_t *arenas;
	struct hf_vma *vmas;
};

/* The page at addr, added (state 0, no data) if it is new; NULL without memory. */
static struct page *page_at(struct recorder *r, uint64_t addr)
{
	size_t lo = 0, hi = r->nr_pages;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->pages[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nr_pages && r->pages[lo].addr == addr)
		return &r->pages[lo];
	if (r->nr_pages == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 256;
		struct page *np = realloc(r->pages, cap * sizeof(*np));

		if (!np)
			return NULL;
		r->pages = np;
		r->cap = cap;
	}
	memmove(&r->pages[lo + 1], &r->pages[lo], (r->nr_pages - lo) * sizeof(*r->pages));
	r->nr_pages++;
	r->pages[lo] = (struct page){.addr = addr};
	return &r->pages[lo];
}

/* Keeps a copy of a page's bytes: from src, else read whole from the process. */
static void keep_data(struct recorder *r, struct page *pg, const void *src)
{
	uint64_t counted = r->inner->bytes_read;
	uint8_t data = HF_PAGE_DATA;
	int err = 0;

	if (pg->data)
		return;
	pg->data = malloc(PS);
	if (!pg->data) {
		r->err = -ENOMEM;
		return;
	}
	if (src)
		memcpy(pg->data, src, PS);
	else if (pg->queried)
		err = r->inner->read_pages(r->inner, pg->addr, PS, &data, pg->data);
	else
		err = r->inner->read(r->inner, pg->addr, pg->data, PS);
	/* The census's bytes_read counts the walk's reads, not the recorder's. */
	r->inner->bytes_read = counted;
	if (err && !r->err)
		r->err = err;
}

static int rec_read(struct hf_mem *m, uint64_t addr, void *buf, size_t len)
{
	struct recorder *r = m->ctx;
	int err = r->inner->read(r->inner, addr, buf, len);

	for (uint64_t pg = addr & ~(uint64_t)(PS - 1); !err && len && pg < addr + len; pg += PS) {
		struct page *p = page_at(r, pg);

		if (!p) {
			r->err = -ENOMEM;
			break;
		}
		keep_data(r, p, NULL);
	}
	return err;
}

static int rec_read_pages(struct hf_mem *m, uint64_t addr, size_t len, const uint8_t *state,
			  void *buf)
{
	struct recorder *r = m->ctx;
	int err = r->inner->read_pages(r->inner, addr, len, state, buf);

	for (size_t i = 0; !err && i < len / PS; i++) {
		struct page *p;

		if (!(state[i] & HF_PAGE_DATA))
			continue;
		p = page_at(r, addr + i * PS);
		if (!p) {
			r->err = -ENOMEM;
			break;
		}
		keep_data(r, p, (const uint8_t *)buf + i * PS);
	}
	return err;
}

static int rec_pages(struct hf_mem *m, uint64_t addr, size_t npages, uint8_t *state)
{
	struct recorder *r = m->ctx;
	int err = r->inner->pages(r->inner, addr, npages, state);

	for (size_t i = 0; !err && i < npages; i++) {
		struct page *p = page_at(r, addr + i * PS);

		if (!p) {
			r->err = -ENOMEM;
			break;
		}
		p->state = state[i];
		p->queried = true;
		if (state[i] & HF_PAGE_DATA)
			keep_data(r, p, NULL);
	}
	return err;
}

static struct hf_mem *tap_mem(void *ctx, struct hf_mem *mem)
{
	struct recorder *r = ctx;

	r->inner = mem;
	r->mem = (struct hf_mem){
		.ctx = r,
		.read = rec_read,
		.read_pages = rec_read_pages,
		.pages = rec_pages,
	};
	return &r->mem;
}

/* Copies the parameters: the room frees them when its census returns. */
static void tap_walked(void *ctx, const struct hf_walk_params *p, int err,
		       const struct hf_census *out)
{
	struct recorder *r = ctx;

	r->walked = true;
	r->walk_err = err;
	r->out = *out;
	r->params = *p;
	r->layout = *p->layout;
	r->params.layout = &r->layout;
	r->arenas = malloc(p->nr_arenas * sizeof(*r->arenas));
	r->vmas = malloc((p->nr_vmas ? p->nr_vmas : 1) * sizeof(*r->vmas));
	if (!r->arenas || !r->vmas) {
		r->err = -ENOMEM;
		return;
	}
	memcpy(r->arenas, p->arenas, p->nr_arenas * sizeof(*r->arenas));
	memcpy(r->vmas, p->vmas, p->nr_vmas * sizeof(*r->vmas));
	r->params.arenas = r->arenas;
	r->params.vmas = r->vmas;
	/* The recorder cannot record the room's key test: the image says the key. */
	r->params.key_probe = NULL;
	r->params.key_ctx = NULL;
	r->params.copy_begin = NULL;
	r->params.copy_end = NULL;
	r->params.copy_ctx = NULL;
	r->params.sites = NULL;
}

static int write_image(const struct recorder *r, const char *path)
{
	struct hf_image_page *pages = calloc(r->nr_pages ? r->nr_pages : 1, sizeof(*pages));
	FILE *f = NULL;
	int err;

	if (!pages)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr_pages; i++) {
		const struct page *p = &r->pages[i];

		/* A page only read held data; a page without data reads as zeros. */
		pages[i].addr = p->addr;
		pages[i].state = p->queried ? p->state : HF_PAGE_DATA | HF_PAGE_RESIDENT;
		pages[i].data = p->data;
		if (!p->data)
			pages[i].state = 0;
	}
	f = fopen(path, "we");
	if (!f) {
		err = -errno;
		goto cleanup;
	}
	err = hf_heap_image_write(f, &r->params, &r->out, pages, r->nr_pages);
	if (fclose(f) != 0 && !err)
		err = -errno;
	if (err)
		unlink(path);
cleanup:
	free(pages);
	return err;
}

int main(int argc, char **argv)
{
	struct recorder r = {0};
	struct hf_census_tap tap = {.ctx = &r, .mem = tap_mem, .walked = tap_walked};
	struct hf_alloc_target target;
	const struct hf_room *room;
	struct hf_census out;
	void *cache = NULL;
	char why[256] = "", *end;
	long pid;
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: census_capture PID OUT.img\n");
		return 2;
	}
	errno = 0;
	pid = strtol(argv[1], &end, 10);
	if (errno || end == argv[1] || *end || pid <= 0) {
		fprintf(stderr, "census_capture: %s is not a PID\n", argv[1]);
		return 2;
	}
	if (sysconf(_SC_PAGESIZE) != PS) {
		fprintf(stderr, "census_capture: heap images need %u-byte pages\n", PS);
		return 1;
	}
	err = hf_alloc_target_find((pid_t)pid, &target, why, sizeof(why));
	if (err) {
		fprintf(stderr, "census_capture: failed to find malloc in %ld: %s\n", pid, why);
		return 1;
	}
	room = hf_room_of(target.kind);
	if (!room->census) {
		fprintf(stderr, "census_capture: no census: %s\n", room->census_unavailable);
		return 1;
	}
	hf_census_init(&out);
	err = room->census(
		&(struct hf_census_job){.pid = (pid_t)pid, .target = &target, .tap = &tap}, &cache,
		&out, NULL);
	room->census_forget(cache);
	if (!err && r.walked)
		err = r.walk_err ? r.walk_err : r.err;
	if (err || !r.walked) {
		fprintf(stderr, "census_capture: the census of %ld did not walk its heap: %s\n",
			pid, err ? strerror(-err) : out.reason);
		err = err ? err : -EIO;
		goto cleanup;
	}
	err = write_image(&r, argv[2]);
	if (err) {
		fprintf(stderr, "census_capture: failed to write %s: %s\n", argv[2],
			strerror(-err));
		goto cleanup;
	}
	printf("%s: %s, %s, %u arenas (%u partial), %zu pages; in use %" PRIu64 " bytes in %" PRIu64
	       " chunks, free %" PRIu64 " bytes in %" PRIu64 " chunks%s%s\n",
	       argv[2], r.layout.name, hf_census_state_name(r.out.state), r.out.nr_arenas,
	       r.out.nr_partial, r.nr_pages, r.out.total.in_use.bytes, r.out.total.in_use.chunks,
	       r.out.total.free.bytes, r.out.total.free.chunks, r.out.reason[0] ? ": " : "",
	       r.out.reason);
cleanup:
	for (size_t i = 0; i < r.nr_pages; i++)
		free(r.pages[i].data);
	free(r.pages);
	free(r.arenas);
	free(r.vmas);
	return err ? 1 : 0;
}
