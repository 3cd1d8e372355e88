#!/usr/bin/env python3
"""E2E, issue 9 part 7: one gratuitous ARP must not take the cluster IP.
2 members (multicast mode), 2 clients: client1 talks to the cluster, client2 spoofs ONE
gratuitous ARP "cluster IP is-at <client2's MAC>". The master must answer at once with its own
gratuitous ARP: client1's neighbour entry for the cluster IP (`ip -n <ns> neigh show`) is back
on the cluster MAC within 100 ms, and a capture in client1 shows the answer right after the
spoof. About 10 s."""
import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import ClusterLab, log  # noqa: E402

BOUND_MS = 100

# Runs in the attacker's namespace: one gratuitous ARP request (sender = target = cluster IP,
# sender MAC = our own), raw on eth0; prints the monotonic time it left.
_SPOOF = r'''
import socket, struct, sys, time
ip, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
a = socket.inet_aton(ip)
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, a, b"\0" * 6, a)
frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
t = time.monotonic()
s.send(frame)
print(t)
'''


def neigh(cl: ClusterLab, client: str) -> str | None:
    """The MAC client's kernel holds for the cluster IP, or None."""
    out = subprocess.run(["ip", "-n", cl.netns(client), "neigh", "show", cl.cluster_ip],
                         capture_output=True, text=True, timeout=5).stdout
    m = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return m.group(1) if m else None


def main() -> int:
    with ClusterLab(f"carp{os.getpid() % 10000}", members=2, clients=2) as cl:
        try:
            cl.start_all()
            master = cl.wait_master(10)
            assert master, "no master elected"
            sent, got = cl.ping("client1", cl.cluster_ip, count=3)
            assert got == sent, f"client1 cannot reach the cluster ({got}/{sent})"
            cluster_mac = neigh(cl, "client1")
            attacker_mac = cl.mac("client2")
            assert cluster_mac and cluster_mac != attacker_mac, cluster_mac
            log(f"master {master}; client1 holds {cl.cluster_ip} at {cluster_mac}")
            cap = cl.capture("client1", "arp")
            # Poll client1's neighbour entry back to back from before the spoof: samples of
            # (poll started, poll ended, MAC).
            samples, stop = [], threading.Event()

            def poll():
                while not stop.is_set():
                    t0 = time.monotonic()
                    mac = neigh(cl, "client1")
                    samples.append((t0, time.monotonic(), mac))
            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            time.sleep(0.1)
            r = cl.run("client2", ["python3", "-c", _SPOOF, cl.cluster_ip, attacker_mac])
            t_spoof = float(r.stdout.strip())
            time.sleep(0.5)
            stop.set()
            poller.join(5)
            after = [s for s in samples if s[0] >= t_spoof]
            seen_attacker = [s for s in after if s[2] == attacker_mac]
            # Restored: the first poll that started after the spoof (and after any poll that
            # still saw the attacker) and read the cluster MAC; its end bounds the time.
            last_bad = max((s[1] for s in seen_attacker), default=t_spoof)
            good = [s for s in after if s[0] >= last_bad and s[2] == cluster_mac]
            ok = bool(good) and all(s[2] == cluster_mac for s in after if s[0] >= good[0][0])
            restored = {"t": good[0][1]} if good else {}
            periods = [b - a for a, b, _ in samples]
            lines = cap.stop()
            # The spoof and our answer, as client1 received them (tcpdump -e -nn lines).
            spoof_at = answer_at = None
            for ln in lines:
                t = ln.split()[0]
                secs = sum(float(x) * m for x, m in zip(t.split(":"), (3600, 60, 1)))
                if f"Request who-has {cl.cluster_ip} tell {cl.cluster_ip}" in ln or \
                        f"Announcement {cl.cluster_ip}" in ln or "Gratuitous" in ln \
                        or f"who-has {cl.cluster_ip} (" in ln:
                    if attacker_mac in ln and spoof_at is None:
                        spoof_at = secs
                    elif attacker_mac not in ln and spoof_at is not None and answer_at is None:
                        answer_at = secs
            print("\n".join(lines[-10:]))
            assert ok, "client1's neighbour entry never came back to the cluster MAC"
            ms = (restored["t"] - t_spoof) * 1000
            log(f"restored within {ms:.1f} (`ip -n NS neigh show` polled back to back, "
                f"{1000 * sum(periods) / len(periods):.1f} ms per poll; polls that saw the "
                f"attacker's MAC: {len(seen_attacker)})")
            if spoof_at is not None and answer_at is not None:
                log(f"gratuitous ARP answer after {(answer_at - spoof_at) * 1000:.2f} "
                    "(client1's capture)")
            assert spoof_at is not None, "the spoofed ARP never reached client1"
            assert answer_at is not None, "no gratuitous ARP for the cluster IP after the spoof"
            v = cl.status(master)
            c = v["counters"]
            log(f"master arp_conflicts={c.get('arp_conflicts')} "
                f"arp_defences={c.get('arp_defences')}")
            assert c.get("arp_conflicts", 0) >= 1 and c.get("arp_defences", 0) >= 1, c
            assert ms <= BOUND_MS, f"restored after {ms:.0f} ms (bound {BOUND_MS})"
            print(cl.ctl_table())
            print(f"figure: arp_restore = {ms:.1f} ms")
            print(f"figure: arp_answer_after_spoof = {(answer_at - spoof_at) * 1000:.2f} ms")
            return 0
        except BaseException:
            cl.dump_logs()
            raise


if __name__ == "__main__":
    sys.exit(main())
