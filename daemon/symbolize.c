// SPDX-License-Identifier: MIT
/*
 * symbolize.c - frames for return addresses captured in another process.
 *
 * Per call: /proc/PID/maps is read once and each address is placed in its
 * mapping (for a return address, the mapping of address - 1, the call).  A
 * file mapping is resolved to a cached object: the file is opened as the
 * target names it, through /proc/PID/root, and used only if it is the very
 * inode the target mapped (device and inode as maps prints them); otherwise
 * /proc/PID/map_files gives that inode directly.  A new file is validated
 * here (ELF kind and type, PT_LOADs inside the file, symbol counts, the
 * sizes compressed sections claim, DWARF string sections and symbol string
 * tables that end in NUL)
 * and then handed to libdwfl as one module placed at its own link-time
 * addresses, so lookups are by ELF virtual address and one parse serves
 * every process that maps the object, wherever.
 *
 * Why the care: the target's files are untrusted.  They are read with
 * ELF_C_READ (pread, never mmap, so a file truncated under us is an error,
 * not SIGBUS); separate debug files come only from the host's debug
 * directory, by build-id; DWARF is walked here iteratively with a depth and
 * a visit budget instead of libdw's recursive scope walk; and only files the
 * host trusts are shared by build-id (see symbolize.h).
 *
 * Names are right or absent: DWARF names a function only when its ranges
 * hold the address, and a symbol only when [value, value + size) does.
 */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_MAX_OBJECTS    128
#define DEFAULT_MAX_FILE_BYTES (1ULL << 30)
#define DEFAULT_DEBUG_DIR      "/usr/lib/debug"

/* /proc/PID/maps beyond this is refused: 65530 mappings with short paths fit. */
#define MAX_MAPS_BYTES (32u << 20)
/* Real objects have a handful of PT_LOADs and a few dozen program headers. */
#define MAX_LOADS    16
#define MAX_PHDRS    256
#define MAX_BUILD_ID 64
/* Symbol lookups scan the table; this bounds one scan of a hostile file. */
#define MAX_SYMBOLS (1u << 24)
/* MiniDebugInfo is xz that elfutils inflates without a cap; real ones are small. */
#define MAX_DEBUGDATA_BYTES (4u << 20)
/* The DWARF walk for a function name: nesting depth and DIEs visited. */
#define MAX_DIE_DEPTH  64
#define MAX_DIE_VISITS (1u << 20)
/* Direct-mapped cache of looked-up addresses (a power of two). */
#define RESULT_CACHE_SIZE 4096
/* Identities (files) remembered per cached object. */
#define IDENTS_PER_OBJECT 4

#define SLOT_UNRESOLVED (-2)
#define SLOT_NONE       (-1)

/* A file as fstat sees it: a rewrite in place changes the times. */
struct ident {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

struct load {
	uint64_t offset;
	uint64_t filesz;
	uint64_t vaddr;
};

struct object {
	uint64_t serial;    /* unique per object ever created; 0 is never used */
	uint64_t last_call; /* the call that last used it: that call pins it */
	bool trusted;
	size_t build_id_len;
	unsigned char build_id[MAX_BUILD_ID];
	int nloads;
	struct load loads[MAX_LOADS];
	Dwfl *dwfl; /* NULL: no names, object and offset only */
	Dwfl_Module *mod;
	Dwarf_Addr bias; /* module address = ELF virtual address + bias */
};

struct ident_entry {
	struct ident id;
	int32_t slot;
	uint64_t serial;
	uint64_t last_call;
};

struct result {
	uint64_t serial; /* 0: empty */
	uint64_t vaddr;
	const char *function;
	const char *file;
	uint32_t line;
};

struct map {
	uint64_t start;
	uint64_t end;
	uint64_t pgoff;
	uint64_t ino;
	unsigned dev_major;
	unsigned dev_minor;
	const char *path; /* as maps prints it, in maps_buf */
	const char *seen; /* the same under the target's own root */
	int32_t slot;     /* SLOT_UNRESOLVED until needed in this call */
};

/* What one call knows about the target. */
struct target {
	pid_t pid;
	bool same_world; /* our root and mount namespace: its files may be trusted */
	char root[PATH_MAX];
	size_t root_len; /* 0 when its root is ours */
};

struct hf_symbolizer {
	unsigned max_objects;
	uint64_t max_file_bytes;
	char *debug_path;
	Dwfl_Callbacks callbacks;
	dev_t root_dev;
	ino_t root_ino;
	char mnt_ns[64];

	uint64_t call;
	uint64_t next_serial;
	struct object **slots;
	size_t nslots;
	size_t count;
	struct ident_entry *idents;
	size_t nidents;
	struct result *results;

