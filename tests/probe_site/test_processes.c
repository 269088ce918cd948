// SPDX-License-Identifier: MIT
/*
 * The provider of malloc for real processes: sleep on glibc, python3 with
 * each LD_PRELOAD allocator, Debian's redis-server (jemalloc through
 * DT_NEEDED), a static glibc program, a program with its own malloc, one whose
 * executable was deleted, one in a chroot, one we may not read; and the same answers for programs
 * not yet started. Kind, paths, build-id (readelf -n) and offsets (nm + readelf -l) are checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <grp.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "free_port.h"
#include "probe_site.h"
#include "ps_util.h"

#define LIBDIR "/usr/lib/x86_64-linux-gnu"
#define PYTHON "/usr/bin/python3"

extern char **environ;

static char build_dir[PATH_MAX];

static pid_t spawn(char *const argv[], char *const envp[], int *out)
{
	int fds[2], devnull;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		dup2(fds[1], STDOUT_FILENO);
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDERR_FILENO);
		close(fds[0]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(fds[1]);
	*out = fds[0];
	return pid;
}

/* Reads the child's output until word appears; false after ms milliseconds. */
static bool wait_for(int fd, const char *word, int ms)
{
	char buf[8192];
	size_t n = 0;

	while (ms > 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, 100) == 1) {
			r = read(fd, buf + n, sizeof(buf) - 1 - n);
			if (r <= 0)
				return false;
			n += (size_t)r;
			buf[n] = '\0';
			if (strstr(buf, word))
				return true;
			if (n > sizeof(buf) / 2) {
				memmove(buf, buf + n / 2, n - n / 2 + 1);
				n -= n / 2;
			}
		}
		ms -= 100;
	}
	return false;
}

/*
 * Waits until the process maps files matching both needles at once (the new
 * program and its library: right after fork the child still maps ours).
 */
static bool wait_mapped(pid_t pid, const char *needle, const char *needle2, int ms)
{
	char path[64], line[1024];

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	for (; ms > 0; ms -= 50) {
		FILE *f = fopen(path, "r");
		bool found = false, found2 = false;

		while (f && fgets(line, sizeof(line), f)) {
			found |= strstr(line, needle) != NULL;
			found2 |= strstr(line, needle2) != NULL;
		}
		if (f)
			fclose(f);
		if (found && found2)
			return true;
		usleep(50000);
	}
	return false;
}

static void stop(pid_t pid, int fd)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (fd >= 0)
		close(fd);
}

/*
 * What every answer must satisfy: kind, the file as the target names it, the
 * host path it was read from, the build-id, and malloc's and free's offsets
 * computed independently from nm and readelf on host_file.
 */
static void check_target(const char *what, const struct hf_alloc_target *t, enum hf_allocator kind,
			 const char *want_target, bool static_exe, const char *host_file)
{
	char want_id[64], real[PATH_MAX];
	const char *syms[] = {"malloc", "free"};
	int i;

	CHECK_MSG(t->kind == kind, "%s: kind %d, want %d", what, t->kind, kind);
	CHECK_MSG(t->static_in_exe == static_exe, "%s: static_in_exe %d", what, t->static_in_exe);
	CHECK(realpath(want_target, real) != NULL);
	CHECK_MSG(!strcmp(t->target_path, real), "%s: target_path %s, want %s", what,
		  t->target_path, real);
	ps_readelf_build_id(host_file, want_id, sizeof(want_id));
	CHECK_MSG(want_id[0] && !strcmp(t->build_id, want_id), "%s: build-id %s vs readelf %s",
		  what, t->build_id, want_id);
	for (i = 0; i < 2; i++) {
		const struct hf_probe_site *s = &t->ops[i == 0 ? HF_OP_MALLOC : HF_OP_FREE];
		uint64_t va = ps_nm_address(host_file, syms[i], !static_exe);

		if (!va)
			va = ps_nm_address(host_file, syms[i], static_exe);
		CHECK_MSG(s->present, "%s: %s present", what, syms[i]);
		CHECK_MSG(s->sym_offset == ps_readelf_offset(host_file, va),
			  "%s: %s at %#" PRIx64 ", nm+readelf say %#" PRIx64, what, syms[i],
			  s->sym_offset, ps_readelf_offset(host_file, va));
		CHECK(s->entry_offset >= s->sym_offset && s->entry_offset < s->sym_offset + 64);
	}
	printf("%-34s %-9s %s (malloc: %s; free: %s)\n", what,
	       t->kind == HF_ALLOC_GLIBC      ? "glibc"
	       : t->kind == HF_ALLOC_JEMALLOC ? "jemalloc"
	       : t->kind == HF_ALLOC_TCMALLOC ? "tcmalloc"
	       : t->kind == HF_ALLOC_MIMALLOC ? "mimalloc"
	       : t->kind == HF_ALLOC_LIBPTM   ? "libptm"
					      : "unknown",
	       t->path, t->ops[HF_OP_MALLOC].entry_insn, t->ops[HF_OP_FREE].entry_insn);
}

