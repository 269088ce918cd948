// SPDX-License-Identifier: MIT
/*
 * exec_gate.c - the loader of bpf/exec_gate.bpf.c, the release of the
 * processes it holds, and the keeper that releases them when the daemon
 * cannot.
 *
 * Releasing is taking the process's entry out of the gated map with one
 * lookup-and-delete: whoever takes it (the daemon, the keeper, the daemon's
 * close) sends the one SIGCONT, and nobody else does.  The entry goes when
 * the process exits, so while it exists its PID is that process's; the pidfd
 * opened before the take then names it even if it dies before the signal.
 *
 * The keeper is a fork of the daemon holding only the gated map and a pidfd
 * of the daemon.  It closes every other descriptor it inherited, so the
 * daemon's BPF links die with the daemon and nothing is gated once it is
 * gone; a process gated just before is released by the keeper's last sweeps.
 * Should the keeper die together with the daemon, the next heapfragd
 * watching that file resumes what they left stopped.
 */
#include "exec_gate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/exec_gate.h"
#include "exec_gate.skel.h"
#include "log.h"

#define NS_PER_MS       1000000ULL
#define KEEPER_POLL_MS  50
#define KEEPER_LAST_GAP 200 /* ms between the keeper's two last sweeps */

struct hf_exec_gate {
	struct exec_gate_bpf *skel;
	int gated_fd;
	int self_pidfd;
	pid_t keeper;
	unsigned int timeout_ms;
};

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Takes pid's entry and, unless someone else stopped the process while it
 * was held, resumes it.  Returns 1 when the entry was taken here, 0 when
 * there was none, or a negative errno.
 */
static int release_one(int gated_fd, pid_t pid, uint64_t *held_ns)
{
	struct hfg_gated g;
	uint32_t key = (uint32_t)pid;
	int pidfd, err = 0;

	pidfd = pidfd_open(pid, 0);
	if (bpf_map_lookup_and_delete_elem(gated_fd, &key, &g) != 0) {
		err = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	if (held_ns)
		*held_ns = monotonic_ns() - g.gated_ns;
	err = 1;
	if (g.flags & HFG_FOREIGN_STOP) {
		hf_log(HF_LOG_WARN,
		       "process %d was sent SIGSTOP by someone else while held at exec; it "
		       "stays stopped",
		       pid);
		goto out;
	}
	/* No pidfd: the process is gone already, nothing to resume. */
	if (pidfd >= 0 && pidfd_send_signal(pidfd, SIGCONT, NULL, 0) != 0 && errno != ESRCH) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to resume process %d held at exec: %s", pid,
		       strerror(-err));
	}
out:
	if (pidfd >= 0)
		close(pidfd);
	return err;
}

/* Releases every process held at least min_age_ns; says why for each. */
static void sweep(int gated_fd, uint64_t min_age_ns, const char *why)
{
	static uint32_t keys[HFG_MAX_GATED];
	uint32_t key, next, *prev = NULL;
	struct hfg_gated g;
	size_t n = 0;

	/* Keys first: deleting while walking a hash may restart the walk. */
	while (n < HFG_MAX_GATED && bpf_map_get_next_key(gated_fd, prev, &next) == 0) {
		keys[n++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t held = 0;

		if (bpf_map_lookup_elem(gated_fd, &keys[i], &g) != 0 ||
		    monotonic_ns() - g.gated_ns < min_age_ns)
			continue;
		if (release_one(gated_fd, (pid_t)keys[i], &held) == 1)
			hf_log(HF_LOG_WARN, "process %u resumed after %.1f ms held at exec: %s",
			       keys[i], (double)held / 1e6, why);
	}
}

/* Closes every descriptor above stderr but a and b. */
static void close_all_but(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
}

/*
 * The keeper: every KEEPER_POLL_MS, releases what has been held past the
 * timeout; when the daemon is gone, releases everything and ends.  It
 * ignores the signals a terminal or a service manager sends the daemon's
 * group on a stop, so that it outlives the daemon.
 */
static void __attribute__((noreturn))
keeper_main(int gated_fd, int daemon_pidfd, unsigned int timeout_ms)
{
	struct pollfd pfd = {.fd = daemon_pidfd, .events = POLLIN};
	uint64_t timeout_ns = (uint64_t)timeout_ms * NS_PER_MS;

	close_all_but(gated_fd, daemon_pidfd);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "heapfragd-gate");
	for (;;) {
		int n = poll(&pfd, 1, KEEPER_POLL_MS);

		if (n > 0 || (n < 0 && errno != EINTR))
			break;
		sweep(gated_fd, timeout_ns, "the daemon did not resume it in time");
	}
	/*
	 * The daemon is gone and its links with it; a program already running
	 * when they went may still add an entry, hence a second sweep.
	 */
	sweep(gated_fd, 0, "heapfragd ended without resuming it");
	usleep(KEEPER_LAST_GAP * 1000);
	sweep(gated_fd, 0, "heapfragd ended without resuming it");
	_exit(0);
}

