#!/usr/bin/env python3
"""E2E: 5% loss of control datagrams (each member drops 5% of those it sends) for
PHALANX_LOSS_SECONDS (default 60): no false failover - no member declared dead, no master
lost, the epoch unchanged - and the master's loss estimates see the loss. About 65 s."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, log  # noqa: E402

SECONDS = float(os.environ.get("PHALANX_LOSS_SECONDS", "60"))


def main() -> int:
    with ClusterLab(f"cl{os.getpid() % 10000}", members=3, clients=1) as cl:
        try:
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master"
            epoch = cl.status(master)["epoch"]
            for m in cl.members:
                cl.loss(m, 5, direction="out", match="control")
            log(f"5% control loss on every member for {SECONDS:.0f} s; master {master}")
            deadline = time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                time.sleep(min(5, max(0.0, deadline - time.monotonic())))
                views = cl.views()
                mv = views[cl.ip(master)]
                assert mv["role"] == "master" and mv["epoch"] == epoch, cl.ctl_table()
                assert len(mv["members"]) == 3, cl.ctl_table()
            cl.clear_loss()
            views = cl.views()
            mv = views[cl.ip(master)]
            dead = mv["counters"]["cluster.followers_declared_dead"]
            lost = sum(v["counters"]["cluster.master_lost"] for v in views.values())
            loss = {e["address"]: e["loss_estimate"] for e in mv["members"]}
            log(f"after: n={mv['keepalive_n']} loss estimates {loss}; dead={dead} "
                f"master_lost={lost}")
            assert dead == 0 and lost == 0, cl.ctl_table()
        except BaseException:
            cl.dump_logs()
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
