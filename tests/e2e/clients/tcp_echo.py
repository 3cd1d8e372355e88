#!/usr/bin/env python3
"""TCP echo client: tcp_echo.py HOST PORT SIZE [TIMEOUT]. Sends SIZE random bytes while a
thread reads the echo; then half-closes and expects the server's FIN (RFC 862: the server closes
after our FIN and its last byte). Prints one JSON line; exit 0 only if the echo is byte-exact."""
import hashlib, json, os, socket, sys, threading, time

host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 30
data = os.urandom(size)
t0 = time.monotonic()
s = socket.create_connection((host, port), timeout=timeout)
got = bytearray()
err = []


def reader():
    try:
        while len(got) < size:
            b = s.recv(1 << 16)
            if not b:
                break
            got.extend(b)
    except OSError as e:
        err.append(repr(e))


t = threading.Thread(target=reader)
t.start()
s.sendall(data)
t.join(timeout)
# The exchange ends with the server's FIN; checking it comes after the clock stops, since a
# byte-wise scan of 16 MB in Python takes seconds (it once made every 16 MB echo look like
# 4 MB/s). Only a mismatch is scanned.
got_all = len(got) == size
fin = None
if got_all:
    s.shutdown(socket.SHUT_WR)
    try:
        s.settimeout(5)
        fin = s.recv(1) == b""
    except OSError as e:
        err.append("waiting for FIN: " + repr(e))
seconds = time.monotonic() - t0
s.close()
ok = got_all and bytes(got) == data
first_diff = None if ok else next((i for i, (a, b) in enumerate(zip(got, data)) if a != b), None)
res = {"ok": ok and fin is True, "sent": size, "received": len(got), "fin": fin,
       "first_diff": first_diff, "seconds": round(seconds, 3), "errors": err,
       "sha_sent": hashlib.sha256(data).hexdigest(), "sha_got": hashlib.sha256(got).hexdigest()}
print(json.dumps(res))
sys.exit(0 if res["ok"] else 1)
