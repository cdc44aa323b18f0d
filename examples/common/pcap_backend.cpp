#include "pcap_backend.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string_view>

#include "dpdk_net/os.hpp"

#if DPDK_NET_EXAMPLES_PCAP
#include "dpdk_net/pcap/pcap_device.hpp"
#endif

namespace dpdk_net::examples {

bool pcap_available() noexcept {
  return DPDK_NET_EXAMPLES_PCAP != 0;
}

std::string pcap_backend::describe() const {
  return "pcap on " + dev->info().name + " (MAC " + dev->info().mac.to_string() + ", MTU " +
         std::to_string(dev->info().mtu) + ")";
}

#if DPDK_NET_EXAMPLES_PCAP

std::optional<pcap_backend> open_pcap_backend(const char* prog, const std::string& iface,
                                              wire::ipv4_address address, std::uint8_t prefix,
                                              std::optional<wire::ipv4_address> gateway,
                                              std::size_t pool_size) {
  pcap::pcap_config pc;
  pc.iface = iface;
  pc.pool_size = pool_size;
  std::string error;
  pcap_backend b;
  b.dev = pcap::pcap_device::open(pc, error);
  if (!b.dev) {
    std::fprintf(stderr, "%s: %s\n", prog, error.c_str());
    return std::nullopt;
  }
  b.config.mac = b.dev->info().mac;
  b.config.address = address;
  b.config.prefix_length = prefix;
  b.config.gateway = gateway;
  if (const std::string bad = stack::validate(b.config, b.dev->info().mtu); !bad.empty()) {
    std::fprintf(stderr, "%s: %s\n", prog, bad.c_str());
    return std::nullopt;
  }
  return b;
}
#else
std::optional<pcap_backend> open_pcap_backend(const char* prog, const std::string&,
                                              wire::ipv4_address, std::uint8_t,
                                              std::optional<wire::ipv4_address>, std::size_t) {
  std::fprintf(stderr, "%s: %s\n", prog, no_pcap_message);
  return std::nullopt;
}
#endif

const char* capture_usage() noexcept {
  return "  --backend pcap        our stack (one worker) on an existing interface through\n"
         "                        libpcap: --iface NAME (required), --ip, --gateway; the kernel\n"
         "                        side of the link is left as configured (turn its checksum\n"
         "                        offloads off: ethtool -K NAME tx off)\n"
         "  --capture FILE        write every frame the device sends and receives to FILE\n"
         "                        (pcapng, one interface per queue; sim: the server's NIC);\n"
         "                        not with --backend kernel\n"
         "  --capture-limit BYTES no capture file grows past BYTES (>= 4096)\n"
         "  --capture-files N     with --capture-limit: a ring of N files (FILE, FILE.1, ...)\n"
         "  --capture-paused      open FILE but write nothing until SIGUSR1; each SIGUSR1\n"
         "                        switches the capture on or off (tap, pcap, dpdk backends)\n";
}

namespace {

/// The capture SIGUSR1 switches (the last one opened: the examples open one). The handler only
/// touches lock-free atomics (async-signal-safe); close() clears the pointer, then waits until no
/// handler (on any thread) is still inside, so the capture is never used after it is freed.
std::atomic<frame_capture*> toggled_capture{nullptr};
std::atomic<int> toggles_running{0};
static_assert(std::atomic<frame_capture*>::is_always_lock_free &&
              std::atomic<int>::is_always_lock_free);

extern "C" void toggle_capture(int /*sig*/) {
  toggles_running.fetch_add(1);
  if (frame_capture* c = toggled_capture.load(); c != nullptr) {
    c->enable(!c->enabled());
  }
  toggles_running.fetch_sub(1);
}

}  // namespace

int parse_capture_option(const char* prog, int argc, char** argv, int& i, capture_cli& out) {
  const std::string_view a = argv[i];
  if (a == "--capture-paused") {
    out.paused = true;
    return 1;
  }
  if (a != "--capture" && a != "--capture-limit" && a != "--capture-files") {
    return 0;
  }
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s: %s needs a value (try --help)\n", prog, argv[i]);
    return 2;
  }
  const std::string v = argv[++i];
  if (a == "--capture") {
    if (v.empty()) {
      std::fprintf(stderr, "%s: --capture needs a file name (try --help)\n", prog);
      return 2;
    }
    out.path = v;
    return 1;
  }
  const bool digits =
      !v.empty() && v.size() < 19 && v.find_first_not_of("0123456789") == std::string::npos;
  const std::uint64_t n = digits ? std::stoull(v) : 0;
  if (a == "--capture-limit") {
    if (n < 4096) {
      std::fprintf(stderr, "%s: --capture-limit needs a number of bytes >= 4096 (try --help)\n",
                   prog);
      return 2;
    }
    out.limit = n;
    out.limit_given = true;
  } else {
    if (n < 1 || n > 1000) {
      std::fprintf(stderr, "%s: --capture-files needs 1..1000 (try --help)\n", prog);
      return 2;
    }
    out.files = static_cast<std::uint32_t>(n);
    out.files_given = true;
  }
  return 1;
}

