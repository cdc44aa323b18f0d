#!/usr/bin/python3
"""Expected SYN cookies for tests/unit/stack/tcp_queue_test.cpp, computed from the layout that
docs/tcp.md "Queues and SYN cookies" documents, with SipHash-2-4 written out here from the paper
(Aumasson and Bernstein, 2012; checked against its reference vector below), never from our
engine. Run it and compare with the constants the tests quote:

    /usr/bin/python3 scripts/syn_cookie_expected.py

The layout (detail/tcp_syn_cookie.hpp says the same):
  K    = derive_key(secret, tcp_syn_cookie): (SipHash(secret; le64(6) le64(0)),
                                              SipHash(secret; le64(6) le64(1)))
         (key purposes count from 0, tcp_syn_cookie is the 6th, and derive_key hashes purpose + 1)
  K_p  = (SipHash(K; le64(p) le64(0)), SipHash(K; le64(p) le64(1))),  p = now // period
  h    = SipHash(K_p; le64(w0) le64(w1) le64(m))
         w0 = remote << 32 | remote port << 16 | local port, w1 = local << 32 | peer ISN
  ISN  = (h mod 2^32) with the low 3 bits replaced by m, the index of the largest
         {64, 536, 1220, 1300, 1400, 1440, 1460, 8960} entry <= the peer's MSS (536 if none)
  TSval (timestamps only) = our clock (now in ms + offset) with its low 6 bits replaced by
         ws (0..14, 15 = none) | sack << 4, less 64 if that is above the clock; the offset is
         SipHash(K_isn; le64(remote << 32 | 0x7473) le64(remote port << 16 | local port)) mod 2^32
         with K_isn = derive_key(secret, tcp_isn) (purpose 5)
"""

import struct

MASK = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(k0, k1, data):
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rnd():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & MASK
        v1 = rotl(v1, 13) ^ v0
        v0 = rotl(v0, 32)
        v2 = (v2 + v3) & MASK
        v3 = rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & MASK
        v3 = rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & MASK
        v1 = rotl(v1, 17) ^ v2
        v2 = rotl(v2, 32)

    whole = len(data) - len(data) % 8
    blocks = [int.from_bytes(data[i:i + 8], "little") for i in range(0, whole, 8)]
    last = int.from_bytes(data[whole:], "little") | ((len(data) & 0xFF) << 56)
    for m in blocks + [last]:
        v3 ^= m
        rnd()
        rnd()
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        rnd()
    return v0 ^ v1 ^ v2 ^ v3


def le(*words):
    return b"".join(struct.pack("<Q", w) for w in words)


# The paper's reference vector (appendix A): key 00..0f, message 00..0e.
assert siphash24(0x0706050403020100, 0x0F0E0D0C0B0A0908, bytes(range(15))) == 0xA129CA6149BE45E5

PURPOSE_TCP_ISN = 4
PURPOSE_TCP_SYN_COOKIE = 5
MSS_TABLE = [64, 536, 1220, 1300, 1400, 1440, 1460, 8960]


def derive_key(secret, purpose):
    p = purpose + 1
    return siphash24(*secret, le(p, 0)), siphash24(*secret, le(p, 1))


def ip(a, b, c, d):
    return (a << 24) | (b << 16) | (c << 8) | d


def mss_index(mss):
    return max(i for i, v in enumerate(MSS_TABLE) if v <= mss) if mss >= 64 else 0


def cookie(secret, now_ns, period_ns, local, remote, lport, rport, peer_isn, mss):
    k = derive_key(secret, PURPOSE_TCP_SYN_COOKIE)
    p = now_ns // period_ns
    kp = (siphash24(*k, le(p, 0)), siphash24(*k, le(p, 1)))
    m = mss_index(mss)
    w0 = (remote << 32) | (rport << 16) | lport
    w1 = (local << 32) | peer_isn
    h = siphash24(*kp, le(w0, w1, m)) & 0xFFFFFFFF
    return (h & ~7 & 0xFFFFFFFF) | m


def tsval(secret, now_ns, remote, lport, rport, ws, sack):
    kisn = derive_key(secret, PURPOSE_TCP_ISN)
    offset = siphash24(*kisn, le((remote << 32) | 0x7473, (rport << 16) | lport)) & 0xFFFFFFFF
    clock = (now_ns // 1_000_000 + offset) & 0xFFFFFFFF
    bits = (15 if ws is None else min(ws, 14)) | (16 if sack else 0)
    ts = (clock & ~63 & 0xFFFFFFFF) | bits
    if ((ts - clock) & 0xFFFFFFFF) != 0 and ((ts - clock) & 0xFFFFFFFF) < 0x80000000:
        ts = (ts - 64) & 0xFFFFFFFF
    return ts


def main():
    # The script fixture (tests/unit/stack/tcp_script.{hpp,cpp}): secret {0x5eed, 0x7c9}, we are
    # 198.18.0.1:8080, the peer 198.18.0.2:40000 with ISN 1000000; the stack's clock is 1 s at
    # script time 0; the default period is 64 s.
    secret = (0x5EED, 0x7C9)
    us, peer = ip(198, 18, 0, 1), ip(198, 18, 0, 2)
    now = 1_000_000_000
    period = 64_000_000_000
    print("# TcpQueue.CookieMatchesAnIndependentComputation: SYN at script time 0 from port 40000,")
    print("# ISN 1000000, MSS 1460, window scale 7, timestamps, no SACK-permitted")
    c = cookie(secret, now, period, us, peer, 8080, 40000, 1000000, 1460)
    t = tsval(secret, now, peer, 8080, 40000, 7, False)
    print(f"cookie ISN = {c:#010x} ({c}), MSS index {c & 7}")
    print(f"TSval      = {t:#010x} ({t}), option bits {t & 63}")
    print("# the same SYN 64 s later (the next period): another cookie")
    c2 = cookie(secret, now + period, period, us, peer, 8080, 40000, 1000000, 1460)
    print(f"cookie ISN = {c2:#010x} ({c2})")
    print("# port 40001, ISN 1000000, MSS 1000 (index of 536), no options")
    c3 = cookie(secret, now, period, us, peer, 8080, 40001, 1000000, 1000)
    print(f"cookie ISN = {c3:#010x} ({c3}), MSS index {c3 & 7}")


if __name__ == "__main__":
    main()
