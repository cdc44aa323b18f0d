"""pcap_replay (issue 15): a capture replayed against the examples' HTTP server on our stack in the
simulator. A session of http_server --backend sim (recorded with --capture) replays with no
divergence; the same capture and seed give a byte-identical --out; a Linux-like capture (scapy:
MSS, SACK_PERM, TS with an arbitrary TSval, NOP, WS 7, offloaded checksums, TSO/GRO-sized
segments) replays; exit codes 0 / 1 / 2 and the messages for bad captures."""
import hashlib
import json
import struct
import subprocess

import pytest
from scapy.all import IP, TCP, Ether, rdpcap, wrpcap

SERVER_MAC = "02:00:00:00:01:01"
CLIENT_MAC = "02:00:00:00:01:02"
CLIENT = ("10.1.0.5", 45678)
SERVER = ("10.1.0.1", 80)


def run(bin_dir, *args, timeout=60):
    return subprocess.run([str(bin_dir / "pcap_replay"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def http_capture(bin_dir, tmp_path_factory):
    """A session of the HTTP example in the simulator: its checks (GET /, /bytes, POST /echo,
    pipelining, a 400, /stats) and a short load, recorded at the server's NIC."""
    path = tmp_path_factory.mktemp("replay") / "http.pcapng"
    r = subprocess.run([str(bin_dir / "http_server"), "--backend", "sim", "--seed", "3",
                        "--max-seconds", "0.05", "--capture", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return path


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def only_stats_differs(rep):
    """The first flow (the checks) ends with GET /stats, whose counters depend on the run's
    timing: it may differ there (its last ~600 bytes) and nowhere else."""
    checks, *load = rep["flows"]
    assert checks["recorded_bytes"] > 100000  # /bytes/100000 at least
    if checks["first_difference"] is not None:
        assert checks["first_difference"] > checks["recorded_bytes"] - 1000, checks
    assert all(d.startswith("flow " + checks["name"]) for d in rep["divergences"]), rep
    assert not checks["live_rst"] and checks["missing_responses"] == 0
    for f in load:
        assert not f["diverged"], f
        assert f["live_bytes"] == f["recorded_bytes"] > 0, f


def test_http_session_replays_without_divergence(bin_dir, http_capture, tmp_path):
    report = tmp_path / "r.json"
    r = run(bin_dir, http_capture, "--report", report, "--out", tmp_path / "o.pcapng")
    assert r.returncode == 0, r.stdout + r.stderr  # paced as recorded: /stats matches too
    assert "0 divergences" in r.stdout
    rep = json.loads(report.read_text())
    assert not rep["diverged"] and rep["divergences"] == []
    assert rep["target"] == "198.18.0.2"
    assert len(rep["flows"]) == 9  # the checks' connection and 8 load connections
    assert rep["frames_sent"] > 1000
    only_stats_differs(rep)


def test_same_seed_same_output_bytes(bin_dir, http_capture, tmp_path):
    outs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / f"{name}.pcapng"
        r = run(bin_dir, http_capture, "--seed", seed, "--fast", "--out", out, "--json")
        assert r.returncode in (0, 1), r.stdout + r.stderr
        only_stats_differs(json.loads(r.stdout.splitlines()[-1]))  # --json: the last line
        outs.append(sha256(out))
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]  # another seed: other ISNs


def test_divergences_exit_1(bin_dir, http_capture, tmp_path):
    # The echo server answers HTTP requests with the requests: every response differs.
    report = tmp_path / "r.json"
    r = run(bin_dir, http_capture, "--app", "echo", "--fast", "--timeout", "0.2", "--report",
            report)
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(report.read_text())
    assert rep["diverged"]
    assert any("differs from the recording at offset 0" in d for d in rep["divergences"])
    assert "DIVERGENCE:" in r.stdout


@pytest.mark.parametrize("args, message", [
    ([], "no capture given"),
    (["x.pcap", "--port-map", "80"], "--port-map"),
    (["x.pcap", "--as", "middle"], "--as"),
    (["x.pcap", "--as", "server"], "--as server needs a live client"),
    (["x.pcap", "--frobnicate"], "unknown argument"),
    (["x.pcap", "--backend", "dpdk"], "replay runs on sim, pcap or tap"),
    (["x.pcap", "--backend", "tap", "--live", "198.18.0.3"], "--backend tap needs --ip ADDR"),
    (["x.pcap", "--backend", "tap", "--live", "198.18.6.1", "--ip", "198.18.9.2"],
     "is not in --live 198.18.6.1/24"),
    (["x.pcap", "--backend", "pcap"], "needs --iface NAME, --live ADDR"),
    (["x.pcap", "--backend", "pcap", "--iface", "lo", "--ip", "198.18.0.4"],
     "pcap needs --live ADDR (the address that answers)"),
    (["x.pcap", "--backend", "pcap", "--iface", "lo", "--live", "198.18.0.3"], "needs --ip ADDR"),
    (["x.pcap", "--backend", "pcap", "--iface", "lo", "--live", "198.18.0.3", "--ip",
      "198.18.0.4", "--app", "echo"], "--app chooses the simulator"),
    (["x.pcap", "--backend", "pcap", "--iface", "lo", "--live", "198.18.0.300"], "--live"),
    (["x.pcap", "--live", "198.18.0.3"], "are for --backend pcap"),
    (["x.pcap", "--timeout", "-1"], "--timeout"),
])
def test_bad_arguments_exit_2(bin_dir, args, message):
    r = run(bin_dir, *args)
    assert r.returncode == 2
    assert message in r.stderr


def test_live_replay_on_a_missing_interface_names_it(bin_dir, http_capture):
    r = run(bin_dir, http_capture, "--backend", "pcap", "--iface", "dnp_no_such_if", "--live",
            "198.18.0.3", "--ip", "198.18.0.4")
    assert r.returncode == 2 and "dnp_no_such_if" in r.stderr, r.stderr


def classic_pcap(linktype, frames):
    out = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", i, 0, len(f), len(f)) + f
    return out


def test_bad_captures_exit_2_with_a_clear_message(bin_dir, http_capture, tmp_path):
    r = run(bin_dir, tmp_path / "missing.pcap")
    assert r.returncode == 2 and "missing.pcap" in r.stderr
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all" * 10)
    r = run(bin_dir, junk)
    assert r.returncode == 2 and "junk.pcap" in r.stderr, r.stderr
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(http_capture.read_bytes()[:5000])
    r = run(bin_dir, cut)
    assert r.returncode == 2 and "cut.pcapng" in r.stderr, r.stderr
    raw = tmp_path / "raw.pcap"
    raw.write_bytes(classic_pcap(101, [bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP())]))
    r = run(bin_dir, raw)
    assert r.returncode == 2 and "not Ethernet" in r.stderr, r.stderr
    short = tmp_path / "snap.pcap"
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S") / (b"x" * 100))
    data = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 60, 1)
    data += struct.pack("<IIII", 0, 0, 60, len(frame)) + frame[:60]
    short.write_bytes(data)
    r = run(bin_dir, short)
    assert r.returncode == 2 and "snap length" in r.stderr, r.stderr
    # A capture that starts mid-connection: no SYN, so nothing can be replayed (not exit 0).
    mid = tmp_path / "mid.pcap"
    mid.write_bytes(classic_pcap(1, [
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") /
              TCP(sport=40000, dport=80, flags="PA", seq=5, ack=9) / b"GET /"),
        bytes(Ether() / IP(src="10.0.0.2", dst="10.0.0.1") /
              TCP(sport=80, dport=40000, flags="PA", seq=9, ack=10) / b"200")]))
    r = run(bin_dir, mid, "--target", "10.0.0.2")
    assert r.returncode == 2 and "nothing to replay" in r.stderr and "mid-flow" in r.stderr, \
        r.stderr


class LinuxClient:
    """A Linux-like conversation: curl's options, an arbitrary TSval, offloaded (wrong) client
    checksums, requests and responses each in one (TSO/GRO-sized) segment."""

    def __init__(self):
        self.frames = []
        self.t = 1700000000.0
        self.cseq, self.sseq = 2833412345, 990001
        self.tsval, self.sts = 3141592653, 77

    def add(self, from_client, flags, payload=b"", syn_options=None):
        self.t += 0.001
        if from_client:
            opts = syn_options or [("NOP", None), ("NOP", None),
                                   ("Timestamp", (self.tsval, self.sts))]
            pkt = (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT[0], dst=SERVER[0]) /
                   TCP(sport=CLIENT[1], dport=SERVER[1], seq=self.cseq, ack=self.sseq,
                       flags=flags, window=502, options=opts, chksum=0xdead) / payload)
            self.cseq += len(payload) + (1 if "S" in flags or "F" in flags else 0)
            self.tsval += 1
        else:
            pkt = (Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=SERVER[0], dst=CLIENT[0]) /
                   TCP(sport=SERVER[1], dport=CLIENT[1], seq=self.sseq, ack=self.cseq,
                       flags=flags, window=509,
                       options=[("NOP", None), ("NOP", None),
                                ("Timestamp", (self.sts, self.tsval))]) / payload)
            self.sseq += len(payload) + (1 if "S" in flags or "F" in flags else 0)
            self.sts += 1
        pkt.time = self.t
        self.frames.append(pkt)

    def conversation(self, requests, responses):
        self.add(True, "S", syn_options=[("MSS", 1460), ("SAckOK", b""),
                                         ("Timestamp", (self.tsval, 0)), ("NOP", None),
                                         ("WScale", 7)])
        self.add(False, "SA")
        self.add(True, "A")
        for req, resp in zip(requests, responses):
            self.add(True, "PA", req)
            self.add(False, "PA", resp)
            self.add(True, "A")
        self.add(True, "FA")
        self.add(False, "FA")
        self.add(True, "A")
        return self.frames


