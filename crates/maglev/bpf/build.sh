#!/bin/sh
# Rebuilds the committed XDP object crates/maglev/bpf/maglev.bpf.o from
# maglev.bpf.c. Needs clang-19 and the libbpf headers (<bpf/bpf_helpers.h>).
set -eu
cd "$(dirname "$0")"
CLANG="${CLANG:-clang-19}"
ARCH_INC="/usr/include/$(uname -m)-linux-gnu"
"$CLANG" -O2 -g -target bpf -mcpu=v3 -Wall -Werror -fdebug-compilation-dir=. \
	-I"$ARCH_INC" \
	-c maglev.bpf.c -o maglev.bpf.o
echo "built $(pwd)/maglev.bpf.o"
