"""Replaying a capture the Linux kernel made (issue 15): curl talks to the examples' HTTP server
on kernel sockets (http_server --backend kernel: the same Beast application code) across a veth
pair between two namespaces, tcpdump records it with every offload off (so the file holds the
frames as they were on the wire: no TSO super-frames, no partial checksums), and pcap_replay
replays curl's side -- Linux's ISNs, timestamps, window scaling, SACK-permitted -- against the
same application on our stack in the simulator, then live (pcap_replay --backend pcap on one end
of the veth, http_server --backend pcap on the other). The responses in the replay's output pcap
must be the ones curl got: same status, same body."""
import re
import signal
import subprocess
import time

import pytest

import dpdkutil
from dpdkutil import KernelPeerLink, in_ns, sh

PORT = 8080
BYTES = 70000  # several segments, a window update or two
ECHO = b"replay me " * 300


def http_responses(stream):
    """(status, body) of each HTTP/1.1 response in a byte stream (Content-Length bodies)."""
    out = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {stream[:200]!r}"
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        length = int(m.group(1)) if m else 0
        assert len(rest) >= length, f"body cut short: {len(rest)} of {length}"
        out.append((status, rest[:length]))
        stream = rest[length:]
    return out


def server_streams(path, server_port):
    """The server's byte stream of each TCP connection in a capture, in connection order:
    segments placed by sequence number (retransmissions and overlaps counted once)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap
    flows = {}
    order = []
    for pkt in rdpcap(str(path)):
        if IP not in pkt or TCP not in pkt:
            continue
        tcp = pkt[TCP]
        if tcp.sport != server_port:
            continue
        key = (pkt[IP].dst, tcp.dport)
        if tcp.flags & 0x02:  # SYN-ACK: the server's ISN
            if key not in flows:
                order.append(key)
            flows[key] = {"isn": tcp.seq, "bytes": {}}
            continue
        flow = flows.get(key)
        if flow is None:
            continue
        payload = bytes(tcp.payload)
        start = (tcp.seq - flow["isn"] - 1) % (1 << 32)
        for i, b in enumerate(payload):
            flow["bytes"].setdefault(start + i, b)
    streams = []
    for key in order:
        got = flows[key]["bytes"]
        n = 0
        while n in got:
            n += 1
        assert n == len(got), f"flow {key}: a hole in the server's stream at byte {n}"
        streams.append(bytes(got[i] for i in range(n)))
    return streams


def run_curls(link, out_dir, timeout=20):
    """The three curl runs from the peer's namespace to http://OUR_IP:PORT (GET /, GET /bytes/N
    + GET / kept alive, POST /echo); [(status, body)] per run, in order."""
    base = f"http://{link.our_ip}:{PORT}"
    body_file = out_dir / "echo.bin"
    body_file.write_bytes(ECHO)
    runs = [
        ["curl", "-s", "--http1.1", base + "/"],
        ["curl", "-s", "--http1.1", f"{base}/bytes/{BYTES}", base + "/"],
        ["curl", "-s", "--http1.1", "--data-binary", f"@{body_file}", base + "/echo"],
    ]
    got = []
    for args in runs:
        urls = [a for a in args if a.startswith("http://")]
        outs = [out_dir / f"out{len(got)}_{i}" for i in range(len(urls))]
        cmd = list(args)
        for o in outs:
            cmd += ["-o", str(o)]
        cmd += ["-w", "%{http_code}\\n"]
        r = link.peer_run(*cmd, timeout=timeout)
        codes = [int(c) for c in r.stdout.split()]
        got.append([(c, o.read_bytes() if o.exists() else b"") for c, o in zip(codes, outs)])
    return got


def start_kernel_http_server(bin_dir, ns, port, ip=None):
    """http_server --backend kernel in namespace ns (on ip/24, else any address), once the
    kernel reports its listener (asked of the kernel: no probe goes on the wire)."""
    args = ["--ip", f"{ip}/24"] if ip else []
    server = subprocess.Popen(
        in_ns(ns, bin_dir / "http_server", "--backend", "kernel", *args, "--port", port,
              "--max-seconds", 30), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(200):
        if f":{port}" in sh(*in_ns(ns, "ss", "-Hltn")).stdout:
            return server
        if server.poll() is not None:
            break
        time.sleep(0.025)
    stop(server)
    pytest.fail(f"http_server --backend kernel did not listen: {server.communicate()}")


def stop(process):
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def replay_and_check(cmd, out, port, expected, flows=3):
    """Runs pcap_replay (cmd, writing --out `out`): exit 0, no divergence, and the responses in
    its output pcap are `expected` (status and body, in order)."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, f"pcap_replay exit {r.returncode}: {r.stdout}{r.stderr}"
    assert f"{flows} flows (0 skipped)" in r.stdout and "0 divergences" in r.stdout, r.stdout
    assert [x for s in server_streams(out, port) for x in http_responses(s)] == expected


