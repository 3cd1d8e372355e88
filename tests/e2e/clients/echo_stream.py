#!/usr/bin/env python3
"""Bidirectional echo streams: echo_stream.py HOST PORTS RATE SECONDS SEED OUT. One connection
to HOST:7 per source port in PORTS (comma-separated), all at once. Each sends a pseudo-random
stream seeded by SEED and its port, RATE bytes per second for SECONDS, while a thread reads the
echo and checks it byte for byte as it arrives; then half-closes and expects the server's FIN.
Writes JSON [{port, ok, err, sent, received, max_wait}] to OUT (max_wait: the longest a recv()
waited for data once the stream had started, the stall the client saw)."""
import json
import random
import socket
import sys
import threading
import time

host, ports, rate, seconds, seed, out = (sys.argv[1], [int(p) for p in sys.argv[2].split(",")],
                                         int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
                                         sys.argv[6])
CHUNK = 4096
results, lock = [], threading.Lock()


def one(port: int) -> None:
    total = int(rate * seconds)
    data = random.Random(seed * 65536 + port).randbytes(total)
    r = {"port": port, "ok": False, "err": None, "sent": 0, "received": 0, "max_wait": 0.0}
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(10)
        s.bind(("", port))
        s.connect((host, 7))

        def reader() -> None:
            got = 0
            try:
                while got < total:
                    w0 = time.monotonic()
                    b = s.recv(65536)
                    r["max_wait"] = max(r["max_wait"], time.monotonic() - w0)
                    if not b:
                        raise RuntimeError(f"FIN after {got} of {total} bytes")
                    if b != data[got:got + len(b)]:
                        i = next(i for i, (x, y) in enumerate(zip(b, data[got:])) if x != y)
                        raise RuntimeError(f"byte {got + i} differs")
                    got += len(b)
                    r["received"] = got
                if s.recv(1) != b"":
                    raise RuntimeError("bytes after the end of the stream")
            except Exception as e:  # noqa: BLE001 (reported in the JSON)
                r["err"] = r["err"] or repr(e)

        t = threading.Thread(target=reader)
        t.start()
        t0 = time.monotonic()
        while r["sent"] < total and r["err"] is None:
            n = min(CHUNK, total - r["sent"])
            s.sendall(data[r["sent"]:r["sent"] + n])
            r["sent"] += n
            ahead = r["sent"] / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        s.shutdown(socket.SHUT_WR)
        t.join(seconds + 20)
        if t.is_alive():
            r["err"] = r["err"] or f"echo stalled at {r['received']} of {total} bytes"
        s.close()
        r["ok"] = r["err"] is None and r["received"] == total
    except Exception as e:  # noqa: BLE001
        r["err"] = r["err"] or repr(e)
    with lock:
        results.append(r)


threads = [threading.Thread(target=one, args=(p,)) for p in ports]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out, "w") as f:
    json.dump(results, f)
