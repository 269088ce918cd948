// SPDX-License-Identifier: MIT
/*
 * hf_regions_read() on this test's own process, whose allocator is glibc's
 * malloc, checked against glibc's own books (mallinfo2): the brk span and the
 * arena heaps add up to mallinfo2().arena, the mmapped chunks found by their
 * headers add up to mallinfo2().hblkhd.  Not built under ASan, whose malloc
 * replaces glibc's.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "heap_regions.h"

#define PAGE ((uint64_t)sysconf(_SC_PAGESIZE))

/* Reads twice so that the reader's own small allocations are settled. */
static int read_self(enum hf_allocator kind, enum hf_mode mode, const struct hf_span *spans,
		     size_t n, struct hf_regions *r)
{
	int err = hf_regions_read(getpid(), kind, mode, spans, n, r);

	if (err)
		return err;
	return hf_regions_read(getpid(), kind, mode, spans, n, r);
}

static void test_brk_span_is_mallinfo2_arena(void)
{
	enum { N = 20000 };
	static char *blocks[N];
	struct hf_regions r;
	struct mallinfo2 before, after;
	uint64_t brk0;

	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == 0);
	brk0 = r.mapped.brk;
	for (int i = 0; i < N; i++) {
		blocks[i] = malloc(1000);
		memset(blocks[i], 1, 1000);
	}
	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == 0);
	before = mallinfo2();
	CHECK(hf_regions_read(getpid(), HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == 0);
	after = mallinfo2();
	CHECK_EQ_U64(before.arena, after.arena);
	CHECK_EQ_U64(r.arena_heaps, 0);
	CHECK_EQ_U64(r.mapped.arena, 0);
	CHECK_EQ_U64(r.mapped.brk, after.arena);
	/* 20,000 chunks of 1008 bytes: brk grew from its first few pages to hold them. */
	CHECK_MSG(brk0 < (1 << 20) && r.mapped.brk >= N * 1008ULL, "brk %" PRIu64 " from %" PRIu64,
		  r.mapped.brk, brk0);
	CHECK_EQ_U64(r.mapped.total, r.mapped.brk + r.mapped.arena + r.mapped.mmap);
	/* Every block was written, so nearly all of the brk heap is resident. */
	CHECK_MSG(r.resident_bytes >= N * 1008ULL, "resident %" PRIu64, r.resident_bytes);
	CHECK(r.resident_bytes <= r.mapped.total);
	CHECK(r.process_rss_bytes >= r.resident_bytes);
	CHECK_EQ_U64(r.largest_free_chunk_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(r.free_chunks, HF_UNKNOWN);

	/*
	 * Freed, the blocks stay in the brk heap: chunks the reader's own stdio
	 * left in tcache sit above them and keep glibc from trimming.  The span
	 * still follows glibc's books.
	 */
	for (int i = 0; i < N; i++)
		free(blocks[i]);
	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == 0);
	CHECK_EQ_U64(r.mapped.brk, mallinfo2().arena);
}

struct worker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stage; /* 1: allocated, 2: may free and exit */
	size_t bytes;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t n = w->bytes / 1000;
	char **blocks = malloc(n * sizeof(*blocks));

	for (size_t i = 0; i < n; i++) {
		blocks[i] = malloc(1000);
		memset(blocks[i], 2, 1000);
	}
	pthread_mutex_lock(&w->lock);
	w->stage = 1;
	pthread_cond_broadcast(&w->cond);
	while (w->stage != 2)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
	return NULL;
}

