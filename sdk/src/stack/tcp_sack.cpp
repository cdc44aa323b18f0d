// SACK: the blocks we send for out-of-order data (RFC 2018 4), the scoreboard of what the peer
// SACKed (RFC 6675 Update(), with bogus blocks refused), and RFC 6675's IsLost(), SetPipe() and
// NextSeg() over it. Every function is O(scoreboard capacity): a hostile peer cannot make SACK
// processing grow with the data in flight (the SACK-panic class, CVE-2019-11477/78).
#include <algorithm>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {

using detail::seq_ge;
using detail::seq_gt;
using detail::seq_le;
using detail::seq_lt;
using detail::seq_range;

// --- the blocks we send ---------------------------------------------------------------------

void tcp_layer::sack_blocks(const connection& c, wire::tcp_options& o) noexcept {
  // Beside timestamps (10 bytes + 2 of padding) 3 blocks fit in the 40 bytes of options, else 4.
  const std::uint8_t max = c.ts_enabled ? 3 : 4;
  std::uint8_t n = 0;
  // First the range holding the latest out-of-order segment (RFC 2018 4), then the others from
  // the highest down: a sender filling holes from the bottom learns the top first.
  std::size_t first = c.ooo_count;
  for (std::size_t i = 0; i < c.ooo_count; ++i) {
    if (seq_le(c.ooo[i].begin, c.last_ooo) && seq_lt(c.last_ooo, c.ooo[i].end)) {
      first = i;
      o.sack[n++] = wire::sack_block{c.ooo[i].begin, c.ooo[i].end};
      break;
    }
  }
  for (std::size_t i = c.ooo_count; i-- > 0 && n < max;) {
    if (i != first) {
      o.sack[n++] = wire::sack_block{c.ooo[i].begin, c.ooo[i].end};
    }
  }
  o.sack_count = n;
  counters_.sack_blocks_sent += n;
}

// --- the scoreboard -------------------------------------------------------------------------

void tcp_layer::free_scoreboard(connection& c) noexcept {
  if (c.scoreboard == detail::no_slot) {
    return;
  }
  detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
  b.count = 0;
  b.next_free = scoreboard_free_;
  scoreboard_free_ = c.scoreboard;
  c.scoreboard = detail::no_slot;
}

std::uint32_t tcp_layer::sack_update(connection& c, const wire::tcp_options& o, std::uint32_t ack,
                                     bool& no_scoreboard) noexcept {
  counters_.sack_blocks_received += o.sack_count;
  no_scoreboard = false;
  const std::uint32_t before = sacked_bytes(c);
  for (std::uint8_t i = 0; i < o.sack_count; ++i) {
    seq_range r{o.sack[i].left, o.sack[i].right};
    // RFC 2883 D-SACK: the first block below the cumulative ACK, or inside the second block,
    // reports a duplicate. Noted; it changes nothing here (no undo of reductions yet).
    if (i == 0 && seq_lt(r.begin, r.end) &&
        (seq_le(r.end, ack) ||
         (o.sack_count > 1 && seq_ge(r.begin, o.sack[1].left) && seq_le(r.end, o.sack[1].right)))) {
      ++counters_.dsack_received;
      continue;
    }
    // Bogus: inverted or empty, beyond what we sent, or wholly below SND.UNA.
    if (!seq_lt(r.begin, r.end) || seq_gt(r.end, c.snd_max) || seq_le(r.end, c.snd_una) ||
        r.end - r.begin > c.snd_max - c.snd_una) {
      ++counters_.sack_blocks_ignored;
      continue;
    }
    if (seq_lt(r.begin, c.snd_una)) {
      r.begin = c.snd_una;  // partly acknowledged already
    }
    if (c.scoreboard == detail::no_slot) {
      if (scoreboard_free_ == detail::no_slot) {
        ++counters_.sack_no_scoreboard;  // recovery falls back to RFC 6582 for this connection
        no_scoreboard = true;
        return 0;
      }
      c.scoreboard = scoreboard_free_;
      scoreboard_free_ = scoreboards_[c.scoreboard].next_free;
      scoreboards_[c.scoreboard].count = 0;
    }
    detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
    // Insert, merging with every range it touches (sorted, disjoint).
    std::uint32_t lo = 0;
    while (lo < b.count && seq_lt(b.ranges[lo].end, r.begin)) {
      ++lo;
    }
    std::uint32_t hi = lo;
    while (hi < b.count && seq_le(b.ranges[hi].begin, r.end)) {
      r.begin = seq_lt(b.ranges[hi].begin, r.begin) ? b.ranges[hi].begin : r.begin;
      r.end = seq_gt(b.ranges[hi].end, r.end) ? b.ranges[hi].end : r.end;
      ++hi;
    }
    if (hi == lo) {
      if (b.count == detail::sack_scoreboard::capacity) {
        // Full: keep the lowest ranges (they decide what is lost first); forgetting the top one
        // only makes us more conservative (it is retransmitted if really lost).
        if (lo == b.count) {
          ++counters_.sack_blocks_ignored;
          continue;
        }
        --b.count;
        ++counters_.sack_blocks_ignored;
      }
      std::copy_backward(b.ranges.begin() + lo, b.ranges.begin() + b.count,
                         b.ranges.begin() + b.count + 1);
      ++b.count;
    } else if (hi > lo + 1) {
      std::copy(b.ranges.begin() + hi, b.ranges.begin() + b.count, b.ranges.begin() + lo + 1);
      b.count -= hi - lo - 1;
    }
    b.ranges[lo] = r;
  }
  const std::uint32_t after = sacked_bytes(c);
  return after > before ? after - before : 0;
}

