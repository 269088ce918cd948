#!/bin/sh
# SPDX-License-Identifier: MIT
#
# minidebuginfo.sh LIB OUT [unterminated] - writes OUT: LIB stripped of
# every symbol table and DWARF, carrying instead a .gnu_debugdata section,
# the xz-compressed ELF file that libdwfl takes symbols from (Fedora's
# "MiniDebugInfo"), which here holds only .symtab with lib_inner.  With
# "unterminated", that file's string table ends without its last NUL, as a
# hostile container's file might.
set -eu

lib=$1
out=$2
mode=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

objcopy --only-keep-debug "$lib" "$tmp/debug"
echo lib_inner > "$tmp/keep"
objcopy --strip-all --remove-section .gdb_index --remove-section .comment \
	--keep-symbols="$tmp/keep" "$tmp/debug" "$tmp/mini"
python3 - "$tmp/mini" "$mode" <<'PY'
import lzma, struct, sys

path, mode = sys.argv[1], sys.argv[2]
elf = bytearray(open(path, "rb").read())
shoff, = struct.unpack_from("<Q", elf, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3a)
shdrs = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
names = shdrs[shstrndx][4]
for name, kind, flags, addr, off, size, *rest in shdrs:
	if elf[names + name:elf.index(0, names + name)] == b".strtab" and mode == "unterminated":
		elf[off + size - 1] = ord("x")
open(path + ".xz", "wb").write(lzma.compress(bytes(elf)))
PY
objcopy --strip-all "$lib" "$tmp/stripped"
objcopy --add-section .gnu_debugdata="$tmp/mini.xz" "$tmp/stripped" "$out"
