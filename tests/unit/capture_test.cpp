// pcapng_writer -> capture_reader round trips (interfaces, directions, snaplen, caps, rotation),
// frame_capture's switch, capture_device (nothing done while off, only accepted tx frames written)
// and the simulator's pcapng traces. Golden files from other writers: capture_reader_test.cpp and
// pytests/test_capture_files.py (tcpdump and scapy read what we write).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "counting_allocator.hpp"
#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/frame_capture.hpp"
#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/sim/network.hpp"

namespace dpdk_net {
namespace {
namespace capture_test {

std::string temp_path(const std::string& name) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("dpdk_net_capture_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::vector<std::byte> frame_bytes(std::size_t n, std::uint8_t seed) {
  std::vector<std::byte> f(n);
  for (std::size_t i = 0; i < n; ++i) {
    f[i] = static_cast<std::byte>((seed + i * 7U) & 0xffU);
  }
  return f;
}

std::vector<capture_interface> two_interfaces(std::uint32_t snaplen = 262144) {
  return {capture_interface{"dev/q0", "first queue", pcap_linktype_ethernet, snaplen},
          capture_interface{"dev/q1", "", pcap_linktype_ethernet, snaplen}};
}

struct read_result {
  std::vector<std::byte> storage;
  std::vector<capture_record> records;
  std::string error;
  bool ok = false;
};

read_result read_back(const std::string& path) {
  read_result r;
  r.ok = read_capture(path, r.storage, r.records, r.error);
  return r;
}

std::vector<std::byte> file_bytes(const std::string& path) {
  std::vector<std::byte> b;
  std::string error;
  EXPECT_TRUE(read_file(path, b, error)) << error;
  return b;
}

packet make_packet(buffer_pool& pool, std::size_t n, std::uint8_t seed) {
  packet p = pool.alloc();
  const auto bytes = frame_bytes(n, seed);
  std::memcpy(p.append(n), bytes.data(), n);
  return p;
}

TEST(CaptureWriter, RoundTripKeepsInterfacesDirectionsTimesAndLengths) {
  const std::string path = temp_path("round_trip.pcapng");
  pcapng_writer w;
  ASSERT_TRUE(w.open(path, two_interfaces(100))) << w.error();
  const auto a = frame_bytes(60, 1);
  const auto b = frame_bytes(150, 2);  // over the snaplen: 100 kept, 150 original
  const auto c = frame_bytes(61, 3);   // odd length: padded to 64 in the file
  EXPECT_TRUE(w.write(0, 1'700'000'000'123'456'789ULL, frame_direction::inbound, a));
  EXPECT_TRUE(w.write(1, 1'700'000'001'000'000'001ULL, frame_direction::outbound, b));
  EXPECT_TRUE(w.write(0, 5, frame_direction::unknown, c, 1000));
  w.set_drops(1, 7, 3);
  w.close(1'700'000'002'000'000'000ULL);
  EXPECT_EQ(w.stats().frames_written, 3U);
  EXPECT_EQ(w.stats().files_opened, 1U);
  EXPECT_EQ(w.stats().bytes_written, std::filesystem::file_size(path));

  const auto bytes = file_bytes(path);
  capture_reader r(bytes);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r.is_pcapng());
  capture_record rec;
  ASSERT_TRUE(r.next(rec)) << r.error();
  ASSERT_EQ(r.interfaces().size(), 2U);
  EXPECT_EQ(r.interfaces()[0].name, "dev/q0");
  EXPECT_EQ(r.interfaces()[0].description, "first queue");
  EXPECT_EQ(r.interfaces()[1].name, "dev/q1");
  EXPECT_EQ(r.interfaces()[1].snaplen, 100U);
  EXPECT_EQ(rec.interface, 0U);
  EXPECT_EQ(rec.timestamp_ns, 1'700'000'000'123'456'789ULL);
  EXPECT_EQ(rec.direction, frame_direction::inbound);
  EXPECT_EQ(rec.original_length, 60U);
  EXPECT_TRUE(std::equal(rec.data.begin(), rec.data.end(), a.begin(), a.end()));
  ASSERT_TRUE(r.next(rec)) << r.error();
  EXPECT_EQ(rec.interface, 1U);
  EXPECT_EQ(rec.timestamp_ns, 1'700'000'001'000'000'001ULL);
  EXPECT_EQ(rec.direction, frame_direction::outbound);
  EXPECT_EQ(rec.original_length, 150U);
  ASSERT_EQ(rec.data.size(), 100U);
  EXPECT_TRUE(std::equal(rec.data.begin(), rec.data.end(), b.begin()));
  ASSERT_TRUE(r.next(rec)) << r.error();
  EXPECT_EQ(rec.timestamp_ns, 5U);
  EXPECT_EQ(rec.direction, frame_direction::unknown);
  EXPECT_EQ(rec.original_length, 1000U);
  EXPECT_EQ(rec.data.size(), 61U);
  EXPECT_FALSE(r.next(rec));
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.interface_drops(1), 7U);  // isb_ifdrop of the closing statistics block
  EXPECT_EQ(r.interface_drops(0), 0U);
}

TEST(CaptureWriter, ChainedPacketsAreWrittenSegmentBySegment) {
  packet_pool pool(packet_pool_config{});
  const std::string path = temp_path("chained.pcapng");
  pcapng_writer w;
  ASSERT_TRUE(w.open(path, two_interfaces(20)));
  packet head = make_packet(pool, 14, 9);
  ASSERT_TRUE(head.chain(make_packet(pool, 30, 40)));
  EXPECT_TRUE(w.write(1, 42, frame_direction::outbound, head));
  w.close(43);
  auto r = read_back(path);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.records.size(), 1U);
  EXPECT_EQ(r.records[0].original_length, 44U);
  ASSERT_EQ(r.records[0].data.size(), 20U);  // snaplen across the segment boundary
  const auto first = frame_bytes(14, 9);
  const auto second = frame_bytes(30, 40);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), r.records[0].data.begin()));
  EXPECT_TRUE(std::equal(second.begin(), second.begin() + 6, r.records[0].data.begin() + 14));
}

