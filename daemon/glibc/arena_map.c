// SPDX-License-Identifier: MIT
/*
 * arena_map.c - glibc 2.36's arenas seen from outside the process: main_arena
 * from libc6-dbg's symbols or a heuristic, the rest from the `next` ring and
 * the 64 MiB-aligned heaps in /proc/PID/maps.
 */
#include "arena_map.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "elf_file.h"
#include "log.h"

/* Offsets in struct malloc_state and struct malloc_chunk (glibc 2.36, x86-64). */
#define MS_MUTEX            0
#define MS_FLAGS            4
#define MS_HAVE_FASTCHUNKS  8
#define MS_BINS             112
#define MS_NEXT             2160
#define MS_NEXT_FREE        2168
#define MS_ATTACHED_THREADS 2176
#define MS_SYSTEM_MEM       2184
#define MS_MAX_SYSTEM_MEM   2192
#define CHUNK_FD            16
/* FASTCHUNKS, NONCONTIGUOUS and ARENA_CORRUPTION are malloc_state's only flags. */
#define MS_FLAG_MASK 0x7

/* libc's writable data is well under this; a bigger region is not libc's. */
#define MAX_DATA_SCAN (4u << 20)

const char *hf_main_arena_source_name(enum hf_main_arena_source src)
{
	return src == HF_MAIN_ARENA_DEBUG_SYMBOLS ? "debug-symbols" : "heuristic";
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

bool hf_mstate_decode(const void *buf, size_t len, uint64_t addr, struct hf_mstate *out)
{
	const unsigned char *p = buf;
	unsigned int empty = 0;
	uint32_t mutex, fastchunks;
	int32_t flags;

	if (len < HF_GLIBC_MSTATE_SIZE || (addr & 7))
		return false;
	mutex = get32(p, MS_MUTEX);
	flags = (int32_t)get32(p, MS_FLAGS);
	fastchunks = get32(p, MS_HAVE_FASTCHUNKS);
	if (mutex > 2 || (flags & ~MS_FLAG_MASK) || fastchunks > 1)
		return false;
	/* Bin i (1..127) is a fake chunk whose fd/bk sit at bins[2(i-1)], bins[2(i-1)+1]. */
	for (unsigned int i = 0; i < HF_GLIBC_NBINS - 1; i++) {
		uint64_t fd = get64(p, MS_BINS + 16 * i);
		uint64_t bk = get64(p, MS_BINS + 16 * i + 8);
		uint64_t self = addr + MS_BINS + 16 * i - CHUNK_FD;

		if (fd == self && bk == self) {
			empty++;
			continue;
		}
		if (!fd || !bk || fd == self || bk == self || (fd & 15) || (bk & 15))
			return false;
	}
	if (empty < HF_ARENA_MIN_EMPTY_BINS || get64(p, MS_NEXT) == 0 || (get64(p, MS_NEXT) & 7))
		return false;
	if (get64(p, MS_MAX_SYSTEM_MEM) < get64(p, MS_SYSTEM_MEM))
		return false;
	if (out) {
		out->mutex = mutex;
		out->flags = flags;
		out->next = get64(p, MS_NEXT);
		out->next_free = get64(p, MS_NEXT_FREE);
		out->attached_threads = get64(p, MS_ATTACHED_THREADS);
		out->system_mem = get64(p, MS_SYSTEM_MEM);
		out->max_system_mem = get64(p, MS_MAX_SYSTEM_MEM);
	}
	return true;
}

bool hf_heap_info_decode(const void *buf, size_t len, uint64_t heap_addr, struct hf_heap_info *out)
{
	const unsigned char *p = buf;
	struct hf_heap_info h;

	if (len < HF_GLIBC_HEAP_INFO_SIZE || (heap_addr & (HF_GLIBC_HEAP_MAX_SIZE - 1)))
		return false;
	h.ar_ptr = get64(p, 0);
	h.prev = get64(p, 8);
	h.size = get64(p, 16);
	h.mprotect_size = get64(p, 24);
	if (!h.ar_ptr || (h.ar_ptr & 7) || h.size > HF_GLIBC_HEAP_MAX_SIZE ||
	    h.mprotect_size > HF_GLIBC_HEAP_MAX_SIZE || h.size > h.mprotect_size ||
	    (h.prev & (HF_GLIBC_HEAP_MAX_SIZE - 1)))
		return false;
	/* The first heap of an arena holds its malloc_state right after the header. */
	if (!h.prev && h.ar_ptr != heap_addr + HF_GLIBC_HEAP_INFO_SIZE)
		return false;
	if (out)
		*out = h;
	return true;
}

int hf_debug_file_path(const char *root, const char *build_id, char *buf, size_t len)
{
	size_t n = strlen(build_id);
	int w;

	if (n < 4 || n % 2 || strspn(build_id, "0123456789abcdef") != n)
		return -EINVAL;
	w = snprintf(buf, len, "%s/%.2s/%s.debug", root, build_id, build_id + 2);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

static bool is_libc_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strcmp(base, "libc.so.6") == 0 ||
	       (strncmp(base, "libc-", 5) == 0 && strlen(base) > 8 &&
		strcmp(base + strlen(base) - 3, ".so") == 0);
}

int hf_libc_map_parse(FILE *maps, pid_t pid, struct hf_libc_map *out)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false, in_data = false;
	int err = -ENOENT;

	memset(out, 0, sizeof(*out));
	while (getline(&line, &cap, maps) > 0) {
		unsigned long long start, end, off, inode;
		char perms[5], dev[16];
		int path_at = 0;
		const char *path;

		if (sscanf(line, "%llx-%llx %4s %llx %15s %llu %n", &start, &end, perms, &off, dev,
			   &inode, &path_at) < 6)
			continue;
		path = path_at ? line + path_at : "";
		line[strcspn(line, "\n")] = '\0';
		if (in_data) {
			/* libc's .bss continues in the anonymous mapping right after its data. */
			if (!*path && inode == 0 && start == out->data_end && perms[1] == 'w')
				out->data_end = end;
			in_data = false;
		}
		if (!*path || !is_libc_name(path))
			continue;
		if (!found) {
			if (strlen(path) >= sizeof(out->target_path)) {
				err = -ENAMETOOLONG;
				break;
			}
			strcpy(out->target_path, path);
			if (snprintf(out->path, sizeof(out->path), "/proc/%d/root%s", (int)pid,
				     path) >= (int)sizeof(out->path)) {
				err = -ENAMETOOLONG;
				break;
			}
			found = true;
		} else if (strcmp(path, out->target_path) != 0) {
			continue;
		}
		if (off == 0 && !out->bias)
			out->bias = start;
		if (perms[0] == 'r' && perms[1] == 'w' && !out->data_start) {
			out->data_start = start;
			out->data_end = end;
			in_data = true;
		}
	}
	free(line);
	if (err == -ENOENT && found && out->bias && out->data_start)
		err = 0;
	return err;
}

