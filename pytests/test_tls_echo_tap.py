"""TLS over our stack against a real TLS client (issue 12): examples/tls_echo (asio::ssl::stream
over dpdk_net::tcp::socket, a reader and a writer in flight at once on each stream) over TAP,
driven by `openssl s_client` from the kernel side. The certificate is made here, at test time."""
import os
import subprocess

import pytest

PID = os.getpid()


@pytest.fixture
def tls_server(bin_dir, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=dpdk-net-test"], check=True, capture_output=True,
                   timeout=30)
    name, third = f"dntls{PID % 10000}", 150 + PID % 50
    ours, kernel = f"198.18.{third}.2", f"198.18.{third}.1"
    proc = subprocess.Popen([str(bin_dir / "tls_echo"), "--iface", name, "--ip", f"{ours}/24",
                             "--kernel-ip", kernel, "--port", "4433", "--cert", str(cert),
                             "--key", str(key), "--seconds", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "TLS echo on port 4433" in line, line + proc.stderr.read()
        yield {"ours": ours, "cert": cert}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not os.path.exists(f"/sys/class/net/{name}"), "TAP interface left behind"


def s_client(server, data, tmp_path, linger=1.5, commands=False):
    """Sends data through openssl s_client (TLS 1.3, verifying our certificate), returns what
    came back and s_client's stderr. stdin is the data then `linger` seconds of nothing (s_client
    exits at stdin's end: the echo must be back by then), fed by a shell pipe so that reading and
    writing overlap."""
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    # -quiet implies -ign_eof: -no_ign_eof must come after it, or s_client never exits.
    # -nocommands: else a line of the data starting with K (key update), R or Q is a command.
    cmd = (f"(cat {src}; sleep {linger}) | openssl s_client -connect {server['ours']}:4433 "
           f"-tls1_3 -CAfile {server['cert']} -verify_return_error -quiet -no_ign_eof"
           + ("" if commands else " -nocommands"))
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60)
    return r.stdout, r.stderr.decode(errors="replace")


def test_openssl_s_client_gets_its_bytes_back(tls_server, tmp_path):
    out, err = s_client(tls_server, b"hello over TLS 1.3 on dpdk-net\n", tmp_path)
    assert out == b"hello over TLS 1.3 on dpdk-net\n", err
    assert "verify error" not in err, err


def test_openssl_s_client_large_transfer_is_byte_exact(tls_server, tmp_path):
    data = os.urandom(1 << 20)
    out, err = s_client(tls_server, data, tmp_path, linger=4)
    assert len(out) == len(data), (len(out), err[-500:])
    assert out == data


def test_a_tls13_key_update_mid_stream_keeps_the_echo_going(tls_server):
    """s_client's K command (a read from stdin that starts with K) sends a TLS 1.3 KeyUpdate
    asking ours to update too, between two lines: the echo goes on under the new keys."""
    cmd = ("(printf 'before the update\\n'; sleep 0.5; printf 'K\\n'; sleep 0.5; "
           "printf 'after the update\\n'; sleep 1.5) | openssl s_client -connect "
           f"{tls_server['ours']}:4433 -tls1_3 -CAfile {tls_server['cert']} -verify_return_error "
           "-quiet -no_ign_eof")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60)
    err = r.stderr.decode(errors="replace")
    assert "KEYUPDATE" in err, err
    assert r.stdout == b"before the update\nafter the update\n", (r.stdout, err)
