#!/bin/sh
# Rebuilds the BTF test objects (committed, so tests need no clang), with the corpus's flags
# (tests/objects/build.sh).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in *.bpf.c; do
	obj="${src%.c}.o"
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -fdebug-compilation-dir=. \
		-c "$src" -o "$obj"
	echo "built $obj"
done
