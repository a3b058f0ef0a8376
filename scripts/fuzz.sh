#!/usr/bin/env bash
# Runs one libFuzzer target of fuzz/ for SECONDS (default 60) on the stable toolchain: the
# instrumentation flags cargo-fuzz passes, enabled through RUSTC_BOOTSTRAP (no nightly, no
# cargo-fuzz install). Crashes land in fuzz/artifacts/TARGET/.
#   scripts/fuzz.sh object_parse 120
#   scripts/fuzz.sh verifier
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}
secs=${2:-60}
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts, as cargo-fuzz does.
triple=$(rustc -vV | sed -n "s/^host: //p")
cargo build --release --target "$triple" --bin "$target"
mkdir -p "corpus/$target" "artifacts/$target"
# Seed the object fuzzer with the committed objects.
if [ "$target" = object_parse ] && [ -z "$(ls -A corpus/$target)" ]; then
    cp ../tests/objects/*.bpf.o ../crates/maglev/bpf/maglev.bpf.o "corpus/$target/"
fi
"target/$triple/release/$target" -max_total_time="$secs" -artifact_prefix="artifacts/$target/" "corpus/$target"