int hf_libc_map_read(pid_t pid, struct hf_libc_map *out)
{
	char path[64];
	uint64_t first_vaddr = UINT64_MAX;
	FILE *f;
	int fd, err;
	Elf *elf = NULL;
	size_t nph;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	err = hf_libc_map_parse(f, pid, out);
	fclose(f);
	if (err)
		return err;

	/* The mapping at file offset 0 holds the lowest PT_LOAD; its p_vaddr is usually 0. */
	elf_version(EV_CURRENT);
	fd = open(out->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &nph) != 0) {
		err = -EINVAL;
		goto cleanup;
	}
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    ph.p_vaddr < first_vaddr)
			first_vaddr = ph.p_vaddr;
	}
	if (first_vaddr == UINT64_MAX) {
		err = -EINVAL;
		goto cleanup;
	}
	out->bias -= first_vaddr & ~(uint64_t)0xfff;
cleanup:
	if (elf)
		elf_end(elf);
	close(fd);
	return err;
}

int hf_elf_symbol(const char *path, const char *name, uint64_t *vaddr, uint64_t *size,
		  uint64_t *file_offset)
{
	struct hf_elf e;
	struct hf_elf_sym sym;
	int err;

	err = hf_elf_open(path, &e, NULL, 0);
	if (err)
		return err;
	err = hf_elf_find_local_symbol(&e, name, &sym);
	if (!err) {
		*vaddr = sym.value;
		if (size)
			*size = sym.size;
		/* A detached debug file has no PT_LOAD contents: offsets come from the real object. */
		if (file_offset)
			err = hf_elf_vaddr_to_offset(&e, sym.value, file_offset, NULL);
	}
	hf_elf_close(&e);
	return err;
}

