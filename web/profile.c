// SPDX-License-Identifier: MIT
/*
 * profile.c - allocation sites as a pprof profile and as folded stacks.
 *
 * Why: heapfragd keeps numbers per allocation site (a call stack into the
 * allocator), and the tools people already read stacks with take one of two
 * formats.  `go tool pprof`, Pyroscope and Grafana read pprof's
 * profile.proto (github.com/google/pprof/proto/profile.proto), gzipped;
 * flamegraph.pl, speedscope and Grafana's flame graph panel read Brendan
 * Gregg's folded stacks.  Both writers are pure functions over an array of
 * sites, so the unit tests call them directly.
 *
 * The protobuf is encoded by hand: varints, length-delimited fields, packed
 * repeated integers.  The fields written, by their number in profile.proto:
 *
 *   Profile    sample_type 1, sample 2, mapping 3, location 4, function 5,
 *              string_table 6, time_nanos 9, period_type 11, period 12,
 *              default_sample_type 14
 *   ValueType  type 1, unit 2
 *   Sample     location_id 1 (packed, leaf first), value 2 (packed)
 *   Mapping    id 1, memory_start 2, memory_limit 3, file_offset 4,
 *              filename 5, has_functions 7, has_filenames 8,
 *              has_line_numbers 9
 *   Location   id 1, mapping_id 2, address 3, line 4
 *   Line       function_id 1, line 2
 *   Function   id 1, name 2, system_name 3, filename 4
 *
 * Integers equal to 0 are left out, as a proto3 encoder does; string 0 is ""
 * as the format requires.
 *
 * What goes where:
 *   - Sample types.  HF_PROFILE_INUSE follows Go's heap profile:
 *     alloc_objects/count (allocations since attach), alloc_space/bytes
 *     (requested_bytes), inuse_objects/count (live_allocations) and
 *     inuse_space/bytes (live_bytes).  Every sample has as many values as
 *     there are types, so alloc_space is written only when every site knows
 *     its requested_bytes: one unknown site leaves the type out of the whole
 *     profile rather than putting a made-up 0 beside the others.
 *     HF_PROFILE_PINNED has inuse_space/bytes then pinned_free_space/bytes.
 *     The default type (inuse_space, pinned_free_space) is also the last,
 *     for readers that ignore default_sample_type.  Values above INT64_MAX
 *     are written as INT64_MAX.  period_type is space/bytes with period 1:
 *     the numbers are counts, not samples to be scaled.
 *   - Frames without a function name get a Function of their own named
 *     "libfoo.so+0x1234" (the object's base name and the offset in it), or
 *     "0x7f0012345678" when the object is unknown too.  `go tool pprof
 *     -top` (which aggregates by function) then shows one row per unknown
 *     frame under that name.  Leaving the Function out and giving only the
 *     address and mapping was tried: pprof lumped every such frame of an
 *     object into one "[libfoo.so.1]" row, the ones without an object into
 *     "<unknown>", and, the profile no longer having functions throughout,
 *     showed even named frames by object ("[app]").
 *   - One Mapping per object path, in the order first seen, except that the
 *     first object that does not look like a shared library ("*.so",
 *     "*.so.*", "[vdso]") is moved to the front: profile.proto wants the
 *     main binary at mapping[0], and pprof prints its name as "File:".  A
 *     Mapping's range is made up from the frames: memory_start is the
 *     lowest address seen in the object, memory_limit one past the highest,
 *     file_offset the offset at memory_start; every Location of the object
 *     lies inside it.  Frames whose object is unknown get no Mapping
 *     (mapping_id 0).  has_functions is set on every Mapping, because every
 *     Location has a Function: it also keeps pprof from symbolizing the
 *     made-up ranges against files on the reader's machine.  has_filenames
 *     and has_line_numbers are set when a frame of the object had them.
 *   - A Function is a (name, source file) pair; a Location one distinct
 *     frame (every field of struct hf_profile_frame), with one Line.  Ids
 *     count from 1 in the order first seen, so the same sites give the same
 *     bytes.
 *
 * Folded stacks: "root;...;leaf VALUE\n", frames named as above, value
 * live_bytes (HF_PROFILE_INUSE) or pinned_free_bytes (HF_PROFILE_PINNED).
 * In a name, ';' becomes ':', and spaces and control characters become '_',
 * so that the stack stays one field and the line one line.  Sites whose
 * value is 0 are left out (they would draw nothing), and a site without
 * frames is the single frame "[unknown]".  Lines keep the sites' order:
 * flamegraph.pl sorts, and speedscope and Grafana merge equal stacks.
 *
 * Cost: a first pass interns every string, function, mapping and location
 * in open-addressing hash tables; a frame already seen costs one lookup by
 * address, offset and line and a comparison of its strings.  The second
 * pass looks each frame up again and streams the message through deflate
 * in 64 KiB pieces, so neither the uncompressed message nor a per-frame
 * array is ever held.  Memory grows with the distinct frames, time with the
 * total frames.
 */
