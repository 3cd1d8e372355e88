#include "runtime/packet_link.hpp"

#include "stack/gso.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <utility>

namespace phalanx::runtime {

namespace {

constexpr std::size_t kEthernetHeader = 14;
constexpr std::size_t kTxBlockSize = std::size_t{1} << 16;
// Room a V3 block takes besides a frame's bytes: the block descriptor (48), the frame header
// and its sockaddr_ll before the MAC header (82), alignment; rounded up.
constexpr std::size_t kRxBlockOverhead = 256;
// The largest frame receive offload makes: an IPv4 datagram of 64 KB (GRO and a veth peer's
// TSO stop there unless BIG TCP is configured) behind its Ethernet header; the buffer of the
// large-frame socket holds twice that, and a longer frame is counted as truncated.
constexpr std::size_t kLargestOffloadFrame = kEthernetHeader + 0xffff;
constexpr std::size_t kLargeBuffer = std::size_t{1} << 17;
// The large-frame socket's receive buffer: room for ~100 merged segments between two reads
// (SO_RCVBUFFORCE needs CAP_NET_ADMIN, which phalanxd has; otherwise the default stays).
constexpr int kLargeSocketBuffer = 16 << 20;

// struct virtio_net_hdr of <linux/virtio_net.h>, which C++ cannot include (a field is named
// `class`): what a PACKET_VNET_HDR socket expects before each frame, in host byte order.
struct VnetHeader {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = 0;
  std::uint16_t hdr_len = 0;      // Ethernet + IPv4 + TCP headers
  std::uint16_t gso_size = 0;     // payload bytes per piece
  std::uint16_t csum_start = 0;   // where the checksummed part starts (the TCP header)
  std::uint16_t csum_offset = 0;  // where in it the checksum goes
};
static_assert(sizeof(VnetHeader) == 10);
constexpr std::uint8_t kVnetNeedsChecksum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr std::uint8_t kVnetGsoTcpv4 = 1;       // VIRTIO_NET_HDR_GSO_TCPV4

// Ring status words are shared with the kernel: read them with acquire (the frame's bytes
// were written before the kernel set the status) and write them with release (our writes to
// the frame must be visible before the kernel sees the status).
template <class T>
T load_status(T& word) {
  return std::atomic_ref<T>(word).load(std::memory_order_acquire);
}
template <class T>
void store_status(T& word, T value) {
  std::atomic_ref<T>(word).store(value, std::memory_order_release);
}

std::size_t round_up_pow2(std::size_t n) {
  std::size_t p = 1;
  while (p < n) {
    p <<= 1;
  }
  return p;
}

Result<UniqueFd> packet_socket() {
  // Protocol 0: receive nothing until bind() names the protocol, so no frame lands in the ring
  // before it is set up.
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return errno_error("socket(AF_PACKET)");
  }
  return UniqueFd(fd);
}

template <class T>
Status set_option(int fd, int name, const T& value, const char* what) {
  if (::setsockopt(fd, SOL_PACKET, name, &value, sizeof(value)) != 0) {
    return errno_error(std::string("setsockopt(") + what + ")");
  }
  return Ok{};
}

Status bind_to(int fd, int ifindex, std::uint16_t protocol) {
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(protocol);
  sll.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    return errno_error("bind(AF_PACKET)");
  }
  return Ok{};
}

// A classic BPF program for a packet socket: accept frames of at most `bytes` bytes (or, with
// `above`, of more), whole; drop the others before they are queued.
Status filter_by_length(int fd, std::size_t bytes, bool above) {
  const auto k = static_cast<std::uint32_t>(bytes);
  std::array<sock_filter, 4> code{{
      {BPF_LD | BPF_W | BPF_LEN, 0, 0, 0},                                   // A = frame length
      {BPF_JMP | BPF_JGT | BPF_K, static_cast<std::uint8_t>(above ? 0 : 1),  // A > k ?
       static_cast<std::uint8_t>(above ? 1 : 0), k},
      {BPF_RET | BPF_K, 0, 0, 0xffffffffu},  // accept all of it
      {BPF_RET | BPF_K, 0, 0, 0},            // drop
  }};
  sock_fprog program{static_cast<unsigned short>(code.size()), code.data()};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) != 0) {
    return errno_error("setsockopt(SO_ATTACH_FILTER)");
  }
  return Ok{};
}

