// The one file of the SDK that asks the kernel for randomness (see dpdk_net/os.hpp).
#include <sys/random.h>

#include <cerrno>

#include "dpdk_net/os.hpp"

namespace dpdk_net {

std::error_code fill_random(std::span<std::byte> out) noexcept {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = ::getrandom(out.data() + done, out.size() - done, 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;  // a signal before any byte was produced: ask again
      }
      return {errno, std::generic_category()};
    }
    done += static_cast<std::size_t>(got);
  }
  return {};
}

}  // namespace dpdk_net
