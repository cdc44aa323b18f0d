// The two things the operating system must supply and the deterministic code must never fetch for
// itself: randomness and the time. Each is read in exactly one file (sdk/src/os_entropy.cpp,
// sdk/src/os_clock.cpp), the only places in sdk/, sim/ and backends/ where the determinism
// ban-list (pytests/test_banlist.py) allows getrandom or a clock. The runtime and the examples call
// these and pass the result in; the stack and the simulator only ever receive them.
#pragma once

#include <cstddef>
#include <span>
#include <system_error>

#include "dpdk_net/time.hpp"

namespace dpdk_net {

/// Fills out with bytes from the kernel's CSPRNG (getrandom, blocking only until the pool is
/// initialised at boot). Returns an error (and leaves out partly filled) only if the kernel
/// refuses.
std::error_code fill_random(std::span<std::byte> out) noexcept;

/// Nanoseconds on CLOCK_MONOTONIC: never jumps with wall-clock changes; the epoch is arbitrary.
[[nodiscard]] time_ns monotonic_now() noexcept;

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME: for capture timestamps (what Wireshark and
/// tcpdump show), never for timers.
[[nodiscard]] time_ns realtime_now() noexcept;

}  // namespace dpdk_net