Result<std::byte*> map_ring(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
  if (p == MAP_FAILED) {
    // MAP_LOCKED fails under a small RLIMIT_MEMLOCK; the ring works unlocked too.
    p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (p == MAP_FAILED) {
    return errno_error("mmap(packet ring)");
  }
  return static_cast<std::byte*>(p);
}

}  // namespace

Result<std::unique_ptr<PacketLink>> PacketLink::open(const PacketLinkOptions& options) {
  if (options.interface.empty() || options.interface.size() >= IFNAMSIZ) {
    return Error{"interface name '" + options.interface + "' is empty or too long"};
  }
  std::unique_ptr<PacketLink> link(new PacketLink());
  link->interface_ = options.interface;
  if (auto s = link->open_rx(options); !s) {
    return s.error();
  }
  const std::size_t largest_in_ring = options.rx_block_size - kRxBlockOverhead;
  if (auto s = link->open_large(largest_in_ring); !s) {
    return s.error();
  }
  if (auto s = link->open_tx(options); !s) {
    return s.error();
  }
  if (options.offload) {
    if (auto s = link->open_offload(options); !s) {
      link->offload_error_ = s.error().message;
      link->offload_fd_ = UniqueFd();
    }
  }
  return link;
}

Status PacketLink::open_rx(const PacketLinkOptions& options) {
  auto sock = packet_socket();
  if (!sock) {
    return sock.error();
  }
  rx_fd_ = std::move(*sock);
  const int fd = rx_fd_.get();

  ifreq ifr{};
  std::memcpy(ifr.ifr_name, interface_.c_str(), interface_.size() + 1);
  if (::ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
    return errno_error("interface " + interface_);
  }
  ifindex_ = ifr.ifr_ifindex;
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) {
    return errno_error("SIOCGIFHWADDR " + interface_);
  }
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    return Error{"interface " + interface_ + " is not an Ethernet interface"};
  }
  std::array<std::uint8_t, wire::MacAddr::kSize> octets{};
  std::memcpy(octets.data(), ifr.ifr_hwaddr.sa_data, octets.size());
  mac_ = wire::MacAddr{octets};
  if (::ioctl(fd, SIOCGIFMTU, &ifr) != 0) {
    return errno_error("SIOCGIFMTU " + interface_);
  }
  mtu_ = static_cast<unsigned>(ifr.ifr_mtu);

  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (options.rx_block_size % page != 0 || options.rx_block_count == 0 ||
      options.rx_block_size < 2 * (mtu_ + kEthernetHeader + 256)) {
    return Error{"rx ring: block size must be a multiple of the page size and hold two frames"};
  }

  if (auto s = set_option(fd, PACKET_VERSION, int{TPACKET_V3}, "PACKET_VERSION"); !s) {
    return s;
  }
  // The kernel checks this option only since 4.20; older kernels still get the pkttype check.
  (void)set_option(fd, PACKET_IGNORE_OUTGOING, int{1}, "PACKET_IGNORE_OUTGOING");

  tpacket_req3 req{};
  req.tp_block_size = static_cast<unsigned>(options.rx_block_size);
  req.tp_block_nr = static_cast<unsigned>(options.rx_block_count);
  req.tp_frame_size = 2048;  // V3 frames are variable; this only sizes tp_frame_nr
  req.tp_frame_nr = static_cast<unsigned>(req.tp_block_size / req.tp_frame_size * req.tp_block_nr);
  req.tp_retire_blk_tov = static_cast<unsigned>(options.rx_block_timeout.count());
  if (auto s = set_option(fd, PACKET_RX_RING, req, "PACKET_RX_RING"); !s) {
    return s;
  }
  rx_.block_size = options.rx_block_size;
  rx_.count = options.rx_block_count;
  rx_.size = rx_.block_size * rx_.count;
  auto base = map_ring(fd, rx_.size);
  if (!base) {
    rx_.size = 0;
    return base.error();
  }
  rx_.base = *base;

  if (options.promiscuous) {
    if (auto s = membership(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC, nullptr); !s) {
      return s;
    }
  }
  // Frames a block cannot hold go to the large-frame socket (open_large) instead of arriving
  // here cut short. Set before bind(): no frame is judged without the filter.
  const std::size_t largest_in_ring = options.rx_block_size - kRxBlockOverhead;
  if (largest_in_ring < kLargestOffloadFrame) {
    if (auto s = filter_by_length(fd, largest_in_ring, false); !s) {
      return s;
    }
  }
  return bind_to(fd, ifindex_, ETH_P_ALL);
}

