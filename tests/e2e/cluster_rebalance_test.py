#!/usr/bin/env python3
"""E2E, issue 10: rebalancing never breaks a live connection.
2 members serve 24 slow HTTP downloads (2 MiB each, paced by the client to 300 KiB/s, ~7 s,
one source port each, so spread over the worksets); a third member joins meanwhile and the
rebalancing (period 1 s) runs several times while they last. Until sessions can move with their
workset, the master must move only worksets without live sessions: every download completes
with the right sha256, the client's capture shows no RST from the cluster IP, and the joiner
still gets work (idle worksets at once, new connections, the rest once the downloads end).
Prints `figure:` lines. About 25 s."""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import SLOW_FETCH, ClusterLab, fetch_many, log  # noqa: E402

PERIOD_MS = 1000
SIZE = 2 * 1024 * 1024
RATE = 300 * 1024
PORTS = list(range(43000, 43000 + 24 * 11, 11))


def main() -> int:
    with ClusterLab(f"crb{os.getpid() % 10000}", members=3, clients=1,
                    rebalance_period_ms=PERIOD_MS) as cl:
        try:
            sha = cl.make_file("big.bin", SIZE)
            small = cl.make_file("small.bin", 4096)
            cl.start("member1")
            cl.start("member2")
            master = cl.wait_master(10, members=["member1", "member2"])
            assert master, "no master elected"
            # Idle worksets too: short fetches that end before the join (their worksets keep
            # an owner and carry no session afterwards).
            warm = fetch_many(cl, "client1", "small.bin", small, range(30000, 30000 + 8 * 7, 7))
            assert not warm["failed"], f"warm-up fetches failed: {warm['failed'][:5]}"
            cap = cl.capture("client1", f"src host {cl.cluster_ip} and "
                             "tcp[tcpflags] & tcp-rst != 0")
            out = cl.path("downloads.json")
            proc = cl.spawn("client1", ["python3", "-c", SLOW_FETCH, cl.cluster_ip, "big.bin",
                                        sha, ",".join(map(str, PORTS)), str(RATE), out])
            time.sleep(1.5)
            t_join = time.monotonic()
            cl.start("member3")

            def joined_with_work():
                v = cl.status("member3")
                return bool(v and v["role"] == "follower" and len(v["owned"]) > 0)
            assert cl.wait_for(joined_with_work, timeout=4 * PERIOD_MS / 1000 + 2), \
                f"member3 got no worksets: {cl.ctl_table()}"
            got_work_s = time.monotonic() - t_join
            # New connections while the downloads run: their worksets may go to the joiner.
            fresh = fetch_many(cl, "client1", "small.bin", small, range(50000, 50000 + 30 * 7, 7))
            assert not fresh["failed"], f"new connections failed: {fresh['failed'][:5]}"
            deadline = time.monotonic() + 40
            while proc.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not proc.alive(), "downloads did not finish"
            download_end_s = time.monotonic() - t_join
            rst = [ln for ln in cap.stop() if "Flags [R" in ln]
            with open(out) as f:
                results = {r["port"]: r for r in json.load(f)}
            failed = {p: r["err"] for p, r in results.items() if not r["ok"]}
            views = cl.views()
            mc = views[cl.ip(master)]["counters"]
            log(f"master {master}: worksets_moved={mc.get('cluster.worksets_moved')} "
                f"rebalance_kept_busy={mc.get('cluster.rebalance_kept_busy')} "
                f"moves_cancelled={mc.get('cluster.moves_cancelled')}; "
                f"member3 had work {got_work_s:.1f} s after starting; downloads ended "
                f"{download_end_s:.1f} s after the join")
            print(cl.ctl_table())
            assert len(results) == len(PORTS), f"{len(results)} results of {len(PORTS)}"
            assert not failed, f"downloads failed across the rebalancing: " \
                f"{list(failed.items())[:5]}"
            assert not rst, f"RST from the cluster IP: {rst[:5]}"
            assert mc.get("cluster.rebalance_kept_busy", 0) > 0, \
                "the rebalancing never met a workset with live sessions: inconclusive"
            # Once the downloads are over, the next passes balance the rest.
            def balanced():
                owned = [len((cl.status(m) or {}).get("owned", [])) for m in cl.members]
                return min(owned) > 0 and max(owned) - min(owned) <= 1
            assert cl.wait_for(balanced, timeout=4 * PERIOD_MS / 1000 + 2), \
                f"not balanced after the downloads: {cl.ctl_table()}"
            print(f"figure: rebalance_downloads_ok = {len(results) - len(failed)} "
                  f"of {len(PORTS)} downloads")
            print(f"figure: rebalance_rst = {len(rst)} segments")
            print(f"figure: rebalance_joiner_work_after = {got_work_s:.2f} s")
            return 0
        except BaseException:
            cl.dump_logs()
            raise


if __name__ == "__main__":
    sys.exit(main())
