// The examples' pcap backend and --capture options, shared by every example.
//
//   --backend pcap --iface NAME   our stack (one worker) on an existing interface through libpcap
//                                 (dpdk_net::pcap::pcap_device): it is one more host on that
//                                 link, with its own random MAC and --ip; the kernel's side of
//                                 the link is whatever the user configured (nothing is set up)
//   --capture FILE                every frame the device sends and receives, as pcapng
//                                 (dpdk_net::capture_device over the tap/pcap/dpdk device, one
//                                 interface per queue; the sim backend's server NIC through
//                                 sim::network::capture); the kernel backend has none
//   --capture-limit BYTES         no file grows past BYTES (>= 4096; default unbounded)
//   --capture-files N             with --capture-limit: a ring of N files (FILE, FILE.1, ...)
//   --capture-paused              the file opens empty; SIGUSR1 switches the capture on and off
//                                 (frame_capture::enable: run time, any thread)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dpdk_net/device.hpp"
#include "dpdk_net/frame_capture.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::examples {

/// True if this build has the pcap backend (libpcap was found).
[[nodiscard]] bool pcap_available() noexcept;
inline constexpr const char* no_pcap_message =
    "this build has no pcap backend (install libpcap-dev via scripts/setup.sh and reconfigure)";

/// An opened pcap device and the stack configuration to run on it.
struct pcap_backend {
  std::unique_ptr<device> dev;  ///< a dpdk_net::pcap::pcap_device
  stack::stack_config config;
  /// "pcap on NAME (MAC m, MTU n)".
  [[nodiscard]] std::string describe() const;
};

/// Opens --iface through libpcap and configures our address; null after printing "prog: <why>"
/// (which names the fix) to stderr.
std::optional<pcap_backend> open_pcap_backend(const char* prog, const std::string& iface,
                                              wire::ipv4_address address, std::uint8_t prefix,
                                              std::optional<wire::ipv4_address> gateway,
                                              std::size_t pool_size = 16384);

/// What the --capture options asked for.
struct capture_cli {
  std::string path;         ///< --capture (empty: no capture)
  std::uint64_t limit = 0;  ///< --capture-limit
  std::uint32_t files = 1;  ///< --capture-files
  bool limit_given = false;
  bool files_given = false;
  bool paused = false;  ///< --capture-paused: SIGUSR1 switches it on (and off again)
  [[nodiscard]] bool on() const noexcept { return !path.empty(); }
  /// The frame_capture options these flags ask for (path, cap, ring, paused).
  [[nodiscard]] capture_options options() const;
};

/// Installs the SIGUSR1 capture switch (a no-op until a device_capture is open), so a signal
/// sent during start-up is ignored rather than killing the process.
void arm_capture_switch() noexcept;

/// The help paragraph of the pcap backend's --iface and the capture options.
[[nodiscard]] const char* capture_usage() noexcept;

/// If argv[i] is a capture option, consumes it and its value and returns 1; 0 if it is not one;
/// 2 after printing "prog: <error> (try --help)".
int parse_capture_option(const char* prog, int argc, char** argv, int& i, capture_cli& out);

/// After the last argument: "" or what is wrong (limits without --capture, a limit below 4096,
/// the kernel backend, which has no device to capture). With --capture, arms the SIGUSR1 switch.
[[nodiscard]] std::string finish_capture(const capture_cli& c, bool kernel_backend);

/// The capture of one device: open() wraps it in a capture_device writing to --capture; dev() is
/// the wrapper (or the device itself without --capture). Declare it after the device and before
/// the runtime: its destructor publishes the device's drops and closes the file after the
/// runtime is gone.
class device_capture {
 public:
  device_capture() = default;
  device_capture(const device_capture&) = delete;
  device_capture& operator=(const device_capture&) = delete;
  ~device_capture() { close(); }

  /// False after printing "prog: <why>" (an unwritable path names it).
  bool open(const char* prog, const capture_cli& c, device& inner);
  [[nodiscard]] device& dev() noexcept { return wrapper_ ? *wrapper_ : *inner_; }
  /// Publishes drops, writes the statistics blocks, closes; prints what was written.
  void close() noexcept;

 private:
  device* inner_ = nullptr;
  std::unique_ptr<frame_capture> sink_;
  std::unique_ptr<capture_device> wrapper_;
  std::string prog_;
  std::string path_;
};

}  // namespace dpdk_net::examples
