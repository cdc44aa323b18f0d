"""TCP at scale, the cost gate that needs callgrind: instructions per request/response in the
simulator at 10 and at 10,000 concurrent connections are within 20 % of each other.

Instruction counts (callgrind's Ir), not timings: they do not depend on the machine's load, so the
tolerance can be tight. bench/tcp_scale_probe.cpp brackets only the measured phase (R exchanges,
a window of 10 outstanding) with callgrind's client requests; setup (N connects) and warm-up run
uninstrumented (--instr-atstart=no), which keeps the 10,000-connection run fast under valgrind.
The program runs from the release tree (-O2): valgrind cannot run the ASan build.
"""
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROBE = ROOT / "build" / "release" / "bin" / "tcp_scale_probe"
REQUESTS = 2000
TOLERANCE = 0.20


def callgrind_run(connections, out_file):
    """Runs the probe under callgrind; returns (total Ir, the probe's printed figures, seconds)."""
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
           f"--callgrind-out-file={out_file}", str(PROBE), str(connections),
           "--requests", str(REQUESTS)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    figures = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition(" ")
        figures[key] = value
    assert figures.get("callgrind_requests") == "yes", \
        "the probe was built without <valgrind/callgrind.h>: its phase markers are no-ops"
    assert int(figures["requests"]) == REQUESTS, r.stdout
    return parse_total_ir(pathlib.Path(out_file).read_text()), figures, seconds


def parse_total_ir(text):
    """The total of the first event (Ir) from a callgrind output file's totals: or summary: line."""
    events = re.search(r"^events:\s*(.+)$", text, re.M)
    assert events and events.group(1).split()[0] == "Ir", "no Ir event in the callgrind output"
    for key in ("totals", "summary"):
        m = re.search(rf"^{key}:\s*(\d+)", text, re.M)
        if m:
            return int(m.group(1))
    raise AssertionError("no totals: or summary: line in the callgrind output")


def stack_ir(out_file):
    """Ir spent in the SDK's own functions (namespace dpdk_net, not the simulator's dpdk_net::sim
    nor the test application's dpdk_net::stack::test), from callgrind_annotate's per-function
    (exclusive) listing. The simulator's per-frame work (trace hashing, link models) is a large
    share of the total and is flat by construction: the SDK's share alone is the sharper gate."""
    r = subprocess.run(["callgrind_annotate", "--auto=no", "--inclusive=no", "--threshold=100",
                        str(out_file)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return sdk_share(r.stdout)


def sdk_share(listing):
    total = 0
    for line in listing.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+?):(.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        function = m.group(3)
        if "dpdk_net::" in function and "dpdk_net::sim::" not in function \
                and "dpdk_net::stack::test::" not in function:
            total += int(m.group(1).replace(",", ""))
    return total


def test_sdk_share_counts_only_the_sdks_functions():
    listing = """\
59,538,393 (100.0%)  PROGRAM TOTALS
15,072,000 (25.31%)  /work/main/sim/src/network.cpp:dpdk_net::sim::network::record_frame(x) [p]
 8,024,000 (13.48%)  /work/main/sdk/src/wire/checksum.cpp:dpdk_net::wire::checksum_accumulator::add(y) [p]
   784,000 ( 1.32%)  /usr/include/c++/12/bit:dpdk_net::stack::siphash24(k, unsigned long)
   723,000 ( 1.21%)  /work/main/tests/unit/stack/tcp_rr_app.cpp:dpdk_net::stack::test::rr_client::on_pump(t) [p]
   100,000 ( 0.17%)  ./string/memmove.S:__memcpy_avx_unaligned_erms [/usr/lib/libc.so.6]
"""
    assert sdk_share(listing) == 8_024_000 + 784_000


def test_parse_total_ir_reads_the_totals_line():
    # The format as callgrind writes it (callgrind_format: "totals:" and/or "summary:").
    sample = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfl=(1) a.c\nfn=(1) f\n3 10\n" \
             "totals: 12345\n"
    assert parse_total_ir(sample) == 12345
    assert parse_total_ir("events: Ir\nsummary: 77\n") == 77
    with pytest.raises(AssertionError):
        parse_total_ir("events: Dr\ntotals: 5\n")


def test_instructions_per_request_are_flat_from_10_to_10000_connections(tmp_path):
    if shutil.which("valgrind") is None:
        pytest.fail("valgrind is not installed (scripts/setup.sh installs it)")
    if not PROBE.is_file():
        pytest.fail(f"{PROBE} is missing: scripts/test.sh builds it in the release tree "
                    "(cmake --build --preset release --target tcp_scale_probe)")
    results = {}
    for n in (10, 10000):
        out_file = tmp_path / f"callgrind.{n}.out"
        ir, figures, seconds = callgrind_run(n, out_file)
        results[n] = (ir / REQUESTS, stack_ir(out_file) / REQUESTS, figures, seconds)
    for n, (per, sdk, figures, seconds) in results.items():
        print(f"tcp_scale_probe {n:>5} connections: {per:,.0f} Ir/request, of which the SDK "
              f"{sdk:,.0f} ({figures['segments_per_request']} segments, "
              f"{figures['output_visits_per_request']} output visits, "
              f"{figures['demux_lookups_per_request']} lookups per request; {seconds:.1f} s "
              "under valgrind)")
    # The same traffic at both sizes (otherwise the comparison says nothing): exactly the same
    # segments, lookups and visits per request.
    for key in ("segments_per_request", "demux_lookups_per_request", "output_visits_per_request"):
        assert results[10][2][key] == results[10000][2][key], \
            f"{key} differs: {results[10][2][key]} vs {results[10000][2][key]}"
    for what, i in (("Ir per request", 0), ("the SDK's Ir per request", 1)):
        small, large = results[10][i], results[10000][i]
        ratio = large / small
        assert abs(ratio - 1) <= TOLERANCE, \
            f"{what}: {small:,.0f} at 10 connections, {large:,.0f} at 10,000 " \
            f"(x{ratio:.2f}, tolerance {TOLERANCE:.0%})"
