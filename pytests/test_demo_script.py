"""scripts/demo.sh's own logic, with stub programs in place of http_server and http_load (the real
run is the test command's demo phase, on the release build): the net_af_xdp -> net_af_packet
fallback says why; the table's ratios and goal verdict; a load run that reports errors, a server
that never starts and Ctrl-C each fail the demo; and every time, what it created (network
namespaces, the veth pair, its processes, /var/run/dpdk/<prefix> directories) is gone afterwards.

The stub http_server serves real HTTP from the Linux stack inside the demo's namespace (it takes
the veth's address itself) so that the demo's curl step runs for real; the stub http_load prints
the JSON the test chose. Each stub records its PID and its --file-prefix runtime directory."""
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

STUB_SERVER = r'''#!/usr/bin/python3
# A stand-in for http_server: --vdev net_af_* serves HTTP on --ip inside the caller's namespace;
# other backends print the serving line and wait for SIGTERM. DEMO_STUB_FAIL lists the drivers
# (af_xdp, af_packet, memif, kernel) that fail to start; DEMO_STUB_HANG those that never serve.
import http.server, json, os, signal, subprocess, sys, time
args = sys.argv[1:]
def opt(name, default=""):
    return args[args.index(name) + 1] if name in args else default
vdev, backend, prefix = opt("--vdev"), opt("--backend"), opt("--file-prefix")
kind = "kernel" if backend == "kernel" else vdev.split(",")[0][4:-1]  # af_xdp, af_packet, memif
with open(os.environ["DEMO_STUB_LOG"], "a") as f:
    f.write(json.dumps({"pid": os.getpid(), "prog": "http_server", "kind": kind, "prefix": prefix}) + "\n")
if prefix:
    os.makedirs(f"/var/run/dpdk/{prefix}", exist_ok=True)  # as the EAL would
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if kind in os.environ.get("DEMO_STUB_FAIL", "").split(","):
    print("EAL: Detected CPU lcores: 2")
    print(f"http_server: stub: {kind} refused to start", flush=True)
    sys.exit(1)
if kind in os.environ.get("DEMO_STUB_HANG", "").split(","):
    while True:
        time.sleep(1)
if kind.startswith("af_"):
    iface = dict(kv.split("=", 1) for kv in vdev.split(",")[1:] if "=" in kv)["iface"]
    subprocess.run(["ip", "addr", "add", opt("--ip"), "dev", iface], check=True)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            stats = {"requests": 1, "port": {"rx_packets": 5, "tx_packets": 4},
                     "dpdk": {"driver": "net_" + kind}, "tcp": {"retransmits": 0}}
            body = (json.dumps(stats) if self.path == "/stats"
                    else "<html><body><h1>Hello from the stub</h1></body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer((opt("--ip").split("/")[0], int(opt("--port"))), H)
    print(f"http_server: serving http://{opt('--ip').split('/')[0]}:{opt('--port')}/ (stub)", flush=True)
    srv.serve_forever()
print("http_server: serving http://stub/ (stub)", flush=True)
while True:
    time.sleep(1)
'''

STUB_LOAD = r'''#!/usr/bin/python3
# A stand-in for http_load: prints DEMO_STUB_OURS or DEMO_STUB_KERNEL (rps,p50,p99,errors).
import json, os, sys
args = sys.argv[1:]
backend = args[args.index("--backend") + 1]
prefix = args[args.index("--file-prefix") + 1] if "--file-prefix" in args else ""
with open(os.environ["DEMO_STUB_LOG"], "a") as f:
    f.write(json.dumps({"pid": os.getpid(), "prog": "http_load", "kind": backend, "prefix": prefix}) + "\n")
if prefix:
    os.makedirs(f"/var/run/dpdk/{prefix}", exist_ok=True)
rps, p50, p99, errors = os.environ["DEMO_STUB_OURS" if backend == "dpdk" else "DEMO_STUB_KERNEL"].split(",")
print(json.dumps({"backend": backend, "connections": int(args[args.index("-c") + 1]),
                  "requests": int(float(rps)), "rps": float(rps), "p50_us": float(p50),
                  "p99_us": float(p99), "errors": int(errors), "unfinished": 0}))
'''


def needs_root():
    if os.geteuid() != 0:
        # A wrong environment is a failure that names the fix, never a skip.
        pytest.fail("needs root (network namespaces, veth pairs): run as root")


