// SPDX-License-Identifier: MIT
/*
 * probe_site.c - finds the ELF object that provides malloc to a process and
 * places an entry probe in each of its allocation functions.
 *
 * The provider is the first object in the dynamic linker's symbol search
 * order that defines malloc: the executable, then LD_PRELOAD objects (the
 * environment's, then /etc/ld.so.preload's), then DT_NEEDED objects breadth
 * first.  For a running process the names are matched against the files it
 * really has mapped (/proc/PID/maps) and those files are read through
 * /proc/PID/root, or /proc/PID/map_files when deleted or not found there, so
 * a process in a container is read from its own file system.
 */
#include "probe_site.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "elf_file.h"
#include "log.h"
#include "prologue.h"

#define MAX_OBJECTS    1024
#define MAX_NEEDED     256
#define CODE_WINDOW    96
#define LDD_TIMEOUT_MS 10000

static const char *const op_symbols[HF_OP_COUNT] = {
	[HF_OP_MALLOC] = "malloc",
	[HF_OP_CALLOC] = "calloc",
	[HF_OP_REALLOC] = "realloc",
	[HF_OP_REALLOCARRAY] = "reallocarray",
	[HF_OP_FREE] = "free",
	[HF_OP_CFREE] = "cfree",
	[HF_OP_POSIX_MEMALIGN] = "posix_memalign",
	[HF_OP_ALIGNED_ALLOC] = "aligned_alloc",
	[HF_OP_MEMALIGN] = "memalign",
	[HF_OP_VALLOC] = "valloc",
	[HF_OP_PVALLOC] = "pvalloc",
};

/* The argument registers each op's entry probe reads. */
static const unsigned op_args[HF_OP_COUNT] = {
	[HF_OP_MALLOC] = HF_ARG_RDI,
	[HF_OP_CALLOC] = HF_ARG_RDI | HF_ARG_RSI,
	[HF_OP_REALLOC] = HF_ARG_RDI | HF_ARG_RSI,
	[HF_OP_REALLOCARRAY] = HF_ARG_RDI | HF_ARG_RSI | HF_ARG_RDX,
	[HF_OP_FREE] = HF_ARG_RDI,
	[HF_OP_CFREE] = HF_ARG_RDI,
	[HF_OP_POSIX_MEMALIGN] = HF_ARG_RDI | HF_ARG_RSI | HF_ARG_RDX,
	[HF_OP_ALIGNED_ALLOC] = HF_ARG_RDI | HF_ARG_RSI,
	[HF_OP_MEMALIGN] = HF_ARG_RDI | HF_ARG_RSI,
	[HF_OP_VALLOC] = HF_ARG_RDI,
	[HF_OP_PVALLOC] = HF_ARG_RDI,
};

const char *hf_op_symbol(enum hf_op op)
{
	return (unsigned)op < HF_OP_COUNT ? op_symbols[op] : "unknown";
}

