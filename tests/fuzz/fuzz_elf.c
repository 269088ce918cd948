// SPDX-License-Identifier: MIT
/*
 * fuzz_elf - the libFuzzer target for the ELF reader (daemon/elf_file.c)
 * and what the daemon does with an allocator's ELF file
 * (hf_alloc_target_from_file in daemon/probe_site.c: symbols, their file
 * offsets, the prologue at each, the build id).  Those files come from a
 * container's root, which its owner writes: any bytes at all.  Each input is
 * a whole file (tests/fuzz/elf/ holds real ones from this system), written
 * to a memfd and opened through /proc/self/fd as the daemon opens a path.
 *
 * Beyond not crashing: the names it returns are NUL-terminated; the build id
 * is lowercase hex of whole bytes; a symbol's file offset is the one its
 * PT_LOAD segment gives, by an independent reading of the program headers;
 * a probe site lies in the window the daemon read at its symbol, and its
 * return probe at the symbol or at the entry probe.  abort() marks a result
 * that breaks them.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf_file.h"
#include "probe_site.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The window place_op() reads at a symbol (probe_site.c's CODE_WINDOW). */
#define CODE_WINDOW 96

static const char *const names[] = {"malloc",     "free",      "calloc",    "realloc",
				    "main_arena", "ptm_stats", "je_malloc", "mi_malloc"};

static bool terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/*
 * The file offset of vaddr by the program headers as the file holds them
 * (ELF64, little-endian, a plain e_phnum): 0 when found, -ENOENT when no
 * PT_LOAD holds it, -EINVAL when the headers are not that simple.
 */
static int own_offset(const uint8_t *f, size_t size, uint64_t vaddr, uint64_t *off, uint64_t *avail)
{
	uint64_t phoff, phentsize, phnum;

	if (size < sizeof(Elf64_Ehdr) || f[EI_CLASS] != ELFCLASS64 || f[EI_DATA] != ELFDATA2LSB)
		return -EINVAL;
	phoff = le(f + offsetof(Elf64_Ehdr, e_phoff), 8);
	phentsize = le(f + offsetof(Elf64_Ehdr, e_phentsize), 2);
	phnum = le(f + offsetof(Elf64_Ehdr, e_phnum), 2);
	if (phnum == PN_XNUM || phentsize != sizeof(Elf64_Phdr) || phoff > size ||
	    (size - phoff) / sizeof(Elf64_Phdr) < phnum)
		return -EINVAL;
	for (uint64_t i = 0; i < phnum; i++) {
		const uint8_t *ph = f + phoff + i * sizeof(Elf64_Phdr);
		uint64_t pvaddr = le(ph + offsetof(Elf64_Phdr, p_vaddr), 8);
		uint64_t pfilesz = le(ph + offsetof(Elf64_Phdr, p_filesz), 8);

		if (le(ph + offsetof(Elf64_Phdr, p_type), 4) != PT_LOAD || vaddr < pvaddr ||
		    vaddr - pvaddr >= pfilesz)
			continue;
		*off = vaddr - pvaddr + le(ph + offsetof(Elf64_Phdr, p_offset), 8);
		*avail = pfilesz - (vaddr - pvaddr);
		return 0;
	}
	return -ENOENT;
}

static void check_reader(const char *path, const uint8_t *data, size_t size)
{
	char why[256] = "", hex[41], needed[4][HF_ELF_NAME_LEN];
	struct hf_elf e;
	int n;

	if (hf_elf_open(path, &e, why, sizeof(why)) != 0) {
		CHECK(why[0] && terminated(why, sizeof(why)));
		return;
	}
	CHECK(terminated(e.soname, sizeof(e.soname)) && terminated(e.interp, sizeof(e.interp)));
	if (hf_elf_build_id(&e, hex, sizeof(hex)) == 0) {
		size_t len = strlen(hex);

		CHECK(len > 0 && len % 2 == 0 && len < sizeof(hex));
		CHECK(strspn(hex, "0123456789abcdef") == len);
	} else {
		CHECK(hex[0] == '\0');
	}
	n = hf_elf_needed(&e, needed, 4);
	CHECK(n >= 0);
	for (int i = 0; i < n && i < 4; i++)
		CHECK(terminated(needed[i], HF_ELF_NAME_LEN));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct hf_elf_sym sym;
		uint64_t off, avail, own, own_avail;
		uint8_t code[CODE_WINDOW];
		long got;

		if (hf_elf_find_local_symbol(&e, names[i], &sym) != 0)
			continue;
		if (hf_elf_vaddr_to_offset(&e, sym.value, &off, &avail) != 0)
			continue;
		CHECK(avail > 0);
		if (own_offset(data, size, sym.value, &own, &own_avail) != -EINVAL)
			CHECK(own_offset(data, size, sym.value, &own, &own_avail) == 0 &&
			      own == off && own_avail == avail);
		got = hf_elf_read(&e, off, code,
				  avail < sizeof(code) ? (size_t)avail : sizeof(code));
		/* What is read lies in the file: pread stops at its end. */
		CHECK(got <= (long)sizeof(code));
		if (got > 0)
			CHECK(off < size && (uint64_t)got <= size - off &&
			      memcmp(code, data + off, (size_t)got) == 0);
	}
	(void)hf_elf_is_executable(&e);
	hf_elf_close(&e);
	CHECK(e.fd == -1 && e.elf == NULL);
}

static void check_target(const char *path, size_t size)
{
	struct hf_alloc_target *t = malloc(sizeof(*t));
	char why[256] = "";
	int err;

	if (!t)
		return;
	err = hf_alloc_target_from_file(path, t, why, sizeof(why));
	CHECK(terminated(why, sizeof(why)));
	if (err) {
		CHECK(err < 0 && why[0]);
		goto out;
	}
	CHECK(t->ops[HF_OP_MALLOC].present);
	CHECK(terminated(t->build_id, sizeof(t->build_id)));
	for (int op = 0; op < HF_OP_COUNT; op++) {
		const struct hf_probe_site *s = &t->ops[op];

		if (!s->present)
			continue;
		CHECK(terminated(s->entry_insn, sizeof(s->entry_insn)));
		/* The entry probe sits inside the window read at the symbol. */
		CHECK(s->entry_offset >= s->sym_offset &&
		      s->entry_offset - s->sym_offset < CODE_WINDOW);
		CHECK(s->ret_offset == s->sym_offset || s->ret_offset == s->entry_offset);
		/* Only code that was read can move the probe off the symbol. */
		if (s->entry_offset != s->sym_offset)
			CHECK(s->sym_offset < size &&
			      s->entry_offset - s->sym_offset < size - s->sym_offset);
		CHECK(s->alias_of < op);
		if (s->alias_of >= 0)
			CHECK(t->ops[s->alias_of].present &&
			      t->ops[s->alias_of].sym_offset == s->sym_offset);
	}
out:
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	check_reader(path, data, size);
	check_target(path, size);
	return 0;
}
