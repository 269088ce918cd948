// SPDX-License-Identifier: MIT
/*
 * fuzz_procfs - the libFuzzer target for the /proc parsers: a process's
 * stat line (hf_proc_parse_stat), /proc/stat's btime (hf_proc_parse_btime),
 * status's VmRSS (hf_proc_parse_status_rss), smaps and maps
 * (hf_proc_parse_smaps, which the heap regions are found from) and the
 * search for libc in maps (hf_libc_map_parse).  A target names its own
 * comm and its files' paths, which these files print, so their text is the
 * target's as much as the kernel's.  The first byte of an input picks the
 * parser, the rest is the file (tests/fuzz/procfs/ holds real ones from
 * this system, each behind its byte).
 *
 * Beyond not crashing: what is parsed out of a file (a comm, a path) is a
 * piece of it; a mapping written back in the kernel's format parses to the
 * same mapping; sizes are whole KiB; libc's host path is its path under
 * /proc/PID/root.  abort() marks a result that breaks them.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_map.h"
#include "procfs.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum which { STAT, BTIME, STATUS, SMAPS, LIBC_MAPS, NR_WHICH };

#define PID 4242

static const char *text; /* the input as a C string */
static size_t text_len;

static void check_stat(void)
{
	struct hf_proc_stat st;
	const char *open, *close;
	size_t len;

	if (hf_proc_parse_stat(text, &st) != 0)
		return;
	open = strchr(text, '(');
	close = strrchr(text, ')');
	CHECK(st.pid > 0 && open && close && close > open);
	/* The comm is what the parentheses hold, cut to the kernel's length. */
	len = strlen(st.comm);
	CHECK(len <= HF_COMM_LEN && len <= (size_t)(close - open - 1));
	CHECK(memcmp(st.comm, open + 1, len) == 0);
	CHECK(st.state != '\0' && strchr(close + 1, st.state) != NULL);
}

static void check_btime(FILE *f)
{
	uint64_t btime = 0;

	if (hf_proc_parse_btime(f, &btime) == 0)
		CHECK(strstr(text, "btime") != NULL);
}

static void check_status(FILE *f)
{
	uint64_t rss = 1;

	if (hf_proc_parse_status_rss(f, &rss) == 0)
		CHECK(rss % 1024 == 0 && strstr(text, "VmRSS:") != NULL);
}

struct collected {
	struct hf_mapping m[2];
	size_t n;
};

static int collect(const struct hf_mapping *m, void *arg)
{
	struct collected *c = arg;

	if (c->n < 2)
		c->m[c->n] = *m;
	c->n++;
	return 0;
}

/* Writes m as the kernel writes a maps line and parses it back. */
static void round_trip(const struct hf_mapping *m)
{
	struct collected back = {.n = 0};
	char line[HF_PATH_LEN + 128];
	FILE *f;
	int n;

	n = snprintf(line, sizeof(line),
		     "%" PRIx64 "-%" PRIx64 " %s %08" PRIx64 " 00:00 %" PRIu64 " %s\n", m->start,
		     m->end, m->perms, m->offset, m->inode, m->path);
	f = fmemopen(line, (size_t)n, "r");
	if (!f)
		abort();
	CHECK(hf_proc_parse_smaps(f, collect, &back) == 0 && back.n == 1);
	fclose(f);
	CHECK(back.m[0].start == m->start && back.m[0].end == m->end &&
	      back.m[0].offset == m->offset && back.m[0].inode == m->inode &&
	      strcmp(back.m[0].perms, m->perms) == 0 && strcmp(back.m[0].path, m->path) == 0);
}

static int check_mapping(const struct hf_mapping *m, void *arg)
{
	size_t *count = arg;

	(*count)++;
	CHECK(memchr(m->perms, '\0', sizeof(m->perms)) && strlen(m->perms) == 4);
	CHECK(memchr(m->path, '\0', sizeof(m->path)) && !strchr(m->path, '\n'));
	CHECK(m->rss_bytes == HF_UNKNOWN || m->rss_bytes % 1024 == 0);
	CHECK(memmem(text, text_len, m->path, strlen(m->path)) != NULL);
	CHECK(memmem(text, text_len, m->perms, 4) != NULL);
	round_trip(m);
	return 0;
}

static void check_smaps(FILE *f)
{
	size_t count = 0;

	CHECK(hf_proc_parse_smaps(f, check_mapping, &count) == 0);
}

static void check_libc_maps(FILE *f)
{
	struct hf_libc_map map;
	char host[HF_PATH_LEN];

	if (hf_libc_map_parse(f, PID, &map) != 0)
		return;
	CHECK(map.bias != 0 && map.data_start != 0 && map.target_path[0]);
	CHECK(memchr(map.target_path, '\0', sizeof(map.target_path)));
	CHECK(memmem(text, text_len, map.target_path, strlen(map.target_path)) != NULL);
	snprintf(host, sizeof(host), "/proc/%d/root%s", PID, map.target_path);
	CHECK(strcmp(host, map.path) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;
	FILE *f;

	if (size < 1)
		return 0;
	/* The files are text: a NUL ends what the parsers see, as it would end a line. */
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	text = buf;
	text_len = strlen(buf);
	f = fmemopen(buf, text_len ? text_len : 1, "r");
	if (!f)
		abort();
	switch (data[0] % NR_WHICH) {
	case STAT:
		check_stat();
		break;
	case BTIME:
		check_btime(f);
		break;
	case STATUS:
		check_status(f);
		break;
	case SMAPS:
		check_smaps(f);
		break;
	case LIBC_MAPS:
		check_libc_maps(f);
		break;
	}
	fclose(f);
	free(buf);
	return 0;
}
