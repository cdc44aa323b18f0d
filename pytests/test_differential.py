"""Differential: the same crafted ARP/ICMP/IPv4/UDP frames go to Linux (a veth into a network
namespace made here) and to our stack (udp_echo over TAP); both must give the same kind of
response -- a reply, an ICMP error of the same type/code, or nothing -- case by case.

Hygiene: unique names from the pid, stale ones from earlier runs removed first, everything
removed after (also on failure); addresses in 198.18.0.0/15 only."""
import os
import re
import signal
import subprocess
import time

import pytest
from scapy.all import (ARP, ICMP, IP, UDP, AsyncSniffer, Ether, Raw, fragment, get_if_hwaddr,
                       sendp)

PID = os.getpid() % 100000
SUBNET = 160 + PID % 40


def sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=check)


def remove_stale():
    # Namespaces/links of earlier runs whose process is gone (named after their pid).
    for line in sh("ip", "netns", "list").stdout.splitlines():
        m = re.match(r"(dfn(\d+))", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            sh("ip", "netns", "del", m.group(1), check=False)
    for m in re.finditer(r"\d+: (dfa(\d+))[@:]", sh("ip", "-o", "link").stdout):
        if not os.path.exists(f"/proc/{m.group(2)}"):
            sh("ip", "link", "del", m.group(1), check=False)


@pytest.fixture(scope="module")
def peers(build_dir):
    remove_stale()
    ns, outer, inner = f"dfn{PID}", f"dfa{PID}", f"dfb{PID}"
    linux_ip, our_side_ip = f"198.19.{SUBNET}.2", f"198.19.{SUBNET}.1"
    stack_ip, tap_kernel_ip = f"198.18.{SUBNET}.2", f"198.18.{SUBNET}.1"
    echo = None
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        for where, dev in ((None, outer), (ns, inner)):
            pre = ["ip", "netns", "exec", where] if where else []
            sh(*pre, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
        sh("ip", "addr", "add", f"{our_side_ip}/24", "dev", outer)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{linux_ip}/24", "dev", inner)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        tap = f"dft{PID}"
        echo = subprocess.Popen([str(build_dir / "bin" / "udp_echo"), "--backend", "tap",
                                 "--iface", tap, "--ip", f"{stack_ip}/24", "--kernel-ip",
                                 tap_kernel_ip, "--port", "7", "--seconds", "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "echoing UDP port 7" in echo.stdout.readline()
        time.sleep(0.3)
        yield {
            "linux": {"iface": outer, "target": linux_ip, "me": our_side_ip,
                      "bcast": f"198.19.{SUBNET}.255"},
            "ours": {"iface": tap, "target": stack_ip, "me": tap_kernel_ip,
                     "bcast": f"198.18.{SUBNET}.255"},
        }
    finally:
        if echo is not None:
            echo.send_signal(signal.SIGTERM)
            try:
                echo.wait(timeout=10)
            except subprocess.TimeoutExpired:
                echo.kill()
        sh("ip", "netns", "del", ns, check=False)  # takes the veth pair with it
        sh("ip", "link", "del", outer, check=False)


def neighbour_mac(side):
    """The target's MAC, resolved by the kernel on our side of the link."""
    sh("ping", "-c", "1", "-W", "2", side["target"], check=False)
    out = sh("ip", "neigh", "show", side["target"], "dev", side["iface"]).stdout
    return re.search(r"lladdr ([0-9a-f:]{17})", out).group(1)


def response_kind(side, frame):
    """Sends one frame from our side and classifies what comes back within 0.8 s."""
    me_mac = get_if_hwaddr(side["iface"])
    sniffer = AsyncSniffer(iface=side["iface"], store=True,
                           lfilter=lambda p: Ether in p and p[Ether].src != me_mac)
    sniffer.start()
    time.sleep(0.1)
    sendp(frame, iface=side["iface"], verbose=False)
    time.sleep(0.8)
    got = sniffer.stop() or []
    kinds = set()
    for p in got:
        if ARP in p:
            if p[ARP].op == 2 and p[ARP].pdst == side["me"]:
                kinds.add("arp-reply")
            continue  # the target's own ARP requests (to answer us) are not a response
        if IP in p and (p[IP].flags.MF or p[IP].frag != 0):
            kinds.add("fragmented")
        if ICMP in p:
            t, c = p[ICMP].type, p[ICMP].code
            kinds.add("echo-reply" if t == 0 else f"icmp-{t}/{c}")
        elif UDP in p:
            kinds.add("udp")
    return "+".join(sorted(kinds)) or "nothing"


def cases(side, target_mac):
    me_mac = get_if_hwaddr(side["iface"])
    E = Ether(dst=target_mac, src=me_mac)
    me, target = side["me"], side["target"]
    ping = IP(src=me, dst=target) / ICMP(id=0x77, seq=1) / b"differential"
    return {
        "arp request for it": Ether(dst="ff:ff:ff:ff:ff:ff", src=me_mac) /
                              ARP(op=1, hwsrc=me_mac, psrc=me, pdst=target),
        "arp request for another": Ether(dst="ff:ff:ff:ff:ff:ff", src=me_mac) /
                                   ARP(op=1, hwsrc=me_mac, psrc=me, pdst=me[:-1] + "99"),
        "ping": E / ping,
        "ping, bad ip checksum": E / IP(bytes(IP(src=me, dst=target, chksum=0x1234) / ICMP())),
        "ping, bad icmp checksum": E / IP(src=me, dst=target) / ICMP(chksum=0x4242) / b"x",
        "ping to broadcast": E / IP(src=me, dst=side["bcast"]) / ICMP(),
        "udp to a closed port": E / IP(src=me, dst=target) / UDP(sport=4321, dport=9) / b"?",
        "unknown ip protocol": E / IP(src=me, dst=target, proto=253) / b"opaque",
        "ip length past frame": E / Raw(bytes(IP(src=me, dst=target, len=300) / ICMP())),
        "ip header length 4": E / Raw(bytes(IP(src=me, dst=target, ihl=4) / ICMP())),
        "frag-needed mtu 0": E / IP(src=me, dst=target) / ICMP(type=3, code=4, nexthopmtu=0) /
                             IP(src=target, dst=me) / UDP(sport=1, dport=2),
        "overlapping fragments": [E / IP(src=me, dst=target, id=9, flags="MF", frag=0, proto=17) /
                                  Raw(bytes(UDP(sport=5, dport=9) / (b"A" * 24))),
                                  E / IP(src=me, dst=target, id=9, frag=2, proto=17) / Raw(b"B" * 16)],
        # Positive control for the case above: well-formed fragments are still reassembled.
        "fragmented ping after the overlap": [E / f for f in fragment(
            IP(src=me, dst=target, id=10) / ICMP(id=0x78, seq=1) / (b"F" * 2000), fragsize=1480)],
        # Positive control for "frag-needed mtu 0": a believable one (quoting a 1428-byte echo
        # reply the target sent us, DF set) lowers the path MTU, so the next big reply is sent in
        # fragments.
        "valid frag-needed, then a big ping": [
            E / IP(src=me, dst=target) / ICMP(type=3, code=4, nexthopmtu=1000) /
            Raw(bytes(IP(src=target, dst=me, flags="DF", len=1428) / ICMP(type=0, id=0x79))[:28]),
            E / IP(src=me, dst=target, flags="DF") / ICMP(id=0x79, seq=2) / (b"P" * 1400)],
    }


def test_linux_and_our_stack_respond_alike(peers):
    results = {}
    for name, side in peers.items():
        mac = neighbour_mac(side)
        results[name] = {case: response_kind(side, frame)
                         for case, frame in cases(side, mac).items()}
    differences = [f"{case}: linux={results['linux'][case]} ours={results['ours'][case]}"
                   for case in results["linux"] if results["linux"][case] != results["ours"][case]]
    assert not differences, "\n".join(differences)
    # And the cases mean something: each kind of answer occurs.
    kinds = set(results["ours"].values())
    assert {"arp-reply", "echo-reply", "icmp-3/3", "icmp-3/2", "nothing",
            "echo-reply+fragmented"} <= kinds, results["ours"]
