"""dpdk-net-decode against scapy: random valid frames field by field, and every malformation of
the rule table in docs/wire.md (accept/reject and the reason)."""
import random
import struct
import subprocess

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, IPOption_RR, Raw

from wireutil import DST, E, SRC, decode, rand_ip, refix, rule_table

SEED = 20261125

# ---------------------------------------------------------------------------------------------
# Random valid frames, compared field by field with scapy's own decoding of the same bytes
# ---------------------------------------------------------------------------------------------


def random_tcp_options(rng):
    opts = []
    if rng.random() < 0.5:
        opts.append(("MSS", rng.randrange(0, 65536)))
    if rng.random() < 0.4:
        opts.append(("SAckOK", b""))
    if rng.random() < 0.5:
        opts.append(("Timestamp", (rng.getrandbits(32), rng.getrandbits(32))))
    if rng.random() < 0.4:
        opts += [("NOP", None), ("WScale", rng.randrange(0, 15))]
    if rng.random() < 0.3:
        n = rng.randrange(1, 4 if any(o[0] == "Timestamp" for o in opts) else 5)
        blocks = tuple(rng.getrandbits(32) for _ in range(2 * n))
        opts += [("NOP", None), ("NOP", None), ("SAck", blocks)]
    if rng.random() < 0.1:
        opts.append((rng.choice((6, 19, 30, 34, 99)), bytes(rng.randrange(0, 4))))
    rng.shuffle(opts)
    # Keep within 40 bytes: scapy would silently produce an invalid data offset otherwise.
    while len(bytes(TCP(options=opts))) > 60:
        opts.pop()
    return opts


def random_frame(rng):
    l2 = Ether(**E)
    if rng.random() < 0.15:
        l2 = l2 / Dot1Q(vlan=rng.randrange(4096), prio=rng.randrange(8))
    kind = rng.choice(("tcp", "tcp", "udp", "icmp", "icmp_err", "arp", "frag"))
    if kind == "arp":
        return l2 / ARP(op=rng.choice((1, 2)), hwsrc=E["src"], psrc=rand_ip(rng),
                        hwdst=E["dst"], pdst=rand_ip(rng))
    ip = IP(src=rand_ip(rng), dst=rand_ip(rng), id=rng.randrange(65536), ttl=rng.randrange(256),
            tos=rng.randrange(256), flags=rng.choice(("", "DF")))
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
    if kind == "tcp":
        l4 = TCP(sport=rng.randrange(65536), dport=rng.randrange(65536), seq=rng.getrandbits(32),
                 ack=rng.getrandbits(32), flags=rng.randrange(256), window=rng.randrange(65536),
                 urgptr=rng.randrange(65536), options=random_tcp_options(rng)) / payload
    elif kind == "udp":
        l4 = UDP(sport=rng.randrange(65536), dport=rng.randrange(65536)) / payload
    elif kind == "icmp":
        l4 = ICMP(type=rng.choice((0, 8, 13, 42)), id=rng.randrange(65536),
                  seq=rng.randrange(65536)) / payload
    elif kind == "icmp_err":
        quote = IP(src=rand_ip(rng), dst=rand_ip(rng)) / UDP(sport=1, dport=2) / payload[:20]
        l4 = ICMP(type=rng.choice((3, 11)), code=rng.randrange(5),
                  nexthopmtu=rng.randrange(65536)) / bytes(quote)
    else:  # a middle fragment
        ip.flags = "MF"
        ip.frag = rng.randrange(1, 100)
        ip.proto = 17
        l4 = Raw(payload or b"x")
    frame = l2 / ip / l4
    if rng.random() < 0.2:
        frame = frame / Raw(b"\0" * rng.randrange(1, 20))  # Ethernet padding after the datagram
    return frame


