// The dpdk backend's glue (dpdk_backend.hpp): the EAL from the options, one port, its counters.
// Built only with DPDK (DPDK_NET_HAVE_DPDK); sees no DPDK header either (dpdk_net::dpdk's API).
//
// ASan/LSan (the ci tree): these programs need no ASAN_OPTIONS and no LSan suppressions. Checked
// with memif (one and two workers per side), net_tap, a failed rte_eal_init (an unknown --vdev
// driver), a failed port open and SIGTERM: LeakSanitizer runs at exit and reports nothing. The
// EAL's memory (--no-huge too) is mmap'ed memseg lists, not malloc; what it does malloc stays
// reachable from its globals or is freed by rte_eal_cleanup(), which ~state runs. Should a PMD
// ever leak at exit, suppress it by library (LSAN_OPTIONS=suppressions=..., "leak:librte_")
// rather than detect_leaks=0, which would hide our own leaks too.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "dpdk_backend.hpp"
#include "dpdk_net/dpdk/dpdk_device.hpp"
#include "dpdk_net/dpdk/eal.hpp"

namespace dpdk_net::examples {

namespace {

// Sized for --no-huge -m 256 with one or two queues: a queue's mempool holds what its driver
// rings, its stack and the hand-over between workers may hold at once (dpdk::mbufs_needed).
constexpr std::uint16_t descriptors = 512;
constexpr std::uint32_t mbuf_cache = 64;
constexpr std::uint32_t handover_frames = 2 * 1024;  // per queue, with several workers

/// Raw EAL arguments that name PCI devices themselves: then no --no-pci.
bool names_pci(const std::vector<std::string>& extra) {
  for (const std::string& a : extra) {
    if (a == "-a" || a.starts_with("--allow") || a == "-b" || a.starts_with("--block") ||
        (a.starts_with("-a") && a.size() > 2)) {
      return true;
    }
  }
  return false;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
  }
  return out;
}

}  // namespace

struct dpdk_port::state {
  std::unique_ptr<dpdk::dpdk_device> dev;
  stack::stack_config config;
  std::string name;
  std::string prefix;
  bool generated_prefix = false;
  std::uint32_t mbufs = 0;

  ~state() {
    dev.reset();  // the port closes and its mempools go while the EAL still runs
    dpdk::eal::cleanup();
    if (generated_prefix) {
      std::error_code ec;
      std::filesystem::remove_all(dpdk::eal::runtime_dir(prefix), ec);
    }
  }
};

dpdk_port::dpdk_port(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}
dpdk_port::~dpdk_port() = default;

std::unique_ptr<dpdk_port> dpdk_port::open(const char* prog, const dpdk_options& o,
                                           const worker_options& w,
                                           const stack::stack_config& base) {
  auto s = std::make_unique<state>();
  dpdk::eal_config ec;
  ec.program = prog;
  if (!w.cores.empty()) {
    ec.lcores = std::to_string(w.cores.front());
  }
  ec.vdevs = o.vdevs;
  ec.allow = o.allow;
  ec.extra = dpdk::split_eal_string(o.eal);
  ec.pci = !o.allow.empty() || names_pci(ec.extra);
  ec.telemetry = false;
  ec.hugepages = o.hugepages;
  ec.memory_mb = o.memory_mb;
  s->generated_prefix = o.file_prefix.empty();
  s->prefix = s->generated_prefix
                  ? "dpdk_net_" + std::string(prog) + "_" + std::to_string(::getpid())
                  : o.file_prefix;
  ec.file_prefix = s->prefix;
  ec.keep_affinity = true;
  if (std::string e = dpdk::eal::init(ec); !e.empty()) {
    if (e.ends_with("No such device") && !o.vdevs.empty()) {
      // rte_eal_init's ENODEV: a --vdev names a driver no PMD provides (the EAL log above says
      // which); eal::init adds no hint for it.
      e += " (a --vdev names a driver DPDK does not have: its name, before the first comma, "
           "must start with a driver's, e.g. net_memif0, net_ring0, net_tap0, net_af_packet0)";
    }
    std::fprintf(stderr, "%s: %s\n", prog, e.c_str());
    return nullptr;  // s's destructor removes a generated runtime directory
  }
  s->name = o.port;
  s->config = base;
  dpdk::port_config pc;
  pc.name = o.port;
  pc.rx_queues = w.workers;
  pc.tx_queues = w.workers;
  pc.rx_descriptors = descriptors;
  pc.tx_descriptors = descriptors;
  pc.mbuf_cache = mbuf_cache;
  pc.mbufs = dpdk::mbufs_needed(dpdk::mbuf_budget{
      .rx_descriptors = descriptors,
      .tx_descriptors = descriptors,
      .held_by_stack = static_cast<std::uint32_t>(stack::frames_held(base)),
      .handover = w.workers > 1 ? handover_frames : 0,
      .cache = mbuf_cache,
      .lcores = w.workers,
  });
  s->mbufs = pc.mbufs;
  std::string error;
  s->dev = dpdk::dpdk_device::open(pc, error);
  if (!s->dev) {
    const bool ours = std::any_of(o.vdevs.begin(), o.vdevs.end(), [&](const std::string& v) {
      return v.substr(0, v.find(',')) == o.port;
    });
    if (ours && error.starts_with("no DPDK port named")) {
      // The EAL goes on when a vdev's driver refuses its arguments: the port is just missing.
      error +=
          " (its --vdev was refused by the driver: the EAL log above says why, e.g. a "
          "memif socket another process uses)";
    }
    std::fprintf(stderr, "%s: %s\n", prog, error.c_str());
    return nullptr;
  }
  s->config.mac = s->dev->info().mac;
  stack::use_device(s->config, s->dev->info());
  if (const std::string bad = stack::validate(s->config, s->dev->info().mtu); !bad.empty()) {
    std::fprintf(stderr, "%s: %s\n", prog, bad.c_str());
    return nullptr;
  }
  return std::unique_ptr<dpdk_port>(new dpdk_port(std::move(s)));
}

