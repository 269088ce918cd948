// SPDX-License-Identifier: MIT
/*
 * Processes in containers and in Kubernetes' cgroups, against the real
 * heapfragd and real BPF.
 *
 *   container_real exact     a workload in its own PID and mount namespace,
 *                            pivoted into a root of its own where its libc
 *                            lives at a path that on the host holds another
 *                            library: traced in exact mode and censused, its
 *                            numbers equal to its own books; put in a
 *                            cgroup of the kubelet's cgroupfs shape
 *   container_real passive   the same in passive mode, in a cgroup of the
 *                            systemd driver's shape (CRI-O)
 *   container_real cgroups   two plain workloads in cgroups of the cgroupfs
 *                            (containerd) and systemd (docker) shapes: the
 *                            labels on every sample of /metrics and in the
 *                            JSON; one moved to another pod, and the labels
 *                            follow it
 *
 * The cgroups are real: made on the machine's cgroup v2 hierarchy (mounted
 * for the test where the machine has none) and the workloads' PIDs written
 * into their cgroup.procs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_labels.h"
#include "check.h"
#include "harness.h"

static char cg2_root[PATH_MAX];
static bool cg2_mounted_here;

/* The machine's cgroup v2 hierarchy, mounted in a temporary folder if it has none. */
static int find_cgroup2(void)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], fstype[64];
		const char *dash = strstr(line, " - ");

		if (dash && sscanf(dash, " - %63s", fstype) == 1 &&
		    strcmp(fstype, "cgroup2") == 0 &&
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			snprintf(cg2_root, sizeof(cg2_root), "%s", mnt);
			fclose(f);
			return 0;
		}
	}
	if (f)
		fclose(f);
	snprintf(cg2_root, sizeof(cg2_root), "/tmp/hf-cgroup2-XXXXXX");
	if (!mkdtemp(cg2_root) || mount("cgroup2", cg2_root, "cgroup2", 0, NULL) != 0)
		return -1;
	cg2_mounted_here = true;
	return 0;
}

static void random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, b, n) != (ssize_t)n)
		for (size_t i = 0; i < n; i++)
			b[i] = (unsigned char)(rand() ^ getpid() ^ time(NULL));
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < n; i++)
		out[i] = hex[b[i] & 15];
	out[n] = '\0';
}

/* A pod's names, made up fresh for each run. */
struct pod {
	char uid[37];  /* with dashes */
	char uid_[37]; /* with underscores, as the systemd driver writes it */
	char cid[65];
	char path[512]; /* the container's cgroup, from the hierarchy's root */
	char dirs[6][512];
	int nr_dirs;
};

/* Appends a cgroup folder to p's list (formatted apart: the arguments are p's own names). */
__attribute__((format(printf, 2, 3))) static void add_dir(struct pod *p, const char *fmt, ...)
{
	char buf[sizeof(p->dirs[0])];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(p->dirs[p->nr_dirs++], buf, sizeof(buf));
}

enum shape { CGROUPFS, SYSTEMD_CONTAINERD, SYSTEMD_CRIO, SYSTEMD_DOCKER };

static void pod_names(struct pod *p, enum shape shape)
{
	char hex[33];

	random_hex(hex, 32);
	for (int i = 0, o = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20) {
			p->uid[o] = '-';
			p->uid_[o++] = '_';
		}
		p->uid[o] = hex[i];
		p->uid_[o++] = hex[i];
	}
	p->uid[36] = p->uid_[36] = '\0';
	random_hex(p->cid, 64);
	p->nr_dirs = 0;
	if (shape == CGROUPFS) {
		add_dir(p, "/kubepods");
		add_dir(p, "/kubepods/burstable");
		add_dir(p, "/kubepods/burstable/pod%s", p->uid);
		add_dir(p, "/kubepods/burstable/pod%s/%s", p->uid, p->cid);
	} else {
		const char *scope = shape == SYSTEMD_CONTAINERD ? "cri-containerd"
				    : shape == SYSTEMD_CRIO     ? "crio"
								: "docker";

		add_dir(p, "/kubepods.slice");
		snprintf(p->dirs[p->nr_dirs++], sizeof(p->dirs[0]),
			 "/kubepods.slice/kubepods-besteffort.slice");
		snprintf(p->dirs[p->nr_dirs++], sizeof(p->dirs[0]),
			 "/kubepods.slice/kubepods-besteffort.slice/"
			 "kubepods-besteffort-pod%s.slice",
			 p->uid_);
		snprintf(p->dirs[p->nr_dirs++], sizeof(p->dirs[0]),
			 "/kubepods.slice/kubepods-besteffort.slice/"
			 "kubepods-besteffort-pod%s.slice/%s-%s.scope",
			 p->uid_, scope, p->cid);
	}
	snprintf(p->path, sizeof(p->path), "%s", p->dirs[p->nr_dirs - 1]);
}