int hf_exec_gate_open(unsigned int timeout_ms, struct hf_exec_gate **out)
{
	struct hf_exec_gate *g;
	int err;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->self_pidfd = -1;
	g->keeper = -1;
	g->timeout_ms = timeout_ms;
	g->skel = exec_gate_bpf__open();
	if (!g->skel) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to open the exec gate: %s", strerror(-err));
		goto cleanup;
	}
	/* The identity iterator runs on demand, per watched file. */
	bpf_program__set_autoattach(g->skel->progs.hfg_learn, false);
	err = exec_gate_bpf__load(g->skel);
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to load the exec gate: %s", strerror(-err));
		goto cleanup;
	}
	g->gated_fd = bpf_map__fd(g->skel->maps.gated);
	g->self_pidfd = pidfd_open(getpid(), 0);
	if (g->self_pidfd < 0) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to open a pidfd of heapfragd: %s", strerror(-err));
		goto cleanup;
	}
	/* The keeper first: nothing is gated before someone can release it. */
	g->keeper = fork();
	if (g->keeper < 0) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to fork the exec gate's keeper: %s", strerror(-err));
		goto cleanup;
	}
	if (g->keeper == 0)
		keeper_main(g->gated_fd, g->self_pidfd, timeout_ms);
	err = exec_gate_bpf__attach(g->skel);
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to attach the exec gate: %s", strerror(-err));
		goto cleanup;
	}
	hf_log(HF_LOG_DEBUG, "exec gate open, keeper %d, timeout %u ms", g->keeper, timeout_ms);
	*out = g;
	return 0;

cleanup:
	hf_exec_gate_close(g);
	return err;
}

/*
 * The kernel's identity of the file open at fd: what the exec hook reads
 * from the new image's mm->exe_file.  stat(2) is not enough: on btrfs its
 * st_dev is the subvolume's, not the superblock's s_dev.
 */
static int learn_identity(struct hf_exec_gate *g, int fd, struct hfg_file *id)
{
	union bpf_iter_link_info linfo = {.task.tid = (__u32)getpid()};
	LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &linfo,
		    .link_info_len = sizeof(linfo));
	struct bpf_link *link;
	char buf[64];
	int iter_fd, err = 0;
	ssize_t got;

	g->skel->bss->learn_tgid = (uint32_t)getpid();
	g->skel->bss->learn_fd = fd;
	g->skel->bss->learned_ok = 0;
	link = bpf_program__attach_iter(g->skel->progs.hfg_learn, &opts);
	if (!link)
		return -errno;
	iter_fd = bpf_iter_create(bpf_link__fd(link));
	if (iter_fd < 0) {
		err = -errno;
		goto out;
	}
	while ((got = read(iter_fd, buf, sizeof(buf))) > 0)
		;
	if (got < 0)
		err = -errno;
	close(iter_fd);
	if (!err && !g->skel->bss->learned_ok)
		err = -ENOENT;
	if (!err)
		*id = g->skel->bss->learned;
out:
	bpf_link__destroy(link);
	return err;
}

