"""Our TCP over TAP with Linux as the peer: tcp_echo serves nc, socat and Python sockets; 100 MB
come back byte-exact (SHA-256); the stream survives loss on the kernel side (nftables `numgen
random` drops, with TSO/GSO/GRO off so single segments drop: this kernel has no netem) and
reordering, duplication and delay from fault_device around our TAP device; 50 connections at once;
and `tcp_echo --connect` verifies its stream against a Linux (Python) listener.

Hygiene: addresses in 198.19.0.0/24..198.19.149.0/24 (inside 198.18.0.0/15), a subnet no address on
this host uses; unique interface and nftables table names from the pid; every process is ended by
its PID and every table deleted, also on failure; every test runs under an alarm and every socket
under a timeout."""
import contextlib
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

PID = os.getpid() % 100000
TEST_SECONDS = 40  # the alarm for one test (the whole file runs in well under a minute)
_names = iter(range(100))


def sh(*cmd, check=True, stdin=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=check,
                          input=stdin)


@pytest.fixture(autouse=True)
def time_limit():
    def expired(signum, frame):
        raise TimeoutError(f"test still running after {TEST_SECONDS} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def remove_stale_tables():
    """nftables tables of earlier runs whose process is gone (named after their pid)."""
    for m in re.finditer(r"table inet (dnt_loss_(\d+)_\d+)", sh("nft", "list", "tables",
                                                                check=False).stdout):
        if not os.path.exists(f"/proc/{m.group(2)}"):
            sh("nft", "delete", "table", "inet", m.group(1), check=False)


def free_subnet():
    """A third octet x such that no address on this host is in 198.19.x.0/24."""
    used = set(re.findall(r"inet 198\.19\.(\d+)\.", sh("ip", "-o", "-4", "addr").stdout))
    start = (PID * 7 + next(_names)) % 150
    for i in range(150):
        x = (start + i) % 150
        if str(x) not in used:
            return x
    pytest.fail("no free 198.19.x.0/24 subnet")


def read_line(proc, timeout):
    """The next line of proc's stdout, or '' if none came within timeout."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def stop(proc):
    """Ends proc by its PID (SIGTERM, then SIGKILL) and returns its remaining stdout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out


def last_json(text):
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("{")]
    assert lines, f"no counters JSON in: {text!r}"
    return json.loads(lines[-1])


