#!/usr/bin/env bash
# kbpf against the live kernel on real programs nobody wrote for kbpf, from two public
# repositories (read from checkouts; nothing of them is copied into this repository):
#   - the XDP tutorial (github.com/xdp-project/xdp-tutorial, GPL-2.0): every `*_kern*.c`;
#   - xdp-tools (github.com/xdp-project/xdp-tools, GPL-2.0): the BPF programs that build
#     against the system's libbpf headers (the rest need the repository's own libbpf);
#   - bcc's libbpf-tools (github.com/iovisor/bcc, Apache-2.0), tracing programs kbpf verifies
#     but does not run: each program alone through the kernel's veristat (built by
#     scripts/selftests.sh) and `kbpf veristat`, against a vmlinux.h of the live kernel.
#
#   scripts/real-programs.sh [XDP_TUTORIAL_DIR [XDP_TOOLS_DIR [BCC_DIR]]]
#
# Missing directories are cloned into target/real-programs/ (needs network). For each
# program source it:
#   1. builds the object as the projects' Makefiles do (clang-19 -O2 -g -target bpf, the
#      project's headers; a stub gnu/stubs-32.h stands in for the i386 libc headers);
#   2. loads it with `bpftool prog loadall` and `kbpf prog loadall` (a private bpffs
#      directory, no daemon): the same verdict, and for a refusal the same last log line;
#   3. for every program both load, compares `prog dump xlated` (map ids and call
#      immediates normalised, as crates/run/tests/objects_xlated.rs does);
#   4. runs every program both load on four packets (IPv4 ICMP echo, IPv6 ICMPv6 echo, IPv4
#      TCP SYN, a VLAN-tagged UDP datagram) with `prog run … data_in … data_out`: the same
#      return value and the same packet out (programs the kernel cannot test-run, such as
#      tracepoints, are skipped on both).
#   5. (libbpf-tools) compares each program's veristat verdict: a program kbpf accepts and
#      the kernel rejects is a difference; the rest is counted (kbpf refuses fentry/tp_btf
#      programs, whose BTF-typed context it does not model).
# Prints one line per difference and a summary; exit status 1 if anything differs, 3 if a
# prerequisite is missing. Needs root (bpf(), bpffs), clang-19, bpftool, python3, and a
# release build of kbpf (built here).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$repo/target/real-programs"
tutorial="${1:-$work/xdp-tutorial}"
tools="${2:-$work/xdp-tools}"
bcc="${3:-$work/bcc}"
for tool in clang-19 bpftool python3; do
    command -v "$tool" >/dev/null || { echo "real-programs: $tool is missing"; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "real-programs: needs root (bpf(), bpffs)"; exit 3; }
for repo_dir in "xdp-project/xdp-tutorial $tutorial" "xdp-project/xdp-tools $tools" \
    "iovisor/bcc $bcc"; do
    set -- $repo_dir
    if [ ! -d "$2" ]; then
        git clone -q --depth 1 "https://github.com/$1" "$2" ||
            { echo "real-programs: cannot clone $1 into $2"; exit 3; }
    fi
done
mkdir -p "$work/obj" "$work/inc/gnu" "$work/pkt"
: >"$work/inc/gnu/stubs-32.h"
(cd "$repo" && cargo build -q --release -p kbpf)
kbpf="$repo/target/release/kbpf"
pin="/sys/fs/bpf/kbpf-real-$$"
fs="$work/bpffs"
trap 'rm -rf "$pin" "$fs"' EXIT

# The packets.
python3 - "$work/pkt" <<'EOF'
import struct, sys
out = sys.argv[1]
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def eth(t): return bytes.fromhex('020000000002020000000001') + struct.pack('!H', t)
def ip4(proto, payload, dst):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                    bytes([10, 0, 0, 1]), bytes([10, 0, 0, dst]))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
icmp = struct.pack('!BBHHH', 8, 0, 0, 0x1234, 1) + b'hello world!'
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
open(out + '/icmp4', 'wb').write(eth(0x0800) + ip4(1, icmp, 2))
icmp6 = struct.pack('!BBHHH', 128, 0, 0, 0x4321, 7) + b'ping6data'
ip6 = struct.pack('!IHBB16s16s', 0x60000000, len(icmp6), 58, 64, bytes(15) + b'\1',
                  bytes(15) + b'\2')