def live_server_stream(path):
    seen = {}
    for p in rdpcap(str(path)):
        if TCP in p and p[IP].src == "198.18.0.2" and p[TCP].sport == 8080 and p[TCP].payload:
            seen[p[TCP].seq] = bytes(p[TCP].payload)
    stream = b""
    for seq in sorted(seen):
        stream += seen[seq]
    return stream


def split_responses(stream):
    out = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0]
                     .split(b":")[1])
        out.append(head + b"\r\n\r\n" + rest[:length])
        stream = rest[length:]
    return out


def test_linux_like_capture_replays(bin_dir, tmp_path):
    body = bytes(i % 251 for i in range(3000))
    requests = [b"GET /bytes/5000 HTTP/1.1\r\nHost: 10.1.0.1\r\nUser-Agent: curl/7.88.1\r\n"
                b"Accept: */*\r\n\r\n",
                b"POST /echo HTTP/1.1\r\nHost: 10.1.0.1\r\nContent-Length: 3000\r\n\r\n" + body]
    # First with placeholder responses: the replay diverges, and its --out holds the real ones.
    first = tmp_path / "placeholder.pcap"
    wrpcap(str(first), LinuxClient().conversation(requests, [b"?", b"?"]))
    out = tmp_path / "first.pcapng"
    r = run(bin_dir, first, "--port-map", "80:8080", "--fast", "--out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    responses = split_responses(live_server_stream(out))
    assert len(responses) == 2 and responses[1].endswith(body)
    # Now the capture as Linux would have recorded it: the replay must match exactly.
    real = tmp_path / "linux.pcap"
    wrpcap(str(real), LinuxClient().conversation(requests, responses))
    report = tmp_path / "r.json"
    r = run(bin_dir, real, "--port-map", "80:8080", "--report", report, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(report.read_text())
    (flow,) = rep["flows"]
    assert flow["recorded"] == "tcp 10.1.0.5:45678 > 10.1.0.1:80"
    assert flow["name"] == "tcp 198.18.0.10:45678 > 198.18.0.2:8080"
    assert flow["live_bytes"] == flow["recorded_bytes"] == sum(map(len, responses))
    assert flow["live_fin"] and not flow["live_rst"]
    assert split_responses(live_server_stream(out)) == responses