void tcp_layer::sack_prune(connection& c) noexcept {
  if (c.scoreboard == detail::no_slot) {
    return;
  }
  detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
  std::uint32_t drop = 0;
  while (drop < b.count && seq_le(b.ranges[drop].end, c.snd_una)) {
    ++drop;
  }
  std::copy(b.ranges.begin() + drop, b.ranges.begin() + b.count, b.ranges.begin());
  b.count -= drop;
  if (b.count != 0 && seq_lt(b.ranges[0].begin, c.snd_una)) {
    b.ranges[0].begin = c.snd_una;
  }
  if (b.count == 0 && !c.sack_recovery) {
    free_scoreboard(c);
  }
}

std::uint32_t tcp_layer::sacked_bytes(const connection& c) const noexcept {
  if (c.scoreboard == detail::no_slot) {
    return 0;
  }
  const detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < b.count; ++i) {
    n += b.ranges[i].end - b.ranges[i].begin;
  }
  return n;
}

bool tcp_layer::sack_is_lost(const connection& c, std::uint32_t seq,
                             std::uint32_t mss) const noexcept {
  // RFC 6675 IsLost(): DupThresh discontiguous SACKed ranges above seq, or more than
  // (DupThresh - 1) * SMSS bytes SACKed above it.
  if (c.scoreboard == detail::no_slot) {
    return false;
  }
  const detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
  std::uint32_t ranges = 0, bytes = 0;
  for (std::uint32_t i = b.count; i-- > 0 && seq_gt(b.ranges[i].end, seq);) {
    ++ranges;
    bytes += b.ranges[i].end - (seq_gt(b.ranges[i].begin, seq) ? b.ranges[i].begin : seq + 1);
  }
  return ranges >= config_.dup_ack_threshold ||
         bytes > (config_.dup_ack_threshold - 1) * std::uint64_t{mss};
}

