#!/usr/bin/env python3
"""Cost of session replication (issue 11): goodput with replication on vs off, and the sync
bytes it puts on the LAN per GB served, in phalanx-lab labs (driven by bench/replication_bench.sh).

Two members, multicast mode, default timings; `replicas = 1` (on) and `replicas = 0` (off), one
lab each, the same files. From one client namespace, through the cluster IP:
  1. one curl download of a 200 MB file;
  2. 64 parallel curl downloads of a 4 MB file each;
  3. echo round trips: one connection to port 7, 64-byte messages, each sent once the previous
     one came back (2000 per trial): the latency output commit adds to a request/response, as
     p50 and p99 (a request is echoed only once the backup holds it);
  4. one 8 MB echo stream (sent and read back at once, byte-exact): what echo's 16 KiB replicated
     window costs a bulk stream.
Each case runs TRIALS times per setting, the settings alternating (off, on, off, on, ...) so that
drift of this shared machine hits both alike; the figure is the median goodput. Sync bytes:
the members' `sync.batch_bytes` (every sync datagram sent, records and acknowledgements) over
the whole on-run, divided by the bytes served. With replication on, every byte a client
receives was sent under output commit (a request answered only once its record is held by the
backup; no byte beyond the replicated send limit).

Ends with figure:/baseline:/ratio: lines; exit status 1 if a download failed.
Environment: PHALANX_BUILD (required), PHALANX_REPLICATION_TRIALS (default 5).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("PHALANX_ROOT") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from cluster_harness import ClusterLab, log  # noqa: E402

MB = 1024 * 1024
BIG = 200 * MB
PAR_N = 64
PAR_SIZE = 4 * MB
ECHO_ROUNDS = 2000
ECHO_STREAM = 8 * MB
CLIENTS = os.path.join(ROOT, "tests", "e2e", "clients")

# Runs in the client: ECHO_ROUNDS round trips of 64 bytes on one connection to port 7; prints
# the round-trip times in microseconds, one JSON list.
PINGPONG = r"""
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg, rtts = b"x" * 64, []
for _ in range(int(sys.argv[2])):
    t0 = time.monotonic_ns()
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(64 - len(got))
        if not b:
            raise SystemExit("echo closed")
        got += b
    rtts.append((time.monotonic_ns() - t0) // 1000)
s.close()
print(json.dumps(rtts))
"""
TRIALS = int(os.environ.get("PHALANX_REPLICATION_TRIALS", "5"))
TIMEOUT = 120


class Failure(Exception):
    pass


def curl(cl: ClusterLab, name: str, n: int, size: int) -> float:
    """n parallel downloads of `name`; -> seconds (wall) for all of them."""
    url = f"http://{cl.cluster_ip}/{name}"
    script = (f"for i in $(seq {n}); do curl -sS -o /dev/null "
              f"--max-time {TIMEOUT} --speed-limit 1000 --speed-time 15 "
              f"-w '%{{http_code}} %{{size_download}}\\n' {url} & done; wait")
    t0 = time.monotonic()
    p = cl.run("client1", ["bash", "-c", script], check=False, timeout=TIMEOUT + 30)
    wall = time.monotonic() - t0
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.strip()]
    good = [r for r in rows if r == ["200", str(size)]]
    if len(good) != n:
        raise Failure(f"{len(good)}/{n} downloads of {name} complete: {rows[:5]} "
                      f"{p.stderr.strip()[-300:]}")
    return wall


def echo_rtts(cl: ClusterLab) -> list:
    p = cl.run("client1", ["python3", "-c", PINGPONG, cl.cluster_ip, str(ECHO_ROUNDS)],
               check=False, timeout=60)
    if p.returncode != 0:
        raise Failure(f"echo round trips: {p.stderr.strip()[-300:]}")
    return json.loads(p.stdout)


def echo_stream(cl: ClusterLab) -> float:
    """One ECHO_STREAM-byte echo, byte-exact; -> MB/s."""
    p = cl.run("client1", ["python3", os.path.join(CLIENTS, "tcp_echo.py"), cl.cluster_ip, "7",
                           str(ECHO_STREAM), "60"], check=False, timeout=90)
    if p.returncode != 0:
        raise Failure(f"echo stream: {p.stdout.strip()[-300:]} {p.stderr.strip()[-300:]}")
    return ECHO_STREAM / json.loads(p.stdout)["seconds"] / MB


def pct(values: list, q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def sync_bytes(cl: ClusterLab) -> int:
    return sum(v["counters"].get("sync.batch_bytes", 0) for v in cl.views().values())


def main() -> int:
    labs = {}
    goodput = {(case, r): [] for case in ("single", "parallel", "echo_stream") for r in (0, 1)}
    rtts = {0: [], 1: []}
    served_on = 0
    try:
        for replicas in (0, 1):
            cl = ClusterLab(f"rpb{replicas}{os.getpid() % 1000}", members=2, clients=1,
                            extra=f"replicas = {replicas}\n").__enter__()
            labs[replicas] = cl
            cl.make_file("big.bin", BIG)
            cl.make_file("par.bin", PAR_SIZE)
            cl.start_all()
            if not cl.wait_master(10):
                raise Failure(f"replicas = {replicas}: no master")
        sync0 = sync_bytes(labs[1])
        for trial in range(TRIALS):
            for replicas in (0, 1):
                cl = labs[replicas]
                s = curl(cl, "big.bin", 1, BIG)
                goodput[("single", replicas)].append(BIG / s / MB)
                p = curl(cl, "par.bin", PAR_N, PAR_SIZE)
                goodput[("parallel", replicas)].append(PAR_N * PAR_SIZE / p / MB)
                if replicas == 1:
                    served_on += BIG + PAR_N * PAR_SIZE
                sync_before_echo = sync_bytes(labs[1])
                r = echo_rtts(cl)
                rtts[replicas] += r
                e = echo_stream(cl)
                goodput[("echo_stream", replicas)].append(e)
                if replicas == 1:
                    sync0 += sync_bytes(labs[1]) - sync_before_echo  # not bytes served by http
                log(f"trial {trial + 1}/{TRIALS}, replicas = {replicas}: single "
                    f"{BIG / s / MB:.0f} MB/s, {PAR_N} parallel {PAR_N * PAR_SIZE / p / MB:.0f} "
                    f"MB/s; echo round trip p50 {pct(r, 0.5)} us, p99 {pct(r, 0.99)} us; echo "
                    f"stream {e:.1f} MB/s")
        sync = sync_bytes(labs[1]) - sync0
        off_sync = sync_bytes(labs[0])
    except Failure as e:
        log(f"FAILED: {e}")
        for cl in labs.values():
            cl.dump_logs()
        return 1
    finally:
        for cl in labs.values():
            cl.__exit__(None, None, None)
    for case in ("single", "parallel"):
        off = statistics.median(goodput[(case, 0)])
        on = statistics.median(goodput[(case, 1)])
        print(f"figure: replication_{case}_goodput_on = {on:.1f} MB/s")
        print(f"baseline: replication_{case}_goodput_off = {off:.1f} MB/s")
        print(f"ratio: replication_{case}_goodput_on_vs_off = {on / off:.3f}")
    case = "echo_stream"
    off = statistics.median(goodput[(case, 0)])
    on = statistics.median(goodput[(case, 1)])
    print(f"figure: replication_{case}_goodput_on = {on:.1f} MB/s")
    print(f"baseline: replication_{case}_goodput_off = {off:.1f} MB/s")
    print(f"ratio: replication_{case}_goodput_on_vs_off = {on / off:.3f}")
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        on, off = pct(rtts[1], q), pct(rtts[0], q)
        print(f"figure: replication_echo_rtt_{name}_on = {on} us")
        print(f"baseline: replication_echo_rtt_{name}_off = {off} us")
        print(f"figure: replication_echo_rtt_{name}_added = {on - off} us")
    per_gb = sync / (served_on / (1024 * MB))
    print(f"figure: replication_sync_bytes_per_gb_served = {per_gb / MB:.2f} MB/GB")
    print(f"figure: replication_off_sync_bytes = {off_sync} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