@pytest.fixture(scope="module")
def recorded(bin_dir, tmp_path_factory):
    """A capture of three curl connections (GET /, GET /bytes/N + GET / kept alive, POST /echo)
    to http_server --backend kernel, and what curl received."""
    tmp_path = tmp_path_factory.mktemp("kernel_replay")
    dpdkutil.remove_stale()
    link = KernelPeerLink(dpdkutil.free_third_octet(160, 200))
    link.create()
    server = tcpdump = None
    try:
        sh(*in_ns(link.ours, "ip", "addr", "add", f"{link.our_ip}/24", "dev", link.ours_if))
        for ns, iface in ((link.ours, link.ours_if), (link.peer, link.peer_if)):
            sh(*in_ns(ns, "ethtool", "-K", iface, "tso", "off", "gso", "off", "gro", "off",
                      "tx", "off"))
        server = start_kernel_http_server(bin_dir, link.ours, PORT, link.our_ip)
        capture = tmp_path / "kernel.pcap"
        tcpdump = subprocess.Popen(
            in_ns(link.ours, "tcpdump", "-i", link.ours_if, "-nn", "-U", "--immediate-mode", "-Z", "root",
                  "-s", "0", "-w",
                  capture, "tcp", "port", PORT), stderr=subprocess.PIPE, text=True)
        line = tcpdump.stderr.readline()  # "listening on ...": the capture runs
        assert "listening on" in line, line
        expected = run_curls(link, tmp_path)
        time.sleep(0.3)  # the last FIN/ACKs reach tcpdump
        tcpdump.send_signal(signal.SIGINT)
        _, err = tcpdump.communicate(timeout=10)
        m = re.search(r"(\d+) packets captured", err)
        assert m and int(m.group(1)) > 0, err
        yield {"capture": capture, "server_ip": link.our_ip, "expected": expected, "link": link}
    finally:
        for p in (server, tcpdump):
            stop(p)
        link.destroy()
        assert not link.leftovers()


def test_linux_capture_replays_to_the_same_http_responses(bin_dir, recorded, tmp_path):
    capture = recorded["capture"]
    assert capture.stat().st_size > 0
    # What Linux recorded: the responses curl got are in the capture too (the capture is whole).
    recorded_streams = server_streams(capture, PORT)
    flat_expected = [resp for run in recorded["expected"] for resp in run]
    assert len(recorded_streams) == 3
    assert [r for s in recorded_streams for r in http_responses(s)] == flat_expected

    out = tmp_path / "replayed.pcapng"
    replay_and_check([bin_dir / "pcap_replay", str(capture), "--target", recorded["server_ip"],
                      "--out", str(out), "--fast"], out, PORT, flat_expected)
    assert len(flat_expected[1][1]) == BYTES and flat_expected[-1][1] == ECHO


