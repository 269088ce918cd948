// SPDX-License-Identifier: MIT
/*
 * sites_workload - two allocation sites in two objects, the seed's incident
 * in miniature: short-lived messages from make_message() in this executable
 * and long-lived records from make_record() in libsites_records.so, one
 * record after every tenth message, then every message freed.  The records
 * alone then pin the pages the messages left free.
 *
 * With --pool 1 the records come from one block instead (make_record_pool()
 * allocates it, the program carves the records from it), so they share
 * pages only with each other and pin nothing free.
 *
 * Protocol (tests/workloads/workload.h): READY, a line, the heap is built,
 * "TRUTH {...}" with phase "built"; a line, every message is freed, "TRUTH"
 * with phase "freed"; a line or EOF, exit.  The truth gives each site's live
 * allocations, requested bytes and chunk bytes (the size word before each
 * block, flag bits cleared, as workload.h defines them).  The books are mmapped and stdout has a
 * static buffer: the program's only allocator calls are the ones counted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "workload.h"

void *make_record(size_t n);
void *make_record_pool(size_t n);

#define MESSAGE_SIZE 1000
#define RECORD_SIZE  200

static uint64_t count = 20000, pool = 0;

struct site_books {
	uint64_t live, requested, chunk_bytes;
};

__attribute__((noinline)) static void *make_message(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

static void add(struct site_books *b, void *p, size_t n, int sign)
{
	b->live += (uint64_t)sign;
	b->requested += (uint64_t)sign * n;
	b->chunk_bytes += (uint64_t)sign * (((const uint64_t *)p)[-1] & ~(uint64_t)7);
}

static void truth(const char *phase, const struct site_books *msg, const struct site_books *rec)
{
	printf("TRUTH {\"workload\":\"sites_workload\",\"phase\":\"%s\",\"pool\":%" PRIu64
	       ",\"messages\":{\"live\":%" PRIu64 ",\"requested\":%" PRIu64
	       ",\"chunk_bytes\":%" PRIu64 "},\"records\":{\"live\":%" PRIu64
	       ",\"requested\":%" PRIu64 ",\"chunk_bytes\":%" PRIu64 "}}\n",
	       phase, pool, msg->live, msg->requested, msg->chunk_bytes, rec->live, rec->requested,
	       rec->chunk_bytes);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct wl_opt opts[] = {
		{"count", &count, "messages (default 20000)"},
		{"pool", &pool, "1: the records from one block (default 0)"},
	};
	struct site_books msg = {0}, rec = {0};
	void **msgs;
	char *pool_block = NULL;

	wl_parse(argc, argv, "two allocation sites in two objects", opts, 2);
	msgs = mmap(NULL, count * sizeof(*msgs), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (msgs == MAP_FAILED)
		return 1;
	wl_ready();
	if (pool) {
		pool_block = make_record_pool((size_t)(count / 10 + 1) * RECORD_SIZE);
		add(&rec, pool_block, (count / 10 + 1) * RECORD_SIZE, 1);
	}
	for (uint64_t i = 0; i < count; i++) {
		msgs[i] = make_message(MESSAGE_SIZE);
		add(&msg, msgs[i], MESSAGE_SIZE, 1);
		if (i % 10 == 0 && !pool)
			add(&rec, make_record(RECORD_SIZE), RECORD_SIZE, 1);
	}
	truth("built", &msg, &rec);
	if (!wl_wait_line())
		return 0;
	for (uint64_t i = 0; i < count; i++) {
		add(&msg, msgs[i], MESSAGE_SIZE, -1);
		free(msgs[i]);
	}
	truth("freed", &msg, &rec);
	wl_wait_line();
	return 0;
}
