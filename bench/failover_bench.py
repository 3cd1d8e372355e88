#!/usr/bin/env python3
"""Failover time: Phalanx (follower crash, master crash) against keepalived/VRRP moving a VIP,
in phalanx-lab labs (driven by bench/failover_bench.sh).

What is timed, in every case, is the time from the crash to the first SYN-ACK that a NEW TCP
connection attempt gets from a surviving machine. The client (namespace client1) sends a
hand-made SYN from one fixed source port every 5 ms through a raw socket (bench/
failover_probe.py); its kernel routes it and resolves the neighbour as for any connect(),
and resets each SYN-ACK, so each probe is a new connection. SYN-ACKs are timestamped by the
kernel on arrival (SO_TIMESTAMPNS); the crash time is taken just before the kill. Resolution:
the probe period (5 ms). After each trial a real kernel connect() to the same workset / VIP
checks the survivor really serves.

1. phalanx follower: 3 members, multicast mode, default timings (T = 200 ms). A follower that
   owns worksets is SIGKILLed; the probe's source port is chosen so that its xor workset
   (cluster_harness.workset_xor) belongs to the victim, and the SYN-ACK before the kill must
   come from the victim's MAC. Done when a survivor's MAC answers.
2. phalanx master: the same with the master killed (its own worksets probed). Also reported:
   when a survivor declared itself master (`offering => master` in its log, ms timestamps),
   i.e. when `phalanxctl status` starts showing the new master.
   One lab serves every Phalanx trial: after each kill the dead member is restarted, rejoins
   as a follower, and the next trial waits until all three agree on one master.
3. keepalived (Debian's keepalived, VRRP over the lab bridge) in member1 and member2 of a
   second lab; VIP = .200 of the lab's /24; a Python TCP server on 0.0.0.0:8080 in both (a
   wildcard bind answers on the VIP once keepalived configures it; the backup does not have
   it, so it does not answer). A node crash is modelled as: the MASTER's eth0 taken down with
   one ioctl (SIOCSIFFLAGS, in-process: the node vanishes from the bridge) and, right after,
   SIGKILL to its keepalived process group. (Killing keepalived alone would leave the VIP
   configured and answering on the old node.) The client needs the new master's gratuitous
   ARP to reach it. Afterwards the old node gets its VIP removed, eth0 up and keepalived
   restarted (as BACKUP, equal priority: no preemption), and we wait 2 advert intervals so
   that it has heard the master before the next trial. Two settings:
     default: vrrp_version 2, advert_int 1 (master down after 3 x 1 s + skew 0.61 s);
     fast:    vrrp_version 3, advert_int 0.1 (3 x 0.1 s + 0.061 s).
Each crash happens at a random phase (an extra uniform 0..T, resp. 0..advert_int, of probing
before the kill). Phalanx trials alternate (follower, master). p50/p99 are nearest-rank percentiles; with 20 trials
p99 is the slowest trial. Ends with figure:/baseline:/ratio: lines; exit status 1 if any trial
failed (the figures then cover the trials that succeeded).

Environment: PHALANX_BUILD (required), PHALANX_FAILOVER_TRIALS (default 20).
"""
from __future__ import annotations

import datetime
import math
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("PHALANX_ROOT") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)
from cluster_harness import ClusterLab, log, workset_xor  # noqa: E402
from failover_probe import LinkSwitch, SynProber, in_netns, tcp_check  # noqa: E402
from lab import Lab  # noqa: E402

TRIALS = int(os.environ.get("PHALANX_FAILOVER_TRIALS", "20"))
PROBE_INTERVAL = 0.005
ECHO_PORT = 7
KA_PORT = 8080
KA_VRID = 51
KA_SETTINGS = {
    "default": {"version": 2, "advert": 1.0},
    "fast": {"version": 3, "advert": 0.1},
}


def pct(xs: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}"


