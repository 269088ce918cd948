// SPDX-License-Identifier: MIT
/*
 * heap_image.c - the heap image's parser and writer (heap_image.h).
 *
 * The parser is fed fuzzer input as well as captured images, so it reads
 * like a network parser: every count is capped before it sizes anything,
 * every length is checked against what is left, and anything the format
 * does not allow is refused rather than repaired.
 */
#include "heap_image.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HDR_SIZE    472
#define PAGE_HDR    16
#define REASON_OFF  96
#define TOTALS_OFF  296
#define FLAG_KEY    0x1u
#define MAX_TCACHE  (1u << 20)
#define LIBPTM_NAME "libptm (glibc 2.36's chunk layout)"

/* The bounds libptm's room accepts from its books (daemon/libptm/ptm_books.c). */
#define PTM_ARENA_MIN  2208
#define PTM_ARENA_MAX  (64u << 10)
#define PTM_STRUCT_MAX 4096

/* struct hf_census_totals, field by field, in the image's order. */
static const size_t totals_fields[] = {
	offsetof(struct hf_census_totals, system_bytes),
	offsetof(struct hf_census_totals, in_use.bytes),
	offsetof(struct hf_census_totals, in_use.chunks),
	offsetof(struct hf_census_totals, free.bytes),
	offsetof(struct hf_census_totals, free.chunks),
	offsetof(struct hf_census_totals, free_largest_bytes),
	offsetof(struct hf_census_totals, bins.bytes),
	offsetof(struct hf_census_totals, bins.chunks),
	offsetof(struct hf_census_totals, fastbins.bytes),
	offsetof(struct hf_census_totals, fastbins.chunks),
	offsetof(struct hf_census_totals, tcache.bytes),
	offsetof(struct hf_census_totals, tcache.chunks),
	offsetof(struct hf_census_totals, top_bytes),
	offsetof(struct hf_census_totals, tops),
	offsetof(struct hf_census_totals, largest_any_bytes),
	offsetof(struct hf_census_totals, resident_bytes),
	offsetof(struct hf_census_totals, pinned_bytes),
	offsetof(struct hf_census_totals, pinned_free_bytes),
	offsetof(struct hf_census_totals, releasable_bytes),
	offsetof(struct hf_census_totals, free_resident_bytes),
	offsetof(struct hf_census_totals, releasable_top_bytes),
	offsetof(struct hf_census_totals, pinned_in_use_bytes),
};
#define NR_TOTALS (sizeof(totals_fields) / sizeof(totals_fields[0]))

_Static_assert(TOTALS_OFF + NR_TOTALS * 8 == HDR_SIZE, "the header's layout");
_Static_assert(REASON_OFF + HF_CENSUS_REASON_LEN == TOTALS_OFF, "the reason's room");
/* The free-chunk size histogram is left out: hf_heap_image_sizes_add_up() checks it instead. */
_Static_assert(sizeof(struct hf_census_totals) ==
		       NR_TOTALS * 8 + sizeof(((struct hf_census_totals *)0)->free_sizes),
	       "every total but the size histogram is in the image");

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static bool valid_state(uint32_t s)
{
	return s == 0 || s == HF_PAGE_DATA || s == (HF_PAGE_DATA | HF_PAGE_RESIDENT);
}

/* The layout of kind with the numbers the header gives, if the room could have found them. */
static bool layout_from(uint32_t kind, const uint8_t *h, struct hf_ptmalloc_layout *l,
			uint32_t *segments_off)
{
	uint32_t mstate_read = le32(h + 24), arena_size = le32(h + 28);
	uint32_t heap_info = le32(h + 32), keep = le32(h + 36), seg = le32(h + 40);
	uint32_t want_read = seg + 8 > hf_layout_glibc_2_36.mstate_read
				     ? seg + 8
				     : hf_layout_glibc_2_36.mstate_read;

	*l = hf_layout_glibc_2_36;
	*segments_off = seg;
	if (kind == HF_IMAGE_GLIBC_2_36)
		return mstate_read == l->mstate_read && arena_size == l->arena_size &&
		       heap_info == l->heap_info_size && keep == l->trim_keep && seg == 0;
	if (kind != HF_IMAGE_LIBPTM)
		return false;
	/* What daemon/libptm/census.c derives from books that passed ptm_books.c's checks. */
	if (arena_size < PTM_ARENA_MIN || arena_size > PTM_ARENA_MAX || seg % 8 ||
	    seg < PTM_ARENA_MIN - 8 || seg + 8 > arena_size || heap_info < 32 ||
	    heap_info > PTM_STRUCT_MAX || heap_info % 16 || keep < 48 || keep > PTM_STRUCT_MAX ||
	    mstate_read != want_read)
		return false;
	l->name = LIBPTM_NAME;
	l->mstate_read = mstate_read;
	l->arena_size = arena_size;
	l->heap_info_size = heap_info;
	l->trim_keep = keep;
	return true;
}

