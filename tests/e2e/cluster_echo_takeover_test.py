#!/usr/bin/env python3
"""E2E, issue 11: a bidirectional echo stream survives the crash of the member serving it.

Three members; a real Linux client opens 12 echo connections (port 7) at once and streams a
seeded pseudo-random byte stream on each, 64 KiB/s for 8 s, while it reads the echo and checks
it byte for byte. 2 s in, one member is killed with SIGKILL: a follower in the first run, the
master in the second. Its worksets go to their backups, which hold each session's state and the
bytes taken and not yet acknowledged (echo's snapshot, DESIGN §6), and adopt them.

Checks: every stream comes back byte-exact and ends with the server's FIN, the killed member's
included; the client's capture shows no RST from the cluster IP; the survivors adopted at least
the killed member's sessions. (The capture holds every FIN and RST; on a RST, those of its
connection are printed.) Prints the longest a recv() of those streams waited (median, max).
About 30 s."""
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, log  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients", "echo_stream.py")
RATE = 64 * 1024
SECONDS = 8
PORTS = list(range(46000, 46000 + 12 * 17, 17))


def run(kill_master: bool) -> dict:
    names = ["member1", "member2", "member3"]
    with ClusterLab(f"cet{int(kill_master)}{os.getpid() % 1000}", members=3, clients=1) as cl:
        try:
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master elected"
            cap = cl.capture("client1", f"host {cl.cluster_ip} and "
                             "tcp[tcpflags] & (tcp-rst|tcp-fin) != 0")
            out = cl.path("streams.json")
            proc = cl.spawn("client1", ["python3", CLIENT, cl.cluster_ip,
                                        ",".join(map(str, PORTS)), str(RATE), str(SECONDS),
                                        "11", out])
            time.sleep(2)
            victim = master if kill_master else next(m for m in names if m != master)
            views = cl.views()
            client_ip = cl.ip("client1")
            victim_ports = {p for p in PORTS if cl.serving_member(views, client_ip, p) == victim}
            log(f"master {master}; killing {victim} (it serves {len(victim_ports)} of "
                f"{len(PORTS)} echo streams)")
            cl.kill(victim)
            deadline = time.monotonic() + SECONDS + 40
            while proc.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not proc.alive(), "the echo streams did not finish"
            capl = cap.stop()
            rst = [ln for ln in capl if "Flags [R" in ln and f"{cl.cluster_ip}.7 >" in ln]
            if rst:  # what led to it: the FINs and RSTs of that connection
                port = re.search(r"\.7 > [\d.]+\.(\d+):", rst[0]).group(1)
                for ln in capl:
                    if f".{port}" in ln:
                        log(f"capture: {ln}")
            with open(out) as f:
                results = {r["port"]: r for r in json.load(f)}
            assert len(results) == len(PORTS), f"{len(results)} results of {len(PORTS)}"
            failed = {p: results[p]["err"] for p in PORTS if not results[p]["ok"]}
            survived = sum(1 for p in victim_ports if results[p]["ok"])
            rest = [m for m in names if m != victim]
            counters = [cl.views(rest)[cl.ip(m)]["counters"] for m in rest]
            adopted = sum(c.get("echo.adopted", 0) for c in counters)
            log(f"echo streams of the killed member: {survived} of {len(victim_ports)} "
                f"byte-exact; all: {len(PORTS) - len(failed)} of {len(PORTS)}; echo sessions "
                f"adopted {adopted}; {len(rst)} RST")
            if rst:
                log(f"streams of the killed member: {sorted(victim_ports)}; RST counters: " +
                    ", ".join(f"{m} {c.get('stack.tcp_rst_sent', 0)}"
                              for m, c in zip(rest, counters)))
            assert victim_ports, "the killed member served no stream: nothing was tested"
            assert not failed, f"echo streams broken by the crash: {list(failed.items())[:5]}"
            assert not rst, f"RST from the cluster IP: {rst[:5]}"
            assert adopted >= len(victim_ports), f"only {adopted} echo sessions adopted"
            stalls = sorted(results[p]["max_wait"] * 1000 for p in victim_ports)
            log(f"largest wait for echoed data in a stream of that member: median "
                f"{stalls[len(stalls) // 2]:.0f} ms, max {stalls[-1]:.0f} ms")
            return {"victim": len(victim_ports), "survived": survived,
                    "stall_p50": stalls[len(stalls) // 2], "stall_max": stalls[-1]}
        except BaseException:
            cl.dump_logs()
            raise


def main() -> int:
    figures = {"follower": run(False), "master": run(True)}
    for name, f in figures.items():
        print(f"figure: echo_takeover_{name}_survived = {f['survived']} of {f['victim']} streams")
        print(f"figure: echo_takeover_{name}_stall_p50 = {f['stall_p50']:.0f} ms")
        print(f"figure: echo_takeover_{name}_stall_max = {f['stall_max']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
