// SPDX-License-Identifier: MIT
/*
 * test_web_profile.c - the allocation-site profile writers (web/profile.c).
 *
 * Without arguments (ctest test_web_profile, label unit): each pprof profile
 * is gunzipped and decoded back by the small profile.proto reader below, and
 * every field is checked against the sites it came from: the string table,
 * the sample types and default, each sample's values and its locations leaf
 * first, each location's address, mapping and line, each function's name
 * and file, each mapping's file and range; frames without a function; the
 * empty profile; deduplication over many sites; bad arguments.  The folded
 * writer's lines are checked whole: root first, values, names made safe.
 *
 * With the argument "pprof" (ctest test_web_profile_pprof, label
 * integration): the same profiles are written to files and read by the real
 * reader, `go tool pprof -raw` and `-top` (Debian package golang-go).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "profile.h"

/* ---- the sites every test starts from ---- */

static const struct hf_profile_frame f_alloc_node = {0x401136,     "/usr/bin/app", 0x1136,
						     "alloc_node", "src/list.c",   42};
static const struct hf_profile_frame f_build_list = {0x401200,     "/usr/bin/app", 0x1200,
						     "build_list", "src/list.c",   80};
static const struct hf_profile_frame f_main = {0x401050, "/usr/bin/app", 0x1050,
					       "main",   "src/main.c",   10};
static const struct hf_profile_frame f_cache_put = {
	0x401300, "/usr/bin/app", 0x1300, "Cache::put(std::string const&, int)", "src/cache.cc", 7};
/* No function name: named after its object and offset. */
static const struct hf_profile_frame f_libfoo = {
	0x7f1200001234, "/usr/lib/libfoo.so.1", 0x1234, NULL, NULL, 0};
/* Neither function nor object: named after its address, no mapping. */
static const struct hf_profile_frame f_anon = {0x7f00deadbeef, "", 0, NULL, NULL, 0};

static const struct hf_profile_frame stack0[] = {f_alloc_node, f_build_list, f_main};
static const struct hf_profile_frame stack1[] = {f_libfoo, f_build_list, f_main};
static const struct hf_profile_frame stack2[] = {f_anon, f_cache_put, f_main};

static const struct hf_profile_site sites[] = {
	{stack0, 3, .allocations = 10, .requested_bytes = 1000, .live_allocations = 4,
	 .live_bytes = 400, .pinned_free_bytes = 4096},
	{stack1, 3, .allocations = 20, .requested_bytes = 2000, .live_allocations = 5,
	 .live_bytes = 500, .pinned_free_bytes = 0},
	{stack2, 3, .allocations = 3, .requested_bytes = 300, .live_allocations = 1,
	 .live_bytes = 100, .pinned_free_bytes = 8192},
};
#define NR_SITES (sizeof(sites) / sizeof(sites[0]))

/* What each frame of the fixture must be called, written out by hand. */
static const char *expected_name(const struct hf_profile_frame *f)
{
	if (f->address == f_libfoo.address)
		return "libfoo.so.1+0x1234";
	if (f->address == f_anon.address)
		return "0x7f00deadbeef";
	return f->function;
}

#define TIME_SECONDS 1700000000.5
#define TIME_NANOS   1700000000500000000ll

/* ---- a small profile.proto reader ---- */

struct value_type {
	int64_t type, unit;
};

struct sample {
	uint64_t *locs;
	size_t nr_locs;
	int64_t *values;
	size_t nr_values;
};

struct mapping {
	uint64_t id, start, limit, offset;
	int64_t filename;
	bool has_functions, has_filenames, has_line_numbers;
};

struct line {
	uint64_t function_id;
	int64_t line;
};

struct location {
	uint64_t id, mapping_id, address;
	struct line lines[4];
	size_t nr_lines;
};

struct function {
	uint64_t id;
	int64_t name, system_name, filename;
};

struct profile {
	char **strings;
	size_t nr_strings;
	struct value_type types[8];
	size_t nr_types;
	struct sample *samples;
	size_t nr_samples;
	struct mapping *mappings;
	size_t nr_mappings;
	struct location *locations;
	size_t nr_locations;
	struct function *functions;
	size_t nr_functions;
	int64_t time_nanos, period, default_sample_type;
	struct value_type period_type;
	bool bad; /* the bytes did not decode */
};

struct reader {
	const unsigned char *p, *end;
	bool *bad;
};

static uint64_t read_varint(struct reader *r)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			break;
		v |= (uint64_t)(*r->p & 0x7f) << shift;
		if (!(*r->p++ & 0x80))
			return v;
	}
	*r->bad = true;
	return 0;
}

/* The next field's number and wire type, false at the end. */
static bool read_key(struct reader *r, uint32_t *field, uint32_t *wire)
{
	uint64_t key;

	if (r->p >= r->end || *r->bad)
		return false;
	key = read_varint(r);
	*field = (uint32_t)(key >> 3);
	*wire = (uint32_t)(key & 7);
	return !*r->bad;
}

/* A length-delimited field's bytes as a reader of their own. */
static struct reader read_len(struct reader *r)
{
	uint64_t len = read_varint(r);
	struct reader sub = {r->p, r->p, r->bad};

	if (len > (uint64_t)(r->end - r->p)) {
		*r->bad = true;
		return sub;
	}
	sub.end = r->p + len;
	r->p += len;
	return sub;
}

static void skip(struct reader *r, uint32_t wire)
{
	if (wire == 0)
		read_varint(r);
	else if (wire == 2)
		read_len(r);
	else if (wire == 1 && r->end - r->p >= 8)
		r->p += 8;
	else if (wire == 5 && r->end - r->p >= 4)
		r->p += 4;
	else
		*r->bad = true;
}

