// The cost of deciding whether a frame is ours: the workset filter (spec FIG. 9) against the
// baseline the spec argues against, a per-connection table keyed by the 5-tuple (here a
// std::unordered_map holding 1,000,000 live flows) looked up for every frame. Both sides parse the
// same Ethernet + IPv4 + port headers through the same wire views. The stream is what a server
// with that many live connections sees: 2^20 pre-built TCP and UDP frames, each from a flow drawn
// at random from the 1,000,000 live flows (every one of them present in the map), laid out one
// after another in one buffer and cycled.
//
// After the benchmark table it prints `figure:`, `baseline:` and `ratio:` lines for
// scripts/run-benchmarks.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "filter/workset_table.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/mix.hpp"

namespace {

using namespace phalanx;

constexpr wire::Ipv4Addr kCluster{198, 18, 0, 100};
constexpr std::size_t kStreamFrames = std::size_t{1} << 20;  // a power of two: wraps with a mask
constexpr std::size_t kFrameStride = 64;  // bytes per frame slot in the stream buffer
constexpr std::size_t kLiveFlows = 1'000'000;

// The bench's own fixed generator: splitmix64.
struct SplitMix64 {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

struct FiveTuple {
  std::uint32_t src = 0;
  std::uint32_t dst = 0;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint8_t proto = 0;
  bool operator==(const FiveTuple&) const = default;
};

// A good, cheap hash for the baseline: both words through the murmur3 finalizer.
struct FiveTupleHash {
  std::size_t operator()(const FiveTuple& t) const {
    const std::uint64_t a = (std::uint64_t{t.src} << 32) | t.dst;
    const std::uint64_t b =
        (std::uint64_t{t.sport} << 24) | (std::uint64_t{t.dport} << 8) | t.proto;
    return wire::fmix64(a ^ wire::fmix64(b));
  }
};

struct FlowEntry {
  std::uint16_t owner = 0;
  std::uint64_t packets = 0;
};

using FlowTable = std::unordered_map<FiveTuple, FlowEntry, FiveTupleHash>;

FiveTuple random_flow(SplitMix64& rng) {
  const std::uint64_t r = rng.next();
  FiveTuple t;
  t.src = static_cast<std::uint32_t>(r >> 32);
  t.dst = kCluster.value();
  t.sport = static_cast<std::uint16_t>(1024 + (r & 0xffff) % (65536 - 1024));
  static constexpr std::uint16_t kServices[] = {80, 443, 443, 53};
  t.dport = kServices[(r >> 16) & 3];
  t.proto = t.dport == 53 ? wire::ipproto::kUdp : wire::ipproto::kTcp;
  return t;
}

std::vector<std::byte> build_frame(const FiveTuple& t) {
  const wire::EthernetRepr eth{wire::MacAddr{{0x01, 0x00, 0x5e, 0x7f, 0x00, 0x64}},
                               wire::MacAddr{{0x02, 0, 0, 0, 0, 1}}, std::nullopt,
                               wire::ethertype::kIpv4};
  const std::size_t l4 = t.proto == wire::ipproto::kTcp ? 20 : 8 + 8;
  wire::Ipv4Repr ip;
  ip.src = wire::Ipv4Addr{t.src};
  ip.dst = wire::Ipv4Addr{t.dst};
  ip.protocol = t.proto;
  ip.payload_len = static_cast<std::uint16_t>(l4);
  std::vector<std::byte> f(eth.size() + ip.size() + l4, std::byte{0});
  eth.emit(f);
  ip.emit(wire::MutBytes(f).subspan(eth.size()));
  const wire::MutBytes l4b = wire::MutBytes(f).subspan(eth.size() + ip.size());
  wire::write_u16(l4b, filter::kL4SrcPort, t.sport);
  wire::write_u16(l4b, filter::kL4DstPort, t.dport);
  if (t.proto == wire::ipproto::kTcp) {
    wire::write_u8(l4b, 12, 5 << 4);  // data offset
    wire::write_u8(l4b, 13, 0x10);    // ACK
  } else {
    wire::write_u16(l4b, 4, static_cast<std::uint16_t>(l4));
  }
  return f;
}

struct Fixture {
  std::vector<std::byte> buffer;  // kStreamFrames slots of kFrameStride bytes
  std::vector<wire::Bytes> frames;
  FlowTable table;

