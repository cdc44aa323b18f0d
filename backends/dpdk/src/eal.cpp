#include "dpdk_net/dpdk/eal.hpp"

#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cctype>

#include "dpdk_net/cpu_affinity.hpp"

namespace dpdk_net::dpdk {

namespace {
std::atomic<bool> g_eal_ready{false};
}  // namespace

std::vector<std::string> eal_arguments(const eal_config& c, std::string& error) {
  error.clear();
  if (!c.hugepages && c.in_memory) {
    error =
        "EAL: --no-huge and --in-memory cannot be combined in DPDK 22.11 (fix: drop one; "
        "--no-huge needs no hugepages, --in-memory needs them but leaves no runtime files)";
    return {};
  }
  std::vector<std::string> a{c.program.empty() ? std::string("dpdk_net") : c.program};
  std::string lcores = c.lcores;
  if (lcores.empty()) {
    const std::vector<unsigned> allowed = allowed_cores();
    lcores = std::to_string(allowed.empty() ? 0U : allowed.front());
  }
  a.insert(a.end(), {"-l", lcores});
  for (const std::string& v : c.vdevs) {
    a.push_back("--vdev=" + v);
  }
  for (const std::string& p : c.allow) {
    a.insert(a.end(), {"-a", p});
  }
  if (!c.pci) {
    a.emplace_back("--no-pci");
  }
  if (!c.telemetry) {
    a.emplace_back("--no-telemetry");
  }
  if (!c.hugepages) {
    a.emplace_back("--no-huge");
  }
  if (c.in_memory) {
    a.emplace_back("--in-memory");
  }
  const unsigned mb = c.memory_mb != 0 ? c.memory_mb : (c.hugepages ? 0U : 256U);
  if (mb != 0) {
    a.insert(a.end(), {"-m", std::to_string(mb)});
  }
  a.push_back("--file-prefix=" +
              (c.file_prefix.empty() ? "dpdk_net_" + std::to_string(::getpid()) : c.file_prefix));
  if (!c.log_level.empty()) {
    a.push_back("--log-level=" + c.log_level);
  }
  a.insert(a.end(), c.extra.begin(), c.extra.end());
  return a;
}

std::vector<std::string> split_eal_string(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) {
      ++i;
    }
    const std::size_t start = i;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0) {
      ++i;
    }
    if (i > start) {
      out.emplace_back(text.substr(start, i - start));
    }
  }
  return out;
}

std::string eal::init(const std::vector<std::string>& args) {
  if (g_eal_ready.load()) {
    return "DPDK EAL is already initialised in this process (rte_eal_init runs once per process)";
  }
  if (::geteuid() != 0) {
    // Without root the EAL fails deep inside (hugepage files, /dev/vfio, /var/run/dpdk) with a
    // message that does not say why; say it first.
    return "DPDK needs root here (hugepages, /var/run/dpdk, /dev/vfio): run it as root "
           "(sudo)";
  }
  std::vector<std::string> copy = args;
  if (copy.empty()) {
    copy.emplace_back("dpdk_net");
  }
  std::vector<char*> argv;
  for (std::string& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(copy.size()), argv.data());
  if (rc < 0) {
    const int err = rte_errno;
    std::string msg = "rte_eal_init failed: ";
    msg += rte_strerror(err);
    if (err == EACCES) {
      msg += " (run as root, or give the process access to hugepages and /dev/vfio)";
    } else if (err == ENOMEM) {
      msg +=
          " (no hugepages: reserve them with scripts/setup.sh, or pass --no-huge -m 256; the "
          "EAL log above names the pool it could not fill)";
    } else if (err == EALREADY) {
      msg += " (already initialised in this process)";
    } else if (err == EINVAL) {
      msg += " (an EAL argument is wrong: see the EAL log above)";
    } else if (err == EEXIST || err == EBUSY) {
      msg += " (another process uses this --file-prefix: give each process its own)";
    }
    return msg;
  }
  g_eal_ready.store(true);
  return {};
}

std::string eal::init(const eal_config& c) {
  std::string error;
  const std::vector<std::string> args = eal_arguments(c, error);
  if (!error.empty()) {
    return error;
  }
  cpu_set_t before;
  CPU_ZERO(&before);
  const bool saved =
      c.keep_affinity && pthread_getaffinity_np(pthread_self(), sizeof before, &before) == 0;
  std::string result = init(args);
  if (result.empty() && saved) {
    (void)pthread_setaffinity_np(pthread_self(), sizeof before, &before);
  }
  return result;
}

bool eal::initialized() noexcept {
  return g_eal_ready.load();
}

void eal::cleanup() noexcept {
  if (g_eal_ready.exchange(false)) {
    rte_eal_cleanup();
  }
}

std::string eal::register_thread() {
  if (!initialized()) {
    return "DPDK EAL is not initialised: call dpdk_net::dpdk::eal::init first";
  }
  if (rte_lcore_id() != LCORE_ID_ANY) {
    return {};  // an EAL thread, or registered already
  }
  if (rte_thread_register() != 0) {
    const int err = rte_errno;
    return std::string("rte_thread_register: ") + rte_strerror(err) +
           (err == ENOMEM ? " (no lcore id left: RTE_MAX_LCORE is " +
                                std::to_string(RTE_MAX_LCORE) + "; give -l fewer lcores)"
                          : std::string(" (multi-process is in use: a secondary process is "
                                        "attached, and then threads cannot register)"));
  }
  return {};
}

void eal::unregister_thread() noexcept {
  if (initialized() && rte_lcore_id() != LCORE_ID_ANY &&
      rte_eal_lcore_role(rte_lcore_id()) == ROLE_NON_EAL) {
    rte_thread_unregister();
  }
}

int eal::lcore_id() noexcept {
  const unsigned id = rte_lcore_id();
  return id == LCORE_ID_ANY ? -1 : static_cast<int>(id);
}

std::string eal::runtime_dir(const std::string& file_prefix) {
  return "/var/run/dpdk/" + file_prefix;
}

}  // namespace dpdk_net::dpdk