	char *maps_buf;
	size_t maps_cap;
	struct map *maps;
	size_t nmaps;
	size_t maps_alloc;

	struct hf_symbolizer_stats stats;
};

/* The target's file and descriptor, handed to libdwfl by find_elf_cb. */
struct pending {
	Elf *elf;
	int fd;
	const char *name;
};

static int proc_errno(int e)
{
	return e == ENOENT || e == ESRCH ? -ESRCH : -e;
}

/*
 * libdwfl asks for the module's main file: give it the one already opened
 * and validated, so that it never opens a target's file by name itself.
 */
static int find_elf_cb(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
		       char **file_name, Elf **elfp)
{
	struct pending *p = userdata ? *userdata : NULL;
	int fd;

	if (!p || !p->elf)
		return -1;
	*elfp = p->elf;
	*file_name = strdup(p->name);
	fd = p->fd;
	p->elf = NULL;
	p->fd = -1;
	return fd;
}

static void object_free(struct object *o)
{
	if (!o)
		return;
	if (o->dwfl)
		dwfl_end(o->dwfl);
	free(o);
}

/* .debug_str and the like: libdw reads their strings with strlen. */
static bool is_dwarf_strings(const char *name, uint64_t flags)
{
	if (!name)
		return false;
	if (strncmp(name, ".zdebug", 7) == 0)
		name += 2;
	else if (strncmp(name, ".debug", 6) == 0)
		name += 1;
	else
		return false;
	return (flags & SHF_STRINGS) || strncmp(name, "debug_str", 9) == 0 ||
	       strncmp(name, "debug_line_str", 14) == 0;
}

/*
 * True if the section's last byte is NUL, so that no string in it runs past
 * its end (libdw 0.188 checks offsets into string sections, not their ends).
 * A compressed section is inflated here, in the Elf, which libdw would do
 * anyway; its size was bounded before.
 */
static bool ends_in_nul(Elf_Scn *scn, int fd, const GElf_Shdr *sh, const char *name)
{
	unsigned char last;
	Elf_Data *data;

	if (sh->sh_size == 0)
		return true;
	if (!(sh->sh_flags & SHF_COMPRESSED) && strncmp(name, ".zdebug", 7) != 0)
		return pread(fd, &last, 1, (off_t)(sh->sh_offset + sh->sh_size - 1)) == 1 &&
		       last == '\0';
	if (sh->sh_flags & SHF_COMPRESSED ? elf_compress(scn, 0, 0) < 0
					  : elf_compress_gnu(scn, 0, 0) < 0)
		return false;
	data = elf_getdata(scn, NULL);
	return data && data->d_buf && data->d_size > 0 &&
	       ((const unsigned char *)data->d_buf)[data->d_size - 1] == '\0';
}

/* The same for the string table at index link of a symbol table, which must be in the file. */
static bool strings_end_in_nul(Elf *elf, int fd, uint64_t file_size, size_t shstrndx, size_t link)
{
	Elf_Scn *scn = elf_getscn(elf, link);
	const char *name;
	GElf_Shdr sh;

	if (link == SHN_UNDEF || !scn || !gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS ||
	    sh.sh_offset > file_size || sh.sh_size > file_size - sh.sh_offset)
		return false;
	name = elf_strptr(elf, shstrndx, sh.sh_name);
	return ends_in_nul(scn, fd, &sh, name ? name : "");
}

/*
 * Checks what elfutils will trust about a target's file before it parses it:
 * an executable or shared object in our byte order, program headers and
 * PT_LOADs inside the file, symbol tables of bounded size, what compressed
 * sections would inflate to, and DWARF string sections and symbol string
 * tables that end in NUL.  Fills o->loads and the module span; *why says
 * what failed.
 */
static int elf_validate(Elf *elf, int fd, uint64_t file_size, uint64_t max_bytes, struct object *o,
			uint64_t *lo, uint64_t *hi, const char **why)
{
	uint64_t inflated = 0;
	size_t phnum, shnum, shstrndx;
	Elf_Scn *scn = NULL;
	bool first = true;
	GElf_Ehdr eh;

	*why = "not ELF";
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		return -EINVAL;
	*why = "not an executable or shared object";
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return -EINVAL;
	*why = "foreign byte order";
	if (eh.e_ident[EI_DATA] != (__BYTE_ORDER == __LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB))
		return -EINVAL;
	*why = "bad program headers";
	if (elf_getphdrnum(elf, &phnum) != 0 || phnum == 0 || phnum > MAX_PHDRS)
		return -EINVAL;
	*lo = 0;
	*hi = 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		*why = "bad program header";
		if (!gelf_getphdr(elf, (int)i, &ph))
			return -EINVAL;
		if (ph.p_type != PT_LOAD)
			continue;
		*why = "PT_LOAD outside the file";
		if (ph.p_offset > file_size || ph.p_filesz > file_size - ph.p_offset ||
		    ph.p_memsz > UINT64_MAX - ph.p_vaddr)
			return -EINVAL;
		*why = "too many PT_LOADs";
		if (o->nloads == MAX_LOADS)
			return -EINVAL;
		o->loads[o->nloads++] = (struct load){ph.p_offset, ph.p_filesz, ph.p_vaddr};
		/* libdwfl places the module by its first PT_LOAD the same way. */
		if (first)
			*lo = ph.p_vaddr & -ph.p_align;
		first = false;
		if (ph.p_vaddr + ph.p_memsz > *hi)
			*hi = ph.p_vaddr + ph.p_memsz;
	}
	*why = "no loadable segment";
	if (o->nloads == 0 || *hi <= *lo)
		return -EINVAL;

