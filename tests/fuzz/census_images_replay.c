// SPDX-License-Identifier: MIT
/*
 * census_images_replay - census_images_replay DIR: every heap image in DIR
 * (the fuzzer's seed corpus, tests/fuzz/census/NAME.img, captured from
 * real processes by census_capture) walked again by the real walker gives
 * exactly the verdict and totals the walk gave the live process; and the
 * parser refuses images cut short, padded, of another version or page size.
 * An image named crash-*.img is an input the fuzzer found the walker
 * failing on, kept once fixed: its verdict is whatever the mutation left, so
 * only its walk (under ASan and UBSan in the sanitizer build) and heap map
 * are checked.
 *
 * A change in how the walker classifies a chunk or a page shows here as a
 * total that moved: if the change is meant, capture the corpus again
 * (tests/fuzz/capture_corpus.sh) and say why in the commit.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "heap_image.h"
#include "heap_walk.h"

#define MAX_IMAGES 64
#define MAX_IMAGE  (64u << 20)

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n <= MAX_IMAGE &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* The heap map holds every complete arena's bytes, neither more nor fewer. */
static void check_heapmap(const char *name, const struct hf_census *c,
			  const struct hf_census_detail *d)
{
	uint64_t in_use = 0, free_b = 0, resident = 0;

	for (size_t i = 0; i < d->nr_regions; i++) {
		for (uint32_t k = 0; k < d->regions[i].nr_cells; k++) {
			in_use += d->regions[i].cells[k].in_use;
			free_b += d->regions[i].cells[k].free;
			resident += d->regions[i].cells[k].resident;
		}
	}
	CHECK_MSG(in_use == c->total.in_use.bytes, "%s: heap map in use", name);
	CHECK_MSG(free_b == c->total.free.bytes, "%s: heap map free", name);
	CHECK_MSG(resident == c->total.resident_bytes, "%s: heap map resident", name);
}

/*
 * Pinning attribution over the image's heap: with a block at every chunk's
 * address no in-use chunk is "(before attach)"; with one in three some are;
 * either way the credits add up exactly to the census's pinned free bytes.
 */
static void check_attribution(const char *name, struct hf_heap_image *img, struct hf_mem *mem,
			      const struct hf_census_totals *want)
{
	for (unsigned every = 1; every <= 3; every += 2) {
		struct hf_census_sites *s = NULL;
		struct hf_census out;
		uint64_t sum;
		int err = hf_heap_image_sites(img, every, 7, &s);

		CHECK_MSG(err == 0, "%s: no blocks", name);
		if (err)
			return;
		hf_census_init(&out);
		img->params.sites = s;
		img->params.want_heapmap = false;
		err = hf_heap_walk(mem, &img->params, &out, NULL);
		img->params.sites = NULL;
		CHECK_MSG(err == 0, "%s: the walk with sites failed", name);
		sum = s->before_pinned + s->caches_pinned;
		for (size_t k = 0; k < s->nr_sites; k++)
			sum += s->pinned[k];
		CHECK_EQ_U64(out.total.pinned_free_bytes, want->pinned_free_bytes);
		CHECK_EQ_U64(sum, want->pinned_free_bytes);
		CHECK(s->before_bytes <= want->in_use.bytes);
		if (every == 1) {
			CHECK_EQ_U64(s->before_chunks, 0);
			CHECK_EQ_U64(s->before_pinned, 0);
		}
		printf("%s: one block in %u: pinned free %" PRIu64 " = sites + before attach %" PRIu64
		       " + caches %" PRIu64 "\n",
		       name, every, want->pinned_free_bytes, s->before_pinned, s->caches_pinned);
		hf_census_sites_free(s);
	}
}

