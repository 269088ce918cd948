// SPDX-License-Identifier: MIT
/*
 * cgroup.c - /proc/PID/cgroup and the Kubernetes names in its path.
 *
 * A cgroup's name is chosen by whoever made it, and a process in a
 * container with a delegated cgroup tree makes its own: every byte but '/'
 * and '\n' (the kernel refuses those), of any length up to PATH_MAX.  So
 * the text is parsed like network input: lengths are counted, nothing is
 * assumed to be NUL-terminated, and what is served is made printable.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* More than any real /proc/PID/cgroup: 16 hierarchies of PATH_MAX each. */
#define CGROUP_FILE_MAX (64 * 1024)

/* One "ID:CONTROLLERS:PATH" line. */
struct line {
	const char *controllers;
	size_t controllers_len;
	const char *path;
	size_t path_len;
	bool v2; /* "0::" */
};

static bool is_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool parse_line(const char *s, size_t n, struct line *out)
{
	const char *c1 = memchr(s, ':', n), *c2;

	if (!c1 || memchr(s, '\0', n))
		return false;
	c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - s));
	if (!c2 || !is_digits(s, (size_t)(c1 - s)))
		return false;
	out->controllers = c1 + 1;
	out->controllers_len = (size_t)(c2 - c1 - 1);
	out->path = c2 + 1;
	out->path_len = n - (size_t)(c2 + 1 - s);
	out->v2 = c1 - s == 1 && s[0] == '0' && out->controllers_len == 0;
	return out->path_len > 0 && out->path[0] == '/';
}

/* Is name one of the comma-separated controllers? */
static bool has_controller(const struct line *l, const char *name)
{
	size_t want = strlen(name);
	const char *s = l->controllers, *end = s + l->controllers_len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);

		if (len == want && memcmp(s, name, want) == 0)
			return true;
		s += len + 1;
	}
	return false;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool contains(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(s + i, needle, k) == 0)
			return true;
	return false;
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/*
 * A pod UID as the kubelet writes it into a cgroup name: a UUID whose
 * dashes are sep (the systemd driver turns them into '_'), or, for a static
 * pod, 32 hex digits (the hash of its manifest).  Written out with dashes.
 */
static bool pod_uid(const char *s, size_t n, char sep, char out[HF_POD_UID_LEN])
{
	if (n == 32 && is_lower_hex(s, n)) {
		memcpy(out, s, n);
		out[n] = '\0';
		return true;
	}
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != sep : !is_lower_hex(s + i, 1))
			return false;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] == sep ? '-' : s[i];
	out[n] = '\0';
	return true;
}

/* "pod<uid>" (cgroupfs) or "...kubepods...-pod<uid_>.slice" (systemd). */
static bool pod_component(const char *s, size_t n, char out[HF_POD_UID_LEN])
{
	if (has_prefix(s, n, "pod"))
		return pod_uid(s + 3, n - 3, '-', out);
	if (has_suffix(s, n, ".slice")) {
		size_t body = n - 6;

		/* The last "-pod" of the name starts the UID. */
		for (size_t i = body; i >= 4; i--) {
			if (memcmp(s + i - 4, "-pod", 4) == 0)
				return contains(s, i - 4, "kubepods") &&
				       pod_uid(s + i, body - i, '_', out);
		}
	}
	return false;
}

/* "<id>", "cri-containerd-<id>.scope", "crio-<id>.scope", "docker-<id>.scope". */
static bool container_component(const char *s, size_t n, char out[HF_CONTAINER_ID_LEN])
{
	static const char *const prefixes[] = {"cri-containerd-", "crio-", "docker-"};

	if (has_suffix(s, n, ".scope"))
		n -= 6;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (has_prefix(s, n, prefixes[i])) {
			s += strlen(prefixes[i]);
			n -= strlen(prefixes[i]);
			break;
		}
	}
	if (n != HF_CONTAINER_ID_LEN - 1 || !is_lower_hex(s, n))
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

