"""The examples' dpdk backend (--backend dpdk): two of our processes, each our stack over a DPDK
memif port (net_memif, --no-huge), talk to each other through a memif socket.

  http_server <-> http_load   one worker per side, and two (--cores: two queues each; the server's
                              final counters show both workers served requests); /stats is
                              fetched over the link and shows the port's and DPDK's counters
  tcp_echo                    a client streams seeded bytes over 4 connections, every byte checked
                              on its way back (one and two workers per side)
  udp_echo                    a client sends numbered 3000-byte datagrams (IPv4 fragments on a
                              1500-byte MTU), every echo checked byte for byte
  errors                      an unknown --vdev driver (exit 1, one line naming --vdev), a port
                              that does not exist (exit 1), no port named (exit 2, naming --vdev
                              and --dpdk-port), dpdk options without --backend dpdk (exit 2), not
                              root (exit 1, "needs root")

Runs where the build has the DPDK backend (the programs say when they have not: then the module
is skipped; everywhere DPDK is installed it runs). Needs root (the EAL's runtime files). Hygiene:
memif sockets /tmp/dnmif_<pid>_<n>.sock and EAL file prefixes dnmif<pid>_<n>, both checked gone
afterwards (the runtime directory /var/run/dpdk/<prefix> of a prefix we name is removed here; a
generated one the programs remove themselves, checked too); every process ended by its PID. The
addresses are memif-internal (no kernel interface): 198.18.40.0/24."""
import json
import os
import pathlib
import select
import shutil
import signal
import subprocess
import time

import pytest

PID = os.getpid() % 100000
_names = iter(range(1000))
ALLOWED = sorted(os.sched_getaffinity(0))
if len(ALLOWED) >= 2:
    CORES, PIN_ARGS = ALLOWED[:2], []
else:
    CORES, PIN_ARGS = [0, 1], ["--no-pin"]
CORES_ARG = ",".join(map(str, CORES))
SERVER_IP, CLIENT_IP = "198.18.40.1", "198.18.40.2"
RUNTIME = pathlib.Path("/var/run/dpdk")


@pytest.fixture(scope="module", autouse=True)
def dpdk_build(bin_dir):
    r = subprocess.run([str(bin_dir / "http_server"), "--backend", "dpdk", "--vdev", "net_x0"],
                       capture_output=True, text=True, timeout=30)
    if "this build has no DPDK backend" in r.stderr:
        pytest.skip("this build has no DPDK backend (libdpdk-dev was not found at configure)")
    if os.geteuid() != 0:
        # A wrong environment is a failure that names the fix, never a skip.
        pytest.fail("the DPDK tests need root (the EAL's runtime files): run them as root")


class link:
    """A memif socket path and two EAL file prefixes (server, client), removed afterwards."""

    def __init__(self):
        n = next(_names)
        self.sock = f"/tmp/dnmif_{PID}_{n}.sock"
        self.prefixes = [f"dnmif{PID}_{n}s", f"dnmif{PID}_{n}c"]

    def args(self, role, ip):
        prefix = self.prefixes[0 if role == "server" else 1]
        mac = "02:00:00:00:40:01" if role == "server" else "02:00:00:00:40:02"
        return ["--backend", "dpdk", "--no-huge", "--file-prefix", prefix, "--vdev",
                f"net_memif0,role={role},socket={self.sock},socket-abstract=no,mac={mac}",
                "--ip", f"{ip}/24"]

    def cleanup(self):
        """Removes what is left; fails if the memif socket was left behind."""
        for p in self.prefixes:
            shutil.rmtree(RUNTIME / p, ignore_errors=True)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
            pytest.fail(f"memif socket {self.sock} left behind (removed now)")


def stop(proc):
    """Ends proc by its PID (SIGTERM, then SIGKILL); its remaining stdout and stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    return out.decode(errors="replace"), err.decode(errors="replace")


def start(cmd, ready):
    """Starts cmd; returns (proc, stdout lines up to and including the one containing ready)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fd = proc.stdout.fileno()
    text = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        lines = text[: text.rfind(b"\n") + 1].decode().splitlines()
        for i, line in enumerate(lines):
            if ready in line:
                return proc, lines[: i + 1]
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if r else b""
        if not chunk:
            break
        text += chunk
    out, err = stop(proc)
    pytest.fail(f"{cmd[0]} did not start: {text.decode()} {out} {err}")


