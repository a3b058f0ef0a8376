#!/usr/bin/env bash
# Builds Katran's BPF objects from ../shared/third_party/katran (GPL-2.0, read in place, never
# copied into the project) with clang-19, the way Katran's own build compiles them:
# -O2 -g --target=bpf, Katran's include paths. Output: $KBPF_KATRAN_OUT (default
# target/katran)/{balancer,healthchecking,healthchecking_ipip,xdp_root,xdp_pktcntr}.bpf.o
#
# $KBPF_KATRAN_DEFINES (e.g. "-DGUE_ENCAP -DTCP_SERVER_ID_ROUTING") selects Katran's
# compile-time features, as build_bpf_modules_opensource.sh -d does; give each feature set its
# own $KBPF_KATRAN_OUT.
#
# Exit status: 0 built; 3 a prerequisite is missing (the message says which); 1 otherwise.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
src="${KBPF_KATRAN_SRC:-$repo/../shared/third_party/katran}"
out="${KBPF_KATRAN_OUT:-$repo/target/katran}"
clang="${CLANG:-clang-19}"
[ -d "$src/katran/lib/bpf" ] || { echo "katran: $src/katran/lib/bpf is missing" >&2; exit 3; }
command -v "$clang" >/dev/null || { echo "katran: $clang is missing: apt-get install clang-19" >&2; exit 3; }
mkdir -p "$out/stub/gnu"
# The BPF target has no 32-bit glibc stubs; Katran's sources include <string.h>.
: > "$out/stub/gnu/stubs-32.h"
for f in balancer.bpf healthchecking.bpf healthchecking_ipip xdp_root xdp_pktcntr; do
    in="$src/katran/lib/bpf/$f.c"
    obj="$out/${f%.bpf}.bpf.o"
    if [ ! -f "$obj" ] || [ "$in" -nt "$obj" ]; then
        # shellcheck disable=SC2086 # the defines are words
        "$clang" -O2 -g --target=bpf -D__TARGET_ARCH_x86 ${KBPF_KATRAN_DEFINES:-} \
            -I"$src" -I"$src/katran/lib/bpf" -I"$src/katran/lib/linux_includes" -I"$out/stub" -I/usr/include/x86_64-linux-gnu \
            -Wno-compare-distinct-pointer-types -c "$in" -o "$obj"
    fi
done
echo "$out"
