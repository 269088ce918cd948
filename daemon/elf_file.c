// SPDX-License-Identifier: MIT
#include "elf_file.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef NT_GNU_BUILD_ID
#define NT_GNU_BUILD_ID 3
#endif
#ifndef DF_1_PIE
#define DF_1_PIE 0x08000000
#endif

/* The hidden bit of a .gnu.version entry marks a non-default (@) version. */
#define VERSYM_HIDDEN 0x8000
#define VERSYM_INDEX  0x7fff

static Elf *elf_of(const struct hf_elf *e)
{
	return (Elf *)e->elf;
}

static Elf_Scn *find_section(Elf *elf, Elf64_Word type, GElf_Shdr *shdr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		if (gelf_getshdr(scn, shdr) && shdr->sh_type == type)
			return scn;
	}
	return NULL;
}

/* Reads DT_SONAME and DT_FLAGS_1 from the dynamic section, if there is one. */
static void read_dynamic(struct hf_elf *e)
{
	Elf *elf = elf_of(e);
	GElf_Shdr shdr;
	Elf_Scn *scn = find_section(elf, SHT_DYNAMIC, &shdr);
	Elf_Data *data;
	size_t n, i;

	if (!scn || !(data = elf_getdata(scn, NULL)))
		return;
	n = data->d_size / gelf_fsize(elf, ELF_T_DYN, 1, EV_CURRENT);
	for (i = 0; i < n; i++) {
		GElf_Dyn dyn;
		const char *s;

		if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag == DT_SONAME) {
			s = elf_strptr(elf, shdr.sh_link, dyn.d_un.d_val);
			if (s)
				snprintf(e->soname, sizeof(e->soname), "%s", s);
		} else if (dyn.d_tag == DT_FLAGS_1) {
			e->pie_flag = (dyn.d_un.d_val & DF_1_PIE) != 0;
		}
	}
}

int hf_elf_open(const char *path, struct hf_elf *out, char *why, size_t why_len)
{
	GElf_Ehdr ehdr;
	size_t phnum, i;
	int err;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(why, why_len, "libelf is unusable: %s", elf_errmsg(-1));
		return -ENOTSUP;
	}
	out->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (out->fd < 0) {
		err = -errno;
		snprintf(why, why_len, "cannot open %s: %s", path, strerror(-err));
		return err;
	}
	/* ELF_C_READ copies what it reads: a file truncated under us cannot SIGBUS. */
	out->elf = elf_begin(out->fd, ELF_C_READ, NULL);
	if (!out->elf || elf_kind(elf_of(out)) != ELF_K_ELF || !gelf_getehdr(elf_of(out), &ehdr)) {
		snprintf(why, why_len, "%s is not an ELF file", path);
		err = -ENOEXEC;
		goto fail;
	}
	if (gelf_getclass(elf_of(out)) != ELFCLASS64 || ehdr.e_machine != EM_X86_64) {
		snprintf(why, why_len, "%s is not an x86-64 ELF object", path);
		err = -ENOEXEC;
		goto fail;
	}
	out->type = ehdr.e_type;
	if (elf_getphdrnum(elf_of(out), &phnum) != 0)
		phnum = 0;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf_of(out), (int)i, &phdr) || phdr.p_type != PT_INTERP)
			continue;
		out->has_interp = true;
		if (phdr.p_filesz > 1 && phdr.p_filesz < sizeof(out->interp) &&
		    hf_elf_read(out, phdr.p_offset, out->interp, phdr.p_filesz) ==
			    (long)phdr.p_filesz)
			out->interp[phdr.p_filesz - 1] = '\0';
		else
			out->interp[0] = '\0';
	}
	read_dynamic(out);
	return 0;
fail:
	hf_elf_close(out);
	return err;
}

void hf_elf_close(struct hf_elf *e)
{
	if (e->elf)
		elf_end(elf_of(e));
	e->elf = NULL;
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
}

static bool is_defined(const GElf_Sym *sym, bool locals)
{
	int bind = GELF_ST_BIND(sym->st_info), type = GELF_ST_TYPE(sym->st_info);

	if (sym->st_shndx == SHN_UNDEF)
		return false;
	if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE &&
	    !(locals && bind == STB_LOCAL))
		return false;
	return type != STT_SECTION && type != STT_FILE;
}

/* Searches one symbol table; versym is the matching .gnu.version data or NULL. */
static int search_table(Elf *elf, Elf_Scn *scn, const GElf_Shdr *shdr, Elf_Data *versym,
			const char *name, bool locals, struct hf_elf_sym *out)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	bool found = false;
	size_t n, i;

	if (!data)
		return -ENOENT;
	n = data->d_size / gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		GElf_Versym vs = 1;
		const char *s;
		bool dflt;

		if (!gelf_getsym(data, (int)i, &sym) || !is_defined(&sym, locals))
			continue;
		s = elf_strptr(elf, shdr->sh_link, sym.st_name);
		if (!s || strcmp(s, name) != 0)
			continue;
		if (versym && !gelf_getversym(versym, (int)i, &vs))
			vs = 1;
		/* Index 0 and 1 are the unversioned local and global symbols. */
		dflt = !(vs & VERSYM_HIDDEN) || (vs & VERSYM_INDEX) <= 1;
		if (found && (out->default_version || !dflt))
			continue;
		out->value = sym.st_value;
		out->size = sym.st_size;
		out->type = GELF_ST_TYPE(sym.st_info);
		out->default_version = dflt;
		found = true;
	}
	return found ? 0 : -ENOENT;
}

