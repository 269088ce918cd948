// SPDX-License-Identifier: MIT
/*
 * A stripped PIE and library (objcopy --strip-all): every frame keeps its
 * object and offset, and a function is named only where .dynsym has a symbol
 * whose extent holds the address: the exported library function, never the
 * executable's functions or the library's static one, although .dynsym has
 * symbols below them.  Then the same stripped process with their debug files
 * (objcopy --only-keep-debug) under DIR/.build-id/xx/yyyy.debug: names, files
 * and lines as addr2line reads them from the unstripped files.
 */
#include <sys/stat.h>

#include "sym_util.h"

/* True if .dynsym has a defined function ending at or below va: a nearest-symbol guess. */
static bool dynsym_function_below(const char *path, uint64_t va)
{
	char cmd[2 * PATH_MAX], line[1024];
	bool found = false;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm -D -S --defined-only '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p)) {
		unsigned long long v, s;
		char type[8];

		if (sscanf(line, "%llx %llx %7s", &v, &s, type) == 3 &&
		    (type[0] == 'T' || type[0] == 't') && v + s <= va)
			found = true;
	}
	if (p)
		pclose(p);
	return found;
}

/* Puts path's debug file where a build-id lookup under dir finds it. */
static bool install_debug_file(const char *dir, const char *path)
{
	char id[128], sub[PATH_MAX + 16], cmd[3 * PATH_MAX];

	sym_build_id(path, id, sizeof(id));
	if (strlen(id) < 3)
		return false;
	snprintf(sub, sizeof(sub), "%s/.build-id/%.2s", dir, id);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && objcopy --only-keep-debug '%s' '%s/%s.debug'",
		 sub, path, sub, id + 2);
	return sym_run(cmd) == 0;
}

static void test_stripped_and_debug_files(void)
{
	char prog[PATH_MAX + 64], lib[PATH_MAX + 64], full_prog[PATH_MAX + 64],
		full_lib[PATH_MAX + 64], dbg[PATH_MAX + 64];
	struct hf_symbolizer_opts opts = {0};
	struct hf_symbolizer *s = hf_symbolizer_new();
	struct hf_frame f[4], g[4];
	struct sym_child c;
	struct sym_a2l a2l;
	uint64_t addrs[4], va[4];
	const char *what[4] = {"exe_site", "end_site", "lib_site", "lib_inner_site"};
	char objects[4][PATH_MAX];

	snprintf(prog, sizeof(prog), "%s/stripped/symtest_prog", sym_dir());
	snprintf(lib, sizeof(lib), "%s/stripped/libsymtest.so", sym_dir());
	snprintf(full_prog, sizeof(full_prog), "%s/full/symtest_prog", sym_dir());
	snprintf(full_lib, sizeof(full_lib), "%s/full/libsymtest.so", sym_dir());
	CHECK(s != NULL);
	CHECK(sym_start(&c, NULL, prog, NULL) == 0);
	addrs[0] = c.exe_site;
	addrs[1] = c.end_site;
	addrs[2] = c.lib_site;
	addrs[3] = c.lib_inner_site;
	CHECK(hf_symbolize(s, c.pid, addrs, 4, 0, f) == 0);
	for (int i = 0; i < 4; i++) {
		va[i] = sym_check_location(what[i], c.pid, NULL, i < 2 ? prog : lib, addrs[i],
					   &f[i]);
		sym_print(what[i], &f[i]);
		CHECK_MSG(f[i].file == NULL && f[i].line == 0, "%s: a line without DWARF", what[i]);
		/* The frames' strings live only as long as the symbolizer. */
		snprintf(objects[i], sizeof(objects[i]), "%s", f[i].object);
	}
	CHECK_MSG(f[0].function == NULL, "exe_site named %s", f[0].function);
	CHECK_MSG(f[1].function == NULL, "end_site named %s", f[1].function);
	CHECK_MSG(f[3].function == NULL, "lib_inner_site named %s", f[3].function);
	CHECK(dynsym_function_below(lib, va[3]));
	/* The exported function: .dynsym's symbol holds the address, as -g's DWARF says. */
	CHECK(sym_addr2line(full_lib, va[2], &a2l));
	CHECK_STR_EQ(f[2].function, a2l.function);
	CHECK_STR_EQ(f[2].function, "symtest_lib_site");

	/* Their debug files, found by build-id under a directory of our own. */
	snprintf(dbg, sizeof(dbg), "%s/debug-XXXXXX", sym_dir());
	CHECK(mkdtemp(dbg) != NULL);
	CHECK(install_debug_file(dbg, full_prog));
	CHECK(install_debug_file(dbg, full_lib));
	opts.debug_dir = dbg;
	hf_symbolizer_free(s);
	s = hf_symbolizer_new_opts(&opts);
	CHECK(s != NULL);
	CHECK(hf_symbolize(s, c.pid, addrs, 4, 0, g) == 0);
	for (int i = 0; i < 4; i++) {
		CHECK_STR_EQ(g[i].object, objects[i]);
		CHECK_EQ_U64(g[i].offset, f[i].offset);
		a2l = sym_check_names(what[i], i < 2 ? full_prog : full_lib, va[i], &g[i]);
		sym_print(what[i], &g[i]);
	}
	CHECK_STR_EQ(g[0].function, "exe_site");
	CHECK_STR_EQ(g[1].function, "ends_in_call");
	CHECK_STR_EQ(g[3].function, "lib_inner");

	sym_stop(&c);
	hf_symbolizer_free(s);
	sym_rmtree(dbg);
}

int main(void)
{
	test_stripped_and_debug_files();
	return hf_test_done();
}
