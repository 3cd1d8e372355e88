#!/usr/bin/env python3
"""E2E: 3 members in each distribution mode (forwarding, unicast, multicast), and 5 members in
each mode too: a master is elected; 300 client connections from many source ports spread over
all members, each serving some; every download matches its sha256; no member kernel sends RST
or ICMP."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, fetch_many, kernel_noise_capture, log  # noqa: E402

CONNECTIONS = 300


def run_mode(mode: str, members: int) -> None:
    log(f"--- {mode}, {members} members")
    with ClusterLab(f"cm{mode[:2]}{members}{os.getpid() % 10000}", members=members, clients=1,
                    mode=mode) as cl:
        try:
            sha = cl.make_file("f.bin", 64 * 1024)
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master elected within 10 s"
            log(f"{mode}: master {master}")
            caps = {m: kernel_noise_capture(cl, m) for m in cl.members}
            ports = range(20000, 20000 + CONNECTIONS * 13, 13)
            res = fetch_many(cl, "client1", "f.bin", sha, ports, concurrency=8)
            assert not res["failed"], f"{len(res['failed'])} failed: {res['failed'][:5]}"
            assert len(res["ok"]) == CONNECTIONS
            views = cl.views()
            for m in cl.members:
                v = views[cl.ip(m)]
                accepted = v["counters"].get("stack.tcp_accepted", 0)
                log(f"{mode}: {m} {v['role']} serves {len(v['owned'])} worksets, "
                    f"accepted {accepted} connections")
                assert accepted > 0, f"{m} served no connection"
            for m, cap in caps.items():
                noise = cap.stop()
                assert not noise, f"{m}'s kernel sent RST/ICMP: {noise[:5]}"
            log(f"{mode}: ok")
        except BaseException:
            cl.dump_logs()
            raise


def main() -> int:
    modes = sys.argv[1:] or ["multicast", "unicast", "forwarding"]
    for members in (3, 5):
        for mode in modes:
            run_mode(mode, members)
    return 0


if __name__ == "__main__":
    sys.exit(main())