static void check_host_path(const char *what, pid_t pid, const struct hf_alloc_target *t)
{
	char want[HF_PATH_LEN + 64];

	snprintf(want, sizeof(want), "/proc/%d/root%s", (int)pid, t->target_path);
	CHECK_MSG(!strcmp(t->path, want), "%s: path %s, want %s", what, t->path, want);
}

static void test_sleep_on_glibc(void)
{
	char *argv[] = {"/bin/sleep", "60", NULL};
	struct hf_alloc_target t;
	char why[256];
	int fd = -1;
	pid_t pid = spawn(argv, environ, &fd);

	CHECK(wait_mapped(pid, "/usr/bin/sleep", "libc.so.6", 5000));
	CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "sleep: %s", why);
	check_target("sleep", &t, HF_ALLOC_GLIBC, LIBDIR "/libc.so.6", false, LIBDIR "/libc.so.6");
	check_host_path("sleep", pid, &t);
	CHECK_EQ_U64(t.ops[HF_OP_FREE].entry_offset, t.ops[HF_OP_FREE].sym_offset + 3);
	stop(pid, fd);
}

static void test_python_preloads(void)
{
	static const struct {
		const char *preload, *file;
		enum hf_allocator kind;
	} cases[] = {
		{LIBDIR "/libjemalloc.so.2", LIBDIR "/libjemalloc.so.2", HF_ALLOC_JEMALLOC},
		{"libjemalloc.so.2", LIBDIR "/libjemalloc.so.2", HF_ALLOC_JEMALLOC},
		{LIBDIR "/libtcmalloc_minimal.so.4", LIBDIR "/libtcmalloc_minimal.so.4",
		 HF_ALLOC_TCMALLOC},
		{LIBDIR "/libmimalloc.so.2.0", LIBDIR "/libmimalloc.so.2.0", HF_ALLOC_MIMALLOC},
		{LIBDIR "/libmimalloc.so.2", LIBDIR "/libmimalloc.so.2.0", HF_ALLOC_MIMALLOC},
	};
	char *argv[] = {PYTHON, "-c", "import time; print('ready', flush=True); time.sleep(60)",
			NULL};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char preload[HF_PATH_LEN + 16], what[128], why[256];
		char *envp[] = {preload, "PATH=/usr/bin:/bin", NULL};
		struct hf_alloc_target t, cmd;
		int fd = -1;
		pid_t pid;

		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", cases[i].preload);
		snprintf(what, sizeof(what), "python3 LD_PRELOAD=%s",
			 strrchr(cases[i].preload, '/') ? strrchr(cases[i].preload, '/') + 1
							: cases[i].preload);
		pid = spawn(argv, envp, &fd);
		CHECK_MSG(wait_for(fd, "ready", 10000), "%s did not start", what);
		CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "%s: %s", what,
			  why);
		check_target(what, &t, cases[i].kind, cases[i].file, false, cases[i].file);
		check_host_path(what, pid, &t);
		stop(pid, fd);

		/* Before exec: the dynamic linker's own trace must agree. */
		CHECK_MSG(hf_alloc_target_for_command(PYTHON, envp, &cmd, why, sizeof(why)) == 0,
			  "%s before exec: %s", what, why);
		CHECK(cmd.kind == cases[i].kind);
		CHECK_STR_EQ(cmd.build_id, t.build_id);
		CHECK_EQ_U64(cmd.ops[HF_OP_MALLOC].entry_offset, t.ops[HF_OP_MALLOC].entry_offset);
	}
}

