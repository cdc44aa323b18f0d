#!/usr/bin/env bash
# Fuzzes the wire parsers with libFuzzer (clang, `fuzz` preset).
#
#   scripts/fuzz.sh --ci                 replay the seed corpus, then a fixed number of inputs per
#                                        target with a fixed seed (what scripts/test.sh runs)
#   scripts/fuzz.sh [--time S] [T ...]   fuzz targets T (default: all) for S seconds each (default
#                                        60); new inputs and crashes go to build/fuzz/findings/
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=long
seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) mode=ci ;;
    --time)
      [ $# -ge 2 ] || { echo "fuzz.sh: --time needs seconds" >&2; exit 2; }
      seconds=$2
      shift
      ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(ethernet arp ipv4 icmp udp tcp tcp_options frame pcap stack)

if [ "$mode" = long ] || [ ! -x "$root/build/fuzz/bin/fuzz_frame" ]; then
  (cd "$root" && cmake --preset fuzz >/dev/null && cmake --build --preset fuzz)
fi
bin="$root/build/fuzz/bin"
findings="$root/build/fuzz/findings"
for t in "${targets[@]}"; do
  corpus="$root/tests/fuzz/corpus/$t"
  [ -x "$bin/fuzz_$t" ] || { echo "fuzz.sh: no target '$t'" >&2; exit 2; }
  [ -d "$corpus" ] || { echo "fuzz.sh: no seed corpus for '$t' (run tests/fuzz/make_corpus.py)" >&2; exit 1; }
  mkdir -p "$findings/$t"
  if [ "$mode" = ci ]; then
    # New inputs go to a scratch dir (first argument), never into the committed corpus.
    scratch=$(mktemp -d)
    runs=200000
    [ "$t" = stack ] && runs=10000  # each input builds a whole stack: ~0.7 ms
    "$bin/fuzz_$t" -seed=1 -runs=$runs -max_len=2048 -timeout=10 -artifact_prefix="$findings/$t/" \
      "$scratch" "$corpus" 2>"$findings/$t/log" ||
      { rm -rf "$scratch"; tail -30 "$findings/$t/log"; echo "fuzz.sh: fuzz_$t FAILED (seed 1)" >&2; exit 1; }
    rm -rf "$scratch"
    echo "fuzz_$t: $(grep -E '^Done' "$findings/$t/log" | head -1) (corpus $(ls "$corpus" | wc -l) seeds)"
  else
    "$bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -artifact_prefix="$findings/$t/" \
      "$findings/$t" "$corpus"
  fi
done
echo "fuzz.sh: all ${#targets[@]} targets passed"
