// The replay engine (replay.hpp) on a live device: a capture replayed over a real link (a pcap
// device on one end of a veth, a TAP device, a DPDK port) against a stack somewhere on that link
// -- ours in another process, or any other TCP/IP stack (the Linux kernel).
//
//   loop: rx_burst -> engine.on_frame -> engine.poll (emitted frames: tx_burst) -> wait
//
// The wait: a device with a readable fd (pcap, TAP) is poll(2)ed until the engine's next
// wakeup (at most `max_idle_wait`); a poll-mode device (DPDK) spins with an idle back-off
// (`max_idle_wait` caps the sleep), so a replay can share a core with the stack it tests.
// Time is the monotonic clock: a live replay is paced as recorded (or as fast as the wait rule
// allows, config.fast) but, unlike the simulator's (sim::replay_host), not reproducible.
//
// This is the runtime layer's (clock, syscalls); the engine itself stays sans-I/O.
#pragma once

#include <atomic>
#include <cstdint>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/replay/replay.hpp"
#include "dpdk_net/time.hpp"

namespace dpdk_net::replay {

struct device_replay_options {
  std::uint16_t queue = 0;       ///< the device queue the replayer sends and receives on
  pcapng_writer* out = nullptr;  ///< every frame received and emitted (interface 0; an emitted
                                 ///< frame the device never took is there too: see tx_dropped)
  time_ns max_duration = 60 * second;       ///< then give up (finished = false)
  time_ns max_idle_wait = 2 * millisecond;  ///< the longest sleep between two rx polls
  const std::atomic<bool>* stop = nullptr;  ///< set (e.g. by SIGINT): stop now
};

struct device_replay_result {
  bool finished = false;         ///< engine.done() before max_duration (and no stop)
  bool stopped = false;          ///< *stop was set
  std::uint64_t tx_dropped = 0;  ///< not sent: no pool buffer, or still declined by the device
                                 ///< at the end (a declined frame is retried, in order)
  time_ns elapsed = 0;           ///< wall time from the first poll
};

/// Runs `engine` (loaded) over `dev` until it is done, max_duration passes or *stop is set.
/// The engine's config.mac should be the device's MAC (the frames go out with it).
device_replay_result run_on_device(engine& engine, device& dev,
                                   const device_replay_options& options);

}  // namespace dpdk_net::replay