/* Our own allocator, once the allocator work has built it: recognised by ptm_version. */
static void test_libptm_when_built(void)
{
	char lib[PATH_MAX], preload[PATH_MAX + 16], why[256];
	char *argv[] = {PYTHON, "-c", "import time; print('ready', flush=True); time.sleep(60)",
			NULL};
	char *envp[] = {preload, NULL};
	struct hf_alloc_target t;
	int fd = -1;
	pid_t pid;

	if (snprintf(lib, sizeof(lib), "%s/lib/libptm.so", build_dir) >= (int)sizeof(lib) ||
	    access(lib, R_OK) != 0) {
		printf("libptm: %s is not built yet; its case runs once it is\n", lib);
		return;
	}
	CHECK_MSG(hf_alloc_target_from_file(lib, &t, why, sizeof(why)) == 0, "libptm: %s", why);
	CHECK(t.kind == HF_ALLOC_LIBPTM);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	pid = spawn(argv, envp, &fd);
	CHECK_MSG(wait_for(fd, "ready", 10000), "python3 on libptm did not start");
	CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "libptm: %s", why);
	check_target("python3 LD_PRELOAD=libptm.so", &t, HF_ALLOC_LIBPTM, lib, false, lib);
	stop(pid, fd);
}

static void test_redis_resolves_jemalloc(void)
{
	char port[16], why[256];
	char *argv[] = {"/usr/bin/redis-server",
			"--port",
			port,
			"--bind",
			"127.0.0.1",
			"--save",
			"",
			"--appendonly",
			"no",
			"--daemonize",
			"no",
			NULL};
	struct hf_alloc_target t;
	int fd = -1;
	pid_t pid;

	if (access(argv[0], X_OK) != 0)
		HF_SKIP("redis-server is not installed");
	snprintf(port, sizeof(port), "%d", free_loopback_port());
	pid = spawn(argv, environ, &fd);
	CHECK_MSG(wait_for(fd, "Ready to accept connections", 15000), "redis-server did not start");
	CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "redis: %s", why);
	check_target("redis-server", &t, HF_ALLOC_JEMALLOC, LIBDIR "/libjemalloc.so.2", false,
		     LIBDIR "/libjemalloc.so.2");
	check_host_path("redis-server", pid, &t);
	stop(pid, fd);

	CHECK(hf_alloc_target_for_command("redis-server", environ, &t, why, sizeof(why)) == 0);
	CHECK(t.kind == HF_ALLOC_JEMALLOC);
}

static void test_own_executables(void)
{
	static const struct {
		const char *name;
		enum hf_allocator kind;
	} progs[] = {
		{"probe_site_static_prog", HF_ALLOC_GLIBC},
		{"probe_site_own_malloc_prog", HF_ALLOC_UNKNOWN},
	};
	size_t i;

	for (i = 0; i < 2; i++) {
		char exe[PATH_MAX], why[256];
		char *argv[] = {exe, NULL};
		struct hf_alloc_target t, cmd;
		int fd = -1;
		pid_t pid;

		if (snprintf(exe, sizeof(exe), "%s/tests/%s", build_dir, progs[i].name) >=
		    (int)sizeof(exe))
			continue;
		pid = spawn(argv, environ, &fd);
		CHECK_MSG(wait_for(fd, "ready", 5000), "%s did not start", exe);
		CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "%s: %s", exe, why);
		check_target(progs[i].name, &t, progs[i].kind, exe, true, exe);
		check_host_path(progs[i].name, pid, &t);
		stop(pid, fd);

		CHECK_MSG(hf_alloc_target_for_command(exe, environ, &cmd, why, sizeof(why)) == 0,
			  "%s before exec: %s", exe, why);
		CHECK(cmd.kind == progs[i].kind && cmd.static_in_exe);
		CHECK_EQ_U64(cmd.ops[HF_OP_MALLOC].sym_offset, t.ops[HF_OP_MALLOC].sym_offset);
		if (i == 1) {
			/* The program defines only malloc, free, calloc and realloc. */
			CHECK(t.ops[HF_OP_CALLOC].present && t.ops[HF_OP_REALLOC].present);
			CHECK(!t.ops[HF_OP_POSIX_MEMALIGN].present && !t.ops[HF_OP_VALLOC].present);
		}
	}
}

/* A deleted executable is still mapped: it is read through /proc/PID/map_files. */
static void test_deleted_executable(void)
{
	char src[PATH_MAX], dst[] = "/tmp/hf-probe-site-deleted-XXXXXX", why[256];
	char *argv[] = {dst, NULL};
	struct hf_alloc_target t;
	char buf[65536];
	int in, out, fd = -1;
	ssize_t n;
	pid_t pid;

	if (snprintf(src, sizeof(src), "%s/tests/probe_site_own_malloc_prog", build_dir) >=
	    (int)sizeof(src))
		return;
	in = open(src, O_RDONLY);
	out = mkstemp(dst);
	CHECK(in >= 0 && out >= 0);
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		CHECK(write(out, buf, (size_t)n) == n);
	if (in >= 0)
		close(in);
	if (out >= 0) {
		fchmod(out, 0700);
		close(out);
	}
	pid = spawn(argv, environ, &fd);
	CHECK(wait_for(fd, "ready", 5000));
	unlink(dst);
	CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "deleted: %s", why);
	CHECK(t.kind == HF_ALLOC_UNKNOWN && t.static_in_exe);
	CHECK_STR_EQ(t.target_path, dst);
	CHECK_MSG(strstr(t.path, "/map_files/") != NULL, "deleted exe read from %s", t.path);
	CHECK(t.ops[HF_OP_MALLOC].present);
	stop(pid, fd);
}

