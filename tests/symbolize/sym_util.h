/* SPDX-License-Identifier: MIT */
/*
 * sym_util.h - what the symbolizer tests share: starting symtest_prog (also
 * inside a chroot) and reading the addresses it prints, and the independent
 * answers every frame is checked against: the mapping from /proc/PID/maps
 * read here, the ELF virtual address from `readelf -lW`'s PT_LOAD rows, and
 * function, file and line from `addr2line -f`.  None of it goes through
 * elfutils.
 */
#ifndef HF_TEST_SYM_UTIL_H
#define HF_TEST_SYM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "symbolize.h"

#define SYM_MAX_MAPS 64

struct sym_child {
	pid_t pid;
	int in; /* its stdin: closing it ends the program */
	FILE *out;
	uint64_t exe_site, end_site, lib_site, lib_inner_site, libc_site, malloc_addr;
	int nmaps;
	struct {
		char path[PATH_MAX];
		uint64_t addr;
		uint64_t size;
	} maps[SYM_MAX_MAPS];
};

/* The build tree's tests/symbolize (HF_BUILD_DIR is set by hf_add_test). */
static inline const char *sym_dir(void)
{
	static char dir[PATH_MAX];
	const char *build = getenv("HF_BUILD_DIR");

	if (!dir[0])
		snprintf(dir, sizeof(dir), "%s/tests/symbolize", build ? build : ".");
	return dir;
}

/*
 * Starts prog (chrooted into root first unless root is NULL; then prog is
 * the path inside) with args, and reads its lines up to "ready".
 */
