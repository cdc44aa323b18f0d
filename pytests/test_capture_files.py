"""Capture files from outside: the simulator's pcapng traces (written by our pcapng_writer through
frame_capture) read alike by tcpdump, scapy and dpdk-net-decode; pcapng files from other writers
(scapy's PcapNgWriter, a big-endian file built here with struct from draft-ietf-opsawg-pcapng)
read by dpdk-net-decode; malformed files refused with a clear message, never a crash."""
import os
import pathlib
import random
import re
import struct
import subprocess
from decimal import Decimal

import pytest

SEED = 20261201


def run_decode(bin_dir, path):
    return subprocess.run([str(bin_dir / "dpdk-net-decode"), str(path)], capture_output=True,
                          text=True, timeout=60)


def decoded(bin_dir, path):
    import json
    r = run_decode(bin_dir, path)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def sim_trace(bin_dir, out_dir, seed=3):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DPDK_NET_SIM_")}
    r = subprocess.run([str(bin_dir / "sim_demo"), "--seed", str(seed), "--requests", "30",
                        "--pcap-dir", str(out_dir)], capture_output=True, text=True, timeout=120,
                       env=clean)
    assert r.returncode == 0 and "result    OK" in r.stdout, r.stdout + r.stderr
    return out_dir / "server.pcap"


