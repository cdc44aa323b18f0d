"""Helpers for the live tests of our stack on DPDK with the Linux kernel as the peer
(test_dpdk_kernel_peer.py): a veth pair between two network namespaces (OURS, where our DPDK
process runs, and PEER, where Linux's TCP talks to it), DPDK processes started in OURS and ended by
their PID, and the Python clients Linux runs in PEER. This file is also those clients' entry point:

    ip netns exec PEER /usr/bin/python3 dpdkutil.py keepalive ADDR PORT
    ip netns exec PEER /usr/bin/python3 dpdkutil.py echo ADDR PORT NBYTES SEED

each prints one JSON line and exits 0, or raises (exit 1, the traceback on stderr).

Hygiene: names carry the pid of the pytest process (namespaces dnko<pid>/dnkp<pid>, veth ends
dnka<pid>/dnkb<pid>, EAL file prefixes dnk_<pid>_<n>); what a dead run left (its pid gone, or
this pid reused) is removed before anything is created: its processes (by PID, found with
`ip netns pids`), namespaces (which take the veth pair and the PEER's nftables tables with them)
and /var/run/dpdk/dnk_<pid>_<n>."""
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PID = os.getpid()
RUNTIME = "/var/run/dpdk"
HERE = os.path.dirname(os.path.abspath(__file__))
_names = iter(range(1000))

# LeakSanitizer (the ci build is ASan) stays on for DPDK processes, with one suppression: 80
# bytes from libxdp's xsk_umem__create that DPDK 22.11's af_xdp driver never frees (a leak in the
# driver, not ours; nothing else leaks over af_xdp, af_packet or memif). By library, so our own
# code stays checked.
LSAN_SUPPRESSIONS = "leak:libxdp.so\n"


def sh(*cmd, check=True, timeout=30, stdin=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check,
                          input=stdin)


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *map(str, cmd)]


def sanitizer_env():
    """The environment for a DPDK process: LeakSanitizer on, with the suppressions above."""
    path = os.path.join(tempfile.gettempdir(), f"dnk_lsan_{PID}.supp")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(LSAN_SUPPRESSIONS)
    env = dict(os.environ)
    env["LSAN_OPTIONS"] = f"suppressions={path}:print_suppressions=0"
    return env


def remove_own_files():
    """This run's files outside /var/run/dpdk (the suppressions file)."""
    try:
        os.unlink(os.path.join(tempfile.gettempdir(), f"dnk_lsan_{PID}.supp"))
    except FileNotFoundError:
        pass