def expected_fields(frame_bytes):
    """What the decoder should say about an accepted frame, from scapy's decoding."""
    p = Ether(frame_bytes)
    exp = {"eth": {"dst": p.dst, "src": p.src}}
    inner = p
    if Dot1Q in p:
        exp["eth"]["vlan"] = p[Dot1Q].vlan
        exp["eth"]["prio"] = p[Dot1Q].prio
        exp["eth"]["type"] = p[Dot1Q].type
    else:
        exp["eth"]["type"] = p.type
    if ARP in p:
        a = p[ARP]
        exp["arp"] = {"op": a.op, "hwsrc": a.hwsrc, "psrc": a.psrc, "hwdst": a.hwdst, "pdst": a.pdst}
        return exp
    ip = p[IP]
    exp["ip"] = {"ihl": ip.ihl, "tos": ip.tos, "len": ip.len, "id": ip.id, "flags": int(ip.flags),
                 "frag": ip.frag, "ttl": ip.ttl, "proto": ip.proto, "chksum": ip.chksum,
                 "src": ip.src, "dst": ip.dst}
    l4_len = ip.len - ip.ihl * 4
    if ip.frag or ip.flags.MF:
        exp["fragment"] = True
        exp["payload_len"] = l4_len
        return exp
    if TCP in ip:
        t = ip[TCP]
        opts = {}
        unknown = 0
        for name, value in t.options:
            if name == "MSS":
                opts["mss"] = value
            elif name == "WScale":
                opts["wscale"] = value
            elif name == "SAckOK":
                opts["sack_ok"] = True
            elif name == "Timestamp":
                opts["ts"] = list(value)
            elif name == "SAck":
                opts["sack"] = [list(value[i:i + 2]) for i in range(0, len(value), 2)]
            elif name in ("NOP", "EOL"):
                pass
            else:
                unknown += 1
        if unknown:
            opts["unknown"] = unknown
        exp["tcp"] = {"sport": t.sport, "dport": t.dport, "seq": t.seq, "ack": t.ack,
                      "dataofs": t.dataofs, "reserved": t.reserved, "flags": int(t.flags),
                      "window": t.window, "chksum": t.chksum, "urgptr": t.urgptr, "options": opts}
        exp["payload_len"] = l4_len - t.dataofs * 4
    elif UDP in ip:
        u = ip[UDP]
        exp["udp"] = {"sport": u.sport, "dport": u.dport, "len": u.len, "chksum": u.chksum}
        exp["payload_len"] = u.len - 8
    elif ICMP in ip:
        c = ip[ICMP]
        raw = bytes(c)
        exp["icmp"] = {"type": c.type, "code": c.code, "chksum": c.chksum,
                       "rest": struct.unpack("!I", raw[4:8])[0]}
        exp["payload_len"] = l4_len - 8
    return exp


def test_random_valid_frames_match_scapy_field_by_field(build_dir, tmp_path):
    rng = random.Random(SEED)
    frames = [bytes(random_frame(rng)) for _ in range(3000)]
    decoded = decode(build_dir, frames, tmp_path)
    kinds = set()
    for i, (raw, got) in enumerate(zip(frames, decoded)):
        assert got["verdict"] == "accept", f"frame {i} (seed {SEED}): {got['reason']}: {raw.hex()}"
        exp = expected_fields(raw)
        for layer, fields in exp.items():
            if isinstance(fields, dict):
                for k, v in fields.items():
                    assert got[layer][k] == v, f"frame {i} {layer}.{k}: {got[layer]} vs {fields}"
            else:
                assert got[layer] == fields, f"frame {i} {layer}: {got} vs {exp}"
        kinds.update(k for k in ("arp", "tcp", "udp", "icmp", "fragment") if k in got)
    assert kinds == {"arp", "tcp", "udp", "icmp", "fragment"}


# ---------------------------------------------------------------------------------------------
# The rule table
# ---------------------------------------------------------------------------------------------


