// SPDX-License-Identifier: MIT
/*
 * census.c - glibc's heap census (census_glibc.h): finds what the walk
 * needs in the target's libc, lists the arenas, and walks them
 * (heap_walk.c).
 */
#include "census_glibc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena_map.h"
#include "elf_file.h"
#include "freeze.h"
#include "heap_walk.h"
#include "log.h"
#include "snapshot.h"

/* struct malloc_par in glibc 2.36 (x86-64), checked against libc6-dbg's DWARF. */
#define MP_SIZE             136
#define MP_TRIM_THRESHOLD   0
#define MP_MMAP_THRESHOLD   16
#define MP_ARENA_TEST       24
#define MP_ARENA_MAX        32
#define MP_THP_PAGESIZE     40
#define MP_HP_PAGESIZE      48
#define MP_HP_FLAGS         56
#define MP_N_MMAPS          60
#define MP_N_MMAPS_MAX      64
#define MP_MAX_N_MMAPS      68
#define MP_NO_DYN_THRESHOLD 72
#define MP_MMAPPED_MEM      80
#define MP_MAX_MMAPPED_MEM  88
#define MP_SBRK_BASE        96
#define MP_TCACHE_BINS      104
#define MP_TCACHE_MAX_BYTES 112
#define MP_TCACHE_COUNT     120
#define MAX_TCACHE_BYTES    1032 /* tidx2usize(63): the largest request the cache takes */
#define MMAP_THRESHOLD_MAX  (32ull << 20)

/* Arena-walk retries of an arena that keeps changing. */
#define CENSUS_RETRIES 3
/* libc files larger than this are not searched for their version banner. */
#define MAX_LIBC_FILE (64u << 20)
/* libc's writable data is well under this. */
#define MAX_LIBC_DATA (8u << 20)

/* What one libc (by build-id) tells every process that maps it. */
struct libc_info {
	char build_id[41];
	const struct hf_ptmalloc_layout *layout; /* NULL: unavailable, see reason */
	char reason[HF_CENSUS_REASON_LEN];
	uint64_t mp_vaddr;  /* link-time address of mp_ (libc6-dbg), else 0 */
	uint64_t key_vaddr; /* ... of tcache_key */
};

#define LIBC_CACHE 16
static pthread_mutex_t libc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct libc_info libc_cache[LIBC_CACHE];
static size_t libc_cached;

struct glibc_cache {
	bool located;
	struct libc_info info;
	struct hf_libc_map libc;
	uint64_t main_arena;
	uint64_t mp;       /* mp_ in the target, 0 unknown */
	uint64_t key_addr; /* tcache_key in the target, 0 unknown */
};

static bool heuristic_forced(void)
{
	const char *v = getenv("HF_FORCE_CENSUS_HEURISTIC");

	return v && strcmp(v, "1") == 0;
}

/* "2.36" from the "... release version 2.36." banner that libc carries. */
static int libc_version(const char *path, char *out, size_t len)
{
	static const char tag[] = "release version ";
	struct stat sb;
	char *buf, *hit;
	ssize_t got;
	int fd, err = -ENOENT;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
	    sb.st_size > MAX_LIBC_FILE) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	got = pread(fd, buf, (size_t)sb.st_size, 0);
	close(fd);
	if (got > 0) {
		buf[got] = '\0';
		for (hit = memmem(buf, (size_t)got, tag, sizeof(tag) - 1); hit;
		     hit = memmem(hit + 1, (size_t)(buf + got - hit - 1), tag, sizeof(tag) - 1)) {
			const char *v = hit + sizeof(tag) - 1;
			size_t n = strspn(v, "0123456789.");

			/* "2.36." ends the sentence: the version is the digits before it. */
			while (n && v[n - 1] == '.')
				n--;
			if (n >= 3 && n < len && strchr(v, '.') && strchr(v, '.') < v + n) {
				memcpy(out, v, n);
				out[n] = '\0';
				err = 0;
				break;
			}
		}
	}
	free(buf);
	return err;
}

/* The local symbol's link-time address in libc6-dbg's debug file, or 0. */
static uint64_t debug_symbol(const char *build_id, const char *name)
{
	char debug[HF_PATH_LEN];
	uint64_t vaddr = 0;

	if (hf_debug_file_path(HF_GLIBC_DEBUG_BUILD_ID_DIR, build_id, debug, sizeof(debug)) != 0 ||
	    hf_elf_symbol(debug, name, &vaddr, NULL, NULL) != 0)
		return 0;
	return vaddr;
}

