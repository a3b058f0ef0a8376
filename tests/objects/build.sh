#!/bin/sh
# Rebuilds the object corpus: every *.bpf.c here (and in malformed/, objects that are
# invalid on purpose) -> *.bpf.o, with the flags libbpf-based projects use. The built
# objects are committed so tests do not need clang.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in *.bpf.c malformed/*.bpf.c; do
	obj="${src%.c}.o"
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu \
		-c "$src" -o "$obj"
	echo "built $obj"
done
