// SPDX-License-Identifier: MIT
/*
 * sites.c - a traced process's allocation sites (sites.h).
 *
 * Frames: frame 0 of a site is the allocation call's return address, which
 * the return probe read as its instruction pointer: it is exact whatever the
 * program was built with.  The frames above it come from the kernel's
 * frame-pointer walk, which in code built without frame pointers follows
 * whatever the rbp register holds.  So each of them must be a return
 * address: the bytes before it in the process must end with a call
 * instruction.  The first frame that fails ends the stack: no frame is ever
 * invented, at the price of losing the true frames above a function that
 * keeps no frame pointer.
 */
#include "sites.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "return_address.h"
#include "snapshot.h"
#include "symbolize.h"
#include "tracer.h"

/* The longest call instruction: REX + ff + modrm + SIB + disp32. */
#define MAX_CALL_LEN HF_MAX_CALL_LEN

static const char before_attach[] = "(before attach)";
static const char allocator_caches[] = "(allocator caches)";

/*
 * How many of frames[0..n) stand: frame 0 always, then each while the bytes
 * before it in the process end with a call (one process_vm_readv for all).
 */
static size_t valid_frames(pid_t pid, const uint64_t *frames, size_t n)
{
	uint8_t code[HFB_MAX_STACK_DEPTH][MAX_CALL_LEN];
	struct iovec local[HFB_MAX_STACK_DEPTH], remote[HFB_MAX_STACK_DEPTH];
	size_t k;
	ssize_t got;

	if (n <= 1)
		return n;
	if (n > HFB_MAX_STACK_DEPTH)
		n = HFB_MAX_STACK_DEPTH;
	for (k = 1; k < n; k++) {
		if (frames[k] < MAX_CALL_LEN)
			break;
		local[k - 1] = (struct iovec){.iov_base = code[k], .iov_len = MAX_CALL_LEN};
		remote[k - 1] = (struct iovec){.iov_base = (void *)(uintptr_t)(frames[k] - MAX_CALL_LEN),
					       .iov_len = MAX_CALL_LEN};
	}
	n = k;
	/* A partial read stops at the first piece that failed: the frames after it go too. */
	got = process_vm_readv(pid, local, (unsigned long)(n - 1), remote, (unsigned long)(n - 1), 0);
	if (got < 0)
		return 1;
	for (k = 1; k < n; k++) {
		if ((size_t)got < k * MAX_CALL_LEN || !hf_follows_call(code[k], MAX_CALL_LEN))
			break;
	}
	return k;
}

static uint64_t site_id(const uint64_t *frames, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		for (int b = 0; b < 64; b += 8) {
			h ^= (frames[i] >> b) & 0xff;
			h *= 0x100000001b3ull;
		}
	}
	/* JSON numbers are exact to 2^53; the small ids are the two labelled sites. */
	h &= (1ull << 53) - 1;
	return h < 16 ? h + 16 : h;
}

static double monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80		 ? 1
		     : (s[0] >> 5) == 6	 ? 2
		     : (s[0] >> 4) == 14 ? 3
		     : (s[0] >> 3) == 30 ? 4
					 : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * A copy of a string the target supplied (a mapped file's name, a symbol,
 * a source file), valid UTF-8: JSON, Prometheus labels and the doctor's
 * sentences all need it, and a file may be named in any bytes.  Each byte
 * that starts no valid sequence becomes '?'.
 */
static char *utf8_dup(const char *in)
{
	size_t n = strlen(in);
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_len((const unsigned char *)in + i, n - i);

		if (!len) {
			out[i++] = '?';
			continue;
		}
		memcpy(out + i, in + i, len);
		i += len;
	}
	out[n] = '\0';
	return out;
}

/* Cuts a valid UTF-8 string that snprintf may have cut inside a character. */
static void utf8_trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (i < n) {
		size_t len = utf8_len((const unsigned char *)s + i, n - i);

		if (!len)
			break;
		i += len;
	}
	s[i] = '\0';
}

static void free_frames(struct hf_site *s)
{
	for (size_t i = 0; i < s->nr_frames; i++) {
		free(s->frames[i].object);
		free(s->frames[i].function);
		free(s->frames[i].file);
	}
	free(s->frames);
	s->frames = NULL;
	s->nr_frames = 0;
}

void hf_sites_free(struct hf_sites *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free_frames(&s->sites[i]);
	free(s->sites);
	free(s);
}

