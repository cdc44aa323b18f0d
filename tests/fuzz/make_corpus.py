#!/usr/bin/python3
"""Writes the fuzzers' seed corpus (tests/fuzz/corpus/<target>/) from the scapy-made golden
frames in tests/unit/wire/golden.hpp: each target gets the slice of every frame it parses."""
import pathlib
import re
import shutil
import struct

from scapy.all import PcapWriter, wrpcap

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE.parent / "unit" / "wire" / "golden.hpp"


def golden_frames():
    text = GOLDEN.read_text()
    frames = {}
    for m in re.finditer(r"inline constexpr std::string_view (\w+) =\s*((?:\"[0-9a-f]*\"\s*)+);",
                         text):
        frames[m.group(1)] = bytes.fromhex("".join(re.findall(r"\"([0-9a-f]*)\"", m.group(2))))
    assert len(frames) >= 8, "golden.hpp not parsed"
    return frames


def main():
    corpus = HERE / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    out = {t: [] for t in ("ethernet", "arp", "ipv4", "icmp", "udp", "tcp", "tcp_options",
                           "frame", "pcap", "stack")}
    frames = golden_frames()
    for name, f in frames.items():
        out["ethernet"].append((name, f))
        # stack: length-prefixed frames, destination MAC ours (first byte even)
        framed = bytes([len(f) >> 8, len(f) & 0xFF]) + bytes([f[0] & 0xFE]) + f[1:]
        out["stack"].append((name, framed * 3))
        out["frame"].append((name, f))
        l2 = 18 if f[12:14] == b"\x81\x00" else 14
        etype = f[l2 - 2:l2]
        if etype == b"\x08\x06":
            out["arp"].append((name, f[l2:]))
            continue
        ip = f[l2:]
        out["ipv4"].append((name, ip))
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        l4 = ip[ihl:total]
        addrs = ip[12:20]
        if ip[6] & 0x3F or ip[7]:
            continue  # a fragment: no L4 header to seed
        if ip[9] == 1:
            out["icmp"].append((name, l4))
        elif ip[9] == 17:
            out["udp"].append((name, addrs + l4))
        elif ip[9] == 6:
            out["tcp"].append((name, addrs + l4))
            doff = (l4[12] >> 4) * 4
            out["tcp_options"].append((name, l4[20:doff]))
    pcap_dir = corpus / "pcap"
    pcap_dir.mkdir(parents=True)
    wrpcap(str(pcap_dir / "golden_us.pcap"), list(frames.values()), linktype=1)
    with PcapWriter(str(pcap_dir / "golden_ns.pcap"), linktype=1, nano=True) as w:
        for f in frames.values():
            w.write(f)
    for target, items in out.items():
        d = corpus / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in items:
            (d / name).write_bytes(data)
    print("corpus:", {t: len(list((corpus / t).iterdir())) for t in out})


if __name__ == "__main__":
    main()
