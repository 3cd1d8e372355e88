#!/usr/bin/env python3
"""End-to-end: the http app of phalanxd stand-alone, against curl and a python asyncio client.

In a lab of one member and one client, phalanxd serves a directory of random files:
  * curl downloads of 1 MB and 200 MB files, sha256 checked, the big one through segmentation
    offload (the link counters say so);
  * Range requests (curl -r: first bytes, middle, open-ended, suffix, deep into the 200 MB file)
    byte-exact with 206 and the right Content-Range; an unsatisfiable range gets 416;
  * HEAD (curl -I) gives the length and no body;
  * keep-alive: two URLs in one curl invocation re-use one connection (curl -v says so);
  * 404 for a missing file and 405 (with Allow) for POST and DELETE;
  * 1,000 concurrent TCP connections from a python asyncio client, all open at once, each
    fetching a small file: all succeed.
Then the member is still alive and holds no connection once they are closed.

Needs root; PHALANX_BUILD and PHALANX_ROOT. Exit 0 = pass.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (Lab, Member, Steps, check, client_py, curl, lab_name, log,  # noqa: E402
                        main_wrapper, open_connections, parse_json, random_file, sha256_bytes,
                        sha256_range, STALL_SECONDS)

MB = 1_000_000
BIG = 200 * MB
BIG_TIMEOUT = 60  # seconds for the 200 MB download (it takes a few seconds when healthy)
CONCURRENT = 1000


def download(lab: Lab, url: str, timeout: float) -> tuple[str, str, float, float]:
    """curl URL | sha256sum in client1 -> (sha256, http code, bytes, bytes/s)."""
    cmd = ("set -o pipefail; curl -sS --max-time %d --speed-limit 1000 --speed-time %d -w "
           "'%%{stderr}%%{http_code} %%{size_download} %%{speed_download}\\n' '%s' | sha256sum"
           % (timeout, STALL_SECONDS, url))
    p = lab.run("client1", ["bash", "-c", cmd], check=False, timeout=timeout + 15)
    stats = p.stderr.strip().splitlines()[-1].split() if p.stderr.strip() else ["?", "0", "0"]
    check(p.returncode == 0, f"curl {url}: rc {p.returncode}: {p.stderr.strip()}")
    return p.stdout.split()[0], stats[0], float(stats[1]), float(stats[2])


def test() -> None:
    with Lab(lab_name("shttp"), members=1, clients=1) as lab:
        www = lab.path("www")
        os.makedirs(www)
        small = b"phalanx small file\n" * 20
        with open(os.path.join(www, "small.txt"), "wb") as f:
            f.write(small)
        sha_1m = random_file(os.path.join(www, "1m.bin"), 1 * MB)
        sha_big = random_file(os.path.join(www, "200m.bin"), BIG)
        m = Member(lab, "member1", www=www, tcp={"time_wait_ms": 1000}).start()
        ip = m.ip
        url = f"http://{ip}"
        steps = Steps([m])
        log(f"phalanxd pid {m.pid} serves {www} at {url}")

        def dl(name, sha, size, timeout):
            got, code, n, speed = download(lab, f"{url}/{name}", timeout)
            check(code == "200", f"GET /{name}: status {code}")
            check(n == size, f"GET /{name}: {n:.0f} bytes, wanted {size}")
            check(got == sha, f"GET /{name}: sha256 {got}, wanted {sha}")
            log(f"    {name}: {n / MB:.0f} MB, sha256 ok, {speed / MB:.1f} MB/s")

        steps.run("curl download of 1 MB, sha256", dl, "1m.bin", sha_1m, 1 * MB, 20)
        steps.run("curl download of 200 MB, sha256", dl, "200m.bin", sha_big, BIG, BIG_TIMEOUT)

        def offloaded():
            c = m.counters(which="link")
            log(f"    link: {c.get('tx_offloaded', 0)} segments offloaded, "
                f"{c.get('tx_cut_here', 0)} frames cut in user space")
            # 200 MB in segments of up to 45 MSS: thousands; a kernel that refused the offload
            # socket would show none (and the log a warning).
            check(c.get("tx_offloaded", 0) > 2000, f"segmentation offload not used: {c}")
            check(c.get("tx_offload_errors", 0) == 0 and c.get("drop.tx_not_tcp", 0) == 0,
                  f"offload errors: {c}")

        steps.run("the download used segmentation offload", offloaded)

        def ranges():
            path = os.path.join(www, "1m.bin")
            cases = [("0-99", 0, 99), ("1000-2047", 1000, 2047), ("999000-", 999000, MB - 1),
                     ("-100", MB - 100, MB - 1), ("0-0", 0, 0), ("5-2000000", 5, MB - 1)]
            for spec, a, b in cases:
                out = lab.path("range.out")
                p = curl(lab, "client1", ["-r", spec, "-D", "-", "-o", out, f"{url}/1m.bin"], 15)
                check(p.returncode == 0, f"curl -r {spec}: rc {p.returncode} {p.stderr}")
                check(p.stdout.startswith("HTTP/1.1 206"), f"curl -r {spec}: status line "
                      f"{p.stdout.splitlines()[:1]}, wanted 206")
                cr = re.search(r"(?im)^content-range:\s*bytes (\d+)-(\d+)/(\d+)", p.stdout)
                check(cr and (int(cr[1]), int(cr[2]), int(cr[3])) == (a, b, MB),
                      f"curl -r {spec}: Content-Range {cr[0] if cr else None}, wanted "
                      f"bytes {a}-{b}/{MB}")
                with open(out, "rb") as f:
                    body = f.read()
                check(len(body) == b - a + 1, f"curl -r {spec}: {len(body)} bytes, "
                      f"wanted {b - a + 1}")
                check(sha256_bytes(body) == sha256_range(path, a, b),
                      f"curl -r {spec}: bytes differ from the file's {a}-{b}")
            a, b = 150 * MB + 7, 150 * MB + 7 + 3 * MB - 1  # deep into the big file
            p = lab.run("client1", ["bash", "-c", f"set -o pipefail; curl -sS --max-time 20 "
                                    f"--speed-limit 1000 --speed-time {STALL_SECONDS} -r "
                                    f"{a}-{b} {url}/200m.bin | sha256sum"], check=False,
                        timeout=30)
            check(p.returncode == 0 and p.stdout.split()[0] ==
                  sha256_range(os.path.join(www, "200m.bin"), a, b),
                  f"curl -r {a}-{b} of the 200 MB file: rc {p.returncode}, bytes differ "
                  f"{p.stderr}")
            p = curl(lab, "client1", ["-r", f"{2 * MB}-{3 * MB}", "-o", "/dev/null", "-w",
                                      "%{http_code}", f"{url}/1m.bin"], 15)
            check(p.stdout == "416", f"unsatisfiable range: status {p.stdout}, wanted 416")
            log(f"    {len(cases) + 1} ranges byte-exact (206 + Content-Range), 416 beyond the end")

        steps.run("Range requests (curl -r) byte-exact", ranges)

        def head():
            p = curl(lab, "client1", ["-I", f"{url}/1m.bin"], 10)
            check(p.returncode == 0 and p.stdout.startswith("HTTP/1.1 200"),
                  f"HEAD /1m.bin: rc {p.returncode} {p.stdout!r} {p.stderr}")
            check(re.search(rf"(?im)^content-length:\s*{MB}\s*$", p.stdout),
                  f"HEAD /1m.bin: no Content-Length {MB}: {p.stdout!r}")
            check(p.stdout.endswith("\n\n"), f"HEAD /1m.bin carried a body: {p.stdout!r}")

        steps.run("HEAD", head)

        def keepalive():
            p = curl(lab, "client1", ["-v", "-o", "/dev/null", "-o", "/dev/null", f"{url}/1m.bin",
                                      f"{url}/small.txt"], 20)
            check(p.returncode == 0, f"curl two URLs: rc {p.returncode} {p.stderr[-2000:]}")
            check(re.search(r"Re-using existing connection", p.stderr),
                  "curl did not re-use the connection for the second URL:\n" + p.stderr[-3000:])
            check(p.stderr.count("< HTTP/1.1 200") == 2,
                  "wanted two 200 responses:\n" + p.stderr[-3000:])
            check(p.stderr.count("Connected to") == 1,
                  "curl connected more than once:\n" + p.stderr[-3000:])

        steps.run("keep-alive: two URLs in one curl re-use the connection", keepalive)

        def statuses():
            for args, want in (([f"{url}/no-such-file"], "404"),
                               (["--path-as-is", f"{url}/../../../../etc/passwd"],
                                "404|400|403"),
                               (["-X", "POST", f"{url}/small.txt"], "405"),
                               (["-X", "PUT", f"{url}/small.txt"], "405"),
                               (["-X", "DELETE", f"{url}/small.txt"], "405")):
                p = curl(lab, "client1", ["-D", "-", "-o", "/dev/null"] + args, 10)
                status = (p.stdout.splitlines() or [""])[0]
                check(re.match(rf"HTTP/1.1 ({want}) ", status),
                      f"curl {' '.join(args)}: {status!r}, wanted {want}")
                if want == "405":
                    check(re.search(r"(?im)^allow:.*GET", p.stdout),
                          f"405 without an Allow header: {p.stdout!r}")

        steps.run("404 and 405 status codes", statuses)

        def many():
            r = parse_json(client_py(lab, "client1", "http_many",
                                     [ip, 80, "/small.txt", CONCURRENT, sha256_bytes(small), 60],
                                     timeout=90))
            log(f"    {r['succeeded']}/{r['n']} fetched; all connected in "
                f"{r['connect_seconds']} s, fetched in {r['fetch_seconds']} s")

        steps.run(f"{CONCURRENT} concurrent connections (asyncio), each fetches a file", many)

        def settled():
            m.check_alive("after the HTTP tests")
            ok = lab.wait_for(lambda: open_connections(m.counters()) == 0, timeout=10,
                              interval=0.5)
            c = m.counters()
            log(f"    counters: {c}")
            check(ok, f"the stack still holds {open_connections(c)} connections 10 s after the "
                  "last one closed (time_wait_ms = 1000)")

        steps.run("member alive, no connection left", settled)
        steps.finish()


if __name__ == "__main__":
    main_wrapper(test)