Status PacketLink::open_large(std::size_t largest_in_ring) {
  poll_fd_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!poll_fd_.valid()) {
    return errno_error("epoll_create1");
  }
  auto watch = [&](int fd) -> Status {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(poll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return errno_error("epoll_ctl(packet socket)");
    }
    return Ok{};
  };
  if (auto s = watch(rx_fd_.get()); !s) {
    return s;
  }
  if (largest_in_ring >= kLargestOffloadFrame) {
    return Ok{};  // the blocks hold any frame: no second socket
  }
  auto sock = packet_socket();
  if (!sock) {
    return sock.error();
  }
  large_fd_ = std::move(*sock);
  const int fd = large_fd_.get();
  if (auto s = set_option(fd, PACKET_AUXDATA, int{1}, "PACKET_AUXDATA"); !s) {
    return s;
  }
  (void)set_option(fd, PACKET_IGNORE_OUTGOING, int{1}, "PACKET_IGNORE_OUTGOING");
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kLargeSocketBuffer,
                   sizeof(kLargeSocketBuffer)) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kLargeSocketBuffer, sizeof(kLargeSocketBuffer));
  }
  if (auto s = filter_by_length(fd, largest_in_ring, true); !s) {
    return s;
  }
  large_buffer_.resize(kLargeBuffer);
  if (auto s = bind_to(fd, ifindex_, ETH_P_ALL); !s) {
    return s;
  }
  return watch(fd);
}

Status PacketLink::open_tx(const PacketLinkOptions& options) {
  auto sock = packet_socket();
  if (!sock) {
    return sock.error();
  }
  tx_fd_ = std::move(*sock);
  const int fd = tx_fd_.get();

  if (auto s = set_option(fd, PACKET_VERSION, int{TPACKET_V2}, "PACKET_VERSION"); !s) {
    return s;
  }
  // A frame the kernel rejects (malformed) is skipped instead of stalling the ring.
  if (auto s = set_option(fd, PACKET_LOSS, int{1}, "PACKET_LOSS"); !s) {
    return s;
  }
  if (options.qdisc_bypass) {
    if (auto s = set_option(fd, PACKET_QDISC_BYPASS, int{1}, "PACKET_QDISC_BYPASS"); !s) {
      return s;
    }
  }
  tx_.frame_size = round_up_pow2(TPACKET2_HDRLEN + kEthernetHeader + 4 + mtu_);
  tx_.frame_size = std::max<std::size_t>(tx_.frame_size, 2048);
  tx_.block_size = std::max(kTxBlockSize, tx_.frame_size);
  const std::size_t per_block = tx_.block_size / tx_.frame_size;
  const std::size_t blocks =
      (std::max<std::size_t>(options.tx_frame_count, 1) + per_block - 1) / per_block;
  tx_.count = blocks * per_block;
  tpacket_req req{};
  req.tp_block_size = static_cast<unsigned>(tx_.block_size);
  req.tp_block_nr = static_cast<unsigned>(blocks);
  req.tp_frame_size = static_cast<unsigned>(tx_.frame_size);
  req.tp_frame_nr = static_cast<unsigned>(tx_.count);
  if (auto s = set_option(fd, PACKET_TX_RING, req, "PACKET_TX_RING"); !s) {
    return s;
  }
  tx_.size = tx_.block_size * blocks;
  auto base = map_ring(fd, tx_.size);
  if (!base) {
    tx_.size = 0;
    return base.error();
  }
  tx_.base = *base;
  return bind_to(fd, ifindex_, 0);
}

Status PacketLink::open_offload(const PacketLinkOptions& options) {
  auto sock = packet_socket();
  if (!sock) {
    return sock.error();
  }
  offload_fd_ = std::move(*sock);
  const int fd = offload_fd_.get();
  if (auto s = set_option(fd, PACKET_VNET_HDR, int{1}, "PACKET_VNET_HDR"); !s) {
    return s;
  }
  if (options.qdisc_bypass) {
    if (auto s = set_option(fd, PACKET_QDISC_BYPASS, int{1}, "PACKET_QDISC_BYPASS"); !s) {
      return s;
    }
  }
  // A NIC holds each 64 KB frame until it has sent it, charged to this socket: room for 64 in
  // flight (needs CAP_NET_ADMIN, which phalanxd has; otherwise the default stays).
  const int sndbuf = 64 * 65536;
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
  return bind_to(fd, ifindex_, 0);
}

