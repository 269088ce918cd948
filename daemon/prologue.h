/* SPDX-License-Identifier: MIT */
/*
 * prologue.h - where in a function's first instructions an entry uprobe is
 * cheap and still sees the arguments.
 *
 * A uprobe costs ~0.5 us a hit when the kernel emulates the probed
 * instruction and ~10 us when it must single-step it out of line.  Linux 6.18
 * (arch/x86/kernel/uprobes.c, branch_setup_xol_ops and push_setup_xol_ops)
 * emulates exactly:
 *   - jmp rel8/rel32 (eb, e9), call rel32 (e8), jcc rel8/rel32 (70-7f,
 *     0f 80-8f), none of them with a 0x66 prefix;
 *   - the kernel's own nops x86_nops[1..8] byte for byte (90, 66 90, 0f 1f 00,
 *     0f 1f 40 00, 0f 1f 44 00 00, 66 0f 1f 44 00 00, 0f 1f 80 00000000,
 *     0f 1f 84 00 00000000) and any prefixes followed by 0x90;
 *   - push of a 64-bit register: 50-57, or 41 50-57 (r8-r15), nothing else.
 * Everything else is single-stepped; an instruction with a cs/ds/es/ss or lock
 * prefix (notrack jmp, the 9-11 byte nops) cannot be probed at all.
 */
#ifndef HF_PROLOGUE_H
#define HF_PROLOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Argument registers an entry probe reads (System V: rdi, rsi, rdx). */
#define HF_ARG_RDI 0x1u
#define HF_ARG_RSI 0x2u
#define HF_ARG_RDX 0x4u

/* How far from the symbol the search looks, in instructions. */
#define HF_PROLOGUE_MAX_INSNS 8

struct hf_prologue {
	uint64_t entry_delta; /* bytes from the symbol to the chosen instruction */
	bool emulated;        /* the kernel emulates the chosen instruction */
	bool stack_unchanged; /* nothing before it moved rsp: [rsp] is the return address */
	char insn[48];        /* "je 0x98fb8": the chosen instruction */
};

/* True when Linux 6.18 emulates the one instruction in code[0..len) (len = its length). */
bool hf_insn_emulated(const uint8_t *code, size_t len);

/*
 * Decodes code[0..len), the first bytes of a function at virtual address
 * vaddr, and chooses the first instruction that the kernel emulates, that
 * every call reaches (straight-line code from the start; a branch may be the
 * site but ends the search) and before which no instruction wrote a register
 * in args or memory other than the stack.  Falls back to the symbol itself.
 * Returns 0, or -EINVAL when not even the first instruction decodes.
 */
int hf_prologue_choose(const uint8_t *code, size_t len, uint64_t vaddr, unsigned args,
		       struct hf_prologue *out);

#endif /* HF_PROLOGUE_H */