bool hf_cgroup_kube(const char *path, size_t len, char pod[HF_POD_UID_LEN],
		    char container[HF_CONTAINER_ID_LEN])
{
	const char *s = path, *end = path + len;
	bool below_kubepods = false, in_pod = false;

	pod[0] = '\0';
	container[0] = '\0';
	while (s < end) {
		const char *slash = memchr(s, '/', (size_t)(end - s));
		size_t n = slash ? (size_t)(slash - s) : (size_t)(end - s);

		if (in_pod) {
			/* The pod's first component below it, if it is a container's. */
			if (n)
				container_component(s, n, container);
			return true;
		}
		if (n && below_kubepods && pod_component(s, n, pod)) {
			in_pod = true;
		} else if (contains(s, n, "kubepods")) {
			below_kubepods = true;
		}
		if (!slash)
			break;
		s = slash + 1;
	}
	return in_pod;
}

static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		lo = s[0] == 0xe0 ? 0xa0 : 0x80;
		hi = s[0] == 0xed ? 0x9f : 0xbf;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		lo = s[0] == 0xf0 ? 0x90 : 0x80;
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* The path made printable into out; false when it does not fit. */
static bool printable(const char *path, size_t n, char out[HF_CGROUP_LEN])
{
	const unsigned char *s = (const unsigned char *)path;
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		size_t len = utf8_len(s + i, n - i);

		if (len == 1 && (s[i] < 0x20 || s[i] == 0x7f))
			len = 0;
		if (o + (len ? len : 1) >= HF_CGROUP_LEN)
			return false;
		if (len) {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
	return true;
}

enum { PICK_V2, PICK_SYSTEMD, PICK_MEMORY, PICK_FIRST, NR_PICKS };

int hf_cgroup_parse(const char *text, size_t len, struct hf_cgroup *out)
{
	struct line picks[NR_PICKS];
	bool have[NR_PICKS] = {false};
	const char *s = text, *end = text + len;
	const struct line *chosen = NULL;

	memset(out, 0, sizeof(*out));
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct line l;

		if (parse_line(s, n, &l)) {
			int which[] = {l.v2 ? PICK_V2 : -1,
				       has_controller(&l, "name=systemd") ? PICK_SYSTEMD : -1,
				       has_controller(&l, "memory") ? PICK_MEMORY : -1, PICK_FIRST};

			for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
				if (which[i] >= 0 && !have[which[i]]) {
					picks[which[i]] = l;
					have[which[i]] = true;
				}
			}
		}
		if (!nl)
			break;
		s = nl + 1;
	}
	for (int i = 0; i < NR_PICKS && !chosen; i++)
		if (have[i] && hf_cgroup_kube(picks[i].path, picks[i].path_len, out->pod_uid,
					      out->container_id))
			chosen = &picks[i];
	for (int i = 0; i < NR_PICKS && !chosen; i++)
		if (have[i])
			chosen = &picks[i];
	if (!chosen)
		return -EINVAL;
	if (!printable(chosen->path, chosen->path_len, out->path))
		out->path[0] = '\0';
	return 0;
}

int hf_cgroup_read(pid_t pid, struct hf_cgroup *out)
{
	char path[64];
	char *buf;
	size_t len = 0;
	int fd, err = 0;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	buf = malloc(CGROUP_FILE_MAX);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < CGROUP_FILE_MAX) {
		ssize_t got = read(fd, buf + len, CGROUP_FILE_MAX - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = errno == ESRCH ? -ESRCH : -errno;
			break;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	/* A file cut at the cap ends in a cut line: only whole lines count. */
	if (!err && len == CGROUP_FILE_MAX) {
		while (len && buf[len - 1] != '\n')
			len--;
	}
	if (!err)
		err = hf_cgroup_parse(buf, len, out);
	free(buf);
	return err;
}
