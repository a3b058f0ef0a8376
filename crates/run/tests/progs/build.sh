#!/bin/sh
# Rebuilds the test-run programs with the flags of tests/objects/build.sh; the objects are
# committed so the tests need no clang.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in *.bpf.c; do
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -fdebug-compilation-dir=. \
		-c "$src" -o "${src%.c}.o"
	echo "built ${src%.c}.o"
done
