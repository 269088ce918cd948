// SPDX-License-Identifier: MIT
/*
 * ptm_books.c - reads libptm's exported books (ptm_stats_abi.h) from outside.
 *
 * One walk serves live processes and memory images alike: it asks a reader
 * for bytes at target addresses, so the checks that keep garbage from
 * crashing heapfragd are the same code the unit tests run under the
 * sanitizers.
 */
#include "ptm_books.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>

#include "elf_file.h"
#include "log.h"

/* Version 1's arena record ends after lock_max_wait_ns, version 2's after release_calls. */
#define RECORD_V1_SIZE offsetof(struct ptm_abi_arena, released_bytes)
#define RECORD_V2_SIZE offsetof(struct ptm_abi_arena, largest_free_bytes)
/* A thread arena's heaps are 64 MiB reservations; more heaps than this is garbage. */
#define HEAP_MAX_SIZE   (64ULL << 20)
#define MAX_ARENA_HEAPS (1ULL << 24)
/* A header or record larger than this is not one a future version would add up to. */
#define MAX_STRUCT_SIZE 4096
/* x86-64 user addresses end below 2^47 (2^56 with 5-level paging). */
#define MAX_USER_ADDR (1ULL << 56)
/* libptm's smallest chunk; every binned or fast chunk is at least this big. */
#define MIN_CHUNK 32
/* Version 4: an arena holds at least glibc's malloc_state and its region list. */
#define CENSUS_ARENA_MIN 2208
#define MAX_ARENA_SIZE   (64u << 10)

struct reader {
	int (*copy)(const struct reader *rd, uint64_t addr, void *buf, size_t len);
	pid_t pid;
	const unsigned char *image;
	size_t len;
	uint64_t base;
};

static int copy_remote(const struct reader *rd, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t got = process_vm_readv(rd->pid, &local, 1, &remote, 1, 0);

	if (got == (ssize_t)len)
		return 0;
	if (got >= 0 || errno == EFAULT)
		return -EFAULT;
	return -errno;
}

static int copy_image(const struct reader *rd, uint64_t addr, void *buf, size_t len)
{
	if (addr < rd->base || addr - rd->base > rd->len || rd->len - (addr - rd->base) < len)
		return -EFAULT;
	memcpy(buf, rd->image + (addr - rd->base), len);
	return 0;
}

static bool sane_addr(uint64_t addr)
{
	return addr != 0 && addr % 8 == 0 && addr < MAX_USER_ADDR;
}

/* An address that does not read is the block's fault, not the reader's. */
static int fault_is_garbage(int err)
{
	return err == -EFAULT ? -EPROTO : err;
}

static int check_header(const struct ptm_abi_block *h)
{
	if (h->magic != PTM_ABI_MAGIC || h->version == 0)
		return -EPROTO;
	if (h->size < PTM_ABI_BLOCK_V1_SIZE || h->size > MAX_STRUCT_SIZE)
		return -EPROTO;
	if (h->version >= 4 && h->size < sizeof(*h))
		return -EPROTO;
	if (h->arena_record_size < RECORD_V1_SIZE || h->arena_record_size > MAX_STRUCT_SIZE ||
	    h->arena_record_size % 8 != 0)
		return -EPROTO;
	if (h->version >= 2 && h->arena_record_size < RECORD_V2_SIZE)
		return -EPROTO;
	if (h->version >= 3 && h->arena_record_size < sizeof(struct ptm_abi_arena))
		return -EPROTO;
	if (h->narenas > HF_PTM_BOOKS_MAX_RECORDS)
		return -EPROTO;
	if (h->first_arena != 0 && !sane_addr(h->first_arena))
		return -EPROTO;
	if (h->mmapped_chunks > h->max_mmapped_chunks || h->mmapped_bytes > h->max_mmapped_bytes)
		return -EPROTO;
	/* Mapped bytes lie in the address space (fuzz_ptm_books: sums wrapped past 2^64). */
	if (h->max_mmapped_bytes > MAX_USER_ADDR)
		return -EPROTO;
	/* Version 4's census fields: a malloc_state and more, inside a bounded arena. */
	if (h->version >= 4 &&
	    (h->arena_size < CENSUS_ARENA_MIN || h->arena_size > MAX_ARENA_SIZE ||
	     h->arena_record_offset % 8 || h->arena_record_offset < CENSUS_ARENA_MIN ||
	     h->arena_record_offset + RECORD_V1_SIZE > h->arena_size ||
	     h->arena_segments_offset % 8 || h->arena_segments_offset < CENSUS_ARENA_MIN - 8 ||
	     h->arena_segments_offset + 8 > h->arena_size || h->heap_info_size < 32 ||
	     h->heap_info_size > MAX_STRUCT_SIZE || h->heap_info_size % 16 ||
	     !sane_addr(h->tcache_key_addr) || !sane_addr(h->tcache_max_csize_addr) ||
	     h->release_keep < 48 || h->release_keep > MAX_STRUCT_SIZE || h->page_size < 4096 ||
	     h->page_size > (1u << 20) || (h->page_size & (h->page_size - 1)) ||
	     (h->first_arena && h->first_arena < h->arena_record_offset)))
		return -EPROTO;
	return 0;
}