static int parse_header(const uint8_t *h, struct hf_heap_image *img)
{
	struct hf_walk_params *p = &img->params;
	uint32_t flags = le32(h + 20), state = le32(h + 84);
	const char *reason = (const char *)h + REASON_OFF;

	if (memcmp(h, HF_IMAGE_MAGIC, 8) != 0 || le32(h + 8) != HF_IMAGE_VERSION ||
	    le32(h + 16) != HF_IMAGE_PAGE || (flags & ~FLAG_KEY) ||
	    !layout_from(le32(h + 12), h, &img->layout, &p->main_segments_off) ||
	    le32(h + 44) > HF_IMAGE_MAX_RETRIES || le64(h + 64) > MAX_TCACHE)
		return -EINVAL;
	if (le32(h + 72) < 1 || le32(h + 72) > HF_IMAGE_MAX_ARENAS ||
	    le32(h + 76) > HF_IMAGE_MAX_VMAS || le32(h + 80) > HF_IMAGE_MAX_PAGES)
		return -EINVAL;
	if ((state != HF_CENSUS_COMPLETE && state != HF_CENSUS_PARTIAL) ||
	    le32(h + 92) > le32(h + 88) || memchr(reason, '\0', HF_CENSUS_REASON_LEN) == NULL)
		return -EINVAL;
	p->layout = &img->layout;
	p->page_size = HF_IMAGE_PAGE;
	p->tcache_key_known = flags & FLAG_KEY;
	p->retries = le32(h + 44);
	p->sbrk_base = le64(h + 48);
	p->tcache_key = le64(h + 56);
	p->tcache_max_csize = le64(h + 64);
	p->nr_arenas = le32(h + 72);
	p->nr_vmas = le32(h + 76);

	hf_census_init(&img->result);
	img->result.state = (enum hf_census_state)state;
	img->result.nr_arenas = le32(h + 88);
	img->result.nr_partial = le32(h + 92);
	memcpy(img->result.reason, reason, HF_CENSUS_REASON_LEN);
	for (size_t i = 0; i < NR_TOTALS; i++) {
		uint64_t v = le64(h + TOTALS_OFF + 8 * i);

		memcpy((char *)&img->result.total + totals_fields[i], &v, sizeof(v));
	}
	return 0;
}

static int parse_vmas(const uint8_t *v, size_t n, struct hf_vma *out)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t start = le64(v + 16 * i), end = le64(v + 16 * i + 8);

		if (start >= end || start % HF_IMAGE_PAGE || end % HF_IMAGE_PAGE ||
		    (i && start < out[i - 1].end) || end - start > HF_IMAGE_MAX_VMA_BYTES - total)
			return -EINVAL;
		total += end - start;
		out[i].start = start;
		out[i].end = end;
	}
	return 0;
}

/* The pages, into one buffer; each run of adjacent pages becomes a segment. */
static int parse_pages(const uint8_t *at, size_t left, size_t n, struct hf_heap_image *img)
{
	uint64_t prev = 0;

	img->bytes = calloc(n ? n : 1, HF_IMAGE_PAGE);
	img->states = calloc(n ? n : 1, 1);
	img->segs = calloc(n ? n : 1, sizeof(*img->segs));
	if (!img->bytes || !img->states || !img->segs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t addr;
		uint32_t state;

		if (left < PAGE_HDR)
			return -EINVAL;
		addr = le64(at);
		state = le32(at + 8);
		if (addr % HF_IMAGE_PAGE || addr > UINT64_MAX - HF_IMAGE_PAGE ||
		    (i && addr <= prev) || !valid_state(state) || le32(at + 12) != 0)
			return -EINVAL;
		at += PAGE_HDR;
		left -= PAGE_HDR;
		if (state & HF_PAGE_DATA) {
			if (left < HF_IMAGE_PAGE)
				return -EINVAL;
			memcpy(img->bytes + i * HF_IMAGE_PAGE, at, HF_IMAGE_PAGE);
			at += HF_IMAGE_PAGE;
			left -= HF_IMAGE_PAGE;
		}
		img->states[i] = (uint8_t)state;
		if (i && addr == prev + HF_IMAGE_PAGE) {
			img->segs[img->mem.nr_segs - 1].len += HF_IMAGE_PAGE;
		} else {
			img->segs[img->mem.nr_segs++] = (struct hf_image_segment){
				.addr = addr,
				.len = HF_IMAGE_PAGE,
				.bytes = img->bytes + i * HF_IMAGE_PAGE,
				.states = img->states + i,
			};
		}
		prev = addr;
	}
	return left == 0 ? 0 : -EINVAL;
}