#include "profile.h"
#include "web.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- the sites' numbers and the sample types ---- */

enum value {
	ALLOC_OBJECTS,
	ALLOC_SPACE,
	INUSE_OBJECTS,
	INUSE_SPACE,
	PINNED_FREE_SPACE,
};

static const struct {
	const char *type;
	const char *unit;
} value_types[] = {
	[ALLOC_OBJECTS] = {"alloc_objects", "count"},
	[ALLOC_SPACE] = {"alloc_space", "bytes"},
	[INUSE_OBJECTS] = {"inuse_objects", "count"},
	[INUSE_SPACE] = {"inuse_space", "bytes"},
	[PINNED_FREE_SPACE] = {"pinned_free_space", "bytes"},
};

#define MAX_VALUES 4

/* The sample types of one profile, the default last. */
struct layout {
	enum value values[MAX_VALUES];
	size_t nr;
};

static uint64_t site_value(const struct hf_profile_site *s, enum value v)
{
	switch (v) {
	case ALLOC_OBJECTS:
		return s->allocations;
	case ALLOC_SPACE:
		return s->requested_bytes;
	case INUSE_OBJECTS:
		return s->live_allocations;
	case INUSE_SPACE:
		return s->live_bytes;
	case PINNED_FREE_SPACE:
		return s->pinned_free_bytes;
	}
	return 0;
}

static struct layout layout_of(const struct hf_profile_site *sites, size_t n,
			       enum hf_profile_kind kind)
{
	struct layout l = {.nr = 0};
	bool alloc_space = true;

	if (kind == HF_PROFILE_PINNED) {
		l.values[l.nr++] = INUSE_SPACE;
		l.values[l.nr++] = PINNED_FREE_SPACE;
		return l;
	}
	for (size_t i = 0; i < n && alloc_space; i++)
		alloc_space = sites[i].requested_bytes != HF_PROFILE_UNKNOWN;
	l.values[l.nr++] = ALLOC_OBJECTS;
	if (alloc_space)
		l.values[l.nr++] = ALLOC_SPACE;
	l.values[l.nr++] = INUSE_OBJECTS;
	l.values[l.nr++] = INUSE_SPACE;
	return l;
}

static int check_sites(const struct hf_profile_site *sites, size_t n, enum hf_profile_kind kind)
{
	if (kind != HF_PROFILE_INUSE && kind != HF_PROFILE_PINNED)
		return -EINVAL;
	if (n && !sites)
		return -EINVAL;
	if (n > HF_PROFILE_MAX_SITES)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (sites[i].nr_frames > HF_PROFILE_MAX_FRAMES)
			return -E2BIG;
		if (sites[i].nr_frames && !sites[i].frames)
			return -EINVAL;
	}
	return 0;
}

/* ---- frame names ---- */

/* Room for the longest name frame_name() writes, NUL included. */
#define NAME_ROOM (HF_PROFILE_MAX_NAME + 32)

static bool known(const char *s)
{
	return s && *s;
}

