// SPDX-License-Identifier: MIT
/*
 * libdwfl takes a stripped file's symbols from the ELF file compressed in
 * its .gnu_debugdata section ("MiniDebugInfo", minidebuginfo.sh makes two
 * copies of libsymtest so), which it inflates itself, after the symbolizer
 * validated the outer file.  Mapped by this process and writable by anyone
 * (a container's files, never shared by build-id): with that inner file
 * intact, lib_inner is named from it; with its string table's last NUL
 * gone, the name libdwfl returns would run past the table ("lib_innerx"
 * and on, read beyond its buffer), and the symbolizer names nothing.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "sym_util.h"

/* Maps path whole and symbolizes the ELF virtual address va in it exactly. */
static void symbolize_in(struct hf_symbolizer *s, const char *path, uint64_t va, struct hf_frame *f)
{
	struct stat st;
	void *map = MAP_FAILED;
	int fd;

	CHECK(chmod(path, 0666) == 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size > va);
	if (fd >= 0)
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(map != MAP_FAILED);
	if (map != MAP_FAILED) {
		/* libsymtest's text lies at file offsets equal to its addresses. */
		uint64_t addr = (uint64_t)(uintptr_t)map + va;

		CHECK(hf_symbolize(s, getpid(), &addr, 1, HF_SYM_EXACT, f) == 0);
		sym_print("debugdata", f);
		munmap(map, (size_t)st.st_size);
	}
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	char lib[PATH_MAX + 64], ok[PATH_MAX + 64], bad[PATH_MAX + 64];
	struct hf_symbolizer *s = hf_symbolizer_new();
	uint64_t value = 0, size = 0;
	struct hf_frame f;

	snprintf(lib, sizeof(lib), "%s/full/libsymtest.so", sym_dir());
	snprintf(ok, sizeof(ok), "%s/debugdata/ok.so", sym_dir());
	snprintf(bad, sizeof(bad), "%s/debugdata/unterminated.so", sym_dir());
	CHECK(s != NULL);
	CHECK(sym_nm(lib, "lib_inner", false, &value, &size) && size > 4);

	symbolize_in(s, ok, value + 4, &f);
	CHECK_MSG(f.function && !strcmp(f.function, "lib_inner"), "%s", f.function);
	symbolize_in(s, bad, value + 4, &f);
	CHECK_MSG(!f.function, "%s", f.function);
	CHECK_EQ_U64(f.offset, value + 4);

	hf_symbolizer_free(s);
	return hf_test_done();
}
