// SPDX-License-Identifier: MIT
/*
 * The ELF reader against binutils on the real libc.so.6: symbols with their
 * versions, file offsets, build-id, DT_NEEDED; then truncated, garbage and
 * corrupted files, which must give errors and never a crash (this test also
 * runs under ASan and UBSan).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "elf_file.h"
#include "probe_site.h"
#include "ps_util.h"

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"

static void test_symbols_match_nm(void)
{
	static const char *const names[] = {
		"malloc",         "free",          "calloc",   "realloc", "reallocarray",
		"posix_memalign", "aligned_alloc", "memalign", "valloc",  "pvalloc"};
	struct hf_elf e;
	struct hf_elf_sym sym, free_sym;
	char why[256];
	size_t i;

	CHECK(hf_elf_open(LIBC, &e, why, sizeof(why)) == 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t want = ps_nm_address(LIBC, names[i], true);

		CHECK_MSG(want != 0, "nm -D finds %s", names[i]);
		CHECK(hf_elf_find_symbol(&e, names[i], false, &sym) == 0);
		CHECK_MSG(sym.value == want, "%s: %#" PRIx64 " vs nm %#" PRIx64, names[i],
			  sym.value, want);
		CHECK(sym.default_version);
		CHECK_EQ_U64(sym.type, 2 /* STT_FUNC */);
	}

	/* memcpy@@GLIBC_2.14 and memcpy@GLIBC_2.2.5 differ: the default must win. */
	CHECK(hf_elf_find_symbol(&e, "memcpy", false, &sym) == 0);
	CHECK_EQ_U64(sym.value, ps_nm_address(LIBC, "memcpy", true));
	CHECK(sym.default_version);

	/* cfree survives only as the compatibility version cfree@GLIBC_2.2.5, an alias of free. */
	CHECK(hf_elf_find_symbol(&e, "cfree", false, &sym) == 0);
	CHECK(!sym.default_version);
	CHECK(hf_elf_find_symbol(&e, "free", false, &free_sym) == 0);
	CHECK_EQ_U64(sym.value, free_sym.value);

	CHECK(hf_elf_find_symbol(&e, "no_such_symbol_in_libc", true, &sym) == -ENOENT);
	/* Undefined references are not definitions: libc only uses _dl_argv from ld.so. */
	CHECK(hf_elf_find_symbol(&e, "_dl_argv", false, &sym) == -ENOENT);

	CHECK_STR_EQ(e.soname, "libc.so.6");
	CHECK(!hf_elf_is_executable(&e));
	hf_elf_close(&e);
	hf_elf_close(&e); /* closing twice is harmless */

	CHECK(hf_elf_open("/bin/true", &e, why, sizeof(why)) == 0);
	CHECK(hf_elf_is_executable(&e));
	CHECK(e.has_interp);
	CHECK_STR_EQ(e.interp, "/lib64/ld-linux-x86-64.so.2");
	hf_elf_close(&e);
}

/* Offsets of symbols in path, against nm + readelf arithmetic; true if any offset != address. */
static bool check_offsets(const char *path, const char *const *names, size_t count)
{
	struct hf_elf e;
	struct hf_elf_sym sym;
	uint64_t off, avail;
	char why[256];
	bool differs = false;
	size_t i;

	CHECK_MSG(hf_elf_open(path, &e, why, sizeof(why)) == 0, "%s", why);
	for (i = 0; i < count; i++) {
		uint64_t vaddr = ps_nm_address(path, names[i], true), want;

		want = ps_readelf_offset(path, vaddr);
		CHECK_MSG(hf_elf_find_symbol(&e, names[i], false, &sym) == 0, "%s in %s", names[i],
			  path);
		if (want == UINT64_MAX) {
			/* In .bss, with no bytes in the file: no offset either. */
			CHECK(hf_elf_vaddr_to_offset(&e, sym.value, &off, &avail) == -ENOENT);
			continue;
		}
		CHECK(hf_elf_vaddr_to_offset(&e, sym.value, &off, &avail) == 0);
		CHECK_MSG(off == want, "%s: offset %#" PRIx64 " vs readelf %#" PRIx64, names[i],
			  off, want);
		CHECK(avail > 0);
		differs |= off != vaddr;
	}
	CHECK(hf_elf_vaddr_to_offset(&e, 0xffffffff00ull, &off, &avail) == -ENOENT);
	hf_elf_close(&e);
	return differs;
}

static void test_offsets_match_readelf(void)
{
	static const char *const libc_names[] = {"malloc", "free", "stdout", "environ"};
	/* Debian's python3.11 is a non-PIE ET_EXEC: addresses 0x400000 above offsets. */
	static const char *const py_names[] = {"PyMem_Malloc", "Py_Main", "PyMem_RawFree"};

	check_offsets(LIBC, libc_names, 4);
	if (access("/usr/bin/python3.11", R_OK) == 0)
		CHECK(check_offsets("/usr/bin/python3.11", py_names, 3));
	else
		HF_SKIP("/usr/bin/python3.11 (python3 of Debian 12) is not installed");
}