device& dpdk_port::dev() noexcept {
  return *s_->dev;
}

const stack::stack_config& dpdk_port::config() const noexcept {
  return s_->config;
}

const std::string& dpdk_port::name() const noexcept {
  return s_->name;
}

std::string dpdk_port::describe() const {
  const std::uint16_t q = s_->dev->info().rx_queues;
  return "dpdk port " + s_->name + " (driver " + s_->dev->driver() + ", " + std::to_string(q) +
         (q == 1 ? " queue" : " queues") + ", mbufs " + std::to_string(s_->mbufs) + "/queue)";
}

std::string dpdk_port::stats_json() const {
  const dpdk::dpdk_device& d = *s_->dev;
  const device_stats st = d.stats();
  const dpdk::dpdk_port_counters c = d.counters();
  const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  char buf[768];
  std::snprintf(buf, sizeof buf,
                "\"port\":{\"rx_packets\":%llu,\"rx_bytes\":%llu,\"rx_dropped\":%llu,"
                "\"tx_packets\":%llu,\"tx_bytes\":%llu,\"tx_dropped\":%llu,\"tx_busy\":%llu},"
                "\"dpdk\":{\"tx_copied\":%llu,\"tx_external\":%llu,\"tx_too_big\":%llu,"
                "\"alloc_failures\":%llu,\"mbufs_in_use\":%zu,\"driver\":\"%s\"}",
                u(st.rx_packets), u(st.rx_bytes), u(st.rx_dropped), u(st.tx_packets),
                u(st.tx_bytes), u(st.tx_dropped), u(st.tx_busy), u(c.tx_copied), u(c.tx_external),
                u(c.tx_too_big), u(c.alloc_failures), d.mbufs_in_use(),
                json_escape(d.driver()).c_str());
  std::string out = buf;
  out += ",\"xstats\":{";
  bool first = true;
  for (const named_counter& x : d.extended_stats()) {
    if (x.value != 0) {
      out += (first ? "\"" : ",\"") + json_escape(x.name) + "\":" + std::to_string(x.value);
      first = false;
    }
  }
  out += '}';
  return out;
}

multi_runtime_options dpdk_port::multi_options(const worker_options& w) {
  multi_runtime_options o = examples::multi_options(w);
  o.on_thread_start = [](std::size_t) {
    if (const std::string e = dpdk::eal::register_thread(); !e.empty()) {
      throw std::runtime_error(e);
    }
  };
  return o;
}

bool dpdk_port::wait_for_link(const char* prog, double seconds) const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!s_->dev->link().up) {
    if (std::chrono::steady_clock::now() >= end) {
      std::fprintf(stderr,
                   "%s: the link of %s did not come up in %.0f s (a memif client: is the server "
                   "running, on the same socket?)\n",
                   prog, s_->name.c_str(), seconds);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace dpdk_net::examples