open(out + '/icmp6', 'wb').write(eth(0x86dd) + ip6 + icmp6)
tcp = struct.pack('!HHIIBBHHH', 1234, 80, 1, 0, 0x50, 0x02, 65535, 0, 0)
open(out + '/tcp4', 'wb').write(eth(0x0800) + ip4(6, tcp, 3))
udp = struct.pack('!HHHH', 53, 5353, 12, 0) + b'abcd'
open(out + '/vlan_udp4', 'wb').write(bytes.fromhex('020000000002020000000001') +
    struct.pack('!HHH', 0x8100, 100, 0x0800) + ip4(17, udp, 4))
EOF

norm() { sed -E 's/map\[id:[0-9]+\]/map[id:*]/g; s/#-?[0-9]+/#*/g; s/bpf_prog_[0-9a-f]+_/bpf_prog_*_/g'; }
last_line() { grep -vE '^(libbpf: |Warning|If it used|Error|processed |-- END|hint: |$)' "$1" | tail -1 || true; }
kb() { KBPF_DAEMON= "$kbpf" --bpffs "$fs" "$@"; }

objects=0 verdicts=0 progs=0 xlated=0 runs=0 runs_equal=0 diffs=0
differ() { echo "DIFF $*"; diffs=$((diffs + 1)); }
# Sources as `project<TAB>source<TAB>include dirs`.
sources() {
    find "$tutorial" -name '*_kern*.c' -not -path '*/lib/*' | sort |
        while IFS= read -r c; do
            printf 'xdp-tutorial\t%s\t%s %s\n' "$c" "$tutorial/headers" "$tutorial/common"
        done
    for c in lib/libxdp/xsk_def_xdp_prog.c lib/testing/xdp_adjust_tail.c lib/testing/xdp_drop.c \
        lib/util/xdpsock.bpf.c xdp-dump/xdpdump_xdp.c xdp-forward/xdp_forward.bpf.c; do
        printf 'xdp-tools\t%s\t%s %s\n' "$tools/$c" "$tools/headers" "$tools/lib/util"
    done
}

