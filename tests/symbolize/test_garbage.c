// SPDX-License-Identifier: MIT
/*
 * Files a hostile target could map as code: random bytes, an ELF header over
 * random bytes, libsymtest truncated, libsymtest with a compressed section
 * claiming to inflate to a terabyte, with program headers pointing past the
 * end of the file, with an unterminated symbol string table, and with random
 * bytes written over it in many places.
 * Each is mapped PROT_READ | PROT_EXEC by the live target; every address in
 * it gives its object and an offset, and nothing crashes (under ASan+UBSan
 * in the sanitizer build).  Files that are not usable ELF give the file
 * offset and no names.  HF_SYM_SEED (default 12345) picks other corruptions.
 * Controls: intact copies of libsymtest (as is, with gABI-compressed and
 * with GNU .zdebug DWARF) mapped the same way are still named and lined
 * exactly as addr2line names the original.
 */
#include <elf.h>
#include <sys/stat.h>

#include "sym_util.h"

#define CORRUPT_COPIES 40

static char dir[PATH_MAX];
static unsigned rng = 12345;

static unsigned next_random(void)
{
	rng = rng * 1103515245u + 12345u;
	return rng >> 8;
}

static void *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	if (f)
		fclose(f);
	return buf;
}

static bool write_file(const char *name, const void *buf, size_t len, char *path, size_t plen)
{
	FILE *f;
	bool ok;

	snprintf(path, plen, "%s/%s", dir, name);
	f = fopen(path, "wb");
	ok = f && fwrite(buf, 1, len, f) == len;
	if (f)
		fclose(f);
	return ok;
}

/* The section header called name in an ELF64 image, or NULL. */
static Elf64_Shdr *find_section(unsigned char *img, size_t len, const char *name)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Shdr *sh, *strs;

	if (eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(*sh) > len ||
	    eh->e_shstrndx >= eh->e_shnum)
		return NULL;
	sh = (Elf64_Shdr *)(img + eh->e_shoff);
	strs = &sh[eh->e_shstrndx];
	for (int i = 0; i < eh->e_shnum; i++) {
		if (strs->sh_offset + sh[i].sh_name < len &&
		    !strcmp((char *)img + strs->sh_offset + sh[i].sh_name, name))
			return &sh[i];
	}
	return NULL;
}

