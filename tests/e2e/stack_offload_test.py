#!/usr/bin/env python3
"""End-to-end: small client MSS and the interface's offloads, phalanxd stand-alone (issue 9,
parts 1 and 8).

Lab 1, offloads off (the lab's default: every frame on the veths is what a NIC would put on a
wire). For each client MSS 536, 100, 1400 and 1452 (a route with `advmss` in the client):
  * a 1 MB curl download and echoes of 1450 bytes (the issue's reproduction) and 200 kB,
    byte-exact;
  * a capture at the client shows every data segment from the member within the MSS (payload
    plus TCP options), and no retransmission (no data segment starting at a sequence number
    the flow already sent) unless the client's kernel counted a drop of a received segment
    (its receive memory ran out: tiny segments cost it many times their size);
  * the client's kernel counted no TCP checksum error (nstat TcpInCsumErrors).
Lab 2, offloads on (tx checksum, TSO and GRO on at every veth, as Linux sets up a physical NIC):
  * an 8 MB upload to echo (echoed back: 8 MB down too), a 20 MB curl download and a 1450-byte
    echo with MSS 1400, byte-exact;
  * the link delivered merged segments whole (rx_large_frames > 0) and dropped none as
    truncated.

Needs root; PHALANX_BUILD and PHALANX_ROOT. Exit 0 = pass.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (Lab, Member, Steps, check, client_py, curl, lab_name, log,  # noqa: E402
                        main_wrapper, parse_json, random_file)

MB = 1_000_000
MSS_CASES = (536, 100, 1400, 1452)
# tcpdump -e -S lines of TCP data segments: "...: a.b.c.d.P > e.f.g.h.Q: Flags [.], seq A:B, ..."
SEG_RE = re.compile(r"(\d+\.\d+\.\d+\.\d+)\.(\d+) > (\S+)\.(\d+): Flags \[[^\]]*\], "
                    r"seq (\d+):(\d+),")


def nstat(lab: Lab, counter: str) -> int:
    """An absolute kernel counter in client1 (nstat -az)."""
    p = lab.run("client1", ["nstat", "-az", counter], check=False, timeout=10)
    m = re.search(rf"^{counter}\s+(\d+)", p.stdout, re.M)
    check(m is not None, f"nstat {counter}: {p.stdout}{p.stderr}")
    return int(m.group(1))


def clamp_mss(lab: Lab, ip: str, mss: int) -> None:
    """The client advertises `mss` to ip (ip route ... advmss)."""
    lab.run("client1", ["ip", "route", "replace", f"{ip}/32", "dev", "eth0", "advmss", str(mss)])


def check_segments(lines: list[str], src_ip: str, mss: int) -> tuple[int, list[str]]:
    """Every data segment from src_ip within `mss` (payload plus 12 option bytes when it carries
    timestamps); returns the number of data segments and the lines of those sent twice."""
    seen: dict[tuple, set[int]] = {}
    count = 0
    again = []
    for ln in lines:
        m = SEG_RE.search(ln)
        if not m or m.group(1) != src_ip:
            continue
        start, end = int(m.group(5)), int(m.group(6))
        payload = (end - start) % (1 << 32)
        if payload == 0:
            continue
        count += 1
        options = 12 if "TS val" in ln else 0
        check(payload + options <= mss, f"a segment of {payload} bytes (+{options} of options) "
              f"to a client with MSS {mss}:\n{ln}")
        flow = (m.group(2), m.group(3), m.group(4))
        if start in seen.setdefault(flow, set()):
            again.append(ln)
        seen[flow].add(start)
    return count, again


# Where the client's kernel drops a segment after the capture saw it (its receive memory is
# full: 100-byte segments cost it ten times their size), the member must send it again. So a
# retransmission fails the test only when none of these counted a drop. PruneCalled and
# TCPRcvCollapsed are logged too: they show memory pressure that did not drop.
CLIENT_DROPS = ("TcpExtTCPRcvQDrop", "TcpExtTCPOFODrop", "TcpExtTCPZeroWindowDrop",
                "TcpExtTCPBacklogDrop", "TcpExtRcvPruned", "TcpExtOfoPruned")
CLIENT_PRESSURE = ("TcpExtPruneCalled", "TcpExtTCPRcvCollapsed")


def client_drops(lab: Lab) -> dict[str, int]:
    p = lab.run("client1", ["nstat", "-az", *CLIENT_DROPS, *CLIENT_PRESSURE], check=False,
                timeout=10)
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)", p.stdout, re.M)}


def echo(lab: Lab, ip: str, size: int, timeout: float = 20) -> dict:
    res = parse_json(client_py(lab, "client1", "tcp_echo", [ip, 7, size, timeout], timeout + 10))
    check(res["ok"], f"echo of {size} bytes: {res}")
    return res


def download(lab: Lab, url: str, sha: str, timeout: float) -> None:
    p = lab.run("client1", ["bash", "-c", f"set -o pipefail; curl -sS --max-time {timeout} "
                            f"--speed-limit 1000 --speed-time 5 {url} | sha256sum"],
                check=False, timeout=timeout + 10)
    check(p.returncode == 0, f"curl {url}: rc {p.returncode}: {p.stderr.strip()}")
    check(p.stdout.split()[0] == sha, f"curl {url}: the bytes differ from the file")


def small_mss(www: str, sha_1m: str) -> None:
    with Lab(lab_name("soffm"), members=1, clients=1) as lab:
        m = Member(lab, "member1", www=www).start()
        steps = Steps([m])
        csum_before = nstat(lab, "TcpInCsumErrors")
        for mss in MSS_CASES:
            def run_case(mss=mss):
                clamp_mss(lab, m.ip, mss)
                cap = lab.capture("client1", f"tcp and src host {m.ip}", direction="in")
                drops_before = client_drops(lab)
                download(lab, f"http://{m.ip}/1m.bin", sha_1m, 30)
                echo(lab, m.ip, 1450)
                echo(lab, m.ip, 200_000)
                cap.stop()
                drops = {k: v - drops_before.get(k, 0) for k, v in client_drops(lab).items()}
                n, again = check_segments(cap.lines(["-S"]), m.ip, mss)
                check(n > 0, f"MSS {mss}: the capture holds no data segment")
                check(cap.dropped() == 0, f"MSS {mss}: tcpdump dropped {cap.dropped()} frames")
                c = m.counters()
                log(f"    MSS {mss}: {len(again)} sent twice; client kernel: "
                    f"{ {k: v for k, v in drops.items() if v} }; member, all cases so far: "
                    f"retransmits={c.get('tcp_retransmits', 0)} "
                    f"fast={c.get('tcp_fast_retransmits', 0)} rto={c.get('tcp_rto_expiries', 0)}")
                dropped = sum(drops.get(k, 0) for k in CLIENT_DROPS)
                check(not again or dropped > 0,
                      f"retransmission (MSS {mss}) of {len(again)} segments, and the client "
                      f"dropped none:\n" + "\n".join(again[:3]))
                log(f"    MSS {mss}: {n} data segments, all within the MSS, "
                    + (f"{len(again)} sent again after {dropped} drops at the client"
                       if again else "none sent twice"))

            steps.run(f"client MSS {mss}: download and echo, no segment above the MSS, "
                      "no retransmission", run_case)
        errors = nstat(lab, "TcpInCsumErrors") - csum_before
        check(errors == 0, f"the client's kernel dropped {errors} segments with a bad checksum")
        steps.finish()


def offloads_on(www: str, sha_20m: str) -> None:
    with Lab(lab_name("soffo"), members=1, clients=1, offloads="on") as lab:
        m = Member(lab, "member1", www=www).start()
        steps = Steps([m])

        steps.run("8 MB upload to echo (echoed back), byte-exact",
                  lambda: log(f"    {echo(lab, m.ip, 8 * MB, 30)['seconds']} s"))
        steps.run("20 MB curl download, sha256",
                  lambda: download(lab, f"http://{m.ip}/20m.bin", sha_20m, 30))

        def clamped_echo():
            clamp_mss(lab, m.ip, 1400)
            echo(lab, m.ip, 1450)
            echo(lab, m.ip, 200_000)

        steps.run("echo with client MSS 1400", clamped_echo)

        def link_counters():
            c = m.counters(which="link")
            log(f"    link: {c.get('rx_large_frames', 0)} merged segments received whole, "
                f"{c.get('rx_checksum_not_ready', 0)} with the checksum left to hardware, "
                f"{c.get('tx_offloaded', 0)} segments offloaded")
            check(c.get("rx_large_frames", 0) > 0, f"no merged segment reached the link: {c}")
            for drop in ("drop.rx_truncated", "drop.rx_large_buffer_full",
                         "drop.rx_kernel_ring_full"):
                check(c.get(drop, 0) == 0, f"link {drop}: {c}")

        steps.run("the link took merged segments whole, dropped none", link_counters)
        steps.finish()


def test() -> None:
    www = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"phalanx-soff-{os.getpid()}")
    os.makedirs(www)
    try:
        sha_1m = random_file(os.path.join(www, "1m.bin"), 1 * MB)
        sha_20m = random_file(os.path.join(www, "20m.bin"), 20 * MB)
        small_mss(www, sha_1m)
        offloads_on(www, sha_20m)
    finally:
        for f in os.listdir(www):
            os.unlink(os.path.join(www, f))
        os.rmdir(www)


if __name__ == "__main__":
    main_wrapper(test)
