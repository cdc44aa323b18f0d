#!/usr/bin/env bash
# THE main-job command: the same Boost.Beast HTTP server (C++20 coroutines) on our TCP/IP stack over
# DPDK, hit by real clients, with a figure against the identical code on kernel Asio.
#   1. a veth pair between two network namespaces: http_server on DPDK (net_af_xdp, falling back
#      to net_af_packet) in one, curl from Linux in the other;
#   2. http_load -> http_server over net_memif (ours <-> ours, one core each), then the identical
#      pair with --backend kernel over loopback (same cores, connections, duration), ABAB;
#   3. a table (requests/s, p50, p99, the ratios, the goal) and a full report under /tmp.
# Everything it creates (namespaces, veth, processes, sockets, DPDK runtime files) goes at exit,
# on failure and on Ctrl-C. Needs root.
#
#   scripts/demo.sh [--quick] [--build-dir DIR]
#     --quick          1 s per load run instead of 5 (what scripts/test.sh runs, so the demo
#                      never rots)
#     --build-dir DIR  use an existing (release) build instead of building the release preset
#   DPDK_NET_DEMO_NO_AF_XDP=1 skips net_af_xdp (shows the net_af_packet fallback)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=/usr/bin/python3

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
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
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
  echo "== building the release preset (http_server, http_load; the first run takes a while)"
  (cd "$root" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target http_server http_load)
