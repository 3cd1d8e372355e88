"""Shared helpers for the cluster end-to-end tests (tests/e2e/cluster_*_test.py) and the demo:
a phalanx-lab lab running phalanxd in cluster mode on every member, and phalanxctl to read
status. Standard library only.

    with ClusterLab("t1", members=3, clients=1, mode="multicast") as cl:
        cl.start_all()
        master = cl.wait_master()
        ...
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
ROOT = os.environ.get("PHALANX_ROOT") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PHALANX_BUILD") or os.path.join(ROOT, "build")
sys.path.insert(0, os.path.join(ROOT, "tools/phalanx-lab"))
from lab import Lab  # noqa: E402

PHALANXD = os.path.join(BUILD, "tools/phalanxd")
PHALANXCTL = os.path.join(BUILD, "tools/phalanxctl")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d}] {msg}",
          flush=True)


class ClusterLab(Lab):
    """A Lab whose members run phalanxd in cluster mode. Files served by http are in
    self.site (a directory in the lab's scratch dir)."""

    def __init__(self, name: str, members: int = 3, clients: int = 1, mode: str = "multicast",
                 failure_interval_ms: int = 200, rebalance_period_ms: int = 2000,
                 extra: str = "", **kw):
        super().__init__(name, members=members, clients=clients, **kw)
        self.mode = mode
        self.failure_interval_ms = failure_interval_ms
        self.rebalance_period_ms = rebalance_period_ms
        self.extra = extra
        self.daemons: dict = {}
        self.site = None

    def __enter__(self):
        super().__enter__()
        self.site = self.path("site")
        os.makedirs(self.site, exist_ok=True)
        return self

    def socket(self, member: str) -> str:
        return self.path(f"{member}.sock")

    def config(self, member: str) -> str:
        cfg = self.path(f"{member}.toml")
        with open(cfg, "w") as f:
            f.write(f"""[member]
interface = "eth0"
address = "{self.ip(member)}"
prefix = {self.state['nodes'][member]['prefixlen']}

[apps.http]
enabled = true
port = 80
root = "{self.site}"

[apps.echo]
enabled = true
ports = [7]

[log]
level = "info"

[cluster]
name = "{self.name}"
ip = "{self.cluster_ip}"
mode = "{self.mode}"
status_socket = "{self.socket(member)}"
{self.extra}
[cluster.timings]
failure_interval_ms = {self.failure_interval_ms}
rebalance_period_ms = {self.rebalance_period_ms}
""")
        return cfg

    def start(self, member: str, exe: str = PHALANXD):
        """Start phalanxd (BUILD's, or `exe`) in member; returns its lab Process."""
        p = self.spawn(member, [exe, "--config", self.config(member)],
                       log=self.path(f"{member}-phalanxd-{len(self.procs)}.log"))
        self.daemons[member] = p
        return p

    def start_all(self, stagger: float = 0.0) -> None:
        for m in self.members:
            self.start(m)
            if stagger:
                time.sleep(stagger)

    def kill(self, member: str, sig=signal.SIGKILL) -> float:
        """Signal the member's phalanxd; returns the monotonic time it was sent."""
        p = self.daemons.pop(member)
        t = time.monotonic()
        os.killpg(p.pid, sig)
        p.popen.wait(5)
        return t

    def status(self, member: str) -> dict | None:
        """One member's own status document, or None when it does not answer."""
        r = subprocess.run([PHALANXCTL, "status", "--json", "--socket", self.socket(member)],
                           capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        views = json.loads(r.stdout)["views"]
        return views[0] if views else None

    def cluster_status(self, members=None) -> dict:
        """The merged phalanxctl view over the given (default: running) members."""
        members = members or list(self.daemons)
        args = [PHALANXCTL, "status", "--json"]
        for m in members:
            args += ["--socket", self.socket(m)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=5)
        return json.loads(r.stdout) if r.stdout else {}

    def ctl_table(self, members=None) -> str:
        members = members or list(self.daemons)
        args = [PHALANXCTL, "status"]
        for m in members:
            args += ["--socket", self.socket(m)]
        return subprocess.run(args, capture_output=True, text=True, timeout=5).stdout

    def views(self, members=None) -> dict:
        """member -> its own status document (members that answered)."""
        out = {}
        for v in self.cluster_status(members).get("views", []):
            out[v["member"]] = v
        return out

    def member_of(self, address: str) -> str:
        for m in self.members:
            if self.ip(m) == address:
                return m
        raise KeyError(address)

    def wait_master(self, timeout: float = 10, members=None) -> str | None:
        """Waits until every running member agrees on one master that lists all of them;
        returns that master's node name."""
        members = members or list(self.daemons)
        want = sorted(self.ip(m) for m in members)
        result = {}

        def agreed():
            views = self.views(members)
            if len(views) != len(members):
                return False
            masters = {v["master"] for v in views.values()}
            if len(masters) != 1 or None in masters:
                return False
            master = masters.pop()
            mv = views.get(master)
            if not mv or mv["role"] != "master":
                return False
            if sorted(e["address"] for e in mv["members"]) != want:
                return False
            if any(v["role"] not in ("master", "follower") for v in views.values()):
                return False
            result["master"] = self.member_of(master)
            return True
        return result["master"] if self.wait_for(agreed, timeout, interval=0.05) else None

    def make_file(self, name: str, size: int) -> str:
        data = os.urandom(size)
        with open(os.path.join(self.site, name), "wb") as f:
            f.write(data)
        return hashlib.sha256(data).hexdigest()

    def serving_member(self, views: dict, client_ip: str, client_port: int) -> str | None:
        """Which member serves a TCP flow, from the members' owned worksets (xor hash)."""
        ws = workset_xor(client_ip, client_port)
        for addr, v in views.items():
            if ws in v["owned"]:
                return self.member_of(addr)
        return None

    def dump_logs(self) -> None:
        for p in self.procs:
            out = p.output()
            if out:
                print(f"----- {p.node} ({p.log})\n{out[-4000:]}", file=sys.stderr)


def workset_xor(ip: str, port: int) -> int:
    """The xor-fold workset of a TCP/UDP flow from ip:port (filter/workset.hpp, HashKind::xor)."""
    a = [int(x) for x in ip.split(".")]
    v = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]
    k = v ^ port
    h = 0
    while k:
        h ^= k & 0x3FF
        k >>= 10
    return h


# Runs in a client namespace: fetch PATH from the cluster IP over one fresh connection per
# source port (many worksets), a few at a time; prints JSON {ok, failed: [[port, why]...]}.
_FETCH = r'''
import hashlib, json, socket, sys, threading
ip, path, sha, ports, conc, timeout = sys.argv[1], sys.argv[2], sys.argv[3], \
    [int(p) for p in sys.argv[4].split(",")], int(sys.argv[5]), float(sys.argv[6])
ok, failed, lock = [], [], threading.Lock()
def one(port):
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(timeout)
        s.bind(("", port))
        s.connect((ip, 80))
        s.sendall(f"GET /{path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40].decode(errors="replace"))
        if hashlib.sha256(body).hexdigest() != sha:
            raise RuntimeError(f"sha256 mismatch ({len(body)} bytes)")
        with lock:
            ok.append(port)
    except Exception as e:
        with lock:
            failed.append([port, repr(e)])
todo = list(ports)
def worker():
    while True:
        with lock:
            if not todo:
                return
            p = todo.pop()
        one(p)
ts = [threading.Thread(target=worker) for _ in range(conc)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps({"ok": sorted(ok), "failed": failed}))
'''


# Runs in a client: one download per port, all at once, each paced by the client to RATE bytes
# per second (a slow reader); writes JSON [{port, ok, err, bytes, t_end}] to OUT. Arguments: ip,
# path, sha256, ports (comma-separated), rate, out.
SLOW_FETCH = r'''
import hashlib, json, socket, sys, threading, time
ip, path, sha, ports, rate, out = sys.argv[1], sys.argv[2], sys.argv[3], \
    [int(p) for p in sys.argv[4].split(",")], int(sys.argv[5]), sys.argv[6]
res, lock = [], threading.Lock()
def one(port):
    r = {"port": port, "ok": False, "err": None, "bytes": 0}
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.settimeout(8)
        s.bind(("", port))
        s.connect((ip, 80))
        s.sendall(f"GET /{path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n".encode())
        data, t0 = bytearray(), time.monotonic()
        r["max_wait"] = 0.0  # the longest a recv() waited for data: the stall the client saw
        while True:
            w0 = time.monotonic()
            b = s.recv(16384)
            r["max_wait"] = max(r["max_wait"], time.monotonic() - w0)
            if not b:
                break
            data += b
            r["bytes"] = len(data)
            ahead = len(data) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        s.close()
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40].decode(errors="replace"))
        if hashlib.sha256(body).hexdigest() != sha:
            raise RuntimeError(f"sha256 mismatch ({len(body)} bytes)")
        r["ok"] = True
    except Exception as e:
        r["err"] = repr(e)
    r["t_end"] = time.monotonic()
    with lock:
        res.append(r)
ts = [threading.Thread(target=one, args=(p,)) for p in ports]
[t.start() for t in ts]
[t.join() for t in ts]
with open(out, "w") as f:
    json.dump(res, f)
'''


def fetch_many(cl: ClusterLab, client: str, path: str, sha: str, ports, concurrency: int = 8,
               timeout: float = 5.0) -> dict:
    ports = list(ports)
    r = cl.run(client, ["python3", "-c", _FETCH, cl.cluster_ip, path, sha,
                        ",".join(map(str, ports)), str(concurrency), str(timeout)],
               check=False, timeout=60 + len(ports) * timeout / max(concurrency, 1))
    if r.returncode != 0:
        raise RuntimeError(f"fetch in {client} failed: {r.stderr}")
    return json.loads(r.stdout)


def kernel_noise_capture(cl: ClusterLab, member: str):
    """A capture of what the member's KERNEL sends that it must not: RST or ICMP (our stack
    sends from the cluster IP; the kernel would send from the member address)."""
    return cl.capture(member, f"src host {cl.ip(member)} and "
                      "(icmp or (tcp and tcp[tcpflags] & tcp-rst != 0))", direction="out")
