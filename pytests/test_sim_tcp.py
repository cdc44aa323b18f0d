"""The cross-build determinism check for TCP: `sim_demo --tcp BYTES` (two of our stacks streaming
to each other over faulty simulated links, every byte checked) gives the same trace and event-log
hashes in the gcc + ASan, clang + ASan and gcc -O2 builds, and its pcaps hold real TCP."""
import os
import subprocess

import pytest

from test_sim import builds_with_sim_demo, sim_demo

TCP_BYTES = "262144"


@pytest.mark.parametrize("seed", [1, 7, 123456789])
def test_a_tcp_run_has_the_same_hashes_in_every_build(seed):
    builds = builds_with_sim_demo()
    if os.environ.get("CI") == "true":
        assert set(builds) == {"ci", "fuzz", "release"}, f"scripts/test.sh builds all three: {builds}"
    assert len(builds) >= 2, "need at least two builds (run scripts/test.sh)"
    lines = {name: sim_demo(b, "--tcp", TCP_BYTES, "--hash", "--seed", str(seed)).stdout.strip()
             for name, b in builds.items()}
    assert len(set(lines.values())) == 1, f"TCP seed {seed} diverged across builds: {lines}"
    other = sim_demo(next(iter(builds.values())), "--tcp", TCP_BYTES, "--hash",
                     "--seed", str(seed + 1)).stdout
    assert other.split()[3] != next(iter(lines.values())).split()[3]
    # Not the UDP scenario's hashes: the flag really ran the TCP one.
    udp = sim_demo(next(iter(builds.values())), "--hash", "--seed", str(seed)).stdout.strip()
    assert udp != next(iter(lines.values()))


def test_sim_demo_tcp_transfer_is_intact_and_its_pcaps_are_tcp(bin_dir, tmp_path):
    out = sim_demo(bin_dir, "--tcp", TCP_BYTES, "--seed", "3", "--pcap-dir", str(tmp_path)).stdout
    assert "result    OK" in out, out
    from scapy.all import IP, TCP, rdpcap
    for host in ("client", "server"):
        pcap = tmp_path / f"{host}.pcap"
        r = subprocess.run(["tcpdump", "-nr", str(pcap), "tcp"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        frames = [f for f in rdpcap(str(pcap)) if TCP in f]
        # 256 KiB each way: at least 181 full-sized segments each way, plus ACKs.
        assert len(frames) >= 2 * 181
        assert sum(1 for f in frames if f[TCP].flags & 0x02) >= 2  # SYN, SYN-ACK
        assert any(len(f[TCP].payload) >= 1000 for f in frames)
        # What this host's stack sent (the links corrupt frames only later): checksums right.
        own = "198.18.0.1" if host == "client" else "198.18.0.2"
        for f in frames[:200]:
            if f[IP].src != own:
                continue
            ip_sum, tcp_sum = f[IP].chksum, f[TCP].chksum
            del f[IP].chksum
            del f[TCP].chksum
            rebuilt = f.__class__(bytes(f))
            assert (rebuilt[IP].chksum, rebuilt[TCP].chksum) == (ip_sum, tcp_sum)


def test_sim_demo_tcp_bad_argument(bin_dir):
    r = sim_demo(bin_dir, "--tcp", "0", check=False)
    assert r.returncode == 2 and "--tcp needs a byte count" in r.stderr
