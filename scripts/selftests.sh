#!/usr/bin/env bash
# Builds the Linux 6.12 BPF verifier selftests (tools/testing/selftests/bpf/progs/verifier_*.c)
# for kbpf's selftests suite (crates/selftests), from the Debian package linux-source-6.12:
#
#   1. extracts what is needed from /usr/src/linux-source-6.12.tar.xz (the selftests, tools/
#      headers, the tree's libbpf, scripts/bpf_doc.py);
#   2. builds the tree's libbpf (static; its headers are what bpf_misc.h/bpf_helpers.h expect)
#      and, against it, kload (scripts/selftests/kload.c), the kernel oracle, and the tree's
#      veristat (optional: `kbpf veristat -C` compares against it);
#   3. generates vmlinux.h from /sys/kernel/btf/vmlinux (bpftool btf dump … format c);
#   4. compiles every progs/verifier_*.c with clang-19 as the selftests Makefile does
#      (test_progs flavour: -g -O2 --target=bpf -mcpu=v3 -Wall -Werror, -D__TARGET_ARCH_x86,
#      -DENABLE_ATOMICS_TESTS, the Makefile's include paths and clang's system includes);
#      a file that fails only under -Werror is compiled again without it (status "warn").
#
# Output under $KBPF_SELFTESTS_DIR (default target/selftests), idempotent and cached: the
# extraction and libbpf are keyed by the tarball's size and mtime; the objects by that, the
# vmlinux BTF's hash, clang's version and this script's hash; kload by its source's hash.
#   obj/verifier_*.bpf.o   the objects          obj/verifier_*.log   clang's messages
#   obj/btf__*.bpf.o       the BTF objects tests name with __btf_path (CO-RE targets)
#   build.tsv              file, status (ok|warn|fail), first error line
#   kload                  the oracle           include/           vmlinux.h and bpf/*.h
#   veristat               the tree's veristat (or veristat.missing: why it did not build)
#
# Exit status: 0 built (some files may have failed: see build.tsv); 3 a prerequisite is
# missing (the message says what to install); 1 anything else.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${KBPF_SELFTESTS_DIR:-$repo/target/selftests}"
tarball="${KBPF_LINUX_SOURCE:-/usr/src/linux-source-6.12.tar.xz}"
clang="${CLANG:-clang-19}"
jobs="$(nproc 2>/dev/null || echo 2)"

missing() {
    echo "selftests: $1" >&2
    exit 3
}

[ -f "$tarball" ] || missing "$tarball is missing: apt-get install linux-source-6.12"
command -v "$clang" >/dev/null || missing "$clang is missing: apt-get install clang-19 llvm-19"
command -v bpftool >/dev/null || missing "bpftool is missing: apt-get install bpftool"
command -v cc >/dev/null || missing "cc is missing: apt-get install gcc"
command -v make >/dev/null || missing "make is missing: apt-get install make"
command -v python3 >/dev/null || missing "python3 is missing (libbpf's bpf_doc.py): apt-get install python3"
[ -f /usr/include/gelf.h ] || missing "libelf headers are missing: apt-get install libelf-dev"
[ -f /usr/include/zlib.h ] || missing "zlib headers are missing: apt-get install zlib1g-dev"
[ -r /sys/kernel/btf/vmlinux ] || missing "/sys/kernel/btf/vmlinux is missing (kernel without BTF)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec 9>"$out/.lock"
flock 9

hash_of() { sha256sum "$@" | cut -c1-16; }

src_key="$(stat -c '%s %Y' "$tarball") $(basename "$tarball")"
src="$out/src"
if [ "$(cat "$src/.key" 2>/dev/null)" != "$src_key" ]; then
    echo "selftests: extracting from $tarball"
    rm -rf "$src" "$out/libbpf" "$out/include" "$out/obj" "$out/.objs-key"
    mkdir -p "$src"
    top="$(set +o pipefail; tar -tJf "$tarball" 2>/dev/null | head -1 | cut -d/ -f1)"
    tar -xJf "$tarball" -C "$src" --strip-components=1 --wildcards \
        "$top/tools/testing/selftests/bpf/*" \
        "$top/tools/include/*" \
        "$top/tools/lib/*" \
        "$top/tools/arch/*" \
        "$top/tools/scripts/*" \
        "$top/tools/build/*" \
        "$top/scripts/bpf_doc.py"
    echo "$src_key" >"$src/.key"
