// Golden frames produced by scapy 2.5 (Debian's python3-scapy), an implementation independent
// of ours. Each vector lists the scapy expression that made it; regenerate with
// `bytes(<expr>).hex()` and E = dict(dst="02:00:00:00:00:01", src="02:00:00:00:00:02").
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace dpdk_net::test {

inline std::vector<std::byte> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> unsigned {
    if (c >= '0' && c <= '9')
      return static_cast<unsigned>(c - '0');
    if (c >= 'a' && c <= 'f')
      return static_cast<unsigned>(c - 'a' + 10);
    throw std::invalid_argument("bad hex");
  };
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::byte>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

namespace golden {
// Ether(**E)/IP(src="198.18.0.1",dst="198.18.0.2",id=0x1234,flags="DF",ttl=64)/
// TCP(sport=40000,dport=80,flags="S",seq=0x01020304,window=64240,options=[("MSS",1460),
// ("SAckOK",b""),("Timestamp",(0xaabbccdd,0)),("NOP",None),("WScale",7)])
inline constexpr std::string_view tcp_syn =
    "02000000000102000000000208004500003c1234400040069c60c6120001c61200029c400050010203040000"
    "0000a002faf0a8b70000020405b40402080aaabbccdd0000000001030307";
// Ether(**E)/IP(src="198.18.0.2",dst="198.18.0.1",id=7,ttl=63)/TCP(sport=80,dport=40000,
// flags="PA",seq=1000,ack=2000,window=501,options=[("NOP",None),("NOP",None),
// ("Timestamp",(11,22)),("NOP",None),("NOP",None),("SAck",(3000,4000,5000,6000))])/
// b"GET / HTTP/1.1\r\n\r\n"
inline constexpr std::string_view tcp_ack_sack =
    "02000000000102000000000208004500005a000700003f06ef6fc6120002c612000100509c40000003e80000"
    "07d0d01801f5c50400000101080a0000000b000000160101051200000bb800000fa00000138800001770474554"
    "202f20485454502f312e310d0a0d0a";
// Ether(**E)/IP(src="198.18.0.1",dst="198.19.255.254",id=99,ttl=5)/UDP(sport=5353,dport=53)/
// b"hello, world"
inline constexpr std::string_view udp =
    "020000000001020000000002080045000028006300000511293dc6120001c613fffe14e9003500141e366865"
    "6c6c6f2c20776f726c64";
// Ether(**E)/Dot1Q(vlan=100,prio=5)/IP(src="198.18.0.1",dst="198.18.0.2",id=1)/
// ICMP(type=8,id=0x4242,seq=7)/b"abcdefgh"
inline constexpr std::string_view icmp_echo =
    "0200000000010200000000028100a064080045000024000100004001eeb0c6120001c6120002080024214242"
    "00076162636465666768";
// Ether(**E)/IP(src="198.18.0.254",dst="198.18.0.1",id=2)/ICMP(type=3,code=4,nexthopmtu=1400)/
// IP(src="198.18.0.1",dst="198.18.0.2",id=3,flags="DF",len=1500)/TCP(sport=40000,dport=80,
// seq=5,flags="A")
inline constexpr std::string_view icmp_frag_needed =
    "020000000001020000000002080045000044000200004001ed93c61200fec61200010304897a000005784500"
    "05dc000340004006a8f1c6120001c61200029c40005000000005000000005010200061630000";
// Ether(dst="ff:ff:ff:ff:ff:ff",src="02:00:00:00:00:02")/ARP(op=1,hwsrc="02:00:00:00:00:02",
// psrc="198.18.0.1",hwdst="00:00:00:00:00:00",pdst="198.18.0.2")
inline constexpr std::string_view arp_request =
    "ffffffffffff02000000000208060001080006040001020000000002c6120001000000000000c6120002";
// Ether(**E)/ARP(op=2,hwsrc="02:00:00:00:00:02",psrc="198.18.0.2",hwdst="02:00:00:00:00:01",
// pdst="198.18.0.1")
inline constexpr std::string_view arp_reply =
    "02000000000102000000000208060001080006040002020000000002c6120002020000000001c6120001";
// Ether(**E)/IP(src="198.18.0.1",dst="198.18.0.2",id=77,flags="MF",frag=0,
// options=[IPOption_RR(routers=["198.18.0.5"])],proto=17)/Raw(b"\x00"*16)
inline constexpr std::string_view ip_options_fragment =
    "02000000000102000000000208004700002c004d20004011a97fc6120001c6120002070704c6120005000000"
    "0000000000000000000000000000";
}  // namespace golden

}  // namespace dpdk_net::test
