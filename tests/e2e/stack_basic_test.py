#!/usr/bin/env python3
"""End-to-end: phalanxd stand-alone serves an address its kernel does not have.

In a lab of one member and one client: ping (small and fragmented), UDP echo, TCP echo of 1 MB
of random bytes byte-exact, nc and socat against the echo port (when installed), and a capture
on the member proving that, during all this well-behaved traffic, no RST and no ICMP
unreachable leaves the member from the served address or from the member's kernel address.
A positive control at the end (a TCP connect and a UDP datagram to closed ports) proves that
the same capture filter does see the RST and the port unreachable the stack sends then.
Also checks that the client kernel counted no TCP/UDP checksum errors.

Needs root; PHALANX_BUILD (build dir) and PHALANX_ROOT (source dir). Exit 0 = pass.
"""

import os
import re
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (Lab, Member, Steps, check, client_py, lab_name, log,  # noqa: E402
                        main_wrapper, parse_json)

ECHO = 7


def nstat(lab: Lab, node: str) -> dict:
    out = lab.run(node, ["nstat", "-az", "TcpInCsumErrors", "UdpInCsumErrors", "IpExtInCsumErrors",
                         "TcpExtTCPAbortOnData"], check=False, timeout=10).stdout
    vals = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 2 and f[1].isdigit():
            vals[f[0]] = int(f[1])
    return vals


