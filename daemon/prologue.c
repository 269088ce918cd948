// SPDX-License-Identifier: MIT
#include "prologue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <capstone/capstone.h>

/* x86_nops[] of arch/x86/kernel/alternative.c for 64-bit, lengths 1 to 8. */
static const uint8_t kernel_nops[9][8] = {
	[1] = {0x90},
	[2] = {0x66, 0x90},
	[3] = {0x0f, 0x1f, 0x00},
	[4] = {0x0f, 0x1f, 0x40, 0x00},
	[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00},
	[6] = {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
	[7] = {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
	[8] = {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
};

static bool is_legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x26:
	case 0x2e:
	case 0x36:
	case 0x3e:
	case 0x64:
	case 0x65:
	case 0x66:
	case 0x67:
	case 0xf0:
	case 0xf2:
	case 0xf3:
		return true;
	default:
		return false;
	}
}

/* The prefixes the kernel's is_prefix_bad() refuses to probe at all. */
static bool is_bad_prefix(uint8_t b)
{
	return b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0xf0;
}

bool hf_insn_emulated(const uint8_t *code, size_t len)
{
	size_t i = 0;
	bool osize = false;
	uint8_t rex = 0, op;

	while (i < len && is_legacy_prefix(code[i])) {
		if (is_bad_prefix(code[i]))
			return false;
		osize |= code[i] == 0x66;
		i++;
	}
	if (i < len && (code[i] & 0xf0) == 0x40)
		rex = code[i++];
	if (i >= len)
		return false;
	op = code[i];

	/* branch_setup_xol_ops(): the kernel's nops, matched byte for byte. */
	if (len <= 8 && memcmp(code, kernel_nops[len], len) == 0)
		return true;
	/*
	 * "prefix* + nop" is emulated as a nop.  With REX.B, 0x90 is xchg with
	 * r8, which 6.18 would wrongly skip: never choose it.
	 */
	if (op == 0x90)
		return !(rex & 0x1);
	if (!osize) {
		if (op == 0xeb || op == 0xe9 || op == 0xe8)
			return true;
		if (op >= 0x70 && op <= 0x7f)
			return true;
		if (op == 0x0f && i + 1 < len && code[i + 1] >= 0x80 && code[i + 1] <= 0x8f)
			return true;
	}
	/* push_setup_xol_ops(): push reg with no prefix, or with exactly REX 0x41. */
	if (len == 1 && op >= 0x50 && op <= 0x57)
		return true;
	if (len == 2 && code[0] == 0x41 && code[1] >= 0x50 && code[1] <= 0x57)
		return true;
	return false;
}

static unsigned arg_bits(uint16_t reg)
{
	switch (reg) {
	case X86_REG_RDI:
	case X86_REG_EDI:
	case X86_REG_DI:
	case X86_REG_DIL:
		return HF_ARG_RDI;
	case X86_REG_RSI:
	case X86_REG_ESI:
	case X86_REG_SI:
	case X86_REG_SIL:
		return HF_ARG_RSI;
	case X86_REG_RDX:
	case X86_REG_EDX:
	case X86_REG_DX:
	case X86_REG_DL:
	case X86_REG_DH:
		return HF_ARG_RDX;
	default:
		return 0;
	}
}

static bool is_stack_reg(uint16_t reg)
{
	return reg == X86_REG_RSP || reg == X86_REG_ESP || reg == X86_REG_SP || reg == X86_REG_SPL;
}

/* Anything that leaves straight-line code ends the search. */
static bool ends_straight_line(csh cs, const cs_insn *insn)
{
	switch (insn->id) {
	case X86_INS_SYSCALL:
	case X86_INS_SYSENTER:
	case X86_INS_HLT:
	case X86_INS_UD2:
	case X86_INS_INT:
	case X86_INS_INT3:
	case X86_INS_INTO:
		return true;
	default:
		break;
	}
	return cs_insn_group(cs, insn, CS_GRP_JUMP) || cs_insn_group(cs, insn, CS_GRP_CALL) ||
	       cs_insn_group(cs, insn, CS_GRP_RET) || cs_insn_group(cs, insn, CS_GRP_INT) ||
	       cs_insn_group(cs, insn, CS_GRP_IRET);
}

/* An explicit memory write not through rsp might change what a probe reads. */
static bool writes_non_stack_memory(const cs_insn *insn)
{
	const cs_x86 *x86 = &insn->detail->x86;
	int i;

	for (i = 0; i < x86->op_count; i++) {
		const cs_x86_op *op = &x86->operands[i];

		if (op->type == X86_OP_MEM && (op->access & CS_AC_WRITE) &&
		    !is_stack_reg((uint16_t)op->mem.base))
			return true;
	}
	return false;
}

/* "je 0x98fb8"; a long operand list is cut, which the logs can bear. */
static void describe(const cs_insn *insn, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s%s", insn->mnemonic, insn->op_str[0] ? " " : "",
			 insn->op_str);

	if (n < 0)
		buf[0] = '\0';
}

int hf_prologue_choose(const uint8_t *code, size_t len, uint64_t vaddr, unsigned args,
		       struct hf_prologue *out)
{
	const uint8_t *p = code;
	uint64_t addr = vaddr;
	unsigned written = 0;
	bool stack_moved = false;
	cs_insn *insn = NULL;
	csh cs = 0;
	int n, decoded = 0, err = 0;

	memset(out, 0, sizeof(*out));
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(cs);
	if (!insn) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (n = 0; n < HF_PROLOGUE_MAX_INSNS; n++) {
		const uint8_t *at = p;
		cs_regs rd, wr;
		uint8_t nrd = 0, nwr = 0, i;

		if (!cs_disasm_iter(cs, &p, &len, &addr, insn))
			break;
		decoded++;
		if (n == 0) {
			/* The fallback: the symbol itself. */
			out->emulated = hf_insn_emulated(at, insn->size);
			out->stack_unchanged = true;
			describe(insn, out->insn, sizeof(out->insn));
		}
		if (hf_insn_emulated(at, insn->size) && !(written & args)) {
			out->entry_delta = insn->address - vaddr;
			out->emulated = true;
			out->stack_unchanged = !stack_moved;
			describe(insn, out->insn, sizeof(out->insn));
			break;
		}
		if (ends_straight_line(cs, insn) || writes_non_stack_memory(insn))
			break;
		if (cs_regs_access(cs, insn, rd, &nrd, wr, &nwr) != CS_ERR_OK)
			break;
		for (i = 0; i < nwr; i++) {
			written |= arg_bits(wr[i]);
			stack_moved |= is_stack_reg(wr[i]);
		}
	}
	if (!decoded)
		err = -EINVAL;
cleanup:
	if (insn)
		cs_free(insn, 1);
	cs_close(&cs);
	return err;
}