static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	ssize_t n;
	int err = in >= 0 && out >= 0 ? 0 : -1;

	while (!err && (n = read(in, buf, sizeof(buf))) > 0)
		err = write(out, buf, (size_t)n) == n ? 0 : -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

/*
 * A process in a chroot whose /etc/ld.so.preload names jemalloc: maps shows
 * host paths that do not exist under its root, so files are read through
 * map_files, and the preload path (valid only inside) is matched to the
 * mapped file by identity.  Without the preload file, libc would be chosen.
 */
static void test_chroot_with_preload(void)
{
	static const char *const libs[] = {"libc.so.6", "libjemalloc.so.2", "libm.so.6",
					   "libstdc++.so.6", "libgcc_s.so.1"};
	char root[] = "/tmp/hf-probe-site-root-XXXXXX", path[PATH_MAX], src[PATH_MAX], why[256];
	char want[PATH_MAX], id[64];
	struct hf_alloc_target t;
	FILE *f;
	size_t i;
	pid_t pid;
	int ok = 1;

	CHECK(mkdtemp(root) != NULL);
	snprintf(path, sizeof(path), "%s/bin", root);
	ok &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/lib64", root);
	ok &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/lib", root);
	ok &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/lib/x86_64-linux-gnu", root);
	ok &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/bin/sleep", root);
	ok &= copy_file("/bin/sleep", path) == 0;
	snprintf(path, sizeof(path), "%s/lib64/ld-linux-x86-64.so.2", root);
	ok &= copy_file("/lib64/ld-linux-x86-64.so.2", path) == 0;
	for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		snprintf(src, sizeof(src), LIBDIR "/%s", libs[i]);
		snprintf(path, sizeof(path), "%s/lib/x86_64-linux-gnu/%s", root, libs[i]);
		ok &= copy_file(src, path) == 0;
	}
	snprintf(path, sizeof(path), "%s/etc", root);
	ok &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/etc/ld.so.preload", root);
	f = fopen(path, "w");
	ok &= f && fprintf(f, "/lib/x86_64-linux-gnu/libjemalloc.so.2\n") > 0;
	if (f)
		fclose(f);
	CHECK(ok);

	pid = fork();
	if (pid == 0) {
		char *argv[] = {"/bin/sleep", "60", NULL};
		char *envp[] = {"PATH=/bin", NULL};

		if (chroot(root) == 0 && chdir("/") == 0)
			execve(argv[0], argv, envp);
		_exit(127);
	}
	CHECK_MSG(wait_mapped(pid, "/bin/sleep", "libjemalloc", 5000),
		  "sleep in a chroot did not start");
	CHECK_MSG(hf_alloc_target_find(pid, &t, why, sizeof(why)) == 0, "chroot: %s", why);
	snprintf(want, sizeof(want), "%s/lib/x86_64-linux-gnu/libjemalloc.so.2", root);
	CHECK(t.kind == HF_ALLOC_JEMALLOC);
	CHECK_STR_EQ(t.target_path, want);
	CHECK_MSG(strstr(t.path, "/map_files/") != NULL, "chroot: read from %s", t.path);
	ps_readelf_build_id(LIBDIR "/libjemalloc.so.2", id, sizeof(id));
	CHECK_STR_EQ(t.build_id, id);
	printf("%-34s %-9s %s\n", "sleep in a chroot, ld.so.preload", "jemalloc", t.path);
	stop(pid, -1);

	for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		snprintf(path, sizeof(path), "%s/lib/x86_64-linux-gnu/%s", root, libs[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/lib64/ld-linux-x86-64.so.2", root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/etc/ld.so.preload", root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/etc", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/bin/sleep", root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lib/x86_64-linux-gnu", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/lib", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/lib64", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/bin", root);
	rmdir(path);
	rmdir(root);
}