static bool defines(const struct hf_elf *e, const char *name, bool with_symtab)
{
	struct hf_elf_sym sym;

	return hf_elf_find_symbol(e, name, with_symtab, &sym) == 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static enum hf_allocator classify(const struct hf_elf *e, bool is_exe)
{
	if (defines(e, "ptm_version", is_exe))
		return HF_ALLOC_LIBPTM;
	if (defines(e, "__libc_malloc", is_exe) && (is_exe || !strcmp(e->soname, "libc.so.6")))
		return HF_ALLOC_GLIBC;
	if (defines(e, "mallctl", is_exe) || defines(e, "je_mallctl", is_exe) ||
	    defines(e, "je_malloc_usable_size", is_exe))
		return HF_ALLOC_JEMALLOC;
	if (defines(e, "tc_malloc", is_exe))
		return HF_ALLOC_TCMALLOC;
	if (defines(e, "mi_malloc", is_exe))
		return HF_ALLOC_MIMALLOC;
	return HF_ALLOC_UNKNOWN;
}

/* Finds op's symbol in e and decides where its probes go. */
static void place_op(const struct hf_elf *e, enum hf_op op, bool with_symtab,
		     struct hf_probe_site *site)
{
	const char *name = op_symbols[op];
	uint8_t code[CODE_WINDOW];
	struct hf_prologue pro;
	struct hf_elf_sym sym;
	uint64_t off, avail;
	long n;

	memset(site, 0, sizeof(*site));
	site->alias_of = -1;
	if (hf_elf_find_symbol(e, name, with_symtab, &sym) != 0)
		return;
	/* An IFUNC symbol's address is its resolver, which no call reaches. */
	if (sym.type != STT_FUNC) {
		hf_log(HF_LOG_DEBUG, "%s is not a plain function (type %d): not probed", name,
		       sym.type);
		return;
	}
	if (hf_elf_vaddr_to_offset(e, sym.value, &off, &avail) != 0) {
		hf_log(HF_LOG_DEBUG, "%s at %#llx lies in no loadable segment: not probed", name,
		       (unsigned long long)sym.value);
		return;
	}
	site->present = true;
	site->sym_offset = off;
	site->entry_offset = off;
	site->ret_offset = off;
	n = hf_elf_read(e, off, code, avail < sizeof(code) ? (size_t)avail : sizeof(code));
	if (n <= 0 || hf_prologue_choose(code, (size_t)n, sym.value, op_args[op], &pro) != 0) {
		snprintf(site->entry_insn, sizeof(site->entry_insn), "%s+0: (undecodable)", name);
		return;
	}
	site->entry_offset = off + pro.entry_delta;
	site->entry_emulated = pro.emulated;
	if (pro.stack_unchanged)
		site->ret_offset = site->entry_offset;
	snprintf(site->entry_insn, sizeof(site->entry_insn), "%s+%llu: %s", name,
		 (unsigned long long)pro.entry_delta, pro.insn);
}

/* Fills out from e, the provider; is_exe selects .symtab as a second source. */
static int fill_target(const struct hf_elf *e, bool is_exe, const char *path,
		       const char *target_path, struct hf_alloc_target *out, char *why,
		       size_t why_len)
{
	int op, prev;

	memset(out, 0, sizeof(*out));
	out->kind = classify(e, is_exe);
	out->static_in_exe = is_exe;
	snprintf(out->path, sizeof(out->path), "%s", path);
	snprintf(out->target_path, sizeof(out->target_path), "%s", target_path);
	hf_elf_build_id(e, out->build_id, sizeof(out->build_id));
	for (op = 0; op < HF_OP_COUNT; op++) {
		struct hf_probe_site *site = &out->ops[op];

		place_op(e, (enum hf_op)op, is_exe, site);
		for (prev = 0; site->present && prev < op; prev++) {
			if (out->ops[prev].present &&
			    out->ops[prev].sym_offset == site->sym_offset) {
				site->alias_of = prev;
				break;
			}
		}
		if (site->present)
			hf_log(HF_LOG_DEBUG, "%s: %s at offset %#llx (%s)%s%s", target_path,
			       site->entry_insn, (unsigned long long)site->entry_offset,
			       site->entry_emulated ? "emulated" : "single-stepped",
			       site->alias_of >= 0 ? ", alias of " : "",
			       site->alias_of >= 0 ? op_symbols[site->alias_of] : "");
	}
	if (!out->ops[HF_OP_MALLOC].present) {
		snprintf(why, why_len, "%s does not define a probe-able malloc function",
			 target_path);
		return -ENOENT;
	}
	return 0;
}

int hf_alloc_target_from_file(const char *path, struct hf_alloc_target *out, char *why,
			      size_t why_len)
{
	struct hf_elf e;
	int err;

	err = hf_elf_open(path, &e, why, why_len);
	if (err)
		return err;
	err = fill_target(&e, hf_elf_is_executable(&e), path, path, out, why, why_len);
	hf_elf_close(&e);
	return err;
}

/* One file mapped by the target, as its /proc/PID/maps names it. */
struct mapped {
	char target[HF_PATH_LEN]; /* path in the target's mount namespace */
	char host[HF_PATH_LEN];   /* where this process opens it */
	char soname[HF_ELF_NAME_LEN];
	bool probed; /* soname has been read */
	bool queued; /* already in the search order */
};

struct proc_scan {
	pid_t pid;
	char root[64]; /* "/proc/PID/root" */
	struct mapped *objs;
	int count;
};

static int read_maps(struct proc_scan *ps, char *why, size_t why_len)
{
	char path[64], line[HF_PATH_LEN + 128];
	FILE *f;
	int err = 0, i;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)ps->pid);
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		if (err == -ENOENT)
			err = -ESRCH;
		snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		char *name, *nl, range[64];
		unsigned long start, end;
		bool deleted = false;
		int pos = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &pos) < 2 || !pos)
			continue;
		name = line + pos;
		nl = strchr(name, '\n');
		if (nl)
			*nl = '\0';
		if (name[0] != '/')
			continue;
		if (strlen(name) > 10 && !strcmp(name + strlen(name) - 10, " (deleted)")) {
			name[strlen(name) - 10] = '\0';
			deleted = true;
		}
		for (i = 0; i < ps->count && strcmp(ps->objs[i].target, name); i++)
			;
		if (i < ps->count || ps->count == MAX_OBJECTS ||
		    strlen(name) >= sizeof(ps->objs[i].target))
			continue;
		memcpy(ps->objs[i].target, name, strlen(name) + 1);
		snprintf(range, sizeof(range), "%lx-%lx", start, end);
		/*
		 * A deleted file, or one whose name is not valid under the target's
		 * root (a chroot shows host paths in maps), is read through the
		 * mapping itself.  AT_EACCESS: a non-root heapfragd reaches
		 * /proc/PID/root by its capabilities, which access() would drop.
		 */
		if (deleted ||
		    snprintf(ps->objs[i].host, sizeof(ps->objs[i].host), "%s%s", ps->root, name) >=
			    (int)sizeof(ps->objs[i].host) ||
		    faccessat(AT_FDCWD, ps->objs[i].host, R_OK, AT_EACCESS) != 0)
			snprintf(ps->objs[i].host, sizeof(ps->objs[i].host),
				 "/proc/%d/map_files/%s", (int)ps->pid, range);
		ps->count++;
	}
	if (ferror(f)) {
		err = -EIO;
		snprintf(why, why_len, "cannot read %s", path);
	} else if (ps->count == 0) {
		err = -ENOENT;
		snprintf(why, why_len, "process %d maps no files (a kernel thread or a zombie)",
			 (int)ps->pid);
	}
	fclose(f);
	return err;
}