class EchoServer:
    """tcp_echo serving port 7 on a fresh TAP interface; the kernel side has .kernel."""

    def __init__(self, bin_dir, *extra, gateway=False):
        x = free_subnet()
        self.name = f"dnt{PID}{next(_names)}"
        self.ours, self.kernel = f"198.19.{x}.2", f"198.19.{x}.1"
        self.port = 7
        self.proc = subprocess.Popen(
            [str(bin_dir / "tcp_echo"), "--backend", "tap", "--iface", self.name, "--ip",
             f"{self.ours}/24", "--kernel-ip", self.kernel, "--port", str(self.port),
             "--seconds", str(TEST_SECONDS + 5),
             *(["--gateway", f"198.19.{x}.1"] if gateway else []), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = read_line(self.proc, 10)
        if "echoing TCP port 7" not in line:
            stop(self.proc)
            pytest.fail(f"tcp_echo did not start: {line!r} {self.proc.stderr.read()}")

    def counters(self):
        out = stop(self.proc)
        assert self.proc.returncode == 0, (self.proc.returncode, self.proc.stderr.read())
        return last_json(out)


@pytest.fixture
def servers(bin_dir):
    started = []

    def start(*extra, gateway=False):
        started.append(EchoServer(bin_dir, *extra, gateway=gateway))
        return started[-1]
    try:
        yield start
    finally:
        for s in started:
            stop(s.proc)
            s.proc.stderr.close()
            deadline = time.monotonic() + 5
            while os.path.exists(f"/sys/class/net/{s.name}") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not os.path.exists(f"/sys/class/net/{s.name}"), "TAP interface left behind"


def stream_chunks(seed, nbytes, chunk=1 << 20):
    rng = random.Random(seed)
    left = nbytes
    while left:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def echo_stream(addr, nbytes, seed, timeout=20.0):
    """Streams nbytes to an echo server while reading the echo; returns (sent SHA-256, received
    SHA-256, bytes received, seconds). Half-closes after sending; the echo ends at the server's
    FIN."""
    sock = socket.create_connection(addr, timeout=timeout)
    sent = hashlib.sha256()
    errors = []

    def sender():
        try:
            for block in stream_chunks(seed, nbytes):
                sent.update(block)
                sock.sendall(block)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)
    start = time.monotonic()
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got, n = hashlib.sha256(), 0
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            got.update(data)
            n += len(data)
    finally:
        t.join(timeout)
        sock.close()
    assert not errors, errors
    return sent.hexdigest(), got.hexdigest(), n, time.monotonic() - start


def expect_intact(addr, nbytes, seed):
    want, got, n, secs = echo_stream(addr, nbytes, seed)
    assert n == nbytes, f"seed {seed}: {n} of {nbytes} bytes came back"
    assert got == want, f"seed {seed}: the echo differs (SHA-256)"
    return secs


def test_python_sockets(servers):
    s = servers()
    addr = (s.ours, s.port)
    for i, size in enumerate((1, 1000, 1460, 1461, 65536, 300_000)):
        expect_intact(addr, size, seed=i)
    # The server closes only after the peer's FIN: it keeps echoing across a pause.
    c = socket.create_connection(addr, timeout=5)
    c.sendall(b"first")
    assert c.recv(100) == b"first"
    time.sleep(0.3)
    c.sendall(b"second")
    assert c.recv(100) == b"second"
    c.shutdown(socket.SHUT_WR)
    assert c.recv(100) == b""  # our FIN, after everything was echoed
    c.close()
    k = s.counters()
    assert k["app"]["accepted"] == 7 and k["app"]["completed"] == 7, k["app"]
    assert k["app"]["failed"] == 0 and k["tcp"]["passive_opens"] == 7, k
    assert k["tcp"]["demux_lookups"] == k["tcp"]["segments_in"], k["tcp"]


def test_nc(servers, tmp_path):
    s = servers("--stats", str(tmp_path / "stats.json"))  # the counters go there, not to stdout
    payload = random.Random(5).randbytes(200_000)
    (tmp_path / "in").write_bytes(payload)
    with open(tmp_path / "in", "rb") as stdin:
        r = subprocess.run(["nc", "-N", "-w", "10", s.ours, str(s.port)], stdin=stdin,
                           capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(payload).digest()
    out = stop(s.proc)
    assert s.proc.returncode == 0 and "{" not in out, out
    k = json.loads((tmp_path / "stats.json").read_text())
    assert k["app"]["completed"] == 1 and k["app"]["bytes_echoed"] == len(payload), k["app"]


def test_socat(servers, tmp_path):
    s = servers()
    payload = random.Random(6).randbytes(500_000)
    (tmp_path / "in").write_bytes(payload)
    # -t 10: after stdin's EOF, socat waits for the echo (and our FIN) up to 10 s.
    with open(tmp_path / "in", "rb") as stdin, open(tmp_path / "out", "wb") as stdout:
        r = subprocess.run(["socat", "-t", "10", "-T", "10", "-", f"TCP:{s.ours}:{s.port}"],
                           stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == payload
    assert s.counters()["app"]["completed"] == 1


def test_100_megabytes_byte_exact(servers, record_property):
    s = servers()
    secs = expect_intact((s.ours, s.port), 100 * 1000 * 1000, seed=100)
    rate = 100 / secs
    record_property("echo_mb_per_s", round(rate, 1))
    print(f"100 MB echoed intact in {secs:.2f} s: {rate:.1f} MB/s each way")
    k = s.counters()
    assert k["app"]["bytes_echoed"] == 100 * 1000 * 1000, k["app"]
    assert k["tcp"]["bytes_in"] >= 100 * 1000 * 1000 and k["tcp"]["bytes_out"] >= 100 * 1000 * 1000


def remove_stale_namespaces():
    """Namespaces and veths of earlier runs whose process is gone (named after their pid)."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        m = re.match(r"(dnl(\d{5})\d+)", line)
        if m and not os.path.exists(f"/proc/{int(m.group(2))}"):
            sh("ip", "netns", "del", m.group(1), check=False)
    for m in re.finditer(r"\d+: (dnv(\d{5})\d+a)[@:]", sh("ip", "-o", "link").stdout):
        if not os.path.exists(f"/proc/{int(m.group(2))}"):
            sh("ip", "link", "del", m.group(1), check=False)


def offloads_off(iface, ns=None):
    """TSO/GSO/GRO off: the kernel then moves single segments, so a drop loses one."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    sh(*pre, "ethtool", "-K", iface, "tso", "off", "gso", "off", "gro", "off", check=False)
    features = sh(*pre, "ethtool", "-k", iface).stdout
    for f in ("tcp-segmentation-offload", "generic-segmentation-offload",
              "generic-receive-offload"):
        assert re.search(rf"^{f}: off", features, re.M), (iface, features)


@contextlib.contextmanager
def routed_namespace(server):
    """A namespace whose connections to server are forwarded by the host (veth in, TAP out): the
    host's netfilter drops are then real losses for both ends. (Drops of locally generated
    segments are not: the kernel's TCP sees the error and sends the segment again later, so no
    hole ever reaches us.)"""
    n = next(_names)
    ns, host_if, ns_if = f"dnl{PID:05d}{n}", f"dnv{PID:05d}{n}a", f"dnv{PID:05d}{n}b"
    x = free_subnet()
    host_ip, ns_ip = f"198.19.{x}.1", f"198.19.{x}.2"
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("sysctl", "-qw", f"net.ipv6.conf.{host_if}.disable_ipv6=1")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{ns_if}.disable_ipv6=1")
        sh("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", host_ip)
        # Forwarding on these two interfaces only (IPv4 decides by the input interface).
        for iface in (host_if, server.name):
            sh("sysctl", "-qw", f"net.ipv4.conf.{iface}.forwarding=1")
        offloads_off(ns_if, ns)
        offloads_off(host_if)
        offloads_off(server.name)
        yield ns
    finally:
        sh("ip", "netns", "del", ns, check=False)  # takes the veth pair with it
        sh("ip", "link", "del", host_if, check=False)


def echo_stream_in(ns, addr, nbytes, seed):
    """echo_stream run by Linux inside namespace ns; returns what echo_stream returns."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import test_tcp_echo_tap as t; "
            "print(json.dumps(t.echo_stream((sys.argv[2], int(sys.argv[3])), int(sys.argv[4]), "
            "int(sys.argv[5]))))")
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code,
                        os.path.dirname(os.path.abspath(__file__)), addr[0], str(addr[1]),
                        str(nbytes), str(seed)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return tuple(json.loads(r.stdout))


def nft_forward_loss(iface, percent):
    """A table dropping `percent` % of the TCP segments forwarded to and from iface, with
    counters. Returns the table's name."""
    table = f"dnt_loss_{PID}_{next(_names)}"
    rules = f"""table inet {table} {{
        chain forward_loss {{ type filter hook forward priority 0; policy accept;
            oifname "{iface}" meta l4proto tcp numgen random mod 100 < {percent} counter drop
            iifname "{iface}" meta l4proto tcp numgen random mod 100 < {percent} counter drop
        }}
    }}"""
    sh("nft", "-f", "-", stdin=rules)
    return table


def nft_drops(table):
    out = sh("nft", "list", "table", "inet", table).stdout
    return [int(n) for n in re.findall(r"counter packets (\d+)", out)]


def test_loss_on_the_kernel_side(servers):
    remove_stale_tables()
    remove_stale_namespaces()
    s = servers(gateway=True)  # the namespace is off our subnet: replies go via the kernel
    with routed_namespace(s) as ns:
        table = nft_forward_loss(s.name, 3)
        try:
            for seed in (31, 32):
                want, got, n, _ = echo_stream_in(ns, (s.ours, s.port), 3_000_000, seed)
                assert n == 3_000_000 and got == want, f"seed {seed}: {n} bytes, SHA-256 differs"
            drops = nft_drops(table)
        finally:
            sh("nft", "delete", "table", "inet", table, check=False)
    assert len(drops) == 2 and all(d > 0 for d in drops), f"a loss rule dropped nothing: {drops}"
    k = s.counters()
    assert k["tcp"]["retransmits"] > 0, k["tcp"]  # our lost segments were sent again
    assert k["tcp"]["out_of_order"] > 0, k["tcp"]  # and Linux's losses left holes we held
    assert k["app"]["completed"] == 2 and k["app"]["failed"] == 0, k["app"]


def test_reordering_duplication_and_delay_from_fault_device(servers):
    seed = int(os.environ.get("DPDK_NET_TEST_SEED", "77"))
    s = servers("--delay", "2", "--reorder", "10", "--reorder-delay", "3", "--duplicate", "10",
                "--seed", str(seed))
    for i in range(2):
        expect_intact((s.ours, s.port), 2_000_000, seed=seed + i)
    k = s.counters()
    f = k["faults"]
    assert f["rx"]["reordered"] > 0 and f["tx"]["reordered"] > 0, f
    assert f["rx"]["duplicated"] > 0 and f["tx"]["duplicated"] > 0, f
    # The stack saw what the faults made: segments out of order and data twice.
    assert k["tcp"]["out_of_order"] > 0 and k["tcp"]["spurious_rtx_data"] > 0, (seed, k["tcp"])
    assert k["app"]["completed"] == 2 and k["app"]["failed"] == 0, (seed, k["app"])


def test_fifty_parallel_connections(servers):
    s = servers()
    results, errors = {}, []

    def one(i):
        try:
            results[i] = echo_stream((s.ours, s.port), 200_000 + i * 1000, seed=1000 + i)
        except Exception as e:  # noqa: BLE001 -- reported below with the connection's number
            errors.append((i, repr(e)))
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert len(results) == 50
    for i, (want, got, n, _) in results.items():
        assert n == 200_000 + i * 1000 and got == want, f"connection {i}"
    k = s.counters()
    assert k["app"]["accepted"] == 50 and k["app"]["completed"] == 50, k["app"]
    assert k["tcp"]["listen_overflow"] == 0, k["tcp"]


@contextlib.contextmanager
def linux_echo_listener(address, corrupt_at=None):
    """A Linux (Python) echo server on address; corrupt_at flips one echoed byte there."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((address, 0))
    lsock.listen(16)
    lsock.settimeout(0.2)
    done = threading.Event()
    served = []

    def serve(conn):
        conn.settimeout(20)
        offset = 0
        with conn, contextlib.suppress(OSError):  # our client aborts on a bad echo
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                if corrupt_at is not None and offset <= corrupt_at < offset + len(data):
                    b = bytearray(data)
                    b[corrupt_at - offset] ^= 0x20
                    data = bytes(b)
                offset += len(data)
                conn.sendall(data)
        served.append(offset)

    def accept_loop():
        while not done.is_set():
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    try:
        yield lsock.getsockname()[1], served
    finally:
        done.set()
        t.join(5)
        lsock.close()


def run_client(bin_dir, port_of_listener, *extra, kernel_octet):
    name = f"dnt{PID}{next(_names)}"
    ours, kernel = f"198.19.{kernel_octet}.2", f"198.19.{kernel_octet}.1"
    return subprocess.run([str(bin_dir / "tcp_echo"), "--backend", "tap", "--iface", name,
                           "--ip", f"{ours}/24", "--kernel-ip", kernel, "--connect",
                           f"{kernel}:{port_of_listener}", "--seconds", "30", *extra],
                          capture_output=True, text=True, timeout=40)


def test_our_client_against_a_linux_listener(bin_dir):
    x = free_subnet()
    with linux_echo_listener("0.0.0.0") as (port, served):
        r = run_client(bin_dir, port, "--bytes", "8M", "--connections", "3", "--seed", "9",
                       kernel_octet=x)
        assert r.returncode == 0, r.stderr
        assert "echoed intact" in r.stderr, r.stderr
        k = last_json(r.stdout)
        assert k["app"]["streams_intact"] == 3 and k["app"]["bytes_verified"] == 3 * 8 << 20, k
        assert k["tcp"]["active_opens"] == 3 and k["tcp"]["connect_failed"] == 0, k["tcp"]
        deadline = time.monotonic() + 5
        while len(served) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(served) == [8 << 20] * 3, served  # Linux got every byte, and our FIN


def test_our_client_detects_a_corrupted_echo_and_a_refused_connect(bin_dir):
    x = free_subnet()
    with linux_echo_listener("0.0.0.0", corrupt_at=123_457) as (port, _):
        r = run_client(bin_dir, port, "--bytes", "1M", kernel_octet=x)
    assert r.returncode == 1 and "echo differs at byte 123457" in r.stderr, r.stderr
    # Nobody listens on the port any more: Linux answers RST, connect is refused.
    r = run_client(bin_dir, port, "--bytes", "1K", kernel_octet=x)
    assert r.returncode == 1 and "refused" in r.stderr.lower(), r.stderr
    assert last_json(r.stdout)["tcp"]["connect_failed"] == 1


def test_bad_arguments_are_explained(bin_dir):
    base = ["--backend", "tap", "--iface", "x"]
    for args, message in [([], "--backend must be tap"),
                          (base + ["--ip", "1.2.3.4", "--port", "7"], "--ip ADDR/PREFIX"),
                          (base + ["--ip", "198.18.0.2/24", "--port", "99999"], "--port 1..65535"),
                          (base + ["--ip", "198.18.0.2/24"], "--connect ADDR:PORT"),
                          (base + ["--ip", "198.18.0.2/24", "--connect", "198.18.0.1"],
                           "--connect needs ADDR:PORT"),
                          (base + ["--ip", "198.18.0.2/24", "--port", "7", "--reorder", "150"],
                           "percentage"),
                          (base + ["--ip", "198.18.0.2/24", "--port", "7", "--bytes", "12Q"],
                           "--bytes needs a size"),
                          (base + ["--ip", "198.18.0.2/24", "--port", "7", "--frobnicate", "1"],
                           "unknown argument '--frobnicate'")]:
        r = subprocess.run([str(bin_dir / "tcp_echo"), *args], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run([str(bin_dir / "tcp_echo"), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and "--connect ADDR:PORT" in r.stdout


def test_max_seconds_stops_and_prints_counters(bin_dir):
    x = free_subnet()
    start = time.monotonic()
    r = subprocess.run([str(bin_dir / "tcp_echo"), "--backend", "tap", "--iface",
                        f"dnt{PID}{next(_names)}", "--ip", f"198.19.{x}.2/24", "--kernel-ip",
                        f"198.19.{x}.1", "--port", "7", "--max-seconds", "0.5"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert 0.5 <= time.monotonic() - start < 10
    k = last_json(r.stdout)
    assert k["tcp"]["segments_in"] == 0 and k["app"]["accepted"] == 0, k