fi
bin="$build_dir/bin"
for prog in http_server http_load; do
  [ -x "$bin/$prog" ] || { echo "demo.sh: $bin/$prog not built (build first, or drop --build-dir)" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: needs root (network namespaces, veth, DPDK's EAL): run it as root" >&2
  exit 1
fi

# ---- what this run creates, all named after its PID, all removed by cleanup() ----------------
id="dnd$$"
ns_ours="$id-ours"      # our stack's namespace: the DPDK end of the veth pair, no kernel address
ns_linux="$id-linux"    # Linux's namespace: the other end, 198.18.77.1/24
veth_ours="${id}o"
veth_linux="${id}l"
net=198.18.77          # the veth pair's subnet (namespaced: no clash with the host or others)
memif_net=198.18.78    # the memif link's (our stacks only: the kernel never sees it)
secs=5
[ $quick -eq 1 ] && secs=1
conns=200
rounds=2                # ABAB: ours, kernel, ours, kernel
run_dir=$(mktemp -d "/tmp/$id-run.XXXXXX")  # sockets, scratch: removed at exit
stamp=$(date +%Y%m%d-%H%M%S)
if [ $quick -eq 1 ]; then
  report=$(mktemp -d "/tmp/dpdk-net-demo-quick-$stamp.XXXXXX")
  # Quick runs (every test run) keep their report too, but only the newest five of them.
  # shellcheck disable=SC2012  # our own mktemp names: ls -t is the simplest newest-first
  { ls -1dt /tmp/dpdk-net-demo-quick-* 2>/dev/null || true; } | tail -n +6 | xargs -r rm -rf --
else
  report=$(mktemp -d "/tmp/dpdk-net-demo-$stamp.XXXXXX")
fi
declare -a pids=() prefixes=()

# Stops one of our processes by PID: SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup_done=0
cleanup() {
  local rc=$?
  [ $cleanup_done -eq 1 ] && return
  cleanup_done=1
  set +e
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns pids "$ns_ours" 2>/dev/null | xargs -r kill -KILL 2>/dev/null   # none expected
  ip netns pids "$ns_linux" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$ns_ours" 2>/dev/null
  ip netns del "$ns_linux" 2>/dev/null
  ip link del "$veth_ours" 2>/dev/null  # if it never reached its namespace
  ip link del "$veth_linux" 2>/dev/null
  for p in "${prefixes[@]}"; do
    rm -rf "/var/run/dpdk/$p"
    rm -f /dev/hugepages/"$p"map_*
  done
  rm -rf "$run_dir"
  [ $rc -ne 0 ] && echo "demo.sh: FAILED (exit $rc); what it wrote so far: $report/" >&2
  return $rc
}
trap cleanup EXIT
trap 'echo "demo.sh: interrupted" >&2; exit 130' INT
trap 'echo "demo.sh: terminated" >&2; exit 143' TERM

fail() {
  echo "demo.sh: $*" >&2
  exit 1
}
# The lines of a program's log worth showing (not the EAL's and libxdp's start-up chatter).
log_tail() {
  { grep -v -E '^(EAL|libbpf|libxdp|TELEMETRY): ' "$1" || true; } | tail -n "${2:-3}" | sed 's/^/    /'
}
# start LOG CMD...: starts CMD in the background, output to LOG; its PID in $started.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  started=$!
  pids+=("$started")
}
# wait_serving LOG PID: waits (at most 10 s) for http_server's "serving http://" line; false if
# it exits or does not print it in time (then it is stopped).
wait_serving() {
  for _ in $(seq 100); do
    grep -q "serving http://" "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  stop_pid "$2"
  echo "(no 'serving' line within 10 s)" >>"$1"
  return 1
}
# stop_server PID LOG: SIGTERM, then its exit status must be 0 (a graceful stop).
stop_server() {
  local rc=0
  stop_pid "$1"
  wait "$1" || rc=$?
  [ $rc -eq 0 ] || { log_tail "$2" 5 >&2; fail "http_server (pid $1) exited with status $rc at its stop: $2"; }
}
# Hugepages: scripts/setup.sh reserves them; when (nearly) all are taken, DPDK runs from the heap.
free_pages=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
huge_args=()
if [ "${free_pages:-0}" -lt 32 ]; then
  huge_args=(--no-huge)
fi
# A new EAL file prefix (/var/run/dpdk/<prefix>), unique to this run, removed at exit.
new_prefix() {
  prefix="$id-$1"
  prefixes+=("$prefix")
}

echo "== dpdk-net demo: $([ $quick -eq 1 ] && echo "quick, ")release binaries in $bin"
echo "   report: $report/"
[ ${#huge_args[@]} -eq 0 ] ||
  echo "   (only ${free_pages:-0} free hugepages: DPDK runs with --no-huge, memory from the heap)"

# ---- 1. HTTP over DPDK with Linux as the client ---------------------------------------------
echo
echo "== 1. HTTP over DPDK with Linux as the client: a veth pair, one end in namespace $ns_ours"
echo "      (DPDK, our stack, $net.2/24), the other in $ns_linux (Linux, $net.1/24)"
ip netns add "$ns_ours"
ip netns add "$ns_linux"
ip link add "$veth_ours" type veth peer name "$veth_linux"
ip link set "$veth_ours" netns "$ns_ours"
ip link set "$veth_linux" netns "$ns_linux"
ip netns exec "$ns_ours" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$ns_linux" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
# An MTU of at most ~3500 (AF_XDP: one page per frame); the kernel side computes its checksums
# (tx offload off: a veth would hand partial checksums to an AF_XDP or AF_PACKET reader).
ip -n "$ns_ours" link set "$veth_ours" mtu 1500 up
ip -n "$ns_linux" link set "$veth_linux" mtu 1500 up
ip -n "$ns_linux" addr add "$net.1/24" dev "$veth_linux"
ip netns exec "$ns_linux" ethtool -K "$veth_linux" tx off >/dev/null

# serve_veth DRIVER VDEV: http_server on DPDK inside our namespace; true once it serves.
serve_veth() {
  new_prefix "$1"
  veth_log="$report/1-http_server-$1.log"
  start "$veth_log" ip netns exec "$ns_ours" "$bin/http_server" --backend dpdk \
    --vdev "$2" --file-prefix "$prefix" "${huge_args[@]}" --ip "$net.2/24" --port 8080 \
    --max-seconds 600
  veth_pid=$started
  wait_serving "$veth_log" "$veth_pid"
}
driver=""
if [ "${DPDK_NET_DEMO_NO_AF_XDP:-0}" = 1 ]; then
  why="net_af_xdp skipped (DPDK_NET_DEMO_NO_AF_XDP=1)"
elif serve_veth af_xdp "net_af_xdp0,iface=$veth_ours,start_queue=0,queue_count=1,busy_budget=0"; then
  driver=net_af_xdp
else
  why="net_af_xdp did not start: $(log_tail "$veth_log" 1 | sed 's/^ *//')"
  wait "$veth_pid" 2>/dev/null || true
fi
if [ -z "$driver" ]; then
  echo "  $why; falling back to net_af_packet"
  if ! serve_veth af_packet "net_af_packet0,iface=$veth_ours"; then
    log_tail "$veth_log" 5 >&2
    fail "http_server on net_af_packet did not start either: $veth_log"
  fi
  driver=net_af_packet
  echo "  DPDK driver: net_af_packet (an AF_PACKET socket on $veth_ours: frames copied through the kernel)"
else
  echo "  DPDK driver: net_af_xdp (an AF_XDP socket on $veth_ours, queue 0: frames handed to DPDK by an XDP program)"
fi
grep "http_server: serving" "$veth_log" | sed 's/^/  /'
echo "  curl -i http://$net.2:8080/ from $ns_linux (Linux TCP against our stack):"
if ! ip netns exec "$ns_linux" curl -sS -i --max-time 5 "http://$net.2:8080/" \
  >"$report/1-curl.txt" 2>"$report/1-curl.err"; then
  sed 's/^/    /' "$report/1-curl.err" >&2
  fail "curl from $ns_linux failed"
fi
head -1 "$report/1-curl.txt" | tr -d '\r' | sed 's/^/    /'
grep -m1 -o '<h1>[^<]*</h1>' "$report/1-curl.txt" | sed 's/^/    /' || true
head -1 "$report/1-curl.txt" | grep -q " 200 " || fail "curl got no 200: $report/1-curl.txt"
ip netns exec "$ns_linux" curl -sS --max-time 5 "http://$net.2:8080/stats" \
  >"$report/1-stats.json" 2>>"$report/1-curl.err" || fail "curl /stats failed"
"$python" - "$report/1-stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
port, dpdk = s.get("port", {}), s.get("dpdk", {})
print(f"  /stats: driver {dpdk.get('driver', '?')}, port rx {port.get('rx_packets', '?')} / "
      f"tx {port.get('tx_packets', '?')} frames, {s.get('requests', '?')} requests served, "
      f"TCP retransmits {s.get('tcp', {}).get('retransmits', '?')}")
PY
stop_server "$veth_pid" "$veth_log"
echo "$driver" >"$report/1-driver.txt"

# ---- 2. ours vs kernel Asio ------------------------------------------------------------------
echo
echo "== 2. ours vs kernel Asio: http_load -> http_server, $conns keep-alive connections, $secs s a"
echo "      run, server on core 0, load on core 1; ours over net_memif, kernel over loopback; ABAB"
kernel_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# run_pair KIND ROUND: one server, one load run; the load's JSON in $report/2-KIND-ROUND.json.
run_pair() {
  local kind=$1 round=$2 tag="2-$1-$2"
  local slog="$report/$tag-http_server.log" out="$report/$tag.json" lerr="$report/$tag-http_load.log"
  local sock="$run_dir/memif-$round.sock"
  local server_args load_args
  if [ "$kind" = ours ]; then
    new_prefix "srv$round"
    server_args=(--backend dpdk --cores 0 --file-prefix "$prefix" "${huge_args[@]}"
      --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,mac=02:00:00:00:4e:01"
      --ip "$memif_net.1/24" --port 8080)
    new_prefix "load$round"
    load_args=(--backend dpdk --cores 1 --file-prefix "$prefix" "${huge_args[@]}"
      --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,mac=02:00:00:00:4e:02"
      --ip "$memif_net.2/24" --connect "$memif_net.1:8080")
  else
    server_args=(--backend kernel --cores 0 --ip 127.0.0.1/8 --port "$kernel_port")
    load_args=(--backend kernel --cores 1 --connect "127.0.0.1:$kernel_port")
  fi
  start "$slog" "$bin/http_server" "${server_args[@]}" --max-seconds 600
  local spid=$started
  if ! wait_serving "$slog" "$spid"; then
    log_tail "$slog" 5 >&2
    fail "http_server ($kind) did not start within 10 s: $slog"
  fi
  # http_load ends by itself (its duration, then at most 5 s for the last replies); the
  # timeout only guards the demo against a hang.
  timeout -k 5 $((secs + 30)) "$bin/http_load" "${load_args[@]}" -c "$conns" -d "$secs" --json \
    >"$out" 2>"$lerr" &
  local lpid=$! rc=0
  pids+=("$lpid")
  wait "$lpid" || rc=$?
  stop_server "$spid" "$slog"
  if [ $rc -ne 0 ]; then
    log_tail "$lerr" 5 >&2
    fail "http_load ($kind, run $round) exited with status $rc: $lerr"
  fi
  "$python" - "$out" "$kind" "$round" <<'PY' || fail "http_load ($kind, run $round) reported errors: $out"
import json, sys
path, kind, rnd = sys.argv[1:]
r = json.loads(open(path).read().strip().splitlines()[-1])
name = "ours (memif)   " if kind == "ours" else "kernel (lo)    "
print(f"  run {rnd}: {name} {r['rps']:10.0f} req/s   p50 {r['p50_us']:9.1f} us   "
      f"p99 {r['p99_us']:9.1f} us   errors {r['errors']}")
sys.exit(0 if r["errors"] == 0 and r["requests"] > 0 and r["unfinished"] == 0 else 1)
PY
}
for round in $(seq "$rounds"); do
  run_pair ours "$round"
  run_pair kernel "$round"
done

# ---- 3. the table ----------------------------------------------------------------------------
echo
echo "== 3. results (median of $rounds runs each)"
"$python" - "$report" "$rounds" "$conns" "$secs" "$driver" <<'PY'
import glob, json, os, statistics, sys

report, rounds, conns, secs, driver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    float(sys.argv[4]), sys.argv[5]

def last_json(path):
    lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None

runs = {k: [last_json(f"{report}/2-{k}-{i}.json") for i in range(1, rounds + 1)]
        for k in ("ours", "kernel")}
med = {k: {f: statistics.median(r[f] for r in v) for f in ("rps", "p50_us", "p99_us")}
       for k, v in runs.items()}
o, k = med["ours"], med["kernel"]
rps_ratio = o["rps"] / k["rps"] if k["rps"] > 0 else float("inf")
p50_ratio = o["p50_us"] / k["p50_us"] if k["p50_us"] > 0 else float("inf")
p99_ratio = o["p99_us"] / k["p99_us"] if k["p99_us"] > 0 else float("inf")
rps_ok, p99_ok = rps_ratio >= 3.0, p99_ratio <= 0.3

lines = [
    f"  {'':34s} {'requests/s':>12s} {'p50 (us)':>11s} {'p99 (us)':>11s}",
    f"  {'ours: dpdk-net on DPDK net_memif':34s} {o['rps']:12.0f} {o['p50_us']:11.1f} {o['p99_us']:11.1f}",
    f"  {'kernel Asio on loopback':34s} {k['rps']:12.0f} {k['p50_us']:11.1f} {k['p99_us']:11.1f}",
    f"  {'ours / kernel':34s} {rps_ratio:11.2f}x {p50_ratio:10.2f}x {p99_ratio:10.2f}x",
    "",
]
short = []
if not rps_ok:
    short.append(f"requests/s {rps_ratio:.2f}x, {(1 - rps_ratio / 3.0) * 100:.0f}% short of 3x")
if not p99_ok:
    short.append(f"p99 {p99_ratio:.2f}x, {p99_ratio / 0.3:.1f} times the 0.3x wanted")
verdict = "met" if rps_ok and p99_ok else "not met (" + "; ".join(short) + ")"
lines.append(f"  goal: >= 3x requests/s, p99 <= 0.3x at {conns} connections: {verdict}")
lines.append(f"  (same Beast server and load code on both; {conns} connections, {secs:g} s a run, "
             f"{rounds} runs each, ABAB;")
lines.append("   server pinned to core 0, load to core 1; this machine's cores are shared, so "
             "figures vary run to run)")
lines.append(f"  full report (every run's JSON, server logs): {report}/")
text = "\n".join(lines)
print(text)
open(f"{report}/report.txt", "w").write(text + "\n")
json.dump({"connections": conns, "seconds_per_run": secs, "rounds": rounds, "order": "ABAB",
           "veth_driver": driver, "runs": runs, "median": med,
           "ratio": {"rps": rps_ratio, "p50": p50_ratio, "p99": p99_ratio},
           "goal": {"rps_ratio_min": 3.0, "p99_ratio_max": 0.3, "met": rps_ok and p99_ok}},
          open(f"{report}/report.json", "w"), indent=1)
PY
echo
echo "demo.sh: done"
