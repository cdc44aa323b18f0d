"""The Asio application in the simulator is deterministic (issue 12): http_server --backend sim runs
the Beast server and its checking/loading clients as coroutines on two simulated hosts over a
mildly lossy link, and prints the trace hash (every frame sent and received, with its virtual
time). Same seed, same hash -- twice in one build and across the ASan (gcc -O1) and release
(gcc -O2) builds; another seed, another hash. (The clang fuzz tree builds without Boost.)"""
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sim_trace(bin_dir, seed):
    r = subprocess.run([str(bin_dir / "http_server"), "--backend", "sim", "--seed", str(seed),
                        "--max-seconds", "0.05"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"sim \(seed \d+\): (\d+) checks, 0 failed, trace ([0-9a-f]{16})", r.stdout)
    assert m, r.stdout
    return m.group(2)


def test_same_seed_same_trace_other_seed_other_trace(bin_dir):
    a, b = sim_trace(bin_dir, 5), sim_trace(bin_dir, 5)
    assert a == b, "seed 5 ran twice: the traces differ"
    assert sim_trace(bin_dir, 6) != a


def test_the_trace_is_the_same_in_the_release_build(bin_dir):
    release = ROOT / "build" / "release" / "bin"
    if not (release / "http_server").exists():
        pytest.fail(f"{release}/http_server is missing: scripts/test.sh builds it (release tree)")
    assert sim_trace(bin_dir, 7) == sim_trace(release, 7), "seed 7: ASan and -O2 builds differ"