/* The GNU build-id of the ELF file at path, in hex. */
static int file_build_id(const char *path, char *hex, size_t len)
{
	struct hf_elf e;
	int err;

	err = hf_elf_open(path, &e, NULL, 0);
	if (err)
		return err;
	err = hf_elf_build_id(&e, hex, len);
	hf_elf_close(&e);
	return err;
}

static int read_remote(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int read_mstate(pid_t pid, uint64_t addr, struct hf_mstate *out)
{
	unsigned char buf[HF_GLIBC_MSTATE_SIZE];
	int err = read_remote(pid, addr, buf, sizeof(buf));

	if (err)
		return err;
	return hf_mstate_decode(buf, sizeof(buf), addr, out) ? 0 : -EINVAL;
}

/* A thread arena's malloc_state sits right after the heap_info of its first heap. */
static bool is_heap_arena_address(uint64_t addr)
{
	return addr >= HF_GLIBC_HEAP_INFO_SIZE &&
	       ((addr - HF_GLIBC_HEAP_INFO_SIZE) & (HF_GLIBC_HEAP_MAX_SIZE - 1)) == 0;
}

/* The `next` ring from addr must come back to addr through heap arenas only. */
static bool ring_closes(pid_t pid, uint64_t addr, uint64_t next)
{
	for (unsigned int i = 0; i < HF_MAX_ARENAS; i++) {
		struct hf_mstate ms;

		if (next == addr)
			return true;
		if (!is_heap_arena_address(next) || read_mstate(pid, next, &ms) != 0)
			return false;
		next = ms.next;
	}
	return false;
}

static int main_arena_from_symbols(pid_t pid, const struct hf_libc_map *libc, uint64_t *addr)
{
	char build_id[41], debug[HF_PATH_LEN];
	uint64_t vaddr;
	struct hf_mstate ms;
	int err;

	err = file_build_id(libc->path, build_id, sizeof(build_id));
	if (err)
		return err;
	err = hf_debug_file_path(HF_GLIBC_DEBUG_BUILD_ID_DIR, build_id, debug, sizeof(debug));
	if (err)
		return err;
	err = hf_elf_symbol(debug, "main_arena", &vaddr, NULL, NULL);
	if (err)
		return err;
	*addr = libc->bias + vaddr;
	/* An unreadable or uninitialised arena is no use, whatever the symbol says. */
	err = read_mstate(pid, *addr, &ms);
	return err == -EINVAL ? -ENOENT : err;
}

static int main_arena_from_heuristic(pid_t pid, const struct hf_libc_map *libc, uint64_t *addr)
{
	size_t len = libc->data_end - libc->data_start, matches = 0;
	unsigned char *buf;
	int err;

	if (libc->data_end <= libc->data_start || len > MAX_DATA_SCAN)
		return -EINVAL;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	err = read_remote(pid, libc->data_start, buf, len);
	if (err)
		goto cleanup;
	for (size_t off = 0; off + HF_GLIBC_MSTATE_SIZE <= len; off += 8) {
		uint64_t at = libc->data_start + off;
		struct hf_mstate ms;

		if (!hf_mstate_decode(buf + off, len - off, at, &ms) ||
		    !ring_closes(pid, at, ms.next))
			continue;
		if (matches++ == 0)
			*addr = at;
	}
	err = matches == 1 ? 0 : matches ? -ENOTUNIQ : -ENOENT;
cleanup:
	free(buf);
	return err;
}

int hf_main_arena_find(pid_t pid, const struct hf_libc_map *libc, unsigned int flags,
		       uint64_t *addr, enum hf_main_arena_source *src)
{
	const char *force = getenv("HF_FORCE_ARENA_HEURISTIC");
	int err = -ENOENT;

	if (force && strcmp(force, "1") == 0)
		flags |= HF_ARENA_FORCE_HEURISTIC;
	if (!(flags & HF_ARENA_FORCE_HEURISTIC)) {
		err = main_arena_from_symbols(pid, libc, addr);
		if (err == 0) {
			*src = HF_MAIN_ARENA_DEBUG_SYMBOLS;
			return 0;
		}
		if (err == -ESRCH)
			return err;
		hf_log(HF_LOG_DEBUG, "pid %d: main_arena not from libc6-dbg symbols (%s); scanning",
		       (int)pid, strerror(-err));
	}
	err = main_arena_from_heuristic(pid, libc, addr);
	if (err == 0)
		*src = HF_MAIN_ARENA_HEURISTIC;
	return err;
}

struct heap_count {
	uint64_t heaps;
	uint64_t committed;
};

/* Adds every 64 MiB-aligned anonymous heap of the target to its arena's counts. */
static int count_heaps(pid_t pid, const struct hf_arena *arenas, size_t n, struct heap_count *hc)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long start, end, off, inode;
		char perms[5], dev[16];
		int path_at = 0;
		unsigned char raw[HF_GLIBC_HEAP_INFO_SIZE];
		struct hf_heap_info h;

		if (sscanf(line, "%llx-%llx %4s %llx %15s %llu %n", &start, &end, perms, &off, dev,
			   &inode, &path_at) < 6)
			continue;
		if (inode != 0 || (path_at && line[path_at] != '\n' && line[path_at] != '\0') ||
		    (start & (HF_GLIBC_HEAP_MAX_SIZE - 1)) || perms[0] != 'r' || perms[1] != 'w')
			continue;
		if (read_remote(pid, start, raw, sizeof(raw)) != 0 ||
		    !hf_heap_info_decode(raw, sizeof(raw), start, &h))
			continue;
		for (size_t i = 1; i < n; i++) {
			if (arenas[i].address == h.ar_ptr) {
				hc[i].heaps++;
				hc[i].committed += h.mprotect_size;
				break;
			}
		}
	}
	free(line);
	fclose(f);
	return 0;
}