static const char *soname_of(struct mapped *m)
{
	struct hf_elf e;
	char why[128];

	if (!m->probed) {
		m->probed = true;
		if (hf_elf_open(m->host, &e, why, sizeof(why)) == 0) {
			snprintf(m->soname, sizeof(m->soname), "%s", e.soname);
			hf_elf_close(&e);
		}
	}
	return m->soname;
}

/* The mapped object a DT_NEEDED or bare LD_PRELOAD name loaded: by soname, then file name. */
static int match_name(struct proc_scan *ps, const char *name)
{
	int i;

	for (i = 0; i < ps->count; i++) {
		if (!strcmp(soname_of(&ps->objs[i]), name))
			return i;
	}
	for (i = 0; i < ps->count; i++) {
		if (!strcmp(base_name(ps->objs[i].target), name))
			return i;
	}
	return -1;
}

/*
 * Resolves symbolic links in path as the target sees it: each link is read
 * under root, and an absolute link starts again at the target's root, not ours.
 */
static int resolve_in_root(const char *root, const char *path, char *out, size_t out_len)
{
	char cur[PATH_MAX] = "", rest[PATH_MAX], full[PATH_MAX + 64], link[PATH_MAX];
	int links = 0;

	snprintf(rest, sizeof(rest), "%s", path);
	while (rest[0]) {
		char comp[NAME_MAX + 1], *p = rest;
		size_t n;
		ssize_t len;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, p, n);
		comp[n] = '\0';
		memmove(rest, p + n, strlen(p + n) + 1);
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *slash = strrchr(cur, '/');

			if (slash)
				*slash = '\0';
			continue;
		}
		if (strlen(cur) + n + 2 > sizeof(cur))
			return -ENAMETOOLONG;
		if (snprintf(full, sizeof(full), "%s%s/%s", root, cur, comp) >= (int)sizeof(full))
			return -ENAMETOOLONG;
		len = readlink(full, link, sizeof(link) - 1);
		if (len < 0) {
			strcat(cur, "/");
			strcat(cur, comp);
			continue;
		}
		if (++links > 40)
			return -ELOOP;
		link[len] = '\0';
		if (strlen(link) + strlen(rest) + 2 > sizeof(rest))
			return -ENAMETOOLONG;
		memmove(rest + len + 1, rest, strlen(rest) + 1);
		memcpy(rest, link, (size_t)len);
		rest[len] = '/';
		if (link[0] == '/')
			cur[0] = '\0';
	}
	snprintf(out, out_len, "%s", cur[0] ? cur : "/");
	return 0;
}

