// DPDK's Environment Abstraction Layer: started once per process, from a typed configuration or
// from raw EAL arguments (an application's --eal "..." string), and the registration of the
// threads that drive ports so that mempool caches and lcore ids work on them.
//
// No DPDK header here: applications need neither DPDK's include paths nor its -march flags.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dpdk_net::dpdk {

/// What rte_eal_init is given. Every field has the documented EAL option next to it; what a
/// field leaves empty is left to the EAL's own default.
struct eal_config {
  std::string program = "dpdk_net";  ///< argv[0]
  /// -l: the lcores (e.g. "0" or "2-3"). Empty: the first core this thread may run on. The
  /// threads of a multi_runtime register as lcores of their own (eal::register_thread), so this
  /// needs only the main lcore.
  std::string lcores;
  std::vector<std::string> vdevs;  ///< --vdev, e.g. "net_memif0,role=server,socket=/tmp/m.sock"
  std::vector<std::string> allow;  ///< -a, PCI addresses of NICs bound to vfio-pci
  bool pci = true;                 ///< false: --no-pci (virtual devices only)
  bool telemetry = true;           ///< false: --no-telemetry (no telemetry socket)
  /// false: --no-huge (memory from the process heap: slower, but needs no hugepages). 22.11
  /// refuses --no-huge together with --in-memory.
  bool hugepages = true;
  bool in_memory = false;  ///< --in-memory: no runtime files, no sharing with other processes
  /// -m, MiB of memory to reserve (0: the EAL's default; with --no-huge, 256).
  unsigned memory_mb = 0;
  /// --file-prefix, the name of this process's runtime files and hugepage files. Empty:
  /// "dpdk_net_<pid>", so two processes never share one by accident.
  std::string file_prefix;
  std::string log_level;           ///< --log-level, e.g. "lib.eal:error"; empty: EAL default
  std::vector<std::string> extra;  ///< raw arguments, appended last (an application's --eal)
  /// Give the calling thread its CPU affinity back after rte_eal_init (which pins it to its
  /// lcore): a multi_runtime then pins its workers to the cores it is told, not inside the EAL's.
  bool keep_affinity = true;
};

/// The argument vector eal_config c stands for (argv[0] first). Empty, with `error` naming the
/// conflict, for a configuration the EAL would refuse (--no-huge with --in-memory).
[[nodiscard]] std::vector<std::string> eal_arguments(const eal_config& c, std::string& error);

/// Splits an "--eal" string at whitespace (no quoting: EAL arguments hold no spaces).
[[nodiscard]] std::vector<std::string> split_eal_string(std::string_view text);

/// The EAL: initialised once per process.
class eal {
 public:
  /// Runs rte_eal_init with args (args[0] is the program name). Returns an empty string on success,
  /// else a message that names the fix (hugepages, permissions, a second init, a bad argument).
  static std::string init(const std::vector<std::string>& args);
  /// The same from a typed configuration (eal_arguments), keeping the calling thread's affinity
  /// if c.keep_affinity.
  static std::string init(const eal_config& c);
  [[nodiscard]] static bool initialized() noexcept;
  /// rte_eal_cleanup; after it the process cannot use DPDK again.
  static void cleanup() noexcept;

  /// Makes the calling (non-EAL) thread an lcore (rte_thread_register): a thread that drives a
  /// port's queue should be one, or its mempool operations bypass the per-lcore caches. Returns
  /// an empty string, or why not (EAL not started, no lcore id left). Idempotent.
  static std::string register_thread();
  /// Gives the calling thread's lcore id back (at the end of a worker thread).
  static void unregister_thread() noexcept;
  /// The calling thread's lcore id, or -1 if it has none.
  [[nodiscard]] static int lcore_id() noexcept;
  /// Where the EAL keeps runtime files for a prefix: /var/run/dpdk/<prefix> (as root).
  [[nodiscard]] static std::string runtime_dir(const std::string& file_prefix);
};

}  // namespace dpdk_net::dpdk