static void libc_describe(const struct hf_libc_map *libc, struct libc_info *info)
{
	char version[32];
	struct hf_elf e;
	int err;

	memset(info, 0, sizeof(*info));
	err = hf_elf_open(libc->path, &e, NULL, 0);
	if (err) {
		snprintf(info->reason, sizeof(info->reason),
			 "heapfragd cannot read the process's libc %.80s: %s", libc->target_path,
			 strerror(-err));
		return;
	}
	hf_elf_build_id(&e, info->build_id, sizeof(info->build_id));
	hf_elf_close(&e);
	err = libc_version(libc->path, version, sizeof(version));
	if (err) {
		snprintf(info->reason, sizeof(info->reason),
			 "the process's libc %.80s carries no glibc release banner, so its malloc "
			 "layout is unknown",
			 libc->target_path);
		return;
	}
	if (strcmp(version, "2.36") != 0) {
		snprintf(info->reason, sizeof(info->reason),
			 "the process's libc is glibc %s, whose malloc layout is not in heapfragd's "
			 "table (it knows glibc 2.36 on x86-64)",
			 version);
		return;
	}
	info->layout = &hf_layout_glibc_2_36;
	if (info->build_id[0]) {
		info->mp_vaddr = debug_symbol(info->build_id, "mp_");
		info->key_vaddr = debug_symbol(info->build_id, "tcache_key");
	}
}

/* The libc's description, from the cache by build-id or made now. */
static void libc_lookup(const struct hf_libc_map *libc, struct libc_info *out)
{
	char build_id[41] = "";
	struct hf_elf e;

	if (hf_elf_open(libc->path, &e, NULL, 0) == 0) {
		hf_elf_build_id(&e, build_id, sizeof(build_id));
		hf_elf_close(&e);
	}
	pthread_mutex_lock(&libc_lock);
	for (size_t i = 0; build_id[0] && i < libc_cached; i++) {
		if (strcmp(libc_cache[i].build_id, build_id) == 0) {
			*out = libc_cache[i];
			pthread_mutex_unlock(&libc_lock);
			return;
		}
	}
	pthread_mutex_unlock(&libc_lock);
	libc_describe(libc, out);
	if (!out->build_id[0])
		return;
	pthread_mutex_lock(&libc_lock);
	libc_cache[libc_cached % LIBC_CACHE] = *out;
	libc_cached++;
	if (libc_cached >= 2 * LIBC_CACHE)
		libc_cached = LIBC_CACHE;
	pthread_mutex_unlock(&libc_lock);
}

static int read_remote(struct hf_mem *mem, uint64_t addr, void *buf, size_t len)
{
	return mem->read(mem, addr, buf, len);
}

