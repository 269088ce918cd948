// SPDX-License-Identifier: MIT
/*
 * Frames in glibc, named from libc6-dbg's separate debug file, found by
 * libc's build-id under /usr/lib/debug/.build-id: the return address of the
 * comparison call inside qsort lies in libc's internal msort, a function
 * .dynsym does not have; malloc's own address (exact) is __libc_malloc, with
 * file and line as addr2line reads them from the same debug file.  Without
 * the debug file the msort frame has no name at all rather than a
 * neighbour's.
 */
#include <sys/stat.h>

#include "sym_util.h"

static void test_libc_by_build_id(void)
{
	char prog[PATH_MAX + 64], libc[PATH_MAX], id[128], dbg[PATH_MAX + 128],
		empty[PATH_MAX + 64];
	struct hf_symbolizer_opts opts = {0};
	struct hf_symbolizer *s;
	struct hf_frame f[2], g;
	struct sym_child c;
	struct sym_a2l a2l;
	uint64_t addrs[2], fo = 0, va, value = 0, size = 0;
	struct stat st;

	snprintf(prog, sizeof(prog), "%s/full/symtest_prog", sym_dir());
	CHECK(sym_start(&c, NULL, prog, NULL) == 0);
	CHECK(sym_maps_lookup(c.pid, c.libc_site - 1, libc, sizeof(libc), &fo));
	sym_build_id(libc, id, sizeof(id));
	snprintf(dbg, sizeof(dbg), "/usr/lib/debug/.build-id/%.2s/%s.debug", id,
		 strlen(id) > 2 ? id + 2 : "");
	if (strlen(id) < 3 || stat(dbg, &st) != 0) {
		sym_stop(&c);
		HF_SKIP("no debug file for %s (build-id %s): install libc6-dbg", libc, id);
	}
	printf("libc %s, debug file %s\n", libc, dbg);

	s = hf_symbolizer_new();
	CHECK(s != NULL);
	addrs[0] = c.libc_site;
	CHECK(hf_symbolize(s, c.pid, addrs, 1, 0, &f[0]) == 0);
	a2l = sym_check_return_frame("libc_site", c.pid, NULL, c.libc_site, &f[0]);
	CHECK(a2l.function[0] && f[0].file && f[0].line > 0);
	CHECK_MSG(f[0].function && strncmp(f[0].function, "msort", 5) == 0,
		  "qsort's comparison call in %s", f[0].function ? f[0].function : "NULL");
	/* Only the debug file can know it: libc.so.6's .dynsym has no such symbol. */
	CHECK(f[0].function && !sym_nm(libc, f[0].function, true, &value, &size));

	/* malloc's own address, looked up exactly: the function that starts there. */
	addrs[1] = c.malloc_addr;
	CHECK(hf_symbolize(s, c.pid, &addrs[1], 1, HF_SYM_EXACT, &f[1]) == 0);
	CHECK(sym_maps_lookup(c.pid, c.malloc_addr, libc, sizeof(libc), &fo));
	va = sym_readelf_vaddr(libc, fo);
	CHECK_STR_EQ(f[1].object, libc);
	CHECK_EQ_U64(f[1].offset, va);
	CHECK(sym_nm(libc, "malloc", true, &value, &size));
	CHECK_EQ_U64(f[1].offset, value);
	/*
	 * addr2line prints the DWARF linkage name, here glibc's internal asm
	 * alias __GI___libc_malloc; the symbolizer prints the source name,
	 * which .dynsym exports at the same address with the same extent.
	 */
	CHECK(sym_addr2line(libc, va, &a2l));
	CHECK(sym_same_source(f[1].file ? f[1].file : "", a2l.file));
	CHECK_EQ_U64(f[1].line, a2l.line);
	CHECK_STR_EQ(f[1].function, "__libc_malloc");
	CHECK(sym_nm(libc, "__libc_malloc", true, &value, &size) && value == va && size > 0);
	sym_print("malloc", &f[1]);
	hf_symbolizer_free(s);

	/* No debug file: the internal function is unknown, not named after a neighbour. */
	snprintf(empty, sizeof(empty), "%s/nodebug-XXXXXX", sym_dir());
	CHECK(mkdtemp(empty) != NULL);
	opts.debug_dir = empty;
	s = hf_symbolizer_new_opts(&opts);
	CHECK(s != NULL);
	CHECK(hf_symbolize(s, c.pid, &c.libc_site, 1, 0, &g) == 0);
	CHECK_EQ_U64(g.offset, f[0].offset);
	CHECK_MSG(g.function == NULL, "without the debug file: %s", g.function);
	CHECK(g.file == NULL && g.line == 0);
	sym_print("libc_site", &g);
	hf_symbolizer_free(s);
	rmdir(empty);
	sym_stop(&c);
}

int main(void)
{
	test_libc_by_build_id();
	return hf_test_done();
}