/* s's length, cut to HF_PROFILE_MAX_NAME bytes and then back to a UTF-8 character's start. */
static size_t cut_len(const char *s)
{
	size_t n = strnlen(s, HF_PROFILE_MAX_NAME + 1);

	if (n <= HF_PROFILE_MAX_NAME)
		return n;
	n = HF_PROFILE_MAX_NAME;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

/* Writes f's name (see the top of the file) into name[NAME_ROOM]; returns its length. */
static size_t frame_name(const struct hf_profile_frame *f, char *name)
{
	const char *base;
	size_t len;
	int n;

	if (known(f->function)) {
		len = cut_len(f->function);
		memcpy(name, f->function, len);
		name[len] = '\0';
		return len;
	}
	if (known(f->object)) {
		base = base_name(f->object);
		n = snprintf(name, NAME_ROOM, "%.*s+0x%" PRIx64, (int)cut_len(base), base,
			     f->offset);
	} else {
		n = snprintf(name, NAME_ROOM, "0x%" PRIx64, f->address);
	}
	return n > 0 ? (size_t)n : 0;
}

/* ---- open-addressing hash tables of ids ---- */

/* A slot holds a 1-based id (0: empty) and the hash of what it names. */
struct slot {
	uint32_t id;
	uint32_t hash;
};

struct table {
	struct slot *slots;
	size_t cap; /* a power of two */
	size_t used;
};

struct builder;
typedef bool (*match_fn)(const struct builder *b, uint32_t id, const void *key);

/* Makes room for one more id, keeping at least half of the slots empty. */
static int table_reserve(struct table *t)
{
	struct slot *slots;
	size_t cap;

	if ((t->used + 1) * 2 <= t->cap)
		return 0;
	cap = t->cap ? t->cap * 2 : 1024;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		size_t j = t->slots[i].hash & (cap - 1);

		if (!t->slots[i].id)
			continue;
		while (slots[j].id)
			j = (j + 1) & (cap - 1);
		slots[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

/* The slot holding key, or the empty slot where it belongs. */
static struct slot *table_find(const struct table *t, uint32_t hash, match_fn match,
			       const struct builder *b, const void *key)
{
	size_t i = hash & (t->cap - 1);

	for (size_t probes = 0; probes < t->cap; probes++) {
		struct slot *s = &t->slots[i];

		if (!s->id || (s->hash == hash && match(b, s->id, key)))
			return s;
		i = (i + 1) & (t->cap - 1);
	}
	return NULL;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static uint32_t hash32(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

/* ---- growable arrays ---- */

struct vec {
	void *data;
	size_t nr;
	size_t cap;
};

/* A new zeroed element at the end, or NULL. */
static void *vec_push(struct vec *v, size_t size)
{
	void *data;
	size_t cap;

	if (v->nr == v->cap) {
		cap = v->cap ? v->cap * 2 : 256;
		if (cap > SIZE_MAX / size)
			return NULL;
		data = realloc(v->data, cap * size);
		if (!data)
			return NULL;
		v->data = data;
		v->cap = cap;
	}
	data = (char *)v->data + v->nr++ * size;
	memset(data, 0, size);
	return data;
}

/* ---- the interned strings, functions, mappings and locations ---- */

struct str_entry {
	size_t off; /* in builder.chars */
	size_t len;
};

struct func_entry {
	uint32_t name; /* string ids */
	uint32_t file;
};

struct map_entry {
	uint32_t file;
	uint64_t start;       /* the lowest address seen */
	uint64_t last;        /* the highest */
	uint64_t file_offset; /* the offset at start */
	bool has_filenames;
	bool has_line_numbers;
};

/* A Location is one distinct frame: the frame's own fields, then what they became. */
struct loc_entry {
	uint64_t address;
	uint64_t offset;
	uint32_t line;
	uint32_t object;   /* string ids, 0 ("") where the frame had none */
	uint32_t raw_name; /* the frame's function, 0 when unknown */
	uint32_t file;
	uint32_t mapping; /* 0: none */
	uint32_t function;
};

struct builder {
	struct hf_buf chars; /* every string's bytes, back to back */
	struct vec strs;     /* struct str_entry, by string id (0-based) */
	struct vec funcs;    /* struct func_entry, by id - 1 */
	struct vec maps;     /* struct map_entry, by id - 1 */
	struct vec locs;     /* struct loc_entry, by id - 1 */
	struct table str_index;
	struct table func_index;
	struct table map_index; /* by the file's string id */
	struct table loc_index;
	char name[NAME_ROOM];
};

static const struct str_entry *str_at(const struct builder *b, uint32_t sid)
{
	return (const struct str_entry *)b->strs.data + sid;
}

static const struct func_entry *func_at(const struct builder *b, uint32_t id)
{
	return (const struct func_entry *)b->funcs.data + (id - 1);
}

static struct map_entry *map_at(const struct builder *b, uint32_t id)
{
	return (struct map_entry *)b->maps.data + (id - 1);
}

static const struct loc_entry *loc_at(const struct builder *b, uint32_t id)
{
	return (const struct loc_entry *)b->locs.data + (id - 1);
}

static void builder_free(struct builder *b)
{
	hf_buf_free(&b->chars);
	free(b->strs.data);
	free(b->funcs.data);
	free(b->maps.data);
	free(b->locs.data);
	free(b->str_index.slots);
	free(b->func_index.slots);
	free(b->map_index.slots);
	free(b->loc_index.slots);
}

struct str_key {
	const char *s;
	size_t len;
};

static bool str_match(const struct builder *b, uint32_t id, const void *key)
{
	const struct str_key *k = key;
	const struct str_entry *e = str_at(b, id - 1);

	return e->len == k->len && (!k->len || memcmp(b->chars.data + e->off, k->s, k->len) == 0);
}

static int intern_str(struct builder *b, const char *s, size_t len, uint32_t *sid)
{
	struct str_key key = {s, len};
	uint32_t hash = hash32(hash_bytes(0xcbf29ce484222325ull, s, len));
	struct str_entry *e;
	struct slot *slot;
	int err = table_reserve(&b->str_index);

	if (err)
		return err;
	slot = table_find(&b->str_index, hash, str_match, b, &key);
	if (!slot)
		return -ENOMEM;
	if (slot->id) {
		*sid = slot->id - 1;
		return 0;
	}
	e = vec_push(&b->strs, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->off = b->chars.len;
	e->len = len;
	hf_buf_append(&b->chars, len ? s : "", len);
	if (b->chars.err)
		return b->chars.err;
	slot->id = (uint32_t)b->strs.nr;
	slot->hash = hash;
	b->str_index.used++;
	*sid = slot->id - 1;
	return 0;
}

static int intern_cstr(struct builder *b, const char *s, uint32_t *sid)
{
	return intern_str(b, s, strlen(s), sid);
}

static bool func_match(const struct builder *b, uint32_t id, const void *key)
{
	const struct func_entry *k = key, *e = func_at(b, id);

	return e->name == k->name && e->file == k->file;
}

static int intern_func(struct builder *b, const struct func_entry *key, uint32_t *id)
{
	uint32_t hash = hash32(hash_u64(hash_u64(1, key->name), key->file));
	struct func_entry *e;
	struct slot *slot;
	int err = table_reserve(&b->func_index);

	if (err)
		return err;
	slot = table_find(&b->func_index, hash, func_match, b, key);
	if (!slot)
		return -ENOMEM;
	if (!slot->id) {
		e = vec_push(&b->funcs, sizeof(*e));
		if (!e)
			return -ENOMEM;
		*e = *key;
		slot->id = (uint32_t)b->funcs.nr;
		slot->hash = hash;
		b->func_index.used++;
	}
	*id = slot->id;
	return 0;
}

static bool map_match(const struct builder *b, uint32_t id, const void *key)
{
	return map_at(b, id)->file == *(const uint32_t *)key;
}

/* The mapping of f's object (whose name is string file), its range widened to f. */
static int intern_map(struct builder *b, uint32_t file, const struct hf_profile_frame *f,
		      uint32_t *id)
{
	uint32_t hash = hash32(hash_u64(2, file));
	struct map_entry *e;
	struct slot *slot;
	int err = table_reserve(&b->map_index);

	if (err)
		return err;
	slot = table_find(&b->map_index, hash, map_match, b, &file);
	if (!slot)
		return -ENOMEM;
	if (!slot->id) {
		e = vec_push(&b->maps, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->file = file;
		e->start = e->last = f->address;
		e->file_offset = f->offset;
		slot->id = (uint32_t)b->maps.nr;
		slot->hash = hash;
		b->map_index.used++;
	}
	e = map_at(b, slot->id);
	if (f->address < e->start) {
		e->start = f->address;
		e->file_offset = f->offset;
	}
	if (f->address > e->last)
		e->last = f->address;
	e->has_filenames |= known(f->file);
	e->has_line_numbers |= f->line != 0;
	*id = slot->id;
	return 0;
}

/* Whether string sid is the frame's string s, cut as interned; unknown is 0. */
static bool str_is(const struct builder *b, uint32_t sid, const char *s)
{
	const struct str_entry *e = str_at(b, sid);
	size_t len;

	if (!known(s))
		return sid == 0;
	len = cut_len(s);
	return e->len == len && memcmp(b->chars.data + e->off, s, len) == 0;
}

static bool loc_match(const struct builder *b, uint32_t id, const void *key)
{
	const struct hf_profile_frame *f = key;
	const struct loc_entry *e = loc_at(b, id);

	return e->address == f->address && e->offset == f->offset && e->line == f->line &&
	       str_is(b, e->raw_name, f->function) && str_is(b, e->object, f->object) &&
	       str_is(b, e->file, f->file);
}

/* A new Location for f, with its function and mapping. */
static int new_loc(struct builder *b, const struct hf_profile_frame *f, struct loc_entry *loc)
{
	struct func_entry func = {0};
	int err = 0;

	loc->address = f->address;
	loc->offset = f->offset;
	loc->line = f->line;
	if (known(f->function)) {
		err = intern_str(b, f->function, cut_len(f->function), &loc->raw_name);
		func.name = loc->raw_name;
	} else {
		err = intern_str(b, b->name, frame_name(f, b->name), &func.name);
	}
	if (!err && known(f->file)) {
		err = intern_str(b, f->file, cut_len(f->file), &loc->file);
		func.file = loc->file;
	}
	if (!err)
		err = intern_func(b, &func, &loc->function);
	if (!err && known(f->object)) {
		err = intern_str(b, f->object, cut_len(f->object), &loc->object);
		if (!err)
			err = intern_map(b, loc->object, f, &loc->mapping);
	}
	return err;
}

/*
 * The id of f's Location.  A frame seen before costs one lookup by address,
 * offset and line and a comparison of its strings; a new one interns its
 * strings, Function and Mapping.
 */
static int intern_frame(struct builder *b, const struct hf_profile_frame *f, uint32_t *id)
{
	uint32_t hash = hash32(hash_u64(hash_u64(hash_u64(3, f->address), f->offset), f->line));
	struct loc_entry loc = {0}, *e;
	struct slot *slot;
	int err = table_reserve(&b->loc_index);

	if (err)
		return err;
	slot = table_find(&b->loc_index, hash, loc_match, b, f);
	if (!slot)
		return -ENOMEM;
	if (!slot->id) {
		/* new_loc() grows other tables, never loc_index: slot stays valid. */
		err = new_loc(b, f, &loc);
		if (err)
			return err;
		e = vec_push(&b->locs, sizeof(*e));
		if (!e)
			return -ENOMEM;
		*e = loc;
		slot->id = (uint32_t)b->locs.nr;
		slot->hash = hash;
		b->loc_index.used++;
	}
	*id = slot->id;
	return 0;
}

/* ---- protobuf encoding ---- */

enum wire {
	WIRE_VARINT = 0,
	WIRE_LEN = 2,
};

enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};

enum {
	VALUE_TYPE_TYPE = 1,
	VALUE_TYPE_UNIT = 2,
};

enum {
	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
};

enum {
	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
};

enum {
	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_ADDRESS = 3,
	LOCATION_LINE = 4,
};

enum {
	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,
};

enum {
	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};

#define VARINT_MAX 10

static size_t varint_encode(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void put_varint(struct hf_buf *b, uint64_t v)
{
	unsigned char p[VARINT_MAX];

	hf_buf_append(b, (const char *)p, varint_encode(p, v));
}

static void put_tag(struct hf_buf *b, unsigned int field, enum wire wire)
{
	put_varint(b, (uint64_t)field << 3 | wire);
}

/* A varint field; 0 is the default and is left out. */
static void put_uint(struct hf_buf *b, unsigned int field, uint64_t v)
{
	if (!v)
		return;
	put_tag(b, field, WIRE_VARINT);
	put_varint(b, v);
}

static void put_bytes(struct hf_buf *b, unsigned int field, const void *p, size_t len)
{
	put_tag(b, field, WIRE_LEN);
	put_varint(b, len);
	if (len)
		hf_buf_append(b, p, len);
}

static void put_packed(struct hf_buf *b, unsigned int field, const uint64_t *v, size_t n)
{
	size_t len = 0;

	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		len += varint_len(v[i]);
	put_tag(b, field, WIRE_LEN);
	put_varint(b, len);
	for (size_t i = 0; i < n; i++)
		put_varint(b, v[i]);
}

/* An int64 field's value: profile.proto's counts are signed. */
static uint64_t clamp_i64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : v;
}

/* ---- the gzip stream ---- */

#define SINK_CHUNK (64 * 1024)

/*
 * The Profile message's bytes go through in[] into deflate, whose output
 * collects in out.  msg and inner are scratch buffers for one repeated
 * field's message and a message nested in it.
 */
struct writer {
	z_stream z;
	bool z_ready;
	unsigned char *in;
	size_t in_len;
	struct hf_buf out;
	struct hf_buf msg;
	struct hf_buf inner;
	int err;
};

static void writer_deflate(struct writer *w, int flush)
{
	unsigned char chunk[16 * 1024];
	int rc;

	w->z.next_in = w->in;
	w->z.avail_in = (uInt)w->in_len;
	do {
		w->z.next_out = chunk;
		w->z.avail_out = sizeof(chunk);
		rc = deflate(&w->z, flush);
		if (rc == Z_STREAM_ERROR) {
			w->err = -EIO;
			return;
		}
		hf_buf_append(&w->out, (const char *)chunk, sizeof(chunk) - w->z.avail_out);
		if (w->out.err) {
			w->err = w->out.err;
			return;
		}
	} while (w->z.avail_out == 0 || (flush == Z_FINISH && rc == Z_OK));
	if (flush == Z_FINISH && rc != Z_STREAM_END)
		w->err = -EIO;
	w->in_len = 0;
}

static void writer_raw(struct writer *w, const void *p, size_t len)
{
	const unsigned char *c = p;

	while (len && !w->err) {
		size_t n = SINK_CHUNK - w->in_len;

		if (n > len)
			n = len;
		memcpy(w->in + w->in_len, c, n);
		w->in_len += n;
		c += n;
		len -= n;
		if (w->in_len == SINK_CHUNK)
			writer_deflate(w, Z_NO_FLUSH);
	}
}

/* A length-delimited field of the Profile message. */
static void writer_field(struct writer *w, unsigned int field, const void *p, size_t len)
{
	unsigned char head[2 * VARINT_MAX];
	size_t n = varint_encode(head, (uint64_t)field << 3 | WIRE_LEN);

	n += varint_encode(head + n, len);
	writer_raw(w, head, n);
	writer_raw(w, p, len);
}

/* The message in w->msg as the Profile's field, leaving w->msg empty. */
static void writer_msg(struct writer *w, unsigned int field)
{
	if (w->msg.err || w->inner.err) {
		w->err = -ENOMEM;
		return;
	}
	writer_field(w, field, w->msg.data, w->msg.len);
	w->msg.len = 0;
}

/* A varint field of the Profile message; 0 is left out. */
static void writer_uint(struct writer *w, unsigned int field, uint64_t v)
{
	unsigned char p[2 * VARINT_MAX];
	size_t n;

	if (!v)
		return;
	n = varint_encode(p, (uint64_t)field << 3 | WIRE_VARINT);
	n += varint_encode(p + n, v);
	writer_raw(w, p, n);
}

static int writer_init(struct writer *w)
{
	int rc;

	w->in = malloc(SINK_CHUNK);
	if (!w->in)
		return -ENOMEM;
	/* 15 + 16: a 32 KiB window with a gzip header and trailer. */
	rc = deflateInit2(&w->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	if (rc != Z_OK)
		return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	w->z_ready = true;
	return 0;
}

static void writer_free(struct writer *w)
{
	if (w->z_ready)
		deflateEnd(&w->z);
	free(w->in);
	hf_buf_free(&w->out);
	hf_buf_free(&w->msg);
	hf_buf_free(&w->inner);
}

/* ---- the profile ---- */

static void write_value_type(struct writer *w, unsigned int field, uint32_t type, uint32_t unit)
{
	put_uint(&w->msg, VALUE_TYPE_TYPE, type);
	put_uint(&w->msg, VALUE_TYPE_UNIT, unit);
	writer_msg(w, field);
}

static int write_samples(struct writer *w, struct builder *b, const struct hf_profile_site *sites,
			 size_t n, const struct layout *l)
{
	uint64_t locs[HF_PROFILE_MAX_FRAMES];
	uint64_t values[MAX_VALUES];

	for (size_t i = 0; i < n && !w->err; i++) {
		const struct hf_profile_site *s = &sites[i];

		for (size_t f = 0; f < s->nr_frames; f++) {
			uint32_t id;
			int err = intern_frame(b, &s->frames[f], &id);

			if (err)
				return err;
			locs[f] = id;
		}
		for (size_t v = 0; v < l->nr; v++)
			values[v] = clamp_i64(site_value(s, l->values[v]));
		put_packed(&w->msg, SAMPLE_LOCATION_ID, locs, s->nr_frames);
		put_packed(&w->msg, SAMPLE_VALUE, values, l->nr);
		writer_msg(w, PROFILE_SAMPLE);
	}
	return w->err;
}

/* Whether an object's path names a shared library or a pseudo-file like [vdso]. */
static bool is_library(const char *path, size_t len)
{
	const char *base = path, *so;

	for (size_t i = 0; i < len; i++)
		if (path[i] == '/' && i + 1 < len)
			base = path + i + 1;
	if (base < path + len && *base == '[')
		return true;
	for (so = base; (so = memmem(so, (size_t)(path + len - so), ".so", 3)); so += 3)
		if (so + 3 == path + len || so[3] == '.')
			return true;
	return false;
}

/* The id of the mapping written first: the first object that is not a library, else 1. */
static uint32_t main_map(const struct builder *b)
{
	for (uint32_t id = 1; id <= b->maps.nr; id++) {
		const struct str_entry *file = str_at(b, map_at(b, id)->file);

		if (!is_library(b->chars.data + file->off, file->len))
			return id;
	}
	return 1;
}

/* A mapping's id in the output, where main_map()'s mapping, first, is moved to the front. */
static uint32_t map_out_id(uint32_t id, uint32_t first)
{
	if (!id || id > first)
		return id;
	return id == first ? 1 : id + 1;
}

static void write_tables(struct writer *w, const struct builder *b)
{
	uint32_t first = main_map(b);

	for (uint32_t out = 1; out <= b->maps.nr && !w->err; out++) {
		uint32_t id = out == 1 ? first : out <= first ? out - 1 : out;
		const struct map_entry *m = map_at(b, id);

		put_uint(&w->msg, MAPPING_ID, out);
		put_uint(&w->msg, MAPPING_MEMORY_START, m->start);
		put_uint(&w->msg, MAPPING_MEMORY_LIMIT,
			 m->last == UINT64_MAX ? m->last : m->last + 1);
		put_uint(&w->msg, MAPPING_FILE_OFFSET, m->file_offset);
		put_uint(&w->msg, MAPPING_FILENAME, m->file);
		put_uint(&w->msg, MAPPING_HAS_FUNCTIONS, 1);
		put_uint(&w->msg, MAPPING_HAS_FILENAMES, m->has_filenames);
		put_uint(&w->msg, MAPPING_HAS_LINE_NUMBERS, m->has_line_numbers);
		writer_msg(w, PROFILE_MAPPING);
	}
	for (uint32_t id = 1; id <= b->locs.nr && !w->err; id++) {
		const struct loc_entry *l = loc_at(b, id);

		w->inner.len = 0;
		put_uint(&w->inner, LINE_FUNCTION_ID, l->function);
		put_uint(&w->inner, LINE_LINE, l->line);
		put_uint(&w->msg, LOCATION_ID, id);
		put_uint(&w->msg, LOCATION_MAPPING_ID, map_out_id(l->mapping, first));
		put_uint(&w->msg, LOCATION_ADDRESS, l->address);
		put_bytes(&w->msg, LOCATION_LINE, w->inner.data, w->inner.len);
		writer_msg(w, PROFILE_LOCATION);
	}
	for (uint32_t id = 1; id <= b->funcs.nr && !w->err; id++) {
		const struct func_entry *f = func_at(b, id);

		put_uint(&w->msg, FUNCTION_ID, id);
		put_uint(&w->msg, FUNCTION_NAME, f->name);
		put_uint(&w->msg, FUNCTION_SYSTEM_NAME, f->name);
		put_uint(&w->msg, FUNCTION_FILENAME, f->file);
		writer_msg(w, PROFILE_FUNCTION);
	}
	for (uint32_t sid = 0; sid < b->strs.nr && !w->err; sid++) {
		const struct str_entry *s = str_at(b, sid);

		writer_field(w, PROFILE_STRING_TABLE, b->chars.data + s->off, s->len);
	}
}

/* Nanoseconds since the epoch, or 0 (left out) for a time that is not one. */
static uint64_t time_nanos(double seconds)
{
	if (!isfinite(seconds) || seconds <= 0 || seconds >= 9e9)
		return 0;
	return (uint64_t)(seconds * 1e9);
}

static int write_profile(struct writer *w, struct builder *b, const struct hf_profile_site *sites,
			 size_t n, enum hf_profile_kind kind, double time_seconds)
{
	struct layout l = layout_of(sites, n, kind);
	uint32_t types[MAX_VALUES], units[MAX_VALUES], space, bytes, unused;
	int err;

	/* Strings 0, 1, ...: "", the sample types, the period type. */
	err = intern_cstr(b, "", &unused);
	for (size_t v = 0; v < l.nr && !err; v++) {
		err = intern_cstr(b, value_types[l.values[v]].type, &types[v]);
		if (!err)
			err = intern_cstr(b, value_types[l.values[v]].unit, &units[v]);
	}
	if (!err)
		err = intern_cstr(b, "space", &space);
	if (!err)
		err = intern_cstr(b, "bytes", &bytes);
	/* The first pass: every table complete before anything is written. */
	for (size_t i = 0; i < n && !err; i++) {
		for (size_t f = 0; f < sites[i].nr_frames && !err; f++) {
			uint32_t id;

			err = intern_frame(b, &sites[i].frames[f], &id);
		}
	}
	if (err)
		return err;

	for (size_t v = 0; v < l.nr; v++)
		write_value_type(w, PROFILE_SAMPLE_TYPE, types[v], units[v]);
	err = write_samples(w, b, sites, n, &l);
	if (err)
		return err;
	write_tables(w, b);
	writer_uint(w, PROFILE_TIME_NANOS, time_nanos(time_seconds));
	write_value_type(w, PROFILE_PERIOD_TYPE, space, bytes);
	writer_uint(w, PROFILE_PERIOD, 1);
	writer_uint(w, PROFILE_DEFAULT_SAMPLE_TYPE, types[l.nr - 1]);
	if (!w->err)
		writer_deflate(w, Z_FINISH);
	return w->err;
}

int hf_profile_pprof(const struct hf_profile_site *sites, size_t n, enum hf_profile_kind kind,
		     double time_seconds, unsigned char **out, size_t *out_len)
{
	struct builder *b;
	struct writer w = {0};
	int err;

	if (!out || !out_len)
		return -EINVAL;
	err = check_sites(sites, n, kind);
	if (err)
		return err;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	err = writer_init(&w);
	if (!err)
		err = write_profile(&w, b, sites, n, kind, time_seconds);
	if (!err) {
		*out = (unsigned char *)hf_buf_take(&w.out, out_len);
		if (!*out)
			err = -ENOMEM;
	}
	writer_free(&w);
	builder_free(b);
	free(b);
	return err;
}

/* ---- folded stacks ---- */

/* Appends name with ';' as ':' and spaces and control characters as '_'. */
static void put_folded_name(struct hf_buf *out, char *name, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == ';')
			name[i] = ':';
		else if (c <= ' ' || c == 0x7f)
			name[i] = '_';
	}
	hf_buf_append(out, name, len);
}

int hf_profile_folded(const struct hf_profile_site *sites, size_t n, enum hf_profile_kind kind,
		      char **out, size_t *out_len)
{
	enum value which = kind == HF_PROFILE_PINNED ? PINNED_FREE_SPACE : INUSE_SPACE;
	struct hf_buf b = {0};
	char *name;
	int err;

	if (!out || !out_len)
		return -EINVAL;
	err = check_sites(sites, n, kind);
	if (err)
		return err;
	name = malloc(NAME_ROOM);
	if (!name)
		return -ENOMEM;
	for (size_t i = 0; i < n && !b.err; i++) {
		const struct hf_profile_site *s = &sites[i];
		uint64_t v = site_value(s, which);

		if (!v)
			continue;
		if (!s->nr_frames)
			hf_buf_puts(&b, "[unknown]");
		for (size_t f = s->nr_frames; f-- > 0;) {
			put_folded_name(&b, name, frame_name(&s->frames[f], name));
			if (f)
				hf_buf_puts(&b, ";");
		}
		hf_buf_printf(&b, " %" PRIu64 "\n", v);
	}
	free(name);
	*out = hf_buf_take(&b, out_len);
	return *out ? 0 : -ENOMEM;
}