TEST(CaptureWriter, SameFramesGiveTheSameBytes) {
  std::vector<std::vector<std::byte>> files;
  for (int run = 0; run < 2; ++run) {
    const std::string path = temp_path("same" + std::to_string(run) + ".pcapng");
    pcapng_writer w;
    ASSERT_TRUE(w.open(path, two_interfaces()));
    for (std::uint8_t i = 0; i < 20; ++i) {
      w.write(i % 2U, 1000U * i, frame_direction::inbound, frame_bytes(60U + i, i));
    }
    w.close(99999);
    files.push_back(file_bytes(path));
  }
  EXPECT_EQ(files[0], files[1]);
}

TEST(CaptureWriter, OneFileStopsAtTheCapAndCountsTheRest) {
  const std::string path = temp_path("capped.pcapng");
  pcapng_writer w;
  capture_limits limits;
  limits.max_file_bytes = 4096;
  ASSERT_TRUE(w.open(path, two_interfaces(), limits)) << w.error();
  std::size_t accepted = 0;
  for (int i = 0; i < 100; ++i) {
    accepted += w.write(0, i, frame_direction::inbound, frame_bytes(100, 1)) ? 1U : 0U;
  }
  w.close(100);
  EXPECT_GT(accepted, 10U);
  EXPECT_LT(accepted, 100U);
  EXPECT_EQ(w.stats().frames_written, accepted);
  EXPECT_EQ(w.stats().frames_over_cap, 100U - accepted);
  EXPECT_EQ(w.stats().files_opened, 1U);
  EXPECT_LE(std::filesystem::file_size(path), 4096U);
  auto r = read_back(path);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.records.size(), accepted);
}

