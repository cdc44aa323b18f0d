"""Cost gates on the runtime's loop (issues 12 and 13): counts, not timings.

bench/runtime_probe runs two runtimes over an in-memory poll-mode device pair, a coroutine client
and echo server doing 64-byte request/response through our Asio sockets. After a warm-up it
brackets a window of N loop iterations with two getppid() calls. Under strace we count every
syscall between the markers; in-process it counts heap allocations and the context's events and
sockets visited. The release build runs it (scripts/test.sh builds it there), no sanitizer."""
import json
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROBE = ROOT / "build" / "release" / "bin" / "runtime_probe"
ITERATIONS = 20000


def syscalls_between_markers(trace_text):
    """Syscall names traced strictly between the first and second getppid() call."""
    names, inside = [], False
    for line in trace_text.splitlines():
        m = re.match(r"^\d+\s+([a-z_0-9]+)\(", line)
        if not m:
            continue
        if m.group(1) == "getppid":
            if inside:
                return names
            inside = True
            continue
        if inside:
            names.append(m.group(1))
    raise AssertionError("markers not found in the trace")


def test_marker_parser_counts_only_the_window():
    trace = "\n".join([
        "12 write(1, \"x\", 1) = 1",
        "12 getppid() = 5",
        "12 epoll_wait(3, [], 128, 0) = 0",
        "12 epoll_wait(3, [], 128, 0) = 0",
        "12 getppid() = 5",
        "12 write(1, \"y\", 1) = 1",
    ])
    assert syscalls_between_markers(trace) == ["epoll_wait", "epoll_wait"]


def run_probe(tmp_path, *args):
    if not PROBE.exists():
        pytest.fail(f"{PROBE} is missing: scripts/test.sh builds it in the release tree "
                    "(cmake --build --preset release --target runtime_probe)")
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: run scripts/setup.sh")
    trace = tmp_path / "trace.txt"
    out = subprocess.run(["strace", "-f", "-o", str(trace), str(PROBE), "--iterations",
                          str(ITERATIONS), *args], capture_output=True, text=True, timeout=120,
                         check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures, syscalls_between_markers(trace.read_text())


def test_no_syscall_and_no_allocation_per_iteration_in_steady_state(tmp_path):
    figures, calls = run_probe(tmp_path)
    print(figures)
    assert figures["round_trips"] >= ITERATIONS // 2, figures  # the window did real work
    assert calls == [], f"syscalls inside the loop window: {calls[:20]}"
    assert figures["allocations"] == 0, figures
    # Events, not scans: every socket looked at was named by an event.
    assert figures["sockets_visited"] == figures["events"], figures


def test_plain_asio_timer_bounds_the_reactor_polls_to_one_per_millisecond(tmp_path):
    figures, calls = run_probe(tmp_path, "--foreign-timer")
    print(figures, len(calls))
    assert set(calls) <= {"epoll_wait"}, sorted(set(calls))
    # At most one io_context poll (one epoll_wait) per millisecond of the window, plus one.
    assert len(calls) <= figures["seconds"] * 1000 + 1, (len(calls), figures)
    assert len(calls) == figures["foreign_polls"], (len(calls), figures)
    assert figures["allocations"] == 0, figures


def test_multi_worker_hand_over_costs_no_syscall_and_no_allocation(tmp_path):
    """Two workers per side over a device that lands everything on queue 0 (software steering):
    frames for worker 1 are handed over its ring, copied into its pool, the originals sent back
    -- with no syscall and no allocation in the window (issue 13)."""
    figures, calls = run_probe(tmp_path, "--workers", "2")
    print(figures)
    assert figures["round_trips"] >= ITERATIONS // 4, figures
    assert figures["handed_over"] >= figures["round_trips"] // 2, figures  # the path is exercised
    assert calls == [], f"syscalls inside the loop window: {calls[:20]}"
    assert figures["allocations"] == 0, figures


def test_disabled_capture_costs_no_syscall_and_no_allocation(tmp_path):
    """Both devices wrapped in a capture_device whose capture is open but switched off (issue 15):
    the loop window has no syscall, no allocation and writes no frame; the file holds only its
    section and interface headers."""
    path = tmp_path / "off.pcapng"
    figures, calls = run_probe(tmp_path, "--capture-off", str(path))
    print(figures)
    assert figures["round_trips"] >= ITERATIONS // 2, figures
    assert calls == [], f"syscalls inside the loop window: {calls[:20]}"
    assert figures["allocations"] == 0, figures
    assert figures["captured_frames"] == 0, figures
    from scapy.utils import rdpcap
    assert len(rdpcap(str(path))) == 0


def test_enabled_capture_writes_every_frame_of_the_window(tmp_path):
    """The control for the test above: switched on, the same wrapper writes the frames (each round
    trip is at least two frames each way: request, response, and their ACKs may ride along)."""
    path = tmp_path / "on.pcapng"
    figures, calls = run_probe(tmp_path, "--capture-on", str(path))
    print(figures, len(calls))
    assert figures["captured_frames"] >= 2 * figures["round_trips"], figures
    assert "write" in calls, sorted(set(calls))