static inline int sym_start(struct sym_child *c, const char *root, const char *prog,
			    char *const args[])
{
	char *argv[SYM_MAX_MAPS + 2], line[PATH_MAX + 128];
	int to[2], from[2], n = 0;

	memset(c, 0, sizeof(*c));
	argv[n++] = (char *)prog;
	for (int i = 0; args && args[i] && n < SYM_MAX_MAPS + 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		char *envp[] = {"PATH=/usr/bin:/bin", NULL};

		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		if (root && (chroot(root) != 0 || chdir("/") != 0))
			_exit(126);
		execve(prog, argv, envp);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	c->in = to[1];
	c->out = fdopen(from[0], "r");
	if (!c->out)
		return -ENOMEM;
	while (fgets(line, sizeof(line), c->out)) {
		char name[64], path[PATH_MAX];
		unsigned long long a, size;

		if (strncmp(line, "ready", 5) == 0)
			return 0;
		if (sscanf(line, "map %4095s %llx %llu", path, &a, &size) == 3 &&
		    c->nmaps < SYM_MAX_MAPS) {
			snprintf(c->maps[c->nmaps].path, PATH_MAX, "%s", path);
			c->maps[c->nmaps].addr = a;
			c->maps[c->nmaps].size = size;
			c->nmaps++;
		} else if (sscanf(line, "%63s %llx", name, &a) == 2) {
			if (!strcmp(name, "exe_site"))
				c->exe_site = a;
			else if (!strcmp(name, "end_site"))
				c->end_site = a;
			else if (!strcmp(name, "lib_site"))
				c->lib_site = a;
			else if (!strcmp(name, "lib_inner_site"))
				c->lib_inner_site = a;
			else if (!strcmp(name, "libc_site"))
				c->libc_site = a;
			else if (!strcmp(name, "malloc"))
				c->malloc_addr = a;
		}
	}
	return -EIO;
}

static inline void sym_stop(struct sym_child *c)
{
	if (c->pid > 0) {
		close(c->in);
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		fclose(c->out);
		c->pid = 0;
	}
}

/* The mapping of pid holding addr, from /proc/PID/maps: path and file offset. */
static inline bool sym_maps_lookup(pid_t pid, uint64_t addr, char *path, size_t len, uint64_t *fo)
{
	char name[64], line[PATH_MAX + 256];
	bool found = false;
	FILE *f;

	snprintf(name, sizeof(name), "/proc/%d/maps", (int)pid);
	f = fopen(name, "r");
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, ino;
		int n = 0, got;

		line[strcspn(line, "\n")] = '\0';
		got = sscanf(line, "%llx-%llx %*s %llx %*s %llu %n", &start, &end, &off, &ino, &n);
		if (got < 4)
			continue;
		if (addr >= start && addr < end) {
			snprintf(path, len, "%s", n ? line + n : "");
			*fo = addr - start + off;
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* vaddr of file offset fo from the PT_LOAD rows of `readelf -lW`; UINT64_MAX if none. */
static inline uint64_t sym_readelf_vaddr(const char *path, uint64_t fo)
{
	char cmd[2 * PATH_MAX], line[1024];
	uint64_t result = UINT64_MAX;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "readelf -lW '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p)) {
		unsigned long long off, va, pa, filesz, memsz;

		if (sscanf(line, " LOAD 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx", &off, &va, &pa,
			   &filesz, &memsz) != 5)
			continue;
		if (fo >= off && fo < off + filesz) {
			result = fo - off + va;
			break;
		}
	}
	if (p)
		pclose(p);
	return result;
}

struct sym_a2l {
	char function[512];       /* "" for addr2line's "??" */
	char file[PATH_MAX + 32]; /* "" for "??" */
	unsigned line;
};

/*
 * The same source file: equal, or addr2line's longer form of ours.  binutils
 * joins a relative DWARF 5 directory twice (glibc's comp_dir "./stdlib" and
 * its directory 0 "./stdlib" give "./stdlib/./stdlib/msort.c" for what libdw
 * and the DWARF mean by "./stdlib/msort.c").
 */
static inline bool sym_same_source(const char *ours, const char *a2l)
{
	size_t n, m;

	if (!strcmp(ours, a2l))
		return true;
	if (!strncmp(ours, "./", 2))
		ours += 2;
	n = strlen(ours);
	m = strlen(a2l);
	return n > 0 && m > n && a2l[m - n - 1] == '/' && !strcmp(a2l + m - n, ours);
}

/* `addr2line -f -e path vaddr`: what the frame for vaddr + 1 must say. */
static inline bool sym_addr2line(const char *path, uint64_t vaddr, struct sym_a2l *out)
{
	char cmd[2 * PATH_MAX], fn[512], loc[PATH_MAX + 32];
	bool ok = false;
	char *colon;
	FILE *p;

	memset(out, 0, sizeof(*out));
	snprintf(cmd, sizeof(cmd), "addr2line -f -e '%s' %#" PRIx64 " 2>/dev/null", path, vaddr);
	p = popen(cmd, "r");
	if (p && fgets(fn, sizeof(fn), p) && fgets(loc, sizeof(loc), p)) {
		fn[strcspn(fn, "\n")] = '\0';
		loc[strcspn(loc, "\n")] = '\0';
		/* " (discriminator N)" may follow the line number. */
		loc[strcspn(loc, " ")] = '\0';
		if (strcmp(fn, "??") != 0)
			snprintf(out->function, sizeof(out->function), "%s", fn);
		colon = strrchr(loc, ':');
		if (colon) {
			*colon = '\0';
			out->line = (unsigned)strtoul(colon + 1, NULL, 10);
			if (strcmp(loc, "??") != 0)
				snprintf(out->file, sizeof(out->file), "%s", loc);
		}
		ok = true;
	}
	if (p)
		pclose(p);
	return ok;
}

/* st_value and st_size of a symbol in `nm -S` (dynamic: nm -D); false if absent. */
static inline bool sym_nm(const char *path, const char *name, bool dynamic, uint64_t *value,
			  uint64_t *size)
{
	char cmd[2 * PATH_MAX], line[1024];
	bool found = false;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm -S %s --defined-only '%s' 2>/dev/null", dynamic ? "-D" : "",
		 path);
	p = popen(cmd, "r");
	while (p && !found && fgets(line, sizeof(line), p)) {
		unsigned long long v, s;
		char type[8], sym[512];

		/* Versioned dynamic symbols print as name@VERSION or name@@VERSION. */
		if (sscanf(line, "%llx %llx %7s %511s", &v, &s, type, sym) == 4 &&
		    (sym[strcspn(sym, "@")] = '\0', strcmp(sym, name) == 0)) {
			*value = v;
			*size = s;
			found = true;
		}
	}
	if (p)
		pclose(p);
	return found;
}

/* The build-id `readelf -n` prints, into hex; "" if none. */
static inline void sym_build_id(const char *path, char *hex, size_t len)
{
	char cmd[2 * PATH_MAX], line[1024];
	FILE *p;

	hex[0] = '\0';
	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p)) {
		char *b = strstr(line, "Build ID: ");

		if (b) {
			snprintf(hex, len, "%s", b + 10);
			hex[strcspn(hex, "\n ")] = '\0';
		}
	}
	if (p)
		pclose(p);
}