int hf_heap_image_parse(const void *data, size_t len, struct hf_heap_image *img)
{
	const uint8_t *d = data;
	size_t nr_pages, arenas_len, vmas_len;
	int err;

	memset(img, 0, sizeof(*img));
	if (len < HDR_SIZE)
		return -EINVAL;
	err = parse_header(d, img);
	if (err)
		return err;
	nr_pages = le32(d + 80);
	arenas_len = img->params.nr_arenas * 8;
	vmas_len = img->params.nr_vmas * 16;
	if (len - HDR_SIZE < arenas_len + vmas_len)
		return -EINVAL;
	img->arenas = calloc(img->params.nr_arenas, sizeof(*img->arenas));
	img->vmas = calloc(img->params.nr_vmas ? img->params.nr_vmas : 1, sizeof(*img->vmas));
	if (!img->arenas || !img->vmas) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < img->params.nr_arenas; i++)
		img->arenas[i] = le64(d + HDR_SIZE + 8 * i);
	err = parse_vmas(d + HDR_SIZE + arenas_len, img->params.nr_vmas, img->vmas);
	if (err)
		goto cleanup;
	err = parse_pages(d + HDR_SIZE + arenas_len + vmas_len,
			  len - HDR_SIZE - arenas_len - vmas_len, nr_pages, img);
	if (err)
		goto cleanup;
	img->params.arenas = img->arenas;
	img->params.vmas = img->vmas;
	img->mem.segs = img->segs;
	img->mem.page_size = HF_IMAGE_PAGE;
	return 0;

cleanup:
	hf_heap_image_free(img);
	return err;
}

void hf_heap_image_free(struct hf_heap_image *img)
{
	free(img->arenas);
	free(img->vmas);
	free(img->segs);
	free(img->bytes);
	free(img->states);
	memset(img, 0, sizeof(*img));
}

int hf_heap_image_sites(const struct hf_heap_image *img, unsigned every, size_t nr_sites,
			struct hf_census_sites **out)
{
	struct hf_census_sites *s = calloc(1, sizeof(*s));
	size_t cap = 0;

	*out = NULL;
	if (!s || !every || !nr_sites)
		goto fail;
	for (size_t i = 0; i < img->mem.nr_segs; i++)
		cap += (size_t)(img->mem.segs[i].len / 16 / every) + 1;
	if (cap > (4u << 20))
		goto fail;
	s->blocks = malloc(cap * sizeof(*s->blocks));
	s->ids = calloc(nr_sites, sizeof(*s->ids));
	s->pinned = calloc(nr_sites, sizeof(*s->pinned));
	if (!s->blocks || !s->ids || !s->pinned)
		goto fail;
	s->nr_sites = nr_sites;
	for (size_t k = 0; k < nr_sites; k++)
		s->ids[k] = (struct hf_census_site_id){.stack_id = (int32_t)k, .ret = 0x1000 + k};
	/* Segments come sorted and apart, so the blocks come sorted too. */
	for (size_t i = 0; i < img->mem.nr_segs; i++) {
		const struct hf_image_segment *g = &img->mem.segs[i];

		for (uint64_t a = g->addr; a + 16 <= g->addr + g->len && s->nr_blocks < cap;
		     a += 16ull * every)
			s->blocks[s->nr_blocks++] = (struct hf_census_block){
				.addr = a + 16, .site = (uint32_t)((a / 16) % nr_sites)};
	}
	*out = s;
	return 0;
fail:
	hf_census_sites_free(s);
	return -ENOMEM;
}

/* ---- the writer ---- */