def blocks(data):
    """(type, body) of each block of a pcapng, parsed here from the spec (section 3.1)."""
    out, at, endian = [], 0, "<"
    while at < len(data):
        if data[at:at + 4] == b"\x0a\x0d\x0d\x0a":
            endian = "<" if data[at + 8:at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, length = struct.unpack(endian + "II", data[at:at + 8])
        assert struct.unpack(endian + "I", data[at + length - 4:at + length])[0] == length
        out.append((btype, data[at + 8:at + length - 4], endian))
        at += length
    return out


def options(body, endian):
    at, out = 0, {}
    while at + 4 <= len(body):
        code, length = struct.unpack(endian + "HH", body[at:at + 4])
        if code == 0:
            break
        out[code] = body[at + 4:at + 4 + length]
        at += 4 + (length + 3) // 4 * 4
    return out


def test_sim_trace_reads_alike_in_tcpdump_scapy_and_decode(bin_dir, tmp_path):
    path = sim_trace(bin_dir, tmp_path)
    data = path.read_bytes()
    assert data[:4] == b"\x0a\x0d\x0d\x0a", "a pcapng section header first"
    r = subprocess.run(["tcpdump", "--time-stamp-precision=nano", "-r", str(path), "-nn", "-tt",
                        "-e"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    dump = [(int(m.group(1)) * 10**9 + int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^(\d+)\.(\d{9}) .*?, length (\d+):", r.stdout, re.M)]
    from scapy.utils import rdpcap
    frames = rdpcap(str(path))
    ours = decoded(bin_dir, path)
    assert len(dump) == len(frames) == len(ours) >= 60
    for i, (d, f, o) in enumerate(zip(dump, frames, ours)):
        ts = int(Decimal(f.time) * 10**9)
        assert d == (ts, len(bytes(f))) == (o["ts_ns"], o["caplen"]), i
    assert [d[0] for d in dump] == sorted(d[0] for d in dump)


def test_sim_trace_names_queues_and_directions(bin_dir, tmp_path):
    data = sim_trace(bin_dir, tmp_path).read_bytes()
    bs = blocks(data)
    names = [options(b[8:], e)[2].decode() for t, b, e in bs if t == 1]
    assert names == ["server.eth0/q0"]
    resolution = [options(b[8:], e)[9] for t, b, e in bs if t == 1]
    assert resolution == [b"\x09"]  # nanoseconds
    directions = {1: 0, 2: 0}
    for t, b, e in bs:
        if t != 6:
            continue
        _, _, _, caplen, _ = struct.unpack(e + "IIIII", b[:20])
        frame = b[20:20 + caplen]
        flags = struct.unpack(e + "I", options(b[20 + (caplen + 3) // 4 * 4:], e)[2])[0] & 3
        directions[flags] += 1
        if frame[6:12] == bytes.fromhex("020000000000"):  # sent by the server
            assert flags == 2
        else:
            assert flags == 1
    assert directions[1] > 20 and directions[2] > 20
    assert [t for t, _, _ in bs].count(5) == 1, "one statistics block for the one interface"


def test_same_seed_same_trace_bytes(bin_dir, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = sim_trace(bin_dir, tmp_path / "a", seed=9).read_bytes()
    b = sim_trace(bin_dir, tmp_path / "b", seed=9).read_bytes()
    assert a == b


def test_sim_examples_honour_the_capture_cap_and_ring(bin_dir, tmp_path):
    """--capture-limit / --capture-files with --backend sim: the same bounds as on a live device
    (the simulator's capture path takes the whole capture_options, not just the file name)."""
    def serve(*extra):
        r = subprocess.run([str(bin_dir / "http_server"), "--backend", "sim", "--seed", "3",
                            "--max-seconds", "0.05", *extra], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    whole = tmp_path / "whole.pcapng"
    serve("--capture", str(whole))
    assert whole.stat().st_size > 3 * 65536, "the session must outgrow the cap for this test"
    capped = tmp_path / "capped.pcapng"
    serve("--capture", str(capped), "--capture-limit", "65536")
    assert 60000 < capped.stat().st_size <= 65536
    assert decoded(bin_dir, capped), "the capped file is a complete pcapng"
    ring = tmp_path / "ring.pcapng"
    serve("--capture", str(ring), "--capture-limit", "65536", "--capture-files", "3")
    files = [ring, tmp_path / "ring.pcapng.1", tmp_path / "ring.pcapng.2"]
    assert all(f.exists() and f.stat().st_size <= 65536 for f in files)
    assert not (tmp_path / "ring.pcapng.3").exists()
    for f in files:
        assert decoded(bin_dir, f), f


def golden_frames():
    from scapy.all import IP, UDP, Ether
    return [Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") /
            IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1000 + i, dport=2000) /
            (b"x" * i) for i in range(5)]


def test_decode_reads_scapys_pcapng(bin_dir, tmp_path):
    from scapy.utils import PcapNgWriter
    frames = golden_frames()
    for i, f in enumerate(frames):
        f.time = Decimal(1_700_000_000 + i) + Decimal("0.000250")
    path = tmp_path / "scapy.pcapng"
    w = PcapNgWriter(str(path))
    for f in frames:
        w.write(f)
    w.close()
    out = decoded(bin_dir, path)
    assert [(o["ts_ns"], o["caplen"], o["udp"]["sport"]) for o in out] == [
        ((1_700_000_000 + i) * 10**9 + 250_000, len(bytes(f)), 1000 + i)
        for i, f in enumerate(frames)]


def big_endian_pcapng(frames, linktype=1):
    """Section header (4.1), an interface with if_tsresol 6 (4.2), one enhanced packet block per
    frame (4.3) at i + 0.5 s, all big-endian, built from the spec with struct."""
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack(">II", btype, len(body) + 12) + body + struct.pack(">I", len(body) + 12)
    out = block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack(">HHI", linktype, 0, 65535) +
                 struct.pack(">HH", 9, 1) + b"\x06\0\0\0" + struct.pack(">HH", 0, 0))
    for i, f in enumerate(frames):
        ts = i * 1_000_000 + 500_000
        data = f + b"\0" * (-len(f) % 4)
        out += block(6, struct.pack(">IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) +
                     data + struct.pack(">HHI", 2, 4, 1) + struct.pack(">HH", 0, 0))
    return out


def test_decode_and_tcpdump_read_a_big_endian_pcapng(bin_dir, tmp_path):
    frames = [bytes(f) for f in golden_frames()]
    path = tmp_path / "be.pcapng"
    path.write_bytes(big_endian_pcapng(frames))
    out = decoded(bin_dir, path)
    assert [(o["ts_ns"], o["caplen"]) for o in out] == [
        (i * 10**9 + 500_000_000, len(f)) for i, f in enumerate(frames)]
    r = subprocess.run(["tcpdump", "-r", str(path), "-nn", "-tt"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.findall(r"^(\d+\.\d+) ", r.stdout, re.M) == [f"{i}.500000" for i in range(5)]


def malformed_files():
    good = big_endian_pcapng([bytes(f) for f in golden_frames()])
    rng = random.Random(SEED)
    bad_length = bytearray(good)
    struct.pack_into(">I", bad_length, 28 + 4, 13)  # the interface block's length: not 4k
    return {
        "empty": (b"", "not a pcap or pcapng file"),
        "random": (bytes(rng.randrange(256) for _ in range(300)), "not a pcap or pcapng file"),
        "truncated": (good[:-30], "truncated at byte"),
        "block_length": (bytes(bad_length), "block length 13 is invalid"),
        "not_ethernet": (big_endian_pcapng([b"\x45" + b"\0" * 30], linktype=101),
                         "is not Ethernet"),
    }


@pytest.mark.parametrize("name", sorted(malformed_files()))
def test_decode_refuses_malformed_captures_clearly(bin_dir, tmp_path, name):
    data, message = malformed_files()[name]
    path = tmp_path / f"{name}.pcapng"
    path.write_bytes(data)
    r = run_decode(bin_dir, path)
    assert r.returncode == 1, (r.returncode, r.stderr)  # not a signal: no crash
    assert message in r.stderr, r.stderr
    assert str(path) in r.stderr
    if name == "truncated":
        assert len(r.stdout.splitlines()) == 4  # the frames before the damage


def test_decode_handles_the_last_bytes_of_every_cut(bin_dir, tmp_path):
    good = big_endian_pcapng([bytes(f) for f in golden_frames()[:2]])
    for cut in range(1, len(good), 7):
        path = tmp_path / "cut.pcapng"
        path.write_bytes(good[:len(good) - cut])
        r = run_decode(bin_dir, path)
        assert r.returncode in (0, 1), (cut, r.returncode, r.stderr)
