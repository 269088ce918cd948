// SPDX-License-Identifier: MIT
/*
 * fuzz_prologue - the libFuzzer target for the machine-code readers: the
 * prologue decoder (daemon/prologue.c), which picks where an entry probe
 * goes in an allocator's first instructions, and the return-address check
 * (daemon/return_address.c), which decides whether the bytes before an
 * address on a target's stack end with a call.  Both read code from files
 * and memory the target controls.  Each input is one byte of argument
 * registers (HF_ARG_*, the low three bits) and then the code
 * (tests/fuzz/prologue/ holds real allocator entries and call sites from
 * this system's libraries).
 *
 * Beyond not crashing, with capstone as an independent decoder: the chosen
 * instruction starts on an instruction boundary inside the code and is the
 * one the result names; an instruction reported as emulated is one the
 * kernel's rules emulate; and hf_follows_call() is true exactly when the
 * bytes end with an "e8 rel32" call or an "ff /2" indirect call (with at
 * most a REX prefix), which capstone decodes as a call of that length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "prologue.h"
#include "return_address.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The window probe_site.c reads at a symbol. */
#define CODE_WINDOW 96
#define VADDR       0x7f0000001000ull

static csh cs;

/* The first instruction at code[0..len) as capstone decodes it; 0 when none. */
static size_t decode(const uint8_t *code, size_t len, uint64_t addr, cs_insn **insn)
{
	size_t n = cs_disasm(cs, code, len, addr, 1, insn);

	return n == 1 ? (*insn)[0].size : 0;
}

static void check_prologue(const uint8_t *code, size_t len, unsigned args)
{
	struct hf_prologue pro;
	uint64_t at = 0;
	cs_insn *insn = NULL;
	char name[48];
	int err;

	err = hf_prologue_choose(code, len, VADDR, args, &pro);
	if (err) {
		/* Only code with not even one instruction is refused. */
		CHECK(decode(code, len, VADDR, &insn) == 0);
		return;
	}
	CHECK(memchr(pro.insn, '\0', sizeof(pro.insn)) != NULL);
	CHECK(pro.entry_delta < len);
	/* The chosen instruction is reached by decoding from the symbol: a boundary. */
	while (at < pro.entry_delta) {
		size_t n = decode(code + at, len - at, VADDR + at, &insn);

		CHECK(n > 0);
		cs_free(insn, 1);
		insn = NULL;
		at += n;
	}
	CHECK(at == pro.entry_delta);
	CHECK(decode(code + at, len - at, VADDR + at, &insn) > 0);
	snprintf(name, sizeof(name), "%s%s%s", insn[0].mnemonic, insn[0].op_str[0] ? " " : "",
		 insn[0].op_str);
	CHECK(strcmp(name, pro.insn) == 0);
	CHECK(pro.emulated == hf_insn_emulated(code + at, insn[0].size));
	/* Moving off the symbol is only worth it for an instruction the kernel emulates. */
	if (pro.entry_delta > 0)
		CHECK(pro.emulated);
	cs_free(insn, 1);
}

/* The call of exactly k bytes ending at len that hf_follows_call() knows, by capstone. */
static bool ends_with_call(const uint8_t *code, size_t len, size_t k)
{
	const uint8_t *at = code + len - k;
	size_t pre = (at[0] & 0xf0) == 0x40 ? 1 : 0;
	cs_insn *insn = NULL;
	bool call;

	/* The forms the check claims: e8 rel32, or [REX] ff /2. */
	if (!(k == 5 && at[0] == 0xe8) && !(pre + 1 < k && at[pre] == 0xff))
		return false;
	call = decode(at, k, 0x1000, &insn) == k && insn[0].id == X86_INS_CALL;
	if (insn)
		cs_free(insn, 1);
	return call;
}

static void check_follows_call(const uint8_t *code, size_t len)
{
	bool expect = false;

	for (size_t k = 2; k <= HF_MAX_CALL_LEN && k <= len; k++)
		expect |= ends_with_call(code, len, k);
	CHECK(hf_follows_call(code, len) == expect);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned args;
	size_t len;

	if (!cs) {
		if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
			abort();
	}
	if (size < 1)
		return 0;
	args = data[0] & (HF_ARG_RDI | HF_ARG_RSI | HF_ARG_RDX);
	data++;
	size--;
	len = size < CODE_WINDOW ? size : CODE_WINDOW;
	check_prologue(data, len, args);
	/* The stack check reads the HF_MAX_CALL_LEN bytes before a return address. */
	check_follows_call(data, size < HF_MAX_CALL_LEN ? size : HF_MAX_CALL_LEN);
	check_follows_call(data, size);
	return 0;
}