	*why = "bad section headers";
	if (elf_getshdrnum(elf, &shnum) != 0 || elf_getshdrstrndx(elf, &shstrndx) != 0)
		return -EINVAL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		size_t sym_size =
			eh.e_ident[EI_CLASS] == ELFCLASS64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
		const char *name;
		GElf_Shdr sh;

		*why = "bad section header";
		if (!gelf_getshdr(scn, &sh))
			return -EINVAL;
		if (sh.sh_type == SHT_NOBITS)
			continue;
		*why = "section outside the file";
		if (sh.sh_offset > file_size || sh.sh_size > file_size - sh.sh_offset)
			return -EINVAL;
		*why = "symbol table too large";
		if ((sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) &&
		    sh.sh_size / sym_size > MAX_SYMBOLS)
			return -EFBIG;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (sh.sh_flags & SHF_COMPRESSED) {
			unsigned char chdr[sizeof(Elf64_Chdr)];
			uint64_t size;

			*why = "bad compression header";
			if (pread(fd, chdr, sizeof(chdr), (off_t)sh.sh_offset) !=
			    (ssize_t)sizeof(chdr))
				return -EINVAL;
			if (eh.e_ident[EI_CLASS] == ELFCLASS64) {
				Elf64_Chdr c;

				memcpy(&c, chdr, sizeof(c));
				size = c.ch_size;
			} else {
				Elf32_Chdr c;

				memcpy(&c, chdr, sizeof(c));
				size = c.ch_size;
			}
			if (size > max_bytes - inflated)
				goto too_large;
			inflated += size;
		} else if (name && strncmp(name, ".zdebug", 7) == 0) {
			unsigned char z[12];
			uint64_t size;

			/* GNU's old format: "ZLIB" and the inflated size, big-endian. */
			*why = "bad .zdebug header";
			if (pread(fd, z, sizeof(z), (off_t)sh.sh_offset) != (ssize_t)sizeof(z) ||
			    memcmp(z, "ZLIB", 4) != 0)
				return -EINVAL;
			memcpy(&size, z + 4, sizeof(size));
			size = be64toh(size);
			if (size > max_bytes - inflated)
				goto too_large;
			inflated += size;
		} else if (name && strcmp(name, ".gnu_debugdata") == 0 &&
			   sh.sh_size > MAX_DEBUGDATA_BYTES) {
			*why = ".gnu_debugdata too large";
			return -EFBIG;
		}
		*why = "unterminated DWARF string section";
		if (is_dwarf_strings(name, sh.sh_flags) && !ends_in_nul(scn, fd, &sh, name))
			return -EINVAL;
		/*
		 * libdwfl checks a symbol's name offset against its string
		 * table's size but reads the name with strlen: a table whose
		 * last string is unterminated ran past its buffer (found by
		 * fuzz_symbolize).
		 */
		*why = "unterminated symbol string table";
		if ((sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) &&
		    !strings_end_in_nul(elf, fd, file_size, shstrndx, sh.sh_link))
			return -EINVAL;
	}
	return 0;
too_large:
	*why = "compressed sections would inflate too far";
	return -EFBIG;
}

/*
 * Makes o's libdwfl session: one module spanning the object's own link-time
 * addresses, its main file the validated Elf.  Consumes elf and fd.
 */