/* Makes the pod's cgroups and moves pid into the container's. */
static int pod_enter(struct pod *p, pid_t pid)
{
	char path[PATH_MAX + 600];
	FILE *f;
	int ok;

	for (int i = 0; i < p->nr_dirs; i++) {
		snprintf(path, sizeof(path), "%s%s", cg2_root, p->dirs[i]);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", cg2_root, p->path);
	f = fopen(path, "w");
	ok = f && fprintf(f, "%d\n", (int)pid) > 0;
	if (f)
		ok &= fclose(f) == 0;
	if (!ok)
		fprintf(stderr, "cannot move %d into %s: %s\n", (int)pid, path, strerror(errno));
	return ok ? 0 : -1;
}

/* Removes the pod's cgroups, leaf first, once their processes are gone. */
static void pod_remove(struct pod *p)
{
	char path[PATH_MAX + 600];

	for (int i = p->nr_dirs - 1; i >= 0; i--) {
		snprintf(path, sizeof(path), "%s%s", cg2_root, p->dirs[i]);
		for (int tries = 0; tries < 50 && rmdir(path) != 0 && errno == EBUSY; tries++)
			usleep(20 * 1000);
	}
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;
	int err = 0;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			err = -1;
	close(in);
	if (close(out) != 0 || n < 0)
		err = -1;
	return err;
}

/* mkdir -p of path (absolute). */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/*
 * A container: dir on the host holds root/ (the mount point of the
 * container's own root, empty on the host) and lib/libc.so.6, which on the
 * host is a copy of libm: a library without malloc.  Inside, dir/lib holds
 * the real libc and the workload runs with LD_LIBRARY_PATH=dir/lib, so a
 * file read at the path the kernel shows for its libc, but on the host, is
 * the wrong one: only /proc/PID/root leads to the right one.
 */
struct ctr {
	char dir[64];
	char libs[8][PATH_MAX]; /* the workload's libraries on the host, from ldd */
	int nr_libs;
	char interp[PATH_MAX];
};

static int ctr_prepare(struct ctr *c, const char *exe)
{
	char cmd[PATH_MAX + 16], line[PATH_MAX + 64], path[PATH_MAX];
	FILE *f;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/hf-ctr-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/root", c->dir);
	if (mkdir(path, 0755) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/lib", c->dir);
	if (mkdir(path, 0755) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/lib/libc.so.6", c->dir);
	if (copy_file("/lib/x86_64-linux-gnu/libm.so.6", path, 0755) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "ldd '%s'", exe);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *arrow = strstr(line, "=> /"), *lib = arrow ? arrow + 3 : strchr(line, '/');

		if (!lib)
			continue;
		lib[strcspn(lib, " \n")] = '\0';
		if (arrow && c->nr_libs < 8)
			snprintf(c->libs[c->nr_libs++], sizeof(c->libs[0]), "%s", lib);
		else if (!arrow)
			snprintf(c->interp, sizeof(c->interp), "%s", lib);
	}
	if (f)
		pclose(f);
	return c->nr_libs && c->interp[0] ? 0 : -1;
}

static void ctr_cleanup(struct ctr *c)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/lib/libc.so.6", c->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lib", c->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/root", c->dir);
	rmdir(path);
	rmdir(c->dir);
}

/* In the container's first process: its root, its /proc, then the workload. */
static void ctr_init(const struct ctr *c, const char *exe, char **argv)
{
	char root[PATH_MAX], path[PATH_MAX * 2], libdir[PATH_MAX], env[PATH_MAX + 32];
	char *envp[] = {env, NULL};
	const char *base;

	snprintf(root, sizeof(root), "%s/root", c->dir);
	snprintf(libdir, sizeof(libdir), "%s/lib", c->dir);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("hf-ctr", root, "tmpfs", 0, "size=64m,mode=0755") != 0)
		_exit(120);
	snprintf(path, sizeof(path), "%s%s", root, libdir);
	if (make_dirs(path) != 0)
		_exit(121);
	for (int i = 0; i < c->nr_libs; i++) {
		base = strrchr(c->libs[i], '/') + 1;
		snprintf(path, sizeof(path), "%s%s/%s", root, libdir, base);
		if (copy_file(c->libs[i], path, 0755) != 0)
			_exit(122);
	}
	snprintf(path, sizeof(path), "%s%s", root, c->interp);
	*strrchr(path, '/') = '\0';
	make_dirs(path);
	snprintf(path, sizeof(path), "%s%s", root, c->interp);
	snprintf(env, sizeof(env), "%s/bin", root);
	if (copy_file(c->interp, path, 0755) != 0 || make_dirs(env) != 0)
		_exit(123);
	snprintf(path, sizeof(path), "%s/bin/workload", root);
	if (copy_file(exe, path, 0755) != 0)
		_exit(124);
	snprintf(path, sizeof(path), "%s/proc", root);
	if (mkdir(path, 0555) != 0 || mount("proc", path, "proc", 0, NULL) != 0)
		_exit(125);
	snprintf(path, sizeof(path), "%s/.old", root);
	if (mkdir(path, 0700) != 0 || syscall(SYS_pivot_root, root, path) != 0 || chdir("/") != 0 ||
	    umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0)
		_exit(126);
	snprintf(env, sizeof(env), "LD_LIBRARY_PATH=%s", libdir);
	argv[0] = "/bin/workload";
	execve(argv[0], argv, envp);
	_exit(127);
}