/* One element, or a packed run, of a repeated integer field. */
static void read_ints(struct reader *r, uint32_t wire, uint64_t **v, size_t *n)
{
	struct reader packed = *r;

	if (wire == 2)
		packed = read_len(r);
	else if (wire != 0)
		*r->bad = true;
	do {
		uint64_t x = read_varint(wire == 2 ? &packed : r);

		*v = realloc(*v, (*n + 1) * sizeof(**v));
		(*v)[(*n)++] = x;
	} while (wire == 2 && packed.p < packed.end && !*r->bad);
}

#define PUSH(arr, nr)                                                                              \
	(arr = realloc(arr, (nr + 1) * sizeof(*arr)), memset(&arr[nr], 0, sizeof(*arr)), &arr[nr++])

static struct value_type read_value_type(struct reader r)
{
	struct value_type vt = {0};
	uint32_t f, w;

	while (read_key(&r, &f, &w)) {
		if (f == 1 && w == 0)
			vt.type = (int64_t)read_varint(&r);
		else if (f == 2 && w == 0)
			vt.unit = (int64_t)read_varint(&r);
		else
			skip(&r, w);
	}
	return vt;
}

static void read_sample(struct reader r, struct sample *s)
{
	uint32_t f, w;

	while (read_key(&r, &f, &w)) {
		if (f == 1)
			read_ints(&r, w, &s->locs, &s->nr_locs);
		else if (f == 2)
			read_ints(&r, w, (uint64_t **)&s->values, &s->nr_values);
		else
			skip(&r, w);
	}
}

static void read_mapping(struct reader r, struct mapping *m)
{
	uint32_t f, w;

	while (read_key(&r, &f, &w)) {
		uint64_t v = w == 0 ? read_varint(&r) : 0;

		if (w != 0)
			skip(&r, w);
		else if (f == 1)
			m->id = v;
		else if (f == 2)
			m->start = v;
		else if (f == 3)
			m->limit = v;
		else if (f == 4)
			m->offset = v;
		else if (f == 5)
			m->filename = (int64_t)v;
		else if (f == 7)
			m->has_functions = v;
		else if (f == 8)
			m->has_filenames = v;
		else if (f == 9)
			m->has_line_numbers = v;
	}
}

static void read_location(struct reader r, struct location *l)
{
	uint32_t f, w;

	while (read_key(&r, &f, &w)) {
		if (f == 4 && w == 2) {
			struct reader lr = read_len(&r);
			struct line *line = &l->lines[l->nr_lines < 4 ? l->nr_lines : 3];

			l->nr_lines++;
			*line = (struct line){0};
			while (read_key(&lr, &f, &w)) {
				if (f == 1 && w == 0)
					line->function_id = read_varint(&lr);
				else if (f == 2 && w == 0)
					line->line = (int64_t)read_varint(&lr);
				else
					skip(&lr, w);
			}
		} else if (w == 0) {
			uint64_t v = read_varint(&r);

			if (f == 1)
				l->id = v;
			else if (f == 2)
				l->mapping_id = v;
			else if (f == 3)
				l->address = v;
		} else {
			skip(&r, w);
		}
	}
}

static void read_function(struct reader r, struct function *fn)
{
	uint32_t f, w;

	while (read_key(&r, &f, &w)) {
		uint64_t v = w == 0 ? read_varint(&r) : 0;

		if (w != 0)
			skip(&r, w);
		else if (f == 1)
			fn->id = v;
		else if (f == 2)
			fn->name = (int64_t)v;
		else if (f == 3)
			fn->system_name = (int64_t)v;
		else if (f == 4)
			fn->filename = (int64_t)v;
	}
}

static unsigned char *gunzip(const unsigned char *in, size_t len, size_t *out_len)
{
	z_stream z = {0};
	size_t cap = 4096, n = 0;
	unsigned char *out = malloc(cap);
	int rc;

	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return NULL;
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	do {
		if (n == cap)
			out = realloc(out, cap *= 2);
		z.next_out = out + n;
		z.avail_out = (uInt)(cap - n);
		rc = inflate(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
	} while (rc == Z_OK);
	inflateEnd(&z);
	if (rc != Z_STREAM_END || z.avail_in != 0) {
		free(out);
		return NULL;
	}
	*out_len = n;
	return out;
}

static void decode(const unsigned char *gz, size_t gz_len, struct profile *p)
{
	size_t len = 0;
	unsigned char *raw = gunzip(gz, gz_len, &len);
	struct reader r = {raw, raw + len, &p->bad};
	uint32_t f, w;

	memset(p, 0, sizeof(*p));
	if (!raw) {
		p->bad = true;
		return;
	}
	while (read_key(&r, &f, &w)) {
		if (f == 1 && w == 2) {
			struct value_type vt = read_value_type(read_len(&r));

			if (p->nr_types < 8)
				p->types[p->nr_types] = vt;
			p->nr_types++;
		} else if (f == 2 && w == 2) {
			read_sample(read_len(&r), PUSH(p->samples, p->nr_samples));
		} else if (f == 3 && w == 2) {
			read_mapping(read_len(&r), PUSH(p->mappings, p->nr_mappings));
		} else if (f == 4 && w == 2) {
			read_location(read_len(&r), PUSH(p->locations, p->nr_locations));
		} else if (f == 5 && w == 2) {
			read_function(read_len(&r), PUSH(p->functions, p->nr_functions));
		} else if (f == 6 && w == 2) {
			struct reader s = read_len(&r);

			*PUSH(p->strings, p->nr_strings) =
				strndup((const char *)s.p, (size_t)(s.end - s.p));
		} else if (f == 9 && w == 0) {
			p->time_nanos = (int64_t)read_varint(&r);
		} else if (f == 11 && w == 2) {
			p->period_type = read_value_type(read_len(&r));
		} else if (f == 12 && w == 0) {
			p->period = (int64_t)read_varint(&r);
		} else if (f == 14 && w == 0) {
			p->default_sample_type = (int64_t)read_varint(&r);
		} else {
			skip(&r, w);
		}
	}
	free(raw);
}

static void profile_free(struct profile *p)
{
	for (size_t i = 0; i < p->nr_strings; i++)
		free(p->strings[i]);
	for (size_t i = 0; i < p->nr_samples; i++) {
		free(p->samples[i].locs);
		free(p->samples[i].values);
	}
	free(p->strings);
	free(p->samples);
	free(p->mappings);
	free(p->locations);
	free(p->functions);
}

/* String i of the table, or "<bad>" (which no check expects) when out of range. */
static const char *str(const struct profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->nr_strings ? p->strings[i] : "<bad>";
}

static const struct location *find_location(const struct profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->nr_locations; i++)
		if (p->locations[i].id == id)
			return &p->locations[i];
	return NULL;
}

