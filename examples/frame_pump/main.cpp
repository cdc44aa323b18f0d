// frame_pump: pushes Ethernet frames through an in-memory device pair and verifies every one.
//
// The most complete end-to-end path the SDK has until the stack lands: allocate from the sender's
// pool, build frames in place, send in bursts over several queues (retrying what a full ring
// declines), receive on the peer, check each frame's sequence number and payload, free in bursts.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/memory_device.hpp"

namespace {

using namespace dpdk_net;

constexpr std::uint16_t experimental_ethertype = 0x88b5;  // IEEE 802 local experimental
constexpr std::size_t header_len = 14 + 8;                // Ethernet + 64-bit sequence number

struct options {
  std::uint64_t frames = 1'000'000;
  std::uint16_t queues = 2;
  std::size_t ring = 256;
  std::size_t burst = 32;
  std::size_t size = 64;
  bool json = false;
};

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: frame_pump [--frames N] [--queues Q] [--ring R] [--burst B] [--size S] "
               "[--json]\n"
               "  Sends N Ethernet frames of S bytes (%zu..1514) from one end of an in-memory\n"
               "  device pair to the other over Q queues, in bursts of B (1..%zu), through rx\n"
               "  rings of R frames, and verifies every frame received.\n",
               header_len, max_burst);
}

bool parse_number(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || v > (max - static_cast<std::uint64_t>(c - '0')) / 10) {
      return false;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v < min || v > max) {
    return false;
  }
  out = v;
  return true;
}

int parse_args(int argc, char** argv, options& opt) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if (arg == "--json") {
      opt.json = true;
      continue;
    }
    struct numeric {
      std::string_view name;
      std::uint64_t min, max;
      std::uint64_t* value;
    };
    std::uint64_t queues = opt.queues, ring = opt.ring, burst = opt.burst, size = opt.size;
    const numeric table[] = {{"--frames", 1, 1'000'000'000, &opt.frames},
                             {"--queues", 1, 16, &queues},
                             {"--ring", 1, 65536, &ring},
                             {"--burst", 1, max_burst, &burst},
                             {"--size", header_len, 1514, &size}};
    bool matched = false;
    for (const numeric& n : table) {
      if (arg == n.name) {
        if (i + 1 >= argc || !parse_number(argv[i + 1], n.min, n.max, *n.value)) {
          std::fprintf(stderr, "frame_pump: %s needs a whole number from %llu to %llu\n", argv[i],
                       static_cast<unsigned long long>(n.min),
                       static_cast<unsigned long long>(n.max));
          return 2;
        }
        ++i;
        matched = true;
      }
    }
    if (!matched) {
      std::fprintf(stderr, "frame_pump: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
    opt.queues = static_cast<std::uint16_t>(queues);
    opt.ring = ring;
    opt.burst = burst;
    opt.size = size;
  }
  return -1;
}

void put_u64(std::byte* at, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    at[i] = static_cast<std::byte>(v & 0xffU);
    v >>= 8U;
  }
}
std::uint64_t get_u64(const std::byte* at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8U) | static_cast<std::uint64_t>(at[i]);
  }
  return v;
}
std::byte pattern(std::uint64_t seq, std::size_t i) {
  return static_cast<std::byte>((seq * 31 + i) & 0xffU);
}

/// Builds frame `seq` in place; false if the buffer is too small (cannot happen with the defaults).
bool build_frame(packet& p, const device_info& from, const device_info& to, std::uint64_t seq,
                 std::size_t size) {
  std::byte* d = p.append(size);
  if (d == nullptr) {
    return false;
  }
  std::memcpy(d, to.mac.bytes.data(), 6);
  std::memcpy(d + 6, from.mac.bytes.data(), 6);
  d[12] = static_cast<std::byte>(experimental_ethertype >> 8U);
  d[13] = static_cast<std::byte>(experimental_ethertype & 0xffU);
  put_u64(d + 14, seq);
  for (std::size_t i = header_len; i < size; ++i) {
    d[i] = pattern(seq, i);
  }
  return true;
}

