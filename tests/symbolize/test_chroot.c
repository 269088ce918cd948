// SPDX-License-Identifier: MIT
/*
 * A process in a chroot is symbolised with its own files, read through
 * /proc/PID/root, and its objects are named as it sees them
 * ("/opt/symtest/symtest_prog", not the host's path to the jail; the
 * library is in the jail's /usr/lib because without /proc there ld.so
 * cannot expand the program's $ORIGIN runpath).  Its libc, byte for byte
 * the host's, is parsed apart from the host's: another root may not speak
 * for ours.  When the paths stop naming the mapped files (a
 * tmpfs mounted over their directories holding absolute symlinks out of the
 * jail, or the program replaced by another file) nothing at those paths is
 * read: the mapped inodes are, through /proc/PID/map_files, and the names
 * stay right.  Needs root (chroot, mount); runs in a mount namespace of its
 * own so that nothing leaks.
 */
#include <sched.h>
#include <sys/mount.h>

#include "sym_util.h"

#define LIBC_DIR "/lib/x86_64-linux-gnu"

static char root[PATH_MAX];

static bool build_jail(void)
{
	static const char *const copies[][2] = {
		{"full/symtest_prog", "/opt/symtest/"},
		{"full/libsymtest.so", "/usr/lib/"},
		{"/lib64/ld-linux-x86-64.so.2", "/lib64/"},
		{LIBC_DIR "/libc.so.6", LIBC_DIR "/"},
	};
	char cmd[4 * PATH_MAX];

	snprintf(root, sizeof(root), "%s/chroot-XXXXXX", sym_dir());
	if (!mkdtemp(root))
		return false;
	for (size_t i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
		const char *src = copies[i][0];

		snprintf(cmd, sizeof(cmd), "mkdir -p '%s%s' && cp -L '%s%s%s' '%s%s'", root,
			 copies[i][1], src[0] == '/' ? "" : sym_dir(), src[0] == '/' ? "" : "/",
			 src, root, copies[i][1]);
		if (sym_run(cmd) != 0)
			return false;
	}
	return true;
}

static void jail_path(char *buf, size_t len, const char *inside)
{
	snprintf(buf, len, "%s%s", root, inside);
}