fi
st="$src/tools/testing/selftests/bpf"

# The tree's libbpf: its headers for the BPF programs (bpf_helpers.h, bpf_helper_defs.h
# generated from this tree's uapi bpf.h) and libbpf.a for kload.
if [ ! -f "$out/libbpf/libbpf.a" ] || [ ! -f "$out/include/bpf/bpf_helpers.h" ]; then
    echo "selftests: building the tree's libbpf"
    mkdir -p "$out/libbpf"
    make -s -C "$src/tools/lib/bpf" -j"$jobs" OUTPUT="$out/libbpf/" BUILD_STATIC_ONLY=1 \
        "$out/libbpf/libbpf.a" >"$out/libbpf/build.log" 2>&1 \
        || { tail -20 "$out/libbpf/build.log" >&2; echo "selftests: libbpf build failed" >&2; exit 1; }
    make -s -C "$src/tools/lib/bpf" OUTPUT="$out/libbpf/" DESTDIR="$out" prefix= \
        install_headers >>"$out/libbpf/build.log" 2>&1 \
        || { tail -20 "$out/libbpf/build.log" >&2; echo "selftests: libbpf headers failed" >&2; exit 1; }
fi

kload_src="$repo/scripts/selftests/kload.c"
kload_key="$(hash_of "$kload_src")"
if [ ! -x "$out/kload" ] || [ "$(cat "$out/.kload-key" 2>/dev/null)" != "$kload_key" ]; then
    echo "selftests: building kload"
    cc -O2 -Wall -o "$out/kload" "$kload_src" -I"$out/include" "$out/libbpf/libbpf.a" -lelf -lz
    echo "$kload_key" >"$out/.kload-key"
fi

# The real veristat (tools/testing/selftests/bpf/veristat.c) on the tree's libbpf: the kernel's
# side of the `kbpf veristat -C` comparison (crates/selftests/tests/veristat.rs). Optional: when
# it does not build, veristat.missing says why and that test skips (a failure under CI=true).
if [ ! -x "$out/veristat" ] || [ "$(cat "$out/.veristat-key" 2>/dev/null)" != "$src_key" ]; then
    echo "selftests: building veristat"
    rm -f "$out/veristat" "$out/veristat.missing"
    # tools/include/uapi first: veristat needs this tree's linux/bpf.h (BPF_F_TEST_*).
    if cc -O2 -Wall -o "$out/veristat" "$st/veristat.c" -I"$out/include" \
        -I"$src/tools/include/uapi" -I"$src/tools/include" -I"$st" \
        "$out/libbpf/libbpf.a" -lelf -lz -lm >"$out/veristat.log" 2>&1; then
        echo "$src_key" >"$out/.veristat-key"
    else
        rm -f "$out/veristat"
        { grep -m1 'error' "$out/veristat.log" || tail -1 "$out/veristat.log"; } >"$out/veristat.missing"
        echo "selftests: veristat did not build: $(cat "$out/veristat.missing")" >&2
    fi
fi

