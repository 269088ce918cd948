// SPDX-License-Identifier: MIT
/*
 * test_caps.c - which capability heapfragd names as missing, for each way
 * it can be run: the table of daemon/caps.c read back through its only
 * door, hf_caps_missing().  And the systemd unit and the DaemonSet declare
 * exactly what that table needs: enough for every mode, and nothing a mode
 * could do without.
 */
#include <ctype.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "check.h"

#define BIT(c) (1ULL << (c))
/* Everything exact mode needs as a non-root user with -e. */
#define FULL                                                                                       \
	(BIT(CAP_BPF) | BIT(CAP_PERFMON) | BIT(CAP_SYS_PTRACE) | BIT(CAP_SYS_ADMIN) |              \
	 BIT(CAP_DAC_OVERRIDE) | BIT(CAP_KILL))
#define PASSIVE (BIT(CAP_BPF) | BIT(CAP_PERFMON) | BIT(CAP_SYS_PTRACE) | BIT(CAP_DAC_READ_SEARCH))

static const char *missing(uint64_t eff, bool root, bool exact, bool watch)
{
	struct hf_caps_use use = {.root = root, .exact = exact, .watch_exec = watch};
	const struct hf_cap_need *n = hf_caps_missing(eff, &use);

	return n ? n->name : "none";
}

static void test_the_full_sets_lack_nothing(void)
{
	CHECK_STR_EQ(missing(FULL, false, true, true), "none");
	CHECK_STR_EQ(missing(PASSIVE, false, false, false), "none");
	CHECK_STR_EQ(missing(~0ULL, true, true, true), "none");
	/* CAP_DAC_OVERRIDE covers the reads of passive mode too. */
	CHECK_STR_EQ(missing((PASSIVE & ~BIT(CAP_DAC_READ_SEARCH)) | BIT(CAP_DAC_OVERRIDE), false,
			     false, false),
		     "none");
}

