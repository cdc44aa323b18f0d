"""The demo program end to end: frames through the in-memory device pair, checked from outside."""
import json
import subprocess

import pytest


def run(bin_dir, *args, check=True):
    return subprocess.run([str(bin_dir / "frame_pump"), *args], capture_output=True, text=True,
                          timeout=120, check=check)


def pump(bin_dir, *args):
    out = run(bin_dir, "--json", *args).stdout
    return json.loads(out)


@pytest.mark.parametrize("queues", [1, 3])
def test_every_frame_arrives_verified(bin_dir, queues):
    r = pump(bin_dir, "--frames", "20000", "--queues", str(queues), "--size", "100")
    assert r["ok"] is True
    assert r["received"] == r["verified"] == r["frames"] == 20000
    assert r["bad"] == 0 and r["out_of_order"] == 0
    assert r["tx_packets"] == r["rx_packets"] == 20000
    assert r["tx_bytes"] == 20000 * 100
    assert len(r["per_queue"]) == queues and sum(r["per_queue"]) == 20000
    # Round-robin over queues: none is starved.
    assert min(r["per_queue"]) > 0
    assert r["pool_available"] == r["pool_capacity"]  # nothing leaked


def test_full_ring_declines_and_sender_retries_without_loss(bin_dir):
    r = pump(bin_dir, "--frames", "5000", "--ring", "4", "--burst", "16", "--queues", "1")
    assert r["ok"] is True
    assert r["tx_busy"] > 0, "a 4-frame ring must decline part of 16-frame bursts"
    assert r["verified"] == 5000
    assert r["tx_packets"] == 5000  # declined frames were sent later, exactly once


def test_large_frames(bin_dir):
    r = pump(bin_dir, "--frames", "3000", "--size", "1514", "--queues", "2")
    assert r["ok"] is True and r["tx_bytes"] == 3000 * 1514


@pytest.mark.parametrize("args,message", [
    (["--frames", "0"], "--frames needs a whole number from 1"),
    (["--burst", "65"], "--burst needs a whole number from 1 to 64"),
    (["--size", "10"], "--size needs a whole number from 22 to 1514"),
    (["--queues"], "--queues needs a whole number"),
    (["--frames", "12x"], "--frames needs a whole number"),
    (["--bogus"], "unknown argument '--bogus'"),
])
def test_bad_arguments_get_a_clear_error(bin_dir, args, message):
    r = run(bin_dir, *args, check=False)
    assert r.returncode == 2
    assert message in r.stderr


def test_help(bin_dir):
    r = run(bin_dir, "--help")
    assert "usage: frame_pump" in r.stdout