static void test_thread_arena_heaps_are_found_and_chained(void)
{
	struct worker w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 70 << 20};
	struct hf_regions r;
	struct mallinfo2 mi;
	pthread_t t;

	CHECK(pthread_create(&t, NULL, worker_main, &w) == 0);
	pthread_mutex_lock(&w.lock);
	while (w.stage != 1)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);

	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == 0);
	mi = mallinfo2();
	/* 70 MiB of small blocks need more than one 64 MiB heap: a chain. */
	CHECK_MSG(r.arena_heaps >= 2, "arena heaps %" PRIu64, r.arena_heaps);
	CHECK_MSG(r.mapped.arena >= (70ULL << 20), "arena %" PRIu64, r.mapped.arena);
	CHECK(r.mapped.arena % PAGE == 0);
	CHECK(r.arena_size_bytes <= r.mapped.arena);
	CHECK_EQ_U64(r.mapped.brk + r.arena_size_bytes, mi.arena);
	CHECK_MSG(r.resident_bytes >= (70ULL << 20), "resident %" PRIu64, r.resident_bytes);

	pthread_mutex_lock(&w.lock);
	w.stage = 2;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(t, NULL);
}

static struct hf_span chunk_span(void *p)
{
	uint64_t start = (uint64_t)(uintptr_t)p - 16;
	uint64_t size;

	/* The chunk header sits before the pointer malloc returned: read it as memory. */
	memcpy(&size, (const void *)(uintptr_t)(start + 8), sizeof(size));
	return (struct hf_span){start, size & ~7ULL};
}

static void test_mmapped_chunks_are_found_by_their_headers(void)
{
	/* 64 MiB is above the largest mmap threshold: always its own mapping. */
	char *big = malloc(64 << 20);
	/* Aligned and above the threshold: the chunk starts inside its mapping. */
	char *aligned = memalign(1 << 20, 40 << 20);
	char *mid1 = malloc(200 << 10), *mid2 = malloc(300 << 10);
	/* Not the allocator's: PROT_NONE guards keep it from merging with chunks. */
	char *guarded = mmap(NULL, 6 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *plain = guarded + PAGE;
	struct hf_regions passive, none, known;
	struct hf_span spans[3];
	struct mallinfo2 mi;

	CHECK(big && aligned && mid1 && mid2 && guarded != MAP_FAILED);
	CHECK(mprotect(plain, 4 * PAGE, PROT_READ | PROT_WRITE) == 0);
	memset(plain, 4, 4 * PAGE);
	memset(big, 3, 1 << 20);
	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &passive) == 0);
	mi = mallinfo2();
	/*
	 * The two middle sizes are mmapped only while glibc's dynamic threshold is
	 * below them and no free chunk fits; mallinfo2 tells which were.
	 */
	CHECK_MSG(mi.hblkhd >= (104ULL << 20), "hblkhd %zu", mi.hblkhd);
	CHECK((uintptr_t)aligned % (1 << 20) == 0);
	CHECK_EQ_U64(passive.mapped.mmap, mi.hblkhd);

	/*
	 * Exact mode: the tracer's spans add what the headers do not show - here
	 * a mapping of our own that holds no chunk - and nothing twice.
	 */
	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_EXACT, spans, 0, &none) == 0);
	CHECK_EQ_U64(none.mapped.mmap, passive.mapped.mmap);
	spans[0] = chunk_span(big);
	spans[1] = (struct hf_span){(uint64_t)(uintptr_t)plain, 4 * PAGE};
	spans[2] = (struct hf_span){4096, 4096}; /* nothing is mapped there */
	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_EXACT, spans, 3, &known) == 0);
	CHECK_EQ_U64(known.mapped.mmap, passive.mapped.mmap + 4 * PAGE);

	/* Allocators without headers we know count exactly the spans. */
	CHECK(read_self(HF_ALLOC_MIMALLOC, HF_MODE_EXACT, spans, 0, &none) == 0);
	CHECK_EQ_U64(none.mapped.mmap, 0);
	spans[1] = spans[0]; /* reported twice: counted once */
	CHECK(read_self(HF_ALLOC_MIMALLOC, HF_MODE_EXACT, spans, 3, &known) == 0);
	CHECK_EQ_U64(known.mapped.mmap, spans[0].len);
	CHECK_EQ_U64(known.mapped.total, known.mapped.brk + spans[0].len);
	/* 1 MiB written from 16 bytes in: 257 pages, at most a huge page more. */
	CHECK_MSG(known.resident_bytes - none.resident_bytes >= 257 * PAGE &&
			  known.resident_bytes - none.resident_bytes <= 257 * PAGE + (2 << 20),
		  "resident with the chunk %" PRIu64 ", without %" PRIu64, known.resident_bytes,
		  none.resident_bytes);

	free(mid2);
	free(mid1);
	free(aligned);
	free(big);
	munmap(guarded, 6 * PAGE);
	CHECK(read_self(HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &passive) == 0);
	CHECK_EQ_U64(passive.mapped.mmap, mallinfo2().hblkhd);
}

