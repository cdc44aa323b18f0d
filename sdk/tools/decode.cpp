// dpdk-net-decode FILE (pcap or pcapng): one JSON object per frame, decoded by the wire library,
// with a verdict ("accept" or "reject") and the reason for a rejected frame. Field names follow
// scapy's.
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace {

using namespace dpdk_net;
using namespace dpdk_net::wire;

class json_object {
 public:
  explicit json_object(std::string& out) : out_(out) { out_ += '{'; }
  json_object(const json_object&) = delete;
  json_object& operator=(const json_object&) = delete;
  ~json_object() { out_ += '}'; }
  void key(std::string_view k) {
    if (!first_) {
      out_ += ", ";
    }
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\": ";
  }
  void num(std::string_view k, unsigned long long v) {
    key(k);
    out_ += std::to_string(v);
  }
  void str(std::string_view k, std::string_view v) {
    key(k);
    out_ += '"';
    out_ += v;  // only our own identifiers and addresses: nothing to escape
    out_ += '"';
  }
  void boolean(std::string_view k, bool v) {
    key(k);
    out_ += v ? "true" : "false";
  }
  void raw(std::string_view k, std::string_view v) {
    key(k);
    out_ += v;
  }

 private:
  std::string& out_;
  bool first_ = true;
};

std::string tcp_options_json(const tcp_options& o) {
  std::string s;
  json_object j(s);
  if (o.mss) {
    j.num("mss", *o.mss);
  }
  if (o.window_scale) {
    j.num("wscale", *o.window_scale);
  }
  if (o.sack_permitted) {
    j.boolean("sack_ok", true);
  }
  if (o.timestamps) {
    j.raw("ts", "[" + std::to_string(o.timestamps->value) + ", " +
                    std::to_string(o.timestamps->echo_reply) + "]");
  }
  if (o.sack_count > 0) {
    std::string blocks = "[";
    for (const sack_block& b : o.sack_blocks()) {
      blocks += (blocks.size() > 1 ? ", [" : "[") + std::to_string(b.left) + ", " +
                std::to_string(b.right) + "]";
    }
    j.raw("sack", blocks + "]");
  }
  if (o.unknown > 0) {
    j.num("unknown", o.unknown);
  }
  return s;
}

void emit(std::size_t index, const capture_record& rec, const decoded_frame& d) {
  std::string s;
  {
    json_object j(s);
    j.num("frame", index);
    j.num("ts_ns", rec.timestamp_ns);
    j.num("caplen", rec.data.size());
    j.str("verdict", d.accepted() ? "accept" : "reject");
    j.str("reason", to_string(d.error));
    if (d.error != wire_error::truncated || !d.eth.dst.is_zero() || !d.eth.src.is_zero()) {
      std::string e;
      {
        json_object eo(e);
        eo.str("dst", d.eth.dst.to_string());
        eo.str("src", d.eth.src.to_string());
        eo.num("type", d.eth.ethertype);
        if (d.eth.has_vlan) {
          eo.num("vlan", d.eth.vlan_id());
          eo.num("prio", d.eth.vlan_tci >> 13U);
        }
      }
      j.raw("eth", e);
    }
    if (d.arp) {
      std::string a;
      {
        json_object ao(a);
        ao.num("op", d.arp->operation);
        ao.str("hwsrc", d.arp->sender_mac.to_string());
        ao.str("psrc", d.arp->sender_ip.to_string());
        ao.str("hwdst", d.arp->target_mac.to_string());
        ao.str("pdst", d.arp->target_ip.to_string());
      }
      j.raw("arp", a);
    }
    if (d.ipv4) {
      const ipv4_header& h = *d.ipv4;
      std::string i;
      {
        json_object io(i);
        io.num("ihl", h.header_length / 4U);
        io.num("tos", h.tos);
        io.num("len", h.total_length);
        io.num("id", h.id);
        io.num("flags", (h.reserved_flag ? 4U : 0U) | (h.dont_fragment ? 2U : 0U) |
                            (h.more_fragments ? 1U : 0U));
        io.num("frag", h.fragment_offset);
        io.num("ttl", h.ttl);
        io.num("proto", h.protocol);
        io.num("chksum", h.checksum);
        io.str("src", h.src.to_string());
        io.str("dst", h.dst.to_string());
      }
      j.raw("ip", i);
      if (d.fragment) {
        j.boolean("fragment", true);
      }
    }
    if (d.icmp) {
      std::string c;
      {
        json_object co(c);
        co.num("type", d.icmp->type);
        co.num("code", d.icmp->code);
        co.num("chksum", d.icmp->checksum);
        co.num("rest", d.icmp->rest);
      }
      j.raw("icmp", c);
    }
    if (d.udp) {
      std::string u;
      {
        json_object uo(u);
        uo.num("sport", d.udp->src_port);
        uo.num("dport", d.udp->dst_port);
        uo.num("len", d.udp->length);
        uo.num("chksum", d.udp->checksum);
      }
      j.raw("udp", u);
    }
    if (d.tcp) {
      const tcp_header& h = *d.tcp;
      std::string t;
      {
        json_object to(t);
        to.num("sport", h.src_port);
        to.num("dport", h.dst_port);
        to.num("seq", h.seq);
        to.num("ack", h.ack);
        to.num("dataofs", h.header_length / 4U);
        to.num("reserved", h.reserved);
        to.num("flags", h.flags);
        to.num("window", h.window);
        to.num("chksum", h.checksum);
        to.num("urgptr", h.urgent_pointer);
        to.raw("options", tcp_options_json(h.options));
      }
      j.raw("tcp", t);
    }
    if (d.accepted()) {
      j.num("payload_len", d.payload.size());
    }
  }
  std::puts(s.c_str());
}

void usage(std::FILE* to) {
  std::fprintf(
      to,
      "usage: dpdk-net-decode [--no-checksums] FILE.pcap|FILE.pcapng\n"
      "  Prints one JSON object per frame: the decoded Ethernet/ARP/IPv4/ICMP/UDP/TCP\n"
      "  fields, a verdict (accept|reject) and the reason for a rejection. A summary\n"
      "  goes to stderr. Exit 0 if the whole file was read, 1 if it is not a readable\n"
      "  pcap or pcapng file, or holds a non-Ethernet frame (the message says where), 2 for\n"
      "  bad arguments.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  decode_options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if (arg == "--no-checksums") {
      options.verify_checksums = false;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "dpdk-net-decode: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (path.empty()) {
      path = arg;
    } else {
      std::fprintf(stderr, "dpdk-net-decode: one file at a time\n");
      return 2;
    }
  }
  if (path.empty()) {
    usage(stderr);
    return 2;
  }
  std::vector<std::byte> bytes;
  std::string error;
  if (!read_file(path, bytes, error)) {
    std::fprintf(stderr, "dpdk-net-decode: %s\n", error.c_str());
    return 1;
  }
  capture_reader reader(bytes);
  if (!reader.ok()) {
    std::fprintf(stderr, "dpdk-net-decode: %s: %s\n", path.c_str(), reader.error().c_str());
    return 1;
  }
  if (!reader.interfaces().empty() && reader.interfaces()[0].linktype != pcap_linktype_ethernet) {
    std::fprintf(stderr, "dpdk-net-decode: %s: link type %u is not Ethernet (1)\n", path.c_str(),
                 reader.interfaces()[0].linktype);
    return 1;
  }
  std::size_t index = 0;
  std::map<std::string, std::size_t> reasons;
  capture_record rec;
  while (reader.next(rec)) {
    if (rec.linktype != pcap_linktype_ethernet) {
      std::fprintf(stderr, "dpdk-net-decode: %s: frame %zu: link type %u is not Ethernet (1)\n",
                   path.c_str(), index, rec.linktype);
      return 1;
    }
    const decoded_frame d = decode_frame(rec.data, options);
    emit(index++, rec, d);
    ++reasons[to_string(d.error)];
  }
  std::fprintf(stderr, "dpdk-net-decode: %zu frames", index);
  for (const auto& [reason, n] : reasons) {
    std::fprintf(stderr, ", %s %zu", reason.c_str(), n);
  }
  std::fprintf(stderr, "\n");
  if (!reader.ok()) {
    std::fprintf(stderr, "dpdk-net-decode: %s: %s\n", path.c_str(), reader.error().c_str());
    return 1;
  }
  return 0;
}
