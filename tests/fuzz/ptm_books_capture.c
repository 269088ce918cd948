// SPDX-License-Identifier: MIT
/*
 * ptm_books_capture PID LIBPTM OUT - writes the seed of fuzz_ptm_books: the
 * span of a live libptm process's memory that holds its stats block and
 * every arena record on the list, found as the daemon finds them
 * (hf_ptm_books_locate, hf_ptm_books_read), preceded by the span's address
 * and the block's offset in it, each a little-endian u64.  LIBPTM is the libptm.so the process
 * maps.  A process whose records lie far apart (thread arenas live in their
 * own 64 MiB heaps) is refused: the span would not be small.
 * capture_corpus.sh runs it; it is not a test.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "ptm_books.h"

/* The most a seed may hold: a fuzzer runs slower the larger its inputs. */
#define MAX_SPAN (64u << 10)

int main(int argc, char **argv)
{
	struct hf_ptm_books *b = NULL;
	uint64_t block, lo, hi;
	unsigned char *span = NULL, head[16];
	FILE *out = NULL;
	pid_t pid;
	int err = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: ptm_books_capture PID LIBPTM OUT\n");
		return 2;
	}
	pid = (pid_t)atoi(argv[1]);
	b = malloc(sizeof(*b));
	if (!b)
		goto cleanup;
	if (hf_ptm_books_locate(pid, argv[2], &block) != 0 ||
	    hf_ptm_books_read(pid, block, b) != 0) {
		fprintf(stderr, "ptm_books_capture: cannot read the books of process %d\n",
			(int)pid);
		goto cleanup;
	}
	lo = block;
	hi = block + sizeof(struct ptm_abi_block);
	for (uint32_t i = 0; i < b->nr_kept; i++) {
		uint64_t at = b->arenas[i].record_addr;

		lo = at < lo ? at : lo;
		hi = at + sizeof(struct ptm_abi_arena) > hi ? at + sizeof(struct ptm_abi_arena)
							    : hi;
	}
	if (b->truncated || hi - lo > MAX_SPAN) {
		fprintf(stderr, "ptm_books_capture: the records span %llu bytes, over %u\n",
			(unsigned long long)(hi - lo), MAX_SPAN);
		goto cleanup;
	}
	span = malloc(hi - lo);
	if (!span)
		goto cleanup;
	{
		struct iovec local = {.iov_base = span, .iov_len = hi - lo};
		struct iovec remote = {.iov_base = (void *)(uintptr_t)lo, .iov_len = hi - lo};

		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)(hi - lo)) {
			fprintf(stderr, "ptm_books_capture: cannot read process %d: %s\n", (int)pid,
				strerror(errno));
			goto cleanup;
		}
	}
	for (int i = 0; i < 8; i++) {
		head[i] = (unsigned char)(lo >> (8 * i));
		head[8 + i] = (unsigned char)((block - lo) >> (8 * i));
	}
	out = fopen(argv[3], "we");
	if (!out || fwrite(head, 1, 16, out) != 16 || fwrite(span, 1, hi - lo, out) != hi - lo) {
		fprintf(stderr, "ptm_books_capture: cannot write %s\n", argv[3]);
		goto cleanup;
	}
	printf("%s: version %llu, %llu arenas, %llu bytes\n", argv[3],
	       (unsigned long long)b->version, (unsigned long long)b->narenas,
	       (unsigned long long)(hi - lo));
	err = 0;
cleanup:
	if (out && fclose(out) != 0)
		err = 1;
	free(span);
	free(b);
	return err;
}