class Ports:
    """Fresh client source ports (each used once), by workset."""

    def __init__(self, client_ip: str, lo: int = 20000, hi: int = 60999):
        self.client_ip, self.next, self.hi = client_ip, lo, hi
        self.used: set[int] = set()
        self.by_ws: dict[int, list[int]] = {}
        for p in range(lo, hi + 1):
            self.by_ws.setdefault(workset_xor(client_ip, p), []).append(p)

    def in_workset(self, ws: int) -> int | None:
        for p in self.by_ws.get(ws, []):
            if p not in self.used:
                self.used.add(p)
                return p
        return None

    def fresh_worksets(self, avoid: set[int], count: int) -> list[int]:
        """One fresh port for each of `count` worksets not in `avoid`."""
        out = []
        for ws in sorted(self.by_ws, key=lambda w: (w * 7919) % 1024):
            if ws in avoid:
                continue
            p = self.in_workset(ws)
            if p is not None:
                out.append(p)
            if len(out) >= count:
                break
        return out


def log_events(path: str, since: float, pattern: str) -> list[float]:
    """Wall-clock times of phalanxd log lines matching pattern at or after `since`."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) ", line)
                if not m or not re.search(pattern, line):
                    continue
                t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()
                if t >= since - 0.001:
                    out.append(t)
    except FileNotFoundError:
        pass
    return out


# ----------------------------------------------------------------------------- Phalanx

class PhalanxBench:
    def __init__(self, cl: ClusterLab):
        self.cl = cl
        self.client = "client1"
        self.cip = cl.ip(self.client)
        self.ports = Ports(self.cip)
        self.prober = SynProber(cl.netns(self.client), self.cip, cl.cluster_ip, ECHO_PORT)
        self.results = {"follower": [], "master": [], "master_status": [], "follower_removed": []}
        self.failures: list[str] = []

    def assigned(self) -> set[int]:
        out = set()
        for v in self.cl.views().values():
            out |= set(v["owned"])
        return out

    def owned_by(self, member: str) -> list[int]:
        v = self.cl.status(member)
        return sorted(v["owned"]) if v else []

    def warm_up(self, count: int = 96) -> None:
        """New connections to `count` fresh worksets, so that they get assigned."""
        ports = self.ports.fresh_worksets(self.assigned(), count)
        got = self.prober.touch(ports)
        log(f"warm-up: {len(got)}/{len(ports)} fresh worksets answered")

    def pick(self, victim: str) -> tuple[int, int] | None:
        """(port, workset) with the workset owned by victim; touches more fresh worksets
        (bounded) until the victim owns one."""
        for _ in range(6):
            owned = self.owned_by(victim)
            for ws in owned:
                p = self.ports.in_workset(ws)
                if p is not None:
                    return p, ws
            self.prober.touch(self.ports.fresh_worksets(self.assigned(), 8))
        return None

    def ready(self) -> str | None:
        master = self.cl.wait_master(10)
        if master:
            time.sleep(0.3)   # let keepalive estimates and assignments settle
        return master

    def trial(self, kind: str, i: int) -> None:
        cl = self.cl
        master = self.ready()
        if not master:
            raise RuntimeError("the cluster did not reconverge (no agreed master)")
        if kind == "master":
            victim = master
        else:
            followers = [m for m in cl.members if m != master]
            # Alternate between the followers; prefer one that owns worksets.
            followers.sort(key=lambda m: (not self.owned_by(m), (cl.members.index(m) + i) % 2))
            victim = followers[0]
        picked = self.pick(victim)
        if not picked:
            self.failures.append(f"{kind} #{i}: {victim} owns no workset")
            return
        port, ws = picked
        vmac = cl.mac(victim)
        old_epoch = (cl.status(master) or {}).get("epoch", 0)
        survivors = [m for m in cl.members if m != victim]
        proc = cl.daemons.pop(victim)

        def kill() -> float:
            t = time.time()
            os.killpg(proc.pid, signal.SIGKILL)
            return t

        # A random crash phase relative to the keepalive schedule (period <= T).
        pre = 0.1 + random.uniform(0, cl.failure_interval_ms / 1000)
        res = self.prober.failover(port, vmac, kill, interval=PROBE_INTERVAL, pre=pre,
                                   timeout=10)
        if proc.alive():
            os.killpg(proc.pid, signal.SIGKILL)   # not killed (no pre-answer): kill it now
        proc.popen.wait(5)
        extra = ""
        if not res["ok"]:
            self.failures.append(f"{kind} #{i}: victim {victim} port {port} ws {ws}: "
                                 f"{res['why']}")
            log(f"{kind} #{i}: FAILED: {res['why']}")
        else:
            self.results[kind].append(res["ms"])
            server = next((m for m in survivors if cl.mac(m) == res["mac"]), res["mac"])
            # The real connection check: a kernel connect() + echo to the same workset.
            p2 = self.ports.in_workset(ws)
            why = tcp_check(cl.netns(self.client), cl.cluster_ip, ECHO_PORT, p2, b"failover")
            if why:
                self.failures.append(f"{kind} #{i}: echo after failover (port {p2}, ws {ws}) "
                                     f"failed: {why}")
            crash = res["crash"]
            if kind == "master":
                ts = [t for m in survivors
                      for t in log_events(cl.daemons[m].log, crash, r"=> master")]
                if ts:
                    self.results["master_status"].append((min(ts) - crash) * 1000)
                    extra = f"; new master in log after {(min(ts) - crash) * 1000:.0f} ms"
                new_epoch = max((cl.status(m) or {}).get("epoch", 0) for m in survivors)
                if new_epoch <= old_epoch:
                    self.failures.append(f"master #{i}: epoch did not grow ({old_epoch})")
            else:
                ts = log_events(cl.daemons[master].log, crash,
                                re.escape(cl.ip(victim)) + r".*(dead|left|removed)|"
                                r"(dead|left|removed).*" + re.escape(cl.ip(victim)))
                if ts:
                    self.results["follower_removed"].append((min(ts) - crash) * 1000)
                    extra = f"; removed in master's log after {(min(ts) - crash) * 1000:.0f} ms"
            log(f"{kind} #{i}: killed {victim} (ws {ws}, port {port}); SYN-ACK from {server} "
                f"after {res['ms']:.1f} ms (answered SYN sent at "
                f"{res['syn_ms'] if res['syn_ms'] is None else round(res['syn_ms'], 1)} ms, "
                f"{res['probes']} probes){extra}{'; ECHO FAILED: ' + why if why else ''}")
        cl.start(victim)

    def run(self, trials: int) -> None:
        cl = self.cl
        cl.start_all()
        if not cl.wait_master(10):
            raise RuntimeError("no master elected")
        self.warm_up()
        for i in range(trials):
            for kind in ("follower", "master"):
                self.trial(kind, i)


# ----------------------------------------------------------------------------- keepalived

KA_CONF = """global_defs {{
    router_id {router_id}
    vrrp_version {version}
    enable_script_security
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    advert_int {advert}
    virtual_ipaddress {{
        {vip}/{plen} dev eth0
    }}
}}
"""

TCP_SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(512)
while True:
    c, _ = s.accept()
    c.close()
"""