/* What the allocator keeps true under the arena's lock; a copy breaking it is not its books. */
static int check_record(const struct ptm_abi_arena *a, bool has_release, bool has_largest,
			bool first)
{
	if (first != (a->index == 0))
		return -EPROTO;
	if (a->next != 0 && !sane_addr(a->next))
		return -EPROTO;
	if (a->system_bytes > a->max_system_bytes || a->max_system_bytes > MAX_USER_ADDR)
		return -EPROTO;
	if (a->top_bytes > a->system_bytes || a->binned_bytes > a->system_bytes ||
	    a->fast_bytes > a->system_bytes ||
	    a->top_bytes + a->binned_bytes + a->fast_bytes > a->system_bytes)
		return -EPROTO;
	if (a->binned_chunks > a->binned_bytes / MIN_CHUNK ||
	    a->fast_chunks > a->fast_bytes / MIN_CHUNK)
		return -EPROTO;
	if (a->lock_contended > a->lock_acquisitions || a->lock_max_wait_ns > a->lock_wait_ns)
		return -EPROTO;
	if (has_release && (a->reuse_total_bytes > a->release_total_bytes ||
			    a->released_bytes != a->release_total_bytes - a->reuse_total_bytes))
		return -EPROTO;
	/*
	 * The largest free chunk is one of the free chunks counted: at least top,
	 * at most all free bytes, and at least the smallest chunk if any is binned.
	 * A thread arena lives in at least one heap and no more than its heaps hold.
	 */
	if (has_largest) {
		if (a->largest_free_bytes < a->top_bytes ||
		    a->largest_free_bytes > a->top_bytes + a->binned_bytes + a->fast_bytes)
			return -EPROTO;
		if (a->binned_chunks + a->fast_chunks > 0 && a->largest_free_bytes < MIN_CHUNK)
			return -EPROTO;
		if (a->heaps > MAX_ARENA_HEAPS || (a->system_bytes > 0 && a->heaps == 0))
			return -EPROTO;
		if (!first && a->system_bytes > a->heaps * HEAP_MAX_SIZE)
			return -EPROTO;
	}
	return 0;
}

/*
 * One consistent copy of the record at addr: its gen even and unchanged
 * after the copy.  Only the fields this reader knows are copied; a longer
 * record (a later version) has its extra fields after them.
 */
static int read_record(const struct reader *rd, uint64_t addr, size_t known,
		       struct ptm_abi_arena *a, uint64_t *retries)
{
	for (int tries = 0; tries < HF_PTM_BOOKS_TRIES; tries++) {
		uint64_t gen2;
		int err;

		memset(a, 0, sizeof(*a));
		err = rd->copy(rd, addr, a, known);
		if (!err)
			err = rd->copy(rd, addr, &gen2, sizeof(gen2));
		if (err)
			return fault_is_garbage(err);
		if ((a->gen & 1) == 0 && a->gen == gen2)
			return 0;
		(*retries)++;
		/*
		 * An image never changes.  A live writer holds the lock for a
		 * moment, unless it was preempted inside: then it needs a CPU,
		 * which a reader spinning or yielding on a busy machine may not
		 * give up, so later tries sleep (at most about 0.1 s per record).
		 */
		if (!rd->pid)
			break;
		if (tries >= 64)
			nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
		else if (tries >= 16)
			sched_yield();
	}
	return -EAGAIN;
}