static const struct function *find_function(const struct profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->nr_functions; i++)
		if (p->functions[i].id == id)
			return &p->functions[i];
	return NULL;
}

static const struct mapping *find_mapping(const struct profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->nr_mappings; i++)
		if (p->mappings[i].id == id)
			return &p->mappings[i];
	return NULL;
}

static void make_pprof(const struct hf_profile_site *s, size_t n, enum hf_profile_kind kind,
		       struct profile *p)
{
	unsigned char *gz = NULL;
	size_t len = 0;

	CHECK(hf_profile_pprof(s, n, kind, TIME_SECONDS, &gz, &len) == 0);
	decode(gz, len, p);
	CHECK(!p->bad);
	free(gz);
}

static void check_types(const struct profile *p, const char *const *want, size_t n,
			const char *default_type)
{
	CHECK_EQ_U64(p->nr_types, n);
	for (size_t i = 0; i < n && i < p->nr_types && i < 8; i++) {
		char type_unit[64];

		snprintf(type_unit, sizeof(type_unit), "%s/%s", str(p, p->types[i].type),
			 str(p, p->types[i].unit));
		CHECK_STR_EQ(type_unit, want[i]);
	}
	CHECK_STR_EQ(str(p, p->default_sample_type), default_type);
}

/* Sample i against site s: its values and, leaf first, every frame. */
static void check_sample(const struct profile *p, size_t i, const struct hf_profile_site *s,
			 const uint64_t *values, size_t nr_values)
{
	const struct sample *smp;

	CHECK(i < p->nr_samples);
	if (i >= p->nr_samples)
		return;
	smp = &p->samples[i];
	CHECK_EQ_U64(smp->nr_values, nr_values);
	for (size_t v = 0; v < nr_values && v < smp->nr_values; v++)
		CHECK_EQ_U64(smp->values[v], values[v]);
	CHECK_EQ_U64(smp->nr_locs, s->nr_frames);
	for (size_t k = 0; k < s->nr_frames && k < smp->nr_locs; k++) {
		const struct hf_profile_frame *fr = &s->frames[k];
		const struct location *l = find_location(p, smp->locs[k]);
		const struct function *fn;
		const struct mapping *m;

		CHECK_MSG(l != NULL, "sample %zu frame %zu: location %" PRIu64 " missing", i, k,
			  smp->locs[k]);
		if (!l)
			continue;
		CHECK_EQ_U64(l->address, fr->address);
		CHECK_EQ_U64(l->nr_lines, 1);
		CHECK_EQ_U64(l->lines[0].line, fr->line);
		fn = find_function(p, l->lines[0].function_id);
		CHECK(fn != NULL);
		if (fn) {
			CHECK_STR_EQ(str(p, fn->name), expected_name(fr));
			CHECK_STR_EQ(str(p, fn->system_name), expected_name(fr));
			CHECK_STR_EQ(str(p, fn->filename), fr->file ? fr->file : "");
		}
		if (!fr->object || !*fr->object) {
			CHECK_EQ_U64(l->mapping_id, 0);
			continue;
		}
		m = find_mapping(p, l->mapping_id);
		CHECK_MSG(m != NULL, "location %" PRIu64 ": mapping %" PRIu64 " missing", l->id,
			  l->mapping_id);
		if (!m)
			continue;
		CHECK_STR_EQ(str(p, m->filename), fr->object);
		CHECK_MSG(m->start <= l->address && l->address < m->limit,
			  "address %#" PRIx64 " outside mapping [%#" PRIx64 ", %#" PRIx64 ")",
			  l->address, m->start, m->limit);
		/* The made-up range keeps address - offset the object's load bias. */
		CHECK_EQ_U64(m->start - m->offset, fr->address - fr->offset);
		CHECK(m->has_functions);
	}
}

/* Ids nonzero and unique, as profile.proto requires of each table. */
static void check_ids_unique(const struct profile *p)
{
	for (size_t i = 0; i < p->nr_locations; i++) {
		CHECK(p->locations[i].id != 0);
		CHECK(find_location(p, p->locations[i].id) == &p->locations[i]);
	}
	for (size_t i = 0; i < p->nr_functions; i++) {
		CHECK(p->functions[i].id != 0);
		CHECK(find_function(p, p->functions[i].id) == &p->functions[i]);
	}
	for (size_t i = 0; i < p->nr_mappings; i++) {
		CHECK(p->mappings[i].id != 0);
		CHECK(find_mapping(p, p->mappings[i].id) == &p->mappings[i]);
	}
	for (size_t i = 0; i < p->nr_strings; i++)
		for (size_t j = i + 1; j < p->nr_strings; j++)
			CHECK_MSG(strcmp(p->strings[i], p->strings[j]) != 0,
				  "string \"%s\" twice in the table", p->strings[i]);
}

