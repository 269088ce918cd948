// SPDX-License-Identifier: MIT
/*
 * hf_follows_call() on the encodings of every call form, on what is not a
 * call, and on every call instruction in libc's code as Capstone decodes it:
 * each must be recognised from the bytes that end at its return address.
 */
#include <capstone/capstone.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "return_address.h"

/* hf_follows_call on bytes, right-aligned in a window of HF_MAX_CALL_LEN. */
static bool ends_with_call(const uint8_t *bytes, size_t n)
{
	uint8_t win[HF_MAX_CALL_LEN];

	memset(win, 0x90, sizeof(win));
	memcpy(win + sizeof(win) - n, bytes, n);
	return hf_follows_call(win, sizeof(win));
}

static void encodings(void)
{
	static const struct {
		uint8_t bytes[8];
		size_t n;
		bool call;
		const char *what;
	} cases[] = {
		{{0xe8, 1, 2, 3, 4}, 5, true, "call rel32"},
		{{0xff, 0xd0}, 2, true, "call *%rax"},
		{{0x41, 0xff, 0xd3}, 3, true, "call *%r11"},
		{{0xff, 0x10}, 2, true, "call *(%rax)"},
		{{0xff, 0x50, 0x08}, 3, true, "call *0x8(%rax)"},
		{{0x41, 0xff, 0x54, 0x24, 0x08}, 5, true, "call *0x8(%r12)"},
		{{0xff, 0x15, 1, 2, 3, 4}, 6, true, "call *disp32(%rip)"},
		{{0xff, 0x90, 1, 2, 3, 4}, 6, true, "call *disp32(%rax)"},
		{{0xff, 0x14, 0x25, 1, 2, 3, 4}, 7, true, "call *abs32"},
		{{0xff, 0x94, 0x24, 1, 2, 3, 4}, 7, true, "call *disp32(%rsp)"},
		{{0x41, 0xff, 0x94, 0xc4, 1, 2, 3, 4}, 8, true, "call *disp32(%r12,%rax,8)"},
		{{0xff, 0xe0}, 2, false, "jmp *%rax"},
		{{0x48, 0x89, 0xc3}, 3, false, "mov %rax,%rbx"},
		{{0xc3}, 1, false, "ret"},
		{{0x00, 0x00}, 2, false, "zeros"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_MSG(ends_with_call(cases[i].bytes, cases[i].n) == cases[i].call, "%s",
			  cases[i].what);
	/* Too few bytes before the address to hold any call. */
	CHECK(!hf_follows_call((const uint8_t *)"\xff", 1));
	CHECK(!hf_follows_call(NULL, 0));
}

/* libc's code as this process maps it: [*start, *end). */
static bool libc_text(uintptr_t *start, uintptr_t *end)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && perms[2] == 'x' &&
		    strstr(line, "/libc.so.6")) {
			*start = lo;
			*end = hi;
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* Every call in libc's code (its first 4 MiB), decoded by Capstone where it maps here. */
static void libc_calls(void)
{
	uintptr_t start = 0, end = 0;
	size_t calls = 0, missed = 0;
	const uint8_t *code, *p;
	cs_insn *insn;
	csh cs;

	if (!libc_text(&start, &end)) {
		CHECK_MSG(0, "libc's code is not mapped in this process");
		return;
	}
	if (end - start > (4u << 20))
		end = start + (4u << 20);
	code = (const uint8_t *)start;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		CHECK_MSG(0, "capstone cannot open");
		return;
	}
	insn = cs_malloc(cs);
	for (p = code; insn && (uintptr_t)p < end;) {
		const uint8_t *at = p;
		size_t left = (size_t)(end - (uintptr_t)p);
		uint64_t addr = (uint64_t)(uintptr_t)p;

		if (!cs_disasm_iter(cs, &p, &left, &addr, insn)) {
			p = at + 1; /* data or padding: step over a byte */
			continue;
		}
		if (insn->id != X86_INS_CALL || at + insn->size < code + HF_MAX_CALL_LEN)
			continue;
		calls++;
		if (!hf_follows_call(at + insn->size - HF_MAX_CALL_LEN, HF_MAX_CALL_LEN) &&
		    missed++ < 5)
			fprintf(stderr, "missed: %s %s (%u bytes)\n", insn->mnemonic, insn->op_str,
				insn->size);
	}
	printf("libc: %zu call instructions, %zu not recognised\n", calls, missed);
	CHECK(calls > 1000);
	CHECK_EQ_U64(missed, 0);
	cs_free(insn, 1);
	cs_close(&cs);
}

int main(void)
{
	encodings();
	libc_calls();
	return hf_test_done();
}
