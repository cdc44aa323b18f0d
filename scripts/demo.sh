#!/usr/bin/env bash
# THE main-job command. Today: the most complete end-to-end path the SDK has -- Ethernet frames
# built in place, sent in bursts over several queues of an in-memory device pair, received and
# verified, all without a copy or a heap allocation per frame. It grows, issue by issue, into
# "HTTP over DPDK on a virtual NIC, hit by real clients, with a figure against kernel Asio".
#
#   scripts/demo.sh [--quick] [--build-dir DIR]
#     --quick          a short run (what scripts/test.sh runs, so the demo never rots)
#     --build-dir DIR  use an existing build instead of building the release preset
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

quick=0
build_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --build-dir)
      [ $# -ge 2 ] || { echo "demo.sh: --build-dir needs a directory" >&2; exit 2; }
      build_dir=$2
      shift
      ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo.sh: unknown argument '$1' (try --help)" >&2
      exit 2
      ;;
  esac
  shift
done

# A fresh machine needs nothing run before this script: when a package is missing (the list is
# setup.sh's own), setup.sh installs it -- directly as root, else through sudo.
setup="${DPDK_NET_SETUP_SCRIPT:-$root/scripts/setup.sh}"  # overridable for the script's own test
if ! "$setup" --check >/dev/null 2>&1; then
  echo "== installing dependencies (scripts/setup.sh, Debian packages only; first run only)"
  if [ "$(id -u)" -eq 0 ]; then
    "$setup"
  elif command -v sudo >/dev/null; then
    sudo "$setup"
  else
    echo "demo.sh: dependencies missing and not root: run as root (or install sudo)" >&2
    exit 1
  fi
fi

if [ -z "$build_dir" ]; then
  build_dir="$root/build/release"
  echo "== building the release preset (first run only takes a while)"
  (cd "$root" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target frame_pump sim_demo udp_echo http_server http_load)
fi
bin="$build_dir/bin"
for prog in frame_pump sim_demo udp_echo http_server http_load; do
  [ -x "$bin/$prog" ] || { echo "demo.sh: $bin/$prog not built (build first, or drop --build-dir)" >&2; exit 1; }
done

frames=2000000
[ $quick -eq 1 ] && frames=100000

echo
echo "== 1. frames through an in-memory device pair (2 queues, 64-byte frames)"
"$bin/frame_pump" --frames "$frames" --queues 2 --size 64
echo
echo "== 2. the same with a tiny rx ring (8 frames): full rings decline, the sender retries, nothing is lost"
"$bin/frame_pump" --frames $((frames / 10)) --queues 2 --ring 8 --burst 32 --size 64
echo
echo "== 3. full-size 1514-byte frames over 4 queues"
"$bin/frame_pump" --frames $((frames / 4)) --queues 4 --size 1514
echo
pcaps=$(mktemp -d /tmp/dpdk-net-sim.XXXXXX)
requests=500
if [ $quick -eq 1 ]; then
  requests=100
  trap 'rm -rf "$pcaps"' EXIT  # a quick (test) run leaves nothing behind
fi
echo "== 4. a simulated network: two clients and an echo server, each running our IPv4 stack, on a"
echo "      switch whose links lose, duplicate, reorder and corrupt frames (seed 2026); every frame"
echo "      goes to a pcap"
"$bin/sim_demo" --seed 2026 --requests "$requests" --pcap-dir "$pcaps"
echo "  first frames the server saw (tcpdump):"
tcpdump -nr "$pcaps/server.pcap" -c 4 2>/dev/null | sed 's/^/    /'
echo "  the same seed again gives the same hashes:"
"$bin/sim_demo" --seed 2026 --requests "$requests" --hash | sed 's/^/    /'
echo
echo
echo "== 5. our IPv4 stack on a TAP device, with the Linux kernel as the peer"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/net/tun ]; then
  echo "  skipped: needs root and /dev/net/tun"
