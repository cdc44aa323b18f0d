"""The Asio application in the simulator is deterministic (issue 12).

bench/asio_sim_probe runs a coroutine echo (dpdk_net::tcp sockets, sim_runtime on two simulated
hosts) over a link that loses, reorders and duplicates frames, and prints the trace hash (every
frame sent and received, with its virtual time). Same seed, same line -- twice in one build and
across the ASan (gcc -O1) and release (gcc -O2) builds; another seed, another hash. (The clang fuzz
tree builds without Boost.) http_server --backend sim, the Beast application, is checked for the
same within one build."""
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def probe(bin_dir, seed):
    r = subprocess.run([str(bin_dir / "asio_sim_probe"), "--seed", str(seed)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ": intact," in r.stdout, r.stdout
    return r.stdout.strip()


def test_same_seed_same_trace_other_seed_other_trace(bin_dir):
    a, b = probe(bin_dir, 5), probe(bin_dir, 5)
    assert a == b, "seed 5 ran twice: the traces differ"
    assert probe(bin_dir, 6).split("trace ")[1] != a.split("trace ")[1]


def test_the_trace_is_the_same_in_the_release_build(bin_dir):
    release = ROOT / "build" / "release" / "bin"
    if not (release / "asio_sim_probe").exists():
        pytest.fail(f"{release}/asio_sim_probe is missing: scripts/test.sh builds it there")
    assert probe(bin_dir, 7) == probe(release, 7), "seed 7: the ASan and -O2 builds differ"


def http_sim_trace(bin_dir, seed):
    r = subprocess.run([str(bin_dir / "http_server"), "--backend", "sim", "--seed", str(seed),
                        "--max-seconds", "0.05"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"sim \(seed \d+\): \d+ checks, 0 failed, trace ([0-9a-f]{16})", r.stdout)
    assert m, r.stdout
    return m.group(1)


def test_the_beast_server_in_the_simulator_repeats_per_seed(bin_dir):
    assert http_sim_trace(bin_dir, 3) == http_sim_trace(bin_dir, 3)