PacketLink::~PacketLink() {
  if (rx_.base != nullptr) {
    ::munmap(rx_.base, rx_.size);
  }
  if (tx_.base != nullptr) {
    ::munmap(tx_.base, tx_.size);
  }
}

std::size_t PacketLink::receive(const FrameHandler& on_frame, std::size_t max_frames) {
  std::size_t delivered = 0;
  if (large_fd_.valid()) {
    receive_large(on_frame, max_frames, delivered);
  }
  while (delivered < max_frames) {
    std::byte* block = rx_.base + rx_.next * rx_.block_size;
    auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
    if ((load_status(desc->hdr.bh1.block_status) & TP_STATUS_USER) == 0) {
      break;  // the kernel is still filling it
    }
    deliver_block(block, on_frame, delivered);
    store_status(desc->hdr.bh1.block_status, std::uint32_t{TP_STATUS_KERNEL});
    rx_.next = (rx_.next + 1) % rx_.count;
  }
  return delivered;
}

void PacketLink::receive_large(const FrameHandler& on_frame, std::size_t max_frames,
                               std::size_t& delivered) {
  while (delivered < max_frames) {
    sockaddr_ll from{};
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(tpacket_auxdata))> control{};
    iovec iov{large_buffer_.data(), large_buffer_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(large_fd_.get(), &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      return;  // EAGAIN: none waiting (nothing else can fail on a bound packet socket)
    }
    std::uint32_t status = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
        tpacket_auxdata aux{};
        std::memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        status = aux.tp_status;
      }
    }
    const auto len = static_cast<std::size_t>(n);
    if (from.sll_pkttype == PACKET_OUTGOING) {
      ++counters_.rx_ignored_outgoing;
    } else if (len > large_buffer_.size() || (msg.msg_flags & MSG_TRUNC) != 0) {
      ++counters_.rx_truncated;  // beyond 64 KB: BIG TCP is on at the interface
    } else if ((status & TP_STATUS_VLAN_VALID) != 0) {
      ++counters_.rx_vlan;
    } else {
      RxFrame frame;
      frame.bytes = wire::Bytes(large_buffer_.data(), len);
      frame.meta.checksum_not_ready = (status & TP_STATUS_CSUMNOTREADY) != 0;
      frame.meta.checksum_valid = (status & TP_STATUS_CSUM_VALID) != 0;
      counters_.rx_checksum_not_ready += frame.meta.checksum_not_ready ? 1 : 0;
      ++counters_.rx_large_frames;
      ++counters_.rx_frames;
      counters_.rx_bytes += len;
      ++delivered;
      on_frame(frame);
    }
  }
}

void PacketLink::deliver_block(std::byte* block, const FrameHandler& on_frame,
                               std::size_t& delivered) {
  auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
  const std::uint32_t n = desc->hdr.bh1.num_pkts;
  std::byte* at = block + desc->hdr.bh1.offset_to_first_pkt;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto* hdr = reinterpret_cast<tpacket3_hdr*>(at);
    auto* sll = reinterpret_cast<sockaddr_ll*>(at + TPACKET_ALIGN(sizeof(tpacket3_hdr)));
    const std::uint32_t status = hdr->tp_status;
    if (sll->sll_pkttype == PACKET_OUTGOING) {
      ++counters_.rx_ignored_outgoing;  // our own host's transmission, not traffic for us
    } else if (hdr->tp_snaplen < hdr->tp_len) {
      ++counters_.rx_truncated;  // cannot happen while the length filter is on
    } else if ((status & TP_STATUS_VLAN_VALID) != 0) {
      ++counters_.rx_vlan;  // the stack does not speak 802.1Q; the kernel took the tag off
    } else {
      RxFrame frame;
      frame.bytes = wire::Bytes(at + hdr->tp_mac, hdr->tp_snaplen);
      frame.meta.checksum_not_ready = (status & TP_STATUS_CSUMNOTREADY) != 0;
      frame.meta.checksum_valid = (status & TP_STATUS_CSUM_VALID) != 0;
      counters_.rx_checksum_not_ready += frame.meta.checksum_not_ready ? 1 : 0;
      ++counters_.rx_frames;
      counters_.rx_bytes += hdr->tp_snaplen;
      ++delivered;
      on_frame(frame);
    }
    at += hdr->tp_next_offset;
  }
}