else
  tapname="dnd$$"
  "$bin/udp_echo" --backend tap --iface "$tapname" --ip 198.18.99.2/24 --kernel-ip 198.18.99.1 \
    --port 7 --seconds 20 >"$pcaps/udp_echo.out" 2>&1 &
  echo_pid=$!
  sleep 0.5
  ping -c 3 -i 0.2 -W 2 198.18.99.2 | sed 's/^/  /' | grep -E "bytes from|packets transmitted"
  /usr/bin/python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.bind(("198.18.99.1", 0))
s.sendto(b"hello, dpdk-net", ("198.18.99.2", 7))
print("  UDP echo from our stack:", s.recvfrom(100)[0].decode())
PY
  kill -TERM "$echo_pid"
  wait "$echo_pid" || true
  echo "  stack counters: $(tail -1 "$pcaps/udp_echo.out")"
fi
echo
echo "== 6. HTTP over our stack: Boost.Beast (C++20 coroutines) on dpdk-net over TAP, Linux as the client"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/net/tun ]; then
  echo "  skipped: needs root and /dev/net/tun"
else
  http_secs=5
  [ $quick -eq 1 ] && http_secs=1
  http_tap="dnh$$"
  http_port=$((18000 + $$ % 1000))
  # Waits (at most 10 s) for the server's "serving" line; fails the demo if it never comes.
  wait_serving() {
    for _ in $(seq 100); do
      grep -q "serving http://" "$1" && return 0
      kill -0 "$2" 2>/dev/null || break
      sleep 0.1
    done
    echo "demo.sh: http_server did not start: $(cat "$1")" >&2
    kill -TERM "$2" 2>/dev/null || true
    return 1
  }
  "$bin/http_server" --backend tap --iface "$http_tap" --ip 198.18.98.2/24 \
    --kernel-ip 198.18.98.1 --port 8080 --max-seconds 120 >"$pcaps/http_tap.out" 2>&1 &
  http_pid=$!
  wait_serving "$pcaps/http_tap.out" "$http_pid"
  echo "  curl http://198.18.98.2:8080/ (served by our stack):"
  curl -sS --max-time 5 -o "$pcaps/index.html" http://198.18.98.2:8080/
  sed -n '3p' "$pcaps/index.html" | sed 's/^/    /'
  echo "  http_load (kernel sockets as the client), 8 keep-alive connections, ${http_secs} s:"
  ours=$("$bin/http_load" --backend kernel --connect 198.18.98.2:8080 -c 8 -d "$http_secs" --json)
  kill -TERM "$http_pid"
  wait "$http_pid" || true
  "$bin/http_server" --backend kernel --ip 127.0.0.1/8 --port "$http_port" --max-seconds 120 \
    >"$pcaps/http_kernel.out" 2>&1 &
  http_pid=$!
  wait_serving "$pcaps/http_kernel.out" "$http_pid"
  theirs=$("$bin/http_load" --backend kernel --connect "127.0.0.1:$http_port" -c 8 \
    -d "$http_secs" --json)
  kill -TERM "$http_pid"
  wait "$http_pid" || true
  /usr/bin/python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, kernel = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name, r in (("ours (dpdk-net over TAP)", ours), ("kernel (loopback)", kernel)):
    print(f"    {name:26s} {r['rps']:10.0f} req/s   p99 {r['p99_us']:8.1f} us   errors {r['errors']}")
print(f"    ratio ours/kernel: {ours['rps'] / max(kernel['rps'], 1):.2f}x req/s, "
      f"{ours['p99_us'] / max(kernel['p99_us'], 0.001):.2f}x p99")
print("    (the same server code on both; over TAP every frame crosses the kernel's tun driver,"
      " so this is not DPDK's speed)")
PY
fi
echo
[ $quick -eq 1 ] || echo "Simulated traces are in $pcaps/ (open them with tcpdump -r or Wireshark)."
echo "demo.sh: done. (Next milestones: HTTP over DPDK on a virtual NIC against kernel Asio, then pcap capture and replay.)"
