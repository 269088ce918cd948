/* SPDX-License-Identifier: MIT */
/*
 * elf_file.h - the few questions heapfragd asks of an ELF object: which
 * symbols it defines, where a virtual address lives in the file, its build-id,
 * its DT_NEEDED list and whether it is an executable.
 *
 * Every answer is bounds-checked against the file: a truncated or garbage
 * object yields an error, never a crash.  Only x86-64 objects are accepted,
 * because only their prologues can be decoded for probe placement.
 */
#ifndef HF_ELF_FILE_H
#define HF_ELF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HF_ELF_NAME_LEN 256

struct hf_elf {
	int fd;
	void *elf;                    /* Elf *, kept opaque so users need no libelf headers */
	int type;                     /* e_type: ET_EXEC, ET_DYN, ... */
	bool has_interp;              /* has a PT_INTERP program header */
	bool pie_flag;                /* DT_FLAGS_1 has DF_1_PIE */
	char soname[HF_ELF_NAME_LEN]; /* DT_SONAME, "" if none */
	char interp[HF_ELF_NAME_LEN]; /* PT_INTERP: the program's dynamic linker, "" if none */
};

struct hf_elf_sym {
	uint64_t value;       /* st_value: the symbol's virtual address */
	uint64_t size;        /* st_size */
	int type;             /* STT_FUNC, STT_GNU_IFUNC, ... */
	bool from_symtab;     /* found in .symtab rather than .dynsym */
	bool default_version; /* unversioned or the default (@@) version */
};

/* Opens path read-only.  Returns 0, or a negative errno with a sentence in why. */
int hf_elf_open(const char *path, struct hf_elf *out, char *why, size_t why_len);

/* Closes what hf_elf_open opened; safe on a zeroed or already closed struct. */
void hf_elf_close(struct hf_elf *e);

/*
 * Finds a defined global or weak symbol called name in .dynsym and, when
 * with_symtab is set and .dynsym lacks it, in .symtab.  Of several versions
 * the default one (@@) wins; a symbol that exists only as a compatibility
 * version (@) is returned with default_version false.  Returns 0 or -ENOENT.
 */
int hf_elf_find_symbol(const struct hf_elf *e, const char *name, bool with_symtab,
		       struct hf_elf_sym *out);

/*
 * The same for any symbol, local ones included, looked up in .symtab first
 * (a detached debug file's main_arena is local), then .dynsym.  0 or -ENOENT.
 */
int hf_elf_find_local_symbol(const struct hf_elf *e, const char *name, struct hf_elf_sym *out);

/*
 * File offset of a virtual address: vaddr - p_vaddr + p_offset of the PT_LOAD
 * segment holding it in its file-backed part.  *avail (if not NULL) receives
 * how many bytes of that segment follow in the file.  Returns 0 or -ENOENT.
 */
int hf_elf_vaddr_to_offset(const struct hf_elf *e, uint64_t vaddr, uint64_t *offset,
			   uint64_t *avail);

/* Reads up to len bytes at a file offset; returns the count read or a negative errno. */
long hf_elf_read(const struct hf_elf *e, uint64_t offset, void *buf, size_t len);

/* Lowercase hex GNU build-id into hex (41 bytes suffice); "" and -ENOENT if none. */
int hf_elf_build_id(const struct hf_elf *e, char *hex, size_t hex_len);

/*
 * Copies the DT_NEEDED names in order into names[0..max).  Returns how many
 * the object has (possibly more than max) or a negative errno.
 */
int hf_elf_needed(const struct hf_elf *e, char (*names)[HF_ELF_NAME_LEN], int max);

/* True for a program rather than a shared library: ET_EXEC, DF_1_PIE, or PT_INTERP without a
 * soname. */
bool hf_elf_is_executable(const struct hf_elf *e);

#endif /* HF_ELF_FILE_H */