static void replay(const char *name, const unsigned char *data, size_t len)
{
	const struct hf_census_totals *w, *g;
	struct hf_census_detail *detail = NULL;
	struct hf_heap_image img;
	struct hf_census out;
	struct hf_mem mem;
	int err;

	err = hf_heap_image_parse(data, len, &img);
	CHECK_MSG(err == 0, "%s does not parse: %s", name, strerror(-err));
	if (err)
		return;
	hf_census_init(&out);
	img.params.want_heapmap = true;
	hf_mem_image_init(&mem, &img.mem);
	err = hf_heap_walk(&mem, &img.params, &out, &detail);
	CHECK_MSG(err == 0, "%s: the walk failed: %s", name, strerror(-err));
	w = &out.total;
	if (strncmp(name, "crash-", 6) == 0)
		goto done;
	g = &img.result.total;
	CHECK_MSG(out.state == img.result.state, "%s: %s, captured %s", name,
		  hf_census_state_name(out.state), hf_census_state_name(img.result.state));
	CHECK_STR_EQ(out.reason, img.result.reason);
	CHECK_EQ_U64(out.nr_arenas, img.result.nr_arenas);
	CHECK_EQ_U64(out.nr_partial, img.result.nr_partial);
	CHECK_EQ_U64(w->system_bytes, g->system_bytes);
	CHECK_EQ_U64(w->in_use.bytes, g->in_use.bytes);
	CHECK_EQ_U64(w->in_use.chunks, g->in_use.chunks);
	CHECK_EQ_U64(w->free.bytes, g->free.bytes);
	CHECK_EQ_U64(w->free.chunks, g->free.chunks);
	CHECK_EQ_U64(w->free_largest_bytes, g->free_largest_bytes);
	CHECK_EQ_U64(w->bins.bytes, g->bins.bytes);
	CHECK_EQ_U64(w->bins.chunks, g->bins.chunks);
	CHECK_EQ_U64(w->fastbins.bytes, g->fastbins.bytes);
	CHECK_EQ_U64(w->fastbins.chunks, g->fastbins.chunks);
	CHECK_EQ_U64(w->tcache.bytes, g->tcache.bytes);
	CHECK_EQ_U64(w->tcache.chunks, g->tcache.chunks);
	CHECK_EQ_U64(w->top_bytes, g->top_bytes);
	CHECK_EQ_U64(w->tops, g->tops);
	CHECK_EQ_U64(w->largest_any_bytes, g->largest_any_bytes);
	CHECK_EQ_U64(w->resident_bytes, g->resident_bytes);
	CHECK_EQ_U64(w->pinned_bytes, g->pinned_bytes);
	CHECK_EQ_U64(w->pinned_free_bytes, g->pinned_free_bytes);
	CHECK_EQ_U64(w->releasable_bytes, g->releasable_bytes);
	CHECK_EQ_U64(w->free_resident_bytes, g->free_resident_bytes);
	CHECK_EQ_U64(w->releasable_top_bytes, g->releasable_top_bytes);
	CHECK_EQ_U64(w->pinned_in_use_bytes, g->pinned_in_use_bytes);
	CHECK_MSG(hf_heap_image_sizes_add_up(w), "%s: the free-chunk sizes do not add up", name);
	check_attribution(name, &img, &mem, w);
done:
	if (detail)
		check_heapmap(name, &out, detail);
	printf("%s: %s, %u arenas (%u partial), in use %" PRIu64 " bytes, free %" PRIu64 " bytes\n",
	       name, hf_census_state_name(out.state), out.nr_arenas, out.nr_partial,
	       w->in_use.bytes, w->free.bytes);
	hf_census_detail_put(detail);
	hf_heap_image_free(&img);
}

/* Whether the parser takes data with one byte at off set to v (or cut to len). */
static int parse_changed(const unsigned char *data, size_t len, size_t off, unsigned char v)
{
	unsigned char *copy = malloc(len ? len : 1);
	struct hf_heap_image img;
	int err;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	if (off < len)
		copy[off] = v;
	err = hf_heap_image_parse(copy, len, &img);
	if (!err)
		hf_heap_image_free(&img);
	free(copy);
	return err;
}

static void check_strict(const unsigned char *data, size_t len)
{
	unsigned char *longer = malloc(len + 1);

	CHECK(parse_changed(data, len, len, 0) == 0);
	CHECK(parse_changed(data, len - 1, len, 0) == -EINVAL);
	CHECK(parse_changed(data, 100, len, 0) == -EINVAL);
	CHECK(parse_changed(data, len, 0, 'X') == -EINVAL);   /* the magic */
	CHECK(parse_changed(data, len, 8, 2) == -EINVAL);     /* the version */
	CHECK(parse_changed(data, len, 17, 0x20) == -EINVAL); /* 8192-byte pages */
	CHECK(parse_changed(data, len, 75, 1) == -EINVAL);    /* 2^24 + n arenas */
	if (longer) {
		memcpy(longer, data, len);
		longer[len] = 0;
		CHECK(parse_changed(longer, len + 1, len + 1, 0) == -EINVAL);
		free(longer);
	}
}

int main(int argc, char **argv)
{
	char *names[MAX_IMAGES];
	size_t n = 0;
	struct dirent *e;
	DIR *dir;

	if (argc != 2) {
		fprintf(stderr, "usage: census_images_replay DIR\n");
		return 2;
	}
	dir = opendir(argv[1]);
	if (!dir) {
		fprintf(stderr, "census_images_replay: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((e = readdir(dir)) && n < MAX_IMAGES) {
		size_t l = strlen(e->d_name);

		char *name;

		if (l <= 4 || strcmp(e->d_name + l - 4, ".img") != 0)
			continue;
		name = strdup(e->d_name);
		if (name)
			names[n++] = name;
	}
	closedir(dir);
	qsort(names, n, sizeof(names[0]), cmp_name);
	/* The corpus: glibc's seed incident, thread caches, a scribbled heap, libptm. */
	CHECK_MSG(n >= 4, "only %zu images in %s", n, argv[1]);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		unsigned char *data;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
		data = slurp(path, &len);
		CHECK_MSG(data != NULL, "%s cannot be read", path);
		if (data) {
			replay(names[i], data, len);
			if (i == 0)
				check_strict(data, len);
		}
		free(data);
		free(names[i]);
	}
	return hf_test_done();
}
