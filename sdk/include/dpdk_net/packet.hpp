// Packet buffers: one move-only handle over a chain of buffer segments.
//
// A `segment` is the descriptor of one buffer (the analogue of an rte_mbuf). It lives either in a
// preallocated `packet_pool` (simulator, TAP, pcap, in-memory devices) or in the private area of a
// DPDK mbuf, where the DPDK backend keeps it in step with the mbuf at the rx/tx boundary (zero
// copy). A `packet` owns a chain of segments: the head segment carries the total length, the
// segment count and the metadata; the others carry only data.
//
// Ownership rules (see docs/architecture.md, "Who owns and frees what"):
//  * A packet owns every segment in its chain. Destroying or reset()ing it returns each segment to
//    the pool named in `segment::pool`; a segment never outlives its pool.
//  * Moving a packet moves ownership; a moved-from packet is empty and frees nothing.
//  * release() hands the raw chain to the caller (a backend about to give it to hardware); adopt()
//    takes it back. Between the two, the backend is the owner.
//  * chain(tail) moves tail's segments to the end of this packet; tail becomes empty.
//  * A segment attached to an `external_buffer` holds one reference to it; the buffer's release
//    hook runs when the last reference is dropped. The data is never copied and never freed by the
//    pool.
//  * Packets and pools are single-threaded: a packet is used on the thread (core) of its pool.
//
// Misuse that is detected (counted in the pool's stats and ignored, never a corrupted free list):
//  * every build: freeing a segment that is free right now (double_frees) -- a second free of the
//    same chain before anyone re-allocated it; freeing a segment of another pool (foreign_frees).
//  * builds with DPDK_NET_SEGMENT_GENERATIONS (the dev, asan and ci presets: a Debug build or
//    sanitizers): freeing through a stale packet handle (stale_frees) -- a handle adopt()ed from a
//    chain that has been freed and re-allocated since. The pools are LIFO, so a freed buffer is
//    usually the very next one handed out, and without the tag that second free would silently
//    return the new owner's live buffer. Each allocation bumps the segment's generation; a packet
//    remembers the generation of its head; a destroy, reset() or free_burst() whose generation no
//    longer matches frees nothing (the chain now belongs to someone else) and counts.
// Not detected: a stale raw segment* handed to free_bulk()/free_chain() after re-allocation (raw
// pointers carry no generation), use of a data pointer kept past the free (pool memory is not
// poisoned), and a stale inner segment of a chain whose head is live.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>

namespace dpdk_net {

class buffer_pool;

/// Checksum verdict from a device that validated it in hardware (or the simulator).
enum class checksum_status : std::uint8_t {
  unknown,  ///< not checked by the device: software must verify
  good,     ///< the device verified it
  bad,      ///< the device found it wrong
};

/// Transmit offloads requested for one packet (honoured only if the device advertises them).
struct tx_offload_request {
  static constexpr std::uint8_t ipv4_checksum = 1U << 0U;
  static constexpr std::uint8_t tcp_checksum = 1U << 1U;
  static constexpr std::uint8_t udp_checksum = 1U << 2U;
  static constexpr std::uint8_t tcp_segmentation = 1U << 3U;

  std::uint8_t flags = 0;
  std::uint8_t l2_len = 0;    ///< Ethernet (+VLAN) header length
  std::uint8_t l3_len = 0;    ///< IP header length
  std::uint8_t l4_len = 0;    ///< TCP header length (for segmentation)
  std::uint16_t tso_mss = 0;  ///< payload bytes per segment for segmentation
};

/// Per-packet metadata, kept in the head segment.
struct packet_meta {
  std::uint64_t rx_timestamp_ns = 0;  ///< device or simulated time of reception; 0 = unknown
  std::uint32_t rss_hash = 0;         ///< valid only if rss_hash_valid
  std::uint16_t queue = 0;            ///< rx queue it arrived on
  bool rss_hash_valid = false;
  checksum_status ip_checksum = checksum_status::unknown;
  checksum_status l4_checksum = checksum_status::unknown;
  tx_offload_request tx{};
};

/// Memory owned outside any pool (an application buffer, a TCP send buffer) that segments can
/// point into without copying. Reference counted; single-threaded like everything else here.
struct external_buffer {
  using release_fn = void (*)(external_buffer& buffer, void* context) noexcept;