/* ---- pprof ---- */

static const char *const inuse_types[] = {"alloc_objects/count", "alloc_space/bytes",
					  "inuse_objects/count", "inuse_space/bytes"};

static void test_pprof_inuse_decodes_to_every_site_field_by_field(void)
{
	struct profile p;

	make_pprof(sites, NR_SITES, HF_PROFILE_INUSE, &p);
	CHECK(p.nr_strings > 0 && strcmp(p.strings[0], "") == 0);
	check_types(&p, inuse_types, 4, "inuse_space");
	CHECK_STR_EQ(str(&p, p.period_type.type), "space");
	CHECK_STR_EQ(str(&p, p.period_type.unit), "bytes");
	CHECK_EQ_U64(p.period, 1);
	CHECK_EQ_U64(p.time_nanos, TIME_NANOS);
	CHECK_EQ_U64(p.nr_samples, NR_SITES);
	for (size_t i = 0; i < NR_SITES; i++) {
		const struct hf_profile_site *s = &sites[i];
		uint64_t want[] = {s->allocations, s->requested_bytes, s->live_allocations,
				   s->live_bytes};

		check_sample(&p, i, s, want, 4);
	}
	/* Six distinct frames; build_list and main are shared and appear once. */
	CHECK_EQ_U64(p.nr_locations, 6);
	CHECK_EQ_U64(p.nr_functions, 6);
	CHECK_EQ_U64(p.nr_mappings, 2);
	check_ids_unique(&p);
	for (size_t i = 0; i < p.nr_mappings; i++) {
		const struct mapping *m = &p.mappings[i];

		if (strcmp(str(&p, m->filename), "/usr/bin/app") == 0) {
			/* Lowest and highest address of the app's frames. */
			CHECK_EQ_U64(m->start, 0x401050);
			CHECK_EQ_U64(m->limit, 0x401301);
			CHECK_EQ_U64(m->offset, 0x1050);
			CHECK(m->has_filenames && m->has_line_numbers);
		} else {
			CHECK_STR_EQ(str(&p, m->filename), "/usr/lib/libfoo.so.1");
			CHECK_EQ_U64(m->start, 0x7f1200001234);
			CHECK_EQ_U64(m->limit, 0x7f1200001235);
			CHECK(!m->has_filenames && !m->has_line_numbers);
		}
	}
	profile_free(&p);
}

static void test_pprof_names_frames_without_function_after_object_or_address(void)
{
	const struct hf_profile_frame stack[] = {f_libfoo, f_anon};
	const struct hf_profile_site site = {stack, 2, .allocations = 1, .live_allocations = 1,
					     .live_bytes = 16};
	struct profile p;
	const struct location *l;
	const struct function *fn;

	make_pprof(&site, 1, HF_PROFILE_INUSE, &p);
	CHECK(p.nr_samples == 1 && p.samples[0].nr_locs == 2);
	if (p.nr_samples == 1 && p.samples[0].nr_locs == 2) {
		l = find_location(&p, p.samples[0].locs[0]);
		fn = l ? find_function(&p, l->lines[0].function_id) : NULL;
		CHECK(fn && strcmp(str(&p, fn->name), "libfoo.so.1+0x1234") == 0);
		CHECK(fn && fn->filename == 0);
		CHECK(l && l->lines[0].line == 0 && l->mapping_id != 0);
		l = find_location(&p, p.samples[0].locs[1]);
		fn = l ? find_function(&p, l->lines[0].function_id) : NULL;
		CHECK(fn && strcmp(str(&p, fn->name), "0x7f00deadbeef") == 0);
		CHECK(l && l->mapping_id == 0 && l->address == 0x7f00deadbeef);
	}
	CHECK_EQ_U64(p.nr_mappings, 1);
	profile_free(&p);
}

/* profile.proto wants the main binary at mapping[0]; pprof prints it as "File:". */
static void test_pprof_puts_the_main_binary_first(void)
{
	const struct hf_profile_frame stack[] = {
		{0x7ffd0000100, "[vdso]", 0x100, "__vdso_clock_gettime", NULL, 0},
		{0x7f5500029d90, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x29d90, "malloc", NULL, 0},
		{0x7f6600001010, "/usr/lib/libsolver.so", 0x1010, "solve", NULL, 0},
		f_main,
		{0x7f7700002000, "/opt/x/also.sock", 0x2000, "not_a_library", NULL, 0},
	};
	const struct hf_profile_site site = {
		stack,          5, .allocations = 1, .requested_bytes = 8, .live_allocations = 1,
		.live_bytes = 8};
	uint64_t want[] = {1, 8, 1, 8};
	struct profile p;

	make_pprof(&site, 1, HF_PROFILE_INUSE, &p);
	CHECK_EQ_U64(p.nr_mappings, 5);
	if (p.nr_mappings == 5) {
		CHECK_STR_EQ(str(&p, p.mappings[0].filename), "/usr/bin/app");
		CHECK_EQ_U64(p.mappings[0].id, 1);
		/* The others keep the order first seen. */
		CHECK_STR_EQ(str(&p, p.mappings[1].filename), "[vdso]");
		CHECK_STR_EQ(str(&p, p.mappings[2].filename),
			     "/usr/lib/x86_64-linux-gnu/libc.so.6");
		CHECK_STR_EQ(str(&p, p.mappings[3].filename), "/usr/lib/libsolver.so");
		CHECK_STR_EQ(str(&p, p.mappings[4].filename), "/opt/x/also.sock");
	}
	check_ids_unique(&p);
	check_sample(&p, 0, &site, want, 4);
	profile_free(&p);
}

