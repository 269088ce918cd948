// SPDX-License-Identifier: MIT
/*
 * options.c - the tunables, in one table: name, default, environment
 * variable, bounds, and what setting one does.
 *
 * The environment is read once, on the first call into libptm, straight
 * from environ (getenv is not needed and stdio is not used: this may run
 * before any constructor).  Values take K, M or G suffixes; a value that is
 * not a number or is out of bounds is ignored with a warning on stderr.
 * mallopt() sets the same options at run time, with glibc's semantics.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "ptm.h"
#include "internal.h"

extern char **environ;

struct ptm_params ptm_i_mp = {
	.trim_threshold = DEFAULT_MMAP_THRESHOLD_MIN,
	.top_pad = 128 * 1024,
	.mmap_threshold = DEFAULT_MMAP_THRESHOLD_MIN,
	.arena_test = 8,
	.n_mmaps_max = 65536,
	.tcache_count = TCACHE_FILL_COUNT,
	.tcache_max_bytes = MAX_TCACHE_SIZE,
	.release_threshold = DEFAULT_RELEASE_THRESHOLD,
	.release_delay = DEFAULT_RELEASE_DELAY,
	.release_batch = 1,
};

enum opt_id {
	OPT_MXFAST,
	OPT_TRIM_THRESHOLD,
	OPT_TOP_PAD,
	OPT_MMAP_THRESHOLD,
	OPT_MMAP_MAX,
	OPT_ARENA_TEST,
	OPT_ARENA_MAX,
	OPT_PERTURB,
	OPT_TCACHE_COUNT,
	OPT_TCACHE_MAX,
	OPT_TCACHE_UNSORTED_LIMIT,
	OPT_RELEASE_THRESHOLD,
	OPT_RELEASE_MADV_FREE,
	OPT_RELEASE_DELAY,
	OPT_RELEASE_BATCH,
	OPT_SAMPLE_INTERVAL,
};

struct opt_desc {
	enum opt_id id;
	const char *name;
	const char *env;
	const char *env_alt; /* glibc spells the arena variables without the underscore */
	size_t def;
	size_t min;
	size_t max;
};

static const struct opt_desc options[] = {
	{OPT_MXFAST, "mxfast", "MALLOC_MXFAST_", NULL, DEFAULT_MXFAST, 0, MAX_FAST_SIZE},
	{OPT_TRIM_THRESHOLD, "trim_threshold", "MALLOC_TRIM_THRESHOLD_", NULL,
	 DEFAULT_MMAP_THRESHOLD_MIN, 0, SIZE_MAX},
	{OPT_TOP_PAD, "top_pad", "MALLOC_TOP_PAD_", NULL, 128 * 1024, 0, SIZE_MAX},
	{OPT_MMAP_THRESHOLD, "mmap_threshold", "MALLOC_MMAP_THRESHOLD_", NULL,
	 DEFAULT_MMAP_THRESHOLD_MIN, 0, HEAP_MAX_SIZE / 2},
	{OPT_MMAP_MAX, "mmap_max", "MALLOC_MMAP_MAX_", NULL, 65536, 0, INT_MAX},
	{OPT_ARENA_TEST, "arena_test", "MALLOC_ARENA_TEST_", "MALLOC_ARENA_TEST", 8, 1, SIZE_MAX},
	{OPT_ARENA_MAX, "arena_max", "MALLOC_ARENA_MAX_", "MALLOC_ARENA_MAX", 0, 1, SIZE_MAX},
	{OPT_PERTURB, "perturb", "MALLOC_PERTURB_", NULL, 0, 0, 0xff},
	{OPT_TCACHE_COUNT, "tcache_count", "MALLOC_TCACHE_COUNT_", NULL, TCACHE_FILL_COUNT, 0,
	 TCACHE_COUNT_MAX},
	{OPT_TCACHE_MAX, "tcache_max", "MALLOC_TCACHE_MAX_", NULL, MAX_TCACHE_SIZE, 0,
	 MAX_TCACHE_SIZE},
	{OPT_TCACHE_UNSORTED_LIMIT, "tcache_unsorted_limit", "MALLOC_TCACHE_UNSORTED_LIMIT_", NULL,
	 0, 0, SIZE_MAX},
	{OPT_RELEASE_THRESHOLD, "release_threshold", "MALLOC_RELEASE_THRESHOLD_", NULL,
	 DEFAULT_RELEASE_THRESHOLD, 0, SIZE_MAX},
	{OPT_RELEASE_MADV_FREE, "release_madv_free", "MALLOC_RELEASE_MADV_FREE_", NULL, 0, 0, 1},
	{OPT_RELEASE_DELAY, "release_delay", "MALLOC_RELEASE_DELAY_", NULL, DEFAULT_RELEASE_DELAY,
	 0, SIZE_MAX},
	{OPT_RELEASE_BATCH, "release_batch", "MALLOC_RELEASE_BATCH_", NULL, 1, 0, 1},
	{OPT_SAMPLE_INTERVAL, "sample_interval", "MALLOC_SAMPLE_INTERVAL_", NULL, 0, 0,
	 (size_t)1 << 40},
};