  std::byte* data = nullptr;
  std::size_t size = 0;
  std::uint32_t references = 1;  ///< the creator's reference + one per attached segment
  release_fn on_release = nullptr;
  void* context = nullptr;

  void add_reference() noexcept { ++references; }
  /// Drops one reference; runs on_release when it was the last.
  void drop_reference() noexcept {
    if (--references == 0 && on_release != nullptr) {
      on_release(*this, context);
    }
  }
};

/// Descriptor of one buffer. Backends read and write it directly; applications use `packet`.
struct segment {
  enum class state : std::uint8_t { free, in_use };

  std::byte* buf = nullptr;        ///< start of the buffer memory
  std::uint32_t buf_len = 0;       ///< size of the buffer memory
  std::uint32_t data_off = 0;      ///< offset of the first data byte (= headroom)
  std::uint32_t data_len = 0;      ///< data bytes in this segment
  std::uint32_t generation = 0;    ///< bumped by every allocation (stale-handle detection)
  segment* next = nullptr;         ///< next segment of the same packet
  buffer_pool* pool = nullptr;     ///< where this descriptor goes back when freed
  void* native = nullptr;          ///< backend handle (an rte_mbuf*), null for packet_pool buffers
  external_buffer* ext = nullptr;  ///< set when buf points into an external buffer

  // Head segment only.
  segment* last = nullptr;     ///< last segment of the chain (O(1) append)
  std::uint32_t pkt_len = 0;   ///< total data bytes over the chain
  std::uint16_t nb_segs = 1;   ///< segments in the chain
  state status = state::free;  ///< guards against double free and use of free descriptors
  packet_meta meta{};

  [[nodiscard]] std::byte* data() const noexcept { return buf + data_off; }
  [[nodiscard]] std::uint32_t headroom() const noexcept { return data_off; }
  [[nodiscard]] std::uint32_t tailroom() const noexcept { return buf_len - data_off - data_len; }
};

namespace detail {
/// The generation a packet handle took its head at (see "Misuse that is detected" above). Empty,
/// and free of cost, unless DPDK_NET_SEGMENT_GENERATIONS is defined; the definition is a PUBLIC
/// compile definition of the dpdk_net target, so every user of a library agrees on the layout.
#if defined(DPDK_NET_SEGMENT_GENERATIONS)
struct generation_tag {
  std::uint32_t value = 0;
  void take(const segment* s) noexcept { value = s != nullptr ? s->generation : 0; }
  [[nodiscard]] bool matches(const segment* s) const noexcept { return s->generation == value; }
};
#else
struct generation_tag {
  void take(const segment* /*s*/) noexcept {}
  [[nodiscard]] bool matches(const segment* /*s*/) const noexcept { return true; }
};
#endif
}  // namespace detail

/// True when packet handles carry a generation tag (DPDK_NET_SEGMENT_GENERATIONS).
#if defined(DPDK_NET_SEGMENT_GENERATIONS)
inline constexpr bool segment_generations = true;
#else
inline constexpr bool segment_generations = false;
#endif

/// Move-only owner of a segment chain. An empty packet (no segments) is falsy.
class packet {
 public:
  packet() noexcept = default;
  /// Takes ownership of a chain whose head fields (last, pkt_len, nb_segs) are consistent.
  static packet adopt(segment* head) noexcept { return packet(head); }

  packet(packet&& other) noexcept : head_(other.head_), tag_(other.tag_) { other.head_ = nullptr; }
  packet& operator=(packet&& other) noexcept {
    if (this != &other) {
      reset();
      head_ = other.head_;
      tag_ = other.tag_;
      other.head_ = nullptr;
    }
    return *this;
  }
  packet(const packet&) = delete;
  packet& operator=(const packet&) = delete;
  ~packet() { reset(); }

  [[nodiscard]] explicit operator bool() const noexcept { return head_ != nullptr; }
  [[nodiscard]] segment* head() const noexcept { return head_; }