static void test_pprof_leaves_alloc_space_out_when_a_site_lacks_requested_bytes(void)
{
	struct hf_profile_site s[NR_SITES];
	const char *const want[] = {"alloc_objects/count", "inuse_objects/count",
				    "inuse_space/bytes"};
	struct profile p;

	memcpy(s, sites, sizeof(s));
	s[1].requested_bytes = HF_PROFILE_UNKNOWN;
	make_pprof(s, NR_SITES, HF_PROFILE_INUSE, &p);
	check_types(&p, want, 3, "inuse_space");
	for (size_t i = 0; i < NR_SITES; i++) {
		uint64_t values[] = {s[i].allocations, s[i].live_allocations, s[i].live_bytes};

		check_sample(&p, i, &s[i], values, 3);
	}
	profile_free(&p);
}

static void test_pprof_pinned_has_pinned_free_space_as_default(void)
{
	const char *const want[] = {"inuse_space/bytes", "pinned_free_space/bytes"};
	struct profile p;

	make_pprof(sites, NR_SITES, HF_PROFILE_PINNED, &p);
	check_types(&p, want, 2, "pinned_free_space");
	CHECK_EQ_U64(p.nr_samples, NR_SITES);
	for (size_t i = 0; i < NR_SITES; i++) {
		uint64_t values[] = {sites[i].live_bytes, sites[i].pinned_free_bytes};

		check_sample(&p, i, &sites[i], values, 2);
	}
	profile_free(&p);
}

static void test_pprof_with_no_sites_is_a_valid_empty_profile(void)
{
	const char *const want[] = {"inuse_space/bytes", "pinned_free_space/bytes"};
	struct profile p;

	make_pprof(NULL, 0, HF_PROFILE_INUSE, &p);
	CHECK(p.nr_strings > 0 && strcmp(p.strings[0], "") == 0);
	check_types(&p, inuse_types, 4, "inuse_space");
	CHECK_EQ_U64(p.nr_samples + p.nr_locations + p.nr_functions + p.nr_mappings, 0);
	CHECK_STR_EQ(str(&p, p.period_type.type), "space");
	profile_free(&p);

	make_pprof(NULL, 0, HF_PROFILE_PINNED, &p);
	check_types(&p, want, 2, "pinned_free_space");
	CHECK_EQ_U64(p.nr_samples, 0);
	profile_free(&p);
}

static void test_pprof_site_without_frames_is_a_sample_without_locations(void)
{
	const struct hf_profile_site site = {NULL,
					     0,
					     .allocations = 2,
					     .requested_bytes = 64,
					     .live_allocations = 1,
					     .live_bytes = 32};
	uint64_t want[] = {2, 64, 1, 32};
	struct profile p;

	make_pprof(&site, 1, HF_PROFILE_INUSE, &p);
	check_sample(&p, 0, &site, want, 4);
	CHECK_EQ_U64(p.nr_locations, 0);
	profile_free(&p);
}

static void test_pprof_clamps_values_to_int64_and_cuts_long_names(void)
{
	static char long_name[HF_PROFILE_MAX_NAME + 100];
	struct hf_profile_frame frame = {0x1000, "/bin/x", 0x1000, long_name, NULL, 0};
	const struct hf_profile_site site = {&frame,
					     1,
					     .allocations = UINT64_MAX,
					     .requested_bytes = (uint64_t)INT64_MAX + 1,
					     .live_allocations = INT64_MAX,
					     .live_bytes = 5};
	struct profile p;
	const struct location *l;
	const struct function *fn;

	memset(long_name, 'n', sizeof(long_name) - 1);
	make_pprof(&site, 1, HF_PROFILE_INUSE, &p);
	CHECK(p.nr_samples == 1 && p.samples[0].nr_values == 4);
	if (p.nr_samples == 1 && p.samples[0].nr_values == 4) {
		CHECK_EQ_U64(p.samples[0].values[0], INT64_MAX);
		CHECK_EQ_U64(p.samples[0].values[1], INT64_MAX);
		CHECK_EQ_U64(p.samples[0].values[2], INT64_MAX);
		CHECK_EQ_U64(p.samples[0].values[3], 5);
	}
	l = p.nr_locations ? &p.locations[0] : NULL;
	fn = l ? find_function(&p, l->lines[0].function_id) : NULL;
	CHECK(fn && strlen(str(&p, fn->name)) == HF_PROFILE_MAX_NAME);
	profile_free(&p);
}

/*
 * 20000 sites of 127 frames drawn from 500 distinct frames in 3 objects:
 * the tables hold each frame once, samples still decode to their own
 * frames, and the same sites give the same bytes.
 */