while IFS=$'\t' read -r project c includes; do
    rel="$project/${c#"$(if [ "$project" = xdp-tools ]; then echo "$tools"; else echo "$tutorial"; fi)"/}"
    name="$(echo "${rel%.c}" | tr '/' '_')"
    obj="$work/obj/$name.o"
    flags=()
    for d in $includes; do flags+=(-I"$d"); done
    if ! clang-19 -O2 -g -target bpf -D__TARGET_ARCH_x86 -I"$work/inc" "${flags[@]}" \
        -I"$(dirname "$c")" -I/usr/include/x86_64-linux-gnu -c "$c" -o "$obj" 2>"$work/clang.log"; then
        echo "skip $rel: clang: $(grep -m1 error "$work/clang.log")"
        continue
    fi
    objects=$((objects + 1))
    rm -rf "$pin" "$fs"; mkdir -p "$fs"
    bpftool prog loadall "$obj" "$pin" >"$work/k.log" 2>&1 && k=0 || k=$?
    kb prog loadall "$obj" "$fs/p" >"$work/b.log" 2>&1 && b=0 || b=$?
    if [ $k -ne 0 ] || [ $b -ne 0 ]; then
        if [ $k -ne 0 ] && [ $b -ne 0 ] && [ "$(last_line "$work/k.log")" = "$(last_line "$work/b.log")" ]; then
            verdicts=$((verdicts + 1))
        else
            differ "$rel: load: kernel $k '$(last_line "$work/k.log")', kbpf $b '$(last_line "$work/b.log")'"
        fi
        continue
    fi
    verdicts=$((verdicts + 1))
    for p in "$pin"/*; do
        prog="$(basename "$p")"
        progs=$((progs + 1))
        bpftool prog dump xlated pinned "$p" | norm >"$work/k.x"
        kb prog dump xlated pinned "$fs/p/$prog" | norm >"$work/b.x"
        if cmp -s "$work/k.x" "$work/b.x"; then
            xlated=$((xlated + 1))
        else
            differ "$rel/$prog: xlated: $(diff "$work/k.x" "$work/b.x" | head -3 | tr '\n' ' ')"
        fi
        for pkt in "$work"/pkt/*; do
            kr="$(bpftool prog run pinned "$p" data_in "$pkt" data_out "$work/k.out" 2>&1 |
                grep -o 'Return value: [0-9]*' || true)"
            [ -n "$kr" ] || continue
            runs=$((runs + 1))
            br="$(kb prog run pinned "$fs/p/$prog" data_in "$pkt" data_out "$work/b.out" 2>&1 |
                grep -o 'Return value: [0-9]*' || true)"
            if [ "$kr" = "$br" ] && cmp -s "$work/k.out" "$work/b.out"; then
                runs_equal=$((runs_equal + 1))
            else
                differ "$rel/$prog on $(basename "$pkt"): kernel '$kr', kbpf '$br'"
            fi
        done
    done
done < <(sources)

echo "XDP/tc objects: $objects; same verdict: $verdicts/$objects; xlated equal: $xlated/$progs;" \
    "test runs equal (return value and packet): $runs_equal/$runs"

# libbpf-tools: verification only.
veristat="${KBPF_SELFTESTS_DIR:-$repo/target/selftests}/veristat"
if [ ! -x "$veristat" ]; then
    echo "libbpf-tools: skipped: the kernel's veristat is not built (scripts/selftests.sh)"
else
    lbt="$work/libbpf-tools"
    rm -rf "$lbt"; mkdir -p "$lbt/obj"
    bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$lbt/vmlinux.h"
    built=0
    for c in "$bcc"/libbpf-tools/*.bpf.c; do
        clang-19 -O2 -g -target bpf -D__TARGET_ARCH_x86 -I"$lbt" -I"$bcc/libbpf-tools" \
            -c "$c" -o "$lbt/obj/$(basename "${c%.c}").o" 2>/dev/null && built=$((built + 1)) || true
    done
    (cd "$lbt/obj" && "$veristat" -o csv -e file,prog,verdict,total_insns ./*.o >"$lbt/kernel.csv" 2>/dev/null &&
        "$kbpf" veristat -o csv -e file,prog,verdict,total_insns ./*.o >"$lbt/kbpf.csv" 2>/dev/null)
    lbt_summary="$(python3 - "$lbt/kernel.csv" "$lbt/kbpf.csv" <<'EOF2'
import csv, sys
k = {(r['file_name'], r['prog_name']): r for r in csv.DictReader(open(sys.argv[1]))}
b = {(r['file_name'], r['prog_name']): r for r in csv.DictReader(open(sys.argv[2]))}
both = [x for x in k if x in b]
same = sum(k[x]['verdict'] == b[x]['verdict'] for x in both)
unsound = [x for x in both if k[x]['verdict'] == 'failure' and b[x]['verdict'] == 'success']
stricter = sum(k[x]['verdict'] == 'success' and b[x]['verdict'] == 'failure' for x in both)
acc = [x for x in both if k[x]['verdict'] == b[x]['verdict'] == 'success']
insns = sum(k[x]['total_insns'] == b[x]['total_insns'] for x in acc)
for f, p in unsound:
    print(f"DIFF libbpf-tools {f}/{p}: kbpf accepts what the kernel rejects")
print(f"programs {len(both)}; same verdict {same}/{len(both)}; kbpf accepts and the kernel "
      f"rejects {len(unsound)}; kbpf rejects and the kernel accepts {stricter}; "
      f"same total_insns {insns}/{len(acc)} of those both accept")
EOF2
)"
    echo "$lbt_summary" | grep '^DIFF' && diffs=$((diffs + 1)) || true
    echo "libbpf-tools: $built objects; $(echo "$lbt_summary" | grep -v '^DIFF')"
fi
[ $diffs -eq 0 ]