/*
 * Starts tests/workloads/<name> in a container (as th_workload_start);
 * w->pid is its PID on the host, w->proc the host-side parent that waits
 * for it.
 */
static int ctr_start(struct ctr *c, struct th_workload *w, const char *name,
		     const char *const *args)
{
	char exe[PATH_MAX], line[256];
	char *argv[32] = {NULL};
	int in[2], out[2], pids[2], n = 1, ns_pid = 0;

	memset(w, 0, sizeof(*w));
	snprintf(exe, sizeof(exe), "%s/%s", th_build_path("tests/workloads"), name);
	if (ctr_prepare(c, exe) != 0) {
		fprintf(stderr, "cannot prepare a container for %s\n", exe);
		return -1;
	}
	for (int i = 0; args && args[i] && n < 31; i++)
		argv[n++] = (char *)args[i];
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(pids, O_CLOEXEC))
		return -1;
	w->proc = fork();
	if (w->proc < 0)
		return -1;
	if (w->proc == 0) {
		pid_t init;
		int status = 0;

		dup2(in[0], 0);
		dup2(out[1], 1);
		if (unshare(CLONE_NEWNS | CLONE_NEWPID) != 0)
			_exit(119);
		init = fork();
		if (init == 0)
			ctr_init(c, exe, argv);
		(void)!write(pids[1], &init, sizeof(init));
		if (init < 0 || waitpid(init, &status, 0) != init)
			_exit(118);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	th_track(w->proc);
	close(in[0]);
	close(out[1]);
	close(pids[1]);
	if (read(pids[0], &w->pid, sizeof(w->pid)) != sizeof(w->pid) || w->pid <= 0)
		w->pid = 0;
	close(pids[0]);
	if (w->pid > 0)
		th_track(w->pid);
	w->in_fd = in[1];
	w->out = fdopen(out[0], "r");
	if (!w->out || !fgets(line, sizeof(line), w->out) ||
	    sscanf(line, "READY pid=%d", &ns_pid) != 1) {
		fprintf(stderr, "%s in a container did not say READY\n", name);
		return -1;
	}
	/* The first process of its own PID namespace. */
	CHECK_EQ_U64(ns_pid, 1);
	return 0;
}

