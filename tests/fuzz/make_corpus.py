#!/usr/bin/python3
"""Writes the fuzzers' seed corpus (tests/fuzz/corpus/<target>/) from the scapy-made golden
frames in tests/unit/wire/golden.hpp: each target gets the slice of every frame it parses."""
import pathlib
import re
import shutil
import struct

from scapy.all import Ether, PcapNgWriter, PcapWriter

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


def block(kind, body):
    """One big-endian pcapng block: type, total length, body padded to 4, total length again."""
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(">II", kind, n) + body + struct.pack(">I", n)


def option(code, value):
    return struct.pack(">HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def big_endian_pcapng(frames):
    end = option(0, b"")
    out = b""
    for section in range(2):
        out += block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1) + end)
        # interface 0: nanoseconds (if_tsresol 9); interface 1: default microseconds
        out += block(1, struct.pack(">HHI", 1, 0, 65535) + option(9, b"\x09") + end)
        out += block(1, struct.pack(">HHI", 1, 0, 65535) + end)
        for i, f in enumerate(frames):
            ts = 1700000000_000000 + section * 1000 + i  # microseconds
            ts = ts * 1000 if i & 1 == 0 else ts  # interface 0 counts nanoseconds
            flags = option(2, struct.pack(">I", 1 + (i & 1)))  # epb_flags: inbound / outbound
            out += block(6, struct.pack(">IIIII", i & 1, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f))
                         + f + b"\0" * (-len(f) % 4) + flags + end)
        out += block(3, struct.pack(">I", len(frames[0])) + frames[0])
        # statistics: isb_ifdrop (5) = 7 on interface 0
        out += block(5, struct.pack(">III", 0, 0, 0) + option(5, struct.pack(">Q", 7)) + end)
    return out


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
    # Fixed timestamps, so running this script again gives the same seeds.
    packets = []
    for i, f in enumerate(frames.values()):
        p = Ether(f)
        p.time = 1700000000 + i / 1000
        packets.append(p)
    with PcapWriter(str(pcap_dir / "golden_us.pcap"), linktype=1) as w:
        for p in packets:
            w.write(p)
    with PcapWriter(str(pcap_dir / "golden_ns.pcap"), linktype=1, nano=True) as w:
        for p in packets:
            w.write(p)
    # The same frames as pcapng (scapy's writer: section header, interface, enhanced packets),
    # and a hand-laid big-endian pcapng with what scapy does not write: two interfaces, an
    # if_tsresol option, a simple packet block, a statistics block with isb_ifdrop, a second section.
    w = PcapNgWriter(str(pcap_dir / "golden.pcapng"))
    for p in packets:
        w.write(p)
    w.close()
    (pcap_dir / "golden_be.pcapng").write_bytes(big_endian_pcapng(list(frames.values())[:4]))
    for target, items in out.items():
        d = corpus / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in items:
            (d / name).write_bytes(data)
    print("corpus:", {t: len(list((corpus / t).iterdir())) for t in out})


if __name__ == "__main__":
    main()