static int match_preload(struct proc_scan *ps, const char *entry)
{
	char resolved[HF_PATH_LEN], full[HF_PATH_LEN + 64];
	struct stat want, st;
	int i;

	if (!strchr(entry, '/'))
		return match_name(ps, entry);
	if (resolve_in_root(ps->root, entry, resolved, sizeof(resolved)) != 0)
		return -1;
	for (i = 0; i < ps->count; i++) {
		if (!strcmp(ps->objs[i].target, resolved))
			return i;
	}
	/* Names differ when maps shows host paths (a chroot): compare the files themselves. */
	snprintf(full, sizeof(full), "%s%s", ps->root, resolved);
	if (stat(full, &want) != 0)
		return -1;
	for (i = 0; i < ps->count; i++) {
		if (stat(ps->objs[i].host, &st) == 0 && st.st_dev == want.st_dev &&
		    st.st_ino == want.st_ino)
			return i;
	}
	return -1;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Reads fd to its end into a NUL-terminated malloc'ed buffer, keeping at most
 * limit bytes (a longer input is cut there, which none of our inputs should
 * reach); with timeout_ms >= 0 it gives up after that long (-ETIMEDOUT, with
 * what was read so far in *out).  Returns 0, -ETIMEDOUT or -ENOMEM.
 */
static int read_all(int fd, size_t limit, long timeout_ms, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1), *grown;
	struct timespec t0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long left = timeout_ms - ms_since(&t0);
		ssize_t r;

		if (timeout_ms >= 0 && (left <= 0 || poll(&pfd, 1, (int)left) == 0)) {
			err = -ETIMEDOUT;
			break;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			if (cap >= limit)
				break;
			grown = realloc(buf, cap * 2 + 1);
			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return err;
}

/* Reads a whole small /proc or /etc file; *len gets its size.  NULL if unreadable. */
static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (read_all(fd, 8u << 20, -1, &buf, len) != 0) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	return buf;
}

/* The dynamic linker splits LD_PRELOAD and /etc/ld.so.preload on spaces, tabs, newlines and colons.
 */
static void queue_preloads(struct proc_scan *ps, char *list, int *order, int *norder)
{
	char *save = NULL, *tok;
	int i;

	for (tok = strtok_r(list, " \t\n:", &save); tok; tok = strtok_r(NULL, " \t\n:", &save)) {
		i = match_preload(ps, tok);
		if (i >= 0 && !ps->objs[i].queued && *norder < MAX_OBJECTS) {
			ps->objs[i].queued = true;
			order[(*norder)++] = i;
		}
	}
}

static void queue_env_preloads(struct proc_scan *ps, int *order, int *norder)
{
	char path[96];
	size_t len, pos;
	char *env;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)ps->pid);
	env = slurp(path, &len);
	if (!env)
		return;
	for (pos = 0; pos < len; pos += strlen(env + pos) + 1) {
		if (!strncmp(env + pos, "LD_PRELOAD=", 11)) {
			queue_preloads(ps, env + pos + 11, order, norder);
			break;
		}
	}
	free(env);
	snprintf(path, sizeof(path), "%s/etc/ld.so.preload", ps->root);
	env = slurp(path, &len);
	if (!env)
		return;
	queue_preloads(ps, env, order, norder);
	free(env);
}