def tcp_frame(rng, **kw):
    opts = kw.pop("options", [])
    payload = kw.pop("payload", b"data")
    return Ether(**E) / IP(src=SRC, dst=DST, id=rng.randrange(65536)) / \
        TCP(sport=rng.randrange(1, 65536), dport=80, seq=rng.getrandbits(32), flags="A",
            options=opts, **kw) / payload


def udp_frame(rng, payload=b"hello"):
    return Ether(**E) / IP(src=SRC, dst=DST, id=rng.randrange(65536)) / \
        UDP(sport=rng.randrange(1, 65536), dport=53) / payload


def ip_frame(rng, **kw):
    return Ether(**E) / IP(src=SRC, dst=DST, id=rng.randrange(65536), **kw)


def tcp_with_option_bytes(rng, blob):
    """A TCP segment whose options area is exactly blob (EOL-padded to a multiple of 4)."""
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    f = bytearray(bytes(tcp_frame(rng, options=[("NOP", None)] * len(blob))))
    f[14 + 20 + 20:14 + 20 + 20 + len(blob)] = blob
    return bytes(refix(f))


def ip_with_option_bytes(rng, blob):
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    f = bytearray(bytes(Ether(**E) / IP(src=SRC, dst=DST, options=[IPOption_RR(routers=["198.18.0.5"])] if len(blob) == 8 else []) / UDP() / b"x"))
    assert len(blob) == 8
    f[14 + 20:14 + 28] = blob
    return bytes(refix(f))


def patched(frame, offset, data, fix_ip=True, fix_l4=True, l2=14):
    f = bytearray(bytes(frame))
    f[offset:offset + len(data)] = data
    return bytes(refix(f, l2=l2, ip=fix_ip, l4=fix_l4))


IP0 = 14  # IPv4 header offset in an untagged frame
L4 = 34   # L4 header offset without IP options