std::string finish_capture(const capture_cli& c, bool kernel_backend) {
  if (!c.on() && (c.limit_given || c.files_given || c.paused)) {
    return "--capture-limit, --capture-files and --capture-paused need --capture FILE";
  }
  if (c.files_given && c.files > 1 && !c.limit_given) {
    return "--capture-files N needs --capture-limit BYTES (when a file is full, the next opens)";
  }
  if (c.on() && kernel_backend) {
    return "--capture is not available with --backend kernel (the kernel's sockets have no "
           "device of ours: capture with tcpdump -i IFACE -w FILE instead)";
  }
  if (c.on()) {
    arm_capture_switch();  // from the end of parsing on, SIGUSR1 cannot kill the process
  }
  return {};
}

bool device_capture::open(const char* prog, const capture_cli& c, device& inner) {
  inner_ = &inner;
  if (!c.on()) {
    return true;
  }
  prog_ = prog;
  path_ = c.path;
  const capture_options co = c.options();
  sink_ = std::make_unique<frame_capture>();
  std::string error;
  if (!sink_->open(co, capture_device::interfaces_for(inner.info(), co.snaplen), error)) {
    std::fprintf(stderr, "%s: --capture %s: %s\n", prog, c.path.c_str(), error.c_str());
    sink_.reset();
    return false;
  }
  wrapper_ = std::make_unique<capture_device>(inner, *sink_);
  arm_capture_switch();
  toggled_capture.store(sink_.get());
  return true;
}

void arm_capture_switch() noexcept {
  std::signal(SIGUSR1, toggle_capture);
}

capture_options capture_cli::options() const {
  capture_options co;
  co.path = path;
  co.limits.max_file_bytes = limit;
  co.limits.max_files = files;
  co.enabled = !paused;
  return co;
}

void device_capture::close() noexcept {
  if (!sink_) {
    return;
  }
  frame_capture* expected = sink_.get();
  toggled_capture.compare_exchange_strong(expected, nullptr);
  while (toggles_running.load() != 0) {
    // a handler on another thread is switching it: a few instructions
  }
  if (wrapper_) {
    wrapper_->publish_drops();
  }
  sink_->close(realtime_now());
  const capture_file_stats s = sink_->stats();
  std::fprintf(stderr, "%s: capture %s: %llu frames written, %llu over the cap, %llu errors\n",
               prog_.c_str(), path_.c_str(), static_cast<unsigned long long>(s.frames_written),
               static_cast<unsigned long long>(s.frames_over_cap),
               static_cast<unsigned long long>(s.write_errors));
  wrapper_.reset();
  sink_.reset();
}

}  // namespace dpdk_net::examples