static void test_each_capability_taken_away_is_named(void)
{
	static const struct {
		int cap;
		const char *name;
	} full[] = {
		{CAP_SYS_PTRACE, "CAP_SYS_PTRACE"},
		{CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
		{CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
		{CAP_KILL, "CAP_KILL"},
	};

	for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++)
		CHECK_STR_EQ(missing(FULL & ~BIT(full[i].cap), false, true, true), full[i].name);
	/* With CAP_SYS_ADMIN, the kernel needs neither CAP_BPF nor CAP_PERFMON. */
	CHECK_STR_EQ(missing(FULL & ~BIT(CAP_BPF) & ~BIT(CAP_PERFMON), false, true, true), "none");
	CHECK_STR_EQ(missing(PASSIVE & ~BIT(CAP_BPF), false, false, false), "CAP_BPF");
	CHECK_STR_EQ(missing(PASSIVE & ~BIT(CAP_PERFMON), false, false, false), "CAP_PERFMON");
	CHECK_STR_EQ(missing(PASSIVE & ~BIT(CAP_SYS_PTRACE), false, false, false),
		     "CAP_SYS_PTRACE");
	CHECK_STR_EQ(missing(PASSIVE & ~BIT(CAP_DAC_READ_SEARCH), false, false, false),
		     "CAP_DAC_READ_SEARCH");
	/* Nothing at all: the first of the table. */
	CHECK_STR_EQ(missing(0, false, true, true), "CAP_BPF");
	CHECK_STR_EQ(missing(0, true, false, false), "CAP_BPF");
}

static void test_what_depends_on_the_run(void)
{
	/* Passive mode opens no uprobe perf event and writes nothing into tracefs. */
	CHECK_STR_EQ(missing(PASSIVE, false, false, false), "none");
	CHECK_STR_EQ(missing(PASSIVE, false, true, false), "CAP_SYS_ADMIN");
	/* Root owns tracefs: no DAC capability is needed. */
	CHECK_STR_EQ(missing(FULL & ~BIT(CAP_DAC_OVERRIDE), true, true, true), "none");
	CHECK_STR_EQ(missing(PASSIVE & ~BIT(CAP_DAC_READ_SEARCH), true, false, false), "none");
	/* Only -e resumes processes held at exec. */
	CHECK_STR_EQ(missing(FULL & ~BIT(CAP_KILL), false, true, false), "none");
	CHECK_STR_EQ(missing(PASSIVE & ~BIT(CAP_KILL), false, false, true), "CAP_KILL");
}

static void test_each_need_says_why(void)
{
	struct hf_caps_use use = {.exact = true, .watch_exec = true};
	const struct hf_cap_need *n;

	for (int cap = 0; cap < 41; cap++) {
		n = hf_caps_missing(FULL & ~BIT(cap), &use);
		if (n)
			CHECK_MSG(n->why && strlen(n->why) > 10 && n->cap == cap,
				  "capability %d is named as %s, number %d", cap, n->name, n->cap);
	}
}

/*
 * A declared set is right when it is enough for a non-root heapfragd in
 * either mode with -e, and each of its capabilities is needed by one of
 * them (CAP_BPF and CAP_PERFMON in passive mode, where nothing needs
 * CAP_SYS_ADMIN, which would stand in for them).
 */
static void check_declared(const char *what, uint64_t set, int unknown)
{
	struct hf_caps_use exact = {.exact = true, .watch_exec = true};
	struct hf_caps_use passive = {.exact = false, .watch_exec = true};
	const struct hf_cap_need *n;

	CHECK_MSG(unknown == 0, "%s declares %d capabilities heapfragd does not need", what,
		  unknown);
	n = hf_caps_missing(set, &exact);
	CHECK_MSG(!n, "%s lacks %s for exact mode", what, n ? n->name : "");
	n = hf_caps_missing(set, &passive);
	CHECK_MSG(!n, "%s lacks %s for passive mode", what, n ? n->name : "");
	for (int cap = 0; cap < 64; cap++) {
		uint64_t less = set & ~BIT(cap);

		if (!(set & BIT(cap)))
			continue;
		CHECK_MSG(hf_caps_missing(less, &exact) ||
				  hf_caps_missing(less & ~BIT(CAP_SYS_ADMIN), &passive),
			  "%s declares capability %d, which no mode needs", what, cap);
	}
}

/* The capabilities named after key in one line of text, separated by blanks. */
static uint64_t parse_caps_line(const char *text, const char *key, int *unknown)
{
	const char *p = strstr(text, key);
	uint64_t set = 0;
	char name[64];
	int len;

	CHECK_MSG(p != NULL, "no %s", key);
	if (!p)
		return 0;
	p += strlen(key);
	while (sscanf(p, " %63[A-Z_]%n", name, &len) == 1 && *p != '\n') {
		int cap = hf_caps_by_name(name);

		if (cap < 0)
			(*unknown)++;
		else
			set |= BIT(cap);
		p += len;
		while (*p == ' ')
			p++;
	}
	return set;
}

static char *slurp(const char *rel)
{
	const char *src = getenv("HF_SOURCE_DIR");
	char path[1024];
	char *text = NULL;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", src ? src : "..", rel);
	f = fopen(path, "r");
	CHECK_MSG(f != NULL, "cannot read %s", path);
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	if (text && fread(text, 1, (size_t)n, f) != (size_t)n)
		text[0] = '\0';
	fclose(f);
	return text;
}

static void test_the_systemd_unit_declares_exactly_the_needs(void)
{
	char *unit = slurp("daemon/heapfragd.service");
	int unknown = 0, unknown_bound = 0;
	uint64_t ambient, bounding;
	char user[64] = "";
	const char *u;

	if (!unit)
		return;
	ambient = parse_caps_line(unit, "\nAmbientCapabilities=", &unknown);
	bounding = parse_caps_line(unit, "\nCapabilityBoundingSet=", &unknown_bound);
	CHECK_MSG(ambient == bounding && unknown == unknown_bound,
		  "the unit's ambient set %llx is not its bounding set %llx",
		  (unsigned long long)ambient, (unsigned long long)bounding);
	check_declared("heapfragd.service", ambient, unknown);
	u = strstr(unit, "\nUser=");
	if (u)
		sscanf(u, "\nUser=%63s", user);
	CHECK_MSG(user[0] && strcmp(user, "root") != 0 && strcmp(user, "0") != 0,
		  "the unit runs as \"%s\"", user);
	CHECK(strstr(unit, "\nNoNewPrivileges=yes\n") != NULL);
	free(unit);
}

static void test_the_daemonset_declares_exactly_the_needs(void)
{
	char *yaml = slurp("daemon/deploy/heapfrag-daemonset.yaml");
	const char *add, *drop, *p;
	uint64_t set = 0;
	int unknown = 0;
	long uid = 0;

	if (!yaml)
		return;
	add = strstr(yaml, "\n              add:\n");
	drop = strstr(yaml, "\n              drop:\n                - ALL\n");
	CHECK_MSG(drop != NULL, "the DaemonSet does not drop ALL capabilities");
	CHECK_MSG(add != NULL, "the DaemonSet adds no capabilities");
	for (p = add ? strchr(add + 1, '\n') : NULL;
	     p && strncmp(p, "\n                - ", 19) == 0; p = strchr(p + 1, '\n')) {
		char name[64];
		int cap;

		if (sscanf(p + 19, "%63[A-Z_]", name) != 1)
			break;
		cap = hf_caps_by_name(name);
		if (cap < 0)
			unknown++;
		else
			set |= BIT(cap);
	}
	check_declared("the DaemonSet", set, unknown);
	p = strstr(yaml, "runAsUser:");
	CHECK_MSG(p && sscanf(p, "runAsUser: %ld", &uid) == 1 && uid > 0,
		  "the DaemonSet runs as uid %ld", uid);
	CHECK(strstr(yaml, "runAsNonRoot: true") != NULL);
	CHECK_MSG(strstr(yaml, "privileged: true") == NULL, "the DaemonSet is privileged");
	CHECK(strstr(yaml, "allowPrivilegeEscalation: false") != NULL);
	free(yaml);
}

int main(void)
{
	test_the_full_sets_lack_nothing();
	test_each_capability_taken_away_is_named();
	test_what_depends_on_the_run();
	test_each_need_says_why();
	test_the_systemd_unit_declares_exactly_the_needs();
	test_the_daemonset_declares_exactly_the_needs();
	return hf_test_done();
}