  Fixture() {
    SplitMix64 rng{20240601};
    std::vector<FiveTuple> live;
    live.reserve(kLiveFlows);
    table.reserve(kLiveFlows);
    while (table.size() < kLiveFlows) {
      const FiveTuple t = random_flow(rng);
      if (table.emplace(t, FlowEntry{static_cast<std::uint16_t>(rng.next() % 4), 0}).second) {
        live.push_back(t);
      }
    }
    buffer.resize(kStreamFrames * kFrameStride);
    for (std::size_t i = 0; i < kStreamFrames; ++i) {
      const std::vector<std::byte> f = build_frame(live[rng.next() % kLiveFlows]);
      std::byte* slot = buffer.data() + i * kFrameStride;
      std::copy(f.begin(), f.end(), slot);
      frames.emplace_back(slot, f.size());
    }
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// A follower of a four-member cluster owning a quarter of the worksets.
filter::WorksetTable make_table(filter::HashKind hash) {
  filter::WorksetTableConfig c;
  c.cluster_ip = kCluster;
  c.self = filter::MemberId{0};
  c.hash = hash;
  filter::WorksetTable t(c);
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    t.assign(filter::WorksetId{i}, filter::MemberId{static_cast<std::uint16_t>(i % 4)});
    t.ack(filter::WorksetId{i});
  }
  return t;
}

void classify_stream(benchmark::State& state, filter::HashKind hash) {
  Fixture& f = fixture();
  filter::WorksetTable table = make_table(hash);
  const std::vector<wire::Bytes>& frames = f.frames;
  std::size_t i = 0;
  std::uint64_t mine = 0;
  for (auto _ : state) {
    const filter::Verdict v = table.classify(frames[i]);
    mine += v.kind == filter::VerdictKind::mine ? 1 : 0;
    i = (i + 1) & (kStreamFrames - 1);
  }
  benchmark::DoNotOptimize(mine);
  state.counters["mine_share"] = static_cast<double>(table.count(filter::VerdictKind::mine)) /
                                 static_cast<double>(state.iterations());
}

void BM_WorksetClassifyXor(benchmark::State& state) {
  classify_stream(state, filter::HashKind::xor_fold);
}
BENCHMARK(BM_WorksetClassifyXor);

void BM_WorksetClassifyMix(benchmark::State& state) {
  classify_stream(state, filter::HashKind::mix);
}
BENCHMARK(BM_WorksetClassifyMix);

// The baseline: parse the same headers, build the 5-tuple, look it up in the flow table.
void BM_FlowTableLookup(benchmark::State& state) {
  Fixture& f = fixture();
  const std::vector<wire::Bytes>& frames = f.frames;
  const std::uint16_t self = 0;
  std::size_t i = 0;
  std::uint64_t mine = 0;
  std::uint64_t missing = 0;
  for (auto _ : state) {
    const wire::Bytes frame = frames[i];
    i = (i + 1) & (kStreamFrames - 1);
    auto eth = wire::EthernetView::parse(frame);
    if (!eth || eth->ethertype() != wire::ethertype::kIpv4) {
      continue;
    }
    auto ip = wire::Ipv4View::parse(eth->payload());
    if (!ip || ip->dst() != kCluster || ip->is_fragment()) {
      continue;
    }
    const wire::Bytes l4 = ip->payload();
    if (l4.size() < filter::kL4PortsSize) {
      continue;
    }
    const FiveTuple key{ip->src().value(), ip->dst().value(),
                        wire::read_u16(l4, filter::kL4SrcPort),
                        wire::read_u16(l4, filter::kL4DstPort), ip->protocol()};
    const auto it = f.table.find(key);
    if (it == f.table.end()) {
      ++missing;
      continue;
    }
    mine += it->second.owner == self ? 1 : 0;
  }
  benchmark::DoNotOptimize(mine);
  if (missing != 0) {
    state.SkipWithError("a flow of the stream is missing from the table");
  }
  state.counters["flows"] = static_cast<double>(f.table.size());
}
BENCHMARK(BM_FlowTableLookup);

// Keeps the console table and remembers each benchmark's time per iteration.
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  // Tabular, no colour: the output is read by scripts/run-benchmarks, not only by people.
  CapturingReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        // CPU time (the default unit, ns): on a shared machine wall time also counts preemption.
        ns_[r.benchmark_name()] = r.GetAdjustedCPUTime();
      }
    }
  }
  double ns(const std::string& name) const {
    const auto it = ns_.find(name);
    return it == ns_.end() ? 0.0 : it->second;
  }

 private:
  std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  fixture();  // build the 1M-flow table before any timing
  CapturingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  const double xor_ns = reporter.ns("BM_WorksetClassifyXor");
  const double mix_ns = reporter.ns("BM_WorksetClassifyMix");
  const double flow_ns = reporter.ns("BM_FlowTableLookup");
  std::printf("figure: filter_classify_xor = %.2f ns/frame\n", xor_ns);
  std::printf("figure: filter_classify_mix = %.2f ns/frame\n", mix_ns);
  std::printf("baseline: flow_table_5tuple_1M = %.2f ns/frame\n", flow_ns);
  if (xor_ns > 0 && mix_ns > 0) {
    std::printf("ratio: flow_table_over_filter_xor = %.1f\n", flow_ns / xor_ns);
    std::printf("ratio: flow_table_over_filter_mix = %.1f\n", flow_ns / mix_ns);
  }
  return 0;
}
