"""The examples on several workers (--cores): dpdk_net::multi_runtime over a multi-queue TAP, one
worker per core, flows spread by software RSS (the kernel picks a TAP queue by its own hash; the
receiving worker hashes and hands a frame over to the flow's owner).

  http_server --cores A,B   curl (every body checked) and wrk (non-2xx 0, socket errors 0); /stats
                            shows both workers served requests and that software RSS ran; each
                            worker thread's affinity, read back from /proc and from the program,
                            is its requested core
  tcp_echo / udp_echo       echoes from many kernel connections / sockets, spread over both workers
  sim backend               http_server / http_load --backend sim --cores 2 (a 2-queue NIC)
  --cores 99 (or a bad list) refused by every example: exit 2, one line naming --cores

Hygiene: addresses in 198.18.50.0/24..198.18.97.0/24 (inside 198.18.0.0/15; the other pytests
use 198.18.0, 100-249 and 198.19) that no address on this host uses; interface names dnm<pid><n>;
every process ended by its PID (SIGTERM, then SIGKILL), also on failure; the TAP interface is
checked gone afterwards (deleted if a killed process left it)."""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest

PID = os.getpid() % 100000
_names = iter(range(100))
ALLOWED = sorted(os.sched_getaffinity(0))
# Two distinct cores: the first two allowed ones, pinned; on a one-core machine two floating
# workers (--no-pin: the list only gives their number).
if len(ALLOWED) >= 2:
    CORES, PIN_ARGS = ALLOWED[:2], []
else:
    CORES, PIN_ARGS = [0, 1], ["--no-pin"]
CORES_ARG = ",".join(map(str, CORES))
BAD_CORE = 99 if 99 not in ALLOWED else 1023