bool PacketLink::send(wire::Bytes frame, stack::TxMeta meta) {
  if (meta.gso_size == 0 && frame.size() > mtu_ + kEthernetHeader) {
    // Not the stack's (it marks its own): a TCP segment merged by receive offload that the
    // master forwards to its owner. Cut it at the MTU, as Linux's GSO cuts a forwarded GRO
    // packet; the pieces stay within the MSS the cluster advertised (MTU - 40).
    const std::uint16_t gso = resegment(frame);
    if (gso == 0) {
      ++counters_.tx_too_big;
      return false;
    }
    ++counters_.tx_resegmented;
    frame = resegment_scratch_;
    meta.gso_size = gso;
  }
  if (meta.gso_size == 0) {
    return send_ring(frame);
  }
  if (frame.size() > kEthernetHeader + 0xffff) {
    ++counters_.tx_too_big;
    return false;
  }
  if (frame.size() <= kEthernetHeader ||
      stack::gso_pieces(frame.subspan(kEthernetHeader), meta.gso_size) == 0) {
    ++counters_.tx_not_tcp;  // a stack bug: only TCP segments are marked
    return false;
  }
  if (offload_fd_.valid() && send_offloaded(frame, meta.gso_size)) {
    return true;
  }
  bool all = true;
  stack::for_each_gso_frame(frame, meta.gso_size, cut_scratch_, [&](wire::Bytes piece) {
    ++counters_.tx_cut_here;
    all = send_ring(piece) && all;
  });
  return all;
}

std::uint16_t PacketLink::resegment(wire::Bytes frame) {
  using wire::Ipv4View;
  using wire::TcpView;
  if (frame.size() <= kEthernetHeader + Ipv4View::kMinHeaderSize ||
      wire::read_u16(frame, 12) != 0x0800) {
    return 0;
  }
  const wire::Bytes datagram = frame.subspan(kEthernetHeader);
  const std::size_t ip_header = std::size_t{wire::read_u8(datagram, 0) & 0x0fu} * 4;
  if (ip_header < Ipv4View::kMinHeaderSize ||
      datagram.size() < ip_header + TcpView::kMinHeaderSize) {
    return 0;
  }
  const std::size_t tcp_header =
      std::size_t{wire::read_u8(datagram, ip_header + TcpView::kDataOffset)} / 16 * 4;
  if (ip_header + tcp_header >= mtu_) {
    return 0;
  }
  const auto gso = static_cast<std::uint16_t>(mtu_ - ip_header - tcp_header);
  if (stack::gso_pieces(datagram, gso) < 2 || (wire::read_u16(datagram, 6) & 0x3fff) != 0) {
    return 0;  // not IPv4 TCP with consistent lengths, or a fragment
  }
  // The kernel finishes each piece's checksum from the pseudo-header sum (the software cut
  // computes it whole and ignores the field).
  resegment_scratch_.assign(frame.begin(), frame.end());
  const wire::MutBytes d = wire::MutBytes(resegment_scratch_).subspan(kEthernetHeader);
  const auto length = static_cast<std::uint16_t>(d.size() - ip_header);
  const std::uint32_t pseudo = wire::checksum::pseudo_header(
      wire::Ipv4Addr::read(d, Ipv4View::kSrc), wire::Ipv4Addr::read(d, Ipv4View::kDst),
      wire::ipproto::kTcp, length);
  wire::write_u16(d, ip_header + TcpView::kChecksum, static_cast<std::uint16_t>(pseudo));
  return gso;
}

