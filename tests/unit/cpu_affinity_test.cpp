// CPU affinity utilities: core-list parsing and formatting, checking a list against the process's
// affinity, and pinning threads (against the real kernel: whatever cores this process may use).
#include "dpdk_net/cpu_affinity.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace dpdk_net {
namespace {
namespace cpu_affinity_test {

using cores = std::vector<unsigned>;

cores parse_ok(std::string_view text) {
  std::string error;
  const auto parsed = parse_core_list(text, error);
  EXPECT_TRUE(parsed) << text << ": " << error;
  EXPECT_TRUE(!parsed || error.empty()) << error;
  return parsed.value_or(cores{});
}

/// The error for a list that must be refused ("" if it was accepted).
std::string parse_error(std::string_view text) {
  std::string error;
  const auto parsed = parse_core_list(text, error);
  EXPECT_FALSE(parsed) << "\"" << text << "\" was accepted";
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  return parsed ? std::string() : error;
}

TEST(CpuAffinity, ParsesCoreListsAsTasksetWritesThem) {
  EXPECT_EQ(parse_ok("0"), (cores{0}));
  EXPECT_EQ(parse_ok("0,2"), (cores{0, 2}));
  EXPECT_EQ(parse_ok("1-3"), (cores{1, 2, 3}));
  EXPECT_EQ(parse_ok("0,2-3"), (cores{0, 2, 3}));
  EXPECT_EQ(parse_ok("5-5"), (cores{5}));
  EXPECT_EQ(parse_ok("3,1"), (cores{3, 1}));  // the order written
  EXPECT_EQ(parse_ok("1023"), (cores{1023}));
  EXPECT_EQ(parse_ok("1020-1023,0"), (cores{1020, 1021, 1022, 1023, 0}));
}

TEST(CpuAffinity, RefusesBadCoreListsNamingTheProblem) {
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("0,").find("missing"), std::string::npos);
  EXPECT_NE(parse_error(",0").find("missing"), std::string::npos);
  EXPECT_NE(parse_error("0,,1").find("missing"), std::string::npos);
  EXPECT_NE(parse_error("1-").find("missing"), std::string::npos);
  EXPECT_NE(parse_error("-1").find("missing"), std::string::npos);
  EXPECT_NE(parse_error("a").find("\"a\" is not a core number"), std::string::npos);
  EXPECT_NE(parse_error("0, 1").find("\" 1\" is not a core number"), std::string::npos);
  EXPECT_NE(parse_error("+1").find("not a core number"), std::string::npos);
  EXPECT_NE(parse_error("1-2-3").find("\"2-3\" is not a core number"), std::string::npos);
  EXPECT_NE(parse_error("0x1").find("not a core number"), std::string::npos);
  EXPECT_NE(parse_error("3-1").find("range 3-1 is reversed"), std::string::npos);
  EXPECT_NE(parse_error("1,1").find("core 1 appears twice"), std::string::npos);
  EXPECT_NE(parse_error("0-3,2").find("core 2 appears twice"), std::string::npos);
  EXPECT_NE(parse_error("1024").find("core 1024 is beyond 1023"), std::string::npos);
  EXPECT_NE(parse_error("0-1024").find("core 1024 is beyond 1023"), std::string::npos);
  EXPECT_NE(parse_error("99999999999999999999").find("is beyond 1023"), std::string::npos);
  // The message quotes the list it refused.
  EXPECT_NE(parse_error("0,x").find("\"0,x\""), std::string::npos);
}

TEST(CpuAffinity, FormatsCoreListsAndRoundTrips) {
  EXPECT_EQ(format_core_list(cores{0, 1, 3}), "0-1,3");
  EXPECT_EQ(format_core_list(cores{}), "");
  EXPECT_EQ(format_core_list(cores{7}), "7");
  EXPECT_EQ(format_core_list(cores{3, 0, 1, 1}), "0-1,3");  // any order, duplicates once
  EXPECT_EQ(format_core_list(cores{0, 2, 4, 5, 6, 9, 10}), "0,2,4-6,9-10");
  for (const char* text : {"0", "0-1,3", "0,2,4-6,9-10", "1-1023", "5,7,1000-1001"}) {
    const cores parsed = parse_ok(text);
    EXPECT_EQ(format_core_list(parsed), text);
    EXPECT_EQ(parse_ok(format_core_list(parsed)), parsed);
  }
}

TEST(CpuAffinity, ChecksCoresAgainstTheAllowedSet) {
  const cores allowed = allowed_cores();
  ASSERT_FALSE(allowed.empty());
  EXPECT_TRUE(std::is_sorted(allowed.begin(), allowed.end()));
  EXPECT_EQ(check_cores(allowed), "");
  EXPECT_EQ(check_cores(cores{allowed.back()}), "");
  EXPECT_EQ(check_cores(cores{}), "");

  const unsigned outside = allowed.back() + 1;
  const std::string message = check_cores(cores{allowed.front(), outside});
  const std::string list = format_core_list(allowed);
  EXPECT_NE(message.find("core " + std::to_string(outside)), std::string::npos) << message;
  EXPECT_NE(message.find("allowed: " + list), std::string::npos) << message;
  EXPECT_NE(message.find("--cores within " + list), std::string::npos) << message;
  EXPECT_NE(message.find("taskset -c"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(CpuAffinity, ThreadPinsItselfToEachAllowedCore) {
  const cores allowed = allowed_cores();
  const cores main_before = current_thread_affinity();
  EXPECT_EQ(main_before, allowed);
  std::vector<cores> read_back;
  std::vector<std::error_code> errors;
  cores after_bad_pin;
  std::error_code bad_pin;
  std::error_code outside_pin;
  std::thread worker([&]() {
    for (unsigned core : allowed) {
      errors.push_back(pin_current_thread(core));
      read_back.push_back(current_thread_affinity());
    }
    outside_pin = pin_current_thread(max_core);  // a core the machine does not have
    bad_pin = pin_current_thread(max_core + 1);
    after_bad_pin = current_thread_affinity();
  });
  worker.join();
  ASSERT_EQ(read_back.size(), allowed.size());
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    EXPECT_FALSE(errors[i]) << "core " << allowed[i] << ": " << errors[i].message();
    EXPECT_EQ(read_back[i], cores{allowed[i]});
  }
  EXPECT_TRUE(bad_pin == std::errc::invalid_argument) << bad_pin.message();
  if (::sysconf(_SC_NPROCESSORS_CONF) <= max_core) {
    EXPECT_TRUE(outside_pin == std::errc::invalid_argument)
        << outside_pin.message() << ": pinned to core " << max_core
        << ", which this machine does not have";
  }
  EXPECT_EQ(after_bad_pin, cores{allowed.back()});  // a refused pin changes nothing
  // Pinning another thread left the main thread (and the set new threads inherit) alone.
  EXPECT_EQ(current_thread_affinity(), main_before);
  EXPECT_EQ(allowed_cores(), allowed);
}

}  // namespace cpu_affinity_test
}  // namespace
}  // namespace dpdk_net