def client(cmd, timeout=20):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def run_pair(bin_dir, server_prog, server_args, client_prog, client_args, ready):
    """Server up, client run to its end, server stopped: (client rc, out, err), server out."""
    ln = link()
    try:
        proc, lines = start([str(bin_dir / server_prog), *ln.args("server", SERVER_IP),
                             *server_args, "--max-seconds" if server_prog == "http_server"
                             else "--seconds", "30"], ready)
        try:
            result = client([str(bin_dir / client_prog), *ln.args("client", CLIENT_IP),
                             *client_args])
        finally:
            out, err = stop(proc)
        assert proc.returncode == 0, err
        return result, lines, out
    finally:
        ln.cleanup()


@pytest.mark.parametrize("workers", [1, 2])
def test_http_server_and_load_over_memif(bin_dir, workers):
    cores = ["--cores", CORES_ARG, *PIN_ARGS] if workers == 2 else []
    ln = link()
    try:
        proc, lines = start([str(bin_dir / "http_server"), *ln.args("server", SERVER_IP),
                             "--port", "8080", "--max-seconds", "30", *cores],
                            "serving http://")
        try:
            target = ["--connect", f"{SERVER_IP}:8080", *cores]
            rc, out, err = client([str(bin_dir / "http_load"), *ln.args("client", CLIENT_IP),
                                   *target, "-c", "8", "-d", "2", "--json"])
            assert rc == 0, out + err
            load = last_json(out)
            assert load["backend"] == "dpdk" and load["requests"] > 0, load
            assert load["errors"] == 0 and load["unfinished"] == 0, load
            # /stats over the link (its counters are read on a worker, from the device).
            rc, out, err = client([str(bin_dir / "http_load"), *ln.args("client", CLIENT_IP),
                                   *target, "-c", "1", "-d", "0.5", "--path", "/stats",
                                   "--json"])
            stats = last_json(out)
            assert rc == 0 and stats["requests"] > 0 and stats["errors"] == 0, out + err
        finally:
            sout, serr = stop(proc)
        assert proc.returncode == 0, serr
        queues = "1 queue" if workers == 1 else "2 queues"
        assert any(f"dpdk port net_memif0 (driver net_memif, {queues}, mbufs " in line
                   for line in lines), lines
        final = last_json(sout)
        assert final["requests"] == load["requests"] + stats["requests"], final
        assert final["dpdk"]["driver"] == "net_memif" and final["dpdk"]["alloc_failures"] == 0
        assert final["tcp"]["passive_opens"] == 9 and final["tcp"]["resets_sent"] == 0, final
        assert "port" in final and "xstats" in final, final
        if workers == 2:
            assert "2 workers" in lines[-1], lines
            assert [w["requests"] > 0 for w in final["workers"]] == [True, True], final
    finally:
        ln.cleanup()


@pytest.mark.parametrize("workers", [1, 2])
def test_tcp_echo_over_memif(bin_dir, workers):
    cores = ["--cores", CORES_ARG, *PIN_ARGS] if workers == 2 else []
    (rc, out, err), _, sout = run_pair(
        bin_dir, "tcp_echo", ["--port", "7", *cores], "tcp_echo",
        ["--connect", f"{SERVER_IP}:7", "--bytes", "1M", "--connections", "4", *cores],
        "echoing TCP port 7")
    assert rc == 0, out + err
    assert "4 connection(s) x 1048576 bytes echoed intact" in err, err
    c = last_json(out)
    assert c["app"]["streams_intact"] == 4 and c["app"]["bytes_verified"] == 4 << 20, c["app"]
    s = last_json(sout)
    assert s["app"]["bytes_echoed"] == 4 << 20 and s["app"]["completed"] == 4, s["app"]
    if workers == 2:
        assert [w["bytes_verified"] > 0 for w in c["workers"]] == [True, True], c["workers"]
        assert sum(w["accepted"] for w in s["workers"]) == 4, s["workers"]


