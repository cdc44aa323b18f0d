// The dpdk backend's options (dpdk_backend.hpp), compiled in every build; without DPDK also the
// dpdk_port stubs that say so (the glue itself, dpdk_backend.cpp, needs DPDK).
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "dpdk_backend.hpp"

namespace dpdk_net::examples {

bool dpdk_available() noexcept {
  return DPDK_NET_EXAMPLES_DPDK != 0;
}

const char* dpdk_usage() noexcept {
  return "dpdk backend options (--backend dpdk: our stack over a DPDK ethdev; needs root):\n"
         "  --vdev SPEC           a virtual device for the EAL, repeatable, e.g.\n"
         "                        net_memif0,role=server,socket=/tmp/m.sock,socket-abstract=no\n"
         "  --dpdk-port NAME      the ethdev to open (default: the first --vdev's name)\n"
         "  --allow PCI           a NIC (bound to vfio-pci) the EAL may use, repeatable; without\n"
         "                        one the EAL runs with --no-pci\n"
         "  --no-huge             no hugepages: memory from the heap (-m 256 by default)\n"
         "  --dpdk-memory MB      memory the EAL reserves (-m)\n"
         "  --file-prefix P       the EAL's runtime files, /var/run/dpdk/P (default\n"
         "                        dpdk_net_<program>_<pid>, removed at exit)\n"
         "  --eal \"ARGS\"          raw EAL arguments, appended after the ones above\n"
         "  --cores LIST          also: one rx/tx queue per worker; the EAL's main lcore is the\n"
         "                        first core. Both ends of a memif link need the same number of\n"
         "                        workers\n";
}

int parse_dpdk_option(const char* prog, int argc, char** argv, int& i, dpdk_options& out) {
  const std::string_view a = argv[i];
  if (a == "--no-huge") {
    out.hugepages = false;
    out.given = true;
    return 1;
  }
  const bool known = a == "--vdev" || a == "--dpdk-port" || a == "--allow" || a == "--eal" ||
                     a == "--file-prefix" || a == "--dpdk-memory";
  if (!known) {
    return 0;
  }
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s: %s needs a value (try --help)\n", prog, argv[i]);
    return 2;
  }
  const std::string v = argv[++i];
  out.given = true;
  const auto bad = [prog](const char* what) {
    std::fprintf(stderr, "%s: %s (try --help)\n", prog, what);
    return 2;
  };
  if (a == "--vdev") {
    if (v.empty() || v.front() == ',' || v.find_first_of(" \t") != std::string::npos) {
      return bad("--vdev needs DRIVER<n>[,key=value...] (e.g. net_memif0,role=server)");
    }
    out.vdevs.push_back(v);
  } else if (a == "--dpdk-port") {
    if (v.empty()) {
      return bad("--dpdk-port needs an ethdev name (net_memif0, 0000:3b:00.0)");
    }
    out.port = v;
  } else if (a == "--allow") {
    if (v.empty()) {
      return bad("--allow needs a PCI address (0000:3b:00.0)");
    }
    out.allow.push_back(v);
  } else if (a == "--eal") {
    out.eal = v;
  } else if (a == "--file-prefix") {
    if (v.empty() || v.find('/') != std::string::npos || v.size() > 64) {
      return bad("--file-prefix needs a name of 1..64 characters without '/'");
    }
    out.file_prefix = v;
  } else {  // --dpdk-memory
    unsigned n = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < 64 || n > 1048576) {
      return bad("--dpdk-memory needs megabytes (64..1048576)");
    }
    out.memory_mb = n;
  }
  return 1;
}

std::string finish_dpdk(dpdk_options& out, bool dpdk) {
  if (!dpdk) {
    return out.given ? "--vdev, --dpdk-port, --allow, --eal, --no-huge, --file-prefix and "
                       "--dpdk-memory are options of --backend dpdk"
                     : "";
  }
  if (!dpdk_available()) {
    return no_dpdk_message;
  }
  if (out.port.empty() && !out.vdevs.empty()) {
    out.port = out.vdevs.front().substr(0, out.vdevs.front().find(','));
  }
  if (out.port.empty()) {
    return "--backend dpdk needs a port: --vdev SPEC (e.g. "
           "net_memif0,role=server,socket=/tmp/m.sock) or --dpdk-port NAME (a NIC: with "
           "--allow PCI)";
  }
  return {};
}

stack::stack_config dpdk_stack_config(wire::ipv4_address address, std::uint8_t prefix,
                                      std::optional<wire::ipv4_address> gateway) {
  stack::stack_config c;
  c.address = address;
  c.prefix_length = prefix;
  c.gateway = gateway;
  c.udp_sockets = 4;
  return c;
}

#if !DPDK_NET_EXAMPLES_DPDK
// A build without DPDK: finish_dpdk refuses --backend dpdk, so none of this runs.
struct dpdk_port::state {};
dpdk_port::dpdk_port(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}
dpdk_port::~dpdk_port() = default;
std::unique_ptr<dpdk_port> dpdk_port::open(const char* prog, const dpdk_options&,
                                           const worker_options&, const stack::stack_config&) {
  std::fprintf(stderr, "%s: %s\n", prog, no_dpdk_message);
  return nullptr;
}
device& dpdk_port::dev() noexcept {
  std::abort();
}
const stack::stack_config& dpdk_port::config() const noexcept {
  std::abort();
}
const std::string& dpdk_port::name() const noexcept {
  std::abort();
}
std::string dpdk_port::describe() const {
  return {};
}
std::string dpdk_port::stats_json() const {
  return {};
}
multi_runtime_options dpdk_port::multi_options(const worker_options& w) {
  return examples::multi_options(w);
}
bool dpdk_port::wait_for_link(const char*, double) const {
  return false;
}
#endif

}  // namespace dpdk_net::examples