vmlinux_key="$(hash_of /sys/kernel/btf/vmlinux)"
objs_key="$src_key|$vmlinux_key|$("$clang" --version | head -1)|$(hash_of "$0")"
if [ "$(cat "$out/.objs-key" 2>/dev/null)" != "$objs_key" ] || [ ! -f "$out/build.tsv" ]; then
    echo "selftests: vmlinux.h from /sys/kernel/btf/vmlinux"
    bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$out/include/vmlinux.h.tmp"
    mv "$out/include/vmlinux.h.tmp" "$out/include/vmlinux.h"

    # The selftests Makefile's BPF_CFLAGS + CLANG_CFLAGS for test_progs (CLANG_BPF_BUILD_RULE).
    sys_includes="$("$clang" -v -E - </dev/null 2>&1 \
        | sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }' \
        | tr '\n' ' ')"
    # (the Makefile asks the host compiler; no `| grep -q`: under pipefail its early exit
    # would make the pipeline fail at random)
    case "$(cc -dM -E - </dev/null)" in
        *"__BYTE_ORDER__ __ORDER_LITTLE_ENDIAN__"*) endian=-mlittle-endian ;;
        *) endian=-mbig-endian ;;
    esac
    export SELFTESTS_CFLAGS="-g -Wall -D__TARGET_ARCH_x86 $endian -I$out/include -I$st \
-I$src/tools/include/uapi -Wno-compare-distinct-pointer-types $sys_includes -DENABLE_ATOMICS_TESTS"
    export SELFTESTS_CLANG="$clang" SELFTESTS_OBJ="$out/obj"
    rm -rf "$out/obj"
    mkdir -p "$out/obj"
    n="$(ls "$st"/progs/verifier_*.c | wc -l)"
    echo "selftests: compiling $n progs/verifier_*.c with $clang ($jobs jobs)"
    compile_one() {
        local c="$1" b
        b="$(basename "$c" .c)"
        # shellcheck disable=SC2086
        if $SELFTESTS_CLANG $SELFTESTS_CFLAGS -Werror -O2 --target=bpf -c "$c" -mcpu=v3 \
            -o "$SELFTESTS_OBJ/$b.bpf.o" >"$SELFTESTS_OBJ/$b.log" 2>&1; then
            printf '%s\tok\t\n' "$b" >"$SELFTESTS_OBJ/$b.status"
        elif $SELFTESTS_CLANG $SELFTESTS_CFLAGS -O2 --target=bpf -c "$c" -mcpu=v3 \
            -o "$SELFTESTS_OBJ/$b.bpf.o" >/dev/null 2>&1; then
            printf '%s\twarn\t%s\n' "$b" "$(grep -m1 'error:' "$SELFTESTS_OBJ/$b.log" | sed 's|^.*/progs/||')" \
                >"$SELFTESTS_OBJ/$b.status"
        else
            rm -f "$SELFTESTS_OBJ/$b.bpf.o"
            printf '%s\tfail\t%s\n' "$b" "$(grep -m1 'error:' "$SELFTESTS_OBJ/$b.log" | sed 's|^.*/progs/||')" \
                >"$SELFTESTS_OBJ/$b.status"
        fi
    }
    export -f compile_one
    ls "$st"/progs/verifier_*.c | xargs -P "$jobs" -I{} bash -c 'compile_one "$@"' _ {}
    # The BTF-only objects tests name in __btf_path (libbpf's btf_custom_path for CO-RE).
    for b in $(grep -ho '__btf_path("[^"]*\.bpf\.o")' "$st"/progs/verifier_*.c \
        | sed 's/__btf_path("\(.*\)\.bpf\.o")/\1/' | sort -u); do
        compile_one "$st/progs/$b.c"
        rm -f "$out/obj/$b.status"
        [ -f "$out/obj/$b.bpf.o" ] || echo "selftests: $b.bpf.o (a __btf_path) did not compile: see $out/obj/$b.log"
    done
    cat "$out"/obj/*.status | sort >"$out/build.tsv.tmp"
    rm -f "$out"/obj/*.status
    mv "$out/build.tsv.tmp" "$out/build.tsv"
    echo "$objs_key" >"$out/.objs-key"
else
    echo "selftests: up to date in $out"
fi

total="$(wc -l <"$out/build.tsv")"
ok="$(awk -F'\t' '$2=="ok"' "$out/build.tsv" | wc -l)"
warn="$(awk -F'\t' '$2=="warn"' "$out/build.tsv" | wc -l)"
fail="$(awk -F'\t' '$2=="fail"' "$out/build.tsv" | wc -l)"
echo "selftests: $total sources: $ok compiled, $warn compiled only without -Werror, $fail failed; objects in $out/obj, oracle $out/kload"
awk -F'\t' '$2!="ok" { printf "selftests:   %s %s: %s\n", $2, $1, $3 }' "$out/build.tsv"
