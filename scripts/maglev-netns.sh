#!/usr/bin/env bash
# The Maglev load balancer on real connections, in network namespaces on this machine.
#
#   scripts/maglev-netns.sh up      the topology below (needs root, ip, nft, ethtool)
#   scripts/maglev-netns.sh demo    up + kbpf datapath + servers + 1,000 curl requests + down
#   scripts/maglev-netns.sh down    remove it
#
# Topology (KBPF_NETNS_PREFIX, default kbpfml, names the namespaces; BACKENDS, default 4;
# LB_MTU, default 1500, the load balancer link's MTU: veth runs XDP in its driver only up
# to a page-sized MTU, so at 1500 `kbpf net attach` captures with AF_XDP, above it with
# AF_PACKET):
#
#   client 10.200.1.2 ── router 10.200.1.1 | br0 10.200.0.254 ──┬── lb 10.200.0.1 (lb0: kbpf)
#                                                                ├── b1 10.200.0.11
#                                                                ├── …
#                                                                └── bN 10.200.0.1N
#
# The router sends the VIP (10.200.100.1) to the load balancer. The datapath
# (crates/maglev/bpf/maglev.bpf.o, attached with `kbpf net attach xdp … dev lb0`) picks a
# backend by Maglev and conntrack, rewrites the destination to it and sends the frame back
# to the router (XDP_TX), which delivers it. Backends answer the client directly (direct
# server return): an nftables rule puts the VIP back as their replies' source address.
# Segmentation offloads are off (an XDP frame is one packet). The client's checksum offload
# is off too (CLIENT_TX_CSUM=on keeps it): over veth a sender's offloaded checksum arrives
# unfinished, and XDP in veth's driver (the kernel's, or kbpf's AF_XDP capture) forwards
# it unfinished, as the kernel does; kbpf's AF_PACKET capture completes it.
set -euo pipefail
P=${KBPF_NETNS_PREFIX:-kbpfml}
N=${BACKENDS:-4}
MTU=${LB_MTU:-1500}
CSUM=${CLIENT_TX_CSUM:-off}
VIP=10.200.100.1
cmd=${1:-}

run() { "$@" >/dev/null; }
nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
offloads_off() { nsx "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true; }

up() {
    for ns in client router lb $(seq -f 'b%g' 1 "$N"); do ip netns add "$P-$ns"; done
    for ns in client router lb $(seq -f 'b%g' 1 "$N"); do ip -n "$P-$ns" link set lo up; done
    # client ↔ router
    ip link add c0 netns "$P-client" type veth peer name rc netns "$P-router"
    ip -n "$P-client" addr add 10.200.1.2/24 dev c0
    ip -n "$P-client" link set c0 up
    ip -n "$P-client" route add default via 10.200.1.1
    ip -n "$P-router" addr add 10.200.1.1/24 dev rc
    ip -n "$P-router" link set rc up
    offloads_off client c0
    nsx client ethtool -K c0 tx "$CSUM" >/dev/null 2>&1 || true
    offloads_off router rc
    # the router's LAN
    ip -n "$P-router" link add br0 type bridge
    ip -n "$P-router" addr add 10.200.0.254/24 dev br0
    ip -n "$P-router" link set br0 up
    # the load balancer
    ip link add lb0 netns "$P-lb" mtu "$MTU" type veth peer name rlb netns "$P-router" mtu "$MTU"
    ip -n "$P-router" link set rlb master br0 up
    ip -n "$P-lb" addr add 10.200.0.1/24 dev lb0
    ip -n "$P-lb" link set lb0 up
    offloads_off router rlb
    offloads_off lb lb0
    # backends
    for i in $(seq 1 "$N"); do
        local ns="b$i" addr="10.200.0.$((10 + i))"
        ip link add eth0 netns "$P-$ns" type veth peer name "rb$i" netns "$P-router"
        ip -n "$P-router" link set "rb$i" master br0 up
        ip -n "$P-$ns" addr add "$addr/24" dev eth0
        ip -n "$P-$ns" link set eth0 up
        ip -n "$P-$ns" route add default via 10.200.0.254
        offloads_off "$ns" eth0
        # Direct server return: replies leave with the VIP as their source.
        nsx "$ns" nft -f - <<NFT
table ip kbpf_dsr {
    chain post {
        type filter hook postrouting priority 100; policy accept;
        ip saddr $addr tcp sport 80 ip saddr set $VIP
    }
}
NFT
    done
    nsx router sysctl -qw net.ipv4.ip_forward=1
    for k in all default br0 rc; do
        nsx router sysctl -qw "net.ipv4.conf.$k.rp_filter=0"
        nsx router sysctl -qw "net.ipv4.conf.$k.send_redirects=0"
    done
    ip -n "$P-router" route add "$VIP/32" via 10.200.0.1
    echo "up: namespaces $P-{client,router,lb,b1..b$N}; VIP $VIP:80 via 10.200.0.1 (lb0)"
}

down() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns"
    done
}

demo() {
    root=$(cd "$(dirname "$0")/.." && pwd)
    kbpf=${KBPF:-$root/target/release/kbpf}
    [ -x "$kbpf" ] || cargo build --release -p kbpf --manifest-path "$root/Cargo.toml"
    bpffs=$(mktemp -d /tmp/kbpf-maglev-netns.XXXXXX)
    mkdir -p "$bpffs/maglev"
    trap 'nsx lb "$kbpf" --bpffs "$bpffs" net detach xdp dev lb0 2>/dev/null || true;
          "$kbpf" --bpffs "$bpffs" daemon stop >/dev/null 2>&1 || true; down; rm -rf "$bpffs"' EXIT
    down
    up
    # The datapath: loaded into the kbpf daemon of $bpffs, attached to lb0.
    "$kbpf" --bpffs "$bpffs" prog loadall "$root/crates/maglev/bpf/maglev.bpf.o" \
        /sys/fs/bpf/maglev/prog pinmaps /sys/fs/bpf/maglev/maps
    nsx lb "$kbpf" --bpffs "$bpffs" net attach xdp pinned /sys/fs/bpf/maglev/prog/maglev_xdp dev lb0
    # The control plane (another process): one service, N backends.
    local backends
    backends=$(seq -f '10.200.0.1%g' 1 "$N" | tr '\n' ' ')
    printf 'service %s:80/tcp %s\nshow\nquit\n' "$VIP" "$backends" |
        "$kbpf" --bpffs "$bpffs" maglev ctl --maps /sys/fs/bpf/maglev/maps
    # Real servers: each answers with its name.
    for i in $(seq 1 "$N"); do
        nsx "b$i" python3 -c '
import http.server, sys
name = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()' "b$i" &
        disown
    done
    sleep 1
    echo "1,000 HTTP requests from the client namespace to http://$VIP/:"
    for _ in $(seq 1 1000); do nsx client curl -s --max-time 2 "http://$VIP/" || echo failed; done |
        sort | uniq -c
    nsx lb "$kbpf" --bpffs "$bpffs" net show dev lb0
}

case "$cmd" in
up) up ;;
down) down ;;
demo) demo ;;
*) echo "usage: $0 up|down|demo" >&2; exit 2 ;;
esac