def keepalived_bin() -> str:
    for p in ("/usr/sbin/keepalived", "/sbin/keepalived"):
        if os.access(p, os.X_OK):
            return p
    raise RuntimeError("keepalived not installed (bench/failover_bench.sh installs it)")


class KeepalivedBench:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.nodes = ["member1", "member2"]
        self.client = "client1"
        net = lab.state["prefix"].rsplit(".", 1)[0]
        self.vip = f"{net}.200"
        self.plen = lab.node("member1")["prefixlen"]
        self.cip = lab.ip(self.client)
        self.ka: dict = {}
        self.links = {n: LinkSwitch(lab.netns(n)) for n in self.nodes}
        self.prober = SynProber(lab.netns(self.client), self.cip, self.vip, KA_PORT)
        self.next_port = 20000
        self.results: dict[str, list[float]] = {k: [] for k in KA_SETTINGS}
        self.failures: list[str] = []

    def port(self) -> int:
        self.next_port += 1
        return self.next_port

    def start_ka(self, node: str, setting: str) -> None:
        s = KA_SETTINGS[setting]
        cfg = self.lab.path(f"keepalived-{setting}-{node}.conf")
        with open(cfg, "w") as f:
            f.write(KA_CONF.format(router_id=node, version=s["version"], vrid=KA_VRID,
                                   advert=s["advert"], vip=self.vip, plen=self.plen))
        # Fresh pid files per start: the killed instance's vrrp child may still be an
        # unreaped zombie, and keepalived refuses to start ("daemon is already running").
        pid = self.lab.path(f"keepalived-{node}-{len(self.lab.procs)}")
        self.ka[node] = self.lab.spawn(node, [
            keepalived_bin(), "--dont-fork", "--log-console", "--log-detail", "--vrrp",
            "--use-file", cfg, "--pid", pid + ".pid", "--vrrp_pid", pid + "-vrrp.pid"],
            log=self.lab.path(f"keepalived-{setting}-{node}-{len(self.lab.procs)}.log"))

    def stop_ka(self, node: str) -> None:
        p = self.ka.pop(node, None)
        if p:
            p.kill(signal.SIGKILL)

    def has_vip(self, node: str) -> bool:
        out = self.lab.run(node, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
                           check=False).stdout
        return f" {self.vip}/" in out

    def masters(self) -> list[str]:
        return [n for n in self.nodes if self.has_vip(n)]

    def restore(self, node: str) -> None:
        """The crashed node comes back: no VIP, eth0 up."""
        self.lab.run(node, ["ip", "addr", "del", f"{self.vip}/{self.plen}", "dev", "eth0"],
                     check=False)
        self.links[node].set_up(True)
        self.lab.wait_for(lambda: "LOWER_UP" in self.lab.run(
            node, ["ip", "-o", "link", "show", "eth0"], check=False).stdout, 5, 0.02)

    def run(self, setting: str, trials: int) -> None:
        lab, adv = self.lab, KA_SETTINGS[setting]["advert"]
        for n in self.nodes:
            self.stop_ka(n)
            self.restore(n)
        for n in self.nodes:
            self.start_ka(n, setting)
        down_interval = 3 * adv + (256 - 100) / 256 * adv
        if not lab.wait_for(lambda: len(self.masters()) == 1, timeout=down_interval + 10,
                            interval=0.05):
            raise RuntimeError(f"keepalived ({setting}): no single VIP holder: "
                               f"{self.masters()}")
        time.sleep(2 * adv + 0.2)
        for i in range(trials):
            masters = self.masters()
            if len(masters) != 1:
                self.failures.append(f"{setting} #{i}: VIP on {masters or 'nobody'}")
                log(f"keepalived {setting} #{i}: VIP on {masters or 'nobody'}; waiting")
                lab.wait_for(lambda: len(self.masters()) == 1, 2 * down_interval + 2, 0.05)
                continue
            victim = masters[0]
            other = next(n for n in self.nodes if n != victim)
            vmac = lab.mac(victim)
            proc = self.ka.pop(victim)
            link = self.links[victim]
            port = self.port()

            def kill() -> float:
                t = time.time()
                link.set_up(False)
                os.killpg(proc.pid, signal.SIGKILL)
                return t

            # A random crash phase relative to the advertisement schedule: without it the
            # fixed rhythm of our trials would pick nearly the same phase every time.
            res = self.prober.failover(port, vmac, kill, interval=PROBE_INTERVAL,
                                       pre=0.1 + random.uniform(0, adv),
                                       timeout=3 * down_interval + 5)
            proc.kill(signal.SIGKILL)
            if res["ok"]:
                why = tcp_check(lab.netns(self.client), self.vip, KA_PORT, self.port())
                self.results[setting].append(res["ms"])
                srv = other if lab.mac(other) == res["mac"] else res["mac"]
                log(f"keepalived {setting} #{i}: crashed {victim}; SYN-ACK from {srv} after "
                    f"{res['ms']:.1f} ms ({res['probes']} probes)"
                    f"{'; CONNECT FAILED: ' + why if why else ''}")
                if why:
                    self.failures.append(f"keepalived {setting} #{i}: connect after: {why}")
            else:
                self.failures.append(f"keepalived {setting} #{i}: {res['why']}")
                log(f"keepalived {setting} #{i}: FAILED: {res['why']}")
            self.restore(victim)
            self.start_ka(victim, setting)
            # The restarted BACKUP must have heard the new master before the next crash,
            # otherwise its own down timer (started at its start) would cut the next trial.
            time.sleep(2 * adv + 0.2)
        for n in self.nodes:
            self.stop_ka(n)


