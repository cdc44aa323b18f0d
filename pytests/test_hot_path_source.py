"""No per-packet zeroing of large scratch arrays on the packet layer's and backends' hot paths
(issue 8, item 12). Zeroing costs no allocation and shows in no counter, so this one is a source
check: a value-initialised `std::array<T, N> x{};` with N a named constant or at least 16 is
refused in these files (a burst's scratch arrays are only read where written). The pattern has
positive and negative controls, so the check can fail."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

HOT_FILES = ("sdk/src/packet.cpp", "sdk/src/buffer_pool.cpp", "sdk/src/memory_device.cpp",
             "sdk/include/dpdk_net/buffer_pool.hpp", "sdk/include/dpdk_net/packet.hpp",
             "backends/tap/src/tap_device.cpp", "backends/dpdk/src/dpdk_device.cpp")

# std::array<T, N> name{};  (or name = {};) where N is an identifier or a literal >= 16.
ZEROED = re.compile(r"std::array<[^;<>]*(?:<[^;<>]*>)?[^;<>]*,\s*(?P<n>[A-Za-z_:][\w:]*|\d+)\s*>"
                    r"\s+\w+\s*(?:=\s*)?\{\s*\}")


def zeroed_large_array(line):
    m = ZEROED.search(line.split("//", 1)[0])
    if not m:
        return False
    n = m.group("n")
    return not n.isdigit() or int(n) >= 16


@pytest.mark.parametrize("line", [
    "  std::array<segment*, 64> batch_{};",              # the 512-byte free batch, before
    "    std::array<iovec, packet::max_segments> iov{};",  # TAP's 2 KiB iovec, before
    "  std::array<rte_mbuf*, max_burst> mbufs{};",       # DPDK's per-burst arrays, before
    "  std::array<std::size_t, max_burst> index = {};",
])
def test_pattern_catches_a_zeroed_burst_array(line):
    assert zeroed_large_array(line)


@pytest.mark.parametrize("line", [
    "  std::array<segment*, 64> batch_;",
    "  std::array<std::byte, 8> hdr{};",                  # a small header, zeroed on purpose
    "  std::array<iovec, 2> iov{{{data, room}, {&overflow, 1}}};",
    "  std::array<packet, max_burst> out;",
    "  // std::array<rte_mbuf*, max_burst> wire{};  (a comment)",
])
def test_pattern_leaves_uninitialised_and_small_arrays_alone(line):
    assert not zeroed_large_array(line)


def test_no_zeroed_scratch_arrays_on_the_hot_paths():
    offences = []
    for rel in HOT_FILES:
        for number, line in enumerate((ROOT / rel).read_text().splitlines(), 1):
            if zeroed_large_array(line):
                offences.append(f"{rel}:{number}: {line.strip()}")
    assert not offences, "\n".join(offences)
