#!/usr/bin/env python3
"""Live connections across a crash (issue 11): Phalanx at T = 200 ms and T = 50 ms against
keepalived + a kernel-TCP server moving a VIP, in phalanx-lab labs (driven by
bench/takeover_bench.sh).

Phalanx: 3 members, multicast mode, replicas = 1, failure interval T. Each trial, the client
starts 12 downloads at once (1 MiB each, paced by the client to 400 KiB/s, from fixed source
ports spread over the worksets); 1 s in, the member serving the most of them is killed with
SIGKILL (the trials alternate: a follower, the master). Figures: how many of the killed
member's downloads complete with the right sha256, and the stall its clients saw: for each of
those downloads, the largest gap between two data segments arriving at the client (a capture at
the client's interface; recv() waits would hide up to a socket buffer of it); p50 and p99 over
all trials. Then the killed member restarts and rejoins, and the next trial waits until all
three agree on one master.

keepalived: 2 nodes, VRRP v3 with advert_int 0.1 s (bench/failover_bench.py's "fast" setting),
a Python HTTP server (kernel TCP) serving the same file on both. The same 12 downloads go to the
VIP; 1 s in, the VIP holder crashes (its link cut, keepalived killed). The other node takes the
VIP within ~0.4 s, but its kernel knows none of the connections: each ends with a RST.

Ends with figure:/baseline:/ratio: lines; exit status 1 if a trial could not run.
Environment: PHALANX_BUILD (required), PHALANX_TAKEOVER_TRIALS (default 20 per T),
PHALANX_TAKEOVER_KA_TRIALS (default 3).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("PHALANX_ROOT") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)
from cluster_harness import SLOW_FETCH, ClusterLab, log  # noqa: E402
from failover_bench import KeepalivedBench  # noqa: E402
from lab import Lab  # noqa: E402

TRIALS = int(os.environ.get("PHALANX_TAKEOVER_TRIALS", "20"))
KA_TRIALS = int(os.environ.get("PHALANX_TAKEOVER_KA_TRIALS", "3"))
SIZE = 1024 * 1024
RATE = 400 * 1024
# Each trial from its own 12 source ports: a port's previous connection to the cluster IP may
# still be in the client's TIME-WAIT (connect() would fail with EADDRNOTAVAIL).


def ports_of(trial: int) -> list:
    return list(range(30000 + 400 * trial, 30000 + 400 * trial + 12 * 29, 29))
NAMES = ["member1", "member2", "member3"]


def pct(xs: list, q: float) -> float:
    v = sorted(xs)
    return v[min(len(v) - 1, int(q * len(v)))]


def fetch(lab: Lab, ip: str, sha: str, tag: str, ports: list):
    out = lab.path(f"downloads-{tag}.json")
    proc = lab.spawn("client1", ["python3", "-c", SLOW_FETCH, ip, "big.bin", sha,
                                 ",".join(map(str, ports)), str(RATE), out])
    return proc, out


def results(proc, out: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.alive():
        raise RuntimeError("downloads did not finish")
    with open(out) as f:
        return {r["port"]: r for r in json.load(f)}


def gaps(lines: list, ports: list) -> tuple[dict, dict]:
    """Per client port: the largest gap in ms between two data segments from the cluster, and
    the source MAC of its first data segment (the member that served it first)."""
    last: dict = {}
    first_mac: dict = {}
    worst = {p: 0.0 for p in ports}
    for ln in lines:
        m = re.match(r"(\d+):(\d+):([\d.]+) ([0-9a-f:]{17}) > .* > [\d.]+\.(\d+): ", ln)
        if not m:
            continue
        port = int(m.group(5))
        if port not in worst:
            continue
        t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        first_mac.setdefault(port, m.group(4))
        if port in last:
            worst[port] = max(worst[port], (t - last[port]) * 1000)
        last[port] = t
    return worst, first_mac


def phalanx(t_ms: int, trials: int) -> dict:
    survived = total = 0
    stalls: list = []
    with ClusterLab(f"tkb{t_ms}{os.getpid() % 1000}", members=3, clients=1,
                    failure_interval_ms=t_ms) as cl:
        try:
            sha = cl.make_file("big.bin", SIZE)
            cl.start_all()
            for i in range(trials):
                PORTS = ports_of(i if t_ms == 200 else trials + i)
                master = cl.wait_master(15)
                if not master:
                    raise RuntimeError(f"T = {t_ms} ms, trial {i}: no agreed master")
                time.sleep(0.3)  # the restarted member's JoinAck and first keepalives
                cap = cl.capture("client1", f"src host {cl.cluster_ip} and tcp and greater 200",
                                 direction="in", snaplen=96)
                proc, out = fetch(cl, cl.cluster_ip, sha, f"{t_ms}-{i}", PORTS)
                time.sleep(1.0)
                views = cl.views()
                client_ip = cl.ip("client1")
                serving = {p: cl.serving_member(views, client_ip, p) for p in PORTS}
                followers = [m for m in NAMES if m != master]
                victim = master if i % 2 else max(
                    followers, key=lambda m: sum(1 for s in serving.values() if s == m))
                cl.kill(victim)
                res = results(proc, out, 60)
                # Whose downloads they were: the MAC their first data came from (the status
                # view may lag behind a workset the master gave just now).
                gap, first_mac = gaps(cap.stop(), PORTS)
                ports = [p for p in PORTS if first_mac.get(p) == cl.mac(victim)]
                ok = [p for p in ports if res[p]["ok"]]
                others_failed = [p for p in PORTS if p not in ports and not res[p]["ok"]]
                errors = sorted({str(res[p]["err"])[:70] for p in PORTS if not res[p]["ok"]})
                survived += len(ok)
                total += len(ports)
                waits = [gap[p] for p in ports]
                stalls += waits
                log(f"T = {t_ms} ms #{i + 1}: killed {victim} ({'master' if victim == master else 'follower'}), "
                    f"{len(ok)} of {len(ports)} of its downloads complete"
                    f"{'' if not others_failed else f', OTHERS FAILED: {others_failed}'}; "
                    f"largest gap in their data {max(waits, default=0):.0f} ms"
                    f"{'' if not errors else f' (errors: {errors})'}")
                cl.start(victim)
        except BaseException:
            cl.dump_logs()
            raise
    return {"survived": survived, "total": total, "stalls": stalls}


HTTP_SERVER = r"""
import http.server, os, sys
os.chdir(sys.argv[1])
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("0.0.0.0", 80), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def keepalived(trials: int) -> dict:
    survived = total = 0
    with Lab(f"tkk{os.getpid() % 1000}", members=2, clients=1) as lab:
        kb = None
        try:
            site = lab.path("site")
            os.makedirs(site)
            data = os.urandom(SIZE)
            with open(os.path.join(site, "big.bin"), "wb") as f:
                f.write(data)
            sha = hashlib.sha256(data).hexdigest()
            for n in ("member1", "member2"):
                lab.spawn(n, ["python3", "-c", HTTP_SERVER, site], log=lab.path(f"http-{n}.log"))
            kb = KeepalivedBench(lab)
            for n in kb.nodes:
                kb.start_ka(n, "fast")
            for i in range(trials):
                PORTS = ports_of(2 * TRIALS + i)
                if not lab.wait_for(lambda: len(kb.masters()) == 1, 10, 0.05):
                    raise RuntimeError(f"keepalived: VIP on {kb.masters()}")
                time.sleep(0.5)
                victim = kb.masters()[0]
                proc, out = fetch(lab, kb.vip, sha, f"ka-{i}", PORTS)
                time.sleep(1.0)
                kb.links[victim].set_up(False)
                os.killpg(kb.ka.pop(victim).pid, signal.SIGKILL)
                res = results(proc, out, 60)
                ok = [p for p in PORTS if res[p]["ok"]]
                survived += len(ok)
                total += len(PORTS)
                errors = sorted({str(res[p]["err"])[:60] for p in PORTS if not res[p]["ok"]})
                log(f"keepalived #{i + 1}: crashed {victim}; {len(ok)} of {len(PORTS)} downloads "
                    f"complete ({'; '.join(errors)[:160]})")
                kb.restore(victim)
                kb.start_ka(victim, "fast")
                time.sleep(0.5)
        finally:
            if kb:
                for n in list(kb.ka):
                    kb.stop_ka(n)
                kb.prober.close()
    return {"survived": survived, "total": total}


def main() -> int:
    if os.geteuid() != 0:
        print("takeover_bench: needs root", file=sys.stderr)
        return 2
    try:
        ph = {t: phalanx(t, TRIALS) for t in (200, 50)}
        ka = keepalived(KA_TRIALS)
    except RuntimeError as e:
        log(f"FAILED: {e}")
        return 1
    for t, r in ph.items():
        print(f"figure: takeover_T{t}_survived = {r['survived']} of {r['total']} downloads "
              f"({100 * r['survived'] / max(r['total'], 1):.0f} %)")
        print(f"figure: takeover_T{t}_stall_p50 = {pct(r['stalls'], 0.5):.0f} ms")
        print(f"figure: takeover_T{t}_stall_p99 = {pct(r['stalls'], 0.99):.0f} ms")
        print(f"ratio: takeover_T{t}_stall_p50_over_T = {pct(r['stalls'], 0.5) / t:.2f}")
    print(f"baseline: takeover_keepalived_survived = {ka['survived']} of {ka['total']} "
          f"downloads ({100 * ka['survived'] / max(ka['total'], 1):.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