static void set_tcache_max(size_t bytes)
{
	mp_.tcache_max_bytes = bytes;
	mp_.tcache_bins = csize2tidx(request2size(bytes)) + 1;
	mp_.tcache_max_csize = (mp_.tcache_bins - 1) * MALLOC_ALIGNMENT + MINSIZE;
}

/* Applies a value already checked against the table's bounds. */
static void apply(enum opt_id id, size_t v, bool from_mallopt)
{
	switch (id) {
	case OPT_MXFAST:
		set_max_fast(v);
		break;
	case OPT_TRIM_THRESHOLD:
		__atomic_store_n(&mp_.trim_threshold, v, __ATOMIC_RELAXED);
		mp_.no_dyn_threshold = 1;
		break;
	case OPT_TOP_PAD:
		mp_.top_pad = v;
		mp_.no_dyn_threshold = 1;
		break;
	case OPT_MMAP_THRESHOLD:
		__atomic_store_n(&mp_.mmap_threshold, v, __ATOMIC_RELAXED);
		mp_.no_dyn_threshold = 1;
		break;
	case OPT_MMAP_MAX:
		mp_.n_mmaps_max = (int)v;
		mp_.no_dyn_threshold = 1;
		break;
	case OPT_ARENA_TEST:
		mp_.arena_test = v;
		break;
	case OPT_ARENA_MAX:
		mp_.arena_max = v;
		break;
	case OPT_PERTURB:
		mp_.perturb_byte = (int)v;
		break;
	case OPT_TCACHE_COUNT:
		/* The cache is per thread and lock-free: only settable before first use. */
		if (!from_mallopt)
			mp_.tcache_count = v;
		break;
	case OPT_TCACHE_MAX:
		if (!from_mallopt)
			set_tcache_max(v);
		break;
	case OPT_TCACHE_UNSORTED_LIMIT:
		mp_.tcache_unsorted_limit = v;
		break;
	case OPT_RELEASE_THRESHOLD:
		mp_.release_threshold = v;
		ptm_i_release_params();
		break;
	case OPT_RELEASE_MADV_FREE:
		mp_.release_madv_free = (int)v;
		break;
	case OPT_RELEASE_DELAY:
		mp_.release_delay = v;
		break;
	case OPT_RELEASE_BATCH:
		__atomic_store_n(&mp_.release_batch, (int)v, __ATOMIC_RELAXED);
		break;
	case OPT_SAMPLE_INTERVAL:
		__atomic_store_n(&mp_.sample_interval, v, __ATOMIC_RELAXED);
		/* Other threads' caches pick it up when they next sample or start. */
		if (from_mallopt && ptm_i_tcache != NULL)
			ptm_i_sample_reset(ptm_i_tcache);
		break;
	}
}

static void warn(const char *env, const char *why)
{
	const char *parts[] = {"libptm: ignoring ", env, ": ", why, "\n"};

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		ssize_t r = write(STDERR_FILENO, parts[i], strlen(parts[i]));

		(void)r;
	}
}

/* Decimal (or 0x hex) with an optional K/M/G suffix; the whole string must parse. */
static int parse_size(const char *s, size_t *out)
{
	size_t v = 0, base = 10, mult = 1;
	const char *p = s;

	if (*p == '\0')
		return -EINVAL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
		if (*p == '\0')
			return -EINVAL;
	}
	for (; *p; p++) {
		size_t d;

		if (*p >= '0' && *p <= '9')
			d = (size_t)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (size_t)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (size_t)(*p - 'A' + 10);
		else
			break;
		if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
			return -ERANGE;
	}
	if (p == s)
		return -EINVAL;
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1024;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1024 * 1024 * 1024;
		p++;
		break;
	default:
		return -EINVAL;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0')
		return -EINVAL;
	if (__builtin_mul_overflow(v, mult, &v))
		return -ERANGE;
	*out = v;
	return 0;
}

