#!/usr/bin/env python3
"""HTTP goodput of phalanxd's http app against nginx, in one phalanx-lab lab (driven by
bench/http_goodput_bench.sh; see docs/e2e.md).

One member namespace runs both servers side by side: phalanxd serving the member's stack
address (user-space TCP over AF_PACKET) and nginx bound to the member's kernel address (Linux
TCP, sendfile), both serving the same directory of random files (random: no compression can
help anyone; neither server compresses anyway). From one client namespace, curl downloads:
  1. one 1 GB file, one connection;
  2. 64 parallel downloads (64 curl processes) of a 16 MB file each (1.07 GB in all; smaller
     files than the single case to keep the whole run near 1-2 minutes).
Goodput = body bytes / wall time. CPU = utime + stime from /proc/<pid>/stat before and after
each run (nginx: master + workers). Only the server processes are counted: the client's curl,
and the kernel's softirq work that Linux may charge to other tasks, are not.
Ends with `figure:` / `baseline:` / `ratio:` lines. Exit 0 when every download completed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(os.environ.get("PHALANX_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from e2e_common import Failure, Lab, Member, log, random_file  # noqa: E402

MB = 1_000_000
BIG = 1000 * MB
PAR_N = 64
PAR_SIZE = 16 * MB
SINGLE_TIMEOUT = 120  # s; a stalled transfer is also cut by --speed-limit (below 1 kB/s, 15 s)
PAR_TIMEOUT = 150
HZ = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(f[11]) + int(f[12])
    return total / HZ


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(f[1]) == pid:
                out.append(int(d))
    return out


NGINX_CONF = """
worker_processes {workers};
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen {ip}:80;
        root {www};
    }}
}}
"""


class Server:
    def __init__(self, name: str, ip: str, pids):
        self.name, self.ip, self.pids = name, ip, pids  # pids: callable -> list of pids

    def cpu(self) -> float:
        return cpu_of(self.pids())


def single(lab: Lab, srv: Server) -> tuple[float, float, float]:
    """-> (bytes, seconds, cpu seconds) for one download of the big file."""
    url = f"http://{srv.ip}/big.bin"
    cpu0 = srv.cpu()
    p = lab.run("client1", ["curl", "-sS", "-o", "/dev/null", "--max-time", str(SINGLE_TIMEOUT),
                            "--speed-limit", "1000", "--speed-time", "15",
                            "-w", "%{http_code} %{size_download} %{time_total}", url],
                check=False, timeout=SINGLE_TIMEOUT + 20)
    cpu = srv.cpu() - cpu0
    f = p.stdout.split()
    if p.returncode != 0 or len(f) != 3 or f[0] != "200" or int(f[1]) != BIG:
        raise Failure(f"{srv.name}: single download of {url}: curl rc {p.returncode}, "
                      f"{p.stdout!r} {p.stderr.strip()}")
    return float(f[1]), float(f[2]), cpu


def parallel(lab: Lab, srv: Server) -> tuple[float, float, float]:
    """-> (bytes, wall seconds, cpu seconds) for PAR_N parallel downloads of the small file."""
    url = f"http://{srv.ip}/par.bin"
    script = (f"for i in $(seq {PAR_N}); do curl -sS -o /dev/null --max-time {PAR_TIMEOUT} "
              f"--speed-limit 1000 --speed-time 15 -w '%{{http_code}} %{{size_download}}\\n' "
              f"{url} & done; wait")
    cpu0, t0 = srv.cpu(), time.monotonic()
    p = lab.run("client1", ["bash", "-c", script], check=False, timeout=PAR_TIMEOUT + 30)
    wall, cpu = time.monotonic() - t0, srv.cpu() - cpu0
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.strip()]
    good = [r for r in rows if r == ["200", str(PAR_SIZE)]]
    if len(good) != PAR_N:
        raise Failure(f"{srv.name}: {len(good)}/{PAR_N} parallel downloads complete; others: "
                      f"{[r for r in rows if r not in good][:5]} {p.stderr.strip()[-500:]}")
    return float(PAR_SIZE * PAR_N), wall, cpu


def main() -> int:
    failures = []
    with Lab(f"hgp{os.getpid() % 100000}", members=1, clients=1) as lab:
        www = lab.path("www")
        os.makedirs(www)
        t0 = time.monotonic()
        random_file(os.path.join(www, "big.bin"), BIG)
        random_file(os.path.join(www, "par.bin"), PAR_SIZE)
        log(f"wrote {BIG / MB:.0f} MB + {PAR_SIZE / MB:.0f} MB of random data in "
            f"{time.monotonic() - t0:.1f} s")
        m = Member(lab, "member1", www=www, echo=False).start()
        tmp = lab.path("nginx")
        os.makedirs(tmp)
        conf = os.path.join(tmp, "nginx.conf")
        kip = lab.ip("member1")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=os.cpu_count() or 1, tmp=tmp, ip=kip, www=www))
        ng = lab.spawn("member1", ["nginx", "-c", conf, "-g", "daemon off;"],
                       log=os.path.join(tmp, "nginx.out"))
        ok = lab.wait_for(lambda: not ng.alive() or lab.run(
            "client1", ["curl", "-sf", "-o", "/dev/null", "--max-time", "2",
                        f"http://{kip}/par.bin"], check=False).returncode == 0, timeout=15,
            interval=0.2)
        if not ok or not ng.alive():
            raise Failure(f"nginx did not start: {ng.output()[-1000:]}")
        servers = {"phalanx": Server("phalanx", m.ip, lambda: [m.pid]),
                   "nginx": Server("nginx", kip, lambda: [ng.pid] + children(ng.pid))}
        log(f"phalanxd pid {m.pid} on {m.ip}; nginx pid {ng.pid} "
            f"({len(children(ng.pid))} workers) on {kip}")
        res: dict = {}
        for case, fn in (("single", single), ("parallel", parallel)):
            for name in ("nginx", "phalanx"):
                try:
                    b, s, cpu = fn(lab, servers[name])
                except Failure as e:
                    log(f"FAILED {name} {case}: {e}")
                    failures.append(f"{name} {case}: {e}")
                    continue
                res[(name, case)] = (b, s, cpu)
                log(f"{name:8s} {case:8s}: {b / MB:7.0f} MB in {s:6.2f} s = "
                    f"{b / MB / s:8.1f} MB/s; server CPU {cpu:6.2f} s = "
                    f"{cpu / (b / 1e9):5.2f} CPU s/GB")
        if not m.alive():
            failures.append(f"phalanxd exited: {m.output()[-1000:]}")

    def goodput(name, case):
        b, s, _ = res[(name, case)]
        return b / MB / s

    def cpu_per_gb(name):
        runs = [res[k] for k in res if k[0] == name]
        return sum(r[2] for r in runs) / (sum(r[0] for r in runs) / 1e9)

    print()
    for case, tag in (("single", "http_goodput"), ("parallel", f"http_goodput_{PAR_N}")):
        if ("phalanx", case) in res:
            print(f"figure: {tag}_phalanx = {goodput('phalanx', case):.1f} MB/s")
        if ("nginx", case) in res:
            print(f"baseline: {tag}_nginx = {goodput('nginx', case):.1f} MB/s")
        if ("phalanx", case) in res and ("nginx", case) in res:
            print(f"ratio: {tag}_phalanx_over_nginx = "
                  f"{goodput('phalanx', case) / goodput('nginx', case):.3f}")
    have = {k[0] for k in res}
    if "phalanx" in have:
        print(f"figure: cpu_s_per_gb_phalanx = {cpu_per_gb('phalanx'):.2f} CPU s/GB")
    if "nginx" in have:
        print(f"baseline: cpu_s_per_gb_nginx = {cpu_per_gb('nginx'):.2f} CPU s/GB")
    if failures:
        print("http_goodput: FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"http_goodput: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