  /// Total data bytes over all segments.
  [[nodiscard]] std::size_t length() const noexcept { return head_ ? head_->pkt_len : 0; }
  [[nodiscard]] std::size_t segment_count() const noexcept { return head_ ? head_->nb_segs : 0; }
  /// Data of the first segment (where the headers are).
  [[nodiscard]] std::span<std::byte> front() const noexcept {
    return head_ ? std::span<std::byte>(head_->data(), head_->data_len) : std::span<std::byte>();
  }
  [[nodiscard]] std::size_t headroom() const noexcept { return head_ ? head_->headroom() : 0; }
  /// Free bytes after the data of the last segment.
  [[nodiscard]] std::size_t tailroom() const noexcept {
    return head_ ? head_->last->tailroom() : 0;
  }

  [[nodiscard]] packet_meta& meta() noexcept { return head_->meta; }
  [[nodiscard]] const packet_meta& meta() const noexcept { return head_->meta; }

  /// Grows the packet at the front by n bytes of headroom; returns the new first byte, or nullptr
  /// (packet unchanged) if the first segment has less than n bytes of headroom or is external.
  std::byte* prepend(std::size_t n) noexcept;
  /// Grows the last segment by n bytes; returns where they start, or nullptr (packet unchanged) if
  /// the last segment has less than n bytes of tailroom or is external.
  std::byte* append(std::size_t n) noexcept;
  /// Removes n bytes from the front of the first segment; false (unchanged) if it has fewer.
  bool trim_front(std::size_t n) noexcept;
  /// Removes n bytes from the end of the last segment; false (unchanged) if it has fewer.
  bool trim_back(std::size_t n) noexcept;
  /// Moves tail's segments to the end of this packet (tail's metadata is dropped). Returns false,
  /// changing neither, if either is empty or the chain would exceed max_segments.
  bool chain(packet&& tail) noexcept;
  /// Copies up to out.size() bytes starting at offset, across segments; returns bytes copied.
  std::size_t copy_out(std::size_t offset, std::span<std::byte> out) const noexcept;

  /// Gives up ownership of the chain without freeing it.
  [[nodiscard]] segment* release() noexcept {
    segment* h = head_;
    head_ = nullptr;
    return h;
  }
  /// Frees the chain (if any) back to its pools. Through a stale handle (generation builds) it
  /// frees nothing and counts a stale free.
  void reset() noexcept {
    if (head_ != nullptr) {
      if (tag_.matches(head_)) {
        free_chain(head_);
      } else {
        count_stale_free(head_);
      }
      head_ = nullptr;
    }
  }
  /// False only for a handle whose head has been freed and re-allocated since it was adopted
  /// (always true without DPDK_NET_SEGMENT_GENERATIONS).
  [[nodiscard]] bool current() const noexcept { return head_ == nullptr || tag_.matches(head_); }

  /// Forward range over the segments of the chain.
  class segment_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = segment;
    using difference_type = std::ptrdiff_t;
    using pointer = segment*;
    using reference = segment&;
    segment_iterator() noexcept = default;
    explicit segment_iterator(segment* s) noexcept : s_(s) {}
    reference operator*() const noexcept { return *s_; }
    pointer operator->() const noexcept { return s_; }
    segment_iterator& operator++() noexcept {
      s_ = s_->next;
      return *this;
    }
    segment_iterator operator++(int) noexcept {
      segment_iterator old = *this;
      s_ = s_->next;
      return old;
    }
    friend bool operator==(segment_iterator a, segment_iterator b) noexcept { return a.s_ == b.s_; }

   private:
    segment* s_ = nullptr;
  };
  struct segment_range {
    segment* first;
    [[nodiscard]] segment_iterator begin() const noexcept { return segment_iterator(first); }
    [[nodiscard]] segment_iterator end() const noexcept { return segment_iterator(); }
  };
  [[nodiscard]] segment_range segments() const noexcept { return segment_range{head_}; }

  /// Most segments one packet may chain (a 64 KiB TSO packet of 1 KiB segments fits).
  static constexpr std::uint16_t max_segments = 128;

  /// Frees a chain: drops external references and returns runs of segments to their pools in bulk.
  static void free_chain(segment* head) noexcept;

 private:
  friend void free_burst(std::span<packet> packets) noexcept;
  explicit packet(segment* head) noexcept : head_(head) { tag_.take(head); }
  static void count_stale_free(segment* head) noexcept;
  segment* head_ = nullptr;
  [[no_unique_address]] detail::generation_tag tag_;
};

/// Frees every non-empty packet of a burst, batching pool returns.
void free_burst(std::span<packet> packets) noexcept;

}  // namespace dpdk_net