@pytest.fixture
def stubs(tmp_path):
    needs_root()
    for tool in ("ip", "ethtool", "curl"):
        assert shutil.which(tool), f"{tool} missing: run scripts/setup.sh"
    bin_dir = tmp_path / "build" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("http_server", STUB_SERVER), ("http_load", STUB_LOAD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    setup = tmp_path / "setup_ok.sh"
    setup.write_text("#!/bin/sh\nexit 0\n")
    setup.chmod(0o755)
    log = tmp_path / "stubs.jsonl"
    env = dict(os.environ, DPDK_NET_SETUP_SCRIPT=str(setup), DEMO_STUB_LOG=str(log),
               DEMO_STUB_OURS="90000,800,2000,0", DEMO_STUB_KERNEL="20000,4000,10000,0")
    return tmp_path / "build", env, log


def start_demo(build, env, **extra):
    env = dict(env, **extra)
    return subprocess.Popen([str(ROOT / "scripts/demo.sh"), "--build-dir", str(build)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    report = re.search(r"report: (\S+)/", out)
    return out, err, pathlib.Path(report.group(1)) if report else None


def assert_all_gone(p, log, report):
    """Nothing the demo (PID p.pid) created is left: namespaces, veth, processes, EAL dirs."""
    tag = f"dnd{p.pid}"
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag not in netns, netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert tag not in links, links
    stubs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for s in stubs:
        assert not pathlib.Path(f"/proc/{s['pid']}").exists() or \
            "zombie" in pathlib.Path(f"/proc/{s['pid']}/status").read_text().lower(), s
        if s["prefix"]:
            assert s["prefix"].startswith(tag), s
            assert not pathlib.Path(f"/var/run/dpdk/{s['prefix']}").exists(), s
    assert not list(pathlib.Path("/tmp").glob(f"{tag}-run.*"))
    if report is not None:
        shutil.rmtree(report, ignore_errors=True)  # the test's own (a real run keeps it)
    return stubs


def test_fallback_table_and_cleanup(stubs):
    build, env, log = stubs
    p = start_demo(build, env, DEMO_STUB_FAIL="af_xdp")
    out, err, report = finish(p)
    try:
        assert p.returncode == 0, out + err
        assert "net_af_xdp did not start: http_server: stub: af_xdp refused to start; " \
               "falling back to net_af_packet" in out, out
        assert "DPDK driver: net_af_packet" in out
        assert "HTTP/1.0 200 OK" in out and "<h1>Hello from the stub</h1>" in out
        assert "/stats: driver net_af_packet" in out
        # ABAB, and the medians' ratios: 90000/20000 = 4.5x, p50 0.2x, p99 0.2x.
        assert re.findall(r"run (\d): (ours|kernel)", out) == [
            ("1", "ours"), ("1", "kernel"), ("2", "ours"), ("2", "kernel")]
        assert re.search(r"ours / kernel\s+4\.50x\s+0\.20x\s+0\.20x", out), out
        assert "goal: >= 3x requests/s, p99 <= 0.3x at 200 connections: met" in out
        rep = json.loads((report / "report.json").read_text())
        assert rep["goal"]["met"] is True and rep["veth_driver"] == "net_af_packet"
        assert rep["median"]["ours"]["rps"] == 90000 and rep["median"]["kernel"]["rps"] == 20000
        assert (report / "2-ours-2-http_server.log").exists()
    finally:
        stubs_seen = assert_all_gone(p, log, report)
    kinds = [(s["prog"], s["kind"]) for s in stubs_seen]
    assert kinds[:2] == [("http_server", "af_xdp"), ("http_server", "af_packet")]
    # memif: server on core 0, load on core 1, each with its own EAL prefix.
    assert len({s["prefix"] for s in stubs_seen if s["prefix"]}) == 6


def test_goal_not_met_says_by_how_much(stubs):
    build, env, log = stubs
    p = start_demo(build, env, DEMO_STUB_OURS="30000,3000,12000,0",
                   DEMO_STUB_KERNEL="20000,4000,10000,0")
    out, err, report = finish(p)
    assert_all_gone(p, log, report)
    assert p.returncode == 0, out + err
    assert "DPDK driver: net_af_xdp" in out  # no fallback when af_xdp starts
    assert "at 200 connections: not met (requests/s 1.50x, 50% short of 3x; p99 1.20x, " \
           "4.0 times the 0.3x wanted)" in out, out


def test_load_errors_fail_the_demo(stubs):
    build, env, log = stubs
    p = start_demo(build, env, DEMO_STUB_KERNEL="20000,4000,10000,3")
    out, err, report = finish(p)
    assert_all_gone(p, log, report)
    assert p.returncode != 0
    assert "http_load (kernel, run 1) reported errors" in err, err
    assert "== 3." not in out


def test_server_that_does_not_start_fails_the_demo(stubs):
    build, env, log = stubs
    p = start_demo(build, env, DEMO_STUB_FAIL="af_xdp,af_packet")
    out, err, report = finish(p)
    assert_all_gone(p, log, report)
    assert p.returncode != 0
    assert "falling back to net_af_packet" in out
    assert "http_server on net_af_packet did not start either" in err, err
    assert "stub: af_packet refused to start" in err


def test_ctrl_c_removes_everything(stubs):
    build, env, log = stubs
    # The memif server never serves: the demo waits for it (up to 10 s), then Ctrl-C.
    p = start_demo(build, env, DEMO_STUB_HANG="memif")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and '"memif"' in log.read_text():
            break
        time.sleep(0.05)
    else:
        p.kill()
        pytest.fail(f"the demo never started the memif server: {p.communicate()}")
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err, report = finish(p, timeout=20)
    took = time.monotonic() - t0
    assert p.returncode == 130, (p.returncode, out, err)
    assert "interrupted" in err
    assert took < 8, took
    stubs_seen = assert_all_gone(p, log, report)
    assert any(s["kind"] == "memif" and s["prefix"] for s in stubs_seen)


def test_help_and_bad_argument():
    r = subprocess.run([str(ROOT / "scripts/demo.sh"), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and "--quick" in r.stdout and "net_af_xdp" in r.stdout
    r = subprocess.run([str(ROOT / "scripts/demo.sh"), "--bogus"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "unknown argument '--bogus'" in r.stderr
