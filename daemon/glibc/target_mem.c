// SPDX-License-Identifier: MIT
/*
 * target_mem.c - the memory the census walks (heap_walk.h's struct hf_mem):
 * a live process, or a saved image of one.
 *
 * A live process is read with process_vm_readv(2), page runs batched into
 * one call of up to IOV_MAX pieces, and its pages' states come from
 * /proc/PID/pagemap.  Only pages that hold data (present, or swapped out)
 * are copied: reading a page that was never touched, or that the allocator
 * gave back, would map the shared zero page into the target and make it
 * look present.  For the same reason a present page whose frame is the zero
 * page (the target itself read untouched memory) is not resident: it is not
 * in the process's RSS.  The zero page's frame number is learnt once, from
 * heapfragd's own pagemap; without CAP_SYS_ADMIN frame numbers read as 0
 * and every present page counts as resident.
 */
#include "heap_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define PM_PRESENT  (1ull << 63)
#define PM_SWAPPED  (1ull << 62)
#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_CHUNK    8192 /* pagemap entries read at a time */

struct proc_mem {
	pid_t pid;
	int pagemap;
	uint64_t page_size;
};

static pthread_once_t zero_once = PTHREAD_ONCE_INIT;
static uint64_t zero_pfn;

/* The frame of the shared zero page, as heapfragd's own pagemap shows it (0: unknown). */
static void learn_zero_pfn(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	volatile unsigned char *p;
	uint64_t e = 0;
	int fd;

	p = mmap(NULL, (size_t)ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	(void)p[0];
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / (uintptr_t)ps) * 8) == sizeof(e) &&
		    (e & PM_PRESENT))
			zero_pfn = e & PM_PFN_MASK;
		close(fd);
	}
	munmap((void *)p, (size_t)ps);
}