static void test_pprof_dedupes_many_sites_and_is_deterministic(void)
{
	enum { NR = 20000, DEPTH = HF_PROFILE_MAX_FRAMES, POOL = 500 };
	static const char *const objects[] = {"/usr/bin/big", "/usr/lib/liba.so",
					      "/usr/lib/libb.so"};
	static char names[POOL][24];
	struct hf_profile_frame *pool = calloc(POOL, sizeof(*pool));
	struct hf_profile_frame *frames = calloc((size_t)NR * DEPTH, sizeof(*frames));
	struct hf_profile_site *s = calloc(NR, sizeof(*s));
	unsigned char *a = NULL, *b = NULL;
	size_t a_len = 0, b_len = 0;
	uint32_t seed = 12345;
	struct profile p;

	for (size_t i = 0; i < POOL; i++) {
		size_t obj = i % 3;

		pool[i].object = objects[obj];
		pool[i].offset = 0x1000 + i * 16;
		pool[i].address = (obj + 1) * 0x10000000ull + pool[i].offset;
		/* One frame in five has no function name. */
		if (i % 5) {
			snprintf(names[i], sizeof(names[i]), "fn_%zu", i);
			pool[i].function = names[i];
		}
		pool[i].line = (uint32_t)(i % 7);
	}
	for (size_t i = 0; i < NR; i++) {
		s[i].frames = &frames[i * DEPTH];
		s[i].nr_frames = 1 + i % DEPTH;
		s[i].allocations = i + 1;
		s[i].requested_bytes = (i + 1) * 32;
		s[i].live_allocations = i;
		s[i].live_bytes = i * 16;
		for (size_t k = 0; k < s[i].nr_frames; k++) {
			seed = seed * 1103515245u + 12345u;
			frames[i * DEPTH + k] = pool[(seed >> 8) % POOL];
		}
	}
	CHECK(hf_profile_pprof(s, NR, HF_PROFILE_INUSE, TIME_SECONDS, &a, &a_len) == 0);
	CHECK(hf_profile_pprof(s, NR, HF_PROFILE_INUSE, TIME_SECONDS, &b, &b_len) == 0);
	CHECK(a && b && a_len == b_len && memcmp(a, b, a_len) == 0);
	decode(a, a_len, &p);
	CHECK(!p.bad);
	CHECK_EQ_U64(p.nr_samples, NR);
	CHECK(p.nr_locations <= POOL && p.nr_locations > POOL * 9 / 10);
	CHECK_EQ_U64(p.nr_functions, p.nr_locations);
	CHECK_EQ_U64(p.nr_mappings, 3);
	check_ids_unique(&p);
	for (size_t i = 0; i < NR; i += 397) {
		uint64_t want[] = {s[i].allocations, s[i].requested_bytes, s[i].live_allocations,
				   s[i].live_bytes};
		const struct sample *smp = &p.samples[i];

		CHECK_EQ_U64(smp->nr_values, 4);
		for (size_t v = 0; v < 4 && v < smp->nr_values; v++)
			CHECK_EQ_U64(smp->values[v], want[v]);
		CHECK_EQ_U64(smp->nr_locs, s[i].nr_frames);
		for (size_t k = 0; k < smp->nr_locs && k < s[i].nr_frames; k++) {
			const struct location *l = find_location(&p, smp->locs[k]);
			const struct function *fn =
				l ? find_function(&p, l->lines[0].function_id) : NULL;
			const struct hf_profile_frame *fr = &s[i].frames[k];
			char want_name[48];

			if (fr->function)
				snprintf(want_name, sizeof(want_name), "%s", fr->function);
			else
				snprintf(want_name, sizeof(want_name), "%s+0x%" PRIx64,
					 strrchr(fr->object, '/') + 1, fr->offset);
			CHECK(l && l->address == fr->address);
			CHECK(fn && strcmp(str(&p, fn->name), want_name) == 0);
		}
	}
	profile_free(&p);
	free(a);
	free(b);
	free(s);
	free(frames);
	free(pool);
}

static void test_pprof_and_folded_reject_bad_arguments(void)
{
	struct hf_profile_frame many[HF_PROFILE_MAX_FRAMES + 1] = {0};
	struct hf_profile_site deep = {.frames = many, .nr_frames = HF_PROFILE_MAX_FRAMES + 1};
	struct hf_profile_site no_frames = {.frames = NULL, .nr_frames = 2};
	unsigned char *out = NULL;
	char *text = NULL;
	size_t len = 0;

	CHECK(hf_profile_pprof(sites, NR_SITES, HF_PROFILE_INUSE, 0, NULL, &len) == -EINVAL);
	CHECK(hf_profile_pprof(sites, NR_SITES, HF_PROFILE_INUSE, 0, &out, NULL) == -EINVAL);
	CHECK(hf_profile_pprof(NULL, 1, HF_PROFILE_INUSE, 0, &out, &len) == -EINVAL);
	CHECK(hf_profile_pprof(&no_frames, 1, HF_PROFILE_INUSE, 0, &out, &len) == -EINVAL);
	CHECK(hf_profile_pprof(sites, NR_SITES, (enum hf_profile_kind)7, 0, &out, &len) == -EINVAL);
	CHECK(hf_profile_pprof(&deep, 1, HF_PROFILE_INUSE, 0, &out, &len) == -E2BIG);
	CHECK(hf_profile_pprof(sites, (size_t)HF_PROFILE_MAX_SITES + 1, HF_PROFILE_INUSE, 0, &out,
			       &len) == -E2BIG);
	CHECK(hf_profile_folded(&deep, 1, HF_PROFILE_INUSE, &text, &len) == -E2BIG);
	CHECK(hf_profile_folded(&no_frames, 1, HF_PROFILE_PINNED, &text, &len) == -EINVAL);
	CHECK(hf_profile_folded(sites, NR_SITES, HF_PROFILE_INUSE, NULL, &len) == -EINVAL);
	CHECK(out == NULL && text == NULL);
	/* Exactly HF_PROFILE_MAX_FRAMES frames is allowed. */
	deep.nr_frames = HF_PROFILE_MAX_FRAMES;
	CHECK(hf_profile_pprof(&deep, 1, HF_PROFILE_INUSE, 0, &out, &len) == 0);
	free(out);
}

/* ---- folded stacks ---- */

static char *folded(const struct hf_profile_site *s, size_t n, enum hf_profile_kind kind)
{
	char *text = NULL;
	size_t len = 0;

	CHECK(hf_profile_folded(s, n, kind, &text, &len) == 0);
	CHECK(text && strlen(text) == len);
	return text;
}

static void test_folded_lines_are_root_first_with_live_bytes(void)
{
	char *text = folded(sites, NR_SITES, HF_PROFILE_INUSE);

	CHECK_STR_EQ(text, "main;build_list;alloc_node 400\n"
			   "main;build_list;libfoo.so.1+0x1234 500\n"
			   "main;Cache::put(std::string_const&,_int);0x7f00deadbeef 100\n");
	free(text);
}

