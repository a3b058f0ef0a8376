#!/bin/sh
# Rebuilds the benchmark objects (committed, so the benchmarks and tests need no clang):
# every *.bpf.c here -> *.bpf.o, with the flags of tests/objects/build.sh.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in *.bpf.c; do
	obj="${src%.c}.o"
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -fdebug-compilation-dir=. \
		-c "$src" -o "$obj"
	echo "built $obj"
done
