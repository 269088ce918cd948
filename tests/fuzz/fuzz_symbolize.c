// SPDX-License-Identifier: MIT
/*
 * fuzz_symbolize - the libFuzzer target for the symbolizer
 * (daemon/symbolize.c) fed a file a target mapped: the validation that
 * bounds an untrusted ELF file before elfutils parses it, the address
 * translation through its segments, and the DWARF and symbol lookups.
 * Each input is a whole file (tests/fuzz/symbolize/ holds real ones built
 * with debug information), written to a memfd that this process maps, and
 * then symbolized the way the daemon symbolizes a target: by PID, through
 * /proc/PID/maps and the mapping's file.  A memfd is writable by all, so the
 * symbolizer treats it as a container's file: untrusted, never shared by its
 * build-id; separate debug files are looked up in a directory that does not
 * exist, so a build-id the fuzzer writes never loads one of the host's.
 *
 * Beyond not crashing: each frame names the mapping as maps prints it; an
 * address the file cannot place keeps its file offset; a function, a
 * source file and a line come only together with an object.  abort()
 * marks a frame that breaks them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolize.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NR_ADDRS 4

#define NO_DEBUG_DIR "/nonexistent/heapfrag-fuzz-symbolize"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_symbolizer_opts opts = {.max_objects = 4, .debug_dir = NO_DEBUG_DIR};
	struct hf_symbolizer_stats st;
	struct hf_symbolizer *s = NULL;
	struct hf_frame frames[NR_ADDRS];
	uint64_t addrs[NR_ADDRS], base, entry = 0;
	void *map = MAP_FAILED;
	int fd = -1;

	if (size == 0)
		return 0;
	fd = memfd_create("fuzz_symbolize", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		abort();
	base = (uint64_t)(uintptr_t)map;
	/* e_entry, when it falls in the file: a real function's address in real seeds. */
	if (size >= 32)
		memcpy(&entry, data + 24, sizeof(entry));
	addrs[0] = base;
	addrs[1] = base + (entry < size ? entry : size / 2);
	addrs[2] = base + size / 2;
	addrs[3] = base + size - 1;
	s = hf_symbolizer_new_opts(&opts);
	if (!s)
		abort();
	CHECK(hf_symbolize(s, getpid(), addrs, NR_ADDRS, HF_SYM_EXACT, frames) == 0);
	for (int i = 0; i < NR_ADDRS; i++) {
		const struct hf_frame *f = &frames[i];

		CHECK(f->address == addrs[i] && f->object);
		/* The mapping as maps names it: a memfd's name, deleted since it was never linked.
		 */
		CHECK(strcmp(f->object, "/memfd:fuzz_symbolize (deleted)") == 0);
		CHECK(!f->line || f->file);
		if (f->function)
			CHECK(strlen(f->function) < 65536);
		if (f->file)
			CHECK(strlen(f->file) < 65536);
	}
	hf_symbolizer_stats(s, &st);
	CHECK(st.objects_parsed + st.objects_unusable <= st.files_opened);
	/* A file that is not usable ELF places its addresses by file offset. */
	if (st.objects_unusable)
		for (int i = 0; i < NR_ADDRS; i++)
			CHECK(frames[i].offset == addrs[i] - base && !frames[i].function);
	hf_symbolizer_free(s);
	munmap(map, size);
	close(fd);
	return 0;
}