static int walk(const struct reader *rd, uint64_t block_addr, struct hf_ptm_books *out)
{
	struct ptm_abi_block h;
	struct hf_ptm_books_arena cur;
	size_t known;
	uint64_t addr;
	int err;

	memset(out, 0, sizeof(*out));
	if (!sane_addr(block_addr))
		return -EINVAL;
	/* Versions 1 to 3 end after the mmapped fields; only then is the size known. */
	memset(&h, 0, sizeof(h));
	err = rd->copy(rd, block_addr, &h, PTM_ABI_BLOCK_V1_SIZE);
	if (!err && h.version >= 4 && h.size >= sizeof(h))
		err = rd->copy(rd, block_addr, &h, sizeof(h));
	if (err)
		return fault_is_garbage(err);
	err = check_header(&h);
	if (err)
		return err;
	if (h.first_arena == 0)
		return -EAGAIN;
	out->version = h.version;
	out->has_release = h.version >= 2;
	out->has_largest = h.version >= 3;
	out->mmapped_chunks = h.mmapped_chunks;
	out->mmapped_bytes = h.mmapped_bytes;
	out->max_mmapped_chunks = h.max_mmapped_chunks;
	out->max_mmapped_bytes = h.max_mmapped_bytes;
	out->has_census = h.version >= 4;
	if (out->has_census) {
		out->census.arena_record_offset = h.arena_record_offset;
		out->census.arena_size = h.arena_size;
		out->census.arena_segments_offset = h.arena_segments_offset;
		out->census.heap_info_size = h.heap_info_size;
		out->census.tcache_key_addr = h.tcache_key_addr;
		out->census.tcache_max_csize_addr = h.tcache_max_csize_addr;
		out->census.release_keep = h.release_keep;
		out->census.page_size = h.page_size;
	}
	known = out->has_largest   ? sizeof(struct ptm_abi_arena)
		: out->has_release ? RECORD_V2_SIZE
				   : RECORD_V1_SIZE;

	for (addr = h.first_arena; addr != 0; addr = cur.rec.next) {
		if (out->narenas == HF_PTM_BOOKS_MAX_RECORDS)
			return -EPROTO;
		cur.record_addr = addr;
		err = read_record(rd, addr, known, &cur.rec, &out->retries);
		if (!err)
			err = check_record(&cur.rec, out->has_release, out->has_largest,
					   out->narenas == 0);
		if (err)
			return err;
		if (cur.rec.index == 0)
			out->main_system_bytes += cur.rec.system_bytes;
		else
			out->arenas_system_bytes += cur.rec.system_bytes;
		/*
		 * Every arena and mapped chunk shares one address space: more
		 * bytes than it holds is garbage, and would wrap the sums (and
		 * the mapped total made of them) found by fuzz_ptm_books.
		 */
		if (out->main_system_bytes + out->arenas_system_bytes + h.mmapped_bytes >
			    MAX_USER_ADDR ||
		    __builtin_add_overflow(out->released_bytes, cur.rec.released_bytes,
					   &out->released_bytes))
			return -EPROTO;
		out->free_chunks +=
			cur.rec.binned_chunks + cur.rec.fast_chunks + (cur.rec.top_bytes ? 1 : 0);
		out->free_bytes += cur.rec.top_bytes + cur.rec.binned_bytes + cur.rec.fast_bytes;
		if (cur.rec.largest_free_bytes > out->largest_free_bytes)
			out->largest_free_bytes = cur.rec.largest_free_bytes;
		if (out->nr_kept < HF_MAX_ARENAS)
			out->arenas[out->nr_kept++] = cur;
		else
			out->truncated = true;
		out->narenas++;
	}
	return 0;
}

int hf_ptm_books_decode(const void *image, size_t len, uint64_t base, uint64_t block_addr,
			struct hf_ptm_books *out)
{
	struct reader rd = {.copy = copy_image, .image = image, .len = len, .base = base};

	if (!image || !out)
		return -EINVAL;
	return walk(&rd, block_addr, out);
}