TEST(CaptureWriter, RotationKeepsARingOfCompleteFiles) {
  const std::string path = temp_path("ring.pcapng");
  for (const char* suffix : {"", ".1", ".2", ".3"}) {
    std::filesystem::remove(path + suffix);
  }
  pcapng_writer w;
  capture_limits limits;
  limits.max_file_bytes = 4096;
  limits.max_files = 3;
  ASSERT_TRUE(w.open(path, two_interfaces(), limits)) << w.error();
  const int frames = 200;  // ~150 bytes each: ~25 per file, so the ring wraps
  for (int i = 0; i < frames; ++i) {
    ASSERT_TRUE(w.write(i % 2, std::uint64_t(i), frame_direction::outbound, frame_bytes(120, 5)))
        << i << ": " << w.error();
  }
  w.close(frames);
  EXPECT_EQ(w.stats().frames_written, std::uint64_t(frames));
  EXPECT_EQ(w.stats().frames_over_cap, 0U);
  EXPECT_GT(w.stats().files_opened, 3U);
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  std::size_t total = 0;
  std::uint64_t bytes = 0;
  for (const char* suffix : {"", ".1", ".2"}) {
    ASSERT_TRUE(std::filesystem::exists(path + suffix)) << suffix;
    EXPECT_LE(std::filesystem::file_size(path + suffix), 4096U) << suffix;
    bytes += std::filesystem::file_size(path + suffix);
    auto r = read_back(path + suffix);
    ASSERT_TRUE(r.ok) << suffix << ": " << r.error;  // each a complete pcapng
    EXPECT_GT(r.records.size(), 0U);
    total += r.records.size();
  }
  EXPECT_LT(total, std::size_t(frames));  // the oldest file was overwritten
  EXPECT_LT(bytes, w.stats().bytes_written);
  // The newest file holds the last frames.
  auto newest = read_back(w.current_path());
  ASSERT_TRUE(newest.ok) << newest.error;
  EXPECT_EQ(newest.records.back().timestamp_ns, std::uint64_t(frames - 1));
}

TEST(CaptureWriter, AFrameTooBigForAnyFileIsCountedWithoutRotating) {
  // Rotating for a frame that can never fit would truncate a good file of the ring each time.
  const std::string path = temp_path("oversized.pcapng");
  for (const char* suffix : {"", ".1", ".2"}) {
    std::filesystem::remove(path + suffix);
  }
  pcapng_writer w;
  capture_limits limits;
  limits.max_file_bytes = 4096;
  limits.max_files = 3;
  ASSERT_TRUE(w.open(path, two_interfaces(), limits)) << w.error();
  ASSERT_TRUE(w.write(0, 1, frame_direction::inbound, frame_bytes(60, 1))) << w.error();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(w.write(0, 2 + i, frame_direction::outbound, frame_bytes(5000, 2)));
  }
  w.close(10);
  EXPECT_EQ(w.stats().files_opened, 1U);
  EXPECT_EQ(w.stats().frames_written, 1U);
  EXPECT_EQ(w.stats().frames_over_cap, 3U);
  EXPECT_FALSE(std::filesystem::exists(path + ".1"));
  auto r = read_back(path);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.records.size(), 1U);
  EXPECT_EQ(r.records[0].data.size(), 60U);
}

