#!/usr/bin/env python3
"""E2E: a member joining a busy cluster (2 members serving a steady stream of connections)
gets worksets within a few rebalance periods (period 1 s here), and serves connections.
About 15 s."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, _FETCH, fetch_many, log, workset_xor  # noqa: E402

PERIOD_S = 1.0


def main() -> int:
    with ClusterLab(f"cj{os.getpid() % 10000}", members=3, clients=1,
                    rebalance_period_ms=int(PERIOD_S * 1000)) as cl:
        try:
            sha = cl.make_file("f.bin", 16 * 1024)
            for m in ("member1", "member2"):
                cl.start(m)
            assert cl.wait_master(10, members=["member1", "member2"]), "no master"
            # Busy: connections from 600 source ports, over the whole test.
            ports = ",".join(str(p) for p in range(20000, 20000 + 600 * 17, 17))
            load = cl.spawn("client1", ["python3", "-c", _FETCH, cl.cluster_ip, "f.bin", sha,
                                        ports, "2", "5"])
            time.sleep(2)
            cl.start("member3")
            t0 = time.monotonic()
            got = {}

            def has_work():
                v = cl.status("member3")
                if v and v["role"] == "follower" and len(v["owned"]) > 0:
                    got["n"] = len(v["owned"])
                    return True
                return False
            ok = cl.wait_for(has_work, timeout=4 * PERIOD_S + 2)
            dt = time.monotonic() - t0
            assert ok, f"member3 has no worksets after {dt:.1f} s: {cl.ctl_table()}"
            log(f"member3 joined and owns {got['n']} worksets after {dt:.2f} s "
                f"(rebalance period {PERIOD_S} s)")
            owned = set(cl.status("member3")["owned"])
            ports = [p for p in range(40000, 60000)
                     if workset_xor(cl.ip("client1"), p) in owned][:20]
            res = fetch_many(cl, "client1", "f.bin", sha, ports)
            assert not res["failed"], f"to member3's worksets: {res['failed'][:5]}"
            assert cl.status("member3")["counters"].get("stack.tcp_accepted", 0) > 0, \
                "member3 served no connection"
            load.popen.wait(60)
            out = load.output().strip().splitlines()[-1]
            assert '"failed": []' in out, f"connections failed during the join: {out[-500:]}"
            log(cl.ctl_table())
        except BaseException:
            cl.dump_logs()
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
