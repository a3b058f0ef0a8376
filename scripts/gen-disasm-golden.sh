#!/usr/bin/env bash
# Regenerates the golden disassembly corpus in tests/golden/disasm/ from real bpftool.
#
# For every tests/golden/disasm/*.bpf.c this builds BPF objects with clang-19 for
# -mcpu=v3 and -mcpu=v4 (sources named v4*.bpf.c use v4-only instructions and are built
# for v4 only), loads every program of each object into the running kernel with
# `bpftool prog loadall`, and records
#   <src>.<cpu>.<prog>.xlated          `bpftool prog dump xlated id N`
#   <src>.<cpu>.<prog>.xlated-opcodes  `bpftool prog dump xlated id N opcodes`
# plus ENVIRONMENT (kernel, bpftool and clang versions). The committed .o files are the
# inputs that produced the dumps.
#
# Needs root, a kernel that allows bpf(), clang-19 and bpftool. Idempotent: it removes
# its own pins (a unique directory under bpffs) on exit, including on failure, and
# mounts bpffs at /sys/fs/bpf if nothing is mounted there.
#
# Map ids and helper-call immediates in the dumps depend on the running kernel; the
# consumer (crates/isa/tests/disasm_golden.rs) reads them from the recorded bytes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/golden/disasm"
CLANG="${CLANG:-clang-19}"
BPFTOOL="${BPFTOOL:-bpftool}"
BPFFS=/sys/fs/bpf
PIN_ROOT="$BPFFS/kbpf_golden_$$_$(date +%s)"
MULTIARCH_INC="/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"

OUT=""

cleanup() {
	# Only our own directory; each pin is a reference that keeps a program alive.
	if [ -d "$PIN_ROOT" ]; then
		rm -rf -- "$PIN_ROOT"
	fi
	if [ -n "$OUT" ] && [ -d "$OUT" ]; then
		rm -rf -- "$OUT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -ne 0 ]; then
	echo "gen-disasm-golden: must run as root (bpf() and bpffs pins)" >&2
	exit 1
fi
if ! mountpoint -q "$BPFFS" || [ "$(stat -f -c %T "$BPFFS")" != "bpf_fs" ]; then
	echo "gen-disasm-golden: mounting bpffs at $BPFFS" >&2
	mkdir -p "$BPFFS"
	mount -t bpf bpf "$BPFFS"
fi
mkdir -p "$PIN_ROOT"
# Dumps are written to a scratch directory and replace the committed ones only when every
# program has been dumped, so a failed run leaves the corpus as it was.
OUT="$(mktemp -d)"

cd "$DIR"
{
	echo "kernel: $(uname -r)"
	echo "bpftool: $("$BPFTOOL" version | head -n1)"
	echo "clang: $("$CLANG" --version | head -n1)"
} >"$OUT/ENVIRONMENT"

for src in *.bpf.c; do
	base="${src%.bpf.c}"
	case "$base" in
	v4*) cpus="v4" ;;
	*) cpus="v3 v4" ;;
	esac
	for cpu in $cpus; do
		obj="$base.$cpu.o"
		"$CLANG" -O2 -g -target bpf "-mcpu=$cpu" -I"$MULTIARCH_INC" -c "$src" -o "$obj"
		# bpffs rejects '.' in names, so the pin directory uses '_'.
		pin="$PIN_ROOT/${base}_$cpu"
		"$BPFTOOL" prog loadall "$obj" "$pin"
		for prog_pin in "$pin"/*; do
			prog="$(basename "$prog_pin")"
			id="$("$BPFTOOL" -j prog show pinned "$prog_pin" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')"
			if [ -z "$id" ]; then
				echo "gen-disasm-golden: no id for $prog_pin" >&2
				exit 1
			fi
			"$BPFTOOL" prog dump xlated id "$id" >"$OUT/$base.$cpu.$prog.xlated"
			"$BPFTOOL" prog dump xlated id "$id" opcodes >"$OUT/$base.$cpu.$prog.xlated-opcodes"
			echo "$base.$cpu.$prog: id $id, $(grep -c '^ *[0-9]*: ' "$OUT/$base.$cpu.$prog.xlated") printed insns"
		done
	done
done

rm -f -- *.xlated *.xlated-opcodes
mv -- "$OUT"/* .
