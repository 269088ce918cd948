// SPDX-License-Identifier: MIT
#include "procfs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A /proc/PID file that cannot be opened because the directory is gone means
 * the process exited; ESRCH from a read means it exited while we read.
 */
static int proc_errno(int e)
{
	return e == ENOENT || e == ESRCH ? -ESRCH : -e;
}

static FILE *proc_open(pid_t pid, const char *name, int *err)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	f = fopen(path, "re");
	if (!f)
		*err = proc_errno(errno);
	return f;
}

/* Reads the next unsigned field; fields are separated by single spaces. */
static int next_u64(const char **p, uint64_t *v)
{
	char *end;

	while (**p == ' ')
		(*p)++;
	if (!isdigit((unsigned char)**p) && **p != '-')
		return -EINVAL;
	errno = 0;
	/* Fields printed as %ld (e.g. priority) can be negative; keep the bits. */
	if (**p == '-')
		*v = (uint64_t)strtoll(*p, &end, 10);
	else
		*v = strtoull(*p, &end, 10);
	if (end == *p || errno)
		return -EINVAL;
	*p = end;
	return 0;
}

int hf_proc_parse_stat(const char *line, struct hf_proc_stat *out)
{
	const char *open, *close, *p;
	uint64_t v;
	size_t len;
	int field;

	memset(out, 0, sizeof(*out));
	open = strchr(line, '(');
	close = strrchr(line, ')');
	if (!open || !close || close < open)
		return -EINVAL;
	out->pid = (pid_t)strtol(line, NULL, 10);
	if (out->pid <= 0)
		return -EINVAL;
	len = (size_t)(close - open - 1);
	if (len > HF_COMM_LEN)
		len = HF_COMM_LEN;
	memcpy(out->comm, open + 1, len);
	out->comm[len] = '\0';

	p = close + 1;
	while (*p == ' ')
		p++;
	if (!*p || *p == '\n')
		return -EINVAL;
	out->state = *p++;
	/* Field 3 was the state; numeric fields start at 4. */
	for (field = 4; field <= 47; field++) {
		if (next_u64(&p, &v)) {
			/* Kernels before 3.3 end before start_brk; 22 is the least we need. */
			return field > 22 ? 0 : -EINVAL;
		}
		if (field == 4)
			out->ppid = (pid_t)v;
		else if (field == 22)
			out->start_ticks = v;
		else if (field == 47)
			out->start_brk = v;
	}
	return 0;
}

/*
 * The whole file, not its first line: a process names its own comm
 * (prctl PR_SET_NAME), the kernel prints it raw, and a comm holding a
 * newline would otherwise cut the line inside the parentheses and make the
 * process unreadable.  The line is at most 52 numbers of at most 20 digits
 * and a 64-byte comm: 4 KiB holds it.
 */
int hf_proc_read_stat(pid_t pid, struct hf_proc_stat *out)
{
	char buf[4096];
	size_t n;
	int err = 0;
	FILE *f;

	f = proc_open(pid, "stat", &err);
	if (!f)
		return err;
	errno = 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (n == 0) {
		err = errno ? proc_errno(errno) : -ESRCH;
		goto cleanup;
	}
	buf[n] = '\0';
	err = hf_proc_parse_stat(buf, out);
cleanup:
	fclose(f);
	return err;
}

int hf_proc_parse_btime(FILE *f, uint64_t *btime)
{
	char *line = NULL;
	size_t cap = 0;
	int err = -EINVAL;

	while (getline(&line, &cap, f) >= 0) {
		unsigned long long v;

		if (sscanf(line, "btime %llu", &v) == 1) {
			*btime = v;
			err = 0;
			break;
		}
	}
	free(line);
	return err;
}

int hf_proc_boot_time(uint64_t *btime)
{
	FILE *f = fopen("/proc/stat", "re");
	int err;

	if (!f)
		return -errno;
	err = hf_proc_parse_btime(f, btime);
	fclose(f);
	return err;
}

double hf_proc_ticks_to_unix(uint64_t start_ticks, uint64_t btime)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0)
		hz = 100;
	return (double)btime + (double)start_ticks / (double)hz;
}

