#!/usr/bin/env bash
# Use-after-free check of kbpf-maps' deferred freeing under valgrind memcheck.
#
# The map-of-maps and hash stress tests (crates/maps/tests/stress.rs, stress_hash.rs) have
# program-style readers dereference inner maps and hash elements while a writer replaces
# them; replaced objects must only be freed once no reader can still hold them. Miri and
# ASan would check that but need nightly Rust; memcheck works on the stable toolchain's
# binaries and reports any read of freed memory as "Invalid read".
#
# The kernel-differential map matrix (crates/maps/tests/matrix_kernel.rs) runs here too: every
# map type × flags × key/value sizes × max_entries through every user-space operation, so
# memcheck sees each layout (array strides, per-CPU pointer slots, hash elements of every key
# and value size) read and written. Its sequences are bounded by KBPF_MATRIX_LEN (default 32
# here: ~35 s under valgrind on 2 cores, a quarter of it the kernel's RCU waits after map-of-maps
# updates). Where bpf() is unavailable it skips (a failure under CI=true). valgrind 3.19
# flags BPF_MAP_GET_NEXT_KEY with a NULL key (asking for the first key) as an unaddressable
# read; scripts/valgrind-bpf.supp suppresses exactly that.
#
# Builds the three test binaries (debug profile: freed maps are also poisoned), runs each
# under `valgrind --error-exitcode=1 --leak-check=no` with a bounded iteration count
# (KBPF_STRESS_SWAPS, default 10000 here: ~10 s on 2 cores for the stress tests; leaks are
# checked by the tests' own live-map counters, not by valgrind), and fails if valgrind
# reports any error or a test fails.
#
# Usage: scripts/valgrind-stress.sh            (from anywhere in the repository)
#        KBPF_STRESS_SWAPS=5000 KBPF_MATRIX_LEN=8 scripts/valgrind-stress.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind-stress: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
fi

export KBPF_STRESS_SWAPS="${KBPF_STRESS_SWAPS:-10000}"
export KBPF_MATRIX_LEN="${KBPF_MATRIX_LEN:-32}"

# The JSON messages name each built test binary ("executable" of a test artifact).
mapfile -t bins < <(
    cargo test -p kbpf-maps --test stress --test stress_hash --test matrix_kernel --no-run \
        --message-format=json \
        | grep -o '"executable":"[^"]*"' \
        | sed -e 's/^"executable":"//' -e 's/"$//'
)
if [ "${#bins[@]}" -ne 3 ]; then
    echo "valgrind-stress: expected 3 test binaries, found ${#bins[@]}: ${bins[*]:-none}" >&2
    exit 1
fi

status=0
for bin in "${bins[@]}"; do
    echo "valgrind-stress: $(basename "$bin") with KBPF_STRESS_SWAPS=$KBPF_STRESS_SWAPS KBPF_MATRIX_LEN=$KBPF_MATRIX_LEN"
    start=$(date +%s)
    # --fair-sched: valgrind runs one thread at a time; fair scheduling makes readers and the
    # writer interleave, so a prematurely freed map is actually read by a reader.
    if valgrind --error-exitcode=1 --leak-check=no --fair-sched=yes --quiet \
        --suppressions=scripts/valgrind-bpf.supp \
        "$bin" --test-threads=1; then
        echo "valgrind-stress: $(basename "$bin") clean ($(($(date +%s) - start))s)"
    else
        echo "valgrind-stress: $(basename "$bin") FAILED (valgrind errors or test failure)" >&2
        status=1
    fi
done
exit "$status"
