#!/usr/bin/env bash
# THE test command: setup, build, ctest, pytest, fuzz (corpus replay + a short seeded run),
# demo --quick -- each phase timed and budgeted.
# Budgets: setup <= 5 min, build <= 12 min, tests (ctest + pytest + fuzz + demo) <= 12 min,
# all <= 30 min.
# Under CI=true a skipped test fails unless it is on tests/skip_allowlist.txt; every suite has a
# floor on its test count (tests/floors.txt).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

preset=${DPDK_NET_PRESET:-ci}
build_dir="$root/build/$preset"
results="$build_dir/test-results"
python=/usr/bin/python3  # Debian's: pytest and scapy live there, not in the python3 first on PATH

run_start=$(date +%s)
declare -a phase_lines=()
tests_budget=720
tests_used=0

fail() {
  echo "test.sh: FAILED: $*" >&2
  print_times
  exit 1
}
print_times() {
  echo "---- phase times ----"
  for l in "${phase_lines[@]}"; do echo "$l"; done
  echo "total: $(( $(date +%s) - run_start ))s (budget 1800s)"
}
# phase NAME BUDGET_SECONDS COMMAND...: runs COMMAND under `timeout`, records its time.
phase() {
  local name=$1 budget=$2
  shift 2
  echo "==== phase: $name (budget ${budget}s) ===="
  local t0 rc=0
  t0=$(date +%s)
  # Shell functions run in a child bash (exported below) so that `timeout` can bound them too.
  timeout --foreground --kill-after=10 "$budget" bash -c '"$@"' phase "$@" || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  phase_lines+=("$(printf '%-8s %5ss  (budget %ss)%s' "$name" "$dt" "$budget" \
    "$([ $rc -ne 0 ] && echo "  rc=$rc")")")
  LAST_PHASE_SECONDS=$dt
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    fail "phase '$name' exceeded its budget of ${budget}s"
  elif [ $rc -ne 0 ]; then
    fail "phase '$name' exited with $rc"
  fi
}
tests_left() { echo $(( tests_budget - tests_used > 1 ? tests_budget - tests_used : 1 )); }

export root preset build_dir results python
phase setup 300 "$root/scripts/setup.sh"

build() {
  set -euo pipefail  # runs in a child bash (see phase): -e is not inherited
  cmake --preset "$preset" >"$build_dir.configure.log" 2>&1 ||
    { cat "$build_dir.configure.log"; return 1; }
  grep -E '^-- dpdk-net:' "$build_dir.configure.log" || true
  cmake --build --preset "$preset"
  # The libFuzzer targets need clang: a second, small build tree (the SDK, the simulator, the
  # examples and 9 fuzz targets).
  cmake --preset fuzz >"$root/build/fuzz.configure.log" 2>&1 ||
    { cat "$root/build/fuzz.configure.log"; return 1; }
  cmake --build --preset fuzz
  # sim_demo at -O2 too: the same seed must give the same hashes in every build (pytest checks
  # gcc+ASan, clang+ASan and gcc -O2 against each other). tcp_scale_probe: the callgrind cost
  # gate's program (pytests/test_scale_gates.py; valgrind cannot run the ASan tree).
  # runtime_probe: the loop's syscall/allocation gate (pytests/test_runtime_gates.py, no
  # sanitizer under strace); asio_sim_probe: its simulated run's trace hash is compared with the
  # ASan build's (pytests/test_asio_sim.py). http_server, http_load: the demo phase's figures
  # come from release binaries, never from the ASan tree.
  cmake --preset release >"$root/build/release.configure.log" 2>&1 ||
    { cat "$root/build/release.configure.log"; return 1; }
  cmake --build --preset release --target sim_demo tcp_scale_probe runtime_probe asio_sim_probe \
    http_server http_load
}
export -f build
mkdir -p "$root/build"
phase build 720 build

rm -rf "$results" && mkdir -p "$results"
ctest_run() {
  set -euo pipefail  # runs in a child bash (see phase): -e is not inherited
  # Everything but pytest (its own phase). The JSON lists each test's labels for the floors.
  ctest --preset "$preset" --show-only=json-v1 >"$results/ctest-tests.json"
  ctest --preset "$preset" -j2 --output-junit "$results/ctest.xml"
}
export -f ctest_run
phase ctest "$(tests_left)" ctest_run
tests_used=$(( tests_used + LAST_PHASE_SECONDS ))

pytest_run() {
  set -euo pipefail  # runs in a child bash (see phase): -e is not inherited
  local rc=0
  DPDK_NET_BUILD_DIR="$build_dir" "$python" -m pytest -p no:cacheprovider -rs -q \
    --junitxml="$results/pytest.xml" "$root/pytests" || rc=$?
  if [ $rc -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
  fi
  return $rc
}
export -f pytest_run
phase pytest "$(tests_left)" pytest_run
tests_used=$(( tests_used + LAST_PHASE_SECONDS ))

phase fuzz "$(tests_left)" "$root/scripts/fuzz.sh" --ci
tests_used=$(( tests_used + LAST_PHASE_SECONDS ))

# The main job on the release binaries built above (HTTP over DPDK, and against kernel Asio).
phase demo "$(tests_left)" "$root/scripts/demo.sh" --quick --build-dir "$root/build/release"
tests_used=$(( tests_used + LAST_PHASE_SECONDS ))

"$python" "$root/scripts/check_results.py" \
  --ctest-json "$results/ctest-tests.json" --ctest-junit "$results/ctest.xml" \
  --pytest-junit "$results/pytest.xml" \
  --floors "$root/tests/floors.txt" --skip-allowlist "$root/tests/skip_allowlist.txt" ||
  fail "result checks"

total=$(( $(date +%s) - run_start ))
print_times
[ "$total" -le 1800 ] || fail "the whole run took ${total}s, over the 1800s budget"
echo "test.sh: OK"