int hf_elf_find_symbol(const struct hf_elf *e, const char *name, bool with_symtab,
		       struct hf_elf_sym *out)
{
	Elf *elf = elf_of(e);
	GElf_Shdr shdr, vshdr;
	Elf_Scn *scn, *vscn;
	Elf_Data *versym = NULL;

	memset(out, 0, sizeof(*out));
	scn = find_section(elf, SHT_DYNSYM, &shdr);
	if (scn) {
		vscn = find_section(elf, SHT_GNU_versym, &vshdr);
		if (vscn)
			versym = elf_getdata(vscn, NULL);
		if (search_table(elf, scn, &shdr, versym, name, false, out) == 0)
			return 0;
	}
	if (!with_symtab)
		return -ENOENT;
	scn = find_section(elf, SHT_SYMTAB, &shdr);
	if (scn && search_table(elf, scn, &shdr, NULL, name, false, out) == 0) {
		out->from_symtab = true;
		return 0;
	}
	return -ENOENT;
}

int hf_elf_find_local_symbol(const struct hf_elf *e, const char *name, struct hf_elf_sym *out)
{
	Elf *elf = elf_of(e);
	GElf_Shdr shdr;
	Elf_Scn *scn;

	memset(out, 0, sizeof(*out));
	scn = find_section(elf, SHT_SYMTAB, &shdr);
	if (scn && search_table(elf, scn, &shdr, NULL, name, true, out) == 0) {
		out->from_symtab = true;
		return 0;
	}
	return hf_elf_find_symbol(e, name, false, out);
}

int hf_elf_vaddr_to_offset(const struct hf_elf *e, uint64_t vaddr, uint64_t *offset,
			   uint64_t *avail)
{
	size_t phnum, i;

	if (elf_getphdrnum(elf_of(e), &phnum) != 0)
		return -ENOENT;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr p;

		if (!gelf_getphdr(elf_of(e), (int)i, &p) || p.p_type != PT_LOAD)
			continue;
		if (vaddr < p.p_vaddr || vaddr - p.p_vaddr >= p.p_filesz)
			continue;
		*offset = vaddr - p.p_vaddr + p.p_offset;
		if (avail)
			*avail = p.p_filesz - (vaddr - p.p_vaddr);
		return 0;
	}
	return -ENOENT;
}

long hf_elf_read(const struct hf_elf *e, uint64_t offset, void *buf, size_t len)
{
	ssize_t n;

	if (offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	n = pread(e->fd, buf, len, (off_t)offset);
	return n < 0 ? -errno : (long)n;
}

/* Looks for NT_GNU_BUILD_ID in one block of notes. */
static bool build_id_in(Elf_Data *data, char *hex, size_t hex_len)
{
	size_t off = 0, next, name_off, desc_off, i;
	GElf_Nhdr nhdr;

	while ((next = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
		const unsigned char *desc = (const unsigned char *)data->d_buf + desc_off;

		off = next;
		if (nhdr.n_type != NT_GNU_BUILD_ID || nhdr.n_namesz != 4 ||
		    memcmp((const char *)data->d_buf + name_off, "GNU", 4) != 0 ||
		    nhdr.n_descsz == 0)
			continue;
		for (i = 0; i < nhdr.n_descsz && 2 * i + 2 < hex_len; i++)
			snprintf(hex + 2 * i, 3, "%02x", desc[i]);
		return true;
	}
	return false;
}

int hf_elf_build_id(const struct hf_elf *e, char *hex, size_t hex_len)
{
	Elf *elf = elf_of(e);
	Elf_Scn *scn = NULL;
	size_t phnum, i;

	if (hex_len == 0)
		return -EINVAL;
	hex[0] = '\0';
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr shdr;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(scn, NULL);
		if (data && build_id_in(data, hex, hex_len))
			return 0;
	}
	/* A file stripped of its section headers still has PT_NOTE. */
	if (elf_getphdrnum(elf, &phnum) != 0)
		return -ENOENT;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr p;
		Elf_Data *data;

		if (!gelf_getphdr(elf, (int)i, &p) || p.p_type != PT_NOTE)
			continue;
		data = elf_getdata_rawchunk(elf, (int64_t)p.p_offset, p.p_filesz, ELF_T_NHDR);
		if (data && build_id_in(data, hex, hex_len))
			return 0;
	}
	return -ENOENT;
}

int hf_elf_needed(const struct hf_elf *e, char (*names)[HF_ELF_NAME_LEN], int max)
{
	Elf *elf = elf_of(e);
	GElf_Shdr shdr;
	Elf_Scn *scn = find_section(elf, SHT_DYNAMIC, &shdr);
	Elf_Data *data;
	size_t n, i;
	int count = 0;

	if (!scn || !(data = elf_getdata(scn, NULL)))
		return 0;
	n = data->d_size / gelf_fsize(elf, ELF_T_DYN, 1, EV_CURRENT);
	for (i = 0; i < n; i++) {
		GElf_Dyn dyn;
		const char *s;

		if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag != DT_NEEDED)
			continue;
		s = elf_strptr(elf, shdr.sh_link, dyn.d_un.d_val);
		if (!s)
			continue;
		if (count < max)
			snprintf(names[count], HF_ELF_NAME_LEN, "%s", s);
		count++;
	}
	return count;
}

bool hf_elf_is_executable(const struct hf_elf *e)
{
	/* libc.so.6 has a PT_INTERP too, to run as a program; a library has a soname. */
	return e->type == ET_EXEC || e->pie_flag || (e->has_interp && !e->soname[0]);
}