int hf_alloc_target_find(pid_t pid, struct hf_alloc_target *out, char *why, size_t why_len)
{
	char exe_link[64], exe[HF_PATH_LEN], (*needed)[HF_ELF_NAME_LEN] = NULL;
	char(*missing)[HF_ELF_NAME_LEN] = NULL;
	struct proc_scan ps = {.pid = pid};
	int *order = NULL, norder = 0, qi, i, k, nneeded, err;
	struct hf_elf e = {.fd = -1};
	ssize_t n;

	memset(out, 0, sizeof(*out));
	if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
		snprintf(why, why_len, "process %d does not exist", (int)pid);
		return -ESRCH;
	}
	snprintf(ps.root, sizeof(ps.root), "/proc/%d/root", (int)pid);
	ps.objs = calloc(MAX_OBJECTS, sizeof(*ps.objs));
	order = calloc(MAX_OBJECTS, sizeof(*order));
	needed = calloc(MAX_NEEDED, sizeof(*needed));
	missing = calloc(MAX_OBJECTS, sizeof(*missing));
	if (!ps.objs || !order || !needed || !missing) {
		snprintf(why, why_len, "out of memory");
		err = -ENOMEM;
		goto cleanup;
	}
	err = read_maps(&ps, why, why_len);
	if (err)
		goto cleanup;

	snprintf(exe_link, sizeof(exe_link), "/proc/%d/exe", (int)pid);
	n = readlink(exe_link, exe, sizeof(exe) - 1);
	if (n < 0) {
		err = errno == ENOENT ? -ESRCH : -errno;
		snprintf(why, why_len, "cannot read %s: %s", exe_link, strerror(errno));
		goto cleanup;
	}
	exe[n] = '\0';
	if (n > 10 && !strcmp(exe + n - 10, " (deleted)"))
		exe[n - 10] = '\0';
	for (i = 0; i < ps.count && strcmp(ps.objs[i].target, exe); i++)
		;
	if (i == ps.count) {
		err = -ENOENT;
		snprintf(why, why_len, "process %d does not map its executable %s", (int)pid, exe);
		goto cleanup;
	}
	ps.objs[i].queued = true;
	order[norder++] = i;
	queue_env_preloads(&ps, order, &norder);

	/* Breadth first, in load order: each object's DT_NEEDED joins the end of the queue. */
	for (qi = 0; qi < norder; qi++) {
		struct mapped *m;
		bool is_exe = qi == 0;

		/*
		 * A DT_NEEDED object that is not mapped: the dynamic linker has
		 * not loaded it yet (caught at exec).  Whatever comes after it in
		 * the order cannot be trusted to be the provider.
		 */
		if (order[qi] < 0) {
			err = -EAGAIN;
			snprintf(why, why_len,
				 "process %d has not loaded %s yet: its allocator is known once "
				 "the dynamic linker has run",
				 (int)pid, missing[qi]);
			goto cleanup;
		}
		m = &ps.objs[order[qi]];
		err = hf_elf_open(m->host, &e, why, why_len);
		if (err) {
			if (is_exe)
				goto cleanup;
			hf_log(HF_LOG_DEBUG, "skipping %s: %s", m->host, why);
			continue;
		}
		if (defines(&e, "malloc", is_exe)) {
			err = fill_target(&e, is_exe, m->host, m->target, out, why, why_len);
			goto cleanup;
		}
		nneeded = hf_elf_needed(&e, needed, MAX_NEEDED);
		for (k = 0; k < nneeded && k < MAX_NEEDED; k++) {
			i = strchr(needed[k], '/') ? match_preload(&ps, needed[k])
						   : match_name(&ps, needed[k]);
			if (norder == MAX_OBJECTS)
				break;
			if (i < 0) {
				snprintf(missing[norder], HF_ELF_NAME_LEN, "%s", needed[k]);
				order[norder++] = -1;
			} else if (!ps.objs[i].queued) {
				ps.objs[i].queued = true;
				order[norder++] = i;
			}
		}
		hf_elf_close(&e);
	}
	err = -ENOENT;
	snprintf(why, why_len,
		 "no object loaded by process %d defines malloc (a stripped static executable?)",
		 (int)pid);
cleanup:
	hf_elf_close(&e);
	free(missing);
	free(needed);
	free(order);
	free(ps.objs);
	return err;
}

/* Finds name in the PATH of envp (or of this process), as execvp would. */
static int find_in_path(const char *name, char *const envp[], char *out, size_t out_len)
{
	const char *path = NULL;
	char *copy, *save = NULL, *dir;
	int i, err = -ENOENT;

	for (i = 0; envp && envp[i]; i++) {
		if (!strncmp(envp[i], "PATH=", 5))
			path = envp[i] + 5;
	}
	if (!path)
		path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, out_len, "%s/%s", dir, name);
		if (access(out, X_OK) == 0) {
			err = 0;
			break;
		}
	}
	free(copy);
	return err;
}

