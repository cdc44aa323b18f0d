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


def test_malformed_frames_are_counted_and_pings_still_work(echo):
    from scapy.all import ICMP, IP, UDP, Ether, Raw, sendp
    # Our MAC: learn it the way the kernel does.
    our_mac, kmac = macs(echo)
    src, dst = echo["kernel"], echo["ours"]
    bad = []
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst, chksum=0x1234) / ICMP()))
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst, ihl=4) / ICMP()))
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst, len=200) / ICMP()))
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst) / ICMP(chksum=1) / b"x"))
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst) / UDP(dport=7, chksum=7) / b"x"))
    # A fragment (not malformed: dropped until reassembly lands) and frag-needed with MTU 0.
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst, flags="MF") /
                     ICMP() / b"12345678"))
    bad.append(bytes(Ether(dst=our_mac, src=kmac) / IP(src=src, dst=dst) /
                     ICMP(type=3, code=4, nexthopmtu=0) / (b"\x45" + b"\0" * 27)))
    for f in bad:
        sendp(Raw(f), iface=echo["name"], verbose=False)
    time.sleep(0.3)
    r = ping(echo["ours"])
    assert r.returncode == 0, r.stdout
    c = counters(echo)
    assert c["malformed"] >= 5, c        # bad IP checksum, IHL, length, ICMP and UDP checksums
    assert c["reassembled"] == 0, c      # the lone fragment waits (and times out), unanswered
    assert c["icmp_echo_replies"] == 4, c  # 1 + 3: the bad frames were not answered


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
    assert ping(echo["ours"]).returncode == 0
    c = counters(echo)
    assert c["reassembled"] == 0 and c["udp_delivered"] == 0, c
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
