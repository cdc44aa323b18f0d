"""Our stack on DPDK against the Linux kernel: the examples' `--backend dpdk` on one end of a veth
pair (namespace OURS, through DPDK's net_af_xdp or net_af_packet driver), Linux's TCP/IP on the
other end (namespace PEER, 198.18.y.1/24 with y in 20..39, checksum offload off).

  af_xdp     http_server (one queue, busy_budget=0): curl gets the same bytes the identical server
             code serves on kernel sockets (http_server --backend kernel in PEER), wrk's 2 s of
             keep-alive load has no socket error and no non-2xx answer, a Python client's
             keep-alive and pipelined requests on one connection are all answered in order
  af_packet  the same server: curl, the Python client, ping
  ping       ICMP echo over af_xdp, one frame and fragmented (3000 bytes: reassembled, answered in
             fragments). Over af_packet a fragmented datagram never arrives whole: DPDK 22.11's
             driver asks the kernel to reassemble fragments (PACKET_FANOUT_FLAG_DEFRAG) into
             2048-byte ring frames, so a datagram over ~1980 bytes is cut; our stack drops it,
             counted (ip_length_exceeds_frame)
  loss       tcp_echo (af_packet) with fault_device dropping 1 % of frames both ways on our side
             and nftables dropping 2 % of the TCP segments PEER receives: 2 MB from a Linux
             socket come back byte-exact; both droppers dropped, we retransmitted
  errors     more EAL memory than the hugepages hold, an af_xdp queue or a memif socket already
             in use, an interface that does not exist: exit 1 with one line naming the cause

Hygiene (dpdkutil.py): names from the pid; a dead run's namespaces, processes and
/var/run/dpdk/<prefix> removed first; every process ended by its PID, the namespaces (with the
veth pair and the nftables table) and runtime directories removed afterwards, also on failure;
every test under an alarm. The ci build is ASan: LeakSanitizer stays on, with libxdp's leak under
DPDK's af_xdp driver suppressed (dpdkutil.LSAN_SUPPRESSIONS)."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

import dpdkutil
from dpdkutil import DpdkProcess, KernelPeerLink, in_ns, last_json, pattern, run_dpdk

TEST_SECONDS = 30  # the alarm (each test takes well under 20 s)
PORT = 8080
MEMORY = ["--no-huge", "--dpdk-memory", "256"]  # leaves the 512 MB of hugepages to others


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


@pytest.fixture(scope="module")
def link():
    if os.geteuid() != 0:
        pytest.fail("needs root (network namespaces, veth, DPDK): run as root")
    for tool in ("curl", "wrk", "nft", "ethtool", "ping"):
        assert shutil.which(tool), f"{tool} not installed: run scripts/setup.sh"
    dpdkutil.remove_stale()
    peer_link = KernelPeerLink(dpdkutil.free_third_octet(20, 40))
    try:
        peer_link.create()
        yield peer_link
    finally:
        peer_link.destroy()
        dpdkutil.remove_own_files()
        assert not peer_link.leftovers(), "namespaces left behind"


@pytest.fixture
def processes(link, bin_dir):
    """start(program, args, ready): a DPDK process in OURS, started and ready; all ended after."""
    started = []

    def start(program, args, ready):
        p = DpdkProcess(link.ours, bin_dir / program, args)
        started.append(p)
        if not p.wait_for(ready):
            rc, out, err = p.stop()
            pytest.fail(f"{program} did not start (exit {rc}): {p.lines} {out} {err[-3000:]}")
        return p
    try:
        yield start
    finally:
        for p in started:
            p.stop()
        for p in started:
            assert not os.path.exists(os.path.join(dpdkutil.RUNTIME, p.prefix))


def http_server(start, link, vdev):
    p = start("http_server", ["--vdev", vdev, *MEMORY, "--ip", f"{link.our_ip}/24", "--port",
                              str(PORT), "--max-seconds", "60"], "serving http://")
    assert f"serving http://{link.our_ip}:{PORT}/" in p.lines[-1], p.lines
    return p


def curl(link, *args):
    return link.peer_run("curl", "-sS", "--max-time", "10", *args, timeout=20).stdout


def curl_bytes(link, url):
    r = subprocess.run(in_ns(link.peer, "curl", "-sS", "--max-time", "10", url),
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def final_counters(p, driver):
    rc, out, err = p.stop()
    assert rc == 0, (rc, err[-3000:])
    k = last_json(out)
    assert k["dpdk"]["driver"] == driver, k["dpdk"]
    assert k["connections_open"] == 0 and k["bad_requests"] == 0, k
    assert k["port"]["rx_packets"] > 0 and k["port"]["tx_packets"] > 0, k["port"]
    return k


def kernel_pages(link, bin_dir, paths):
    """What the same server code serves on kernel sockets (http_server --backend kernel, in
    PEER on its loopback) for each path."""
    p = subprocess.Popen(
        in_ns(link.peer, bin_dir / "http_server", "--backend", "kernel", "--ip", "127.0.0.1/8",
              "--port", "8081", "--max-seconds", "20"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 10)
        line = p.stdout.readline() if ready else ""
        assert "serving" in line, line
        return {path: curl_bytes(link, f"http://127.0.0.1:8081{path}") for path in paths}
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate(timeout=10)


def wrk(link, url):
    out = link.peer_run("wrk", "-t1", "-c8", "-d2s", url, timeout=30).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 100, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    return requests


def ping(link, size, count=4):
    r = link.peer_run("ping", "-c", str(count), "-i", "0.2", "-W", "2", "-s", str(size),
                      link.our_ip, check=False)
    assert f"{count} received" in r.stdout, (size, r.stdout, r.stderr)


def test_http_server_on_af_xdp(link, processes, bin_dir, record_property):
    p = http_server(processes, link, link.af_xdp())
    assert "driver net_af_xdp, 1 queue" in p.lines[0], p.lines
    url = f"http://{link.our_ip}:{PORT}"
    paths = ["/", "/bytes/1", "/bytes/100000"]
    ours = {path: curl_bytes(link, url + path) for path in paths}
    assert b"Hello from dpdk-net" in ours["/"], ours["/"][:300]
    assert ours["/bytes/100000"] == pattern(100000)
    assert ours == kernel_pages(link, bin_dir, paths)
    assert curl(link, "-o", "/dev/null", "-w", "%{http_code}", url + "/") == "200"
    requests = wrk(link, url + "/")
    record_property("af_xdp_wrk_requests_2s", requests)
    print(f"wrk -t1 -c8 -d2s over af_xdp: {requests} requests")
    result = link.peer_client("keepalive", link.our_ip, PORT)
    assert result["requests"] == 8, result
    stats = json.loads(curl(link, url + "/stats"))
    assert stats["requests"] >= requests + len(paths) + 1 + 8, (stats, requests)
    k = final_counters(p, "net_af_xdp")
    assert stats["requests"] <= k["requests"] <= stats["requests"] + 1, k  # nothing after /stats
    assert k["tcp"]["passive_opens"] >= 8 + len(paths) + 3, k["tcp"]


def test_http_server_on_af_packet(link, processes):
    p = http_server(processes, link, link.af_packet())
    assert "driver net_af_packet, 1 queue" in p.lines[0], p.lines
    url = f"http://{link.our_ip}:{PORT}"
    assert b"Hello from dpdk-net" in curl_bytes(link, url + "/")
    assert curl_bytes(link, url + "/bytes/65536") == pattern(65536)
    payload = os.urandom(200000)
    echoed = subprocess.run(
        in_ns(link.peer, "curl", "-sS", "--max-time", "10", "-X", "POST", "--data-binary", "@-",
              "-H", "Expect:", url + "/echo"),
        input=payload, capture_output=True, timeout=20, check=True).stdout
    assert echoed == payload
    result = link.peer_client("keepalive", link.our_ip, PORT)
    assert result["requests"] == 8, result
    ping(link, 56)
    ping(link, 1472)  # a full 1500-byte IP packet each way
    k = final_counters(p, "net_af_packet")
    assert k["requests"] == 3 + 8 and k["tcp"]["passive_opens"] == 4, k


def test_ping_over_af_xdp(link, processes):
    p = http_server(processes, link, link.af_xdp())
    ping(link, 56)
    ping(link, 1472)
    ping(link, 3000)  # three fragments each way
    k = final_counters(p, "net_af_xdp")
    # 3 x 4 requests in 1 + 1 + 3 frames, and the replies the same; ARP on top.
    assert k["port"]["rx_packets"] >= 20 and k["port"]["tx_packets"] >= 20, k["port"]


def test_af_packet_truncates_reassembled_datagrams(link, processes):
    """DPDK 22.11's af_packet driver has the kernel reassemble IP fragments before they reach its
    ring (PACKET_FANOUT_FLAG_DEFRAG) and its ring frames are 2048 bytes: a 3000-byte ping arrives
    as one frame cut at 1982 bytes. Our stack drops it as malformed (ip_length_exceeds_frame) and
    answers nothing; pings that fit a frame are answered. (af_xdp passes the fragments on:
    test_ping_over_af_xdp.)"""
    p = processes("tcp_echo", ["--vdev", link.af_packet(), *MEMORY, "--ip", f"{link.our_ip}/24",
                               "--port", "7", "--max-seconds", "30"], "echoing TCP port 7")
    ping(link, 1000, count=2)
    r = link.peer_run("ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", "3000", link.our_ip,
                      check=False)
    assert " 0 received" in r.stdout, r.stdout
    rc, out, err = p.stop()
    assert rc == 0, (rc, err[-3000:])
    k = last_json(out)
    assert k["icmp_echo_replies"] == 2 and k["reassembled"] == 0, k
    assert k["malformed_by_reason"] == {"ip_length_exceeds_frame": 2}, k["malformed_by_reason"]


def nft_peer_loss(link, percent):
    """A table in PEER dropping percent % of the TCP segments PEER receives (ours: real losses;
    a drop of a segment Linux sends is not one, its TCP just sends it again later), counted."""
    table = f"dnk_{dpdkutil.PID}"
    rules = f"""table inet {table} {{
        chain input_loss {{ type filter hook input priority 0; policy accept;
            meta l4proto tcp numgen random mod 100 < {percent} counter drop
        }}
    }}"""
    link.peer_run("nft", "-f", "-", stdin=rules)
    return table


def test_tcp_echo_byte_exact_under_loss(link, processes, record_property):
    seed = int(os.environ.get("DPDK_NET_TEST_SEED", "41"))
    p = processes("tcp_echo", ["--vdev", link.af_packet(), *MEMORY, "--ip", f"{link.our_ip}/24",
                               "--port", "7", "--loss", "1", "--seed", str(seed),
                               "--max-seconds", "60"], "echoing TCP port 7")
    table = nft_peer_loss(link, 2)
    try:
        result = link.peer_client("echo", link.our_ip, 7, 2_000_000, seed, timeout=25)
        listing = link.peer_run("nft", "list", "table", "inet", table).stdout
    finally:
        link.peer_run("nft", "delete", "table", "inet", table, check=False)
    assert "table inet" not in link.peer_run("nft", "list", "tables").stdout
    assert result["bytes"] == 2_000_000, (seed, result)
    assert result["received"] == result["sent"], f"seed {seed}: the echo differs (SHA-256)"
    drops = [int(n) for n in re.findall(r"counter packets (\d+)", listing)]
    assert drops and drops[0] > 0, f"seed {seed}: nftables dropped nothing: {listing}"
    rc, out, err = p.stop()
    assert rc == 0, (rc, err[-3000:])
    k = last_json(out)
    f = k["faults"]
    record_property("echo_2mb_seconds_under_loss", result["seconds"])
    print(f"2 MB echoed intact in {result['seconds']} s; dropped: nftables {drops[0]}, "
          f"fault_device rx {f['rx']['dropped_loss']} tx {f['tx']['dropped_loss']}; "
          f"our retransmits {k['tcp']['retransmits']}, out of order {k['tcp']['out_of_order']}")
    assert f["rx"]["dropped_loss"] > 0 and f["tx"]["dropped_loss"] > 0, (seed, f)
    assert k["tcp"]["retransmits"] > 0, (seed, k["tcp"])  # our lost segments sent again
    assert k["tcp"]["out_of_order"] > 0, (seed, k["tcp"])  # Linux's, lost on our side: holes
    assert k["app"]["completed"] == 1 and k["app"]["failed"] == 0, (seed, k["app"])
    assert k["app"]["bytes_echoed"] == 2_000_000, (seed, k["app"])


def one_line(err, program):
    """Our own lines on stderr (the EAL's and the drivers' log lines aside): exactly one."""
    ours = [ln for ln in err.splitlines() if ln.startswith(f"{program}: ")]
    assert len(ours) == 1, err
    return ours[0]


def test_more_memory_than_the_hugepages_hold(link, bin_dir):
    rc, _, err = run_dpdk(link.ours, bin_dir / "http_server",
                          ["--vdev", link.af_packet(), "--eal", "-m 60000", "--ip",
                           f"{link.our_ip}/24", "--max-seconds", "5"])
    assert rc == 1, (rc, err)
    line = one_line(err, "http_server")
    assert "hugepages" in line and "--no-huge" in line, line
    assert "60000" in err  # the EAL's log says what it could not get


def test_an_af_xdp_queue_in_use(link, processes, bin_dir):
    """A second process on the queue a running server holds fails: exit 1, one line naming the
    port. The first server is not used afterwards: DPDK 22.11's af_xdp driver, closing the failed
    port, detaches the interface's XDP program -- the first process's -- and the first server
    receives nothing from then on. (So does a process that only probes the interface: the EAL's
    cleanup closes the port. Only a check before the EAL starts could refuse without harm.)"""
    first = http_server(processes, link, link.af_xdp())
    assert b"Hello from dpdk-net" in curl_bytes(link, f"http://{link.our_ip}:{PORT}/")
    rc, _, err = run_dpdk(link.ours, bin_dir / "http_server",
                          ["--vdev", link.af_xdp(), *MEMORY, "--ip", f"{link.our_ip}/24",
                           "--max-seconds", "5"])
    assert rc == 1, (rc, err)
    line = one_line(err, "http_server")
    assert "net_af_xdp0" in line, line
    assert "Failed to create xsk socket" in err, err  # the driver's log says where it failed
    rc, _, err = first.stop()
    assert rc == 0, err[-3000:]


def test_a_memif_socket_in_use(link, processes, bin_dir):
    sock = f"/tmp/dnk_memif_{dpdkutil.PID}.sock"
    vdev = f"net_memif0,role=server,socket={sock},socket-abstract=no"
    try:
        first = processes("http_server", ["--vdev", vdev, *MEMORY, "--ip", f"{link.our_ip}/24",
                                          "--max-seconds", "30"], "serving http://")
        rc, _, err = run_dpdk(link.ours, bin_dir / "http_server",
                              ["--vdev", vdev, *MEMORY, "--ip", f"{link.our_ip}/24",
                               "--max-seconds", "5"])
        assert rc == 1, (rc, err)
        line = one_line(err, "http_server")
        assert "net_memif0" in line, line
        assert f"{sock}: Address already in use" in err, err  # the driver's log names it
        rc, _, err = first.stop()
        assert rc == 0, err[-3000:]
    finally:
        if os.path.exists(sock):
            os.unlink(sock)


def test_an_interface_that_does_not_exist(link, bin_dir):
    rc, _, err = run_dpdk(link.ours, bin_dir / "http_server",
                          ["--vdev", "net_af_xdp0,iface=doesnotexist0", *MEMORY, "--ip",
                           f"{link.our_ip}/24", "--max-seconds", "5"])
    assert rc == 1, (rc, err)
    line = one_line(err, "http_server")
    assert "net_af_xdp0" in line, line
    assert "doesnotexist0" in err, err  # the driver's log names the interface


def test_nothing_left_behind(link):
    """Runs last in this file: no process of ours in OURS, no runtime directory of this run."""
    deadline = time.monotonic() + 5
    while dpdkutil._ns_pids(link.ours) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not dpdkutil._ns_pids(link.ours)
    mine = [d for d in os.listdir(dpdkutil.RUNTIME)
            if d.startswith(f"dnk_{dpdkutil.PID}_")] if os.path.isdir(dpdkutil.RUNTIME) else []
    assert not mine, mine