static void put_header(uint8_t *h, const struct hf_walk_params *p, const struct hf_census *r,
		       size_t nr_pages)
{
	const struct hf_ptmalloc_layout *l = p->layout;

	memcpy(h, HF_IMAGE_MAGIC, 8);
	put32(h + 8, HF_IMAGE_VERSION);
	/* Only libptm keeps its main arena's regions in a list. */
	put32(h + 12, p->main_segments_off ? HF_IMAGE_LIBPTM : HF_IMAGE_GLIBC_2_36);
	put32(h + 16, (uint32_t)p->page_size);
	put32(h + 20, p->tcache_key_known ? FLAG_KEY : 0);
	put32(h + 24, l->mstate_read);
	put32(h + 28, l->arena_size);
	put32(h + 32, l->heap_info_size);
	put32(h + 36, l->trim_keep);
	put32(h + 40, p->main_segments_off);
	put32(h + 44, p->retries);
	put64(h + 48, p->sbrk_base);
	put64(h + 56, p->tcache_key);
	put64(h + 64, p->tcache_max_csize);
	put32(h + 72, (uint32_t)p->nr_arenas);
	put32(h + 76, (uint32_t)p->nr_vmas);
	put32(h + 80, (uint32_t)nr_pages);
	put32(h + 84, (uint32_t)r->state);
	put32(h + 88, r->nr_arenas);
	put32(h + 92, r->nr_partial);
	memcpy(h + REASON_OFF, r->reason, strnlen(r->reason, HF_CENSUS_REASON_LEN - 1));
	for (size_t i = 0; i < NR_TOTALS; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&r->total + totals_fields[i], sizeof(v));
		put64(h + TOTALS_OFF + 8 * i, v);
	}
}

int hf_heap_image_write(FILE *f, const struct hf_walk_params *p, const struct hf_census *result,
			const struct hf_image_page *pages, size_t nr_pages)
{
	struct hf_heap_image check;
	size_t len = HDR_SIZE + p->nr_arenas * 8 + p->nr_vmas * 16, off;
	uint8_t *buf;
	int err;

	if (p->nr_arenas > HF_IMAGE_MAX_ARENAS || p->nr_vmas > HF_IMAGE_MAX_VMAS ||
	    nr_pages > HF_IMAGE_MAX_PAGES || p->page_size != HF_IMAGE_PAGE)
		return -EINVAL;
	for (size_t i = 0; i < nr_pages; i++)
		len += PAGE_HDR + (pages[i].state & HF_PAGE_DATA ? HF_IMAGE_PAGE : 0);
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	put_header(buf, p, result, nr_pages);
	off = HDR_SIZE;
	for (size_t i = 0; i < p->nr_arenas; i++, off += 8)
		put64(buf + off, p->arenas[i]);
	for (size_t i = 0; i < p->nr_vmas; i++, off += 16) {
		put64(buf + off, p->vmas[i].start);
		put64(buf + off + 8, p->vmas[i].end);
	}
	for (size_t i = 0; i < nr_pages; i++) {
		put64(buf + off, pages[i].addr);
		put32(buf + off + 8, pages[i].state);
		off += PAGE_HDR;
		if (pages[i].state & HF_PAGE_DATA) {
			memcpy(buf + off, pages[i].data, HF_IMAGE_PAGE);
			off += HF_IMAGE_PAGE;
		}
	}
	/* What the parser refuses is not written. */
	err = hf_heap_image_parse(buf, len, &check);
	if (!err) {
		hf_heap_image_free(&check);
		if (fwrite(buf, 1, len, f) != len || fflush(f) != 0)
			err = -EIO;
	}
	free(buf);
	return err;
}

bool hf_heap_image_sizes_add_up(const struct hf_census_totals *t)
{
	uint64_t bytes = 0, chunks = 0;

	for (int i = 0; i < HF_CENSUS_SIZE_BUCKETS; i++) {
		const struct hf_census_count *b = &t->free_sizes[i];
		uint64_t lo = i ? ((uint64_t)16 << (i - 1)) + 1 : 0;
		uint64_t hi = i < HF_CENSUS_SIZE_BUCKETS - 1 ? (uint64_t)16 << i : UINT64_MAX;

		/* Each chunk's size is in [lo, hi]: so are the bucket's bytes over its chunks. */
		if (b->bytes / (b->chunks ? b->chunks : 1) < (b->chunks ? lo : 0) ||
		    (b->chunks && b->bytes / b->chunks > hi) || (!b->chunks && b->bytes))
			return false;
		bytes += b->bytes;
		chunks += b->chunks;
	}
	return bytes == t->bins.bytes + t->fastbins.bytes + t->tcache.bytes &&
	       chunks == t->bins.chunks + t->fastbins.chunks + t->tcache.chunks;
}