bool PacketLink::send_offloaded(wire::Bytes frame, std::uint16_t gso_size) {
  // Frames go out in the order they were queued: the ring's first.
  flush();
  const std::size_t l4 =
      kEthernetHeader + std::size_t{wire::read_u8(frame, kEthernetHeader) & 0x0fu} * 4;
  const std::size_t tcp_header = std::size_t{wire::read_u8(frame, l4 + 12)} / 16 * 4;
  VnetHeader vnet;
  vnet.flags = kVnetNeedsChecksum;
  vnet.gso_type = kVnetGsoTcpv4;
  vnet.hdr_len = static_cast<std::uint16_t>(l4 + tcp_header);
  vnet.gso_size = gso_size;
  vnet.csum_start = static_cast<std::uint16_t>(l4);
  vnet.csum_offset = 16;  // the TCP checksum field
  iovec iov[2] = {{&vnet, sizeof(vnet)}, {const_cast<std::byte*>(frame.data()), frame.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  if (::sendmsg(offload_fd_.get(), &msg, MSG_DONTWAIT) < 0) {
    ++counters_.tx_offload_errors;
    return false;
  }
  ++counters_.tx_offloaded;
  ++counters_.tx_frames;
  counters_.tx_bytes += frame.size();
  return true;
}

bool PacketLink::send_ring(wire::Bytes frame) {
  constexpr std::size_t kDataOffset = TPACKET2_HDRLEN - sizeof(sockaddr_ll);
  if (frame.size() > tx_.frame_size - kDataOffset || frame.size() > mtu_ + kEthernetHeader) {
    ++counters_.tx_too_big;
    return false;
  }
  std::byte* slot = tx_.base + tx_.next * tx_.frame_size;
  auto* hdr = reinterpret_cast<tpacket2_hdr*>(slot);
  if (load_status(hdr->tp_status) != TP_STATUS_AVAILABLE && tx_queued_ > 0) {
    // The ring has wrapped onto frames we queued: hand them to the kernel now. On a virtual
    // device (veth) it sends them before returning, so the slot is free again; without this
    // a batch longer than the ring would lose its tail and cost the connection a recovery.
    flush();
  }
  if (load_status(hdr->tp_status) != TP_STATUS_AVAILABLE) {
    ++counters_.tx_ring_full;  // still queued or in flight: the ring has wrapped
    return false;
  }
  std::memcpy(slot + kDataOffset, frame.data(), frame.size());
  hdr->tp_len = static_cast<std::uint32_t>(frame.size());
  store_status(hdr->tp_status, std::uint32_t{TP_STATUS_SEND_REQUEST});
  tx_.next = (tx_.next + 1) % tx_.count;
  ++tx_queued_;
  ++counters_.tx_frames;
  counters_.tx_bytes += frame.size();
  return true;
}

void PacketLink::flush() {
  if (tx_queued_ == 0) {
    return;
  }
  if (::sendto(tx_fd_.get(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
    // ENOBUFS/EAGAIN: the device queue is full. The slots keep TP_STATUS_SEND_REQUEST and go
    // with the next flush.
    ++counters_.tx_send_errors;
    return;
  }
  tx_queued_ = 0;
}

Status PacketLink::add_membership(wire::MacAddr mac) {
  if (!mac.is_multicast()) {
    return Error{"add_membership: " + mac.to_string() + " is not a multicast MAC"};
  }
  return membership(PACKET_ADD_MEMBERSHIP, PACKET_MR_MULTICAST, &mac);
}

Status PacketLink::drop_membership(wire::MacAddr mac) {
  return membership(PACKET_DROP_MEMBERSHIP, PACKET_MR_MULTICAST, &mac);
}

Status PacketLink::membership(int op, int type, const wire::MacAddr* mac) {
  packet_mreq mreq{};
  mreq.mr_ifindex = ifindex_;
  mreq.mr_type = static_cast<unsigned short>(type);
  if (mac != nullptr) {
    mreq.mr_alen = wire::MacAddr::kSize;
    std::memcpy(mreq.mr_address, mac->octets().data(), wire::MacAddr::kSize);
  }
  if (::setsockopt(rx_fd_.get(), SOL_PACKET, op, &mreq, sizeof(mreq)) != 0) {
    return errno_error(op == PACKET_ADD_MEMBERSHIP ? "PACKET_ADD_MEMBERSHIP"
                                                   : "PACKET_DROP_MEMBERSHIP");
  }
  return Ok{};
}

const PacketLinkCounters& PacketLink::counters() {
  tpacket_stats_v3 stats{};
  socklen_t len = sizeof(stats);
  if (::getsockopt(rx_fd_.get(), SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0) {
    counters_.rx_kernel_drops += stats.tp_drops;
  }
  if (large_fd_.valid()) {
    tpacket_stats large{};
    len = sizeof(large);
    if (::getsockopt(large_fd_.get(), SOL_PACKET, PACKET_STATISTICS, &large, &len) == 0) {
      counters_.rx_large_kernel_drops += large.tp_drops;
    }
  }
  return counters_;
}

}  // namespace phalanx::runtime
