// CPU affinity (see dpdk_net/cpu_affinity.hpp).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "dpdk_net/cpu_affinity.hpp"

namespace dpdk_net {

namespace {

std::vector<unsigned> cores_of(const cpu_set_t& set) {
  std::vector<unsigned> out;
  for (unsigned c = 0; c <= max_core && c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) {
      out.push_back(c);
    }
  }
  return out;
}

/// One core number: digits only, at most max_core.
std::optional<unsigned> parse_core(std::string_view text, std::string_view list,
                                   std::string& error) {
  const auto quoted = [](std::string_view s) { return "\"" + std::string(s) + "\""; };
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    error = "bad core list " + quoted(list) + ": " +
            (text.empty() ? std::string("a core number is missing")
                          : quoted(text) + " is not a core number");
    return std::nullopt;
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > max_core) {
    error = "bad core list " + quoted(list) + ": core " + std::string(text) + " is beyond " +
            std::to_string(max_core);
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<std::vector<unsigned>> parse_core_list(std::string_view text, std::string& error) {
  if (text.empty()) {
    error = "bad core list \"\": it is empty (write cores as 0,2-3)";
    return std::nullopt;
  }
  std::vector<unsigned> cores;
  std::vector<bool> seen(max_core + 1);
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view item = text.substr(start, comma - start);
    const std::size_t dash = item.find('-');
    const auto first = parse_core(item.substr(0, dash), text, error);
    if (!first) {
      return std::nullopt;
    }
    unsigned last = *first;
    if (dash != std::string_view::npos) {
      const auto end = parse_core(item.substr(dash + 1), text, error);
      if (!end) {
        return std::nullopt;
      }
      if (*end < *first) {
        error = "bad core list \"" + std::string(text) + "\": range " + std::string(item) +
                " is reversed";
        return std::nullopt;
      }
      last = *end;
    }
    for (unsigned c = *first; c <= last; ++c) {
      if (seen[c]) {
        error = "bad core list \"" + std::string(text) + "\": core " + std::to_string(c) +
                " appears twice";
        return std::nullopt;
      }
      seen[c] = true;
      cores.push_back(c);
    }
    start = comma + 1;
  }
  return cores;
}

std::string format_core_list(std::span<const unsigned> cores) {
  std::vector<unsigned> sorted(cores.begin(), cores.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) {
      ++j;
    }
    if (!out.empty()) {
      out += ',';
    }
    out += std::to_string(sorted[i]);
    if (j > i) {
      out += '-' + std::to_string(sorted[j]);
    }
    i = j + 1;
  }
  return out;
}

std::vector<unsigned> allowed_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) {
    return {};  // only with more than CPU_SETSIZE cores: beyond what we support
  }
  return cores_of(set);
}

std::string check_cores(std::span<const unsigned> cores) {
  const std::vector<unsigned> allowed = allowed_cores();
  for (unsigned c : cores) {
    if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
      const std::string list = format_core_list(allowed);
      return "core " + std::to_string(c) + " is not one this process may run on (allowed: " + list +
             "): use --cores within " + list + ", or widen the process's affinity: taskset -c " +
             format_core_list(cores) + " ...";
    }
  }
  return {};
}

std::error_code pin_current_thread(unsigned core) {
  if (core > max_core || core >= CPU_SETSIZE) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  const int err = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
  return err == 0 ? std::error_code() : std::error_code(err, std::system_category());
}

std::vector<unsigned> current_thread_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::pthread_getaffinity_np(::pthread_self(), sizeof set, &set) != 0) {
    return {};
  }
  return cores_of(set);
}

}  // namespace dpdk_net