/* A census that began after arg (Unix seconds), complete. */
static bool census_after(json_t *doc, void *arg)
{
	double since = *(double *)arg;
	json_t *c = json_object_get(doc, "census");
	const char *state = json_string_value(json_object_get(c, "state"));

	return state && strcmp(state, "complete") == 0 &&
	       json_number_value(json_object_get(c, "at")) -
			       json_number_value(json_object_get(c, "duration_seconds")) >
		       since;
}

static double now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Does the daemon's log say it read the allocator at want? */
static bool log_says(const struct th_daemon *d, const char *want)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(d->log_path, "r");

	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* The census against glibc's own mallinfo2() at the same pause (one arena). */
static void check_census(json_t *doc, json_t *truth)
{
	json_t *c = json_object_get(doc, "census"), *mi = json_object_get(truth, "mallinfo2");
	uint64_t tcache = th_u64(c, "free.tcache.bytes");

	CHECK_EQ_U64(json_array_size(json_object_get(c, "arenas")), 1);
	CHECK_EQ_U64(th_u64(c, "free.bytes") - tcache, th_u64(mi, "fordblks"));
	CHECK_EQ_U64(th_u64(c, "in_use.bytes") + tcache, th_u64(mi, "uordblks"));
	CHECK_EQ_U64(th_u64(c, "mmapped.bytes"), th_u64(mi, "hblkhd"));
	CHECK_EQ_U64(th_u64(doc, "heap.mapped_bytes.brk"), th_u64(mi, "arena"));
	/* The phase's survivors are among the census's in-use chunks. */
	CHECK(th_u64(c, "in_use.bytes") >= th_u64(truth, "chunk_bytes"));
}

/* Every sample of pid carries these labels right after comm; returns how many there are. */
static int check_every_sample(const char *metrics, pid_t pid, const char *comm, const char *labels)
{
	char head[2400];
	int samples = 0, labelled = 0;

	snprintf(head, sizeof(head), "{pid=\"%d\",", (int)pid);
	for (const char *p = metrics; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *brace = strchr(p, '{'), *nl = strchr(p, '\n');

		if (*p == '#' || !brace || (nl && brace > nl) ||
		    strncmp(brace, head, strlen(head)) != 0)
			continue;
		samples++;
		snprintf(head, sizeof(head), "{pid=\"%d\",comm=\"%s\"%s", (int)pid, comm, labels);
		labelled += strncmp(brace, head, strlen(head)) == 0 &&
			    (brace[strlen(head)] == ',' || brace[strlen(head)] == '}');
		snprintf(head, sizeof(head), "{pid=\"%d\",", (int)pid);
	}
	CHECK_MSG(samples > 20 && labelled == samples, "pid %d: %d of %d samples carry %s",
		  (int)pid, labelled, samples, labels);
	return samples;
}

/* The labels wanted for a process in the pod's container. */
static void pod_labels(const struct pod *p, char *out, size_t len)
{
	snprintf(out, len, ",cgroup=\"%s\",pod_uid=\"%s\",container_id=\"%s\"", p->path, p->uid,
		 p->cid);
}

static void check_doc_names(json_t *doc, const struct pod *p)
{
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "cgroup")), p->path);
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "pod_uid")), p->uid);
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "container_id")), p->cid);
}