static void test_other_allocators_have_unknown_regions_in_passive_mode(void)
{
	struct hf_regions r;
	struct hf_span none[1];

	CHECK(read_self(HF_ALLOC_JEMALLOC, HF_MODE_PASSIVE, NULL, 0, &r) == 0);
	CHECK(hf_known(r.mapped.brk));
	CHECK_EQ_U64(r.mapped.arena, HF_UNKNOWN);
	CHECK_EQ_U64(r.mapped.mmap, HF_UNKNOWN);
	CHECK_EQ_U64(r.mapped.total, HF_UNKNOWN);
	CHECK_EQ_U64(r.resident_bytes, HF_UNKNOWN);
	CHECK(hf_known(r.process_rss_bytes));

	/* Traced: their memory is the mappings the tracer saw, and no arena heaps. */
	CHECK(read_self(HF_ALLOC_MIMALLOC, HF_MODE_EXACT, none, 0, &r) == 0);
	CHECK_EQ_U64(r.mapped.arena, 0);
	CHECK_EQ_U64(r.mapped.mmap, 0);
	CHECK_EQ_U64(r.mapped.total, r.mapped.brk);
	CHECK(hf_known(r.resident_bytes));
}

static void test_gone_and_zombie_processes_are_esrch(void)
{
	struct hf_regions r;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	/* A zombie first: its memory is gone though its pid is not. */
	for (int i = 0; i < 500; i++) {
		char path[64], state = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		if (f && fscanf(f, "%*d (%*[^)]) %c", &state) == 1 && state == 'Z') {
			fclose(f);
			break;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	CHECK(hf_regions_read(pid, HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == -ESRCH);
	waitpid(pid, NULL, 0);
	CHECK(hf_regions_read(pid, HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r) == -ESRCH);
	CHECK_EQ_U64(r.mapped.total, HF_UNKNOWN);
}

static void test_processes_exiting_mid_read_never_crash(void)
{
	int ok = 0, gone = 0, other = 0;

	for (int i = 0; i < 40; i++) {
		struct hf_regions r;
		pid_t pid = fork();
		int err;

		if (pid == 0) {
			char *p = malloc(1 << 20);

			memset(p, 1, 1 << 20);
			usleep((useconds_t)(i % 8) * 500);
			_exit(0);
		}
		for (int j = 0; j < 5; j++) {
			err = hf_regions_read(pid, HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &r);
			if (err == 0)
				ok++;
			else if (err == -ESRCH)
				gone++;
			else
				other++;
		}
		waitpid(pid, NULL, 0);
	}
	CHECK_MSG(other == 0, "ok %d, gone %d, other errors %d", ok, gone, other);
	CHECK(ok + gone == 200);
}

int main(void)
{
	if (geteuid() != 0 && access("/proc/self/pagemap", R_OK) != 0)
		HF_SKIP("cannot read /proc/self/pagemap");
	test_brk_span_is_mallinfo2_arena();
	test_thread_arena_heaps_are_found_and_chained();
	test_mmapped_chunks_are_found_by_their_headers();
	test_other_allocators_have_unknown_regions_in_passive_mode();
	test_gone_and_zombie_processes_are_esrch();
	test_processes_exiting_mid_read_never_crash();
	return hf_test_done();
}