static int object_attach(struct hf_symbolizer *s, struct object *o, Elf *elf, int fd,
			 const char *name, uint64_t lo, uint64_t hi)
{
	struct pending p = {.elf = elf, .fd = fd, .name = name};
	Dwfl_Module *mod;
	Dwarf_Addr bias;
	Dwfl *dwfl;
	void **ud;
	int err = -EINVAL;

	dwfl = dwfl_begin(&s->callbacks);
	if (!dwfl) {
		err = -ENOMEM;
		goto cleanup;
	}
	dwfl_report_begin(dwfl);
	mod = dwfl_report_module(dwfl, name, lo, hi);
	if (!mod || dwfl_report_end(dwfl, NULL, NULL) != 0)
		goto cleanup;
	dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL);
	*ud = &p;
	if (!dwfl_module_getelf(mod, &bias)) {
		*ud = NULL;
		goto cleanup;
	}
	*ud = NULL;
	o->dwfl = dwfl;
	o->mod = mod;
	o->bias = bias;
	dwfl = NULL;
	err = 0;
cleanup:
	if (err)
		hf_log(HF_LOG_DEBUG, "symbolize: %s: libdwfl: %s", name, dwfl_errmsg(-1));
	if (dwfl)
		dwfl_end(dwfl);
	/* Not taken by find_elf_cb: still ours. */
	if (p.elf)
		elf_end(p.elf);
	if (p.fd >= 0)
		close(p.fd);
	return err;
}

static void ident_of(const struct stat *st, struct ident *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

static bool ident_eq(const struct ident *a, const struct ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* The live object an entry points at, or NULL if it was evicted. */
static struct object *slot_object(const struct hf_symbolizer *s, int32_t slot, uint64_t serial)
{
	struct object *o;

	if (slot < 0 || (size_t)slot >= s->nslots)
		return NULL;
	o = s->slots[slot];
	return o && o->serial == serial ? o : NULL;
}

static int32_t ident_lookup(struct hf_symbolizer *s, const struct ident *id)
{
	for (size_t i = 0; i < s->nidents; i++) {
		struct ident_entry *e = &s->idents[i];
		struct object *o = slot_object(s, e->slot, e->serial);

		if (o && ident_eq(&e->id, id)) {
			e->last_call = s->call;
			o->last_call = s->call;
			return e->slot;
		}
	}
	return SLOT_NONE;
}

static void ident_add(struct hf_symbolizer *s, const struct ident *id, int32_t slot)
{
	struct ident_entry *victim = &s->idents[0];

	for (size_t i = 0; i < s->nidents; i++) {
		struct ident_entry *e = &s->idents[i];

		if (!slot_object(s, e->slot, e->serial)) {
			victim = e;
			break;
		}
		if (e->last_call < victim->last_call)
			victim = e;
	}
	victim->id = *id;
	victim->slot = slot;
	victim->serial = s->slots[slot]->serial;
	victim->last_call = s->call;
}

/* Evicts the least recently used object not pinned by this call; false if none. */
static bool evict_one(struct hf_symbolizer *s)
{
	size_t victim = SIZE_MAX;

	for (size_t i = 0; i < s->nslots; i++) {
		struct object *o = s->slots[i];

		if (!o || o->last_call == s->call)
			continue;
		if (victim == SIZE_MAX || o->last_call < s->slots[victim]->last_call)
			victim = i;
	}
	if (victim == SIZE_MAX)
		return false;
	object_free(s->slots[victim]);
	s->slots[victim] = NULL;
	s->count--;
	s->stats.objects_evicted++;
	return true;
}

/* Stores o in a free slot, evicting or growing as needed; SLOT_NONE if out of memory. */
static int32_t slot_store(struct hf_symbolizer *s, struct object *o)
{
	struct object **grown;
	size_t n;

	if (s->count >= s->max_objects)
		evict_one(s);
	for (size_t i = 0; i < s->nslots; i++) {
		if (!s->slots[i]) {
			s->slots[i] = o;
			s->count++;
			return (int32_t)i;
		}
	}
	/* No free slot (the first object, or all pinned by this call): grow, the next call trims.
	 */
	n = s->nslots ? s->nslots * 2 : s->max_objects;
	if (n > INT32_MAX)
		return SLOT_NONE;
	grown = realloc(s->slots, n * sizeof(*grown));
	if (!grown)
		return SLOT_NONE;
	memset(grown + s->nslots, 0, (n - s->nslots) * sizeof(*grown));
	s->slots = grown;
	s->slots[s->nslots] = o;
	s->count++;
	return (int32_t)s->nslots++;
}

static int32_t find_trusted(struct hf_symbolizer *s, const struct object *o)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct object *c = s->slots[i];

		if (c && c->trusted && c->build_id_len == o->build_id_len &&
		    memcmp(c->build_id, o->build_id, o->build_id_len) == 0) {
			c->last_call = s->call;
			return (int32_t)i;
		}
	}
	return SLOT_NONE;
}