static void test_build_id_and_needed(void)
{
	char want[64], got[41], why[256], names[32][HF_ELF_NAME_LEN], line[512];
	struct hf_elf e;
	int n, i = 0;
	FILE *p;

	ps_readelf_build_id(LIBC, want, sizeof(want));
	CHECK(hf_elf_open(LIBC, &e, why, sizeof(why)) == 0);
	CHECK(hf_elf_build_id(&e, got, sizeof(got)) == 0);
	CHECK(want[0] != '\0');
	CHECK_STR_EQ(got, want);
	hf_elf_close(&e);

	CHECK(hf_elf_open("/bin/ls", &e, why, sizeof(why)) == 0);
	n = hf_elf_needed(&e, names, 32);
	hf_elf_close(&e);
	CHECK(n > 1);
	p = popen("readelf -dW /bin/ls", "r");
	CHECK(p != NULL);
	while (p && fgets(line, sizeof(line), p)) {
		char *lb = strstr(line, "Shared library: ["), *rb;

		if (!strstr(line, "(NEEDED)") || !lb || !(rb = strchr(lb, ']')))
			continue;
		*rb = '\0';
		CHECK_MSG(i < n && !strcmp(names[i], lb + 17), "NEEDED #%d: %s vs readelf %s", i,
			  i < n ? names[i] : "(none)", lb + 17);
		i++;
	}
	if (p)
		pclose(p);
	CHECK_EQ_U64(i, n);
}

static unsigned char *read_all(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	if (buf && read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static int write_file(const char *path, const unsigned char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* Every public entry point on one file; only "no crash" and a sane error are asked. */
static int poke(const char *path)
{
	struct hf_alloc_target t;
	struct hf_elf e;
	struct hf_elf_sym sym;
	char why[256], id[41], names[8][HF_ELF_NAME_LEN];
	uint64_t off;
	int err;

	err = hf_alloc_target_from_file(path, &t, why, sizeof(why));
	if (hf_elf_open(path, &e, why, sizeof(why)) == 0) {
		if (hf_elf_find_symbol(&e, "malloc", true, &sym) == 0)
			hf_elf_vaddr_to_offset(&e, sym.value, &off, NULL);
		hf_elf_build_id(&e, id, sizeof(id));
		hf_elf_needed(&e, names, 8);
		hf_elf_close(&e);
	}
	return err;
}

static void test_malformed_files(void)
{
	static const size_t cuts[] = {0, 1, 4, 16, 63, 64, 65, 200, 1000, 4096, 70000, 300000};
	char dir[] = "/tmp/hf-probe-site-XXXXXX", path[128];
	const char *src = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0";
	unsigned char *orig, *copy;
	size_t len, i, k;
	int err, survived = 0;

	if (access(src, R_OK) != 0)
		src = LIBC;
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/obj.so", dir);
	orig = read_all(src, &len);
	CHECK(orig != NULL);
	if (!orig)
		return;
	copy = malloc(len);

	/* The whole file first: it must work, or the corruptions prove nothing. */
	CHECK(write_file(path, orig, len) == 0);
	CHECK(poke(path) == 0);

	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		if (cuts[i] >= len)
			continue;
		CHECK(write_file(path, orig, cuts[i]) == 0);
		err = poke(path);
		CHECK_MSG(err != 0 || cuts[i] > 4096, "a %zu-byte stump must not pass", cuts[i]);
		survived++;
	}

	/* Garbage behind a valid ELF identification, and pure garbage. */
	srand(12345);
	for (k = 0; k < len; k++)
		copy[k] = (unsigned char)rand();
	CHECK(write_file(path, copy, 65536) == 0);
	CHECK(poke(path) == -ENOEXEC);
	memcpy(copy, orig, 64);
	CHECK(write_file(path, copy, 65536) == 0);
	CHECK(poke(path) != 0);
	survived += 2;

	/* Random bytes flipped in the headers, tables and code. */
	for (i = 0; i < 400; i++) {
		memcpy(copy, orig, len);
		for (k = 0; k < 24; k++) {
			size_t at = (size_t)rand() % (k < 8 ? 4096 : len);

			copy[at] = (unsigned char)rand();
		}
		/* Sometimes hit the section header table at the end squarely. */
		if (i % 3 == 0)
			for (k = 0; k < 16; k++)
				copy[len - 1 - (size_t)rand() % 2048] = (unsigned char)rand();
		CHECK(write_file(path, copy, len) == 0);
		poke(path);
		survived++;
	}
	CHECK(survived > 400);
	unlink(path);
	rmdir(dir);
	free(copy);
	free(orig);
}

int main(void)
{
	test_symbols_match_nm();
	test_offsets_match_readelf();
	test_build_id_and_needed();
	test_malformed_files();
	return hf_test_done();
}