static const char *env_lookup(const char *name)
{
	size_t n;

	if (name == NULL || environ == NULL)
		return NULL;
	n = strlen(name);
	for (char **e = environ; *e != NULL; e++) {
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	}
	return NULL;
}

void ptm_i_options_init(void)
{
	set_tcache_max(MAX_TCACHE_SIZE);
	set_max_fast(DEFAULT_MXFAST);
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		const struct opt_desc *o = &options[i];
		const char *val = env_lookup(o->env);
		const char *used = o->env;
		size_t v;

		if (val == NULL && o->env_alt != NULL) {
			val = env_lookup(o->env_alt);
			used = o->env_alt;
		}
		if (val == NULL)
			continue;
		if (parse_size(val, &v) != 0) {
			warn(used, "not a number");
			continue;
		}
		if (v < o->min || v > o->max) {
			warn(used, "out of range");
			continue;
		}
		apply(o->id, v, false);
	}
}

/* glibc's mallopt: 1 on success, 0 on a value it rejects. */
int ptm_i_mallopt(int param, int value)
{
	int res = 1;
	enum opt_id id;
	const struct opt_desc *o = NULL;

	ptm_i_ensure_init();
	switch (param) {
	case M_MXFAST:
		id = OPT_MXFAST;
		break;
	case M_TRIM_THRESHOLD:
		id = OPT_TRIM_THRESHOLD;
		break;
	case M_TOP_PAD:
		id = OPT_TOP_PAD;
		break;
	case M_MMAP_THRESHOLD:
		id = OPT_MMAP_THRESHOLD;
		break;
	case M_MMAP_MAX:
		id = OPT_MMAP_MAX;
		break;
	case M_CHECK_ACTION:
		return 1;
	case M_PERTURB:
		id = OPT_PERTURB;
		break;
	case M_ARENA_TEST:
		id = OPT_ARENA_TEST;
		break;
	case M_ARENA_MAX:
		id = OPT_ARENA_MAX;
		break;
	case PTM_M_RELEASE_THRESHOLD:
		id = OPT_RELEASE_THRESHOLD;
		break;
	case PTM_M_RELEASE_MADV_FREE:
		id = OPT_RELEASE_MADV_FREE;
		break;
	case PTM_M_RELEASE_DELAY:
		id = OPT_RELEASE_DELAY;
		break;
	case PTM_M_RELEASE_BATCH:
		id = OPT_RELEASE_BATCH;
		break;
	case PTM_M_SAMPLE_INTERVAL:
		id = OPT_SAMPLE_INTERVAL;
		break;
	default:
		/* glibc ignores parameters it does not know, and reports success. */
		return 1;
	}
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (options[i].id == id)
			o = &options[i];

	ptm_i_arena_lock(main_arena);
	/* Changing the fastbin limit strands nothing: empty the fastbins first. */
	ptm_i_consolidate(main_arena);
	switch (id) {
	case OPT_MXFAST:
		if (value >= 0 && (size_t)value <= o->max)
			apply(id, (size_t)value, true);
		else
			res = 0;
		break;
	case OPT_MMAP_THRESHOLD:
		/* Like glibc, the int is taken as a size_t. */
		if ((size_t)(long)value <= o->max)
			apply(id, (size_t)(long)value, true);
		else
			res = 0;
		break;
	case OPT_ARENA_TEST:
	case OPT_ARENA_MAX:
		if (value > 0)
			apply(id, (size_t)value, true);
		break;
	case OPT_MMAP_MAX:
	case OPT_PERTURB:
		apply(id, (size_t)(unsigned)value, true);
		break;
	case OPT_RELEASE_THRESHOLD:
	case OPT_RELEASE_MADV_FREE:
	case OPT_RELEASE_DELAY:
	case OPT_RELEASE_BATCH:
	case OPT_SAMPLE_INTERVAL:
		if (value >= 0 && (size_t)value <= o->max)
			apply(id, (size_t)value, true);
		else
			res = 0;
		break;
	default:
		apply(id, (size_t)(long)value, true);
		break;
	}
	if (id == OPT_RELEASE_THRESHOLD || id == OPT_RELEASE_DELAY)
		ptm_i_release_recheck();
	ptm_i_arena_unlock(main_arena);
	return res;
}