int hf_arena_map_read(pid_t pid, uint64_t main_arena, struct hf_arena *out, size_t max, size_t *n,
		      bool *truncated)
{
	struct heap_count *hc = NULL;
	uint64_t addr = main_arena;
	size_t count = 0;
	int err = 0;

	*n = 0;
	*truncated = false;
	if (max == 0)
		return -EINVAL;
	hc = calloc(max, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	for (unsigned int i = 0; i < HF_MAX_ARENAS + 1; i++) {
		struct hf_mstate ms;
		struct hf_arena *a;

		if (count == max) {
			*truncated = true;
			break;
		}
		err = read_mstate(pid, addr, &ms);
		if (err) {
			/* A process that is gone is ESRCH to process_vm_readv. */
			goto cleanup;
		}
		a = &out[count++];
		memset(a, 0, sizeof(*a));
		a->address = addr;
		a->kind = addr == main_arena ? HF_ARENA_MAIN : HF_ARENA_THREAD;
		a->threads = ms.attached_threads;
		a->heaps = a->kind == HF_ARENA_MAIN ? (ms.system_mem ? 1 : 0) : 0;
		a->mapped_bytes = a->kind == HF_ARENA_MAIN ? ms.system_mem : 0;
		a->lock.acquisitions = HF_UNKNOWN;
		a->lock.contended = HF_UNKNOWN;
		a->lock.wait_seconds = NAN;
		a->lock.max_wait_seconds = NAN;
		addr = ms.next;
		if (addr == main_arena)
			break;
	}
	err = count_heaps(pid, out, count, hc);
	if (err)
		goto cleanup;
	for (size_t i = 1; i < count; i++) {
		out[i].heaps = hc[i].heaps;
		out[i].mapped_bytes = hc[i].committed;
	}
	*n = count;
cleanup:
	free(hc);
	return err;
}