static void test_folded_pinned_uses_pinned_free_bytes_and_skips_zero(void)
{
	char *text = folded(sites, NR_SITES, HF_PROFILE_PINNED);

	CHECK_STR_EQ(text, "main;build_list;alloc_node 4096\n"
			   "main;Cache::put(std::string_const&,_int);0x7f00deadbeef 8192\n");
	free(text);
}

static void test_folded_names_lose_semicolons_spaces_and_newlines(void)
{
	const struct hf_profile_frame stack[] = {
		{0x10, "/bin/x", 0x10, "a;b c\nd\te\r", NULL, 0},
		{0x20, "/opt/my lib;v2/lib x.so", 0x20, NULL, NULL, 0},
	};
	const struct hf_profile_site site = {stack, 2, .live_bytes = 7};
	const struct hf_profile_site bare = {NULL, 0, .live_bytes = 9};
	char *text = folded(&site, 1, HF_PROFILE_INUSE);

	CHECK_STR_EQ(text, "lib_x.so+0x20;a:b_c_d_e_ 7\n");
	free(text);
	text = folded(&bare, 1, HF_PROFILE_INUSE);
	CHECK_STR_EQ(text, "[unknown] 9\n");
	free(text);
}

static void test_folded_with_no_sites_is_empty_text(void)
{
	char *text = folded(NULL, 0, HF_PROFILE_INUSE);

	CHECK_STR_EQ(text, "");
	free(text);
}

/* ---- the real reader: go tool pprof ---- */

/* Runs `go tool pprof ARGS FILE` in dir; its stdout, or NULL. */
static char *go_pprof(const char *dir, const char *args, const char *file)
{
	char cmd[1024];
	char *text = NULL;
	size_t len = 0, cap = 0;
	FILE *f;
	int status;

	/* A private HOME and cache, no network, no toolchain download. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && HOME='%s' GOCACHE='%s/cache' GOPATH='%s/go' PPROF_TMPDIR='%s' "
		 "GOTOOLCHAIN=local GOPROXY=off GOFLAGS= go tool pprof %s '%s' 2>'%s/stderr'",
		 dir, dir, dir, dir, dir, args, file, dir);
	f = popen(cmd, "r");
	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096)
			text = realloc(text, cap += 65536);
		size_t n = fread(text + len, 1, cap - len - 1, f);

		if (!n)
			break;
		len += n;
	}
	text[len] = '\0';
	status = pclose(f);
	CHECK_MSG(status == 0, "go tool pprof %s failed (see %s/stderr)", args, dir);
	return text;
}

/*
 * The first line of text that, blanks squeezed to one space and leading
 * ones dropped, starts with (at_start) or contains want; copied to out.
 */
static bool find_line(const char *text, const char *want, bool at_start, char *out, size_t size)
{
	const char *line = text;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		size_t k = 0;

		for (size_t i = 0; i < n && k + 1 < size; i++) {
			if (line[i] == ' ' || line[i] == '\t') {
				if (k && out[k - 1] != ' ')
					out[k++] = ' ';
			} else {
				out[k++] = line[i];
			}
		}
		out[k] = '\0';
		if (at_start ? strncmp(out, want, strlen(want)) == 0 : strstr(out, want) != NULL)
			return true;
		line = end ? end + 1 : NULL;
	}
	return false;
}

static void check_has(const char *text, const char *want)
{
	char line[1024];

	CHECK_MSG(find_line(text, want, false, line, sizeof(line)), "no line with \"%s\" in:\n%s",
		  want, text);
}

/*
 * In `pprof -raw` output, the sample line starting with values lists its
 * location ids leaf first: each must be the Location line of the name at
 * the same place in names.
 */
static void check_raw_sample(const char *raw, const char *values, const char *const *names,
			     size_t nr_names)
{
	const char *locations = strstr(raw, "\nLocations\n");
	char line[1024], loc[1024], prefix[32];
	const char *p;
	size_t i = 0;

	CHECK(locations != NULL);
	CHECK_MSG(find_line(raw, values, true, line, sizeof(line)), "no sample \"%s\"", values);
	if (!locations || !(p = strchr(line, ':')))
		return;
	for (p++; i < nr_names; i++) {
		char *end;
		unsigned long long id = strtoull(p, &end, 10);

		if (end == p)
			break;
		p = end;
		snprintf(prefix, sizeof(prefix), "%llu: 0x", id);
		CHECK_MSG(find_line(locations, prefix, true, loc, sizeof(loc)) &&
				  strstr(loc, names[i]) != NULL,
			  "sample \"%s\" frame %zu: location %llu is not %s", values, i, id,
			  names[i]);
	}
	CHECK_MSG(i == nr_names && strspn(p, " ") == strlen(p),
		  "sample \"%s\" has other than %zu locations: %s", values, nr_names, line);
}

static bool write_profile_file(const char *path, enum hf_profile_kind kind)
{
	unsigned char *gz = NULL;
	size_t len = 0;
	FILE *f;
	bool ok;

	if (hf_profile_pprof(sites, NR_SITES, kind, TIME_SECONDS, &gz, &len))
		return false;
	f = fopen(path, "wb");
	ok = f && fwrite(gz, 1, len, f) == len;
	if (f)
		ok = fclose(f) == 0 && ok;
	free(gz);
	return ok;
}