static int proc_read(struct hf_mem *m, uint64_t addr, void *buf, size_t len)
{
	struct proc_mem *pm = m->ctx;
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n;

	n = process_vm_readv(pm->pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	m->bytes_read += (uint64_t)n;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int proc_read_pages(struct hf_mem *m, uint64_t addr, size_t len, const uint8_t *state,
			   void *buf)
{
	struct proc_mem *pm = m->ctx;
	struct iovec local[IOV_MAX], remote[IOV_MAX];
	size_t npages = len / pm->page_size, i = 0, want;
	unsigned char *out = buf;
	ssize_t got;
	int n;

	while (i < npages) {
		want = 0;
		n = 0;
		while (i < npages && n < IOV_MAX) {
			size_t run = 0;

			if (!(state[i] & HF_PAGE_DATA)) {
				memset(out + i * pm->page_size, 0, pm->page_size);
				i++;
				continue;
			}
			while (i + run < npages && (state[i + run] & HF_PAGE_DATA))
				run++;
			local[n].iov_base = out + i * pm->page_size;
			local[n].iov_len = run * pm->page_size;
			remote[n].iov_base = (void *)(uintptr_t)(addr + i * pm->page_size);
			remote[n].iov_len = run * pm->page_size;
			want += run * pm->page_size;
			n++;
			i += run;
		}
		if (!n)
			continue;
		got = process_vm_readv(pm->pid, local, (unsigned long)n, remote, (unsigned long)n, 0);
		if (got < 0)
			return -errno;
		m->bytes_read += (uint64_t)got;
		if ((size_t)got != want)
			return -EFAULT;
	}
	return 0;
}

static int proc_pages(struct hf_mem *m, uint64_t addr, size_t npages, uint8_t *state)
{
	struct proc_mem *pm = m->ctx;
	uint64_t *e = malloc(PM_CHUNK * sizeof(*e));
	size_t done = 0;
	int err = 0;

	if (!e)
		return -ENOMEM;
	while (done < npages) {
		size_t n = npages - done < PM_CHUNK ? npages - done : PM_CHUNK;
		off_t off = (off_t)((addr / pm->page_size + done) * sizeof(*e));
		ssize_t got = pread(pm->pagemap, e, n * sizeof(*e), off);

		if (got < 0) {
			err = errno == ENOENT ? -ESRCH : -errno;
			break;
		}
		if ((size_t)got != n * sizeof(*e)) {
			err = -EFAULT;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			uint8_t s = 0;

			if (e[i] & PM_PRESENT) {
				s = HF_PAGE_DATA;
				if (!zero_pfn || (e[i] & PM_PFN_MASK) != zero_pfn)
					s |= HF_PAGE_RESIDENT;
			} else if (e[i] & PM_SWAPPED) {
				s = HF_PAGE_DATA;
			}
			state[done + i] = s;
		}
		done += n;
	}
	free(e);
	return err;
}

int hf_mem_process_open(pid_t pid, struct hf_mem *mem)
{
	struct proc_mem *pm;
	char path[64];

	pthread_once(&zero_once, learn_zero_pfn);
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->pid = pid;
	pm->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	pm->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (pm->pagemap < 0) {
		int err = errno == ENOENT ? -ESRCH : -errno;

		free(pm);
		return err;
	}
	*mem = (struct hf_mem){
		.ctx = pm,
		.read = proc_read,
		.read_pages = proc_read_pages,
		.pages = proc_pages,
	};
	return 0;
}

void hf_mem_process_close(struct hf_mem *mem)
{
	struct proc_mem *pm = mem->ctx;

	if (!pm)
		return;
	close(pm->pagemap);
	free(pm);
	mem->ctx = NULL;
}

/* ---- a saved image ---- */

static const struct hf_image_segment *image_seg(const struct hf_mem_image *img, uint64_t addr,
						uint64_t len)
{
	for (size_t i = 0; i < img->nr_segs; i++) {
		const struct hf_image_segment *s = &img->segs[i];

		if (addr >= s->addr && addr - s->addr <= s->len && len <= s->len - (addr - s->addr))
			return s;
	}
	return NULL;
}

static uint8_t image_state(const struct hf_mem_image *img, const struct hf_image_segment *s,
			   uint64_t page)
{
	return s->states ? s->states[(page - s->addr) / img->page_size]
			 : HF_PAGE_RESIDENT | HF_PAGE_DATA;
}

static int image_read(struct hf_mem *m, uint64_t addr, void *buf, size_t len)
{
	const struct hf_mem_image *img = m->ctx;
	const struct hf_image_segment *s = image_seg(img, addr, len);

	if (!s)
		return -EFAULT;
	memcpy(buf, s->bytes + (addr - s->addr), len);
	m->bytes_read += len;
	return 0;
}

static int image_read_pages(struct hf_mem *m, uint64_t addr, size_t len, const uint8_t *state,
			    void *buf)
{
	const struct hf_mem_image *img = m->ctx;
	const struct hf_image_segment *s = image_seg(img, addr, len);
	unsigned char *out = buf;

	if (!s)
		return -EFAULT;
	for (size_t off = 0; off < len; off += img->page_size) {
		if (state[off / img->page_size] & HF_PAGE_DATA) {
			memcpy(out + off, s->bytes + (addr - s->addr) + off, img->page_size);
			m->bytes_read += img->page_size;
		} else {
			memset(out + off, 0, img->page_size);
		}
	}
	return 0;
}

static int image_pages(struct hf_mem *m, uint64_t addr, size_t npages, uint8_t *state)
{
	const struct hf_mem_image *img = m->ctx;
	const struct hf_image_segment *s;

	if (npages > UINT64_MAX / img->page_size)
		return -EFAULT;
	s = image_seg(img, addr, npages * img->page_size);
	if (!s)
		return -EFAULT;
	for (size_t i = 0; i < npages; i++)
		state[i] = image_state(img, s, addr + i * img->page_size);
	return 0;
}

void hf_mem_image_init(struct hf_mem *mem, struct hf_mem_image *img)
{
	*mem = (struct hf_mem){
		.ctx = img,
		.read = image_read,
		.read_pages = image_read_pages,
		.pages = image_pages,
	};
}

/* ---- the target's writable mappings ---- */

int hf_vmas_read(pid_t pid, struct hf_vma **out, size_t *n, uint64_t *heap_start)
{
	char path[64], *line = NULL;
	struct hf_vma *v = NULL;
	size_t cap = 0, lcap = 0, cnt = 0;
	int err = 0;
	FILE *f;

	*out = NULL;
	*n = 0;
	if (heap_start)
		*heap_start = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &lcap, f) > 0) {
		unsigned long long start, end;
		char perms[5];
		int at = 0;

		if (sscanf(line, "%llx-%llx %4s %*x %*s %*u %n", &start, &end, perms, &at) < 3)
			continue;
		if (heap_start && at && strncmp(line + at, "[heap]", 6) == 0)
			*heap_start = start;
		if (perms[0] != 'r' || perms[1] != 'w')
			continue;
		/* Adjacent writable mappings (a split brk heap) count as one. */
		if (cnt && v[cnt - 1].end == start) {
			v[cnt - 1].end = end;
			continue;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct hf_vma *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[cnt].start = start;
		v[cnt].end = end;
		cnt++;
	}
	free(line);
	fclose(f);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*n = cnt;
	return 0;
}