static uint64_t get64(const unsigned char *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint32_t get32(const unsigned char *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static bool pow2_or_0(uint64_t v)
{
	return (v & (v - 1)) == 0;
}

/* Does buf read as glibc 2.36's malloc_par (the fields heapfragd uses and their neighbours)? */
static bool mp_sane(const unsigned char *p, uint64_t page)
{
	int32_t n_mmaps = (int32_t)get32(p, MP_N_MMAPS);
	int32_t max_n_mmaps = (int32_t)get32(p, MP_MAX_N_MMAPS);

	return get64(p, MP_TCACHE_BINS) <= 64 && get64(p, MP_TCACHE_MAX_BYTES) <= MAX_TCACHE_BYTES &&
	       get64(p, MP_TCACHE_COUNT) <= 65535 && get64(p, MP_MMAP_THRESHOLD) <= MMAP_THRESHOLD_MAX &&
	       get64(p, MP_ARENA_TEST) <= (1u << 20) && get64(p, MP_ARENA_MAX) <= (1u << 20) &&
	       pow2_or_0(get64(p, MP_THP_PAGESIZE)) && pow2_or_0(get64(p, MP_HP_PAGESIZE)) &&
	       get32(p, MP_HP_FLAGS) < (1u << 16) && n_mmaps >= 0 && max_n_mmaps >= n_mmaps &&
	       (int32_t)get32(p, MP_N_MMAPS_MAX) >= 0 && get32(p, MP_NO_DYN_THRESHOLD) <= 1 &&
	       get64(p, MP_MMAPPED_MEM) <= get64(p, MP_MAX_MMAPPED_MEM) &&
	       get64(p, MP_MMAPPED_MEM) % page == 0 && (n_mmaps > 0 || get64(p, MP_MMAPPED_MEM) == 0);
}

/* The heuristic's test: a sane malloc_par whose sbrk_base is the [heap] mapping's start. */
static bool mp_plausible(const unsigned char *p, uint64_t heap_start, uint64_t page)
{
	return heap_start && get64(p, MP_SBRK_BASE) == heap_start && mp_sane(p, page);
}

/* libc's writable data, copied (at most MAX_LIBC_DATA). */
static int libc_data(struct hf_mem *mem, const struct hf_libc_map *libc, unsigned char **out,
		     size_t *len)
{
	size_t n = (size_t)(libc->data_end - libc->data_start);
	unsigned char *buf;
	int err;

	if (libc->data_end <= libc->data_start || n > MAX_LIBC_DATA)
		return -EINVAL;
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	err = read_remote(mem, libc->data_start, buf, n);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* The one malloc_par in libc's data; 0 when none or several read as one. */
static uint64_t find_mp(struct hf_mem *mem, const struct hf_libc_map *libc, uint64_t heap_start,
			uint64_t page)
{
	unsigned char *buf;
	uint64_t found = 0;
	size_t len, matches = 0;

	if (!heap_start || libc_data(mem, libc, &buf, &len) != 0)
		return 0;
	for (size_t off = 0; off + MP_SIZE <= len; off += 8) {
		if (!mp_plausible(buf + off, heap_start, page))
			continue;
		if (matches++ == 0)
			found = libc->data_start + off;
	}
	free(buf);
	return matches == 1 ? found : 0;
}

/* ---- the cache's key, recognised in the heap ---- */

struct key_set {
	uint64_t *slot; /* open addressing; 0 is empty (the key is never 0) */
	uint8_t *count;
	size_t mask;
	const struct hf_vma *vmas;
	size_t nr_vmas;
};

static size_t key_hash(uint64_t v, size_t mask)
{
	return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 17) & mask;
}

static int key_set_build(struct key_set *ks, const unsigned char *data, size_t len)
{
	size_t words = len / 8, cap = 1;

	while (cap < 2 * words)
		cap <<= 1;
	ks->slot = calloc(cap, sizeof(*ks->slot));
	ks->count = calloc(cap, 1);
	if (!ks->slot || !ks->count)
		return -ENOMEM;
	ks->mask = cap - 1;
	for (size_t i = 0; i < words; i++) {
		uint64_t v = get64(data, i * 8);
		size_t h;

		if (v < (1ull << 32))
			continue;
		for (h = key_hash(v, ks->mask); ks->slot[h] && ks->slot[h] != v; h = (h + 1) & ks->mask)
			;
		ks->slot[h] = v;
		if (ks->count[h] < 2)
			ks->count[h]++;
	}
	return 0;
}

static void key_set_free(struct key_set *ks)
{
	free(ks->slot);
	free(ks->count);
}

/* A random key: not small, not an address of the target, stored once in libc's data. */
static bool key_probe(void *ctx, uint64_t v)
{
	const struct key_set *ks = ctx;
	size_t h;

	if (v < (1ull << 32))
		return false;
	for (size_t i = 0; i < ks->nr_vmas; i++)
		if (v >= ks->vmas[i].start && v < ks->vmas[i].end)
			return false;
	for (h = key_hash(v, ks->mask); ks->slot[h]; h = (h + 1) & ks->mask)
		if (ks->slot[h] == v)
			return ks->count[h] == 1;
	return false;
}

/* Where in libc's data the key is stored (the one word equal to it). */
static uint64_t key_address(struct hf_mem *mem, const struct hf_libc_map *libc, uint64_t key)
{
	unsigned char *buf;
	uint64_t at = 0;
	size_t len;

	if (libc_data(mem, libc, &buf, &len) != 0)
		return 0;
	for (size_t off = 0; off + 8 <= len; off += 8) {
		if (get64(buf, off) == key) {
			if (at) {
				at = 0;
				break;
			}
			at = libc->data_start + off;
		}
	}
	free(buf);
	return at;
}

/* ---- the arena ring ---- */

static bool is_heap_arena(uint64_t addr, const struct hf_ptmalloc_layout *l)
{
	return addr >= l->heap_info_size && ((addr - l->heap_info_size) & (l->heap_max - 1)) == 0;
}

/*
 * main_arena first, then its `next` ring, each a thread arena at the start
 * of a heap; a ring that does not close is reported in *broken.
 */
static int list_arenas(struct hf_mem *mem, uint64_t main_arena, const struct hf_ptmalloc_layout *l,
		       uint64_t **out, size_t *n, char *broken, size_t broken_len)
{
	uint64_t *v = malloc(HF_WALK_MAX_ARENAS * sizeof(*v)), next;
	size_t cnt = 0;
	int err;

	*out = NULL;
	*n = 0;
	broken[0] = '\0';
	if (!v)
		return -ENOMEM;
	v[cnt++] = main_arena;
	for (uint64_t at = main_arena;;) {
		err = read_remote(mem, at + l->off_next, &next, sizeof(next));
		if (err == -ESRCH || err == -EPERM) {
			free(v);
			return err;
		}
		if (err) {
			snprintf(broken, broken_len, "the arena list cannot be read at %#" PRIx64, at);
			break;
		}
		if (next == main_arena)
			break;
		if (!is_heap_arena(next, l)) {
			snprintf(broken, broken_len,
				 "the arena list breaks after %zu arenas: %#" PRIx64
				 " is not at the start of a heap",
				 cnt, next);
			break;
		}
		for (size_t i = 0; i < cnt; i++) {
			if (v[i] == next) {
				snprintf(broken, broken_len,
					 "the arena list loops back to %#" PRIx64
					 " without returning to main_arena",
					 next);
				goto done;
			}
		}
		if (cnt == HF_WALK_MAX_ARENAS) {
			snprintf(broken, broken_len, "the process has more than %d arenas",
				 HF_WALK_MAX_ARENAS);
			break;
		}
		v[cnt++] = next;
		at = next;
	}
done:
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- the census ---- */

static void unavailable(struct hf_census *out, const char *why)
{
	out->state = HF_CENSUS_UNAVAILABLE;
	snprintf(out->reason, sizeof(out->reason), "%s", why);
}

/* Finds libc, its layout and main_arena once; a transient failure is tried again later. */
static int locate(struct glibc_cache *c, pid_t pid, struct hf_census *out)
{
	enum hf_main_arena_source src;
	unsigned int flags = heuristic_forced() ? HF_ARENA_FORCE_HEURISTIC : 0;
	int err;

	err = hf_libc_map_read(pid, &c->libc);
	if (err == -ESRCH)
		return err;
	if (err) {
		unavailable(out, "the process has not mapped libc yet");
		return 1;
	}
	libc_lookup(&c->libc, &c->info);
	if (!c->info.layout) {
		unavailable(out, c->info.reason);
		return 1;
	}
	err = hf_main_arena_find(pid, &c->libc, flags, &c->main_arena, &src);
	if (err == -ESRCH)
		return err;
	if (err) {
		unavailable(out, err == -ENOTUNIQ
					 ? "main_arena cannot be told apart in libc's data"
					 : "main_arena is not initialised yet (no malloc so far)");
		return 1;
	}
	if (!heuristic_forced()) {
		c->mp = c->info.mp_vaddr ? c->libc.bias + c->info.mp_vaddr : 0;
		c->key_addr = c->info.key_vaddr ? c->libc.bias + c->info.key_vaddr : 0;
	}
	c->located = true;
	return 0;
}

int hf_glibc_census(const struct hf_census_job *job, void **cachep, struct hf_census *out,
		    struct hf_census_detail **detail)
{
	struct glibc_cache *c = *cachep;
	struct hf_freeze_copy fc = {.pid = job->pid};
	struct key_set ks = {0};
	struct hf_walk_params p = {0};
	unsigned char mp[MP_SIZE];
	bool mp_known = false;
	struct hf_vma *vmas = NULL;
	uint64_t *arenas = NULL, heap_start = 0, page = (uint64_t)sysconf(_SC_PAGESIZE);
	char broken[HF_CENSUS_REASON_LEN];
	struct hf_mem mem = {0}, *walk_mem;
	size_t nr_vmas = 0, nr_arenas = 0;
	int err;

	if (detail)
		*detail = NULL;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		*cachep = c;
	}
	if (!c->located) {
		err = locate(c, job->pid, out);
		if (err)
			return err < 0 ? err : 0;
	}
	err = hf_mem_process_open(job->pid, &mem);
	if (err)
		goto unreadable;
	err = hf_vmas_read(job->pid, &vmas, &nr_vmas, &heap_start);
	if (err)
		goto unreadable;
	if (!c->mp)
		c->mp = find_mp(&mem, &c->libc, heap_start, page);
	if (c->mp) {
		err = read_remote(&mem, c->mp, mp, sizeof(mp));
		if (err == -ESRCH || err == -EPERM)
			goto unreadable;
		/* Even at its symbol's address, what it holds is checked like the rest. */
		mp_known = err == 0 && mp_sane(mp, page);
	}
	p.layout = c->info.layout;
	p.page_size = page;
	p.sbrk_base = mp_known ? get64(mp, MP_SBRK_BASE) : heap_start;
	p.tcache_max_csize = (mp_known ? get64(mp, MP_TCACHE_MAX_BYTES) : MAX_TCACHE_BYTES) + 8 + 15;
	p.tcache_max_csize &= ~15ull;
	if (c->key_addr) {
		err = read_remote(&mem, c->key_addr, &p.tcache_key, sizeof(p.tcache_key));
		if (err == -ESRCH || err == -EPERM)
			goto unreadable;
		/* 0 until the first thread cache is set up: then no chunk is cached. */
		p.tcache_key_known = err == 0 && p.tcache_key;
	}
	if (!c->key_addr) {
		unsigned char *data;
		size_t len;

		if (libc_data(&mem, &c->libc, &data, &len) == 0) {
			if (key_set_build(&ks, data, len) == 0) {
				ks.vmas = vmas;
				ks.nr_vmas = nr_vmas;
				p.key_probe = key_probe;
				p.key_ctx = &ks;
			}
			free(data);
		}
	}
	err = list_arenas(&mem, c->main_arena, c->info.layout, &arenas, &nr_arenas, broken,
			  sizeof(broken));
	if (err)
		goto unreadable;
	p.arenas = arenas;
	p.nr_arenas = nr_arenas;
	p.retries = job->retries ? job->retries : CENSUS_RETRIES;
	p.vmas = vmas;
	p.nr_vmas = nr_vmas;
	p.want_heapmap = detail != NULL;
	p.sites = job->sites;
	if (job->stop) {
		p.copy_begin = hf_freeze_copy_begin;
		p.copy_end = hf_freeze_copy_end;
		p.copy_ctx = &fc;
	}
	/* A test's tap (census.h) may wrap the reader and see the walk. */
	walk_mem = job->tap ? job->tap->mem(job->tap->ctx, &mem) : &mem;
	err = hf_heap_walk(walk_mem, &p, out, detail);
	if (job->tap)
		job->tap->walked(job->tap->ctx, &p, err, out);
	if (err)
		goto unreadable;
	if (!c->key_addr && p.tcache_key_known)
		c->key_addr = key_address(&mem, &c->libc, p.tcache_key);
	if (broken[0]) {
		out->state = HF_CENSUS_PARTIAL;
		snprintf(out->reason, sizeof(out->reason), "%s", broken);
	}
	out->mmapped.chunks = mp_known ? get32(mp, MP_N_MMAPS) : HF_UNKNOWN;
	out->mmapped.bytes = mp_known ? get64(mp, MP_MMAPPED_MEM) : HF_UNKNOWN;
	out->stopped_seconds = job->stop && !fc.refused ? fc.stopped : NAN;
	out->bytes_read = mem.bytes_read;
	goto cleanup;

unreadable:
	if (err == -ESRCH)
		goto cleanup;
	if (err == -EPERM || err == -EACCES) {
		unavailable(out, "heapfragd may not read this process's memory (it needs "
				 "CAP_SYS_PTRACE, or the process is protected)");
		err = 0;
	} else if (err != -ENOMEM) {
		char why[HF_CENSUS_REASON_LEN];

		snprintf(why, sizeof(why), "the process's heap could not be read: %s",
			 strerror(-err));
		unavailable(out, why);
		err = 0;
	}
cleanup:
	key_set_free(&ks);
	free(arenas);
	free(vmas);
	hf_mem_process_close(&mem);
	return err;
}

void hf_glibc_census_forget(void *cache)
{
	free(cache);
}