/*
 * Opens the file of mapping m: through the target's root when that path
 * still names the mapped inode (opened O_PATH first, so a FIFO or device
 * put there is never really opened), else the mapped inode itself through
 * map_files (which needs CAP_SYS_ADMIN).  Returns an fd or a negative errno.
 */
static int open_mapped(struct hf_symbolizer *s, const struct target *t, const struct map *m,
		       struct stat *st)
{
	static const char deleted[] = " (deleted)";
	size_t len = strlen(m->seen), dlen = sizeof(deleted) - 1;
	char path[PATH_MAX + 64];
	int fd, pfd, n;

	n = snprintf(path, sizeof(path), "/proc/%d/root%s", (int)t->pid, m->seen);
	if (n > 0 && (size_t)n < sizeof(path) &&
	    !(len > dlen && strcmp(m->seen + len - dlen, deleted) == 0)) {
		pfd = open(path, O_PATH | O_CLOEXEC);
		if (pfd >= 0) {
			if (fstat(pfd, st) == 0 && S_ISREG(st->st_mode) && st->st_ino == m->ino &&
			    major(st->st_dev) == m->dev_major &&
			    minor(st->st_dev) == m->dev_minor) {
				snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
				fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
				close(pfd);
				if (fd >= 0) {
					s->stats.opened_via_root++;
					return fd;
				}
			} else {
				close(pfd);
			}
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)t->pid,
		 m->start, m->end);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	s->stats.opened_via_map_files++;
	return fd;
}

/* The cached object for mapping m's file, SLOT_NONE if it cannot be read. */
static int32_t resolve(struct hf_symbolizer *s, const struct target *t, struct map *m)
{
	uint64_t lo = 0, hi = 0;
	struct object *o = NULL;
	const char *why = "";
	int32_t slot = SLOT_NONE;
	struct ident id;
	struct stat st;
	Elf *elf = NULL;
	int fd;

	/* Another mapping of the same inode resolved in this call already. */
	for (size_t i = 0; i < s->nmaps; i++) {
		const struct map *other = &s->maps[i];

		if (other->slot != SLOT_UNRESOLVED && other->ino == m->ino &&
		    other->dev_major == m->dev_major && other->dev_minor == m->dev_minor &&
		    strcmp(other->path, m->path) == 0)
			return other->slot;
	}
	fd = open_mapped(s, t, m, &st);
	if (fd < 0)
		return SLOT_NONE;
	s->stats.files_opened++;
	ident_of(&st, &id);
	slot = ident_lookup(s, &id);
	if (slot != SLOT_NONE)
		goto cleanup;

	o = calloc(1, sizeof(*o));
	if (!o)
		goto cleanup;
	o->trusted = t->same_world && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
	if ((uint64_t)st.st_size > s->max_file_bytes) {
		why = "file too large";
	} else {
		elf = elf_begin(fd, ELF_C_READ, NULL);
		if (!elf)
			why = "not ELF";
		else if (elf_validate(elf, fd, (uint64_t)st.st_size, s->max_file_bytes, o, &lo, &hi,
				      &why) == 0)
			why = NULL;
	}
	if (!why) {
		const void *bits;
		ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);

		if (len > 0 && len <= MAX_BUILD_ID) {
			memcpy(o->build_id, bits, (size_t)len);
			o->build_id_len = (size_t)len;
		}
		if (o->trusted && o->build_id_len) {
			slot = find_trusted(s, o);
			if (slot != SLOT_NONE) {
				s->stats.build_id_shares++;
				ident_add(s, &id, slot);
				goto cleanup;
			}
		}
		/* The session owns elf and fd from here, even when it fails. */
		if (object_attach(s, o, elf, fd, m->path, lo, hi) == 0)
			s->stats.objects_parsed++;
		elf = NULL;
		fd = -1;
	} else {
		o->nloads = 0;
		hf_log(HF_LOG_DEBUG, "symbolize: pid %d: %s: %s", (int)t->pid, m->path, why);
	}
	if (!o->dwfl)
		s->stats.objects_unusable++;
	o->serial = ++s->next_serial;
	o->last_call = s->call;
	slot = slot_store(s, o);
	if (slot == SLOT_NONE)
		goto cleanup;
	o = NULL;
	ident_add(s, &id, slot);
cleanup:
	object_free(o);
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
	return slot;
}

