#!/usr/bin/env python3
"""The node refactor's cost on the data path: the goodput benchmark (bench/http_goodput.py's
downloads, the same functions) against two phalanxd binaries in one lab, interleaved. Driven by
bench/node_refactor_bench.sh, which builds the "before" binary at a base commit.

Environment (set by the driver):
  PHALANXD_BEFORE, PHALANXD_AFTER   the two binaries
  LABEL_BEFORE, LABEL_AFTER         what they were built from (commits), for the figure lines
  ROUNDS                            rounds (default 5); each round runs every mode with both
                                    binaries, the first binary alternating between rounds
  CLUSTER_MEMBERS                   members of the cluster mode (default 2; 0 leaves it out)
  LAB_NAME                          the lab's name (the driver removes it if this is killed)

One lab: CLUSTER_MEMBERS member namespaces and one client on one bridge (phalanx-lab). Per round
and mode, each binary in turn is started, measured and stopped:
  standalone  phalanxd stand-alone in member1, serving its stack address (http_goodput's set-up);
  cluster     phalanxd in cluster mode (multicast) on every member, serving the cluster IP; each
              download is served by the member owning its client port's workset, and every member
              sees every frame (FIG. 9 filters them). T = 3 s and no rebalancing (see below).
The downloads are http_goodput's: one 1 GB file over one connection (`single`), then 64 parallel
downloads of 16 MB (`parallel`). Goodput = body bytes / wall time; server CPU = utime + stime of
the phalanxd processes (all members), per GB downloaded.

The machine is a shared 2-core box: a single run's goodput moves by 20 % or more with the other
load. What makes the comparison mean something is the pairing: both binaries run back to back in
every round, the order alternates (A B, B A, ...), and the ratio reported is the median over the
rounds of after/before within a round. The min-max of those per-round ratios is the noise.
Ends with figure:/baseline:/ratio: lines; exit status 1 if any download failed.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(os.environ.get("PHALANX_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))
from cluster_harness import ClusterLab  # noqa: E402
from e2e_common import Failure, Member, log, random_file  # noqa: E402
from http_goodput import BIG, MB, PAR_N, PAR_SIZE, Server, parallel, single  # noqa: E402

CASES = (("single", single), ("parallel", parallel))
START_TIMEOUT = 20  # s: a cluster's members to agree on a master
# The control plane kept out of the way: with the lab's T = 200 ms, 64 parallel downloads on this
# 2-core machine starve the members of CPU for ~50 ms at a time, keepalives go missing, members
# are declared dead and their connections stall (both binaries alike). A long failure interval and
# no rebalancing leave the data path, the thing measured, as the only moving part.
FAILURE_INTERVAL_MS = 3000
REBALANCE_PERIOD_MS = 600_000


class Standalone:
    """phalanxd stand-alone in member1 (as bench/http_goodput.py runs it)."""

    name = "standalone"

    def __init__(self, cl: ClusterLab):
        self.cl = cl
        self.m: Member | None = None

    def start(self, exe: str) -> Server:
        self.m = Member(self.cl, "member1", www=self.cl.site, echo=False, exe=exe)
        self.m.start()
        return Server(self.name, self.m.ip, lambda: [self.m.pid])

    def note(self) -> str:
        return ""

    def stop(self) -> str | None:
        """Stops it; returns a complaint when it had died before."""
        m, self.m = self.m, None
        if m is None:
            return None
        dead = None if m.alive() else f"phalanxd exited: {m.output()[-1000:]}"
        m.stop()
        return dead


class Cluster:
    """phalanxd in cluster mode on every member of the lab, serving the cluster IP."""

    def __init__(self, cl: ClusterLab):
        self.cl = cl
        self.name = f"cluster{len(cl.members)}"

    def start(self, exe: str) -> Server:
        for m in self.cl.members:
            self.cl.start(m, exe=exe)
        # Worksets are handed out as traffic reaches them (FIG. 9), so the downloads themselves
        # spread them; a master listing every member is all there is to wait for.
        if self.cl.wait_master(timeout=START_TIMEOUT) is None:
            raise Failure(f"{self.name}: no master listing every member within "
                          f"{START_TIMEOUT} s:\n{self.cl.ctl_table()}")
        return Server(self.name, self.cl.cluster_ip, self.pids)

    def pids(self) -> list[int]:
        return [p.pid for p in self.cl.daemons.values() if p.alive()]

    def note(self) -> str:
        """Connections each member accepted, e.g. "accepted: member1 33, member2 32"."""
        views = self.cl.views()
        accepted = {m: views.get(self.cl.ip(m), {}).get("counters", {}).get("stack.tcp_accepted")
                    for m in self.cl.members}
        return "accepted: " + ", ".join(f"{m} {n}" for m, n in accepted.items())

    def stop(self) -> str | None:
        dead = [m for m, p in self.cl.daemons.items() if not p.alive()]
        out = {m: p.output()[-600:] for m, p in self.cl.daemons.items() if not p.alive()}
        for m in list(self.cl.daemons):
            self.cl.kill(m, signal.SIGTERM)
        return f"phalanxd exited in {dead}: {out}" if dead else None


def measure(lab: ClusterLab, mode, exe: str) -> dict:
    """Start `mode` with binary `exe`, run both download cases, stop it.
    -> {case: (bytes, seconds, cpu seconds)}; raises Failure."""
    res = {}
    try:
        srv = mode.start(exe)
        for case, fn in CASES:
            res[case] = fn(lab, srv)
        note = mode.note()
        if note:
            log(f"{mode.name}: {note}")
    finally:
        dead = mode.stop()
    if dead:
        raise Failure(dead)
    return res


def median_spread(xs: list[float], fmt: str) -> str:
    rounds = "1 round" if len(xs) == 1 else f"{len(xs)} rounds"
    return (f"median of {rounds}; min {format(min(xs), fmt)}, "
            f"max {format(max(xs), fmt)}")


def main() -> int:
    exe = {"before": os.environ["PHALANXD_BEFORE"], "after": os.environ["PHALANXD_AFTER"]}
    label = {"before": os.environ.get("LABEL_BEFORE", "before"),
             "after": os.environ.get("LABEL_AFTER", "after")}
    rounds = int(os.environ.get("ROUNDS", "5"))
    n_members = int(os.environ.get("CLUSTER_MEMBERS", "2"))
    name = os.environ.get("LAB_NAME") or f"nrf{os.getpid() % 100000}"
    for v in ("before", "after"):
        if not os.access(exe[v], os.X_OK):
            raise Failure(f"{v}: {exe[v]} is not an executable")
    log(f"before = {exe['before']} ({label['before']}); after = {exe['after']} "
        f"({label['after']}); {rounds} rounds; cluster of {n_members or 'no'} members")

    failures: list[str] = []
    # results[mode][version][case] -> list over rounds of (bytes, s, cpu); None = failed
    results: dict = {}
    with ClusterLab(name, members=max(n_members, 1), clients=1,
                    failure_interval_ms=FAILURE_INTERVAL_MS,
                    rebalance_period_ms=REBALANCE_PERIOD_MS) as cl:
        t0 = time.monotonic()
        random_file(os.path.join(cl.site, "big.bin"), BIG)
        random_file(os.path.join(cl.site, "par.bin"), PAR_SIZE)
        log(f"wrote {BIG / MB:.0f} MB + {PAR_SIZE / MB:.0f} MB of random data in "
            f"{time.monotonic() - t0:.1f} s")
        modes = [Standalone(cl)] + ([Cluster(cl)] if n_members else [])
        for r in range(rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for mode in modes:
                for v in order:
                    try:
                        res = measure(cl, mode, exe[v])
                    except Failure as e:
                        log(f"round {r + 1} {mode.name} {v}: FAILED: {e}")
                        failures.append(f"round {r + 1} {mode.name} {v}: {e}")
                        res = None
                    results.setdefault(mode.name, {}).setdefault(v, []).append(res)
                    if res:
                        log(f"round {r + 1}/{rounds} {mode.name:11s} {v:6s}: " + "; ".join(
                            f"{c} {b / MB / s:6.1f} MB/s, {cpu / (b / 1e9):4.2f} CPU s/GB"
                            for c, (b, s, cpu) in res.items()))

    print()
    for mode, by_version in results.items():
        pairs = [(a, b) for a, b in zip(by_version.get("before", []), by_version.get("after", []))
                 if a and b]
        if not pairs:
            continue
        for case, _ in CASES:
            tag = f"node_refactor.{mode}" + ("" if case == "single" else f"_{PAR_N}")
            gp = {v: [p[i][case][0] / MB / p[i][case][1] for p in pairs]
                  for i, v in enumerate(("before", "after"))}
            for v in ("before", "after"):
                print(f"figure: {tag}.goodput_{v} = {statistics.median(gp[v]):.1f} MB/s "
                      f"({label[v]}; {median_spread(gp[v], '.1f')})")
            ratios = [a / b for a, b in zip(gp["after"], gp["before"])]
            print(f"baseline: {tag}.round_ratio_spread = {min(ratios):.3f} to {max(ratios):.3f} "
                  "(after/before within each round: min to max)")
            print(f"ratio: {tag}.goodput_after_over_before = {statistics.median(ratios):.3f} "
                  f"(median of {len(ratios)} paired round{'s' if len(ratios) > 1 else ''})")
        # CPU per GB over both cases of a run: less sensitive to the other load than wall time.
        cpu = {v: [sum(p[i][c][2] for c, _ in CASES) / (sum(p[i][c][0] for c, _ in CASES) / 1e9)
                   for p in pairs] for i, v in enumerate(("before", "after"))}
        tag = f"node_refactor.{mode}"
        for v in ("before", "after"):
            print(f"figure: {tag}.cpu_s_per_gb_{v} = {statistics.median(cpu[v]):.2f} CPU s/GB "
                  f"({label[v]}; {median_spread(cpu[v], '.2f')})")
        ratios = [a / b for a, b in zip(cpu["after"], cpu["before"])]
        print(f"baseline: {tag}.cpu_round_ratio_spread = {min(ratios):.3f} to {max(ratios):.3f} "
              "(after/before within each round: min to max)")
        print(f"ratio: {tag}.cpu_per_gb_after_over_before = {statistics.median(ratios):.3f} "
              f"(median of {len(ratios)} paired round{'s' if len(ratios) > 1 else ''})")
    if failures:
        print("node_refactor: FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"node_refactor: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # the lab is already gone (Lab.__exit__)
        print("node_refactor: interrupted", file=sys.stderr)
        sys.exit(130)
