// What every simulated TCP run must show (shared by the tcp_sim_*_test.cpp files).
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "tcp_sim_app.hpp"

namespace dpdk_net::stack::test {

/// The FNV-1a hash of the first `bytes` of seed's stream, computed here from the generator
/// alone (not from what either end hashed).
inline std::uint64_t stream_hash(std::uint64_t seed, std::uint64_t bytes) {
  const stream_generator g(seed);
  fnv1a64 h;
  std::vector<std::byte> chunk(64 * 1024);
  for (std::uint64_t at = 0; at < bytes; at += chunk.size()) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), bytes - at));
    g.fill(at, std::span(chunk).first(n));
    h.update(std::span(chunk).first(n));
  }
  return h.value();
}

/// Any run: nothing hung, nothing corrupted, the stack broke no rule the app checks.
inline void expect_sound(const transfer_outcome& o) {
  EXPECT_TRUE(o.problems.empty()) << o.describe();
  EXPECT_TRUE(o.finished) << "a connection neither completed nor failed: " << o.describe();
  for (const auto* side : {&o.client, &o.server}) {
    for (const stream_record& r : *side) {
      EXPECT_FALSE(r.first_mismatch) << "CORRUPTED STREAM: " << o.describe();
    }
  }
}

/// The transfer completed intact in every direction it had, and both stacks released every
/// connection afterwards.
inline void expect_intact(const transfer_spec& spec, const transfer_outcome& o) {
  expect_sound(o);
  ASSERT_EQ(o.client.size(), 1U) << o.describe();
  ASSERT_EQ(o.server.size(), 1U) << o.describe();
  const stream_record& c = o.client.front();
  const stream_record& s = o.server.front();
  EXPECT_TRUE(c.complete()) << o.describe();
  EXPECT_TRUE(s.complete()) << o.describe();
  const std::uint64_t upstream = stream_hash(client_stream_seed, spec.bytes);
  EXPECT_EQ(c.sent, spec.bytes);
  EXPECT_EQ(s.received, spec.bytes);
  EXPECT_EQ(c.sent_hash.value(), upstream);
  EXPECT_EQ(s.received_hash.value(), upstream);
  switch (spec.what) {
    case transfer_spec::pattern::upload:
      EXPECT_EQ(c.received, 0U);
      break;
    case transfer_spec::pattern::echo:
      EXPECT_EQ(c.received, spec.bytes);
      EXPECT_EQ(c.received_hash.value(), upstream);
      EXPECT_EQ(s.sent_hash.value(), upstream);
      break;
    case transfer_spec::pattern::both: {
      const std::uint64_t downstream = stream_hash(server_stream_seed, spec.bytes);
      EXPECT_EQ(c.received, spec.bytes);
      EXPECT_EQ(s.sent, spec.bytes);
      EXPECT_EQ(c.received_hash.value(), downstream);
      EXPECT_EQ(s.sent_hash.value(), downstream);
      break;
    }
  }
  EXPECT_TRUE(o.settled) << "connections left behind: " << o.describe();
}

}  // namespace dpdk_net::stack::test