/* ELF virtual address of file offset fo, from the PT_LOAD holding it. */
static bool object_vaddr(const struct object *o, uint64_t fo, uint64_t *va)
{
	for (int i = 0; i < o->nloads; i++) {
		const struct load *l = &o->loads[i];

		if (fo >= l->offset && fo - l->offset < l->filesz) {
			*va = l->vaddr + (fo - l->offset);
			return true;
		}
	}
	return false;
}

/*
 * A function's name: the mangled linkage name of C++ or Rust, which carries
 * the scope and the symbol table agrees with, else the source name (a C
 * linkage name is only an asm alias, such as glibc's __GI___libc_malloc).
 */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name;

	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (!name || (strncmp(name, "_Z", 2) != 0 && strncmp(name, "_R", 2) != 0))
		name = dwarf_diename(die);
	return name && *name ? name : NULL;
}

/*
 * The innermost subprogram or inlined subroutine under cu whose ranges hold
 * pc.  Iterative with a depth cap and a visit budget, because the DWARF is
 * the target's: libdw's own scope walk recurses once per nesting level.
 */
static const char *dwarf_function(Dwarf_Die *cu, Dwarf_Addr pc)
{
	Dwarf_Die stack[MAX_DIE_DEPTH];
	bool holds_pc[MAX_DIE_DEPTH];
	const char *found = NULL;
	unsigned depth = 0, visits = 0;
	Dwarf_Die die, next, unit;
	Dwarf_Attribute attr;

	if (dwarf_child(cu, &die) != 0)
		return NULL;
	while (++visits <= MAX_DIE_VISITS) {
		bool descend = false, has_pc = false;
		const char *name;

		switch (dwarf_tag(&die)) {
		case DW_TAG_subprogram:
		case DW_TAG_inlined_subroutine:
			has_pc = dwarf_haspc(&die, pc) == 1;
			if (has_pc && (name = die_name(&die)) != NULL)
				found = name;
			descend = has_pc;
			break;
		case DW_TAG_lexical_block:
		case DW_TAG_try_block:
		case DW_TAG_catch_block:
			has_pc = dwarf_haspc(&die, pc) == 1;
			descend = has_pc;
			break;
		case DW_TAG_imported_unit:
			/* A partial unit (dwz) whose DIEs belong here: walk its children. */
			if (depth < MAX_DIE_DEPTH &&
			    dwarf_formref_die(dwarf_attr(&die, DW_AT_import, &attr), &unit) &&
			    dwarf_child(&unit, &next) == 0) {
				stack[depth] = die;
				holds_pc[depth] = false;
				depth++;
				die = next;
				continue;
			}
			break;
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_class_type:
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_interface_type:
			/* No ranges of their own, but functions may be defined inside. */
			descend = true;
			break;
		default:
			break;
		}
		if (descend && depth < MAX_DIE_DEPTH && dwarf_child(&die, &next) == 0) {
			stack[depth] = die;
			holds_pc[depth] = has_pc;
			depth++;
			die = next;
			continue;
		}
		/* A scope that holds pc and has no children to search is the innermost. */
		if (has_pc)
			return found;
		/* Next sibling; climbing out of a scope that held pc ends the search. */
		while (dwarf_siblingof(&die, &next) != 0) {
			if (depth == 0)
				return found;
			depth--;
			if (holds_pc[depth])
				return found;
			die = stack[depth];
		}
		die = next;
	}
	return found;
}

/*
 * True if name, from a symbol table of elf, ends inside that table's
 * strings.  elf_validate() checks the file's own tables, but libdwfl also
 * takes symbols from the ELF file compressed in .gnu_debugdata, which it
 * inflates itself: there a name could run past its table (found while
 * writing fuzz_symbolize), and libdwfl returns it without looking.
 */
static bool name_ends_in_its_table(Elf *elf, const char *name)
{
	uintptr_t at = (uintptr_t)name;
	Elf_Scn *scn = NULL;

	if (!elf)
		return false;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		Elf_Data *strs;
		GElf_Shdr sh;
		uintptr_t b;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		strs = elf_getdata(elf_getscn(elf, sh.sh_link), NULL);
		if (!strs || !strs->d_buf)
			continue;
		b = (uintptr_t)strs->d_buf;
		if (at >= b && at - b < strs->d_size &&
		    memchr(name, '\0', strs->d_size - (at - b)) != NULL)
			return true;
	}
	return false;
}

