"""Our IPv4 stack over TAP with the Linux kernel as the peer: the kernel pings us, kernel UDP
sockets talk to udp_echo, a closed port answers with ICMP port unreachable, and malformed frames
sent by scapy are dropped and counted while pings keep working. Unique interface names; the
interface disappears with the process; 198.18.0.0/15 only."""
import errno
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest


@pytest.fixture
def echo(bin_dir):
    name = f"dnu{os.getpid() % 100000}"
    third = 100 + os.getpid() % 100
    ours, kernel = f"198.18.{third}.2", f"198.18.{third}.1"
    proc = subprocess.Popen([str(bin_dir / "udp_echo"), "--backend", "tap", "--iface", name,
                             "--ip", f"{ours}/24", "--kernel-ip", kernel, "--port", "7",
                             "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert "echoing UDP port 7" in line, line + proc.stderr.read()
        yield {"name": name, "ours": ours, "kernel": kernel, "proc": proc}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not os.path.exists(f"/sys/class/net/{name}"), "TAP interface left behind"


def counters(echo):
    echo["proc"].send_signal(signal.SIGTERM)
    out, _ = echo["proc"].communicate(timeout=10)
    return json.loads(out.strip().splitlines()[-1])


def macs(echo):
    """(our stack's MAC, the kernel side's MAC), learned the way the kernel does: by a ping."""
    from scapy.all import get_if_hwaddr
    assert ping(echo["ours"], 1).returncode == 0
    neigh = subprocess.run(["ip", "neigh", "show", echo["ours"], "dev", echo["name"]],
                           capture_output=True, text=True).stdout
    return re.search(r"lladdr ([0-9a-f:]{17})", neigh).group(1), get_if_hwaddr(echo["name"])


def ping(addr, count=3):
    return subprocess.run(["ping", "-c", str(count), "-i", "0.2", "-W", "2", addr],
                          capture_output=True, text=True, timeout=30)


def test_kernel_pings_our_stack(echo):
    r = ping(echo["ours"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"3 packets transmitted, 3 received", r.stdout)
    c = counters(echo)
    assert c["icmp_echo_replies"] == 3
    assert c["arp_replies_sent"] >= 1


def test_udp_echo_and_port_unreachable(echo):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.bind((echo["kernel"], 0))
    for i in range(20):
        payload = f"datagram {i} ".encode() * (1 + i * 3)
        s.sendto(payload, (echo["ours"], 7))
        data, addr = s.recvfrom(4096)
        assert data == payload and addr == (echo["ours"], 7)
    # A connected socket sees the ICMP port unreachable as ECONNREFUSED.
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(3)
    c.connect((echo["ours"], 9))
    c.send(b"anyone?")
    with pytest.raises(OSError) as err:
        c.recv(100)
    assert err.value.errno == errno.ECONNREFUSED
    k = counters(echo)
    assert k["udp_delivered"] == 20 and k["udp_sent"] == 20
    assert k["udp_no_port"] == 1 and k["icmp_errors_sent"] == 1


VARIANTS = 4  # per malformation, each with its own seeded random fields


def wrong_checksum(rng, right):
    """A checksum value that does not verify: neither the right one nor its one's-complement twin
    (0x0000 and 0xffff both mean zero)."""
    twins = {right, 0xffff if right == 0 else (0 if right == 0xffff else right)}
    while True:
        v = rng.randrange(1, 0xffff)
        if v not in twins:
            return v


def arp_bytes(op, kmac, src, dst, htype=1, ptype=0x0800, hlen=6, plen=4):
    import struct
    mac = bytes.fromhex(kmac.replace(":", ""))
    return struct.pack("!HHBBH6s4s6s4s", htype, ptype, hlen, plen, op, mac,
                       socket.inet_aton(src), bytes(6), socket.inet_aton(dst))


def malformed_frames(rng, our_mac, kmac, src, dst):
    """(reason the stack must count, frame) pairs: VARIANTS of each, fields drawn from rng."""
    from scapy.all import ICMP, IP, UDP, Ether, Raw
    from scapy.utils import checksum
    E = Ether(dst=our_mac, src=kmac)
    E4 = Ether(dst=our_mac, src=kmac, type=0x0800)  # for raw bytes (scapy cannot infer the type)

    def ip(**kw):
        return IP(src=src, dst=dst, id=rng.randrange(65536), ttl=rng.randrange(1, 256), **kw)

    def body():
        return rng.randbytes(rng.randrange(1, 48))

    out = []
    for _ in range(VARIANTS):
        good = IP(bytes(ip() / ICMP(id=rng.randrange(65536)) / body()))
        out.append(("ip_bad_checksum", E / IP(bytes(good)[:10] + wrong_checksum(rng, good.chksum)
                                             .to_bytes(2, "big") + bytes(good)[12:])))
        raw = bytearray(bytes(ip() / ICMP() / body()))
        raw[0] = 0x40 | rng.randrange(0, 5)  # IHL 0..4
        out.append(("ip_bad_header_length", E4 / Raw(bytes(raw))))
        raw = bytearray(bytes(ip() / ICMP() / body()))
        raw[0] = (rng.choice([0, 1, 2, 3, 5, 6, 7, 15]) << 4) | 5
        out.append(("ip_bad_version", E4 / Raw(bytes(raw))))
        raw = bytearray(bytes(ip() / ICMP() / body()))
        raw[2:4] = (len(raw) + rng.randrange(100, 600)).to_bytes(2, "big")
        raw[10:12] = b"\0\0"
        raw[10:12] = checksum(bytes(raw[:20])).to_bytes(2, "big")  # only the length is wrong
        out.append(("ip_length_exceeds_frame", E4 / Raw(bytes(raw))))
        icmp = ICMP(bytes(ICMP(id=rng.randrange(65536), seq=rng.randrange(65536)) / body()))
        out.append(("icmp_bad_checksum",
                    E / ip() / ICMP(bytes(icmp)[:2] + wrong_checksum(rng, icmp.chksum)
                                    .to_bytes(2, "big") + bytes(icmp)[4:])))
        u = ip() / UDP(sport=rng.randrange(1024, 65536), dport=7) / body()
        right = IP(bytes(u))[UDP].chksum
        out.append(("udp_bad_checksum",
                    E / ip() / UDP(sport=u[UDP].sport, dport=7,
                                   chksum=wrong_checksum(rng, right)) / u[UDP].payload))
        out.append(("udp_bad_length",
                    E / ip() / UDP(dport=7, len=rng.randrange(0, 8), chksum=0) / body()))
        pl = body()
        out.append(("udp_length_exceeds_ip",
                    E / ip() / UDP(dport=7, len=8 + len(pl) + rng.randrange(1, 200), chksum=0) /
                    pl))
        # ARP packed by hand: always 28 bytes, whatever the lengths claim (scapy would follow them).
        bcast = Ether(dst="ff:ff:ff:ff:ff:ff", src=kmac, type=0x0806)
        fields = dict(htype=1, ptype=0x0800, hlen=6, plen=4)
        bad = rng.choice([("htype", rng.randrange(2, 65536)),
                          ("ptype", rng.choice([0x86dd, 0x0806, rng.randrange(1, 0x800)])),
                          ("hlen", rng.choice([0, 4, 8])), ("plen", rng.choice([0, 6, 16]))])
        fields[bad[0]] = bad[1]
        out.append(("arp_unsupported", bcast / Raw(arp_bytes(op=1, kmac=kmac, src=src, dst=dst,
                                                            **fields))))
        out.append(("arp_bad_operation",
                    bcast / Raw(arp_bytes(op=rng.randrange(3, 65536), kmac=kmac, src=src,
                                          dst=dst))))
    return out


def test_malformed_frames_are_counted_by_reason_and_pings_still_work(echo):
    import collections
    import random
    from scapy.all import sendp
    seed = int(os.environ.get("DPDK_NET_TEST_SEED", "1130"))
    rng = random.Random(seed)
    our_mac, kmac = macs(echo)
    frames = malformed_frames(rng, our_mac, kmac, echo["kernel"], echo["ours"])
    expected = collections.Counter(reason for reason, _ in frames)
    sendp([f for _, f in frames], iface=echo["name"], verbose=False)
    time.sleep(0.3)
    r = ping(echo["ours"])  # positive control: the stack still answers
    assert r.returncode == 0, r.stdout
    c = counters(echo)
    got = c["malformed_by_reason"]
    assert {k: got.get(k, 0) for k in expected} == dict(expected), f"seed {seed}: {got}"
    assert c["arp_malformed"] == expected["arp_unsupported"] + expected["arp_bad_operation"], c
    assert c["icmp_echo_replies"] == 4, c  # 1 + 3: none of the bad frames was answered


def test_frag_needed_mtu_zero_is_ignored_and_a_valid_one_still_lowers_the_path_mtu(echo):
    from scapy.all import ICMP, IP, UDP, Ether, sendp
    our_mac, kmac = macs(echo)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.bind((echo["kernel"], 0))
    kport = s.getsockname()[1]
    payload = bytes(range(256)) * 5 + bytes(120)  # 1400 bytes: one 1428-byte datagram with DF
    s.sendto(payload, (echo["ours"], 7))
    assert s.recvfrom(4096)[0] == payload
    quote = IP(src=echo["ours"], dst=echo["kernel"], flags="DF", proto=17) / \
        UDP(sport=7, dport=kport, len=1408)
    E = Ether(dst=our_mac, src=kmac) / IP(src=echo["kernel"], dst=echo["ours"])
    sendp(E / ICMP(type=3, code=4, nexthopmtu=0) / bytes(quote)[:28], iface=echo["name"],
          verbose=False)
    time.sleep(0.2)
    s.sendto(payload, (echo["ours"], 7))
    assert s.recvfrom(4096)[0] == payload  # still one datagram: MTU 0 taught nothing
    # Positive control: the same error with a real MTU is believed.
    sendp(E / ICMP(type=3, code=4, nexthopmtu=1000) / bytes(quote)[:28], iface=echo["name"],
          verbose=False)
    time.sleep(0.2)
    s.sendto(payload, (echo["ours"], 7))
    assert s.recvfrom(4096)[0] == payload  # now sent in fragments, reassembled by the kernel
    c = counters(echo)
    assert c["pmtu_ignored"] == 1 and c["pmtu_lowered"] == 1, c
    assert c["fragments_sent"] == 2, c


def test_fragmented_datagrams_both_ways(echo):
    # The kernel fragments 4000 bytes for our 1500-byte MTU; we reassemble, echo, and fragment
    # the answer, which the kernel reassembles.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.bind((echo["kernel"], 0))
    for size in (1473, 4000, 9000):
        payload = bytes((i * 13) % 256 for i in range(size))
        s.sendto(payload, (echo["ours"], 7))
        data, _ = s.recvfrom(65536)
        assert data == payload, size
    r = subprocess.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", echo["ours"]],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "2 received" in r.stdout, r.stdout
    c = counters(echo)
    assert c["reassembled"] == 3 + 2, c
    assert c["fragments_sent"] >= 2 + 3 + 7 + 2 * 3, c


def test_overlapping_fragments_are_rejected(echo):
    from scapy.all import IP, UDP, Ether, Raw, sendp
    our_mac, kmac = macs(echo)
    udp = bytes(UDP(sport=4444, dport=7) / (b"A" * 40))  # 48 bytes of L4
    base = dict(src=echo["kernel"], dst=echo["ours"], id=777, proto=17)
    # Teardrop-style: the second fragment starts inside the first.
    first = Ether(dst=our_mac, src=kmac) / IP(flags="MF", frag=0, **base) / Raw(udp[:32])
    second = Ether(dst=our_mac, src=kmac) / IP(frag=2, **base) / Raw(udp[16:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((echo["kernel"], 4444))  # where an (undue) echo would arrive
    s.settimeout(0.5)
    sendp([first, second], iface=echo["name"], verbose=False)
    with pytest.raises(socket.timeout):
        s.recvfrom(100)  # nothing was echoed: the datagram was dropped, not reassembled
    # Positive control: a well-formed fragmented datagram right after is still answered.
    r = subprocess.run(["ping", "-c", "1", "-W", "2", "-s", "3000", echo["ours"]],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout
    c = counters(echo)
    assert c["reassembled"] == 1 and c["udp_delivered"] == 0, c  # the ping, not the overlap
    assert c["reassembly_overlaps"] == 1, c


def test_bad_arguments_are_explained(bin_dir):
    for args, message in [([], "--backend must be tap"),
                          (["--backend", "tap", "--iface", "x", "--ip", "1.2.3.4", "--port", "7"],
                           "--ip ADDR/PREFIX"),
                          (["--backend", "tap", "--iface", "x", "--ip", "198.18.0.2/24",
                            "--port", "99999"], "--port 1..65535")]:
        r = subprocess.run([str(bin_dir / "udp_echo"), *args], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and message in r.stderr, r.stderr