int hf_ptm_books_read(pid_t pid, uint64_t block_addr, struct hf_ptm_books *out)
{
	struct reader rd = {.copy = copy_remote, .pid = pid};
	int err;

	if (pid <= 0 || !out)
		return -EINVAL;
	err = walk(&rd, block_addr, out);
	/* A zombie has no memory left to read: gone, as far as its books go. */
	if (err == -EPROTO || err == -EFAULT) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return -ESRCH;
	}
	return err;
}

/*
 * Where the target mapped the part of the file holding file offset off:
 * the mapping of that file (by device and inode) whose file range covers it.
 */
static int find_mapping(pid_t pid, const struct stat *file, uint64_t off, uint64_t *addr)
{
	char path[64], line[1024];
	FILE *f;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, moff, ino;
		unsigned int maj, min;
		char range[64];
		struct stat st;

		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &start, &end, &moff, &maj, &min,
			   &ino) != 6)
			continue;
		if (ino != (unsigned long long)file->st_ino || off < moff ||
		    off - moff >= end - start)
			continue;
		/*
		 * maps shows the device of the file's own superblock, which is not
		 * always st_dev (overlayfs): map_files names the file itself.
		 */
		snprintf(range, sizeof(range), "/proc/%d/map_files/%llx-%llx", (int)pid, start,
			 end);
		if (stat(range, &st) == 0) {
			if (st.st_dev != file->st_dev || st.st_ino != file->st_ino)
				continue;
		} else if (makedev(maj, min) != file->st_dev) {
			continue;
		}
		*addr = start + (off - moff);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

int hf_ptm_books_locate(pid_t pid, const char *libptm_path_on_host, uint64_t *block_addr)
{
	struct hf_elf elf = {.fd = -1};
	struct hf_elf_sym sym;
	struct stat st;
	char why[256] = "";
	uint64_t off, avail;
	int err;

	if (pid <= 0 || !libptm_path_on_host || !block_addr)
		return -EINVAL;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return -ESRCH;
	err = hf_elf_open(libptm_path_on_host, &elf, why, sizeof(why));
	if (err) {
		hf_log(HF_LOG_DEBUG, "no libptm books in process %d: %s", pid, why);
		goto cleanup;
	}
	if (fstat(elf.fd, &st) != 0) {
		err = -errno;
		goto cleanup;
	}
	err = hf_elf_find_symbol(&elf, "ptm_stats_block", false, &sym);
	if (err)
		goto cleanup;
	/*
	 * The block is initialised data: it lives in the file, so the mapping
	 * that holds its file offset holds it, whatever the load bias.
	 */
	err = hf_elf_vaddr_to_offset(&elf, sym.value, &off, &avail);
	if (err)
		goto cleanup;
	if (avail < sizeof(struct ptm_abi_block)) {
		err = -EPROTO;
		goto cleanup;
	}
	err = find_mapping(pid, &st, off, block_addr);

cleanup:
	hf_elf_close(&elf);
	return err;
}

void hf_ptm_books_fill(const struct hf_ptm_books *b, struct hf_regions *regions,
		       struct hf_arena *arenas, size_t max, size_t *n, bool *truncated)
{
	size_t i;

	regions->free_chunks = b->free_chunks;
	regions->mapped.brk = b->main_system_bytes;
	regions->mapped.arena = b->arenas_system_bytes;
	regions->mapped.mmap = b->mmapped_bytes;
	regions->mapped.total = b->main_system_bytes + b->arenas_system_bytes + b->mmapped_bytes;
	if (b->has_largest)
		regions->largest_free_chunk_bytes = b->largest_free_bytes;
	for (i = 0; i < b->nr_kept && i < max; i++) {
		const struct ptm_abi_arena *a = &b->arenas[i].rec;

		arenas[i] = (struct hf_arena){
			.address = b->arenas[i].record_addr,
			.kind = a->index == 0 ? HF_ARENA_MAIN : HF_ARENA_THREAD,
			.heaps = b->has_largest ? a->heaps : HF_UNKNOWN,
			.mapped_bytes = a->system_bytes,
			.threads = a->threads_attached,
			.lock =
				{
					.acquisitions = a->lock_acquisitions,
					.contended = a->lock_contended,
					.wait_seconds = (double)a->lock_wait_ns / 1e9,
					.max_wait_seconds = (double)a->lock_max_wait_ns / 1e9,
				},
		};
	}
	*n = i;
	*truncated = b->truncated || b->nr_kept > max;
}