TEST(CaptureWriter, SnaplenZeroKeepsWholeFrames) {
  // pcapng: an interface snaplen of 0 means no limit (not "keep nothing").
  const std::string path = temp_path("snaplen0.pcapng");
  pcapng_writer w;
  ASSERT_TRUE(w.open(path, two_interfaces(0))) << w.error();
  ASSERT_TRUE(w.write(1, 1, frame_direction::inbound, frame_bytes(1514, 3))) << w.error();
  w.close(2);
  auto r = read_back(path);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.records.size(), 1U);
  EXPECT_EQ(r.records[0].data.size(), 1514U);
  EXPECT_EQ(r.records[0].data[1513], frame_bytes(1514, 3)[1513]);
  // The same through frame_capture's options.
  packet_pool pool(packet_pool_config{});
  frame_capture c;
  capture_options o;
  o.path = temp_path("snaplen0_fc.pcapng");
  o.snaplen = 0;
  std::string error;
  ASSERT_TRUE(c.open(o, two_interfaces(), error)) << error;
  c.record(0, 5, frame_direction::outbound, make_packet(pool, 1000, 4));
  c.close(6);
  r = read_back(o.path);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.records.size(), 1U);
  EXPECT_EQ(r.records[0].data.size(), 1000U);
}

TEST(CaptureWriter, OpenRefusesWhatCannotWork) {
  pcapng_writer w;
  EXPECT_FALSE(w.open(temp_path("none.pcapng"), {}));
  EXPECT_NE(w.error().find("no interfaces"), std::string::npos) << w.error();
  capture_limits tiny;
  tiny.max_file_bytes = 1000;
  EXPECT_FALSE(w.open(temp_path("tiny.pcapng"), two_interfaces(), tiny));
  EXPECT_NE(w.error().find("4096"), std::string::npos) << w.error();
  EXPECT_FALSE(w.open("/nonexistent-dir/x.pcapng", two_interfaces()));
  EXPECT_NE(w.error().find("cannot create"), std::string::npos) << w.error();
  EXPECT_FALSE(w.is_open());
  EXPECT_FALSE(w.write(0, 0, frame_direction::inbound, frame_bytes(60, 0)));
  ASSERT_TRUE(w.open(temp_path("iface.pcapng"), two_interfaces()));
  EXPECT_FALSE(w.write(2, 0, frame_direction::inbound, frame_bytes(60, 0)));
  EXPECT_NE(w.error().find("no interface 2"), std::string::npos) << w.error();
}

TEST(FrameCapture, TheSwitchStartsAndStopsWriting) {
  packet_pool pool(packet_pool_config{});
  frame_capture c;
  capture_options o;
  o.path = temp_path("switch.pcapng");
  o.enabled = false;
  std::string error;
  ASSERT_TRUE(c.open(o, two_interfaces(), error)) << error;
  const packet p = make_packet(pool, 64, 1);
  c.record(0, 1, frame_direction::inbound, p);
  EXPECT_EQ(c.stats().frames_written, 0U);
  c.enable(true);
  c.record(0, 2, frame_direction::inbound, p);
  c.record_bytes(1, 3, frame_direction::outbound, frame_bytes(10, 1), 10);
  c.enable(false);
  c.record(0, 4, frame_direction::inbound, p);
  c.close(5);
  c.enable(true);  // closed: stays off
  EXPECT_FALSE(c.enabled());
  c.record(0, 6, frame_direction::inbound, p);
  EXPECT_EQ(c.stats().frames_written, 2U);
  auto r = read_back(o.path);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.records.size(), 2U);
  EXPECT_EQ(r.records[0].timestamp_ns, 2U);
  EXPECT_EQ(r.records[1].timestamp_ns, 3U);
  EXPECT_EQ(r.records[1].interface, 1U);
}

struct device_fixture {
  memory_link link;
  frame_capture sink;
  std::string path;
  time_ns clock = 1000;
  explicit device_fixture(const std::string& name, bool enabled, std::size_t ring = 256)
      : link(make_config(ring)), path(temp_path(name)) {
    capture_options o;
    o.path = path;
    o.enabled = enabled;
    std::string error;
    EXPECT_TRUE(sink.open(o, capture_device::interfaces_for(link.a().info(), 262144), error))
        << error;
  }
  static memory_link_config make_config(std::size_t ring) {
    memory_link_config c;
    c.ring_size = ring;
    return c;
  }
};