static void test_garbage(void)
{
	char prog[PATH_MAX + 64], lib[PATH_MAX + 64], paths[CORRUPT_COPIES + 9][PATH_MAX + 64];
	char *args[CORRUPT_COPIES + 10];
	struct hf_symbolizer *s = hf_symbolizer_new();
	struct hf_symbolizer_stats st;
	unsigned char *img, *copy;
	struct sym_child c;
	size_t len = 0, n = 0;
	Elf64_Shdr *sh;

	if (getenv("HF_SYM_SEED"))
		rng = (unsigned)strtoul(getenv("HF_SYM_SEED"), NULL, 10);
	snprintf(prog, sizeof(prog), "%s/full/symtest_prog", sym_dir());
	snprintf(lib, sizeof(lib), "%s/full/libsymtest.so", sym_dir());
	snprintf(dir, sizeof(dir), "%s/garbage-XXXXXX", sym_dir());
	CHECK(s != NULL && mkdtemp(dir) != NULL);
	img = read_whole(lib, &len);
	CHECK(img != NULL && len > 8192);
	if (!img)
		return;
	copy = malloc(len);

	for (size_t i = 0; i < len; i++)
		copy[i] = (unsigned char)next_random();
	CHECK(write_file("random.bin", copy, 65536 < len ? 65536 : len, paths[n],
			 sizeof(paths[n])));
	n++;
	memcpy(copy, img, sizeof(Elf64_Ehdr));
	CHECK(write_file("header_only.so", copy, len, paths[n], sizeof(paths[n])));
	n++;
	CHECK(write_file("truncated.so", img, 4096, paths[n], sizeof(paths[n])));
	n++;

	/* .debug_info claims to inflate to 1 TiB. */
	memcpy(copy, img, len);
	sh = find_section(copy, len, ".debug_info");
	CHECK(sh != NULL);
	if (sh) {
		Elf64_Chdr ch = {
			.ch_type = ELFCOMPRESS_ZLIB, .ch_size = 1ULL << 40, .ch_addralign = 1};

		sh->sh_flags |= SHF_COMPRESSED;
		memcpy(copy + sh->sh_offset, &ch, sizeof(ch));
	}
	CHECK(write_file("bomb.so", copy, len, paths[n], sizeof(paths[n])));
	n++;

	/* Every PT_LOAD says its bytes lie far beyond the end of the file. */
	memcpy(copy, img, len);
	{
		Elf64_Ehdr *eh = (Elf64_Ehdr *)copy;
		Elf64_Phdr *ph = (Elf64_Phdr *)(copy + eh->e_phoff);

		for (int i = 0; i < eh->e_phnum; i++)
			if (ph[i].p_type == PT_LOAD)
				ph[i].p_offset += 1ULL << 40;
	}
	CHECK(write_file("phdrs_past_end.so", copy, len, paths[n], sizeof(paths[n])));
	n++;

	/*
	 * The symbol string table's last string runs to its end, unterminated:
	 * libdwfl would read a name past its buffer (found by fuzz_symbolize).
	 */
	memcpy(copy, img, len);
	sh = find_section(copy, len, ".strtab");
	CHECK(sh != NULL && sh->sh_size > 0);
	if (sh && sh->sh_size > 0)
		memset(copy + sh->sh_offset + sh->sh_size - 8, 'x', 8);
	CHECK(write_file("strtab_unterminated.so", copy, len, paths[n], sizeof(paths[n])));
	n++;

	/*
	 * Random bytes over random places: in even copies anywhere past the
	 * ELF identification, in odd ones only inside the DWARF and symbol
	 * sections, so that the headers pass and elfutils parses the garbage.
	 */
	for (int k = 0; k < CORRUPT_COPIES; k++) {
		static const char *const targets[] = {
			".debug_info",     ".debug_abbrev",  ".debug_line",     ".debug_str",
			".debug_line_str", ".debug_aranges", ".debug_rnglists", ".debug_loclists",
			".symtab",         ".strtab",        ".dynsym",         ".dynstr",
		};
		const size_t ntargets = sizeof(targets) / sizeof(targets[0]);
		char name[64];
		int hits = 1 + (int)(next_random() % 64);

		memcpy(copy, img, len);
		for (int h = 0; h < hits; h++) {
			size_t at = 16 + next_random() % (len - 16), span = 1 + next_random() % 16;

			if (k % 2) {
				sh = find_section(img, len, targets[next_random() % ntargets]);
				if (!sh || sh->sh_size == 0)
					continue;
				at = sh->sh_offset + next_random() % sh->sh_size;
			}
			for (size_t b = 0; b < span && at + b < len; b++)
				copy[at + b] = (unsigned char)next_random();
		}
		snprintf(name, sizeof(name), "corrupt%02d.so", k);
		CHECK(write_file(name, copy, len, paths[n], sizeof(paths[n])));
		n++;
	}
	/* The controls, last. */
	{
		static const char *const how[3][2] = {
			{"intact.so", ""},
			{"gabi_zlib.so", "--compress-debug-sections=zlib"},
			{"gnu_zdebug.so", "--compress-debug-sections=zlib-gnu"},
		};
		char cmd[3 * PATH_MAX];

		for (int k = 0; k < 3; k++) {
			snprintf(paths[n], sizeof(paths[n]), "%s/%s", dir, how[k][0]);
			snprintf(cmd, sizeof(cmd), "objcopy %s '%s' '%s'", how[k][1], lib,
				 paths[n]);
			CHECK(sym_run(cmd) == 0);
			n++;
		}
	}

	/* Writable by anyone: a hostile target's files, each parsed on its own. */
	for (size_t i = 0; i < n; i++) {
		CHECK(chmod(paths[i], 0666) == 0);
		args[i] = paths[i];
	}
	args[n] = NULL;

	CHECK(sym_start(&c, NULL, prog, args) == 0);
	CHECK_EQ_U64(c.nmaps, n);
	for (int i = 0; i < c.nmaps; i++) {
		uint64_t base = c.maps[i].addr, size = c.maps[i].size;
		uint64_t addrs[4] = {base + 0x10, base + size / 2, base + size - 1, base + 0x1139};
		struct hf_frame f[4];
		int exact = i % 2 ? HF_SYM_EXACT : 0;

		if (addrs[3] >= base + size)
			addrs[3] = base + 1;
		CHECK(hf_symbolize(s, c.pid, addrs, 4, (unsigned)exact, f) == 0);
		for (int j = 0; j < 4; j++) {
			uint64_t look = exact ? addrs[j] : addrs[j] - 1;
			bool nameless = !f[j].function && !f[j].file && !f[j].line;

			CHECK_STR_EQ(f[j].object, c.maps[i].path);
			if (i < 6) {
				/* Not usable ELF: the file offset, no names. */
				CHECK_EQ_U64(f[j].offset, look - base + (exact ? 0 : 1));
				CHECK_MSG(nameless, "%s+%#" PRIx64 ": %s %s:%u", f[j].object,
					  f[j].offset, f[j].function, f[j].file, f[j].line);
			}
		}
	}
	/*
	 * The controls: a plain mapping of the whole file puts each byte at its
	 * file offset, which in libsymtest's text equals its virtual address.
	 */
	{
		uint64_t value = 0, size = 0;
		struct sym_a2l a2l;

		CHECK(sym_nm(lib, "lib_inner", false, &value, &size));
		CHECK(sym_readelf_vaddr(lib, value) == value);
		CHECK(sym_addr2line(lib, value + 4, &a2l));
		for (int i = c.nmaps - 3; i < c.nmaps; i++) {
			uint64_t addr = c.maps[i].addr + value + 4;
			struct hf_frame f;

			CHECK(hf_symbolize(s, c.pid, &addr, 1, HF_SYM_EXACT, &f) == 0);
			CHECK_EQ_U64(f.offset, value + 4);
			CHECK_MSG(f.function && !strcmp(f.function, "lib_inner"), "%s: %s",
				  f.object, f.function);
			CHECK_MSG(f.file && sym_same_source(f.file, a2l.file) && f.line == a2l.line,
				  "%s: %s:%u, addr2line says %s:%u", f.object, f.file, f.line,
				  a2l.file, a2l.line);
		}
	}
	hf_symbolizer_stats(s, &st);
	CHECK(st.objects_unusable >= 6);
	printf("%zu hostile files: %" PRIu64 " parsed, %" PRIu64
	       " unusable (object + offset only)\n",
	       n, st.objects_parsed, st.objects_unusable);

	/* And the target's own code is still symbolised afterwards. */
	{
		struct hf_frame f;

		CHECK(hf_symbolize(s, c.pid, &c.exe_site, 1, 0, &f) == 0);
		CHECK_STR_EQ(f.function, "exe_site");
	}
	sym_stop(&c);
	hf_symbolizer_free(s);
	free(copy);
	free(img);
	sym_rmtree(dir);
}

int main(void)
{
	test_garbage();
	return hf_test_done();
}
