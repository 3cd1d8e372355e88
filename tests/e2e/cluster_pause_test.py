#!/usr/bin/env python3
"""E2E, issue 9 part 5: a paused member must not split the brain.
3 members (multicast mode, T = 200 ms), 1 client running 36 slow downloads (paced by the
client, ~7 s each, one source port per connection, so spread over the worksets). During them:
SIGSTOP a follower for 1 s, SIGCONT; then SIGSTOP the master for 1 s, SIGCONT. Rebalancing
runs every second (see main()).
A download served by the member being paused (owners read just before each pause) may fail;
every other one must complete byte-exact, and the client's capture must show no RST for it.
Prints `figure:` lines. About 30 s."""
import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import SLOW_FETCH, ClusterLab, log  # noqa: E402

# 400 ms rather than the default 200: on a loaded test machine (five builds on two cores) the
# lab's bridge alone delayed keepalives past 200 ms now and then, and a failover before any
# pause makes the run say nothing. A 1 s pause is still 2.5 T.
T_MS = 400
SIZE = 2 * 1024 * 1024
RATE = 300 * 1024  # bytes per second per download
PORTS = list(range(41000, 41000 + 36 * 13, 13))

def owners(cl: ClusterLab, ports) -> dict:
    """port -> node name of the member owning its workset now (None: unassigned)."""
    views = cl.views()
    out = {}
    for p in ports:
        out[p] = cl.serving_member(views, cl.ip("client1"), p)
    return out


def pause(cl: ClusterLab, member: str, seconds: float) -> None:
    pid = cl.daemons[member].pid
    os.kill(pid, signal.SIGSTOP)
    time.sleep(seconds)
    os.kill(pid, signal.SIGCONT)


def main() -> int:
    # Rebalancing runs every second: since issue 10 it never moves a workset with live
    # connections, so the downloads' worksets stay put while the member that comes back from a
    # pause (owning nothing) draws idle ones.
    with ClusterLab(f"cps{os.getpid() % 10000}", members=3, clients=1,
                    failure_interval_ms=T_MS, rebalance_period_ms=1000) as cl:
        try:
            sha = cl.make_file("big.bin", SIZE)
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master elected"
            time.sleep(0.5)
            master = cl.wait_master(10)  # still all three, after the join settled
            assert master, "no master elected"
            cap = cl.capture("client1", f"src host {cl.cluster_ip} and "
                             "tcp[tcpflags] & tcp-rst != 0")
            out = cl.path("downloads.json")
            proc = cl.spawn("client1", ["python3", "-c", SLOW_FETCH, cl.cluster_ip, "big.bin", sha,
                                        ",".join(map(str, PORTS)), str(RATE), out])
            time.sleep(1.0)
            epoch0 = cl.status(master)["epoch"]
            before1 = owners(cl, PORTS)
            v = cl.status(master)
            assert v["role"] == "master" and v["epoch"] == epoch0, \
                "a failover before any pause (a loaded machine?): the run would say nothing"
            # The follower serving the fewest downloads: the others' are the ones checked.
            follower = min((m for m in cl.members if m != master),
                           key=lambda m: sum(1 for o in before1.values() if o == m))
            log(f"master {master}; pausing follower {follower} for 1 s; downloads per member: "
                f"{ {m: sum(1 for o in before1.values() if o == m) for m in cl.members} }")
            t_phase1 = time.monotonic()
            pause(cl, follower, 1.0)
            time.sleep(1.5)
            now_master = cl.wait_master(5)
            log(f"after the follower's pause: master {now_master}; "
                f"{ {m: cl.status(m)['counters'].get('stalls') for m in cl.members} } stalls")
            master2 = now_master or master
            before2 = owners(cl, PORTS)
            log(f"pausing master {master2} for 1 s")
            t_phase2 = time.monotonic()
            pause(cl, master2, 1.0)
            deadline = time.monotonic() + 30
            while proc.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not proc.alive(), "downloads did not finish"
            lines = cap.stop()
            with open(out) as f:
                results = {r["port"]: r for r in json.load(f)}
            # A download may fail once the member serving it was paused (a timeout comes late).
            allowed = {p for p, r in results.items() if not r["ok"] and (
                (r["t_end"] >= t_phase1 and before1[p] == follower) or
                (r["t_end"] >= t_phase2 and before2[p] == master2))}
            # Served by the member being paused in some phase: an RST may reach it.
            exposed = {p for p, o in before1.items() if o == follower} | \
                      {p for p, o in before2.items() if o == master2}
            rst_ports = set()
            for ln in lines:
                # "... > ...: 198.18.x.1.80 > 198.18.x.101.41000: Flags [R.] ..."
                m = re.search(r"\.80 > [\d.]+\.(\d+): Flags \[R", ln)
                if m:
                    rst_ports.add(int(m.group(1)))
            failed = {p: r["err"] for p, r in results.items() if not r["ok"]}
            views = cl.views()
            for m in cl.members:
                v = views.get(cl.ip(m), {})
                c, d = v.get("counters", {}), v.get("drops", {})
                log(f"{m} role={v.get('role')} epoch={v.get('epoch')} "
                    f"stalls={c.get('stalls')} stall_max_ms={c.get('stall_max_ms')} "
                    f"beyond_T={c.get('stalls_beyond_failure_interval')} "
                    f"tx_not_owned={d.get('tx_not_owned')} "
                    f"tx_rst_not_owned={d.get('tx_rst_not_owned')}")
            log(f"downloads {len(results)}: ok {len(results) - len(failed)}, failed "
                f"{len(failed)} (allowed: {len(allowed & set(failed))} served by the paused "
                f"member); RST seen for {len(rst_ports)} ports, "
                f"{len(rst_ports - exposed)} of them not the paused member's")
            print(cl.ctl_table())
            bad = {p: failed[p] for p in failed if p not in allowed}
            checked = [p for p in PORTS if before1[p] != follower or before2[p] != master2]
            assert len(checked) >= 6, \
                f"inconclusive: only {len(checked)} downloads on members that were not paused"
            assert len(results) == len(PORTS), f"{len(results)} results"
            assert not bad, f"downloads of members that were not paused failed: " \
                f"{ {p: (before1[p], before2[p], e) for p, e in list(bad.items())[:5]} }"
            assert not (rst_ports - exposed), \
                f"RST on downloads of members that were not paused: {sorted(rst_ports - exposed)}"
            print(f"figure: pause_downloads_checked = {len(checked)} downloads")
            print(f"figure: pause_failed_not_paused = {len(bad)} downloads")
            print(f"figure: pause_rst_not_paused = {len(rst_ports - exposed)} connections")
            return 0
        except BaseException:
            cl.dump_logs()
            raise


if __name__ == "__main__":
    sys.exit(main())
