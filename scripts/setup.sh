#!/usr/bin/env bash
# Installs everything dpdk-net needs on Debian 12, from Debian's packages only.
# Idempotent: a second run installs nothing and finishes in seconds.
#
#   scripts/setup.sh           install what is missing, reserve hugepages (as root)
#   scripts/setup.sh --check   only report: exit 0 if every package is installed, 1 (naming the
#                              missing ones) if not; needs no root. scripts/demo.sh uses it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { printf '[setup] %s\n' "$*"; }

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *)
    echo "[setup] error: unknown argument '$1' (setup.sh [--check])" >&2
    exit 2
    ;;
esac

# Note: libboost1.81-dev conflicts with the 1.74 -dev packages; never add a plain libboost-*-dev here.
packages=(
  g++ clang lld libclang-rt-14-dev cmake ninja-build pkg-config
  libboost1.81-dev
  libdpdk-dev dpdk
  libpcap-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-pytest python3-scapy
  iproute2 iputils-ping ethtool nftables socat netcat-openbsd curl wrk tcpdump valgrind strace
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ $check_only -eq 1 ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    say "missing: ${missing[*]}"
    exit 1
  fi
  say "all ${#packages[@]} packages installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "[setup] error: must run as root (apt-get install, hugepages). Re-run with sudo." >&2
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  # Refresh the lists only when something must be installed (keeps the no-op run fast).
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed ${#missing[@]} package(s)"
else
  say "all ${#packages[@]} packages already installed"
fi

# Hugepages: best effort. DPDK runs with --in-memory/--no-huge without them, so a failure is not fatal.
want_pages=${DPDK_NET_HUGEPAGES:-256}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ]; then
  have=$(cat "$hp")
  if [ "$have" -lt "$want_pages" ]; then
    echo "$want_pages" >"$hp" 2>/dev/null || true
    have=$(cat "$hp")
  fi
  if [ "$have" -ge "$want_pages" ]; then
    say "hugepages: $have x 2 MiB reserved"
  else
    say "hugepages: only $have of $want_pages x 2 MiB could be reserved; DPDK tests fall back to --no-huge"
  fi
else
  say "hugepages: $hp not writable here; DPDK tests fall back to --no-huge"
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null && say "mounted hugetlbfs on /dev/hugepages" ||
    say "hugetlbfs could not be mounted; DPDK tests fall back to --no-huge"
fi
say "done"