TEST(CaptureDevice, OffDoesNotAllocateOrWrite) {
  device_fixture f("off.pcapng", false);
  capture_device dev(f.link.a(), f.sink, [&f] { return f.clock; });
  const capture_file_stats stats_before = f.sink.stats();
  const auto size_before = std::filesystem::file_size(f.path);
  std::array<packet, 8> burst;
  std::array<packet, 8> got;
  // Warm up (pool caches), then count.
  for (int round = 0; round < 1001; ++round) {
    const std::uint64_t before = test::allocation_count();
    for (packet& p : burst) {
      p = f.link.a().pool().alloc();
      p.append(60);
    }
    const std::size_t sent = dev.tx_burst(0, burst);
    const std::size_t received = f.link.b().rx_burst(0, got);
    for (packet& p : got) {
      p.reset();
    }
    for (packet& p : burst) {
      p.reset();
    }
    // Echo back so the capture device's rx path runs too.
    std::size_t back = 0;
    for (std::size_t i = 0; i < received; ++i) {
      got[i] = f.link.b().pool().alloc();
      got[i].append(60);
      ++back;
    }
    f.link.b().tx_burst(0, std::span<packet>(got.data(), back));
    const std::size_t n = dev.rx_burst(0, burst);
    for (std::size_t i = 0; i < n; ++i) {
      burst[i].reset();
    }
    if (round > 0) {
      ASSERT_EQ(test::allocation_count(), before) << "round " << round;
    }
    ASSERT_EQ(sent, burst.size());
    ASSERT_EQ(n, burst.size());
  }
  EXPECT_EQ(f.sink.stats().frames_written, 0U);
  EXPECT_EQ(f.sink.stats().bytes_written, stats_before.bytes_written);
  EXPECT_EQ(std::filesystem::file_size(f.path), size_before);
  f.sink.close(1);
  auto r = read_back(f.path);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.records.empty());
}

TEST(CaptureDevice, OnWritesWhatWasSeenAndDeclinedFramesOnlyWhenSent) {
  device_fixture f("on.pcapng", true, 4);  // b's rx ring holds 4: a's tx_burst declines more
  capture_device dev(f.link.a(), f.sink, [&f] { return f.clock; });
  std::array<packet, 6> burst;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    burst[i] = make_packet(f.link.a().pool(), 60 + i, static_cast<std::uint8_t>(i));
  }
  f.clock = 2000;
  const std::size_t sent = dev.tx_burst(0, burst);
  ASSERT_EQ(sent, 4U);
  EXPECT_EQ(f.sink.stats().frames_written, 4U);  // the 2 declined ones are not written
  std::array<packet, 8> got;
  ASSERT_EQ(f.link.b().rx_burst(0, got), 4U);
  for (packet& p : got) {
    p.reset();
  }
  f.clock = 3000;
  ASSERT_EQ(dev.tx_burst(0, std::span<packet>(burst).subspan(4)), 2U);  // now they go
  EXPECT_EQ(f.sink.stats().frames_written, 6U);
  ASSERT_EQ(f.link.b().rx_burst(0, got), 2U);
  // And two frames the other way.
  EXPECT_EQ(f.link.b().tx_burst(0, std::span<packet>(got).first(2)), 2U);
  f.clock = 4000;
  std::array<packet, 8> in;
  EXPECT_EQ(dev.rx_burst(0, in), 2U);
  for (packet& p : in) {
    p.reset();
  }
  dev.publish_drops();
  f.sink.close(5000);
  auto r = read_back(f.path);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.records.size(), 8U);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.records[i].direction, frame_direction::outbound) << i;
    EXPECT_EQ(r.records[i].data.size(), 60U + i) << i;  // in the order they were sent
    const auto expect = frame_bytes(60 + i, static_cast<std::uint8_t>(i));
    EXPECT_TRUE(std::equal(expect.begin(), expect.end(), r.records[i].data.begin())) << i;
    EXPECT_EQ(r.records[i].timestamp_ns, i < 4 ? 2000U : 3000U) << i;
  }
  EXPECT_EQ(r.records[6].direction, frame_direction::inbound);
  EXPECT_EQ(r.records[7].timestamp_ns, 4000U);
  ASSERT_EQ(capture_device::interfaces_for(f.link.a().info(), 100).size(), 1U);
  EXPECT_EQ(capture_device::interfaces_for(f.link.a().info(), 100)[0].name,
            f.link.a().info().name + "/q0");
}

