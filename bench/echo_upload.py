#!/usr/bin/env python3
"""Upload rate to phalanxd's echo app, in one phalanx-lab lab (1 member, 1 client).

    PHALANX_BUILD=build bench/echo_upload.py [SIZE_MB] [RUNS] [--capture]

tests/e2e/clients/tcp_echo.py sends SIZE_MB (default 16) MB of random bytes to TCP port 7 while a
thread reads the echo back, RUNS times (default 3), each on a new connection. Rate = bytes sent /
wall time of the whole exchange (the echo back included). Prints each run, the stack counters
that tell a stalled upload (tcp_receive_paused, rto, persist), and the median as
`figure: echo_upload = X MB/s`. With --capture, a pcap of the first run's client side is kept
and its largest gaps between frames are listed. Needs root and a built phalanxd.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(os.environ.get("PHALANX_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from e2e_common import Failure, Lab, Member, client_py, log, parse_json  # noqa: E402

MB = 1_000_000


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    capture = "--capture" in sys.argv
    size = int(float(args[0]) * MB) if args else 16 * MB
    runs = int(args[1]) if len(args) > 1 else 3
    rates = []
    with Lab(f"eup{os.getpid() % 100000}", members=1, clients=1) as lab:
        m = Member(lab, "member1").start()
        before = m.counters()
        for i in range(runs):
            cap = None
            if capture and i == 0:
                cap = lab.capture("client1", f"tcp port 7", name="echo.pcap", snaplen=96)
            r = parse_json(client_py(lab, "client1", "tcp_echo", [m.ip, 7, size, 120], 150))
            if not r["ok"]:
                raise Failure(f"echo of {size} bytes: {r}")
            rates.append(size / MB / r["seconds"])
            log(f"run {i}: {size / MB:.0f} MB echoed in {r['seconds']:.3f} s = "
                f"{rates[-1]:.1f} MB/s")
            if cap is not None:
                lines = cap.stop()
                kept = "/tmp/echo_upload.pcap"
                shutil.copy(lab.path("echo.pcap"), kept)
                log(f"capture: {len(lines)} frames, kept in {kept}")
        after = m.counters()
        names = sorted(k for k in set(after) | set(before)
                       if any(w in k for w in ("paused", "rto", "persist", "retrans", "timers",
                                               "deferred", "drop")))
        log("counters: " + ", ".join(f"{k}=+{after.get(k, 0) - before.get(k, 0)}"
                                      for k in names))
    print(f"figure: echo_upload = {statistics.median(rates):.1f} MB/s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