/* Runs the dynamic linker in trace mode; its standard output lands in *text. */
static int run_ldd(const char *interp, const char *exe, char *const envp[], char **text, char *why,
		   size_t why_len)
{
	size_t nenv = 0, i, k = 0, n;
	char **env = NULL, *buf = NULL;
	int pipefd[2] = {-1, -1}, status, err = 0;
	pid_t child = -1;

	while (envp && envp[nenv])
		nenv++;
	env = calloc(nenv + 2, sizeof(*env));
	if (!env) {
		err = -ENOMEM;
		snprintf(why, why_len, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < nenv; i++) {
		if (strncmp(envp[i], "LD_TRACE_LOADED_OBJECTS=", 24))
			env[k++] = envp[i];
	}
	env[k++] = "LD_TRACE_LOADED_OBJECTS=1";
	env[k] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		err = -errno;
		snprintf(why, why_len, "pipe: %s", strerror(errno));
		goto cleanup;
	}
	child = fork();
	if (child < 0) {
		err = -errno;
		snprintf(why, why_len, "fork: %s", strerror(errno));
		goto cleanup;
	}
	if (child == 0) {
		char *argv[] = {(char *)interp, (char *)exe, NULL};
		int devnull = open("/dev/null", O_RDWR);

		dup2(pipefd[1], STDOUT_FILENO);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		execve(interp, argv, env);
		_exit(127);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	err = read_all(pipefd[0], 1u << 20, LDD_TIMEOUT_MS, &buf, &n);
	if (err == -ETIMEDOUT) {
		snprintf(why, why_len, "%s %s did not finish listing its objects", interp, exe);
		kill(child, SIGKILL);
	} else if (err) {
		snprintf(why, why_len, "out of memory");
		kill(child, SIGKILL);
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		err = -ENOEXEC;
		snprintf(why, why_len, "%s could not load %s (status %d)", interp, exe,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
cleanup:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(env);
	if (err) {
		free(buf);
		buf = NULL;
	}
	*text = buf;
	return err;
}

/*
 * One line of the trace: "name => /path (0x...)", "/path (0x...)", or
 * "linux-vdso.so.1 (0x...)" and "name => not found", which name no file.
 */
static bool ldd_line_path(char *line, char **path)
{
	char *p = line, *arrow, *paren;

	while (*p == ' ' || *p == '\t')
		p++;
	arrow = strstr(p, " => ");
	if (arrow)
		p = arrow + 4;
	if (*p != '/')
		return false;
	paren = strstr(p, " (0x");
	if (paren)
		*paren = '\0';
	*path = p;
	return true;
}

int hf_alloc_target_for_command(const char *exe_path, char *const envp[],
				struct hf_alloc_target *out, char *why, size_t why_len)
{
	char exe[HF_PATH_LEN], interp[HF_PATH_LEN], *text = NULL, *save = NULL, *line;
	struct hf_elf e = {.fd = -1};
	int err;

	memset(out, 0, sizeof(*out));
	if (strchr(exe_path, '/'))
		snprintf(exe, sizeof(exe), "%s", exe_path);
	else if (find_in_path(exe_path, envp, exe, sizeof(exe)) != 0) {
		snprintf(why, why_len, "%s: command not found", exe_path);
		return -ENOENT;
	}
	err = hf_elf_open(exe, &e, why, why_len);
	if (err)
		return err;
	/* The executable comes first in the search order, and is all a static program has. */
	if (defines(&e, "malloc", true)) {
		err = fill_target(&e, true, exe, exe, out, why, why_len);
		goto cleanup;
	}
	if (!e.has_interp) {
		err = -ENOENT;
		snprintf(why, why_len, "%s is statically linked and defines no malloc (stripped?)",
			 exe);
		goto cleanup;
	}
	if (!e.interp[0]) {
		err = -ENOEXEC;
		snprintf(why, why_len, "%s names no readable dynamic linker", exe);
		goto cleanup;
	}
	/*
	 * Only glibc's dynamic linker lists objects without running the program;
	 * others (musl's) would start the command before heapfragd is attached.
	 */
	if (strncmp(base_name(e.interp), "ld-linux", 8) != 0) {
		err = -ENOTSUP;
		snprintf(why, why_len,
			 "%s uses the dynamic linker %s, which cannot list objects without "
			 "running the program",
			 exe, e.interp);
		goto cleanup;
	}
	snprintf(interp, sizeof(interp), "%s", e.interp);
	hf_elf_close(&e);
	err = run_ldd(interp, exe, envp, &text, why, why_len);
	if (err)
		goto cleanup;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *path;

		if (!ldd_line_path(line, &path))
			continue;
		if (hf_elf_open(path, &e, why, why_len) != 0)
			continue;
		if (defines(&e, "malloc", false)) {
			err = fill_target(&e, false, path, path, out, why, why_len);
			goto cleanup;
		}
		hf_elf_close(&e);
	}
	err = -ENOENT;
	snprintf(why, why_len, "no object %s loads defines malloc", exe);
cleanup:
	hf_elf_close(&e);
	free(text);
	return err;
}
