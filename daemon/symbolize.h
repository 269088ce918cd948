/* SPDX-License-Identifier: MIT */
/*
 * symbolize.h - turns the return addresses of a stack captured in another
 * process into frames: the file mapped there as the process names it, the
 * address in that file's own ELF address space, and the function, source file
 * and line when the file or its separate debug file (found by build-id) says.
 *
 * Allocation sites are only useful with names, and the names must be right or
 * absent: a frame gets a function only from DWARF that covers the address or
 * from a symbol whose [value, value + size) holds it, never from the nearest
 * symbol below it.  The target's files are untrusted input (a container may
 * put any bytes there): they are read through its own root, checked to be the
 * very inode it mapped, validated and bounded before elfutils parses them, and
 * a file that fails in any way still gives its object and offset.
 *
 * Each object is parsed once and cached.  Files that the host trusts (in our
 * own root and mount namespace, owned by root, writable by no one else) are
 * shared by build-id, so the same libc in a hundred host processes is parsed
 * once; any other file is keyed by its identity (device, inode, size, times),
 * so a container that forges a build-id can only mislabel its own frames.
 * The cache holds at most max_objects objects, evicting the least recently
 * used, except that objects used by the call in progress are never evicted
 * (one call over more distinct objects than that holds all of them until the
 * next call trims the cache).
 *
 * Thread-safety: a symbolizer is used from one thread at a time; separate
 * symbolizers may be used from separate threads.
 */
#ifndef HF_SYMBOLIZE_H
#define HF_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * One symbolised address.  The strings belong to the symbolizer and stay
 * valid until the next hf_symbolize() on it or hf_symbolizer_free(); copy
 * what must live longer.
 */
struct hf_frame {
	uint64_t address; /* as given */
	/*
	 * The mapping holding the address (for a return address, the call
	 * before it): a file's path as the process sees it, under its own
	 * root (a chrooted process's "/bin/app", not the host's
	 * "/srv/jail/bin/app"), with the kernel's " (deleted)" suffix when
	 * the file was removed or replaced since it was mapped; a pseudo
	 * mapping's name as maps prints it ("[vdso]", "[stack]",
	 * "[anon:NAME]"); "" for an anonymous mapping or no mapping at all.
	 * Never NULL.
	 */
	const char *object;
	/*
	 * For an ELF file: address's ELF virtual address in that file, the
	 * link-time address that `addr2line -e FILE`, `nm` and `objdump` use,
	 * for PIE executables and shared libraries alike (it equals the file
	 * offset only where a segment's p_vaddr equals its p_offset).  For a
	 * file that is not usable ELF, or an address outside its PT_LOAD
	 * segments: the file offset.  For a pseudo or anonymous mapping:
	 * address - mapping start.  0 when the address is in no mapping.
	 */
	uint64_t offset;
	/*
	 * The innermost function holding the address, an inlined one included,
	 * from DWARF (its source name; for C++ and Rust its mangled linkage
	 * name), else from .symtab or .dynsym when a symbol's extent holds it.
	 * NULL when unknown.
	 */
	const char *function;
	const char *file; /* source file as the line table records it, NULL when unknown */
	uint32_t line;    /* 0 when unknown */
};

enum hf_symbolize_flags {
	/*
	 * The addresses are exact instruction addresses, looked up as given.
	 * Without it every address is a return address (the first frame of a
	 * captured user stack included): function and line are those of
	 * address - 1, the call, so a call that ends a function (to a
	 * noreturn function) is not credited to the next one.
	 */
	HF_SYM_EXACT = 1 << 0,
};

struct hf_symbolizer_opts {
	unsigned max_objects;    /* parsed objects kept between calls; 0: 128 */
	uint64_t max_file_bytes; /* larger target files, or files whose sections would
				    decompress to more, are not parsed; 0: 1 GiB */
	const char *debug_dir;   /* separate debug files by build-id under
				    DIR/.build-id/xx/yyyy.debug; NULL: /usr/lib/debug */
};

struct hf_symbolizer_stats {
	uint64_t files_opened;         /* distinct files opened, once per call each */
	uint64_t opened_via_root;      /* ...through /proc/PID/root/PATH */
	uint64_t opened_via_map_files; /* ...through /proc/PID/map_files (PATH no longer
					  names the mapped file) */
	uint64_t objects_parsed;       /* files validated and handed to elfutils */
	uint64_t build_id_shares;      /* files served by an object parsed from another file */
	uint64_t objects_unusable;     /* files that are not usable ELF (object + offset only) */
	uint64_t objects_evicted;
	uint64_t objects_cached; /* now */
};

struct hf_symbolizer;

/*
 * With the defaults, or opts (NULL and zero fields: the defaults).  NULL with
 * errno ENOMEM, or EINVAL for a debug_dir that is not absolute or holds ':'.
 * Each cached object keeps its file open: up to max_objects descriptors.
 */
struct hf_symbolizer *hf_symbolizer_new(void);
struct hf_symbolizer *hf_symbolizer_new_opts(const struct hf_symbolizer_opts *opts);

/* Frees it and everything it cached; NULL is fine. */
void hf_symbolizer_free(struct hf_symbolizer *s);

/*
 * Fills out[0..n) for addrs[0..n) of process pid (flags: enum
 * hf_symbolize_flags).  Reads /proc/PID/maps once per call and opens each
 * file an address falls in once per call (a cached object is then found by
 * the file's identity).  Reading another user's process takes ptrace read
 * access (root or CAP_SYS_PTRACE); a file whose path no longer names the
 * mapped inode is read through map_files, which takes CAP_SYS_ADMIN.
 * Returns 0 (a frame that cannot be symbolised is still 0, with what is
 * known), -ESRCH if the process is gone (or a zombie), -EACCES if its maps
 * may not be read, -E2BIG for a maps file over 32 MiB, -EINVAL for bad
 * arguments, -ENOMEM.  The caller owns process identity: if pid may have
 * been reused since the addresses were captured, check its start time around
 * the call.
 */
int hf_symbolize(struct hf_symbolizer *s, pid_t pid, const uint64_t *addrs, size_t n,
		 unsigned flags, struct hf_frame *out);

void hf_symbolizer_stats(const struct hf_symbolizer *s, struct hf_symbolizer_stats *out);

#endif /* HF_SYMBOLIZE_H */