# Live runs use --timeout 5: a sanitizer build on 2 shared cores can stall a live peer for a
# second or two, and a slow peer is not what these tests are about.
def test_linux_capture_replays_live_over_pcap(bin_dir, recorded, tmp_path):
    """The same capture replayed live: the replayer on the peer's end of the veth (libpcap), our
    stack with the HTTP example on the other (libpcap too); neither kernel holds an address, so
    only the two user-space stacks talk."""
    link = recorded["link"]
    flat_expected = [resp for run in recorded["expected"] for resp in run]
    sh(*in_ns(link.ours, "ip", "addr", "flush", "dev", link.ours_if))
    sh(*in_ns(link.peer, "ip", "addr", "flush", "dev", link.peer_if))
    server = subprocess.Popen(
        in_ns(link.ours, bin_dir / "http_server", "--backend", "pcap", "--iface", link.ours_if,
              "--ip", f"{link.our_ip}/24", "--port", PORT, "--max-seconds", 30),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert "serving" in line, line + server.stderr.read()
        out = tmp_path / "live.pcapng"
        replay_and_check(
            in_ns(link.peer, bin_dir / "pcap_replay", str(recorded["capture"]), "--backend", "pcap",
                  "--iface", link.peer_if, "--ip", link.peer_ip, "--live", link.our_ip,
                  "--target", recorded["server_ip"], "--out", str(out), "--fast", "--timeout", 5,
                  "--max-seconds", 20), out, PORT, flat_expected)
    finally:
        stop(server)


def test_linux_capture_server_side_answers_live_curl(bin_dir, recorded, tmp_path):
    """--as server: the replayer plays the recorded server (the Beast app on kernel sockets) on
    our end of the veth, at the recorded server's address, and the Linux kernel's curl on the
    other end -- its own ISNs, ports and timestamps -- connects to it: curl must get the recorded
    responses, and curl's requests must match the recorded ones byte for byte."""
    link = recorded["link"]
    sh(*in_ns(link.ours, "ip", "addr", "flush", "dev", link.ours_if))
    sh(*in_ns(link.peer, "ip", "addr", "flush", "dev", link.peer_if))
    sh(*in_ns(link.peer, "ip", "addr", "add", f"{link.peer_ip}/24", "dev", link.peer_if))
    out = tmp_path / "server_side.pcapng"
    replayer = subprocess.Popen(
        in_ns(link.ours, bin_dir / "pcap_replay", str(recorded["capture"]), "--backend", "pcap",
              "--iface", link.ours_if, "--ip", link.our_ip, "--live", link.peer_ip, "--as",
              "server", "--fast", "--timeout", 5, "--out", str(out), "--max-seconds", 30),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = replayer.stdout.readline()
        assert "replaying" in line, line + replayer.stderr.read()
        got = run_curls(link, tmp_path)
        stdout, stderr = replayer.communicate(timeout=30)
        print(line, stdout, stderr)
        assert got == recorded["expected"]
        assert replayer.returncode == 0, stdout + stderr
        assert "3 flows (0 skipped)" in stdout and "0 divergences" in stdout, stdout
    finally:
        if replayer.poll() is None:
            replayer.kill()
            replayer.wait(timeout=5)
        sh(*in_ns(link.peer, "ip", "addr", "flush", "dev", link.peer_if))


def test_linux_capture_replays_over_tap_against_the_kernel(bin_dir, recorded, tmp_path):
    """--backend tap: the replayer on a TAP device whose kernel side is the live address, so the
    live stack is the Linux kernel itself with the same Beast app on kernel sockets (bound to any
    address) -- the recorded conversation against the stack that recorded it."""
    link = recorded["link"]
    third = int(link.our_ip.split(".")[2]) + 1  # another /24, inside our namespace only
    live_ip, replayer_ip = f"198.18.{third}.1", f"198.18.{third}.2"
    flat_expected = [resp for run in recorded["expected"] for resp in run]
    live_port = PORT + 10  # the recording's server may still hold PORT: --port-map moves it
    server = start_kernel_http_server(bin_dir, link.ours, live_port)
    try:
        out = tmp_path / "tap.pcapng"
        replay_and_check(
            in_ns(link.ours, bin_dir / "pcap_replay", str(recorded["capture"]), "--backend", "tap",
                  "--iface", f"dnkt{dpdkutil.PID}", "--ip", replayer_ip, "--live", live_ip,
                  "--target", recorded["server_ip"], "--port-map", f"{PORT}:{live_port}",
                  "--out", str(out), "--fast", "--timeout", 5, "--max-seconds", 20),
            out, live_port, flat_expected)
    finally:
        stop(server)