int hf_proc_read_exe(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	if (len == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, len - 1);
	if (n < 0) {
		buf[0] = '\0';
		/* Kernel threads and zombies have no exe; the pid dir tells which. */
		if (errno == ENOENT) {
			snprintf(path, sizeof(path), "/proc/%d", (int)pid);
			return access(path, F_OK) == 0 ? 0 : -ESRCH;
		}
		return proc_errno(errno);
	}
	buf[n] = '\0';
	return 0;
}

int hf_proc_parse_status_rss(FILE *f, uint64_t *rss_bytes)
{
	char *line = NULL;
	size_t cap = 0;
	int err = -ESRCH;

	errno = 0;
	while (getline(&line, &cap, f) >= 0) {
		unsigned long long kb;

		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
			*rss_bytes = kb * 1024;
			err = 0;
			break;
		}
	}
	if (err && errno)
		err = proc_errno(errno);
	free(line);
	return err;
}

int hf_proc_read_rss(pid_t pid, uint64_t *rss_bytes)
{
	int err = 0;
	FILE *f = proc_open(pid, "status", &err);

	if (!f)
		return err;
	err = hf_proc_parse_status_rss(f, rss_bytes);
	fclose(f);
	return err;
}

/* "start-end perms offset dev inode path": the line that opens a mapping. */
static int parse_mapping_header(const char *line, struct hf_mapping *m)
{
	const char *p = line;
	unsigned long long start, end, offset, inode;
	char perms[8];
	int n = 0;
	size_t len;

	while (isxdigit((unsigned char)*p))
		p++;
	if (p == line || *p != '-')
		return -EINVAL;
	if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &start, &end, perms, &offset, &inode,
		   &n) < 5 ||
	    n == 0 || strlen(perms) != 4)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->start = start;
	m->end = end;
	m->offset = offset;
	m->inode = inode;
	memcpy(m->perms, perms, 5);
	m->rss_bytes = HF_UNKNOWN;
	p = line + n;
	len = strcspn(p, "\n");
	if (len >= sizeof(m->path))
		len = sizeof(m->path) - 1;
	memcpy(m->path, p, len);
	m->path[len] = '\0';
	return 0;
}

int hf_proc_parse_smaps(FILE *f, hf_mapping_cb cb, void *arg)
{
	struct hf_mapping cur;
	bool have = false;
	char *line = NULL;
	size_t cap = 0;
	int err = 0;

	errno = 0;
	while (getline(&line, &cap, f) >= 0) {
		struct hf_mapping next;
		unsigned long long kb;

		if (parse_mapping_header(line, &next) == 0) {
			if (have && (err = cb(&cur, arg)))
				goto cleanup;
			cur = next;
			have = true;
		} else if (have && sscanf(line, "Rss: %llu kB", &kb) == 1) {
			cur.rss_bytes = kb * 1024;
		}
		errno = 0;
	}
	if (errno) {
		err = proc_errno(errno);
		goto cleanup;
	}
	if (have)
		err = cb(&cur, arg);
cleanup:
	free(line);
	return err;
}

int hf_proc_read_smaps(pid_t pid, hf_mapping_cb cb, void *arg)
{
	int err = 0;
	FILE *f = proc_open(pid, "smaps", &err);

	if (!f)
		return err;
	err = hf_proc_parse_smaps(f, cb, arg);
	fclose(f);
	return err;
}

int hf_proc_resident_range(pid_t pid, uint64_t start, uint64_t len, uint64_t *resident)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t first = start / page, last = (start + len + page - 1) / page;
	uint64_t entries[512], count = 0;
	char path[64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return proc_errno(errno);
	while (first < last) {
		uint64_t want = last - first < 512 ? last - first : 512;
		ssize_t n = pread(fd, entries, want * sizeof(entries[0]),
				  (off_t)(first * sizeof(entries[0])));

		if (n <= 0) {
			err = n < 0 ? proc_errno(errno) : -ESRCH;
			goto cleanup;
		}
		for (uint64_t i = 0; i < (uint64_t)n / sizeof(entries[0]); i++) {
			/* Bit 63: the page is present in RAM, as smaps's Rss counts it. */
			if (entries[i] >> 63)
				count++;
		}
		first += (uint64_t)n / sizeof(entries[0]);
	}
	*resident = count * page;
cleanup:
	close(fd);
	return err;
}
