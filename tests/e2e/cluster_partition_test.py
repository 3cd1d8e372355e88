#!/usr/bin/env python3
"""E2E partition, 3 members, multicast mode: cut member1 off from member2 + member3 (and the
client): two masters while cut; after healing exactly one master, the tie-break respected (the
side with more members wins), and no workset served by two members. About 15 s."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, fetch_many, log  # noqa: E402


def overlap(views: dict) -> set:
    seen, dup = {}, set()
    for addr, v in views.items():
        for ws in v["owned"]:
            if ws in seen:
                dup.add(ws)
            seen[ws] = addr
    return dup


def main() -> int:
    with ClusterLab(f"cp{os.getpid() % 10000}", members=3, clients=1) as cl:
        try:
            sha = cl.make_file("f.bin", 16 * 1024)
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master elected"
            res = fetch_many(cl, "client1", "f.bin", sha, range(30000, 30000 + 90 * 7, 7))
            assert not res["failed"], res["failed"][:5]
            lone, rest = "member1", ["member2", "member3"]
            log(f"master {master}; cutting {lone} off from {rest}")
            cl.partition([lone], rest + ["client1"])

            def two_masters():
                views = cl.views()
                if len(views) != 3:
                    return False
                lone_v = views[cl.ip(lone)]
                rest_masters = {views[cl.ip(m)]["master"] for m in rest}
                return (lone_v["role"] == "master" and len(rest_masters) == 1 and
                        None not in rest_masters and cl.ip(lone) not in rest_masters and
                        views[rest_masters.pop()]["role"] == "master")
            assert cl.wait_for(two_masters, timeout=5), f"not two masters: {cl.ctl_table()}"
            views = cl.views()
            big_master = views[cl.ip("member2")]["master"]
            log(f"while cut: masters {cl.ip(lone)} (alone) and {big_master} (2 members)")
            time.sleep(0.5)
            cl.heal()
            t0 = time.monotonic()

            def one_master():
                views = cl.views()
                if len(views) != 3:
                    return False
                masters = {v["master"] for v in views.values()}
                claimed = [v for v in views.values() if v["role"] == "master"]
                if len(masters) != 1 or len(claimed) != 1:
                    return False
                mv = claimed[0]
                return len(mv["members"]) == 3 and not overlap(views)
            assert cl.wait_for(one_master, timeout=10), f"did not merge: {cl.ctl_table()}"
            views = cl.views()
            winner = next(v for v in views.values() if v["role"] == "master")["member"]
            log(f"healed: one master {winner} after {(time.monotonic() - t0) * 1000:.0f} ms")
            assert winner == big_master, f"tie-break: {winner} won, expected {big_master}"
            # And stays so: no workset served twice over the next second.
            for _ in range(10):
                dup = overlap(cl.views())
                assert not dup, f"worksets served by two members: {sorted(dup)[:10]}"
                time.sleep(0.1)
            res = fetch_many(cl, "client1", "f.bin", sha, range(50000, 50000 + 60 * 11, 11))
            assert not res["failed"], f"after healing: {res['failed'][:5]}"
            log("ok")
        except BaseException:
            cl.dump_logs()
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
