#!/usr/bin/env python3
"""UDP echo client: udp_echo.py HOST PORT [COUNT]. Sends COUNT datagrams of sizes from 1 to 1472
bytes (plus one of 4000 bytes, fragmented) one at a time and expects each back byte-exact within
1 s (retried up to 3 times: UDP may be lost). Prints one JSON line; exit 0 if all came back."""
import json, os, socket, sys

host, port = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 50
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.connect((host, port))
sizes = [1 + (i * 37) % 1472 for i in range(count)] + [1472, 4000]
ok, bad, retries = 0, [], 0
for n in sizes:
    payload = os.urandom(n)
    for attempt in range(3):
        s.send(payload)
        try:
            while True:
                b = s.recv(65535)
                if b == payload:
                    break
        except socket.timeout:
            retries += 1
            continue
        except OSError as e:
            bad.append(f"{n}: {e!r}")
            break
        ok += 1
        break
    else:
        bad.append(f"{n}: no echo after 3 tries")
res = {"ok": not bad, "echoed": ok, "sent": len(sizes), "retries": retries, "bad": bad[:10]}
print(json.dumps(res))
sys.exit(0 if res["ok"] else 1)