/* Fills site's frames from addresses, symbolised where sym can. */
static int set_frames(struct hf_site *site, pid_t pid, struct hf_symbolizer *sym,
		      const uint64_t *addrs, size_t n)
{
	struct hf_frame *syms = NULL;

	site->frames = calloc(n ? n : 1, sizeof(*site->frames));
	if (!site->frames)
		return -ENOMEM;
	site->nr_frames = n;
	/* Every frame is a return address, frame 0 included: symbols of the call before it. */
	if (sym && n) {
		syms = calloc(n, sizeof(*syms));
		if (syms && hf_symbolize(sym, pid, addrs, n, 0, syms) != 0) {
			free(syms);
			syms = NULL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct hf_site_frame *f = &site->frames[i];

		f->address = addrs[i];
		f->object = utf8_dup(syms && syms[i].object ? syms[i].object : "");
		f->offset = syms ? syms[i].offset : 0;
		f->function = syms && syms[i].function ? utf8_dup(syms[i].function) : NULL;
		f->file = syms && syms[i].file ? utf8_dup(syms[i].file) : NULL;
		f->line = syms ? syms[i].line : 0;
		if (!f->object || (syms && syms[i].function && !f->function) ||
		    (syms && syms[i].file && !f->file)) {
			free(syms);
			return -ENOMEM;
		}
	}
	free(syms);
	return 0;
}

/* The pinned bytes the census credited to the site (stack_id, ret), or HF_UNKNOWN. */
static uint64_t pinned_of(const struct hf_census_sites *cs, int stack_id, uint64_t ret)
{
	/* A site the census saw no live block of pins nothing. */
	return cs ? hf_census_sites_pinned(cs, stack_id, ret) : HF_UNKNOWN;
}

static int by_site_key(const void *a, const void *b)
{
	const struct hf_live_block *x = a, *y = b;

	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	return x->ret < y->ret ? -1 : x->ret > y->ret;
}

/* The oldest live block's birth (ns, monotonic) of each site, from the live blocks. */
static double oldest_birth(const struct hf_live_block *by_key, size_t n, int stack_id, uint64_t ret)
{
	size_t lo = 0, hi = n;
	struct hf_live_block want = {.stack_id = stack_id, .ret = ret};
	double oldest = NAN;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (by_site_key(&by_key[mid], &want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && by_site_key(&by_key[lo], &want) == 0; lo++)
		if (isnan(oldest) || (double)by_key[lo].born_ns < oldest)
			oldest = (double)by_key[lo].born_ns;
	return oldest;
}

static uint64_t sum_known(uint64_t a, uint64_t b)
{
	return a == HF_UNKNOWN || b == HF_UNKNOWN ? HF_UNKNOWN : a + b;
}

static int by_id(const void *a, const void *b)
{
	const struct hf_site *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Merges the sites whose validated frames are the same.  The kernel keys a
 * stack by every frame it walked, so in code without frame pointers one call
 * site can come with several stacks that differ only in the frames
 * validation drops; a site is its validated frames.
 */
static void merge_same(struct hf_sites *s)
{
	size_t out = 0;

	if (s->n < 2)
		return;
	qsort(s->sites, s->n, sizeof(*s->sites), by_id);
	for (size_t i = 0; i < s->n; i++) {
		struct hf_site *a = &s->sites[out - (out > 0)], *b = &s->sites[i];

		if (out && a->id == b->id && !a->label && !b->label) {
			a->requested_bytes = sum_known(a->requested_bytes, b->requested_bytes);
			a->live_bytes = sum_known(a->live_bytes, b->live_bytes);
			a->live_allocations = sum_known(a->live_allocations, b->live_allocations);
			a->allocations = sum_known(a->allocations, b->allocations);
			a->frees = sum_known(a->frees, b->frees);
			a->pinned_free_bytes = sum_known(a->pinned_free_bytes, b->pinned_free_bytes);
			if (isnan(a->oldest_age_seconds) ||
			    b->oldest_age_seconds > a->oldest_age_seconds)
				a->oldest_age_seconds = b->oldest_age_seconds;
			free_frames(b);
			continue;
		}
		if (out != i)
			s->sites[out] = *b;
		out++;
	}
	s->n = out;
}

/* A site's validated frames (frame 0 always) and its id. */
static size_t site_frames(struct hf_tracer *t, pid_t pid, const struct hf_site_raw *r,
			  uint64_t *frames, uint64_t *id)
{
	size_t nf = 0;

	if (r->key.stack_id < 0 ||
	    hf_tracer_stack(t, r->key.stack_id, frames, HFB_MAX_STACK_DEPTH, &nf) != 0 || !nf ||
	    frames[0] != r->key.ret) {
		frames[0] = r->key.ret;
		nf = 1;
	}
	nf = valid_frames(pid, frames, nf);
	*id = site_id(frames, nf);
	return nf;
}

int hf_sites_build(struct hf_tracer *t, pid_t pid, const struct hf_census_detail *d,
		   struct hf_symbolizer *sym, struct hf_sites **out)
{
	const struct hf_census_sites *cs = d ? d->sites : NULL;
	struct hf_site_raw *raw = NULL;
	struct hf_live_block *blocks = NULL;
	struct hf_sites *s = NULL;
	uint64_t frames[HFB_MAX_STACK_DEPTH];
	size_t nraw = 0, nblocks = 0;
	double now = monotonic_ns();
	int err;

	*out = NULL;
	err = hf_tracer_sites(t, pid, &raw, &nraw);
	if (!err)
		err = hf_tracer_live_blocks(t, pid, &blocks, &nblocks);
	if (err)
		goto cleanup;
	if (nblocks)
		qsort(blocks, nblocks, sizeof(*blocks), by_site_key);
	s = calloc(1, sizeof(*s));
	if (!s || !(s->sites = calloc(nraw + 2, sizeof(*s->sites)))) {
		err = -ENOMEM;
		goto cleanup;
	}
	s->pid = pid;
	s->census_at = cs ? d->at : NAN;
	s->total_pinned_free_bytes = cs ? 0 : HF_UNKNOWN;
	for (size_t i = 0; i < nraw; i++) {
		const struct hf_site_raw *r = &raw[i];
		struct hf_site *site = &s->sites[s->n];
		size_t nf;
		double born;

		/* A site whose blocks were all freed before they were counted holds nothing. */
		if (!r->val.allocs && r->val.live_count <= 0)
			continue;
		nf = site_frames(t, pid, r, frames, &site->id);
		site->requested_bytes = r->val.live_requested > 0 ? (uint64_t)r->val.live_requested : 0;
		site->live_bytes = r->val.live_allocated > 0 ? (uint64_t)r->val.live_allocated : 0;
		site->live_allocations = r->val.live_count > 0 ? (uint64_t)r->val.live_count : 0;
		site->allocations = r->val.allocs;
		site->frees = r->val.frees;
		site->pinned_free_bytes = pinned_of(cs, r->key.stack_id, r->key.ret);
		born = oldest_birth(blocks, nblocks, r->key.stack_id, r->key.ret);
		site->oldest_age_seconds = isnan(born) ? NAN : fmax(0, (now - born) / 1e9);
		err = set_frames(site, pid, sym, frames, nf);
		s->n++;
		if (err)
			goto cleanup;
		s->total_live_bytes += site->live_bytes;
		if (cs)
			s->total_pinned_free_bytes += site->pinned_free_bytes;
	}
	if (cs) {
		struct hf_site *b = &s->sites[s->n++], *c = &s->sites[s->n++];

		*b = (struct hf_site){
			.id = HF_SITE_ID_BEFORE_ATTACH,
			.label = before_attach,
			.requested_bytes = HF_UNKNOWN,
			.live_bytes = cs->before_bytes,
			.live_allocations = cs->before_chunks,
			.allocations = HF_UNKNOWN,
			.frees = HF_UNKNOWN,
			.pinned_free_bytes = cs->before_pinned,
			.oldest_age_seconds = NAN,
		};
		*c = (struct hf_site){
			.id = HF_SITE_ID_ALLOCATOR_CACHES,
			.label = allocator_caches,
			.requested_bytes = HF_UNKNOWN,
			.allocations = HF_UNKNOWN,
			.frees = HF_UNKNOWN,
			.pinned_free_bytes = cs->caches_pinned,
			.oldest_age_seconds = NAN,
		};
		s->total_live_bytes += b->live_bytes;
		s->total_pinned_free_bytes += b->pinned_free_bytes + c->pinned_free_bytes;
	}
	merge_same(s);
	*out = s;
	s = NULL;
cleanup:
	hf_sites_free(s);
	free(raw);
	free(blocks);
	return err;
}

/* "function", else "object-basename+0xoffset", else the address. */
static void frame_name(const struct hf_site_frame *f, char *name, size_t name_len, char *where,
		       size_t where_len)
{
	const char *base = f->object && f->object[0] ? strrchr(f->object, '/') : NULL;

	base = base ? base + 1 : f->object;
	if (f->function)
		snprintf(name, name_len, "%s", f->function);
	else if (base && base[0])
		snprintf(name, name_len, "%s+0x%llx", base, (unsigned long long)f->offset);
	else
		snprintf(name, name_len, "0x%llx", (unsigned long long)f->address);
	if (base && base[0] && f->file) {
		const char *file = strrchr(f->file, '/');

		snprintf(where, where_len, "%s, %s:%u", base, file ? file + 1 : f->file, f->line);
	} else {
		snprintf(where, where_len, "%s", base ? base : "");
	}
	utf8_trim(name);
	utf8_trim(where);
}

int hf_sites_build_sampled(pid_t pid, const struct hf_sampled_site *ss, size_t n,
			   uint64_t interval, struct hf_symbolizer *sym, struct hf_sites **out)
{
	uint64_t frames[HFB_MAX_STACK_DEPTH];
	struct hf_sites *s = calloc(1, sizeof(*s));
	int err = 0;

	*out = NULL;
	if (!s || !(s->sites = calloc(n ? n : 1, sizeof(*s->sites)))) {
		free(s);
		return -ENOMEM;
	}
	s->pid = pid;
	s->sampled = true;
	s->sample_interval = interval;
	s->census_at = NAN;
	s->total_pinned_free_bytes = HF_UNKNOWN;
	for (size_t i = 0; i < n && !err; i++) {
		const struct hf_sampled_site *x = &ss[i];
		struct hf_site *site = &s->sites[s->n];
		size_t nf = 1, k = 0;

		if (x->live_samples <= 0 && !x->samples)
			continue;
		/* The stack was walked from inside the allocator: it starts at the caller, if at all. */
		while (k < x->nr_frames && x->frames[k] != x->caller)
			k++;
		frames[0] = x->caller;
		for (k++; k < x->nr_frames && nf < HFB_MAX_STACK_DEPTH; k++)
			frames[nf++] = x->frames[k];
		nf = valid_frames(pid, frames, nf);
		*site = (struct hf_site){
			.id = site_id(frames, nf),
			.requested_bytes = x->live_weight > 0 ? (uint64_t)x->live_weight : 0,
			.live_bytes = x->live_weight > 0 ? (uint64_t)x->live_weight : 0,
			.live_allocations = x->live_blocks > 0 ? (uint64_t)x->live_blocks : 0,
			.allocations = HF_UNKNOWN,
			.frees = HF_UNKNOWN,
			.pinned_free_bytes = HF_UNKNOWN,
			.oldest_age_seconds = NAN,
		};
		err = set_frames(site, pid, sym, frames, nf);
		s->n++;
		s->total_live_bytes += site->live_bytes;
	}
	if (err) {
		hf_sites_free(s);
		return err;
	}
	merge_same(s);
	*out = s;
	return 0;
}

static uint64_t known(uint64_t v)
{
	return v == HF_UNKNOWN ? 0 : v;
}

/* Orders raw sites by pinned bytes (credited by cs), then live bytes, most first. */
struct ranked {
	const struct hf_site_raw *r;
	uint64_t pinned;
};

static int by_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	uint64_t lx = x->r->val.live_allocated > 0 ? (uint64_t)x->r->val.live_allocated : 0;
	uint64_t ly = y->r->val.live_allocated > 0 ? (uint64_t)y->r->val.live_allocated : 0;

	if (known(x->pinned) != known(y->pinned))
		return known(x->pinned) > known(y->pinned) ? -1 : 1;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return x->r->key.ret < y->r->key.ret ? -1 : x->r->key.ret > y->r->key.ret;
}

static int top_by_id(const void *a, const void *b)
{
	const struct hf_top_site *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Pinned free bytes, then live bytes, most first. */
static int top_by_rank(const void *a, const void *b)
{
	const struct hf_top_site *x = a, *y = b;

	if (known(x->pinned_free_bytes) != known(y->pinned_free_bytes))
		return known(x->pinned_free_bytes) > known(y->pinned_free_bytes) ? -1 : 1;
	if (x->live_bytes != y->live_bytes)
		return x->live_bytes > y->live_bytes ? -1 : 1;
	return top_by_id(a, b);
}

int hf_sites_top(struct hf_tracer *t, pid_t pid, const struct hf_site_raw *raw, size_t n,
		 const struct hf_census_detail *d, struct hf_symbolizer *sym,
		 struct hf_top_site *out, size_t max, size_t *nout)
{
	const struct hf_census_sites *cs = d ? d->sites : NULL;
	struct ranked *rk = calloc(n ? n : 1, sizeof(*rk));
	struct hf_top_site *cand = calloc(4 * HF_MAX_TOP_SITES, sizeof(*cand));
	uint64_t frames[HFB_MAX_STACK_DEPTH], firsts[HF_MAX_TOP_SITES];
	struct hf_site named = {0};
	size_t m = 0, k = 0;
	int err;

	*nout = 0;
	if (!rk || !cand) {
		free(rk);
		free(cand);
		return -ENOMEM;
	}
	if (max > HF_MAX_TOP_SITES)
		max = HF_MAX_TOP_SITES;
	for (size_t i = 0; i < n; i++) {
		uint64_t pinned = pinned_of(cs, raw[i].key.stack_id, raw[i].key.ret);

		if (raw[i].val.live_count > 0 || known(pinned))
			rk[m++] = (struct ranked){.r = &raw[i], .pinned = pinned};
	}
	qsort(rk, m, sizeof(*rk), by_rank);
	/*
	 * The largest stacks first; those that validate to the same frames are
	 * one site (merge_same), so a few more than asked for are looked at.
	 */
	if (m > 4 * max)
		m = 4 * max;
	for (size_t i = 0; i < m; i++) {
		const struct hf_site_raw *r = rk[i].r;
		struct hf_top_site *o = &cand[i];

		memset(o, 0, sizeof(*o));
		site_frames(t, pid, r, frames, &o->id);
		/* Frame 0 rides in a field the caller sets later, until it is named below. */
		o->base_live_bytes = frames[0];
		o->live_bytes = r->val.live_allocated > 0 ? (uint64_t)r->val.live_allocated : 0;
		o->live_allocations = r->val.live_count > 0 ? (uint64_t)r->val.live_count : 0;
		o->pinned_free_bytes = rk[i].pinned;
		o->allocations = r->val.allocs;
		o->frees = r->val.frees;
	}
	qsort(cand, m, sizeof(*cand), top_by_id);
	for (size_t i = 0; i < m; i++) {
		struct hf_top_site *a = &cand[k - (k > 0)];

		if (k && a->id == cand[i].id) {
			a->live_bytes += cand[i].live_bytes;
			a->live_allocations += cand[i].live_allocations;
			a->pinned_free_bytes = sum_known(a->pinned_free_bytes, cand[i].pinned_free_bytes);
			a->allocations += cand[i].allocations;
			a->frees += cand[i].frees;
			continue;
		}
		cand[k++] = cand[i];
	}
	qsort(cand, k, sizeof(*cand), top_by_rank);
	m = k < max ? k : max;
	for (size_t i = 0; i < m; i++) {
		out[i] = cand[i];
		firsts[i] = cand[i].base_live_bytes;
		out[i].base_live_bytes = 0;
	}
	/* Only frame 0 is named here, the allocator's caller: one symbolizer call for all. */
	err = set_frames(&named, pid, sym, firsts, m);
	for (size_t i = 0; !err && i < m; i++)
		frame_name(&named.frames[i], out[i].name, sizeof(out[i].name), out[i].where,
			   sizeof(out[i].where));
	free_frames(&named);
	free(rk);
	free(cand);
	if (!err)
		*nout = m;
	return err;
}

static int by_live(const void *a, const void *b)
{
	const struct hf_site *x = a, *y = b;

	if (x->live_bytes != y->live_bytes)
		return x->live_bytes > y->live_bytes ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int by_pinned(const void *a, const void *b)
{
	const struct hf_site *x = a, *y = b;

	if (known(x->pinned_free_bytes) != known(y->pinned_free_bytes))
		return known(x->pinned_free_bytes) > known(y->pinned_free_bytes) ? -1 : 1;
	return by_live(a, b);
}

void hf_sites_sort(struct hf_sites *s, enum hf_sites_order order)
{
	if (s->n > 1)
		qsort(s->sites, s->n, sizeof(*s->sites),
		      order == HF_SITES_BY_PINNED ? by_pinned : by_live);
}