static void test_chroot(void)
{
	static const char *const objects[3] = {"/opt/symtest/symtest_prog",
					       "/usr/lib/libsymtest.so", LIBC_DIR "/libc.so.6"};
	static const char *const what[3] = {"exe_site", "lib_inner_site", "libc_site"};
	char host_prog[PATH_MAX + 64], path[PATH_MAX + 64], path2[PATH_MAX + 64],
		want[3 * PATH_MAX];
	struct hf_symbolizer_stats a, b;
	struct hf_symbolizer *s = hf_symbolizer_new();
	struct sym_child host, jailed;
	struct hf_frame f[3], hf;
	char host_libc_fn[512];
	uint64_t addrs[3], va;

	CHECK(s != NULL);
	snprintf(host_prog, sizeof(host_prog), "%s/full/symtest_prog", sym_dir());
	CHECK(sym_start(&host, NULL, host_prog, NULL) == 0);
	CHECK(hf_symbolize(s, host.pid, &host.libc_site, 1, 0, &hf) == 0);
	/* The frames' strings live until the next call. */
	snprintf(host_libc_fn, sizeof(host_libc_fn), "%s", hf.function ? hf.function : "");
	hf_symbolizer_stats(s, &a);

	if (sym_start(&jailed, root, objects[0], NULL) != 0) {
		CHECK_MSG(false, "the jailed program did not start");
		sym_stop(&host);
		hf_symbolizer_free(s);
		return;
	}
	addrs[0] = jailed.exe_site;
	addrs[1] = jailed.lib_inner_site;
	addrs[2] = jailed.libc_site;
	CHECK(hf_symbolize(s, jailed.pid, addrs, 3, 0, f) == 0);
	for (int i = 0; i < 3; i++) {
		jail_path(path, sizeof(path), objects[i]);
		va = sym_check_location(what[i], jailed.pid, path, objects[i], addrs[i], &f[i]);
		sym_check_names(what[i], path, va, &f[i]);
		sym_print(what[i], &f[i]);
	}
	CHECK_STR_EQ(f[0].function, "exe_site");
	CHECK_STR_EQ(f[1].function, "lib_inner");
	CHECK_STR_EQ(f[2].function, host_libc_fn);
	hf_symbolizer_stats(s, &b);
	CHECK_EQ_U64(b.opened_via_root, a.opened_via_root + 3);
	CHECK_EQ_U64(b.opened_via_map_files, a.opened_via_map_files);
	CHECK_EQ_U64(b.objects_parsed, a.objects_parsed + 3);
	CHECK_EQ_U64(b.build_id_shares, a.build_id_shares);
	sym_stop(&host);

	/*
	 * A tmpfs over /opt/symtest whose entries are absolute symlinks: read
	 * through /proc/PID/root they resolve in the host's root, to files
	 * that are not the mapped ones.
	 */
	jail_path(path, sizeof(path), "/opt/symtest");
	CHECK(mount("hf-symtest", path, "tmpfs", 0, "size=64k") == 0);
	jail_path(path, sizeof(path), "/usr/lib");
	CHECK(mount("hf-symtest", path, "tmpfs", 0, "size=64k") == 0);
	jail_path(path, sizeof(path), objects[0]);
	CHECK(symlink("/etc/passwd", path) == 0);
	jail_path(path, sizeof(path), objects[1]);
	CHECK(symlink(LIBC_DIR "/libc.so.6", path) == 0);
	hf_symbolizer_free(s);
	s = hf_symbolizer_new();
	CHECK(s != NULL);
	CHECK(hf_symbolize(s, jailed.pid, addrs, 2, 0, f) == 0);
	hf_symbolizer_stats(s, &b);
	CHECK_STR_EQ(f[0].object, objects[0]);
	CHECK_STR_EQ(f[0].function, "exe_site");
	CHECK_STR_EQ(f[1].object, objects[1]);
	CHECK_STR_EQ(f[1].function, "lib_inner");
	CHECK_EQ_U64(b.opened_via_root, 0);
	CHECK_EQ_U64(b.opened_via_map_files, 2);
	sym_print("exe_site", &f[0]);
	sym_print("lib_inner_site", &f[1]);
	jail_path(path, sizeof(path), "/opt/symtest");
	CHECK(umount(path) == 0);
	jail_path(path, sizeof(path), "/usr/lib");
	CHECK(umount(path) == 0);

	/* The program replaced by another file: the old inode is read, named "(deleted)". */
	jail_path(path, sizeof(path), "/opt/symtest/other");
	jail_path(path2, sizeof(path2), objects[0]);
	snprintf(want, sizeof(want), "cp '%s/full/libsymtest.so' '%s'", sym_dir(), path);
	CHECK(sym_run(want) == 0 && rename(path, path2) == 0);
	hf_symbolizer_free(s);
	s = hf_symbolizer_new();
	CHECK(s != NULL);
	CHECK(hf_symbolize(s, jailed.pid, addrs, 1, 0, f) == 0);
	snprintf(want, sizeof(want), "%s (deleted)", objects[0]);
	va = sym_check_location("exe_site", jailed.pid, host_prog, want, addrs[0], &f[0]);
	sym_check_names("exe_site", host_prog, va, &f[0]);
	CHECK_STR_EQ(f[0].function, "exe_site");
	hf_symbolizer_stats(s, &b);
	CHECK_EQ_U64(b.opened_via_map_files, 1);
	sym_print("exe_site", &f[0]);

	sym_stop(&jailed);
	hf_symbolizer_free(s);
}

int main(void)
{
	if (geteuid() != 0)
		HF_SKIP("chroot and mount need root");
	/* Mounts made here stay in this process's own mount namespace. */
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		HF_SKIP("no private mount namespace: %s", strerror(errno));
	CHECK(build_jail());
	test_chroot();
	sym_rmtree(root);
	return hf_test_done();
}
