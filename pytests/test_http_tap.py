"""The example HTTP server (Boost.Beast over our stack, examples/http_server) on a TAP device with
Linux as the client: curl GETs / and /bytes/100000 (length and pattern checked) and POSTs /echo;
wrk runs 2 s of keep-alive load; http_load --backend kernel (the same client code on kernel
sockets) measures it; the bad-argument path exits 2. (A TLS echo with openssl s_client is not
covered here: the example server has no TLS.)

Hygiene: addresses in 198.18.200.0/24..198.18.249.0/24 (inside 198.18.0.0/15) that no address on
this host uses; unique interface names from the pid; every process ended by its PID (SIGTERM,
then SIGKILL), also on failure; the TAP interface is checked gone afterwards."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

PID = os.getpid() % 100000
_names = iter(range(100))


def sh(*cmd, check=True, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


def needs_tap():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        # A wrong environment is a failure that names the fix, never a skip.
        pytest.fail("needs root and /dev/net/tun (run as root on a machine with the tun module)")


def free_subnet():
    used = set(re.findall(r"inet 198\.18\.(\d+)\.", sh("ip", "-o", "-4", "addr").stdout))
    start = 200 + (PID * 7 + next(_names)) % 50
    for i in range(50):
        x = 200 + (start - 200 + i) % 50
        if str(x) not in used:
            return x
    pytest.fail("no free 198.18.x.0/24 subnet")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    return out, err


def pattern(n):
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return bytes(alphabet[i % 62] for i in range(n))


@pytest.fixture
def server(bin_dir):
    needs_tap()
    x = free_subnet()
    name = f"dnh{PID}{next(_names)}"
    ours, kernel = f"198.18.{x}.2", f"198.18.{x}.1"
    proc = subprocess.Popen(
        [str(bin_dir / "http_server"), "--backend", "tap", "--iface", name, "--ip", f"{ours}/24",
         "--kernel-ip", kernel, "--port", "8080", "--max-seconds", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline() if ready else ""
        if "serving http://" not in line:
            out, err = stop(proc)
            pytest.fail(f"http_server did not start: {line!r} {out} {err}")
        yield {"proc": proc, "url": f"http://{ours}:8080", "ours": ours, "kernel": kernel}
    finally:
        stop(proc)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/sys/class/net/{name}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/sys/class/net/{name}"), "TAP interface left behind"


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          timeout=20, check=True).stdout


def test_curl_routes_and_wrk(server):
    if not shutil.which("curl"):
        pytest.fail("curl not installed: run scripts/setup.sh")
    url = server["url"]
    page = curl(url + "/")
    assert b"Hello from dpdk-net" in page
    body = curl(url + "/bytes/100000")
    assert len(body) == 100000
    assert body == pattern(100000)
    payload = os.urandom(200000)
    echoed = subprocess.run(["curl", "-sS", "--max-time", "10", "-X", "POST", "--data-binary",
                             "@-", "-H", "Content-Type: application/octet-stream", "-H", "Expect:",
                             url + "/echo"],
                            input=payload, capture_output=True, timeout=20, check=True).stdout
    assert echoed == payload
    code = curl("-o", "/dev/null", "-w", "%{http_code}", url + "/bytes/67108865")
    assert code == b"400"
    # Keep-alive: several URLs on one curl invocation reuse the connection.
    both = curl(url + "/bytes/10", url + "/bytes/20")
    assert both == pattern(10) + pattern(20)
    assert shutil.which("wrk"), "wrk not installed: run scripts/setup.sh"
    out = sh("wrk", "-t1", "-c8", "-d2s", url + "/", timeout=30).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 100, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    stats = json.loads(curl(url + "/stats"))
    assert stats["requests"] >= 5
    assert stats["tcp"]["passive_opens"] >= 3
    out, err = stop(server["proc"])
    assert server["proc"].returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["requests"] >= stats["requests"]
    assert final["connections_open"] == 0


def test_http_load_kernel_client(server, bin_dir):
    r = sh(str(bin_dir / "http_load"), "--backend", "kernel", "--connect",
           f"{server['ours']}:8080", "-c", "4", "-d", "1", "--path", "/bytes/1000", "--json",
           timeout=30)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["requests"] > 100, res
    assert res["errors"] == 0, res
    assert 0 < res["p50_us"] <= res["p99_us"] <= res["p999_us"] <= res["max_us"], res
    # open loop at a fixed rate: about rate x seconds requests
    r = sh(str(bin_dir / "http_load"), "--backend", "kernel", "--connect",
           f"{server['ours']}:8080", "-c", "4", "-d", "1", "--rate", "400", "--json", timeout=30)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert 300 <= res["requests"] <= 420, res
    assert res["errors"] == 0, res


@pytest.mark.parametrize("args", [["--backend", "dpdk"], ["--port", "0"], ["--ip", "1.2.3.4"],
                                  ["--nonsense"], ["--iface"]])
def test_bad_arguments_exit_2(bin_dir, args):
    for prog in ("http_server", "http_load"):
        r = subprocess.run([str(bin_dir / prog), *args], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (prog, args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_sim_backend(bin_dir):
    r = sh(str(bin_dir / "http_server"), "--backend", "sim", "--max-seconds", "0.05",
           timeout=60)
    assert "0 failed" in r.stdout, r.stdout
    r = sh(str(bin_dir / "http_load"), "--backend", "sim", "-c", "2", "-d", "0.05", "--json",
           timeout=60)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["requests"] > 0 and res["errors"] == 0, res


def test_http_load_on_our_stack_against_kernel_server(bin_dir):
    """The other direction: http_load's client on our stack (TAP) against the same server code on
    kernel sockets (http_server --backend kernel), listening on the TAP's kernel side."""
    needs_tap()
    x = free_subnet()
    name = f"dnh{PID}{next(_names)}"
    probe = subprocess.run(["/usr/bin/python3", "-c",
                            "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); "
                            "print(s.getsockname()[1])"], capture_output=True, text=True,
                           check=True)
    port = int(probe.stdout)
    server = subprocess.Popen([str(bin_dir / "http_server"), "--backend", "kernel", "--port",
                               str(port), "--max-seconds", "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 10)
        assert ready and "serving" in server.stdout.readline()
        r = sh(str(bin_dir / "http_load"), "--backend", "tap", "--iface", name, "--ip",
               f"198.18.{x}.2/24", "--kernel-ip", f"198.18.{x}.1", "--connect",
               f"198.18.{x}.1:{port}", "-c", "4", "-d", "1", "--json", timeout=30)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert res["backend"] == "tap" and res["requests"] > 100 and res["errors"] == 0, res
    finally:
        stop(server)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/sys/class/net/{name}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/sys/class/net/{name}"), "TAP interface left behind"
