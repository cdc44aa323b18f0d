"""The live pcap backend (backends/pcap, examples' --backend pcap) with the Linux kernel as the
peer, and the examples' --capture against tcpdump.

A veth pair: OUR end in the root namespace with no address (IPv6 off, offloads off): the examples
open it through libpcap and our stack is one more host on the link, with its own MAC; the PEER end
in a namespace with 198.18.y.1/24 (y in 40..59), checksum offload off, so every checksum on the
wire is real. The tests:

  ping      the kernel pings udp_echo --backend pcap
  udp       a kernel UDP socket's datagrams (up to 1472 bytes, and 3000: fragmented and
            reassembled) come back byte-exact
  tcp       1 MB through tcp_echo --backend pcap comes back byte-exact
  http      curl gets http_server's / and /bytes/N (status and body)
  capture   http_server --capture FILE while tcpdump -w records the peer's end: the TCP frames of
            our pcapng (read with scapy) are exactly the frames tcpdump saw (same bytes, same
            count), inbound and outbound
  errors    a missing interface, a down one, an unwritable --capture path, --capture with the
            kernel backend: one line naming the cause, exit 1 or 2, never a crash

Hygiene: names carry the pid of the pytest process (namespace dnpn<pid>, veth dnpa<pid>/dnpb<pid>);
a dead run's leftovers are removed first; every process is ended by its PID and the namespace and
veth removed afterwards, also on failure; every subprocess has a timeout."""
import collections
import json
import os
import re
import select
import signal
import subprocess
import tempfile
import time

import pytest

from dpdkutil import pattern

PID = os.getpid()
NS = f"dnpn{PID}"
OURS_IF, PEER_IF = f"dnpa{PID}", f"dnpb{PID}"
TMP = tempfile.gettempdir()


def sh(*cmd, check=True, timeout=20):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


def in_ns(*cmd):
    return ["ip", "netns", "exec", NS, *map(str, cmd)]


def _alive(pid):
    return os.path.exists(f"/proc/{pid}")


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_stale():
    stale = lambda pid: pid == PID or not _alive(pid)  # noqa: E731
    for line in sh("ip", "netns", "list").stdout.splitlines():
        m = re.match(r"(dnpn(\d+))\b", line)
        if m and stale(int(m.group(2))):
            _kill(int(p) for p in sh("ip", "netns", "pids", m.group(1), check=False).stdout.split())
            sh("ip", "netns", "del", m.group(1), check=False)
    for m in re.finditer(r"\d+: (dnp[a-d](\d+))[@:]", sh("ip", "-o", "link").stdout):
        if stale(int(m.group(2))):
            sh("ip", "link", "del", m.group(1), check=False)
    for name in os.listdir(TMP):
        m = re.fullmatch(r"dnp_(\d+)_.*", name)
        if m and stale(int(m.group(1))):
            try:
                os.unlink(os.path.join(TMP, name))
            except OSError:
                pass


def free_third_octet():
    used = set(re.findall(r"inet 198\.18\.(\d+)\.", sh("ip", "-o", "-4", "addr").stdout))
    for i in range(20):
        y = 40 + (PID + i) % 20
        if str(y) not in used:
            return y
    raise RuntimeError("no free 198.18.y.0/24 with y in 40..59")


@pytest.fixture(scope="module")
def link():
    if os.geteuid() != 0:
        pytest.fail("needs root (network namespaces, veth, libpcap): run as root")
    remove_stale()
    y = free_third_octet()
    info = {"peer_ip": f"198.18.{y}.1", "our_ip": f"198.18.{y}.2"}
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", OURS_IF, "type", "veth", "peer", "name", PEER_IF)
        sh("ip", "link", "set", PEER_IF, "netns", NS)
        sh("sysctl", "-qw", f"net.ipv6.conf.{OURS_IF}.disable_ipv6=1")
        sh("ip", "link", "set", OURS_IF, "mtu", "1500", "up")
        sh(*in_ns("sysctl", "-qw", f"net.ipv6.conf.{PEER_IF}.disable_ipv6=1"))
        sh(*in_ns("ip", "link", "set", PEER_IF, "mtu", "1500", "up"))
        sh(*in_ns("ip", "link", "set", "lo", "up"))
        sh(*in_ns("ip", "addr", "add", f"{info['peer_ip']}/24", "dev", PEER_IF))
        sh("ethtool", "-K", OURS_IF, "tx", "off", "rx", "off", "gro", "off", check=False)
        sh(*in_ns("ethtool", "-K", PEER_IF, "tx", "off", "rx", "off", "gro", "off"), check=False)
        features = sh(*in_ns("ethtool", "-k", PEER_IF)).stdout
        assert re.search(r"^tx-checksumming: off", features, re.M), features
        yield info
    finally:
        _kill(int(p) for p in sh("ip", "netns", "pids", NS, check=False).stdout.split())
        sh("ip", "netns", "del", NS, check=False)
        if os.path.exists(f"/sys/class/net/{OURS_IF}"):
            sh("ip", "link", "del", OURS_IF, check=False)
        assert not os.path.exists(f"/sys/class/net/{OURS_IF}"), "veth left behind"