/// Two hosts, one frame each way, host a's NIC captured; returns the file's bytes.
std::vector<std::byte> sim_capture(std::uint64_t seed, const std::string& path,
                                   std::uint16_t queues) {
  sim::network net(seed);
  sim::host& ha = net.add_host("a");
  sim::host& hb = net.add_host("b");
  sim::nic_config nc;
  nc.queues = queues;
  sim::sim_nic& na = net.add_nic(ha, nc);
  sim::sim_nic& nb = net.add_nic(hb);
  net.connect(na, nb);
  std::string error;
  EXPECT_TRUE(net.capture(na, path, error)) << error;
  net.run_for(1'000'000);
  for (std::uint16_t q = 0; q < queues; ++q) {
    packet p = make_packet(na.tx_pool(q), 60, static_cast<std::uint8_t>(q));
    EXPECT_EQ(na.tx_burst(q, std::span<packet>(&p, 1)), 1U);
  }
  net.run_for(1'000'000);
  packet back = make_packet(nb.tx_pool(0), 70, 99);
  EXPECT_EQ(nb.tx_burst(0, std::span<packet>(&back, 1)), 1U);
  net.run_for(1'000'000);
  std::array<packet, 4> drain;
  for (std::uint16_t q = 0; q < queues; ++q) {
    na.rx_burst(q, drain);
    for (packet& p : drain) {
      p.reset();
    }
  }
  nb.rx_burst(0, drain);
  for (packet& p : drain) {
    p.reset();
  }
  net.end_capture(na);
  return file_bytes(path);
}

TEST(SimCapture, WritesPcapngWithQueuesDirectionsAndVirtualTime) {
  const std::string path = temp_path("sim.pcapng");
  const auto bytes = sim_capture(7, path, 2);
  capture_reader r(bytes);
  std::vector<capture_record> recs;
  capture_record rec;
  while (r.next(rec)) {
    recs.push_back(rec);
  }
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r.interfaces().size(), 2U);
  EXPECT_EQ(r.interfaces()[0].name, "a.eth0/q0");
  EXPECT_EQ(r.interfaces()[1].name, "a.eth0/q1");
  ASSERT_EQ(recs.size(), 3U);
  EXPECT_EQ(recs[0].direction, frame_direction::outbound);
  EXPECT_EQ(recs[0].interface, 0U);
  EXPECT_EQ(recs[1].direction, frame_direction::outbound);
  EXPECT_EQ(recs[1].interface, 1U);  // the queue it was sent on
  EXPECT_EQ(recs[2].direction, frame_direction::inbound);
  EXPECT_EQ(recs[2].data.size(), 70U);
  EXPECT_EQ(recs[0].timestamp_ns, 1'000'000U);  // simulated time, not the wall clock
  EXPECT_GE(recs[2].timestamp_ns, 2'000'000U);
  EXPECT_LT(recs[2].timestamp_ns, 3'000'000U);
}

TEST(SimCapture, TheSameSeedGivesTheSameFile) {
  const auto one = sim_capture(11, temp_path("sim1.pcapng"), 1);
  const auto two = sim_capture(11, temp_path("sim2.pcapng"), 1);
  EXPECT_GT(one.size(), 100U);
  EXPECT_EQ(one, two);
}

}  // namespace capture_test
}  // namespace
}  // namespace dpdk_net
