#!/usr/bin/env python3
"""TCP edge cases against an HTTP server, one per run:

  tcp_edge.py zero_window HOST PORT PATH SIZE SHA256 STALL
      SO_RCVBUF 4 KiB before connect, GET PATH, read 16 KiB, then stop reading for STALL seconds
      (the kernel advertises a zero window; the server must probe), then read to EOF. Prints
      the wall-clock times of the stall so the test can find the probes in a capture.
  tcp_edge.py rst_mid HOST PORT PATH READ
      GET PATH, read READ bytes of the response, then close with SO_LINGER 0 (RST).
  tcp_edge.py half_close HOST PORT PATH SIZE SHA256
      send the GET, shutdown(SHUT_WR) (FIN right after the request), read the whole response.
  tcp_edge.py close_before HOST PORT PATH
      send the GET and close at once, before any of the response arrives (FIN; the kernel
      answers the response data with RST).
  tcp_edge.py idle_close HOST PORT      connect, close without sending anything (FIN).
  tcp_edge.py partial_close HOST PORT   send half a request line, then FIN; read to EOF.
  tcp_edge.py reuse_port HOST PORT PATH SIZE SHA256
      GET PATH with "Connection: close" twice from the same local port, the second 0.1 s after
      the first ended: the server closed first, so its side of the 4-tuple is in TIME-WAIT, and
      the kernel's second SYN (a higher ISN, a newer timestamp) must open a new connection at
      once (RFC 6191) rather than draw an ACK of the old one and wait for a SYN retransmission.
      Prints each connect()'s time; ok when both responses are right and the second connect
      took under 0.5 s.

Prints one JSON line; exit 0 when the client saw what it must (see "ok")."""
import hashlib, json, socket, struct, sys, time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
args = sys.argv[4:]
TIMEOUT = 20  # seconds for a 1 MB response once the client reads (a healthy one takes < 1 s)


def request(path, close=True):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


IDLE = 5  # seconds without a byte: the transfer stalled


def read_to_eof(s, deadline):
    buf = bytearray()
    while True:
        s.settimeout(max(0.1, min(IDLE, deadline - time.monotonic())))
        b = s.recv(1 << 16)
        if not b:
            return bytes(buf)
        buf += b


def check_response(data, size, sha):
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    ok = status.startswith("HTTP/1.1 200") and len(body) == size and \
        hashlib.sha256(body).hexdigest() == sha
    return ok, {"status": status, "body_bytes": len(body),
                "sha_ok": hashlib.sha256(body).hexdigest() == sha}


res = {"mode": mode}
t0 = time.monotonic()
try:
    if mode == "zero_window":
        path, size, sha, stall = args[0], int(args[1]), args[2], float(args[3])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect((host, port))
        s.sendall(request(path))
        first = bytearray()
        while len(first) < 16384:
            b = s.recv(16384 - len(first))
            if not b:
                break
            first += b
        res["stall_start"] = time.time()
        time.sleep(stall)
        res["stall_end"] = time.time()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        data = bytes(first) + read_to_eof(s, time.monotonic() + TIMEOUT)
        s.close()
        res["ok"], more = check_response(data, size, sha)
        res.update(more)
    elif mode == "rst_mid":
        path, want = args[0], int(args[1])
        s = socket.create_connection((host, port), timeout=IDLE)
        s.sendall(request(path))
        got = 0
        while got < want:
            b = s.recv(min(65536, want - got))
            if not b:
                break
            got += len(b)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        res.update(ok=got >= want, read=got)
    elif mode == "half_close":
        path, size, sha = args[0], int(args[1]), args[2]
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request(path, close=False))
        s.shutdown(socket.SHUT_WR)
        data = read_to_eof(s, time.monotonic() + TIMEOUT)
        s.close()
        res["ok"], more = check_response(data, size, sha)
        res.update(more)
    elif mode == "close_before":
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request(args[0], close=False))
        s.close()
        res["ok"] = True
    elif mode == "idle_close":
        s = socket.create_connection((host, port), timeout=10)
        s.close()
        res["ok"] = True
    elif mode == "partial_close":
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"GET /sm")
        s.shutdown(socket.SHUT_WR)
        data = read_to_eof(s, time.monotonic() + 10)
        s.close()
        res.update(ok=True, reply=data[:60].decode(errors="replace"))
    elif mode == "reuse_port":
        path, size, sha = args[0], int(args[1]), args[2]
        lport, times, oks = 0, [], []
        for i in range(2):
            if i > 0:
                time.sleep(0.1)  # our side's LAST-ACK is over; the server's TIME-WAIT is not
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", lport))
            lport = s.getsockname()[1]
            s.settimeout(10)
            t = time.monotonic()
            s.connect((host, port))
            times.append(round(time.monotonic() - t, 3))
            s.sendall(request(path))
            data = read_to_eof(s, time.monotonic() + TIMEOUT)
            s.close()
            ok, more = check_response(data, size, sha)
            oks.append(ok)
        res.update(ok=all(oks) and times[1] < 0.5, port=lport, connect_s=times, responses_ok=oks)
    else:
        res.update(ok=False, error=f"unknown mode {mode}")
except OSError as e:
    res.update(ok=False, error=f"{type(e).__name__}: {e}",
               stalled=isinstance(e, TimeoutError))
res["seconds"] = round(time.monotonic() - t0, 3)
print(json.dumps(res))
sys.exit(0 if res.get("ok") else 1)
