// PacketLink: a member's data plane on a Linux interface through AF_PACKET.
//
// Receive: one socket with a TPACKET_V3 ring of mmap'd blocks. The kernel fills a block and
// hands it over when it is full or `rx_block_timeout` after its first frame, so one wakeup
// reads many frames. Frames this host sends (PACKET_OUTGOING) are ignored.
// Receive offload: with GRO on the interface, or a local sender with TSO (a veth peer), TCP
// segments arrive merged, up to 64 KB per frame. The blocks stay small (a stream of ACKs
// would otherwise wait for the block timeout), so frames larger than a block can hold go, by a
// socket filter on their length, to a second socket without a ring that reads them whole with
// their checksum state (PACKET_AUXDATA). receive() reads that socket first, then the ring: a
// burst's merged segments come before the short tail that followed them. fd() is an epoll
// descriptor over both sockets.
// Send: a second socket, bound with protocol 0 so it receives nothing, with a TPACKET_V2 TX ring;
// send() copies a frame into the next free slot and flush() hands every filled slot to the
// kernel with one sendto(MSG_DONTWAIT).
//
// All descriptors are non-blocking.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/link.hpp"
#include "runtime/unique_fd.hpp"
#include "wire/addr.hpp"

namespace phalanx::runtime {

struct PacketLinkOptions {
  std::string interface;
  std::size_t rx_block_size = std::size_t{1} << 13;  // bytes; a multiple of the page size
  std::size_t rx_block_count = 1024;
  std::chrono::milliseconds rx_block_timeout{1};
  std::size_t tx_frame_count = 512;  // slots in the TX ring (rounded up to whole blocks)
  // Skip the qdisc layer on send (PACKET_QDISC_BYPASS): faster, but local taps (tcpdump on
  // the member) no longer see what the member sends.
  bool qdisc_bypass = false;
  // Receive every frame on the wire, not only those to the interface's MAC, broadcast and the
  // multicast groups added with add_membership() (for the unicast-cluster-MAC mode).
  bool promiscuous = false;
  // Segmentation offload: frames marked TxMeta::gso_size go to the kernel whole, through a third
  // socket with PACKET_VNET_HDR, and Linux GSO or the NIC's TSO cuts them. When the kernel
  // refuses the socket option, offload_max() is 0.
  bool offload = true;
};

// Monotonic counts since open(). Every frame not delivered or not sent has a counter.
struct PacketLinkCounters {
  std::uint64_t rx_frames = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_ignored_outgoing = 0;    // our own host's transmissions seen by the tap
  std::uint64_t rx_large_frames = 0;        // delivered whole from the large-frame socket
  std::uint64_t rx_truncated = 0;           // larger than even the large-frame buffer (64 KB)
  std::uint64_t rx_vlan = 0;                // arrived with a VLAN tag the kernel stripped
  std::uint64_t rx_kernel_drops = 0;        // the ring was full (PACKET_STATISTICS tp_drops)
  std::uint64_t rx_large_kernel_drops = 0;  // the large-frame socket's buffer was full
  std::uint64_t rx_checksum_not_ready = 0;  // delivered, flagged checksum_not_ready
  std::uint64_t tx_frames = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_ring_full = 0;    // no free slot: the kernel has not sent the older frames
  std::uint64_t tx_too_big = 0;      // longer than a slot or the interface MTU allows
  std::uint64_t tx_send_errors = 0;  // sendto() failed; the frames stay queued for the next flush
  std::uint64_t tx_offloaded = 0;    // frames handed to the kernel to cut (GSO/TSO)
  std::uint64_t tx_offload_errors = 0;  // the kernel refused one: cut here instead
  std::uint64_t tx_cut_here = 0;        // frames marked for offload and cut in user space
  std::uint64_t tx_not_tcp = 0;         // marked for offload but not an IPv4 TCP segment
  std::uint64_t tx_resegmented = 0;     // unmarked TCP segments beyond the MTU (a merged segment
                                        // the master forwards), cut to it as offload
};

class PacketLink final : public Link {
 public:
  // Opens both sockets on `options.interface`. Fails with the system's reason when the
  // interface does not exist, we lack CAP_NET_RAW, or a ring cannot be set up.
  static Result<std::unique_ptr<PacketLink>> open(const PacketLinkOptions& options);

  ~PacketLink() override;
  PacketLink(const PacketLink&) = delete;
  PacketLink& operator=(const PacketLink&) = delete;

  int fd() const override { return poll_fd_.get(); }
  std::size_t receive(const FrameHandler& on_frame, std::size_t max_frames) override;
  using Link::send;
  bool send(wire::Bytes frame, stack::TxMeta meta) override;
  void flush() override;
  std::size_t offload_max() const override { return offload_fd_.valid() ? 65535 : 0; }
  // Why offload is off although the options asked for it; empty when it is on or not asked.
  const std::string& offload_error() const { return offload_error_; }

  // Also receive frames sent to the multicast MAC `mac` (the cluster MAC in multicast mode).
  // Fails when the MAC is not a multicast address or the kernel refuses.
  Status add_membership(wire::MacAddr mac);
  Status drop_membership(wire::MacAddr mac);

  const std::string& interface() const { return interface_; }
  int ifindex() const { return ifindex_; }
  wire::MacAddr mac() const { return mac_; }
  unsigned mtu() const { return mtu_; }

  // Also folds in the kernel's drop count for the receive ring (read-and-reset in the kernel,
  // accumulated here), hence not const.
  const PacketLinkCounters& counters();

 private:
  struct Ring {
    std::byte* base = nullptr;
    std::size_t size = 0;
    std::size_t frame_size = 0;  // TX: slot size; RX: unused
    std::size_t block_size = 0;
    std::size_t count = 0;  // RX: blocks; TX: slots
    std::size_t next = 0;   // RX: the next block to read; TX: the next slot to fill
  };

  PacketLink() = default;
  Status open_rx(const PacketLinkOptions& options);
  // The socket for frames above `largest_in_ring` bytes, and the epoll descriptor over both.
  Status open_large(std::size_t largest_in_ring);
  void receive_large(const FrameHandler& on_frame, std::size_t max_frames, std::size_t& delivered);
  Status open_tx(const PacketLinkOptions& options);
  // The offload socket; on failure offload stays off (offload_max() 0) and the reason is returned.
  Status open_offload(const PacketLinkOptions& options);
  bool send_ring(wire::Bytes frame);
  bool send_offloaded(wire::Bytes frame, std::uint16_t gso_size);
  // For an IPv4 TCP segment beyond the MTU: copies it to resegment_scratch_ with the
  // pseudo-header checksum and returns the payload per MTU-sized piece; 0 for anything else.
  std::uint16_t resegment(wire::Bytes frame);
  Status membership(int op, int type, const wire::MacAddr* mac);
  void deliver_block(std::byte* block, const FrameHandler& on_frame, std::size_t& delivered);

  std::string interface_;
  int ifindex_ = 0;
  wire::MacAddr mac_;
  unsigned mtu_ = 0;
  UniqueFd rx_fd_;
  UniqueFd large_fd_;  // invalid when the ring's blocks hold the largest frame
  UniqueFd poll_fd_;
  std::vector<std::byte> large_buffer_;
  UniqueFd tx_fd_;
  UniqueFd offload_fd_;
  std::vector<std::byte> cut_scratch_;
  std::vector<std::byte> resegment_scratch_;
  std::string offload_error_;
  Ring rx_;
  Ring tx_;
  std::size_t tx_queued_ = 0;  // filled since the last successful flush
  PacketLinkCounters counters_;
};

}  // namespace phalanx::runtime