/* Reads a small /proc file whole; 0 or a negative errno. */
static int read_small(const char *path, char *buf, size_t len)
{
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = read(fd, buf, len - 1);
	close(fd);
	if (got < 0)
		return -EIO;
	buf[got] = '\0';
	return 0;
}

/*
 * Is pid stopped on its way out of execve, before its first instruction?
 * /proc/PID/stat says stopped ('T') and /proc/PID/syscall still shows the
 * execve (59) or execveat (322) it returns from: a task stops only on its
 * way to user space, so it has run nothing of its new image.
 */
static bool stopped_at_exec(pid_t pid)
{
	char path[64], buf[512], *rp;
	long nr;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) != 0)
		return false;
	rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ' || rp[2] != 'T')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	if (read_small(path, buf, sizeof(buf)) != 0 || sscanf(buf, "%ld", &nr) != 1)
		return false;
	return nr == 59 || nr == 322;
}

/*
 * Resumes the processes running the file sb describes that a gate left
 * stopped at exec: one of a heapfragd that died together with its keeper
 * (a service manager killing the whole group).  Ours are skipped: they are
 * in our map.  A SIGSTOP that arrived during the exec looks the same; that
 * is the one stop this could undo.
 */
static void resume_orphans(struct hf_exec_gate *g, const struct stat *file)
{
	struct hfg_gated held;
	struct dirent *de;
	struct stat sb;
	char path[64];
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		uint32_t key = (uint32_t)pid;
		int pidfd;

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
		if (stat(path, &sb) != 0 || sb.st_dev != file->st_dev || sb.st_ino != file->st_ino)
			continue;
		if (bpf_map_lookup_elem(g->gated_fd, &key, &held) == 0 ||
		    !stopped_at_exec((pid_t)pid))
			continue;
		pidfd = pidfd_open((pid_t)pid, 0);
		if (pidfd < 0)
			continue;
		if (pidfd_send_signal(pidfd, SIGCONT, NULL, 0) == 0)
			hf_log(HF_LOG_WARN,
			       "process %ld was left stopped at exec (by a heapfragd that ended "
			       "with its keeper): resumed",
			       pid);
		close(pidfd);
	}
	closedir(dir);
}

int hf_exec_gate_watch(struct hf_exec_gate *g, const char *path)
{
	struct hfg_file id;
	struct stat sb;
	uint32_t one = 1;
	int fd, err;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = learn_identity(g, fd, &id);
	if (err) {
		/* Right on the file systems whose st_dev is their s_dev (ext4, xfs, tmpfs). */
		hf_log(HF_LOG_DEBUG, "cannot ask the kernel who %s is (%s); using stat", path,
		       strerror(-err));
		if (fstat(fd, &sb) != 0) {
			err = -errno;
			close(fd);
			return err;
		}
		id.dev = ((unsigned long long)major(sb.st_dev) << 20) | minor(sb.st_dev);
		id.ino = sb.st_ino;
	}
	if (fstat(fd, &sb) == 0)
		resume_orphans(g, &sb);
	close(fd);
	if (bpf_map_update_elem(bpf_map__fd(g->skel->maps.watched), &id, &one, BPF_ANY) != 0)
		return -errno;
	hf_log(HF_LOG_INFO, "processes that exec %s are held until their probes are attached",
	       path);
	return 0;
}

int hf_exec_gate_release(struct hf_exec_gate *g, pid_t pid, uint64_t *held_ns)
{
	return release_one(g->gated_fd, pid, held_ns);
}

void hf_exec_gate_close(struct hf_exec_gate *g)
{
	if (!g)
		return;
	/* Nothing new is gated; then nobody but us may release; then we release all. */
	if (g->skel)
		exec_gate_bpf__detach(g->skel);
	if (g->keeper > 0) {
		kill(g->keeper, SIGKILL);
		waitpid(g->keeper, NULL, 0);
	}
	if (g->skel && g->gated_fd > 0)
		sweep(g->gated_fd, 0, "heapfragd is stopping");
	exec_gate_bpf__destroy(g->skel);
	if (g->self_pidfd >= 0)
		close(g->self_pidfd);
	free(g);
}
