"""The simulator from outside: determinism across builds and compilers, traces readable by
tcpdump and scapy (the determinism ban-list is in test_banlist.py)."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sim_demo(bin_dir, *args, check=True):
    return subprocess.run([str(bin_dir / "sim_demo"), *args], capture_output=True, text=True,
                          timeout=120, check=check)


def builds_with_sim_demo():
    found = {}
    for name in ("ci", "fuzz", "release"):
        exe = ROOT / "build" / name / "bin" / "sim_demo"
        if exe.is_file():
            found[name] = exe.parent
    return found


@pytest.mark.parametrize("seed", [1, 7, 123456789])
def test_same_seed_same_hashes_in_every_build(seed):
    builds = builds_with_sim_demo()
    if os.environ.get("CI") == "true":
        assert set(builds) == {"ci", "fuzz", "release"}, f"scripts/test.sh builds all three: {builds}"
    assert len(builds) >= 2, "need at least two builds (run scripts/test.sh)"
    lines = {name: sim_demo(b, "--hash", "--seed", str(seed)).stdout.strip()
             for name, b in builds.items()}
    assert len(set(lines.values())) == 1, f"seed {seed} diverged across builds: {lines}"
    other = sim_demo(next(iter(builds.values())), "--hash", "--seed", str(seed + 1)).stdout
    assert other.split()[3] != next(iter(lines.values())).split()[3]


def test_traces_are_readable_by_tcpdump_and_scapy(bin_dir, tmp_path):
    out = sim_demo(bin_dir, "--seed", "3", "--requests", "50", "--pcap-dir", str(tmp_path)).stdout
    assert "result    OK" in out
    from scapy.all import UDP, rdpcap
    for host in ("server", "client1", "client2"):
        pcap = tmp_path / f"{host}.pcap"
        r = subprocess.run(["tcpdump", "-nr", str(pcap), "--count"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        count = int(re.search(r"^(\d+) packets?$", r.stdout, re.M).group(1))
        assert count >= 100
        frames = rdpcap(str(pcap))
        assert len(frames) == count
        assert sum(1 for f in frames if UDP in f) >= 90
    # Nanosecond timestamps, increasing.
    times = [float(f.time) for f in rdpcap(str(tmp_path / "server.pcap"))]
    assert times == sorted(times) and times[-1] > times[0]


def test_sim_demo_survives_heavy_loss_and_is_reproducible(bin_dir):
    a = sim_demo(bin_dir, "--seed", "9", "--loss", "0.3", "--requests", "30").stdout
    b = sim_demo(bin_dir, "--seed", "9", "--loss", "0.3", "--requests", "30").stdout
    assert "result    OK" in a and a == b
    retrans = [int(m) for m in re.findall(r"(\d+) retransmissions", a)]
    assert retrans and all(r > 0 for r in retrans)


@pytest.mark.parametrize("args,message", [
    (["--seed", "x"], "--seed needs a whole number"),
    (["--loss", "2"], "--loss needs a probability"),
    (["--requests", "0"], "--requests needs"),
    (["--what"], "unknown argument"),
])
def test_sim_demo_bad_arguments(bin_dir, args, message):
    r = sim_demo(bin_dir, *args, check=False)
    assert r.returncode == 2 and message in r.stderr