def test() -> None:
    with Lab(lab_name("sbas"), members=1, clients=1) as lab:
        www = lab.path("www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello\n")
        # qdisc_bypass: frames phalanxd sends skip the local taps, so a capture on the member
        # sees only what the member's KERNEL sends (exactly what must stay silent).
        m = Member(lab, "member1", www=www, link={"qdisc_bypass": True}).start()
        ip, kip, c = m.ip, lab.ip("member1"), "client1"
        steps = Steps([m])
        log(f"phalanxd pid {m.pid} serves {ip} on member1 (kernel address {kip})")
        rst_or_unreach = "(icmp[icmptype] == icmp-unreach or tcp[tcpflags] & tcp-rst != 0)"
        kernel_cap = lab.capture("member1", f"icmp or tcp[tcpflags] & tcp-rst != 0",
                                 direction="out", name="member-kernel.pcap")
        stack_cap = lab.capture(c, f"src host {ip} and {rst_or_unreach}", direction="in",
                                name="client-in.pcap")
        base = nstat(lab, c)

        def ping():
            sent, recv = lab.ping(c, ip, count=5, interval=0.2)
            check(recv == sent == 5, f"ping {ip}: {recv}/{sent} answered")
            big = lab.run(c, ["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000",
                              ip], check=False, timeout=15)
            check(big.returncode == 0 and " 0% packet loss" in big.stdout,
                  f"ping -s 3000 (fragmented both ways) {ip}:\n{big.stdout}{big.stderr}")
            log("    ping: 5/5, and 2/2 with 3000-byte (fragmented) echo requests")

        def udp_echo():
            r = parse_json(client_py(lab, c, "udp_echo", [ip, ECHO, 60], timeout=90))
            log(f"    {r['echoed']}/{r['sent']} datagrams byte-exact ({r['retries']} retries)")

        def tcp_echo():
            r = parse_json(client_py(lab, c, "tcp_echo", [ip, ECHO, 1 << 20, 60], timeout=90))
            log(f"    1 MiB byte-exact in {r['seconds']} s, server closed after our FIN")
            # ~0.03 s here; a window update lost after an echo pause costs the client's persist
            # timer (>= 200 ms) each time. Generous: the machine is shared.
            check(r["seconds"] < 3, f"1 MiB echo took {r['seconds']} s (under 0.35 MB/s)")

        line = "phalanx nc test line"

        def nc():
            check(shutil.which("nc"), "nc not installed (Debian package netcat-openbsd)")
            p = lab.run(c, ["nc", "-N", "-w", "5", ip, str(ECHO)], input=line + "\n",
                        check=False, timeout=15)
            check(p.returncode == 0 and p.stdout.strip() == line,
                  f"nc -N {ip} 7: rc {p.returncode}, got {p.stdout!r} {p.stderr!r}")
            p = lab.run(c, ["nc", "-u", "-w", "1", ip, str(ECHO)], input=line + "\n",
                        check=False, timeout=15)
            check(p.stdout.strip() == line, f"nc -u {ip} 7: got {p.stdout!r} {p.stderr!r}")

        def socat():
            check(shutil.which("socat"), "socat not installed (Debian package socat)")
            data = line * 1000 + "\n"
            p = lab.run(c, ["socat", "-t", "5", "-T", "10", "-", f"TCP:{ip}:{ECHO}"],
                        input=data, check=False, timeout=20)
            check(p.returncode == 0 and p.stdout == data,
                  f"socat - TCP:{ip}:7 with {len(data)} bytes: rc {p.returncode}, "
                  f"{len(p.stdout)} bytes back {p.stderr!r}")

        def http():
            p = lab.run(c, ["curl", "-sS", "--max-time", "10", f"http://{ip}/index.html"],
                        check=False, timeout=20)
            check(p.returncode == 0 and p.stdout == "hello\n",
                  f"curl http://{ip}/index.html: rc {p.returncode} {p.stdout!r} {p.stderr!r}")

        steps.run("ping (small, and 3000 bytes fragmented)", ping)
        steps.run("UDP echo (python, 62 datagrams up to 4000 bytes)", udp_echo)
        steps.run("TCP echo of 1 MiB random bytes (python)", tcp_echo)
        steps.run("nc TCP + UDP echo", nc)
        steps.run("socat TCP echo of 20 kB", socat)
        steps.run("curl a small file", http)

        def kernel_silence():
            lines = kernel_cap.stop()
            check(not lines, "the member's kernel sent RST/ICMP during the test:\n"
                  + "\n".join(lines[:20]))
            check(kernel_cap.dropped() == 0, f"member capture dropped {kernel_cap.dropped()} "
                  "frames: inconclusive")

        def stack_quiet():
            lines = stack_cap.stop()
            src_port = re.compile(rf"{re.escape(ip)}\.(\d+) >")
            ports = sorted({p for ln in lines for p in src_port.findall(ln)})
            check(not lines, f"{len(lines)} RST/ICMP-unreachable frames from the served address "
                  f"(from the stack's port(s) {', '.join(ports)}) during well-behaved traffic; "
                  "the first ones:\n" + "\n".join(lines[:5]))
            after = nstat(lab, c)
            for k in ("TcpInCsumErrors", "UdpInCsumErrors", "IpExtInCsumErrors"):
                check(after.get(k, 0) == base.get(k, 0),
                      f"client kernel counted {k} {base.get(k, 0)} -> {after.get(k, 0)}: the "
                      "stack sent frames with bad checksums")
            cnt = m.counters()
            log(f"    counters: {cnt}")
            bad = {k: v for k, v in cnt.items()
                   if k.startswith("drop.") and ("checksum" in k or "malformed" in k)}
            check(not bad, f"the stack dropped frames as bad: {bad}")

        steps.run("the member's kernel sent no RST and no ICMP (capture on member1)",
                  kernel_silence)
        steps.run("the stack sent no RST/unreachable to well-behaved clients; no checksum errors",
                  stack_quiet)

        def control():
            # Positive control: a RST from the member's kernel (its own address, port 9) is
            # seen by the member capture; the stack's RST and port unreachable (served address,
            # port 9) are seen by the client capture and NOT by the member capture.
            kcap = lab.capture("member1", "icmp or tcp[tcpflags] & tcp-rst != 0",
                               direction="out", name="control-member.pcap")
            scap = lab.capture(c, f"src host {ip} and {rst_or_unreach}", direction="in",
                               name="control-client.pcap")
            for host in (kip, ip):
                p = lab.run(c, ["curl", "-sS", "--max-time", "5", f"http://{host}:9/"],
                            check=False, timeout=15)
                check(p.returncode == 7, f"curl to closed port {host}:9: wanted 'connection "
                      f"refused' (rc 7), got rc {p.returncode} {p.stderr!r}")
            lab.run(c, [sys.executable, "-c", "import socket; s=socket.socket(socket.AF_INET,"
                        f"socket.SOCK_DGRAM); s.sendto(b'x', ('{ip}', 9))"], timeout=10)
            lab.wait_for(lambda: False, timeout=0.3)
            klines, slines = kcap.stop(), scap.stop()
            check(any(f"{kip}.9 >" in ln and "[R" in ln for ln in klines),
                  "control: the member capture did not see its kernel's RST:\n"
                  + "\n".join(klines))
            check(not any(ip in ln.split(">")[0] for ln in klines),
                  "control: the member capture saw frames phalanxd sent (qdisc_bypass is on, "
                  "they should skip the tap):\n" + "\n".join(klines))
            check(any(f"{ip}.9 >" in ln and "[R" in ln for ln in slines),
                  "control: no RST from the stack for a SYN to closed port 9:\n"
                  + "\n".join(slines))
            check(any("unreachable" in ln for ln in slines),
                  "control: no ICMP port unreachable from the stack for UDP to port 9:\n"
                  + "\n".join(slines))

        steps.run("control: the captures do see a kernel RST and the stack's RST/unreachable",
                  control)
        m.check_alive("at the end")
        steps.finish()


if __name__ == "__main__":
    main_wrapper(test)