MALFORMATIONS = {
    "eth_runt": lambda r: bytes(tcp_frame(r))[:r.randrange(0, 14)],
    "eth_vlan_cut": lambda r: bytes(Ether(**E) / Dot1Q(vlan=5) / IP(src=SRC, dst=DST))[:r.randrange(14, 18)],
    "eth_qinq": lambda r: bytes(Ether(**E) / Dot1Q(vlan=5) / Dot1Q(vlan=6) / IP(src=SRC, dst=DST)),
    "eth_llc": lambda r: bytes(Ether(dst=E["dst"], src=E["src"], type=r.randrange(0, 0x600)) / (b"\xaa\xaa\x03" + b"x" * 40)),
    "eth_unknown_type": lambda r: bytes(Ether(dst=E["dst"], src=E["src"], type=0x88B5) / b"payload"),
    "eth_padding": lambda r: bytes(udp_frame(r)) + b"\0" * r.randrange(1, 30),
    "arp_short": lambda r: bytes(Ether(**E) / ARP(psrc=SRC, pdst=DST, hwsrc=E["src"]))[:14 + r.randrange(0, 28)],
    "arp_htype": lambda r: bytes(Ether(**E) / ARP(hwtype=6, psrc=SRC, pdst=DST, hwsrc=E["src"])),
    "arp_plen": lambda r: bytes(Ether(**E) / ARP(psrc=SRC, pdst=DST, hwsrc=E["src"]))[:19] + b"\x06" + bytes(Ether(**E) / ARP(psrc=SRC, pdst=DST, hwsrc=E["src"]))[20:],
    "arp_op": lambda r: bytes(Ether(**E) / ARP(op=r.choice((0, 3, 4, 9)), psrc=SRC, pdst=DST, hwsrc=E["src"])),
    "ip_short": lambda r: bytes(udp_frame(r))[:14 + r.randrange(0, 20)],
    "ip_version": lambda r: patched(udp_frame(r), IP0, b"\x65"),
    "ip_ihl_small": lambda r: patched(udp_frame(r), IP0, bytes([0x40 | r.randrange(0, 5)]), fix_ip=False, fix_l4=False),
    "ip_ihl_past_frame": lambda r: patched(ip_frame(r, proto=253), IP0, b"\x4f", fix_ip=False, fix_l4=False),
    "ip_total_small": lambda r: patched(udp_frame(r), IP0 + 2, struct.pack("!H", r.randrange(0, 20)), fix_l4=False),
    "ip_total_big": lambda r: patched(udp_frame(r), IP0 + 2, struct.pack("!H", 20 + 8 + 5 + r.randrange(1, 1000)), fix_l4=False),
    "ip_checksum": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, chksum=0x1234) / UDP() / b"x"),
    "ip_option_len0": lambda r: ip_with_option_bytes(r, [0x07, 0x00, 0x04, 0, 0, 0, 0, 0]),
    "ip_option_len1": lambda r: ip_with_option_bytes(r, [0x01, 0x44, 0x01, 0, 0, 0, 0, 0]),
    "ip_option_overrun": lambda r: ip_with_option_bytes(r, [0x07, r.randrange(9, 256), 0x04, 0, 0, 0, 0, 0]),
    "ip_options_ok": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, options=[IPOption_RR(routers=["198.18.0.5"])]) / UDP() / b"x"),
    "ip_frag_overflow": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, frag=8191, proto=17) / (b"x" * r.randrange(8, 100))),
    "ip_fragment": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, flags="MF", frag=r.randrange(1, 8000), proto=6) / (b"x" * 8)),
    "ip_evil_bit": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, flags="evil") / UDP() / b"x"),
    "ip_ttl0": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, ttl=0) / UDP() / b"x"),
    "ip_unknown_proto": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, proto=253) / b"opaque"),
    "icmp_short": lambda r: patched(Ether(**E) / IP(src=SRC, dst=DST, proto=1) / bytes(r.randrange(0, 8)), IP0, b"\x45", fix_l4=False),
    "icmp_checksum": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / ICMP(chksum=0x4242) / b"ping"),
    "icmp_quote_short": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / ICMP(type=3, code=3) / bytes(IP(src=DST, dst=SRC) / UDP())[:r.randrange(0, 28)]),
    "icmp_quote_not_ip": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / ICMP(type=11) / (b"\x60" + b"\0" * 39)),
    "icmp_mtu0": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / ICMP(type=3, code=4, nexthopmtu=0) / IP(src=DST, dst=SRC) / UDP()),
    "icmp_unknown_type": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / ICMP(type=r.randrange(44, 256)) / b"x"),
    "udp_short": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, proto=17) / bytes(r.randrange(0, 8))),
    "udp_len_small": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / UDP(len=r.randrange(0, 8)) / b"abcdef"),
    "udp_len_big": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / UDP(len=14 + r.randrange(1, 100)) / b"abcdef"),
    "udp_len_less": lambda r: patched(udp_frame(r, b"abcdefgh"), L4 + 4, struct.pack("!H", 8 + r.randrange(0, 8))),
    "udp_checksum": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / UDP(chksum=r.randrange(1, 0xffff)) / b"abc"),
    "udp_no_checksum": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / UDP(chksum=0) / b"abc"),
    "tcp_short": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST, proto=6) / bytes(r.randrange(0, 20))),
    "tcp_doff_small": lambda r: bytes(tcp_frame(r, dataofs=r.randrange(0, 5))),
    "tcp_doff_big": lambda r: bytes(tcp_frame(r, dataofs=r.randrange(7, 16), payload=b"")),
    "tcp_checksum": lambda r: bytes(tcp_frame(r, chksum=0x1111)),
    "tcp_opt_len0": lambda r: tcp_with_option_bytes(r, [2, 0, 5, 180]),
    "tcp_opt_len1": lambda r: tcp_with_option_bytes(r, [1, 1, r.choice((3, 8, 30)), 1]),
    "tcp_opt_overrun": lambda r: tcp_with_option_bytes(r, [1, 1, 8, 10]),
    "tcp_opt_no_len": lambda r: tcp_with_option_bytes(r, [1, 1, 1, r.choice((2, 3, 4, 8, 30))]),
    "tcp_mss_len": lambda r: tcp_with_option_bytes(r, [2, r.choice((2, 3, 5, 6)), 5, 180, 1, 1]),
    "tcp_ws_len": lambda r: tcp_with_option_bytes(r, [3, r.choice((2, 4)), 7, 0]),
    "tcp_ts_len": lambda r: tcp_with_option_bytes(r, [8, r.choice((2, 6, 8, 12)), 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]),
    "tcp_sack_len": lambda r: tcp_with_option_bytes(r, [5, r.choice((2, 9, 11, 17)), *([0] * 16)]),
    "tcp_unknown_opt": lambda r: tcp_with_option_bytes(r, [r.choice((6, 19, 30, 99)), 4, 1, 2]),
    "tcp_after_eol": lambda r: tcp_with_option_bytes(r, [2, 4, 5, 180, 0, 2, 0, 7]),
    "tcp_mss0": lambda r: bytes(tcp_frame(r, options=[("MSS", 0)])),
    "tcp_ws15": lambda r: bytes(tcp_frame(r, options=[("WScale", r.randrange(15, 256))])),
    "tcp_urg_past": lambda r: bytes(tcp_frame(r, urgptr=60000, payload=b"u")),
    "tcp_syn_fin": lambda r: bytes(Ether(**E) / IP(src=SRC, dst=DST) / TCP(flags="SF")),
}


