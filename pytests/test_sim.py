"""The simulator from outside: determinism across builds and compilers, traces readable by
tcpdump and scapy (the determinism ban-list is in test_banlist.py)."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sim_demo(bin_dir, *args, check=True, env=None):
    # The harness's variables would change the run: only what a test sets reaches sim_demo.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DPDK_NET_SIM_")}
    clean.update(env or {})
    return subprocess.run([str(bin_dir / "sim_demo"), *args], capture_output=True, text=True,
                          timeout=120, check=check, env=clean)


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


def test_sim_demo_takes_its_seed_from_the_environment_like_the_tests(bin_dir):
    from_env = sim_demo(bin_dir, "--hash", env={"DPDK_NET_SIM_SEED": "7"}).stdout
    from_flag = sim_demo(bin_dir, "--hash", "--seed", "7").stdout
    default = sim_demo(bin_dir, "--hash").stdout
    assert from_env == from_flag and from_env.split()[1] == "7"
    assert default.split()[1] == "1" and default != from_env
    # A swarm seed's repro line sets DPDK_NET_SIM_SWARM=1: the fault rates come from the seed.
    swarm = sim_demo(bin_dir, "--requests", "20",
                     env={"DPDK_NET_SIM_SEED": "7", "DPDK_NET_SIM_SWARM": "1"}).stdout
    assert "links     swarm:" in swarm and "result    OK" in swarm
    swarm_hash = sim_demo(bin_dir, "--hash",
                          env={"DPDK_NET_SIM_SEED": "7", "DPDK_NET_SIM_SWARM": "1"}).stdout
    assert swarm_hash.split()[1] == "7" and swarm_hash != from_env
    bad = sim_demo(bin_dir, "--hash", env={"DPDK_NET_SIM_SEED": "x"}, check=False)
    assert bad.returncode == 2 and "DPDK_NET_SIM_SEED must be a whole number" in bad.stderr


def test_every_sim_demo_host_runs_the_ip_stack(bin_dir, tmp_path):
    # Hand-built frames need no ARP; our stack resolves the server before its first datagram
    # and answers the clients' requests, and its IPv4 and UDP checksums are right.
    out = sim_demo(bin_dir, "--seed", "4", "--requests", "20", "--loss", "0",
                   "--pcap-dir", str(tmp_path)).stdout
    assert "result    OK" in out and "dpdk-net IPv4 stack" in out
    from scapy.all import ARP, IP, UDP, rdpcap
    server_ip = "198.18.0.10"
    for client, ip in (("client1", "198.18.0.11"), ("client2", "198.18.0.12")):
        frames = rdpcap(str(tmp_path / f"{client}.pcap"))
        arps = [f for f in frames if ARP in f]
        assert any(f[ARP].op == 1 and f[ARP].psrc == ip and f[ARP].pdst == server_ip
                   for f in arps), f"{client} never asked for the server's MAC"
        assert any(f[ARP].op == 2 and f[ARP].psrc == server_ip and f[ARP].pdst == ip
                   for f in arps), f"the server's stack never answered {client}"
        first_udp = next(i for i, f in enumerate(frames) if UDP in f)
        first_arp = next(i for i, f in enumerate(frames) if ARP in f)
        assert first_arp < first_udp
    # What the server's stack sent, as it left its NIC (the links corrupt 1 % of frames later).
    echoes = [f for f in rdpcap(str(tmp_path / "server.pcap")) if UDP in f and f[IP].src == server_ip]
    assert len(echoes) >= 40
    for f in echoes:
        ip_sum, udp_sum = f[IP].chksum, f[UDP].chksum
        del f[IP].chksum
        del f[UDP].chksum
        rebuilt = f.__class__(bytes(f))
        assert (rebuilt[IP].chksum, rebuilt[UDP].chksum) == (ip_sum, udp_sum)
