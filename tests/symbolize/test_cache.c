// SPDX-License-Identifier: MIT
/*
 * The cache: a second process mapping the same files parses nothing; a copy
 * of the program and library the host trusts (ours, owned by root, written
 * by no one else) is served by build-id from the objects already parsed; a
 * copy anyone may write is parsed on its own, so it cannot speak for the
 * original.  Bounded: with room for two objects, a call over three still
 * names all three, the next call trims back to two, and evicted objects come
 * back with the same names.
 */
#include <sys/stat.h>

#include "sym_util.h"

static void symbolize_sites(struct hf_symbolizer *s, const struct sym_child *c, struct hf_frame *f)
{
	uint64_t addrs[3] = {c->exe_site, c->lib_inner_site, c->libc_site};

	CHECK(hf_symbolize(s, c->pid, addrs, 3, 0, f) == 0);
	CHECK_STR_EQ(f[0].function, "exe_site");
	CHECK_STR_EQ(f[1].function, "lib_inner");
}

/* A copy of the -g program and library in a new directory, mode applied to both. */
static bool copy_program(const char *dir, mode_t mode)
{
	char cmd[3 * PATH_MAX];

	snprintf(cmd, sizeof(cmd),
		 "cp '%s/full/symtest_prog' '%s/full/libsymtest.so' '%s' && "
		 "chmod %o '%s/symtest_prog' '%s/libsymtest.so'",
		 sym_dir(), sym_dir(), dir, (unsigned)mode, dir, dir);
	return sym_run(cmd) == 0;
}

static void test_shared_per_file_and_build_id(void)
{
	char prog[PATH_MAX + 64], trusted[PATH_MAX + 64], loose[PATH_MAX + 64];
	struct hf_symbolizer_stats a, b;
	struct hf_symbolizer *s = hf_symbolizer_new();
	struct hf_frame f[3], g[3];
	struct sym_child c1, c2;

	snprintf(prog, sizeof(prog), "%s/full/symtest_prog", sym_dir());
	CHECK(s != NULL);
	CHECK(sym_start(&c1, NULL, prog, NULL) == 0);
	CHECK(sym_start(&c2, NULL, prog, NULL) == 0);
	symbolize_sites(s, &c1, f);
	hf_symbolizer_stats(s, &a);
	CHECK_EQ_U64(a.objects_parsed, 3);
	symbolize_sites(s, &c2, g);
	hf_symbolizer_stats(s, &b);
	CHECK_EQ_U64(b.objects_parsed, a.objects_parsed);
	CHECK_EQ_U64(b.files_opened, a.files_opened + 3);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_U64(g[i].offset, f[i].offset);
	sym_stop(&c2);
	printf("second process: parsed %" PRIu64 ", opened %" PRIu64 "\n", b.objects_parsed,
	       b.files_opened);

	/* Other inodes, same build-ids, trusted: served from the objects parsed already. */
	snprintf(trusted, sizeof(trusted), "%s/trusted-XXXXXX", sym_dir());
	CHECK(mkdtemp(trusted) != NULL);
	CHECK(copy_program(trusted, 0755));
	strcat(trusted, "/symtest_prog");
	CHECK(sym_start(&c2, NULL, trusted, NULL) == 0);
	a = b;
	symbolize_sites(s, &c2, g);
	hf_symbolizer_stats(s, &b);
	CHECK_STR_EQ(g[0].object, trusted);
	if (geteuid() == 0) {
		CHECK_EQ_U64(b.objects_parsed, a.objects_parsed);
		CHECK_EQ_U64(b.build_id_shares, a.build_id_shares + 2);
	} else {
		/* Files a user owns are not the host's: each is parsed on its own. */
		CHECK_EQ_U64(b.objects_parsed, a.objects_parsed + 2);
	}
	sym_stop(&c2);
	printf("trusted copy: parsed %" PRIu64 ", shared by build-id %" PRIu64 "\n",
	       b.objects_parsed, b.build_id_shares);

	/* The same bytes, but writable by anyone: parsed on their own. */
	snprintf(loose, sizeof(loose), "%s/loose-XXXXXX", sym_dir());
	CHECK(mkdtemp(loose) != NULL);
	CHECK(copy_program(loose, 0777));
	strcat(loose, "/symtest_prog");
	CHECK(sym_start(&c2, NULL, loose, NULL) == 0);
	a = b;
	symbolize_sites(s, &c2, g);
	hf_symbolizer_stats(s, &b);
	CHECK_EQ_U64(b.objects_parsed, a.objects_parsed + 2);
	CHECK_EQ_U64(b.build_id_shares, a.build_id_shares);
	sym_stop(&c2);
	printf("writable copy: parsed %" PRIu64 ", shared by build-id %" PRIu64 "\n",
	       b.objects_parsed, b.build_id_shares);

	sym_stop(&c1);
	hf_symbolizer_free(s);
	*strrchr(trusted, '/') = '\0';
	*strrchr(loose, '/') = '\0';
	sym_rmtree(trusted);
	sym_rmtree(loose);
}

static void test_bounded_lru(void)
{
	struct hf_symbolizer_opts opts = {.max_objects = 2};
	struct hf_symbolizer *s = hf_symbolizer_new_opts(&opts);
	char prog[PATH_MAX + 64], libc_fn[512] = "";
	struct hf_symbolizer_stats st;
	struct hf_frame f[3];
	struct sym_child c;

	snprintf(prog, sizeof(prog), "%s/full/symtest_prog", sym_dir());
	CHECK(s != NULL);
	CHECK(sym_start(&c, NULL, prog, NULL) == 0);

	/* Three objects in one call: all named, all held until the call ends. */
	symbolize_sites(s, &c, f);
	if (f[2].function)
		snprintf(libc_fn, sizeof(libc_fn), "%s", f[2].function);
	hf_symbolizer_stats(s, &st);
	CHECK_EQ_U64(st.objects_cached, 3);
	CHECK_EQ_U64(st.objects_evicted, 0);

	/* The next call trims to the bound first. */
	CHECK(hf_symbolize(s, c.pid, &c.exe_site, 1, 0, f) == 0);
	CHECK_STR_EQ(f[0].function, "exe_site");
	hf_symbolizer_stats(s, &st);
	CHECK(st.objects_cached <= 2);
	CHECK(st.objects_evicted >= 1);

	/* Round and round: evicted objects come back with the same answers. */
	for (int i = 0; i < 4; i++) {
		symbolize_sites(s, &c, f);
		CHECK(f[2].function ? !strcmp(f[2].function, libc_fn) : !libc_fn[0]);
		CHECK(hf_symbolize(s, c.pid, &c.lib_site, 1, 0, f) == 0);
		CHECK_STR_EQ(f[0].function, "symtest_lib_site");
		hf_symbolizer_stats(s, &st);
		CHECK(st.objects_cached <= 2);
	}
	printf("bounded to 2: parsed %" PRIu64 ", evicted %" PRIu64 ", cached %" PRIu64 "\n",
	       st.objects_parsed, st.objects_evicted, st.objects_cached);
	sym_stop(&c);
	hf_symbolizer_free(s);
}

int main(void)
{
	test_shared_per_file_and_build_id();
	test_bounded_lru();
	return hf_test_done();
}
