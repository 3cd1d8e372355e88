#!/usr/bin/env python3
"""End-to-end: downloads from phalanxd stand-alone over a lossy link.

In a lab of one member and one client, random loss is injected on member1's bridge port in
both directions (lab.loss: nftables on the switch, every frame - data, ACKs, ARP - with
independent draws), first 1 % then 5 %. Under each, curl downloads a 20 MB random file from the
http app: it must complete within a bounded time and match the file's sha256. The nft drop
counters prove that frames were really lost. Afterwards (loss cleared) the member is alive and
answers at once.

Needs root; PHALANX_BUILD and PHALANX_ROOT. Exit 0 = pass.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (Lab, Member, Steps, check, lab_name, log, main_wrapper,  # noqa: E402
                        open_connections, ping_ok, random_file)

MB = 1_000_000
SIZE = 20 * MB
# Bound for one 20 MB download. Healthy: a few seconds at 1 %; at 5 % both ways, NewReno with
# SACK spends most of its time in recovery and RTOs (rto_min 200 ms), so allow much more.
LIMITS = {1: 45, 5: 75}


def dropped(lab: Lab) -> int:
    out = lab.run("switch", ["nft", "list", "table", "bridge", "phalanx_lab"], check=False,
                  timeout=10).stdout
    return sum(int(n) for n in re.findall(r"counter packets (\d+)", out.split("chain loss", 1)[-1]))


def test() -> None:
    with Lab(lab_name("sloss"), members=1, clients=1) as lab:
        www = lab.path("www")
        os.makedirs(www)
        sha = random_file(os.path.join(www, "20m.bin"), SIZE)
        m = Member(lab, "member1", www=www, tcp={"time_wait_ms": 1000}).start()
        url = f"http://{m.ip}/20m.bin"
        steps = Steps([m])
        log(f"phalanxd pid {m.pid} serves {url}")

        def download(percent: int):
            lab.loss("member1", percent, direction="both")
            try:
                limit = LIMITS[percent]
                # --speed-time: at 5 % loss an RTO backoff can stop the transfer for a few
                # seconds (200 ms doubling); 10 s without 1 kB/s is a stall, not loss.
                cmd = ("set -o pipefail; curl -sS --max-time %d --speed-limit 1000 --speed-time "
                       "10 -w '%%{stderr}%%{http_code} %%{size_download} %%{speed_download} "
                       "%%{time_total}\\n' '%s' | sha256sum" % (limit, url))
                p = lab.run("client1", ["bash", "-c", cmd], check=False, timeout=limit + 15)
                lost = dropped(lab)
            finally:
                lab.clear_loss()
            stats = (p.stderr.strip().splitlines() or ["? 0 0 0"])[-1].split()
            log(f"    {percent}% loss both ways: rc {p.returncode}, status {stats[0]}, "
                f"{float(stats[1]) / MB:.1f} MB in {stats[-1]} s "
                f"({float(stats[2]) / MB:.2f} MB/s), {lost} frames dropped by the switch")
            check(p.returncode == 0, f"{percent}% loss: curl rc {p.returncode} within {limit} s: "
                  f"{p.stderr.strip()}")
            check(stats[0] == "200" and float(stats[1]) == SIZE,
                  f"{percent}% loss: status {stats[0]}, {stats[1]} bytes (wanted 200, {SIZE})")
            check(p.stdout.split()[0] == sha, f"{percent}% loss: sha256 differs from the file's")
            check(lost > 0, f"{percent}% loss: the switch dropped nothing (loss not applied?)")

        steps.run("20 MB download with 1% loss both ways", download, 1)
        steps.run("20 MB download with 5% loss both ways", download, 5)

        def after():
            m.check_alive("after the lossy downloads")
            check(ping_ok(lab, "client1", m.ip), "no ping answer after the loss was cleared")
            ok = lab.wait_for(lambda: open_connections(m.counters()) == 0, timeout=10,
                              interval=0.5)
            c = m.counters()
            log(f"    counters: {c}")
            check(ok, f"{open_connections(c)} connection(s) still held after the downloads")

        steps.run("member healthy afterwards", after)
        steps.finish()


if __name__ == "__main__":
    main_wrapper(test)