/// True if the frame is a well-formed frame of this run (addressed to `self`, right payload).
bool verify_frame(const packet& p, const device_info& self, std::size_t size, std::uint64_t& seq) {
  const auto d = p.front();
  if (p.length() != size || d.size() != size ||
      std::memcmp(d.data(), self.mac.bytes.data(), 6) != 0 ||
      d[12] != static_cast<std::byte>(experimental_ethertype >> 8U)) {
    return false;
  }
  seq = get_u64(d.data() + 14);
  for (std::size_t i = header_len; i < size; ++i) {
    if (d[i] != pattern(seq, i)) {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (const int rc = parse_args(argc, argv, opt); rc >= 0) {
    return rc;
  }

  memory_link_config config;
  config.queues = opt.queues;
  config.ring_size = opt.ring;
  config.pool_size = opt.queues * (opt.ring + 2 * max_burst);
  memory_link link(config);
  device& tx_dev = link.a();
  device& rx_dev = link.b();

  std::vector<std::vector<packet>> pending(opt.queues);  // declined by a full ring, to retry
  std::vector<std::uint64_t> next_expected(opt.queues, 0);
  std::vector<packet> burst(opt.burst);
  std::uint64_t next_seq = 0, received = 0, verified = 0, bad = 0, out_of_order = 0;
  std::uint64_t pool_empty = 0, retries = 0;
  std::vector<std::uint64_t> per_queue(opt.queues, 0);

  const auto start = std::chrono::steady_clock::now();
  while (received < opt.frames) {
    for (std::uint16_t q = 0; q < opt.queues; ++q) {
      // Send: first what the ring declined last time, then fresh frames (round-robin by sequence).
      std::vector<packet>& retry = pending[q];
      if (!retry.empty()) {
        const std::size_t n = tx_dev.tx_burst(q, retry);
        retries += retry.size();
        retry.erase(retry.begin(), retry.begin() + static_cast<std::ptrdiff_t>(n));
      }
      if (retry.empty() && next_seq < opt.frames) {
        const std::size_t want = std::min<std::uint64_t>(opt.burst, opt.frames - next_seq);
        const std::size_t got = tx_dev.tx_pool(q).alloc_burst(std::span(burst.data(), want));
        if (got < want) {
          ++pool_empty;
        }
        for (std::size_t i = 0; i < got; ++i) {
          build_frame(burst[i], tx_dev.info(), rx_dev.info(), next_seq++, opt.size);
        }
        const std::size_t sent = tx_dev.tx_burst(q, std::span(burst.data(), got));
        for (std::size_t i = sent; i < got; ++i) {
          retry.push_back(std::move(burst[i]));
        }
      }
      // Receive and verify.
      std::array<packet, max_burst> in;
      const std::size_t n = rx_dev.rx_burst(q, std::span(in.data(), opt.burst));
      for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t seq = 0;
        if (verify_frame(in[i], rx_dev.info(), opt.size, seq)) {
          ++verified;
          if (seq < next_expected[q]) {
            ++out_of_order;
          }
          next_expected[q] = seq + 1;
        } else {
          ++bad;
        }
      }
      received += n;
      per_queue[q] += n;
      free_burst(std::span(in.data(), n));
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const device_stats tx_stats = tx_dev.stats();
  const device_stats rx_stats = rx_dev.stats();
  const bool ok = verified == opt.frames && bad == 0 && out_of_order == 0 &&
                  link.a().pool().available() == link.a().pool().capacity();
  if (opt.json) {
    std::printf(
        "{\"frames\": %llu, \"received\": %llu, \"verified\": %llu, \"bad\": %llu, "
        "\"out_of_order\": %llu, \"queues\": %u, \"frame_size\": %zu, "
        "\"tx_packets\": %llu, \"tx_bytes\": %llu, \"rx_packets\": %llu, "
        "\"tx_busy\": %llu, \"retried\": %llu, \"pool_empty\": %llu, "
        "\"pool_available\": %zu, \"pool_capacity\": %zu, \"per_queue\": [",
        static_cast<unsigned long long>(opt.frames), static_cast<unsigned long long>(received),
        static_cast<unsigned long long>(verified), static_cast<unsigned long long>(bad),
        static_cast<unsigned long long>(out_of_order), opt.queues, opt.size,
        static_cast<unsigned long long>(tx_stats.tx_packets),
        static_cast<unsigned long long>(tx_stats.tx_bytes),
        static_cast<unsigned long long>(rx_stats.rx_packets),
        static_cast<unsigned long long>(tx_stats.tx_busy), static_cast<unsigned long long>(retries),
        static_cast<unsigned long long>(pool_empty), link.a().pool().available(),
        link.a().pool().capacity());
    for (std::uint16_t q = 0; q < opt.queues; ++q) {
      std::printf("%s%llu", q == 0 ? "" : ", ", static_cast<unsigned long long>(per_queue[q]));
    }
    std::printf("], \"seconds\": %.6f, \"ok\": %s}\n", seconds, ok ? "true" : "false");
  } else {
    std::printf("frame_pump: %s -> %s over %u queue(s), %zu-byte frames, bursts of %zu\n",
                tx_dev.info().name.c_str(), rx_dev.info().name.c_str(), opt.queues, opt.size,
                opt.burst);
    std::printf(
        "  sent      %llu frames, %llu bytes (%llu offers declined by a full ring, then retried)\n",
        static_cast<unsigned long long>(tx_stats.tx_packets),
        static_cast<unsigned long long>(tx_stats.tx_bytes),
        static_cast<unsigned long long>(tx_stats.tx_busy));
    std::printf("  received  %llu frames; verified %llu, corrupt %llu, out of order %llu\n",
                static_cast<unsigned long long>(rx_stats.rx_packets),
                static_cast<unsigned long long>(verified), static_cast<unsigned long long>(bad),
                static_cast<unsigned long long>(out_of_order));
    std::printf("  per queue");
    for (std::uint16_t q = 0; q < opt.queues; ++q) {
      std::printf(" q%u=%llu", q, static_cast<unsigned long long>(per_queue[q]));
    }
    std::printf("\n  pool      %zu/%zu buffers free at the end (no leak)\n",
                link.a().pool().available(), link.a().pool().capacity());
    std::printf("  rate      %.2f Mframes/s (%.1f ns/frame, one core, send+receive+verify)\n",
                static_cast<double>(received) / seconds / 1e6,
                seconds * 1e9 / static_cast<double>(received));
    std::printf("  result    %s\n", ok ? "OK" : "FAILED");
  }
  return ok ? 0 : 1;
}
