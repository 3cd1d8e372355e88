#!/usr/bin/env python3
"""Many concurrent HTTP connections: http_many.py HOST PORT PATH N SHA256 [TIMEOUT].

Phase 1 opens N TCP connections at once (asyncio) and waits until every one is established, so
all N are open at the same time; phase 2 sends one `GET PATH` (Connection: close) on each and
reads each response to EOF; every one must be 200 with a body whose sha256 is SHA256.
Prints one JSON line; exit 0 only if all N succeeded."""
import asyncio, collections, hashlib, json, resource, sys, time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n, want = int(sys.argv[4]), sys.argv[5]
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 60
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
errors = collections.Counter()


async def connect():
    try:
        return await asyncio.open_connection(host, port)
    except Exception as e:  # noqa: BLE001
        errors[f"connect: {type(e).__name__}: {e}"] += 1
        return None


async def fetch(conn):
    reader, writer = conn
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()  # to EOF
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if not status.startswith("HTTP/1.1 200"):
            errors[f"status: {status!r}"] += 1
            return False
        if hashlib.sha256(body).hexdigest() != want:
            errors[f"body: {len(body)} bytes, sha256 mismatch"] += 1
            return False
        return True
    except Exception as e:  # noqa: BLE001
        errors[f"fetch: {type(e).__name__}: {e}"] += 1
        return False
    finally:
        writer.close()


async def main():
    t0 = time.monotonic()
    conns = await asyncio.wait_for(asyncio.gather(*(connect() for _ in range(n))), timeout)
    t1 = time.monotonic()
    live = [c for c in conns if c]
    oks = await asyncio.wait_for(asyncio.gather(*(fetch(c) for c in live)), timeout)
    t2 = time.monotonic()
    return {"ok": sum(oks) == n, "n": n, "connected": len(live), "succeeded": sum(oks),
            "connect_seconds": round(t1 - t0, 3), "fetch_seconds": round(t2 - t1, 3),
            "errors": dict(errors.most_common(10))}

try:
    res = asyncio.run(main())
except asyncio.TimeoutError:
    res = {"ok": False, "n": n, "error": f"timed out after {timeout} s", "errors": dict(errors)}
print(json.dumps(res))
sys.exit(0 if res["ok"] else 1)