def pattern(n):
    """The body of http_server's /bytes/N."""
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (alphabet * (n // 62 + 1))[:n]


def _alive(pid):
    return os.path.exists(f"/proc/{pid}")


def _kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _ns_pids(ns):
    out = sh("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split()]


def delete_namespace(ns):
    """Ends what still runs in ns (by PID) and deletes it (its links and tables go with it)."""
    _kill_pids(_ns_pids(ns))
    sh("ip", "netns", "del", ns, check=False)


def remove_stale():
    """What a dead run of these tests left: its pid is gone, or it is ours (a reused pid)."""
    stale = lambda pid: pid == PID or not _alive(pid)  # noqa: E731
    for line in sh("ip", "netns", "list").stdout.splitlines():
        m = re.match(r"(dnk[op](\d+))\b", line)
        if m and stale(int(m.group(2))):
            delete_namespace(m.group(1))
    for m in re.finditer(r"\d+: (dnk[ab](\d+))[@:]", sh("ip", "-o", "link").stdout):
        if stale(int(m.group(2))):
            sh("ip", "link", "del", m.group(1), check=False)
    if os.path.isdir(RUNTIME):
        for name in os.listdir(RUNTIME):
            m = re.fullmatch(r"dnk_(\d+)_\d+", name)
            if m and stale(int(m.group(1))):
                shutil.rmtree(os.path.join(RUNTIME, name), ignore_errors=True)
    for name in os.listdir(tempfile.gettempdir()):
        m = re.fullmatch(r"dnk_(?:lsan|memif)_(\d+)(?:_\d+)?\.(?:supp|sock)", name)
        if m and stale(int(m.group(1))):
            try:
                os.unlink(os.path.join(tempfile.gettempdir(), name))
            except OSError:
                pass


def free_third_octet(low, high):
    """A y in [low, high) such that no address on this host is in 198.18.y.0/24."""
    used = set(re.findall(r"inet 198\.18\.(\d+)\.", sh("ip", "-o", "-4", "addr").stdout))
    span = high - low
    for i in range(span):
        y = low + (PID + i) % span
        if str(y) not in used:
            return y
    raise RuntimeError(f"no free 198.18.y.0/24 with y in {low}..{high - 1}")


class KernelPeerLink:
    """A veth pair: `ours_if` in namespace `ours` (no address: the DPDK process owns it), `peer_if`
    in namespace `peer` with `peer_ip`/24, checksum offload off (DPDK's af_xdp and af_packet
    drivers pass the frames on as they are: a partial checksum would reach our stack) and MTU
    1500; IPv6 off on both ends (no router solicitations or MLD in the way)."""

    def __init__(self, third_octet):
        self.ours, self.peer = f"dnko{PID}", f"dnkp{PID}"
        self.ours_if, self.peer_if = f"dnka{PID}", f"dnkb{PID}"
        self.peer_ip, self.our_ip = f"198.18.{third_octet}.1", f"198.18.{third_octet}.2"
        self.prefix = 24

    def create(self):
        sh("ip", "netns", "add", self.ours)
        sh("ip", "netns", "add", self.peer)
        sh("ip", "link", "add", self.ours_if, "type", "veth", "peer", "name", self.peer_if)
        sh("ip", "link", "set", self.ours_if, "netns", self.ours)
        sh("ip", "link", "set", self.peer_if, "netns", self.peer)
        for ns, iface in ((self.ours, self.ours_if), (self.peer, self.peer_if)):
            sh(*in_ns(ns, "sysctl", "-qw", f"net.ipv6.conf.{iface}.disable_ipv6=1"))
            sh(*in_ns(ns, "ip", "link", "set", iface, "mtu", "1500", "up"))
            sh(*in_ns(ns, "ip", "link", "set", "lo", "up"))
        sh(*in_ns(self.peer, "ip", "addr", "add", f"{self.peer_ip}/{self.prefix}", "dev",
                  self.peer_if))
        sh(*in_ns(self.peer, "ethtool", "-K", self.peer_if, "tx", "off"))
        features = sh(*in_ns(self.peer, "ethtool", "-k", self.peer_if)).stdout
        assert re.search(r"^tx-checksumming: off", features, re.M), features

    def destroy(self):
        for ns in (self.ours, self.peer):
            delete_namespace(ns)
        for iface in (self.ours_if, self.peer_if):  # gone with the namespaces; in case not
            if os.path.exists(f"/sys/class/net/{iface}"):
                sh("ip", "link", "del", iface, check=False)

    def leftovers(self):
        namespaces = sh("ip", "netns", "list").stdout
        return [n for n in (self.ours, self.peer) if re.search(rf"^{n}\b", namespaces, re.M)]

    def af_xdp(self, extra=""):
        return (f"net_af_xdp0,iface={self.ours_if},start_queue=0,queue_count=1,busy_budget=0"
                + extra)

    def af_packet(self):
        return f"net_af_packet0,iface={self.ours_if}"

    def peer_run(self, *cmd, timeout=30, check=True, stdin=None):
        """cmd run by Linux in the peer namespace."""
        return sh(*in_ns(self.peer, *cmd), timeout=timeout, check=check, stdin=stdin)

    def peer_client(self, *args, timeout=30):
        """This file's client (keepalive, echo) in the peer namespace; its JSON result."""
        r = subprocess.run(in_ns(self.peer, "/usr/bin/python3", os.path.join(HERE, "dpdkutil.py"),
                                 *args), capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"client {args} failed: {r.stderr}"
        return json.loads(r.stdout.strip().splitlines()[-1])


def new_prefix():
    return f"dnk_{PID}_{next(_names)}"


class DpdkProcess:
    """One of our examples on DPDK in namespace ns (`ip netns exec` execs it: the PID is the
    program's), with its own EAL file prefix; stop() ends it by PID and removes its runtime
    directory."""

    def __init__(self, ns, program, args, prefix=None):
        self.prefix = prefix or new_prefix()
        self.argv = in_ns(ns, program, "--backend", "dpdk", "--file-prefix", self.prefix, *args)
        # Unbuffered bytes: select() then sees every byte not yet read (a text stream's buffer
        # could hold the ready line while select() waits on the empty pipe).
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     bufsize=0, env=sanitizer_env())
        self.lines = []
        self._pending = b""
        self.result = None

    def wait_for(self, text, timeout=15):
        """Reads stdout until a line containing text; False if the process ended or the time
        ran out first."""
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
        """SIGTERM (then SIGKILL); returns (exit status, rest of stdout, stderr) as text.
        Idempotent."""
        if self.result is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                out, err = self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate(timeout=10)
            self.result = (self.proc.returncode, (self._pending + out).decode(errors="replace"),
                           err.decode(errors="replace"))
            shutil.rmtree(os.path.join(RUNTIME, self.prefix), ignore_errors=True)
        return self.result

    def wait(self, timeout):
        """Waits for the process to end by itself; what stop() returns."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.stop()


def run_dpdk(ns, program, args, timeout=30):
    """A DPDK program run to its end (for error paths): (exit status, stdout, stderr)."""
    prefix = new_prefix()
    try:
        r = subprocess.run(in_ns(ns, program, "--backend", "dpdk", "--file-prefix", prefix,
                                 *args), capture_output=True, text=True, timeout=timeout,
                           env=sanitizer_env())
        return r.returncode, r.stdout, r.stderr
    finally:
        shutil.rmtree(os.path.join(RUNTIME, prefix), ignore_errors=True)


def last_json(text):
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("{")]
    assert lines, f"no counters JSON in: {text!r}"
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# Clients, run by Linux in the peer namespace (python3 dpdkutil.py COMMAND ...).

def _read_response(sock, buf):
    """One HTTP/1.1 response with a Content-Length: (status, headers, body, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"connection closed inside a response head: {buf[:200]!r}")
        buf += data
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers["content-length"])
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"connection closed after {len(buf)} of {length} body bytes")
        buf += data
    return status, headers, buf[:length], buf[length:]


def keepalive(addr, port):
    """Several requests on one connection (keep-alive), two of them pipelined, every body
    checked; the server keeps the connection open throughout and closes it after
    `Connection: close`."""
    sock = socket.create_connection((addr, port), timeout=10)
    local = sock.getsockname()
    buf, served = b"", 0

    def get(path, close=False):
        extra = "Connection: close\r\n" if close else ""
        return f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n".encode()

    for path, want in (("/bytes/1", pattern(1)), ("/bytes/1460", pattern(1460)),
                       ("/bytes/100000", pattern(100000))):
        sock.sendall(get(path))
        status, headers, body, buf = _read_response(sock, buf)
        assert status == 200 and body == want, (path, status, len(body))
        assert headers.get("connection", "keep-alive").lower() != "close", headers
        served += 1
    page = None
    sock.sendall(get("/"))
    status, _, page, buf = _read_response(sock, buf)
    assert status == 200 and b"Hello from dpdk-net" in page, (status, page[:200])
    served += 1
    payload = random.Random(7).randbytes(50000)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                 + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    status, _, body, buf = _read_response(sock, buf)
    assert status == 200 and body == payload, (status, len(body))
    served += 1
    sock.sendall(get("/bytes/10") + get("/bytes/20"))  # pipelined: answered in order
    for n in (10, 20):
        status, _, body, buf = _read_response(sock, buf)
        assert status == 200 and body == pattern(n), (n, status, body)
        served += 1
    sock.sendall(get("/bytes/5", close=True))
    status, headers, body, buf = _read_response(sock, buf)
    assert status == 200 and body == pattern(5) and headers.get("connection") == "close", headers
    served += 1
    assert sock.recv(100) == b"" and buf == b"", "the server did not close after Connection: close"
    assert sock.getsockname() == local  # one connection throughout
    sock.close()
    return {"requests": served, "connections": 1, "page_sha256": hashlib.sha256(page).hexdigest()}


def echo(addr, port, nbytes, seed):
    """Streams nbytes of seeded pseudo-random bytes to an echo server while reading the echo,
    half-closes, reads to the server's FIN; returns both SHA-256s and the bytes that came back."""
    sock = socket.create_connection((addr, port), timeout=15)
    sent, errors = hashlib.sha256(), []

    def sender():
        try:
            rng, left = random.Random(seed), nbytes
            while left:
                block = rng.randbytes(min(65536, left))
                sent.update(block)
                sock.sendall(block)
                left -= len(block)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(repr(e))
    start = time.monotonic()
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got, n = hashlib.sha256(), 0
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        got.update(data)
        n += len(data)
    t.join(15)
    sock.close()
    assert not errors, errors
    return {"sent": sent.hexdigest(), "received": got.hexdigest(), "bytes": n,
            "seconds": round(time.monotonic() - start, 3)}


def main(argv):
    if argv[:1] == ["keepalive"] and len(argv) == 3:
        result = keepalive(argv[1], int(argv[2]))
    elif argv[:1] == ["echo"] and len(argv) == 5:
        result = echo(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    else:
        sys.exit("usage: dpdkutil.py keepalive ADDR PORT | echo ADDR PORT NBYTES SEED")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