std::uint32_t tcp_layer::sack_pipe(const connection& c, std::uint32_t mss) const noexcept {
  // RFC 6675 SetPipe(), by holes: every unSACKed byte in flight counts once unless it is lost,
  // and once more if it was retransmitted in this recovery (below HighRxt). IsLost() is the
  // same for every byte of one hole (the same ranges lie above all of them).
  const detail::sack_scoreboard* b =
      c.scoreboard == detail::no_slot ? nullptr : &scoreboards_[c.scoreboard];
  const std::uint32_t count = b != nullptr ? b->count : 0;
  std::uint32_t pipe = 0;
  std::uint32_t pos = c.snd_una;
  for (std::uint32_t i = 0; i <= count; ++i) {
    const std::uint32_t hole_end = i < count ? b->ranges[i].begin : c.snd_max;
    if (seq_lt(pos, hole_end)) {
      const bool lost = i < count && sack_is_lost(c, pos, mss);
      if (!lost) {
        pipe += hole_end - pos;
      }
      if (c.sack_recovery && seq_lt(pos, c.high_rxt)) {
        pipe += (seq_lt(c.high_rxt, hole_end) ? c.high_rxt : hole_end) - pos;
      }
    }
    if (i < count && seq_gt(b->ranges[i].end, pos)) {
      pos = b->ranges[i].end;
    }
  }
  return pipe;
}

bool tcp_layer::sack_next_segment(const connection& c, std::uint32_t mss, bool lost_only,
                                  std::uint32_t& seq, std::uint32_t& len) const noexcept {
  // RFC 6675 NextSeg() rule 1 (lost_only) or rule 3: the lowest unSACKed byte at or above
  // HighRxt and below the highest SACKed byte (that is lost, for rule 1); a segment from it
  // that stops at the next SACKed range.
  if (c.scoreboard == detail::no_slot) {
    return false;
  }
  const detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
  std::uint32_t pos = c.snd_una;
  for (std::uint32_t i = 0; i < b.count; ++i) {
    std::uint32_t from = seq_gt(c.high_rxt, pos) ? c.high_rxt : pos;
    if (seq_lt(from, b.ranges[i].begin)) {
      if (lost_only && !sack_is_lost(c, from, mss)) {
        return false;  // holes higher up have fewer SACKed bytes above them: not lost either
      }
      seq = from;
      len = std::min(mss, b.ranges[i].begin - from);
      return true;
    }
    pos = b.ranges[i].end;
  }
  return false;
}

bool tcp_layer::sack_rescue_segment(const connection& c, std::uint32_t mss, std::uint32_t& seq,
                                    std::uint32_t& len) const noexcept {
  // The highest unSACKed data in flight: below SND.MAX, or below the top range if it reaches
  // SND.MAX; up to one SMSS of it, not reaching down into a SACKed range.
  std::uint32_t top = c.snd_max;
  std::uint32_t floor = c.snd_una;
  if (c.scoreboard != detail::no_slot) {
    const detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
    std::uint32_t i = b.count;
    while (i > 0 && seq_le(top, b.ranges[i - 1].end) && seq_lt(b.ranges[i - 1].begin, top)) {
      top = b.ranges[--i].begin;
    }
    if (i > 0) {
      floor = b.ranges[i - 1].end;
    }
  }
  // (The FIN occupies SND.MAX - 1 when sent: data ends below it.)
  const std::uint32_t data_end = c.sbuf_seq + c.sbuf_len;
  if (seq_gt(top, data_end)) {
    top = data_end;
  }
  if (!seq_lt(floor, top)) {
    return false;
  }
  len = std::min(mss, top - floor);
  seq = top - len;
  return true;
}

std::uint32_t tcp_layer::sack_skip(const connection& c, std::uint32_t seq,
                                   std::uint32_t& run) const noexcept {
  // For a go-back after a timeout: where the next unSACKed byte at or after seq is, and how
  // many bytes follow it before the next SACKed range (UINT32_MAX: none).
  run = UINT32_MAX;
  if (c.scoreboard == detail::no_slot) {
    return seq;
  }
  const detail::sack_scoreboard& b = scoreboards_[c.scoreboard];
  for (std::uint32_t i = 0; i < b.count; ++i) {
    if (seq_lt(seq, b.ranges[i].begin)) {
      run = b.ranges[i].begin - seq;
      return seq;
    }
    if (seq_lt(seq, b.ranges[i].end)) {
      seq = b.ranges[i].end;
    }
  }
  return seq;
}

}  // namespace dpdk_net::stack
