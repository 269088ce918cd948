// SPDX-License-Identifier: MIT
/*
 * Return addresses in a live PIE and its shared library, both built with -g:
 * object (maps), offset (maps + readelf), function, file and line (addr2line
 * on the call, address - 1) for a site in the executable, in an exported and
 * in a static library function, and for a call that is the last instruction
 * of its function, which must resolve to that function and not the next.
 */
#include "sym_util.h"

static void test_live_pie_and_library(void)
{
	struct hf_symbolizer *s = hf_symbolizer_new();
	char prog[PATH_MAX + 64], type[64] = "", cmd[PATH_MAX + 128];
	struct hf_frame f[4], exact;
	struct sym_child c;
	uint64_t addrs[4], value = 0, size = 0;
	struct sym_a2l a2l;
	FILE *p;

	snprintf(prog, sizeof(prog), "%s/full/symtest_prog", sym_dir());
	/* The program under test is a PIE: its addresses need the load bias. */
	snprintf(cmd, sizeof(cmd), "readelf -hW '%s' | awk '/Type:/ {print $2}'", prog);
	p = popen(cmd, "r");
	if (p && fgets(type, sizeof(type), p))
		type[strcspn(type, "\n")] = '\0';
	if (p)
		pclose(p);
	CHECK_STR_EQ(type, "DYN");

	CHECK(s != NULL);
	CHECK(sym_start(&c, NULL, prog, NULL) == 0);
	addrs[0] = c.exe_site;
	addrs[1] = c.lib_site;
	addrs[2] = c.lib_inner_site;
	addrs[3] = c.end_site;
	CHECK(hf_symbolize(s, c.pid, addrs, 4, 0, f) == 0);

	a2l = sym_check_return_frame("exe_site", c.pid, prog, c.exe_site, &f[0]);
	CHECK_STR_EQ(a2l.function, "exe_site");
	CHECK(strstr(a2l.file, "symtest_prog.c") != NULL);
	a2l = sym_check_return_frame("lib_site", c.pid, NULL, c.lib_site, &f[1]);
	CHECK_STR_EQ(a2l.function, "symtest_lib_site");
	CHECK(strstr(f[1].object, "/full/libsymtest.so") != NULL);
	a2l = sym_check_return_frame("lib_inner_site", c.pid, NULL, c.lib_inner_site, &f[2]);
	CHECK_STR_EQ(a2l.function, "lib_inner");
	a2l = sym_check_return_frame("end_site", c.pid, prog, c.end_site, &f[3]);
	CHECK_STR_EQ(a2l.function, "ends_in_call");

	/*
	 * The call to the noreturn escape() is ends_in_call's last instruction,
	 * so its return address is the symbol's end: looked up as given, it is
	 * not ends_in_call; only address - 1 is.
	 */
	CHECK(sym_nm(prog, "ends_in_call", false, &value, &size));
	CHECK_MSG(f[3].offset == value + size,
		  "end_site at %#" PRIx64 ", ends_in_call ends at %#" PRIx64, f[3].offset,
		  value + size);
	CHECK(hf_symbolize(s, c.pid, &c.end_site, 1, HF_SYM_EXACT, &exact) == 0);
	CHECK_EQ_U64(exact.offset, f[3].offset);
	CHECK_MSG(!exact.function || strcmp(exact.function, "ends_in_call") != 0,
		  "the exact end address was credited to ends_in_call");

	sym_stop(&c);
	hf_symbolizer_free(s);
}

int main(void)
{
	test_live_pie_and_library();
	return hf_test_done();
}
