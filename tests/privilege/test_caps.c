// SPDX-License-Identifier: MIT
/*
 * test_caps.c - which capability heapfragd names as missing, for each way
 * it can be run: the table of daemon/caps.c read back through its only
 * door, hf_caps_missing().
 */
#include <linux/capability.h>
#include <string.h>

#include "caps.h"
#include "check.h"

#define BIT(c) (1ULL << (c))
/* Everything exact mode needs as a non-root user with -e. */
#define FULL                                                                                   \
	(BIT(CAP_BPF) | BIT(CAP_PERFMON) | BIT(CAP_SYS_PTRACE) | BIT(CAP_SYS_ADMIN) |          \
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
		{CAP_SYS_PTRACE, "CAP_SYS_PTRACE"},     {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
		{CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"}, {CAP_KILL, "CAP_KILL"},
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

int main(void)
{
	test_the_full_sets_lack_nothing();
	test_each_capability_taken_away_is_named();
	test_what_depends_on_the_run();
	test_each_need_says_why();
	return hf_test_done();
}
