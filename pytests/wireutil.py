"""Frame construction for the wire-format tests: scapy builds, we patch bytes and re-fix
checksums with scapy's own checksum(), so each malformation is the only thing wrong."""
import json
import pathlib
import re
import struct
import subprocess

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, IPOption_RR, Raw,  # noqa: F401
                       wrpcap)
from scapy.utils import checksum

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Always explicit MACs and addresses: scapy must never resolve (and so never send) anything.
E = dict(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")
SRC, DST = "198.18.0.1", "198.18.0.2"


def rand_ip(rng):
    return f"198.{rng.choice((18, 19))}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def refix(frame, l2=14, ip=True, l4=True):
    """Recomputes the IPv4 header checksum and the ICMP/UDP/TCP checksum of a bytearray frame."""
    ihl = (frame[l2] & 0x0F) * 4
    if ip:
        frame[l2 + 10:l2 + 12] = b"\0\0"
        frame[l2 + 10:l2 + 12] = struct.pack("!H", checksum(bytes(frame[l2:l2 + ihl])))
    if l4:
        proto = frame[l2 + 9]
        total = struct.unpack("!H", frame[l2 + 2:l2 + 4])[0]
        start, end = l2 + ihl, min(l2 + total, len(frame))
        field = {1: 2, 6: 16, 17: 6}.get(proto)
        if field is None or end - start < field + 2:
            return frame
        if proto == 17:  # UDP's checksum covers its own length, not the IP payload's
            ulen = struct.unpack("!H", frame[start + 4:start + 6])[0]
            if 8 <= ulen <= end - start:
                end = start + ulen
        frame[start + field:start + field + 2] = b"\0\0"
        seg = bytes(frame[start:end])
        if proto != 1:
            pseudo = bytes(frame[l2 + 12:l2 + 20]) + struct.pack("!BBH", 0, proto, len(seg))
            seg = pseudo + seg
        c = checksum(seg)
        if proto == 17 and c == 0:
            c = 0xFFFF
        frame[start + field:start + field + 2] = struct.pack("!H", c)
    return frame


def decode(build_dir, frames, tmp_path, name="frames.pcap", extra=()):
    """Writes frames (bytes) to a pcap with scapy and returns the decoder's JSON objects."""
    path = tmp_path / name
    # Raw bytes as they are (scapy would re-dissect, and choke on, a runt frame).
    wrpcap(str(path), [bytes(f) for f in frames], linktype=1)
    r = subprocess.run([str(build_dir / "bin" / "dpdk-net-decode"), *extra, str(path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(out) == len(frames)
    return out


def rule_table():
    """The rows of the rule table in docs/wire.md: id -> (verdict, reason)."""
    rows = {}
    text = (ROOT / "docs" / "wire.md").read_text()
    section = text.split("## Rule table", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        m = re.match(r"^\| (\w+) \| .* \| (accept|reject) \| (\w+) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows
