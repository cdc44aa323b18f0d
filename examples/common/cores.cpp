#include "cores.hpp"

#include <chrono>
#include <cstdio>
#include <thread>

#include "dpdk_net/cpu_affinity.hpp"

namespace dpdk_net::examples {
namespace {

std::string affinity_text(const std::vector<unsigned>& a) {
  return a.empty() ? std::string("?") : format_core_list(a);
}

}  // namespace

const char* cores_usage() noexcept {
  return "  --cores LIST          tap, dpdk: one worker per listed core (\"0,1\", \"0-3\"), each\n"
         "                        pinned to its core (dpdk_net::multi_runtime over a multi-queue\n"
         "                        TAP or DPDK port, flows spread by RSS); one core: the\n"
         "                        one-worker runtime pinned there. sim: the server host's\n"
         "                        workers (a number N is a count; a list counts its cores).\n"
         "                        Default: one worker, not pinned\n"
         "  --no-pin              tap, dpdk: the workers float (--cores only gives their number)\n";
}

std::string resolve_workers(worker_options& w, bool sim) {
  w.workers = 1;
  w.cores.clear();
  if (!w.given) {
    return {};
  }
  if (w.text.empty()) {
    return "--cores needs a core list (0,1 or 0-3) or, sim, a count";
  }
  const bool count = w.text.find_first_not_of("0123456789") == std::string::npos;
  std::size_t n = 0;
  if (sim && count) {
    n = w.text.size() > 3 ? 1000 : std::stoul(w.text);
  } else {
    std::string error;
    const auto list = parse_core_list(w.text, error);
    if (!list) {
      return "--cores " + w.text + ": " + error + " (write cores as taskset does: 0,1 or 0-3)";
    }
    n = list->size();
    if (!sim) {
      w.cores = *list;
    }
  }
  if (n == 0 || n > max_workers) {
    return "--cores " + w.text + ": " + std::to_string(n) + " workers; 1.." +
           std::to_string(max_workers) + " are possible (fix: name fewer cores)";
  }
  if (w.pinned()) {
    if (const std::string bad = check_cores(w.cores); !bad.empty()) {
      return "--cores " + w.text + ": " + bad + " (or --no-pin)";
    }
  }
  w.workers = static_cast<std::uint16_t>(n);
  return {};
}

multi_runtime_options multi_options(const worker_options& w) {
  multi_runtime_options o;
  o.pin = w.pin;
  if (w.cores.empty()) {
    o.workers = w.workers;
  } else {
    o.cores = w.cores;
  }
  return o;
}

bool pin_single_worker(const char* prog, const worker_options& w) {
  if (!w.pinned()) {
    return true;
  }
  if (const std::error_code e = pin_current_thread(w.cores.front())) {
    std::fprintf(stderr, "%s: pinning to core %u: %s\n", prog, w.cores.front(),
                 e.message().c_str());
    return false;
  }
  std::printf("%s: worker 0 pinned to core %u (affinity %s)\n", prog, w.cores.front(),
              affinity_text(current_thread_affinity()).c_str());
  return true;
}

void announce_workers(const char* prog, multi_runtime& rt) {
  std::vector<std::vector<unsigned>> a = rt.worker_affinity();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto all_read = [&a] {
    for (const auto& x : a) {
      if (x.empty()) {
        return false;
      }
    }
    return true;
  };
  while (!all_read() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    a = rt.worker_affinity();
  }
  const std::vector<worker_stats> s = rt.stats();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (s[i].core >= 0) {
      std::printf("%s: worker %zu pinned to core %d (affinity %s)\n", prog, i, s[i].core,
                  affinity_text(a[i]).c_str());
    } else {
      std::printf("%s: worker %zu not pinned (affinity %s)\n", prog, i,
                  affinity_text(a[i]).c_str());
    }
  }
}

std::string worker_json(std::size_t i, const worker_stats& s,
                        const std::vector<unsigned>& affinity) {
  const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\"worker\":%zu,\"queue\":%u,\"core\":%d,\"affinity\":\"%s\",\"rx_frames\":%llu,"
                "\"tx_frames\":%llu,\"handed_out\":%llu,\"handed_in\":%llu,"
                "\"software_hashes\":%llu,\"arp_copies\":%llu,\"ring_full\":%llu,"
                "\"no_buffer\":%llu",
                i, static_cast<unsigned>(s.queue), s.core, format_core_list(affinity).c_str(),
                u(s.loop.rx_frames), u(s.loop.tx_frames), u(s.steering.handed_out),
                u(s.steering.handed_in), u(s.steering.software_hashes), u(s.steering.arp_copies),
                u(s.steering.ring_full), u(s.steering.no_buffer));
  return buf;
}

std::string steering_json(steering_mode mode, const std::vector<worker_stats>& s) {
  mesh_counters t{};
  for (const worker_stats& w : s) {
    t += w.steering;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"steering\":\"%s\",\"handed_out\":%llu,\"software_hashes\":%llu,"
                "\"ring_full\":%llu,\"handoff_no_buffer\":%llu",
                mode == steering_mode::hardware ? "hardware" : "software",
                static_cast<unsigned long long>(t.handed_out),
                static_cast<unsigned long long>(t.software_hashes),
                static_cast<unsigned long long>(t.ring_full),
                static_cast<unsigned long long>(t.no_buffer));
  return buf;
}

}  // namespace dpdk_net::examples