/* The labels in the list, the document and every sample of /metrics. */
static void check_names_served(const struct th_daemon *d, pid_t pid, const char *comm,
			       const struct pod *p)
{
	char path[64], labels[1200];
	json_t *doc, *list;
	char *metrics;
	long status;
	bool listed = false;

	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)pid);
	doc = th_get(d, path, &status);
	check_doc_names(doc, p);
	list = th_get(d, "/api/v1/processes", &status);
	for (size_t i = 0; i < json_array_size(json_object_get(list, "processes")); i++) {
		json_t *e = json_array_get(json_object_get(list, "processes"), i);

		if (json_integer_value(json_object_get(e, "pid")) == pid) {
			check_doc_names(e, p);
			listed = true;
		}
	}
	CHECK(listed);
	metrics = th_get_text(d, "/metrics", &status);
	CHECK(status == 200 && metrics);
	pod_labels(p, labels, sizeof(labels));
	if (metrics)
		printf("pid %d: %d samples with %s\n", (int)pid,
		       check_every_sample(metrics, pid, comm, labels), labels);
	/* The test helper builds the same labels from the document. */
	{
		char from_doc[1200];

		hf_test_cgroup_labels(doc, from_doc, sizeof(from_doc));
		CHECK_STR_EQ(from_doc, labels);
	}
	free(metrics);
	json_decref(list);
	json_decref(doc);
}

/* A cgroup path in a document names pod p once a snapshot saw it there. */
static bool in_pod(json_t *doc, void *arg)
{
	const struct pod *p = arg;
	const char *cg = json_string_value(json_object_get(doc, "cgroup"));

	return cg && strcmp(cg, p->path) == 0;
}

static void container(bool exact)
{
	const char *args[] = {"--count", "100000", "--size", "1000", "--keep-percent",
			      "10",      "--seed", "7",      NULL};
	const char *dargs[] = {"-m", exact ? "exact" : "passive", "-i", "0.3", NULL};
	struct th_workload w;
	struct th_daemon d;
	struct ctr c;
	struct pod p;
	char pid_arg[16], want[PATH_MAX + 64], from_host[PATH_MAX];
	const char *argv[8];
	json_t *doc = NULL, *truth = NULL;
	double since;

	if (ctr_start(&c, &w, "swiss_cheese", args) != 0) {
		CHECK_MSG(0, "swiss_cheese did not start in a container");
		if (w.pid > 0 || w.proc > 0)
			th_workload_kill(&w);
		ctr_cleanup(&c);
		return;
	}
	pod_names(&p, exact ? CGROUPFS : SYSTEMD_CRIO);
	CHECK(pod_enter(&p, w.pid) == 0);
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w.pid);
	for (int i = 0; i < 4; i++)
		argv[i] = dargs[i];
	argv[4] = "-p";
	argv[5] = pid_arg;
	argv[6] = NULL;
	if (th_daemon_start(&d, argv) != 0) {
		CHECK_MSG(0, "heapfragd did not start on the container's process");
		th_workload_kill(&w);
		ctr_cleanup(&c);
		pod_remove(&p);
		return;
	}
	json_decref(th_wait_doc(&d, w.pid, NULL, NULL, 5));

	/*
	 * Its libc, read where the container has it: through /proc/PID/root.
	 * At the same path on the host lies libm, which has no malloc.
	 */
	snprintf(want, sizeof(want), "allocator glibc at /proc/%d/root%s/lib/libc.so.6", (int)w.pid,
		 c.dir);
	CHECK_MSG(log_says(&d, want), "the log does not say \"%s\"", want);
	snprintf(from_host, sizeof(from_host), "%s/lib/libc.so.6", c.dir);

	th_workload_go(&w);
	truth = th_workload_truth(&w);
	CHECK_MSG(truth != NULL, "no truth from the container's workload");
	since = now_unix();
	doc = th_wait_doc(&d, w.pid, census_after, &since, 30);
	CHECK_MSG(doc && census_after(doc, &since), "no complete census after the phase");
	if (doc && truth && census_after(doc, &since)) {
		CHECK_STR_EQ(json_string_value(json_object_get(doc, "mode")), dargs[1]);
		CHECK_STR_EQ(json_string_value(
				     json_object_get(json_object_get(doc, "allocator"), "name")),
			     "glibc");
		CHECK_STR_EQ(json_string_value(
				     json_object_get(json_object_get(doc, "allocator"), "path")),
			     from_host);
		CHECK_STR_EQ(json_string_value(json_object_get(doc, "exe")), "/bin/workload");
		check_census(doc, truth);
		if (exact) {
			CHECK_EQ_U64(th_u64(doc, "counters.malloc"), th_u64(truth, "calls.malloc"));
			CHECK_EQ_U64(th_u64(doc, "counters.free"), th_u64(truth, "calls.free"));
			CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"),
				     th_u64(truth, "live_allocations"));
			CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"),
				     th_u64(truth, "requested_bytes"));
			CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"),
				     th_u64(truth, "chunk_bytes"));
			CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
		} else {
			CHECK(json_is_null(
				json_object_get(json_object_get(doc, "counters"), "malloc")));
			/* Passive mode's allocated bytes are the census's. */
			CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"),
				     th_u64(doc, "census.in_use.bytes") +
					     th_u64(doc, "census.mmapped.bytes"));
		}
		printf("%s: container pid %d (1 inside), libc %s, live %llu requested %llu "
		       "allocated %llu, census in use %llu free %llu\n",
		       dargs[1], (int)w.pid, from_host,
		       (unsigned long long)th_u64(doc, "heap.live_allocations"),
		       (unsigned long long)th_u64(doc, "heap.requested_bytes"),
		       (unsigned long long)th_u64(doc, "heap.allocated_bytes"),
		       (unsigned long long)th_u64(doc, "census.in_use.bytes"),
		       (unsigned long long)th_u64(doc, "census.free.bytes"));
	}
	json_decref(th_wait_doc(&d, w.pid, in_pod, &p, 5));
	check_names_served(&d, w.pid, "workload", &p);
	if (hf_checks_failed)
		th_daemon_dump_log(&d);
	CHECK_EQ_U64(th_workload_finish(&w), 0);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	json_decref(doc);
	json_decref(truth);
	ctr_cleanup(&c);
	pod_remove(&p);
}

