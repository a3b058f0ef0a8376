#!/bin/sh
# Rebuilds the object corpus: every *.bpf.c here (and in malformed/, objects that are
# invalid on purpose) -> *.bpf.o, with the flags libbpf-based projects use. The built
# objects are committed so tests do not need clang. -fdebug-compilation-dir=. keeps the
# bytes independent of the checkout directory, so CI can check the committed objects are
# exactly what these sources build (crates/object/tests/reproducible.rs).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for src in *.bpf.c malformed/*.bpf.c; do
	obj="${src%.c}.o"
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -fdebug-compilation-dir=. \
		-c "$src" -o "$obj"
	echo "built $obj"
done
