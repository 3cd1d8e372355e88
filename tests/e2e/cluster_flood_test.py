#!/usr/bin/env python3
"""E2E, issue 9 part 4: memory and latency do not grow with spoofed sources.
2 members (multicast mode), 2 clients. client2 floods from 1,000,000 spoofed source addresses
(raw AF_PACKET, no scapy): UDP to the control group and port (what the members learned a MAC
from), then UDP to the cluster IP (what feeds the neighbour table). Before and after: each
member's phalanxd RSS (/proc/PID/status VmRSS) and ping RTT from client1 through the cluster
IP. Asserts flat RSS (< 4 MiB growth), unchanged median RTT (< 3x + 1 ms) and no failover.
Prints `figure:` lines. About 40 s."""
import os
import re
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, log  # noqa: E402

SOURCES = int(os.environ.get("PHALANX_FLOOD_SOURCES", "1000000"))
TO_CLUSTER = int(os.environ.get("PHALANX_FLOOD_CLUSTER", "200000"))
RSS_GROWTH_KB = 4096

# Runs in the attacker's namespace: argv = src MAC, dst MAC, dst IP, dst port, count, first.
# One frame template; per frame only the source address and the IPv4 checksum change (UDP
# checksum 0: none). Sources 10.0.0.0/8 from `first` on. Prints frames sent and seconds.
_FLOOD = r'''
import socket, struct, sys, time
src_mac, dst_mac = (bytes.fromhex(a.replace(":", "")) for a in sys.argv[1:3])
dst, port, count, first = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
payload = b"\x5a" * 32
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
total = 20 + len(udp)
ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, b"\0" * 4,
                           socket.inet_aton(dst)))
base = sum(struct.unpack("!10H", bytes(ip)))
frame = bytearray(dst_mac + src_mac + b"\x08\x00" + bytes(ip) + udp)
pack = struct.pack_into
send = s.send
t0 = time.monotonic()
sent = 0
for i in range(first, first + count):
    a = 0x0A000000 | (i & 0xFFFFFF)
    c = base + (a >> 16) + (a & 0xFFFF)
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    pack("!HI", frame, 24, (~c) & 0xFFFF, a)
    try:
        send(frame)
        sent += 1
    except BlockingIOError:
        pass
    except OSError:
        time.sleep(0.0005)
print(sent, time.monotonic() - t0)
'''


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def ping_rtts(cl: ClusterLab, count: int = 60) -> list:
    p = cl.run("client1", ["ping", "-n", "-c", str(count), "-i", "0.02", "-W", "1",
                           cl.cluster_ip], check=False, timeout=60)
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", p.stdout)]


def main() -> int:
    with ClusterLab(f"cfl{os.getpid() % 10000}", members=2, clients=2) as cl:
        try:
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master elected"
            epoch = cl.status(master)["epoch"]
            sent, got = cl.ping("client1", cl.cluster_ip, count=3)
            assert got == sent, f"client1 cannot reach the cluster ({got}/{sent})"
            time.sleep(0.5)
            pids = {m: cl.daemons[m].pid for m in cl.members}
            rss0 = {m: rss_kb(pid) for m, pid in pids.items()}
            rtt0 = ping_rtts(cl)
            assert len(rtt0) >= 50, f"pings lost before the flood: {len(rtt0)}"
            attacker = cl.mac("client2")
            cluster_mac = cl.views()[cl.ip(master)]["members"] and \
                cl.run("client1", ["ip", "neigh", "show", cl.cluster_ip]).stdout.split()[4]
            log(f"master {master}, epoch {epoch}; flooding {SOURCES} sources to the control "
                f"port, {TO_CLUSTER} to the cluster IP ({cluster_mac})")
            t0 = time.monotonic()
            floods = [("01:00:5e:7f:50:48", "239.255.80.72", 8472, SOURCES, 0),
                      (cluster_mac, cl.cluster_ip, 9, TO_CLUSTER, SOURCES)]
            for dst_mac, dst, port, count, first in floods:
                r = cl.run("client2", ["python3", "-c", _FLOOD, attacker, dst_mac, dst,
                                       str(port), str(count), str(first)], timeout=240)
                n, secs = r.stdout.split()
                log(f"flood to {dst}:{port}: {n} frames from distinct sources in "
                    f"{float(secs):.1f} s ({int(n) / float(secs):.0f}/s)")
            flood_s = time.monotonic() - t0
            time.sleep(1.0)
            rss1 = {m: rss_kb(pid) for m, pid in pids.items()}
            rtt1 = ping_rtts(cl)
            views = cl.views()
            med0, med1 = statistics.median(rtt0), statistics.median(rtt1)
            for m in cl.members:
                v = views[cl.ip(m)]
                log(f"{m} ({v['role']}) rss_kb before={rss0[m]} after={rss1[m]} "
                    f"growth={rss1[m] - rss0[m]}; member_macs={v['counters'].get('member_macs')}"
                    f" neighbours={v['counters'].get('neighbours')} refused: "
                    f"member_mac_not_listed={v['drops'].get('learn.member_mac_not_listed')} "
                    f"neighbour_slot_busy={v['drops'].get('learn.neighbour_slot_busy')} "
                    f"neighbour_replaced={v['counters'].get('neighbour_replaced')}")
            log(f"ping rtt ms through the cluster IP: median before={med0:.3f} "
                f"after={med1:.3f}; max before={max(rtt0):.3f} after={max(rtt1):.3f}; "
                f"replies {len(rtt0)}/60 before, {len(rtt1)}/60 after (flood took {flood_s:.1f} s)")
            print(cl.ctl_table())
            new_epoch = views[cl.ip(master)]["epoch"]
            assert views[cl.ip(master)]["role"] == "master" and new_epoch == epoch, \
                f"a failover happened during the flood (epoch {epoch} -> {new_epoch})"
            for m in cl.members:
                assert rss1[m] - rss0[m] < RSS_GROWTH_KB, \
                    f"{m}: RSS grew by {rss1[m] - rss0[m]} kB"
                assert views[cl.ip(m)]["counters"].get("member_macs", 0) <= len(cl.members)
            assert len(rtt1) >= 50, f"pings lost after the flood: {len(rtt1)}"
            assert med1 <= 3 * med0 + 1.0, f"median RTT {med0:.3f} -> {med1:.3f} ms"
            growth = max(rss1[m] - rss0[m] for m in cl.members)
            print(f"figure: flood_rss_growth_max = {growth} kB")
            print(f"figure: flood_ping_median = {med1:.3f} ms")
            print(f"baseline: ping_median_before_flood = {med0:.3f} ms")
            print(f"ratio: flood_ping_median_over_before = {med1 / med0:.2f}")
            return 0
        except BaseException:
            cl.dump_logs()
            raise


if __name__ == "__main__":
    sys.exit(main())