/* Function, file and line of ELF virtual address va in o, through the result cache. */
static void describe(struct hf_symbolizer *s, struct object *o, uint64_t va, struct hf_frame *f)
{
	uint64_t h = (va ^ (o->serial * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
	struct result *r = &s->results[(h >> 32) & (RESULT_CACHE_SIZE - 1)];
	Dwarf_Addr addr = va + o->bias, dwbias;
	Dwfl_Line *line;
	Dwarf_Die *cu;

	if (r->serial == o->serial && r->vaddr == va)
		goto done;
	memset(r, 0, sizeof(*r));
	cu = dwfl_module_addrdie(o->mod, addr, &dwbias);
	if (cu)
		r->function = dwarf_function(cu, addr - dwbias);
	line = dwfl_module_getsrc(o->mod, addr);
	if (line) {
		int lineno = 0;
		const char *src = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);

		if (src && *src && lineno > 0) {
			r->file = src;
			r->line = (uint32_t)lineno;
		}
	}
	if (!r->function) {
		GElf_Off off = 0;
		GElf_Sym sym = {0};
		Elf *from = NULL;
		const char *name =
			dwfl_module_addrinfo(o->mod, addr, &off, &sym, NULL, &from, NULL);
		int type = GELF_ST_TYPE(sym.st_info);

		/* Only a function whose extent holds the address, never the nearest one below. */
		if (name && *name && (type == STT_FUNC || type == STT_GNU_IFUNC) &&
		    sym.st_size > 0 && off < sym.st_size && name_ends_in_its_table(from, name))
			r->function = name;
	}
	r->serial = o->serial;
	r->vaddr = va;
done:
	f->function = r->function;
	f->file = r->file;
	f->line = r->line;
}

/* Parses one line of /proc/PID/maps in place. */
static int parse_maps_line(char *line, struct map *m)
{
	uint64_t start, end, pgoff, ino;
	unsigned major_, minor_;
	char perms[5];
	int n = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &start,
		   &end, perms, &pgoff, &major_, &minor_, &ino, &n) < 7 ||
	    n == 0 || start >= end)
		return -EINVAL;
	*m = (struct map){
		.start = start,
		.end = end,
		.pgoff = pgoff,
		.ino = ino,
		.dev_major = major_,
		.dev_minor = minor_,
		.path = line + n,
		.seen = line + n,
		.slot = SLOT_UNRESOLVED,
	};
	return 0;
}

