#!/usr/bin/env bash
# Long run of the kernel-differential verifier fuzzer (crates/verifier/tests/kernel_fuzz.rs,
# generator and minimiser in crates/verifier/tests/kfuzz/): PROGRAMS structured programs from
# SEED (default: the test's fixed seed) go to kbpf's verifier and to the live kernel's
# (BPF_PROG_LOAD; needs root or CAP_BPF+CAP_PERFMON). Prints programs/s, the same-verdict
# share, every class of difference with a minimised example in the corpus format
# (tests/corpus/*.txt), and fails on a soundness mismatch (kbpf accepts, the kernel rejects)
# or a kbpf panic. The log is kept in target/fuzz-kernel-SEED-PROGRAMS.log.
#   scripts/fuzz-kernel.sh 100000
#   scripts/fuzz-kernel.sh 1000000 0x1234
#   KBPF_FUZZ_RELEASE=1 scripts/fuzz-kernel.sh 1000000   # optimised kbpf (no debug asserts)
set -euo pipefail
cd "$(dirname "$0")/.."
programs=${1:?usage: scripts/fuzz-kernel.sh PROGRAMS [SEED]}
export KBPF_FUZZ_PROGRAMS=$programs
if [ -n "${2:-}" ]; then
    export KBPF_FUZZ_SEED=$2
fi
export KBPF_FUZZ_MINIMIZE_CLASSES=1
profile=()
[ -n "${KBPF_FUZZ_RELEASE:-}" ] && profile=(--release)
log_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$log_dir"
log="$log_dir/fuzz-kernel-${2:-default}-$programs.log"
echo "fuzz-kernel: $programs programs, seed ${2:-default}; log: $log"
cargo test "${profile[@]}" -p kbpf-verifier --test kernel_fuzz -- --nocapture --test-threads=1 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