/* An unprivileged caller cannot read root's process: -EACCES with the reason. */
static void test_unreadable_process(void)
{
	int status = 0;
	pid_t child, parent = getpid();

	if (geteuid() != 0)
		HF_SKIP("needs root to drop to nobody");
	child = fork();
	if (child == 0) {
		struct hf_alloc_target t;
		char why[256] = "";
		int err;

		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		err = hf_alloc_target_find(parent, &t, why, sizeof(why));
		_exit(err == -EACCES && strstr(why, "Permission denied") ? 0 : 1);
	}
	waitpid(child, &status, 0);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "nobody reading root's process: status %d", WEXITSTATUS(status));
}

/*
 * Caught at exec, before its dynamic linker runs (as heapfragd -e sees a new
 * process): a dynamic program's libraries are not mapped yet, so the answer
 * is -EAGAIN, not a guess; a static program already has its provider.
 */
static void test_caught_at_exec(void)
{
	char static_prog[PATH_MAX], why[256];
	const char *progs[] = {"/bin/sleep", static_prog};
	struct hf_alloc_target t;
	int i, status, err;

	if (snprintf(static_prog, sizeof(static_prog), "%s/tests/probe_site_static_prog",
		     build_dir) >= (int)sizeof(static_prog))
		return;
	for (i = 0; i < 2; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			char *argv[] = {(char *)progs[i], "60", NULL};

			ptrace(PTRACE_TRACEME, 0, NULL, NULL);
			execve(argv[0], argv, environ);
			_exit(127);
		}
		/* A traced child stops with SIGTRAP once execve has replaced its image. */
		CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status) &&
		      WSTOPSIG(status) == SIGTRAP);
		err = hf_alloc_target_find(pid, &t, why, sizeof(why));
		if (i == 0) {
			CHECK_MSG(err == -EAGAIN, "sleep at exec: %d (%s)", err, why);
			CHECK(strstr(why, "not loaded") != NULL);
		} else {
			CHECK_MSG(err == 0, "static program at exec: %s", why);
			CHECK(t.kind == HF_ALLOC_GLIBC && t.static_in_exe);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static void test_errors(void)
{
	struct hf_alloc_target t;
	char why[256] = "";
	pid_t zombie;

	CHECK(hf_alloc_target_find(4194303, &t, why, sizeof(why)) == -ESRCH);
	CHECK(strstr(why, "does not exist") != NULL);

	/* kthreadd maps nothing: a sentence, not a crash. */
	why[0] = '\0';
	CHECK(hf_alloc_target_find(2, &t, why, sizeof(why)) < 0);
	CHECK(why[0] != '\0');

	zombie = fork();
	if (zombie == 0)
		_exit(0);
	usleep(200000);
	why[0] = '\0';
	CHECK(hf_alloc_target_find(zombie, &t, why, sizeof(why)) < 0);
	CHECK(why[0] != '\0');
	waitpid(zombie, NULL, 0);

	CHECK(hf_alloc_target_for_command("no-such-command-hf", environ, &t, why, sizeof(why)) ==
	      -ENOENT);
	CHECK(hf_alloc_target_for_command("/etc/passwd", environ, &t, why, sizeof(why)) ==
	      -ENOEXEC);
	/* A library without malloc is a provider of nothing. */
	CHECK(hf_alloc_target_from_file(LIBDIR "/libm.so.6", &t, why, sizeof(why)) == -ENOENT);
	CHECK(strstr(why, "malloc") != NULL);
}

static void test_unstarted_glibc_program(void)
{
	struct hf_alloc_target t;
	char why[256];

	CHECK_MSG(hf_alloc_target_for_command("true", environ, &t, why, sizeof(why)) == 0, "%s",
		  why);
	CHECK(t.kind == HF_ALLOC_GLIBC && !t.static_in_exe);
	CHECK(strstr(t.target_path, "libc.so.6") != NULL);
	CHECK_EQ_U64(t.ops[HF_OP_FREE].entry_offset, t.ops[HF_OP_FREE].sym_offset + 3);
}

int main(void)
{
	const char *b = getenv("HF_BUILD_DIR");

	if (!b)
		HF_SKIP("HF_BUILD_DIR is not set: run through ctest");
	snprintf(build_dir, sizeof(build_dir), "%s", b);
	signal(SIGPIPE, SIG_IGN);
	test_sleep_on_glibc();
	test_python_preloads();
	test_libptm_when_built();
	test_redis_resolves_jemalloc();
	test_own_executables();
	test_deleted_executable();
	test_chroot_with_preload();
	test_unreadable_process();
	test_caught_at_exec();
	test_errors();
	test_unstarted_glibc_program();
	return hf_test_done();
}