class Program:
    """One of our examples in the root namespace, ended by its PID."""

    def __init__(self, argv):
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.lines, self._pending, self.result = [], b"", None

    def wait_for(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                self.lines.append(line.decode(errors="replace"))
                if text in self.lines[-1]:
                    return True
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return False
            data = os.read(fd, 65536)
            if not data:
                return False
            self._pending += data

    def stop(self):
        """SIGTERM (then SIGKILL); (status, rest of stdout, stderr). Idempotent."""
        if self.result is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                out, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate(timeout=5)
            self.result = (self.proc.returncode, (self._pending + out).decode(errors="replace"),
                           err.decode(errors="replace"))
        return self.result


@pytest.fixture
def start(link, bin_dir):
    """start(program, args, ready): an example on --backend pcap --iface OURS_IF, ready."""
    started = []

    def run(program, args, ready):
        p = Program([bin_dir / program, "--backend", "pcap", "--iface", OURS_IF, *args])
        started.append(p)
        if not p.wait_for(ready):
            status, out, err = p.stop()
            pytest.fail(f"{program} not ready (status {status}): {out} {err}")
        return p

    yield run
    for p in started:
        p.stop()


def last_json(text):
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def peer_python(code, timeout=15):
    r = subprocess.run(in_ns("/usr/bin/python3", "-c", code), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_kernel_pings_our_stack(link, start):
    p = start("udp_echo", ["--ip", f"{link['our_ip']}/24", "--port", "7"], "echoing UDP port 7")
    r = sh(*in_ns("ping", "-c", "3", "-i", "0.2", "-W", "2", link["our_ip"]))
    assert " 0% packet loss" in r.stdout, r.stdout
    status, out, err = p.stop()
    assert status == 0, err
    assert last_json(out)["icmp_echo_replies"] >= 3


def test_udp_echo_from_a_kernel_socket(link, start):
    p = start("udp_echo", ["--ip", f"{link['our_ip']}/24", "--port", "7"], "echoing UDP port 7")
    sizes = [1, 18, 100, 512, 1472, 3000]
    result = peer_python(f"""
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
ok = []
for i, n in enumerate({sizes}):
    data = bytes((i * 7 + k) % 251 for k in range(n))
    s.sendto(data, ("{link['our_ip']}", 7))
    got, frm = s.recvfrom(65536)
    ok.append(got == data and frm == ("{link['our_ip']}", 7))
print(json.dumps({{"ok": ok}}))
""")
    assert result["ok"] == [True] * len(sizes)
    status, out, err = p.stop()
    assert status == 0, err
    c = last_json(out)
    assert c["udp_delivered"] == len(sizes) and c["reassembled"] == 1 and c["malformed"] == 0, c


def test_tcp_echo_one_megabyte(link, start):
    p = start("tcp_echo", ["--ip", f"{link['our_ip']}/24", "--port", "7"], "echoing TCP port 7")
    result = peer_python(f"""
import hashlib, json, random, socket, threading, time
data = random.Random(15).randbytes(1 << 20)
s = socket.create_connection(("{link['our_ip']}", 7), timeout=5)
t0 = time.monotonic()
t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
t.join()
print(json.dumps({{"same": bytes(got) == data, "n": len(got),
                  "seconds": round(time.monotonic() - t0, 3)}}))
""")
    assert result["same"] and result["n"] == 1 << 20, result
    print(f"tcp echo 1 MiB over pcap: {result['seconds']} s")
    status, out, err = p.stop()
    assert status == 0, err
    c = last_json(out)
    assert c["app"]["bytes_echoed"] == 1 << 20 and c["malformed"] == 0, c
    assert c["device"]["rx_dropped"] == 0, c


def curl(link, path, out_file):
    r = sh(*in_ns("curl", "-s", "-m", "5", "-o", out_file, "-w", "%{http_code} %{time_total}",
                  f"http://{link['our_ip']}:8080{path}"))
    code, seconds = r.stdout.split()
    return int(code), float(seconds)


def test_http_server_answers_curl(link, start, tmp_path):
    p = start("http_server", ["--ip", f"{link['our_ip']}/24", "--port", "8080"], "serving http")
    body = tmp_path / "body"
    code, _ = curl(link, "/", body)
    assert code == 200 and b"dpdk-net" in body.read_bytes()
    code, seconds = curl(link, "/bytes/200000", body)
    assert code == 200 and body.read_bytes() == pattern(200000)
    assert seconds < 2, seconds
    print(f"curl /bytes/200000 over pcap: {seconds:.4f} s")
    status, out, err = p.stop()
    assert status == 0, err
    c = last_json(out)
    assert c["requests"] == 2 and c["stack"]["malformed"] == 0, c


def tcp_frames(path, port):
    """The raw bytes of every TCP frame to or from `port` in a pcap or pcapng file."""
    from scapy.all import TCP, rdpcap
    return [bytes(f) for f in rdpcap(str(path))
            if TCP in f and port in (f[TCP].sport, f[TCP].dport)]


def pcapng_directions(path):
    """(frame bytes, epb_flags direction: 1 inbound, 2 outbound) of every enhanced packet block
    of a little-endian pcapng file (scapy 2.5 does not expose the direction)."""
    import struct
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        if kind == 6:  # enhanced packet block
            captured = struct.unpack_from("<I", data, pos + 20)[0]
            frame = data[pos + 28:pos + 28 + captured]
            opt, direction = pos + 28 + (captured + 3) // 4 * 4, 0
            while opt + 4 <= pos + length - 4:
                code, olen = struct.unpack_from("<HH", data, opt)
                if code == 0:
                    break
                if code == 2:  # epb_flags
                    direction = struct.unpack_from("<I", data, opt + 4)[0] & 3
                opt += 4 + (olen + 3) // 4 * 4
            out.append((frame, direction))
        pos += length
    return out


def test_capture_equals_tcpdump(link, start):
    ours = os.path.join(TMP, f"dnp_{PID}_ours.pcapng")
    theirs = os.path.join(TMP, f"dnp_{PID}_tcpdump.pcap")
    tcpdump = subprocess.Popen(in_ns("tcpdump", "-i", PEER_IF, "-U", "--immediate-mode", "-Z", "root", "-s", "0",
                                     "-B", "16384", "-w", theirs, "tcp", "port", "8080"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # tcpdump says "listening on" once its socket is open.
        deadline = time.monotonic() + 10
        seen = b""
        while b"listening on" not in seen and time.monotonic() < deadline:
            if select.select([tcpdump.stderr], [], [], 0.2)[0]:
                seen += os.read(tcpdump.stderr.fileno(), 4096)
        assert b"listening on" in seen, seen
        p = start("http_server", ["--ip", f"{link['our_ip']}/24", "--port", "8080",
                                  "--capture", ours], "serving http")
        code, _ = curl(link, "/bytes/50000", os.path.join(TMP, f"dnp_{PID}_body"))
        assert code == 200
        status, out, err = p.stop()
        assert status == 0, err
        assert "frames written" in err, err
        # tcpdump (-U: whole packets) may lag behind on 2 busy cores: stop it only once it has
        # written as many frames as we did, or after 10 s (then the comparison says what is off).
        want = len(tcp_frames(ours, 8080))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if os.path.getsize(theirs) > 24 and len(tcp_frames(theirs, 8080)) >= want:
                break
    finally:
        tcpdump.send_signal(signal.SIGINT)
        try:
            seen += tcpdump.communicate(timeout=5)[1]
        except subprocess.TimeoutExpired:
            tcpdump.kill()
            tcpdump.wait(timeout=5)
    print(seen.decode(errors="replace"))
    try:
        mine, seen_by_kernel = tcp_frames(ours, 8080), tcp_frames(theirs, 8080)
        # 3-way handshake, request, 50 KB of answer, the FINs: a real conversation.
        assert len(mine) > 40, len(mine)
        # tcpdump itself can lose frames on 2 busy cores ("N packets dropped by kernel": its
        # socket buffer, not the link). It still counts what its filter matched: that count must
        # be ours, and every frame it did write must be one of ours, byte for byte.
        stats = seen.decode(errors="replace")
        matched = int(re.search(r"(\d+) packets? received by filter", stats).group(1))
        dropped = int(re.search(r"(\d+) packets? dropped by kernel", stats).group(1))
        assert len(mine) == matched, (len(mine), matched, stats)
        assert len(seen_by_kernel) == matched - dropped, (len(seen_by_kernel), stats)
        assert not collections.Counter(seen_by_kernel) - collections.Counter(mine)
        print(f"capture vs tcpdump: {len(mine)} TCP frames, {len(seen_by_kernel)} identical in "
              f"tcpdump's file ({dropped} dropped by tcpdump's socket)")
        # Each frame's direction: what our server sent (source port 8080) outbound, the rest in.
        directions = {bytes(f): d for f, d in pcapng_directions(ours)}
        for f in mine:
            sport = int.from_bytes(f[34:36], "big")  # Ethernet 14 + IPv4 20 (no options)
            assert directions[f] == (2 if sport == 8080 else 1), (sport, directions[f])
    finally:
        for f in (ours, theirs, os.path.join(TMP, f"dnp_{PID}_body")):
            if os.path.exists(f):
                os.unlink(f)


def test_capture_switched_at_run_time(link, start, tmp_path):
    """--capture-paused opens the file empty; SIGUSR1 switches the capture on, then off again:
    the file holds the one connection made while it was on, whole."""
    from scapy.all import TCP, rdpcap
    path = tmp_path / "switched.pcapng"
    p = start("http_server", ["--ip", f"{link['our_ip']}/24", "--port", "8080", "--capture",
                              path, "--capture-paused"], "serving http")
    body = tmp_path / "body"
    assert curl(link, "/", body)[0] == 200  # paused: not recorded
    p.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    assert curl(link, "/bytes/5000", body)[0] == 200  # on: recorded
    time.sleep(0.2)  # the last ACK is in before the switch
    p.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    assert curl(link, "/", body)[0] == 200  # off again
    status, _, err = p.stop()
    assert status == 0, err
    frames = [f for f in rdpcap(str(path)) if TCP in f]
    clients = {f[TCP].dport if f[TCP].sport == 8080 else f[TCP].sport for f in frames}
    assert len(clients) == 1, clients
    assert frames[0][TCP].flags == "S"  # from the SYN...
    assert any(f[TCP].flags.F for f in frames)  # ...to the FINs
    assert b"GET /bytes/5000" in b"".join(bytes(f[TCP].payload) for f in frames)


def test_capture_switch_survives_a_signal_storm(link, start, tmp_path):
    """SIGUSR1 every millisecond while the server serves and while it shuts down (the capture
    closes under the storm): no crash or sanitizer report, exit 0, and a complete pcapng."""
    import threading
    from scapy.all import rdpcap
    path = tmp_path / "storm.pcapng"
    p = start("http_server", ["--ip", f"{link['our_ip']}/24", "--port", "8080", "--capture",
                              path, "--capture-paused"], "serving http")
    storming = threading.Event()
    storming.set()
    sent = [0]
    pidfd = os.pidfd_open(p.proc.pid)  # signals reach this process only, never a reused PID

    def storm():
        while storming.is_set():
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGUSR1)
                sent[0] += 1
            except ProcessLookupError:
                return
            time.sleep(0.001)

    t = threading.Thread(target=storm)
    t.start()
    try:
        body = tmp_path / "body"
        for _ in range(3):
            assert curl(link, "/bytes/2000", body)[0] == 200
        status, _, err = p.stop()  # SIGTERM while the storm goes on
    finally:
        storming.clear()
        t.join(timeout=10)
        os.close(pidfd)
    assert sent[0] > 50, sent
    assert status == 0, err
    assert "Sanitizer" not in err and "runtime error" not in err, err
    rdpcap(str(path))  # a complete pcapng, whatever the switch was at the end


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_vanished_interface_leaves_the_stack_idle(bin_dir):
    """The interface under a running pcap backend is deleted: the example keeps running, idle
    (no busy loop on a broken descriptor), and ends normally when its time is up."""
    a, b = f"dnpc{PID}", f"dnpd{PID}"
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    p = None
    try:
        sh("ip", "link", "set", a, "up")
        sh("ip", "link", "set", b, "up")
        p = Program([bin_dir / "udp_echo", "--backend", "pcap", "--iface", a, "--ip",
                     "198.18.77.2/24", "--port", "7", "--seconds", "4"])
        assert p.wait_for("echoing UDP port 7"), p.stop()
        sh("ip", "link", "del", a)
        before = cpu_seconds(p.proc.pid)
        time.sleep(1.5)
        used = cpu_seconds(p.proc.pid) - before
        assert used < 0.5, f"{used:.2f} CPU s in 1.5 s after the interface went away: a busy loop"
        p.proc.wait(timeout=10)  # --seconds 4: it ends on its own
        status, out, err = p.stop()
        assert status == 0, err
        assert '"frames_in"' in out, out
    finally:
        if p is not None:
            p.stop()
        sh("ip", "link", "del", a, check=False)


def run_fail(bin_dir, *args):
    r = subprocess.run([str(bin_dir / a) if i == 0 else str(a) for i, a in enumerate(args)],
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stderr.strip()


def test_errors_name_the_cause(link, bin_dir):
    ip = ["--ip", f"{link['our_ip']}/24", "--port", "8080", "--max-seconds", "1"]
    code, err = run_fail(bin_dir, "http_server", "--backend", "pcap", "--iface", "dnpnosuch0", *ip)
    assert code == 1 and "no interface named dnpnosuch0" in err and "ip link" in err, err
    assert "Sanitizer" not in err and err.count("\n") == 0, err
    code, err = run_fail(bin_dir, "udp_echo", "--backend", "pcap", "--iface", "dnpnosuch0",
                         "--ip", f"{link['our_ip']}/24", "--port", "7")
    assert code == 1 and "no interface named dnpnosuch0" in err, err
    code, err = run_fail(bin_dir, "http_server", "--backend", "pcap", *ip)
    assert code == 2 and "needs --iface" in err, err
    code, err = run_fail(bin_dir, "http_server", "--backend", "pcap", "--iface", OURS_IF,
                         "--capture", "/nonexistent-dnp/x.pcapng", *ip)
    assert code == 1 and "/nonexistent-dnp/x.pcapng" in err and "No such file" in err, err
    code, err = run_fail(bin_dir, "http_server", "--backend", "kernel", "--capture",
                         os.path.join(TMP, f"dnp_{PID}_k.pcapng"), "--port", "8080")
    assert code == 2 and "not available with --backend kernel" in err, err
    code, err = run_fail(bin_dir, "http_server", "--backend", "pcap", "--iface", OURS_IF,
                         "--capture-limit", "100", *ip)
    assert code == 2 and "--capture-limit" in err, err
    sh("ip", "link", "set", OURS_IF, "down")
    try:
        code, err = run_fail(bin_dir, "tcp_echo", "--backend", "pcap", "--iface", OURS_IF,
                             "--ip", f"{link['our_ip']}/24", "--port", "7")
        assert code == 1 and "is down" in err and f"ip link set {OURS_IF} up" in err, err
    finally:
        sh("ip", "link", "set", OURS_IF, "up")


def test_http_load_client_with_a_capture_ring(link, bin_dir):
    """http_load --backend pcap as the client (our stack resolves the kernel's MAC and opens the
    connections) against http_server --backend kernel in PEER, capturing into a ring of 3 files
    of at most 64 KiB."""
    server = subprocess.Popen(in_ns(bin_dir / "http_server", "--backend", "kernel", "--ip",
                                    f"{link['peer_ip']}/24", "--port", "8081",
                                    "--max-seconds", "15"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ring = os.path.join(TMP, f"dnp_{PID}_ring.pcapng")
    files = [ring, ring + ".1", ring + ".2"]
    try:
        line = server.stdout.readline().decode()
        assert "serving" in line, line
        r = subprocess.run([str(bin_dir / "http_load"), "--backend", "pcap", "--iface", OURS_IF,
                            "--ip", f"{link['our_ip']}/24", "--connect",
                            f"{link['peer_ip']}:8081", "--path", "/bytes/2000", "-c", "4",
                            "-d", "1", "--json", "--capture", ring, "--capture-limit", "65536",
                            "--capture-files", "3"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        result = last_json(r.stdout)
        assert result["requests"] > 100 and result["errors"] == 0, result
        print(f"http_load over pcap: {result['rps']} req/s, p99 {result['p99_us']} us")
        assert "frames written" in r.stderr, r.stderr
        # 1 s of load is far more than 192 KiB of frames: the ring went round, every file within
        # its cap and a pcapng scapy reads on its own; the two older ones full (the newest may
        # have just been opened when the run ended, so it can hold anything from no frame up).
        from scapy.all import rdpcap
        frames = []
        for f in files:
            assert os.path.exists(f), f
            assert os.path.getsize(f) <= 65536, (f, os.path.getsize(f))
            frames.append(len(rdpcap(f)))
        assert sorted(frames)[1] > 10, frames
        assert not os.path.exists(ring + ".3")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate(timeout=5)
        for f in files:
            if os.path.exists(f):
                os.unlink(f)