static int read_maps(struct hf_symbolizer *s, pid_t pid)
{
	char path[64], *line, *nl;
	size_t len = 0;
	int fd, err = 0;

	s->nmaps = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return proc_errno(errno);
	for (;;) {
		ssize_t r;

		if (s->maps_cap - len < 4097) {
			size_t cap = s->maps_cap ? s->maps_cap * 2 : 65536;
			char *grown;

			if (cap > MAX_MAPS_BYTES) {
				err = -E2BIG;
				goto cleanup;
			}
			grown = realloc(s->maps_buf, cap);
			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			s->maps_buf = grown;
			s->maps_cap = cap;
		}
		r = read(fd, s->maps_buf + len, s->maps_cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = proc_errno(errno);
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	/* Only a process without an address space (exited, a zombie) has no mappings. */
	if (len == 0) {
		err = -ESRCH;
		goto cleanup;
	}
	s->maps_buf[len] = '\0';
	for (line = s->maps_buf; *line; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (s->nmaps == s->maps_alloc) {
			size_t n = s->maps_alloc ? s->maps_alloc * 2 : 256;
			struct map *grown = realloc(s->maps, n * sizeof(*grown));

			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			s->maps = grown;
			s->maps_alloc = n;
		}
		if (parse_maps_line(line, &s->maps[s->nmaps]) == 0)
			s->nmaps++;
	}
cleanup:
	close(fd);
	return err;
}

/* The target's root (stripped from maps paths) and whether it shares our world. */
static void read_target(const struct hf_symbolizer *s, pid_t pid, struct target *t)
{
	char path[64], ns[64];
	struct stat st;
	ssize_t n;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	n = readlink(path, t->root, sizeof(t->root) - 1);
	if (n > 1 && (size_t)n < sizeof(t->root) - 1) {
		t->root[n] = '\0';
		t->root_len = (size_t)n;
	} else {
		t->root[0] = '\0';
	}
	if (stat(path, &st) != 0 || st.st_dev != s->root_dev || st.st_ino != s->root_ino)
		return;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	n = readlink(path, ns, sizeof(ns) - 1);
	if (n <= 0 || (size_t)n >= sizeof(ns) - 1 || !s->mnt_ns[0])
		return;
	ns[n] = '\0';
	t->same_world = strcmp(ns, s->mnt_ns) == 0;
}

static struct map *map_find(struct hf_symbolizer *s, uint64_t addr)
{
	size_t lo = 0, hi = s->nmaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct map *m = &s->maps[mid];

		if (addr < m->start)
			hi = mid;
		else if (addr >= m->end)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

static void frame_fill(struct hf_symbolizer *s, const struct target *t, uint64_t address,
		       bool exact, struct hf_frame *f)
{
	/* A return address is looked up at the call before it, and reported as given. */
	uint64_t look = exact ? address : address - 1, adj = exact ? 0 : 1, fo, va;
	struct object *o;
	struct map *m;

	memset(f, 0, sizeof(*f));
	f->address = address;
	f->object = "";
	if (!exact && address == 0)
		return;
	m = map_find(s, look);
	if (!m)
		return;
	f->offset = look - m->start + adj;
	if (m->path[0] != '/' || m->ino == 0) {
		f->object = m->path;
		return;
	}
	f->object = m->seen;
	if (m->slot == SLOT_UNRESOLVED)
		m->slot = resolve(s, t, m);
	fo = look - m->start + m->pgoff;
	f->offset = fo + adj;
	if (m->slot < 0)
		return;
	o = s->slots[m->slot];
	if (!object_vaddr(o, fo, &va))
		return;
	f->offset = va + adj;
	if (o->dwfl)
		describe(s, o, va, f);
}

int hf_symbolize(struct hf_symbolizer *s, pid_t pid, const uint64_t *addrs, size_t n,
		 unsigned flags, struct hf_frame *out)
{
	struct target *t = NULL;
	int err;

	if (!s || pid <= 0 || (n && (!addrs || !out)) || (flags & ~(unsigned)HF_SYM_EXACT))
		return -EINVAL;
	s->call++;
	while (s->count > s->max_objects && evict_one(s))
		;
	err = read_maps(s, pid);
	if (err)
		return err;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	read_target(s, pid, t);
	for (size_t i = 0; i < s->nmaps && t->root_len; i++) {
		struct map *m = &s->maps[i];

		if (strncmp(m->path, t->root, t->root_len) == 0 && m->path[t->root_len] == '/')
			m->seen = m->path + t->root_len;
	}
	for (size_t i = 0; i < n; i++)
		frame_fill(s, t, addrs[i], flags & HF_SYM_EXACT, &out[i]);
	free(t);
	return 0;
}

struct hf_symbolizer *hf_symbolizer_new_opts(const struct hf_symbolizer_opts *opts)
{
	const char *dir = opts && opts->debug_dir ? opts->debug_dir : DEFAULT_DEBUG_DIR;
	struct hf_symbolizer *s;
	struct stat st;
	ssize_t n;

	/* libdwfl reads a path list: an absolute directory without ':' is one element. */
	if (dir[0] != '/' || strchr(dir, ':')) {
		errno = EINVAL;
		return NULL;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max_objects = opts && opts->max_objects ? opts->max_objects : DEFAULT_MAX_OBJECTS;
	s->max_file_bytes =
		opts && opts->max_file_bytes ? opts->max_file_bytes : DEFAULT_MAX_FILE_BYTES;
	s->debug_path = strdup(dir);
	s->nidents = (size_t)s->max_objects * IDENTS_PER_OBJECT;
	s->idents = calloc(s->nidents, sizeof(*s->idents));
	s->results = calloc(RESULT_CACHE_SIZE, sizeof(*s->results));
	if (!s->debug_path || !s->idents || !s->results) {
		hf_symbolizer_free(s);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < s->nidents; i++)
		s->idents[i].slot = SLOT_NONE;
	s->callbacks.find_elf = find_elf_cb;
	/* Build-id only: never a debug file named by the target's .gnu_debuglink. */
	s->callbacks.find_debuginfo = dwfl_build_id_find_debuginfo;
	s->callbacks.debuginfo_path = &s->debug_path;
	if (stat("/", &st) == 0) {
		s->root_dev = st.st_dev;
		s->root_ino = st.st_ino;
	}
	n = readlink("/proc/self/ns/mnt", s->mnt_ns, sizeof(s->mnt_ns) - 1);
	s->mnt_ns[n > 0 && (size_t)n < sizeof(s->mnt_ns) - 1 ? n : 0] = '\0';
	return s;
}

struct hf_symbolizer *hf_symbolizer_new(void)
{
	return hf_symbolizer_new_opts(NULL);
}

void hf_symbolizer_free(struct hf_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nslots; i++)
		object_free(s->slots[i]);
	free(s->slots);
	free(s->idents);
	free(s->results);
	free(s->maps);
	free(s->maps_buf);
	free(s->debug_path);
	free(s);
}

void hf_symbolizer_stats(const struct hf_symbolizer *s, struct hf_symbolizer_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	*out = s->stats;
	out->objects_cached = s->count;
}