static void test_go_pprof_reads_the_inuse_profile(const char *dir)
{
	char path[512], stderr_path[512];
	char *raw, *top;
	FILE *f;

	snprintf(path, sizeof(path), "%s/inuse.pb.gz", dir);
	snprintf(stderr_path, sizeof(stderr_path), "%s/stderr", dir);
	CHECK(write_profile_file(path, HF_PROFILE_INUSE));

	raw = go_pprof(dir, "-raw", path);
	CHECK(raw != NULL);
	if (raw) {
		check_has(raw, "PeriodType: space bytes");
		check_has(raw, "alloc_objects/count alloc_space/bytes inuse_objects/count "
			       "inuse_space/bytes");
		/* Values, then location ids leaf first. */
		check_raw_sample(raw, "10 1000 4 400:",
				 (const char *const[]){" alloc_node src/list.c:42 ",
						       " build_list src/list.c:80 ",
						       " main src/main.c:10 "},
				 3);
		check_raw_sample(
			raw, "20 2000 5 500:",
			(const char *const[]){" libfoo.so.1+0x1234 ", " build_list ", " main "}, 3);
		check_raw_sample(raw, "3 300 1 100:",
				 (const char *const[]){" 0x7f00deadbeef ",
						       "(Cache::put(std::string const&, int))",
						       " main "},
				 3);
		check_has(raw, "libfoo.so.1+0x1234");
		check_has(raw, "0x7f00deadbeef");
		check_has(raw, "/usr/bin/app");
		check_has(raw, "/usr/lib/libfoo.so.1");
		printf("go tool pprof -raw:\n%s", raw);
	}
	top = go_pprof(dir, "-top -sample_index=inuse_space", path);
	CHECK(top != NULL);
	if (top) {
		check_has(top, "File: app");
		check_has(top, "Type: inuse_space");
		/* flat flat% sum% cum cum% name */
		check_has(top, "500B 50.00% 50.00% 500B 50.00% libfoo.so.1+0x1234");
		check_has(top, "400B 40.00% 90.00% 400B 40.00% alloc_node");
		check_has(top, "100B 10.00% 100% 100B 10.00% 0x7f00deadbeef");
		check_has(top, "0 0% 100% 1000B 100% main");
		check_has(top, "0 0% 100% 900B 90.00% build_list");
		/* pprof's -top shortens C++ names to their qualified name. */
		check_has(top, "0 0% 100% 100B 10.00% Cache::put");
		printf("go tool pprof -top -sample_index=inuse_space:\n%s", top);
	}
	free(raw);
	free(top);

	/* pprof would say so had it tried to symbolize the made-up ranges. */
	f = fopen(stderr_path, "r");
	if (f) {
		char line[512];

		while (fgets(line, sizeof(line), f))
			CHECK_MSG(!strstr(line, "ymboliz"), "go tool pprof: %s", line);
		fclose(f);
	}
}

static void test_go_pprof_reads_the_pinned_profile(const char *dir)
{
	char path[512];
	char *top, *raw;

	snprintf(path, sizeof(path), "%s/pinned.pb.gz", dir);
	CHECK(write_profile_file(path, HF_PROFILE_PINNED));
	raw = go_pprof(dir, "-raw", path);
	CHECK(raw != NULL);
	if (raw) {
		check_has(raw, "inuse_space/bytes pinned_free_space/bytes");
		check_raw_sample(raw, "400 4096:",
				 (const char *const[]){" alloc_node ", " build_list ", " main "},
				 3);
		check_raw_sample(
			raw, "500 0:",
			(const char *const[]){" libfoo.so.1+0x1234 ", " build_list ", " main "}, 3);
		check_raw_sample(
			raw, "100 8192:",
			(const char *const[]){" 0x7f00deadbeef ", " Cache::put ", " main "}, 3);
	}
	/* The default sample type, without -sample_index. */
	top = go_pprof(dir, "-top -unit=B", path);
	CHECK(top != NULL);
	if (top) {
		check_has(top, "Type: pinned_free_space");
		check_has(top, "8192B 66.67% 66.67% 8192B 66.67% 0x7f00deadbeef");
		check_has(top, "4096B 33.33% 100% 4096B 33.33% alloc_node");
		printf("go tool pprof -top -unit=B (pinned):\n%s", top);
	}
	free(raw);
	free(top);
}

static int run_go_pprof_tests(void)
{
	char dir[] = "/tmp/hf-web-profile-XXXXXX";
	char cmd[256];

	if (system("go version > /dev/null 2>&1") != 0)
		HF_SKIP("go is not installed (Debian package golang-go): go tool pprof not run");
	if (!mkdtemp(dir)) {
		CHECK_MSG(false, "mkdtemp: %s", strerror(errno));
		return hf_test_done();
	}
	test_go_pprof_reads_the_inuse_profile(dir);
	test_go_pprof_reads_the_pinned_profile(dir);
	if (hf_checks_failed == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		CHECK(system(cmd) == 0);
	}
	return hf_test_done();
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "pprof") == 0)
		return run_go_pprof_tests();
	test_pprof_inuse_decodes_to_every_site_field_by_field();
	test_pprof_names_frames_without_function_after_object_or_address();
	test_pprof_puts_the_main_binary_first();
	test_pprof_leaves_alloc_space_out_when_a_site_lacks_requested_bytes();
	test_pprof_pinned_has_pinned_free_space_as_default();
	test_pprof_with_no_sites_is_a_valid_empty_profile();
	test_pprof_site_without_frames_is_a_sample_without_locations();
	test_pprof_clamps_values_to_int64_and_cuts_long_names();
	test_pprof_dedupes_many_sites_and_is_deterministic();
	test_pprof_and_folded_reject_bad_arguments();
	test_folded_lines_are_root_first_with_live_bytes();
	test_folded_pinned_uses_pinned_free_bytes_and_skips_zero();
	test_folded_names_lose_semicolons_spaces_and_newlines();
	test_folded_with_no_sites_is_empty_text();
	return hf_test_done();
}
