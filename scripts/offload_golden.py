#!/usr/bin/python3
"""Golden frames for the memory device's offload emulation (tests/unit/memory_device_test.cpp,
suites MemoryDeviceOffload*), built with scapy, never with our own frame builder. Run it and paste
its output over the constants the test quotes:  /usr/bin/python3 scripts/offload_golden.py

Two kinds of frame:
 * input: what a stack hands a device that offloads (DPDK semantics): the IPv4 header checksum 0
   and the TCP/UDP checksum field holding the pseudo-header sum (RFC 793/768 formula, folded, not
   inverted, as rte_ipv4_phdr_cksum returns it) with the L4 length, or without it under TSO;
 * expected: what the wire carries, every checksum computed by scapy.

Payload byte k of every frame is (7 * k + 3) & 0xff (the test makes it with the same formula), so
for the TSO case only the 66 header bytes of each frame are printed: the payload is the slice of
the pattern, and the printed checksums cover it.
"""

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"  # memory_link_config defaults
SRC, DST = "10.0.0.1", "10.0.0.2"


def pattern(n, start=0):
    return bytes(((7 * (start + k) + 3) & 0xFF) for k in range(n))


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def pseudo_sum(proto, l4_len=None):
    """rte_ipv4_phdr_cksum: src, dst, protocol (and the L4 length unless TSO), folded."""
    words = struct.unpack("!4H", bytes(map(int, SRC.split("."))) + bytes(map(int, DST.split("."))))
    s = sum(words) + proto + (l4_len if l4_len is not None else 0)
    return fold(s)


def with_seed(frame, l4_cksum_offset, seed):
    """The frame as a stack prepares it for offload: IP checksum 0, L4 checksum = seed."""
    b = bytearray(frame)
    b[14 + 10 : 14 + 12] = b"\0\0"
    b[l4_cksum_offset : l4_cksum_offset + 2] = struct.pack("!H", seed)
    return bytes(b)


def emit(name, data):
    h = data.hex()
    print(f"// {len(data)} bytes")
    print(f"constexpr const char* {name} =")
    for i in range(0, len(h), 88):
        end = ";" if i + 88 >= len(h) else ""
        print(f'    "{h[i:i + 88]}"{end}')


def build(l4, payload, ip_id, ip_flags="DF"):
    return bytes(Ether(dst=MAC_B, src=MAC_A) / IP(src=SRC, dst=DST, id=ip_id, flags=ip_flags) / l4
                 / payload)


# --- TSO: 3210 bytes, mss 1000 -> 1000, 1000, 1000, 210. Sequence number and IP id both wrap. ---
TSO_PAYLOAD, MSS = 3210, 1000
SEQ, ACK, IP_ID = 0xFFFFFC00, 0x01020304, 0xFFFE
TS_OPTS = [("NOP", None), ("NOP", None), ("Timestamp", (0x11223344, 0x55667788))]


def tso_tcp(seq, flags):
    return TCP(sport=40000, dport=80, seq=seq, ack=ACK, flags=flags, window=502, options=TS_OPTS)


superframe = build(tso_tcp(SEQ, "FPAC"), pattern(TSO_PAYLOAD), IP_ID)
emit("tso_super_headers", with_seed(superframe, 14 + 20 + 16, pseudo_sum(6))[:66])
pieces = []
for i, off in enumerate(range(0, TSO_PAYLOAD, MSS)):
    n = min(MSS, TSO_PAYLOAD - off)
    first, last = off == 0, off + n == TSO_PAYLOAD
    flags = "A" + ("C" if first else "") + ("FP" if last else "")  # CWR first, FIN+PSH last
    seq = (SEQ + off) & 0xFFFFFFFF
    frame = build(tso_tcp(seq, flags), pattern(n, off), (IP_ID + i) & 0xFFFF)
    emit(f"tso_piece{i}_headers", frame[:66])

# --- TCP checksum: odd payload (37 bytes), no options. ---
tcp = build(TCP(sport=1234, dport=5678, seq=1, ack=2, flags="PA", window=1000), pattern(37), 0x0101)
emit("tcp_input", with_seed(tcp, 14 + 20 + 16, pseudo_sum(6, 20 + 37)))
emit("tcp_expected", tcp)

# --- UDP checksum: 45 bytes of payload. ---
udp = build(UDP(sport=5353, dport=9999), pattern(45), 0x0202)
emit("udp_input", with_seed(udp, 14 + 20 + 6, pseudo_sum(17, 8 + 45)))
emit("udp_expected", udp)

# --- UDP whose checksum computes to 0: sent as 0xffff (RFC 768). The last two payload bytes are
# solved for so that the one's-complement sum of everything else is cancelled. ---
body = bytearray(pattern(16))
body[14:16] = b"\0\0"
frame = build(UDP(sport=7, dport=7, chksum=0), bytes(body), 0x0303)
s = fold(pseudo_sum(17, 8 + 16) + sum(struct.unpack("!12H", frame[34:58])))
body[14:16] = struct.pack("!H", 0xFFFF - s)  # the total sum becomes 0xffff: checksum ~0 = 0
udp0 = build(UDP(sport=7, dport=7), bytes(body), 0x0303)
assert udp0[40:42] == b"\xff\xff", udp0[40:42].hex()
emit("udp_zero_input", with_seed(udp0, 14 + 20 + 6, pseudo_sum(17, 8 + 16)))
emit("udp_zero_expected", udp0)

# --- A first fragment (MF set) of a UDP datagram: the device must not judge its L4 checksum. ---
frag = build(UDP(sport=5353, dport=9999, len=8 + 64, chksum=0x1234), pattern(24), 0x0404,
             ip_flags="MF")
emit("udp_fragment", frag)