static inline int sym_run(const char *cmd)
{
	int status = system(cmd);

	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline void sym_rmtree(const char *dir)
{
	char cmd[2 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	sym_run(cmd);
}

/*
 * Where a return address must be: object as maps names the mapping of
 * address - 1 (or want_object, for a process under another root), offset
 * the ELF virtual address of the call + 1, by readelf on host_path (where
 * the test can read the file; NULL: maps's path).  Returns that virtual
 * address of the call, UINT64_MAX if it is unknown.
 */
static inline uint64_t sym_check_location(const char *what, pid_t pid, const char *host_path,
					  const char *want_object, uint64_t address,
					  const struct hf_frame *f)
{
	char path[PATH_MAX];
	uint64_t fo = 0, va;

	CHECK_MSG(sym_maps_lookup(pid, address - 1, path, sizeof(path), &fo), "%s: not mapped",
		  what);
	CHECK_EQ_U64(f->address, address);
	CHECK_MSG(!strcmp(f->object, want_object ? want_object : path), "%s: object %s, want %s",
		  what, f->object, want_object ? want_object : path);
	va = sym_readelf_vaddr(host_path ? host_path : path, fo);
	CHECK_MSG(va != UINT64_MAX && f->offset == va + 1,
		  "%s: offset %#" PRIx64 ", readelf says %#" PRIx64 " + 1", what, f->offset, va);
	return va;
}

/* Function, file and line as `addr2line -f -e host_path va` says; returns its answer. */
static inline struct sym_a2l sym_check_names(const char *what, const char *host_path, uint64_t va,
					     const struct hf_frame *f)
{
	struct sym_a2l a2l;

	CHECK_MSG(sym_addr2line(host_path, va, &a2l), "%s: addr2line failed", what);
	CHECK_MSG(a2l.function[0] ? f->function && !strcmp(f->function, a2l.function)
				  : f->function == NULL,
		  "%s: function %s, addr2line says %s", what, f->function ? f->function : "NULL",
		  a2l.function[0] ? a2l.function : "??");
	CHECK_MSG(a2l.file[0] ? f->file && sym_same_source(f->file, a2l.file) : f->file == NULL,
		  "%s: file %s, addr2line says %s", what, f->file ? f->file : "NULL",
		  a2l.file[0] ? a2l.file : "??");
	CHECK_MSG(f->line == a2l.line, "%s: line %u, addr2line says %u", what, f->line, a2l.line);
	return a2l;
}

static inline void sym_print(const char *what, const struct hf_frame *f)
{
	printf("%-16s %s+%#" PRIx64 " %s %s:%u\n", what, f->object, f->offset,
	       f->function ? f->function : "??", f->file ? f->file : "??", f->line);
}

/* Both of the above, for a process in our root; returns addr2line's answer. */
static inline struct sym_a2l sym_check_return_frame(const char *what, pid_t pid,
						    const char *want_object, uint64_t address,
						    const struct hf_frame *f)
{
	char path[PATH_MAX];
	uint64_t fo = 0, va = sym_check_location(what, pid, NULL, want_object, address, f);
	struct sym_a2l a2l;

	memset(&a2l, 0, sizeof(a2l));
	if (va != UINT64_MAX && sym_maps_lookup(pid, address - 1, path, sizeof(path), &fo))
		a2l = sym_check_names(what, path, va, f);
	sym_print(what, f);
	return a2l;
}

#endif /* HF_TEST_SYM_UTIL_H */