# ----------------------------------------------------------------------------- main

def main() -> int:
    if os.geteuid() != 0:
        print("failover_bench: needs root", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    pid = os.getpid() % 10000
    failures: list[str] = []
    log(f"failover bench: {TRIALS} trials per case, SYN probe every "
        f"{PROBE_INTERVAL * 1000:.0f} ms")

    ph = None
    with ClusterLab(f"fbp{pid}", members=3, clients=1, mode="multicast") as cl:
        try:
            ph = PhalanxBench(cl)
            ph.run(TRIALS)
        except BaseException:
            cl.dump_logs()
            raise
        finally:
            if ph:
                ph.prober.close()
            # Anything phalanxd itself complained about, for the record.
            complaints = []
            for p in cl.procs:
                if "phalanxd" in (p.log or ""):
                    complaints += [f"{p.node}: {ln.strip()}" for ln in p.output().splitlines()
                                   if re.search(r" (warn|warning|error|critical) ", ln)]
            log(f"phalanxd logs: {len(complaints)} warn/error line(s)")
            for ln in complaints[:15]:
                print(f"  {ln[:200]}")
    failures += ph.failures
    log(f"phalanx part done after {time.monotonic() - t_start:.0f} s")

    kb = None
    with Lab(f"fbk{pid}", members=2, clients=1) as lab:
        try:
            for n in ("member1", "member2"):
                lab.spawn(n, ["python3", "-c", TCP_SERVER, str(KA_PORT)],
                          log=lab.path(f"tcpserver-{n}.log"))
            kb = KeepalivedBench(lab)
            for setting in ("fast", "default"):
                kb.run(setting, TRIALS)
                log(f"keepalived {setting} done after {time.monotonic() - t_start:.0f} s")
        except BaseException:
            for p in lab.procs:
                out = p.output()
                if out:
                    print(f"----- {p.node} ({p.log})\n{out[-3000:]}", file=sys.stderr)
            raise
        finally:
            if kb:
                for n in list(kb.ka):
                    kb.stop_ka(n)
                kb.prober.close()
    failures += kb.failures

    rows = [
        ("phalanx follower SIGKILL -> workset served", ph.results["follower"]),
        ("  (follower removed, master's log)", ph.results["follower_removed"]),
        ("phalanx master SIGKILL -> workset served", ph.results["master"]),
        ("  (new master, survivor's log/status)", ph.results["master_status"]),
        ("keepalived default (VRRPv2, advert 1 s)", kb.results["default"]),
        ("keepalived fast (VRRPv3, advert 0.1 s)", kb.results["fast"]),
    ]
    print()
    print(f"failover to the first SYN-ACK of a new connection (ms; {TRIALS} trials each, "
          f"probe every {PROBE_INTERVAL * 1000:.0f} ms; nearest-rank percentiles)")
    print(f"{'case':46} {'n':>3} {'p50':>7} {'p99':>7} {'min':>7} {'max':>7}")
    for name, xs in rows:
        print(f"{name:46} {len(xs):3d} {fmt(pct(xs, 50)):>7} {fmt(pct(xs, 99)):>7} "
              f"{fmt(min(xs) if xs else None):>7} {fmt(max(xs) if xs else None):>7}")
    print()
    if failures:
        print(f"{len(failures)} failed trial(s) / checks:")
        for f in failures:
            print(f"  {f}")
        print()
    log(f"total {time.monotonic() - t_start:.0f} s")

    def line(kind: str, name: str, xs: list[float]) -> None:
        for p in (50, 99):
            print(f"{kind}: failover_{name}_p{p} = {fmt(pct(xs, p))} ms")

    line("figure", "phalanx_follower", ph.results["follower"])
    line("figure", "phalanx_master", ph.results["master"])
    line("baseline", "keepalived_default", kb.results["default"])
    line("baseline", "keepalived_fast", kb.results["fast"])
    a, b = pct(kb.results["fast"], 50), pct(ph.results["master"], 50)
    ratio = "n/a" if a is None or not b else f"{a / b:.2f}"
    print(f"ratio: failover_keepalived_fast_over_phalanx_master_p50 = {ratio}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