def sh(*cmd, check=True, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


def needs_tap():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        # A wrong environment is a failure that names the fix, never a skip.
        pytest.fail("needs root and /dev/net/tun (run as root on a machine with the tun module)")


def free_subnet():
    used = set(re.findall(r"inet 198\.18\.(\d+)\.", sh("ip", "-o", "-4", "addr").stdout))
    start = (PID * 7 + next(_names)) % 48
    for i in range(48):
        x = 50 + (start + i) % 48
        if str(x) not in used:
            return x
    pytest.fail("no free 198.18.x.0/24 subnet in 50..97")


def stop(proc):
    """Ends proc (SIGTERM, then SIGKILL); its remaining stdout and stderr, as text."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    decode = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
    return decode(out), decode(err)


def gone(name):
    deadline = time.monotonic() + 5
    while os.path.exists(f"/sys/class/net/{name}") and time.monotonic() < deadline:
        time.sleep(0.05)
    if os.path.exists(f"/sys/class/net/{name}"):
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        pytest.fail(f"TAP interface {name} left behind (deleted now)")


def pattern(n):
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return bytes(alphabet[i % 62] for i in range(n))


def start(cmd, ready):
    """Starts cmd; returns (proc, the stdout lines up to and including the one with `ready`).
    Reads the pipe's descriptor itself (a buffered readline would hide lines from select)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fd = proc.stdout.fileno()
    text = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = text[: text.rfind(b"\n") + 1].decode().splitlines()  # complete lines
        for i, line in enumerate(lines):
            if ready in line:
                return proc, lines[: i + 1]
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if r else b""
        if not chunk:
            break
        text += chunk
    lines = text.decode().splitlines()
    out, err = stop(proc)
    pytest.fail(f"{cmd[0]} did not start: {lines} {out} {err}")


def tap_args(name, x):
    return ["--backend", "tap", "--iface", name, "--ip", f"198.18.{x}.2/24", "--kernel-ip",
            f"198.18.{x}.1"]


def worker_lines(lines, prog):
    """{worker: (core or None, affinity text)} from 'prog: worker I pinned to core C (affinity A)'
    / 'prog: worker I not pinned (affinity A)'."""
    found = {}
    for line in lines:
        m = re.match(prog + r": worker (\d+) (?:pinned to core (\d+)|not pinned) \(affinity ([^)]*)\)",
                     line)
        if m:
            found[int(m.group(1))] = (int(m.group(2)) if m.group(2) else None, m.group(3))
    return found


def thread_affinities(pid):
    """Cpus_allowed_list of every thread of pid, as read by the kernel."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                m = re.search(r"^Cpus_allowed_list:\s*(\S+)", f.read(), re.M)
        except FileNotFoundError:
            continue
        if m:
            out.append(m.group(1))
    return out


@pytest.fixture
def server(bin_dir):
    needs_tap()
    x = free_subnet()
    name = f"dnm{PID}{next(_names)}"
    proc, lines = start([str(bin_dir / "http_server"), *tap_args(name, x), "--port", "8080",
                         "--cores", CORES_ARG, *PIN_ARGS, "--max-seconds", "60"],
                        "serving http://")
    try:
        yield {"proc": proc, "lines": lines, "url": f"http://198.18.{x}.2:8080"}
    finally:
        stop(proc)
        gone(name)


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          timeout=20, check=True).stdout


def test_http_server_two_workers_curl_wrk_stats(server):
    assert shutil.which("curl"), "curl not installed: run scripts/setup.sh"
    assert shutil.which("wrk"), "wrk not installed: run scripts/setup.sh"
    assert "2 workers, software steering" in server["lines"][-1], server["lines"]
    url = server["url"]
    assert b"Hello from dpdk-net" in curl(url + "/")
    assert curl(url + "/bytes/100000") == pattern(100000)
    payload = os.urandom(200000)
    echoed = subprocess.run(["curl", "-sS", "--max-time", "10", "-X", "POST", "--data-binary",
                             "@-", "-H", "Expect:", url + "/echo"],
                            input=payload, capture_output=True, timeout=20, check=True).stdout
    assert echoed == payload
    # New connections (one curl each: new source ports) spread over the workers by their hash.
    for n in range(1, 17):
        assert curl(f"{url}/bytes/{n * 997}") == pattern(n * 997), n
    out = sh("wrk", "-t2", "-c16", "-d2s", url + "/bytes/1000", timeout=30).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 100, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    stats = json.loads(curl(url + "/stats"))
    workers = stats["workers"]
    assert len(workers) == 2, stats
    assert all(w["requests"] > 0 for w in workers), workers
    assert sum(w["requests"] for w in workers) == stats["requests"] >= requests + 19, stats
    assert stats["steering"] == "software", stats
    assert stats["handed_out"] > 0 or stats["software_hashes"] > 0, stats
    assert sum(w["handed_out"] for w in workers) == stats["handed_out"], stats
    assert stats["ring_full"] == 0 and stats["handoff_no_buffer"] == 0, stats
    out, err = stop(server["proc"])
    assert server["proc"].returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["requests"] >= stats["requests"]
    assert final["connections_open"] == 0, final
    assert final["tcp"]["passive_opens"] == final["connections"], final


def test_worker_threads_pinned_to_their_cores(server):
    reported = worker_lines(server["lines"], "http_server")
    assert sorted(reported) == [0, 1], server["lines"]
    stats = json.loads(curl(server["url"] + "/stats"))
    if PIN_ARGS:  # one allowed core: the workers float (nothing to pin)
        assert all(core is None for core, _ in reported.values()), reported
        return
    kernel_view = thread_affinities(server["proc"].pid)
    for i, core in enumerate(CORES):
        assert reported[i] == (core, str(core)), reported
        assert stats["workers"][i]["core"] == core, stats["workers"]
        assert stats["workers"][i]["affinity"] == str(core), stats["workers"]
        # The kernel's view of the threads: one pinned to each requested core.
        assert kernel_view.count(str(core)) >= 1, kernel_view


def test_one_core_pins_the_one_worker(bin_dir):
    needs_tap()
    x = free_subnet()
    name = f"dnm{PID}{next(_names)}"
    core = ALLOWED[-1]
    proc, lines = start([str(bin_dir / "http_server"), *tap_args(name, x), "--port", "8080",
                         "--cores", str(core), "--max-seconds", "30"], "serving http://")
    try:
        assert worker_lines(lines, "http_server") == {0: (core, str(core))}, lines
        assert f"Cpus_allowed_list:\t{core}\n" in open(f"/proc/{proc.pid}/status").read()
        assert curl(f"http://198.18.{x}.2:8080/bytes/5000") == pattern(5000)
    finally:
        out, err = stop(proc)
        gone(name)
    assert proc.returncode == 0, err
    assert "workers" not in json.loads(out.strip().splitlines()[-1])


def test_tcp_echo_two_workers(bin_dir):
    needs_tap()
    x = free_subnet()
    name = f"dnm{PID}{next(_names)}"
    proc, lines = start([str(bin_dir / "tcp_echo"), *tap_args(name, x), "--port", "7",
                         "--cores", CORES_ARG, *PIN_ARGS, "--seconds", "60"], "echoing TCP port 7")
    try:
        assert "2 workers" in lines[-1] and sorted(worker_lines(lines, "tcp_echo")) == [0, 1]
        for i in range(32):
            data = os.urandom(20000 + i)
            with socket.create_connection((f"198.18.{x}.2", 7), timeout=10) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                got = b""
                while chunk := s.recv(65536):
                    got += chunk
            assert got == data, i
    finally:
        out, err = stop(proc)
        gone(name)
    assert proc.returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["app"]["accepted"] == final["app"]["completed"] == 32, final["app"]
    assert [w["accepted"] > 0 for w in final["workers"]] == [True, True], final["workers"]
    assert sum(w["accepted"] for w in final["workers"]) == 32
    assert final["tcp"]["passive_opens"] == 32 and final["tcp_connections"] == 0, final["tcp"]


def test_udp_echo_two_workers(bin_dir):
    needs_tap()
    x = free_subnet()
    name = f"dnm{PID}{next(_names)}"
    ours, kernel = f"198.18.{x}.2", f"198.18.{x}.1"
    proc, lines = start([str(bin_dir / "udp_echo"), *tap_args(name, x), "--port", "7", "--cores",
                         CORES_ARG, *PIN_ARGS, "--seconds", "60"], "echoing UDP port 7")
    try:
        assert "2 workers" in lines[-1]
        for i in range(32):  # 32 flows (source ports): both workers get some
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(3)
                s.bind((kernel, 0))
                data = os.urandom(100 + i)
                s.sendto(data, (ours, 7))
                assert s.recvfrom(2048)[0] == data, i
        ping = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", ours],
                              capture_output=True, text=True, timeout=30)
        assert ping.returncode == 0, ping.stdout
    finally:
        out, err = stop(proc)
        gone(name)
    assert proc.returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["udp_delivered"] == final["udp_sent"] == 32, final
    assert final["icmp_echo_replies"] == 3, final
    assert [w["udp_delivered"] > 0 for w in final["workers"]] == [True, True], final["workers"]


def test_sim_backend_two_workers(bin_dir):
    r = sh(str(bin_dir / "http_server"), "--backend", "sim", "--cores", "2", "--max-seconds",
           "0.05", timeout=60)
    assert "2 server workers): 8 checks, 0 failed" in r.stdout, r.stdout
    final = json.loads(r.stdout.strip().splitlines()[-1])
    assert final["steering"] == "hardware" and len(final["workers"]) == 2, final
    assert all(w["requests"] > 0 for w in final["workers"]), final["workers"]
    r = sh(str(bin_dir / "http_load"), "--backend", "sim", "--cores", "0,1", "-c", "8", "-d",
           "0.05", "--json", timeout=60)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["requests"] > 0 and res["errors"] == 0, res


@pytest.mark.parametrize("cores", [str(BAD_CORE), "0,x", "3-1", "0,0", ""])
def test_bad_cores_exit_2(bin_dir, cores):
    base = ["--iface", "dnmbad0", "--ip", "198.18.50.2/24", "--port", "7"]
    for prog in ("http_server", "tcp_echo", "udp_echo"):
        r = subprocess.run([str(bin_dir / prog), "--backend", "tap", *base, "--cores", cores],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (prog, cores, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "--cores" in lines[0], (prog, r.stderr)
        if cores == str(BAD_CORE):
            assert "allowed" in lines[0] and "taskset" in lines[0], lines[0]
        assert not os.path.exists("/sys/class/net/dnmbad0")
    # Several workers where the program runs one: refused, naming what does.
    for args in (["http_load", "--backend", "tap", "--connect", "198.18.50.1:80"],
                 ["http_server", "--backend", "kernel"],
                 ["tcp_echo", "--backend", "tap", *base[:4], "--connect", "198.18.50.1:7"]):
        r = subprocess.run([str(bin_dir / args[0]), *args[1:], "--cores", CORES_ARG, *PIN_ARGS],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--cores" in r.stderr, (args, r.stderr)
