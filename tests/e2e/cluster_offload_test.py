#!/usr/bin/env python3
"""End-to-end: a cluster with the interfaces' offloads on (issue 9, part 8).

Two members and one client, tx checksum, TSO and GRO on at every veth (phalanx-lab
--offloads on), in `forwarding` mode (the master relays every client frame to its owner, so a
merged segment crosses the master) and in `multicast` mode. In each: four 4 MB uploads to echo
(echoed back) from four source ports, so that both members serve some, and a 4 MB download, all
byte-exact; then `phalanxctl status` lists the link's counters of every member: merged segments
were received whole (link.rx_large_frames) and no link drop is listed (no link.rx_truncated).

Needs root; PHALANX_BUILD and PHALANX_ROOT. Exit 0 = pass.
"""

import hashlib
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, log  # noqa: E402

MB = 1_000_000
CLIENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients")


class Failure(Exception):
    pass


def check(cond, msg: str) -> None:
    if not cond:
        raise Failure(msg)


def run_mode(mode: str) -> None:
    with ClusterLab(f"coff{mode[0]}{os.getpid() % 10000}", members=2, clients=1, mode=mode,
                    offloads="on") as cl:
        cl.start_all()
        master = cl.wait_master(timeout=15)
        check(master is not None, f"{mode}: no master agreed on:\n{cl.ctl_table()}")
        data = os.urandom(4 * MB)
        with open(os.path.join(cl.site, "4m.bin"), "wb") as f:
            f.write(data)
        for i in range(4):
            try:
                p = cl.run("client1", [sys.executable, os.path.join(CLIENTS, "tcp_echo.py"),
                                       cl.cluster_ip, "7", str(4 * MB), "20"], check=False,
                           timeout=30)
            except subprocess.TimeoutExpired:
                raise Failure(f"{mode}: upload {i} to echo did not finish in 30 s (it hangs)\n"
                              f"{cl.ctl_table()}")
            check(p.returncode == 0, f"{mode}: upload {i} to echo: rc {p.returncode}\n"
                  f"{p.stdout[-2000:]}{p.stderr[-2000:]}\n{cl.ctl_table()}")
        p = subprocess.run(cl._argv("client1", ["curl", "-sS", "--max-time", "20", "--speed-limit",
                                                "1000", "--speed-time", "5",
                                                f"http://{cl.cluster_ip}/4m.bin"]),
                           capture_output=True, timeout=30)
        check(p.returncode == 0 and hashlib.sha256(p.stdout).digest() ==
              hashlib.sha256(data).digest(), f"{mode}: download: rc {p.returncode} "
              f"{len(p.stdout)} bytes {p.stderr[-500:]!r}")
        large = 0
        for m in cl.members:
            st = cl.status(m)
            check(st is not None, f"{mode}: {m} does not answer status")
            counters, drops = st["counters"], st["drops"]
            check("link.rx_frames" in counters, f"{mode}: {m}: no link counters in status")
            link_drops = {k: v for k, v in drops.items() if k.startswith("link.")}
            check(not link_drops, f"{mode}: {m}: link drops {link_drops}")
            large += counters.get("link.rx_large_frames", 0)
            log(f"{mode}: {m}: {counters.get('link.rx_large_frames', 0)} merged segments "
                f"received whole, {counters.get('link.tx_resegmented', 0)} relayed cut at "
                f"the MTU, {counters.get('stack.tcp_accepted', 0)} connections served")
        check(large > 0, f"{mode}: no merged segment reached any member")
        log(f"{mode}: 4 uploads of 4 MB and a 4 MB download byte-exact, no link drop")


def main() -> int:
    if os.geteuid() != 0:
        print("cluster_offload_test: needs root", file=sys.stderr)
        return 1
    try:
        run_mode("forwarding")
        run_mode("multicast")
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
