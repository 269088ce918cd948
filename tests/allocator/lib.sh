# SPDX-License-Identifier: MIT
# lib.sh - shell side of libptm's black-box tests: run a command on glibc and
# on libptm, prove the preload happened, and count checks like check.h.
#
# Sourced by the real-program tests.  on_glibc and on_ptm run a command with
# its stdout and stderr in files; on_ptm also has the dynamic linker log every
# symbol binding (LD_DEBUG=bindings, one file per process), and ptm_proof then
# requires every process of the run to have bound malloc to libptm.so and no
# allocation function to anything else.  A preload that silently did not
# happen fails the test.

set -u

ptm_passed=0
ptm_failed=0
PTM_LIB="${HF_BUILD_DIR:-}/lib/libptm.so"
PTM_TMP=$(mktemp -d /tmp/hf-ptm-test.XXXXXX)
PTM_CLEANUP=""
# glibc's libc.so.6, as the dynamic linker names it in its binding log.
PTM_LIBC=$(ldd /bin/sh | awk '$1 == "libc.so.6" { print $3 }')
# Debian's interpreter, not whichever python3 is first in PATH (a pyenv shim
# there is a shell script, which would put bash under test instead).
PTM_PYTHON=/usr/bin/python3

ptm_cleanup() {
	if [ -n "$PTM_CLEANUP" ]; then
		eval "$PTM_CLEANUP"
	fi
	rm -rf "$PTM_TMP"
}
trap ptm_cleanup EXIT

# check DESCRIPTION COMMAND... : counts a check; prints why it failed.
check() {
	local desc=$1
	shift
	if "$@"; then
		ptm_passed=$((ptm_passed + 1))
		echo "ok: $desc"
		return 0
	fi
	ptm_failed=$((ptm_failed + 1))
	echo "CHECK failed: $desc" >&2
	return 1
}

# Prints the closing line and exits with the test's status.
ptm_done() {
	echo "$ptm_passed passed, $ptm_failed failed"
	[ "$ptm_failed" -eq 0 ]
	exit $?
}

# True when libptm.so exists; says clearly when it does not.
ptm_built() {
	if [ -z "${HF_BUILD_DIR:-}" ] || [ ! -f "$PTM_LIB" ]; then
		echo "libptm.so not built: $PTM_LIB does not exist" >&2
		return 1
	fi
}

# on_glibc NAME COMMAND... : runs COMMAND on glibc's malloc, output in
# $PTM_TMP/NAME.out and NAME.err; returns its status.  Its bindings are
# logged as well, so both runs pay the same and glibc_proof can check them.
on_glibc() {
	local name=$1
	shift
	rm -f "$PTM_TMP/ld.$name".*
	env -u LD_PRELOAD LD_DEBUG=bindings LD_DEBUG_OUTPUT="$PTM_TMP/ld.$name" "$@" \
		>"$PTM_TMP/$name.out" 2>"$PTM_TMP/$name.err"
}

# on_ptm NAME COMMAND... : runs COMMAND with libptm preloaded, output in
# $PTM_TMP/NAME.out and NAME.err; returns its status.
on_ptm() {
	local name=$1
	shift
	rm -f "$PTM_TMP/ld.$name".*
	env LD_PRELOAD="$PTM_LIB" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$PTM_TMP/ld.$name" "$@" \
		>"$PTM_TMP/$name.out" 2>"$PTM_TMP/$name.err"
}

# bound_to NAME LIB : every process of run NAME bound malloc to LIB, and
# every allocation function to LIB or to an object that forwards it there (a
# non-PIE program that takes malloc's address owns a canonical PLT stub for
# it, which libraries then bind to).
bound_to() {
	local name=$1 lib=$2 f n=0 bad=0
	for f in "$PTM_TMP/ld.$name".*; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		if ! awk -v lib="$lib" -v logf="$(basename "$f")" '
			$2 == "binding" && $10 == "symbol" &&
			$11 ~ /^`(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size)'"'"'$/ {
				nb++
				src[nb] = $4; dst[nb] = $7; sym[nb] = $11
				if ($7 == lib) {
					forwards[$4, $11] = 1
					if ($11 == "\140malloc\047")
						to_lib++
				}
			}
			END {
				if (!to_lib) {
					print logf ": malloc was never bound to " lib > "/dev/stderr"
					exit 1
				}
				for (i = 1; i <= nb; i++)
					if (dst[i] != lib && !((dst[i], sym[i]) in forwards)) {
						print logf ": " src[i] " bound " sym[i] " to " dst[i] > "/dev/stderr"
						exit 1
					}
			}' "$f"; then
			bad=1
		fi
	done
	if [ "$n" -eq 0 ]; then
		echo "run $name left no dynamic linker log: nothing was preloaded" >&2
		return 1
	fi
	[ "$bad" -eq 0 ] || return 1
	echo "run $name: $n process(es), every one bound malloc to $lib"
}

# ptm_proof NAME : run NAME really ran on libptm.
ptm_proof() {
	bound_to "$1" "$PTM_LIB"
}

# glibc_proof NAME : run NAME really ran on glibc's malloc.
glibc_proof() {
	bound_to "$1" "$PTM_LIBC"
}

# same_output A B : runs A and B wrote byte-identical stdout.
same_output() {
	if cmp -s "$PTM_TMP/$1.out" "$PTM_TMP/$2.out"; then
		return 0
	fi
	echo "stdout of $1 and $2 differ:" >&2
	diff "$PTM_TMP/$1.out" "$PTM_TMP/$2.out" | head -20 >&2
	return 1
}

# show NAME : prints a run's stderr, for the log of a failed run.
show() {
	if [ -s "$PTM_TMP/$1.err" ]; then
		echo "--- stderr of $1:" >&2
		tail -20 "$PTM_TMP/$1.err" >&2
	fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	"$PTM_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