def test_udp_echo_over_memif(bin_dir):
    (rc, out, err), lines, sout = run_pair(
        bin_dir, "udp_echo", ["--port", "7"], "udp_echo",
        ["--connect", f"{SERVER_IP}:7", "--count", "100", "--size", "3000"],
        "echoing UDP port 7")
    assert rc == 0, out + err
    assert "100 of 100 datagrams of 3000 bytes echoed intact" in err, err
    c = last_json(out)
    assert c["client"]["echoed"] == 100 and c["client"]["corrupt"] == 0, c["client"]
    assert c["reassembled"] >= 100 and c["fragments_sent"] >= 300, c  # 3 fragments each way
    s = last_json(sout)
    assert s["udp_delivered"] == s["udp_sent"] == c["client"]["sent"], s


def error_lines(stderr, prog):
    return [line for line in stderr.splitlines() if line.startswith(prog + ":")]


def test_unknown_driver_and_missing_port_exit_1(bin_dir):
    # The EAL refuses the device: one line naming --vdev; the runtime directory of the
    # generated prefix is removed.
    proc = subprocess.Popen([str(bin_dir / "http_server"), "--backend", "dpdk", "--no-huge",
                             "--vdev", "net_bogus0", "--max-seconds", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, out + err
    lines = error_lines(err, "http_server")
    assert len(lines) == 1 and "--vdev" in lines[0] and "driver" in lines[0], err
    assert not (RUNTIME / f"dpdk_net_http_server_{proc.pid}").exists()
    # The EAL starts, the port does not exist: one line naming it and the fix.
    ln = link()
    try:
        for prog in ("http_server", "tcp_echo", "udp_echo"):
            args = [*ln.args("server", SERVER_IP), "--dpdk-port", "net_memif9", "--port", "7"]
            rc, out, err = client([str(bin_dir / prog), *args])
            assert rc == 1, (prog, out, err)
            lines = error_lines(err, prog)
            assert len(lines) == 1 and "no DPDK port named 'net_memif9'" in lines[0], err
            shutil.rmtree(RUNTIME / ln.prefixes[0], ignore_errors=True)
    finally:
        ln.cleanup()


def test_bad_dpdk_arguments_exit_2(bin_dir):
    for prog, extra in (("http_server", []), ("http_load", ["--connect", "198.18.40.1:80"]),
                        ("tcp_echo", ["--ip", "198.18.40.2/24", "--port", "7"]),
                        ("udp_echo", ["--ip", "198.18.40.2/24", "--port", "7"])):
        rc, out, err = client([str(bin_dir / prog), "--backend", "dpdk", *extra])
        assert rc == 2, (prog, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "--vdev" in lines[0] and "--dpdk-port" in lines[0], (prog, err)
        # dpdk options belong to --backend dpdk
        backend = ["--backend", "tap", "--iface", "dnmifbad0"] if prog != "http_load" else \
            ["--backend", "kernel"]
        rc, out, err = client([str(bin_dir / prog), *backend, *extra, "--vdev", "net_memif0"])
        assert rc == 2 and "--backend dpdk" in err, (prog, out, err)
        assert not os.path.exists("/sys/class/net/dnmifbad0")
    rc, out, err = client([str(bin_dir / "http_server"), "--backend", "dpdk", "--vdev",
                           "net_memif0", "--kernel-ip", "198.18.40.9"])
    assert rc == 2 and "--kernel-ip" in err, err


def test_not_root_names_the_fix(bin_dir):
    ln = link()
    try:
        rc, out, err = client(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               str(bin_dir / "http_server"), *ln.args("server", SERVER_IP),
                               "--max-seconds", "2"])
        assert rc == 1, out + err
        lines = error_lines(err, "http_server")
        assert len(lines) == 1 and "needs root" in lines[0], err
        assert not (RUNTIME / ln.prefixes[0]).exists()
    finally:
        ln.cleanup()