/* Plain workloads in cgroups of both drivers' shapes; one moves to another pod. */
static void cgroups(void)
{
	const char *args[] = {"--count", "1000", NULL};
	struct th_workload w[2];
	struct th_daemon d;
	struct pod p[3];
	char a0[16], a1[16];
	const char *dargs[] = {"-i", "0.2", "-p", a0, "-p", a1, NULL};
	int started = 0;

	pod_names(&p[0], CGROUPFS);
	pod_names(&p[1], SYSTEMD_DOCKER);
	pod_names(&p[2], SYSTEMD_CONTAINERD);
	for (; started < 2; started++) {
		if (th_workload_start(&w[started], "swiss_cheese", args, NULL) != 0)
			break;
		CHECK(pod_enter(&p[started], w[started].pid) == 0);
	}
	CHECK_MSG(started == 2, "the workloads did not start");
	if (started < 2)
		goto out;
	snprintf(a0, sizeof(a0), "%d", (int)w[0].pid);
	snprintf(a1, sizeof(a1), "%d", (int)w[1].pid);
	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd did not start");
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		json_decref(th_wait_doc(&d, w[i].pid, in_pod, &p[i], 5));
		check_names_served(&d, w[i].pid, "swiss_cheese", &p[i]);
	}
	/* Moved to another pod: the next snapshot says so. */
	CHECK(pod_enter(&p[2], w[1].pid) == 0);
	json_decref(th_wait_doc(&d, w[1].pid, in_pod, &p[2], 5));
	check_names_served(&d, w[1].pid, "swiss_cheese", &p[2]);
	if (hf_checks_failed)
		th_daemon_dump_log(&d);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
out:
	for (int i = 0; i < started; i++)
		th_workload_kill(&w[i]);
	for (int i = 0; i < 3; i++)
		pod_remove(&p[i]);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "exact";

	th_init("container_real", 200);
	if (find_cgroup2() != 0)
		HF_SKIP("no cgroup v2 hierarchy and none can be mounted: %s", strerror(errno));
	if (strcmp(what, "exact") == 0 || strcmp(what, "passive") == 0)
		container(strcmp(what, "exact") == 0);
	else if (strcmp(what, "cgroups") == 0)
		cgroups();
	else
		CHECK_MSG(0, "unknown scenario %s", what);
	if (cg2_mounted_here) {
		umount(cg2_root);
		rmdir(cg2_root);
	}
	return hf_test_done();
}