def test_rule_table_and_generators_cover_each_other():
    rules = rule_table()
    assert len(rules) >= 50, "docs/wire.md rule table not found or truncated"
    assert set(rules) == set(MALFORMATIONS)


def test_malformed_frames_get_the_verdict_of_the_rule_table(build_dir, tmp_path):
    rules = rule_table()
    rng = random.Random(SEED)
    cases = []
    for rule_id in sorted(MALFORMATIONS):
        for _ in range(40):
            cases.append((rule_id, MALFORMATIONS[rule_id](rng)))
    decoded = decode(build_dir, [c[1] for c in cases], tmp_path)
    failures = []
    for (rule_id, raw), got in zip(cases, decoded):
        verdict, reason = rules[rule_id]
        if (got["verdict"], got["reason"]) != (verdict, reason):
            failures.append(f"{rule_id}: expected {verdict}/{reason}, got "
                            f"{got['verdict']}/{got['reason']} for {raw.hex()}")
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures[:20])


def test_checksums_can_be_left_to_the_device(build_dir, tmp_path):
    rng = random.Random(SEED)
    frames = [MALFORMATIONS[k](rng) for k in ("ip_checksum", "udp_checksum", "tcp_checksum")]
    out = decode(build_dir, frames, tmp_path, extra=("--no-checksums",))
    assert [o["verdict"] for o in out] == ["accept"] * 3


def test_decoder_refuses_non_pcap_input_clearly(build_dir, tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file at all")
    r = subprocess.run([str(build_dir / "bin" / "dpdk-net-decode"), str(junk)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "not a pcap or pcapng file" in r.stderr
    r = subprocess.run([str(build_dir / "bin" / "dpdk-net-decode"), str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot open" in r.stderr
    r = subprocess.run([str(build_dir / "bin" / "dpdk-net-decode"), "--bogus"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown option" in r.stderr


@pytest.mark.parametrize("cut", [30, 50])
def test_decoder_reports_a_truncated_file_after_the_good_records(build_dir, tmp_path, cut):
    from scapy.all import wrpcap
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), [Ether(**E) / IP(src=SRC, dst=DST) / UDP() / b"x"] * 2)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - cut])
    r = subprocess.run([str(build_dir / "bin" / "dpdk-net-decode"), str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert len(r.stdout.splitlines()) == 1  # the first record was whole
    assert "truncated" in r.stderr
