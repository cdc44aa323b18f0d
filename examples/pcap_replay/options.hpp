// pcap_replay's command line (see usage() in options.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dpdk_net/replay/replay.hpp"

namespace pcap_replay {

enum class app_kind : std::uint8_t { http, echo };
enum class replay_backend : std::uint8_t { sim, pcap, tap };

struct options {
  std::string capture;  ///< the pcap / pcapng to replay
  dpdk_net::replay::replay_config replay;
  app_kind app = app_kind::http;
  std::string out;          ///< --out: the conversation as pcapng
  std::string report;       ///< --report: the JSON report
  bool json = false;        ///< --json: the JSON report on stdout
  double max_seconds = 60;  ///< simulated (live: wall) seconds before giving up
  replay_backend backend = replay_backend::sim;
  std::string iface;       ///< --iface (pcap: an existing interface; tap: the device to create)
  bool have_live = false;  ///< --live given
};

/// Parses argv. Returns -1 to go on, else the exit status (0 after --help, 2 on a bad argument,
/// with the message printed).
int parse(int argc, char** argv, options& out);

}  // namespace pcap_replay
