"""Helpers for bench/failover_bench.py: a raw-socket TCP SYN prober that lives in a lab
namespace, and in-process namespace tricks (sockets created in a node's network namespace,
an interface taken down with one ioctl). Standard library only; needs root.

The prober sends a hand-made SYN from a chosen source port every few milliseconds through a
raw IPv4 socket created in the client's namespace (the client kernel routes it and resolves
the neighbour, exactly as for its own connect()), and reads the answers on an AF_PACKET
socket on the client's eth0 with a kernel receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME)
and the Ethernet source MAC, which tells which machine answered. The client kernel answers
each SYN-ACK with a RST (it has no socket for it), so the server forgets the half-open
connection at once and every probe is a brand-new connection attempt.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import select
import socket
import struct
import time

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1


@contextlib.contextmanager
def in_netns(ns: str):
    """Run the body with the calling thread in network namespace `ns` (sockets created there
    stay in it after we switch back)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns})")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to our namespace")
    finally:
        os.close(fd)
        os.close(own)


class LinkSwitch:
    """Takes an interface of a namespace down (or up) with one SIOCSIFFLAGS ioctl: no
    process to start, so it happens within microseconds of a kill."""

    def __init__(self, ns: str, ifname: str = "eth0"):
        with in_netns(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ifname = ifname.encode()

    def set_up(self, up: bool) -> None:
        req = struct.pack("16sh14x", self.ifname, 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(self.sock.fileno(), SIOCGIFFLAGS, req))[1]
        flags = (flags | IFF_UP) if up else (flags & ~IFF_UP)
        fcntl.ioctl(self.sock.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", self.ifname, flags))

    def close(self) -> None:
        self.sock.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _bpf_tcp_from(ip: str) -> bytes:
    """cBPF: accept IPv4 TCP frames whose source address is `ip`, drop everything else."""
    k_ip = struct.unpack("!I", socket.inet_aton(ip))[0]
    prog = [(0x28, 0, 0, 12), (0x15, 0, 5, ETH_P_IP),   # ldh [12]; jeq IPv4
            (0x30, 0, 0, 23), (0x15, 0, 3, 6),          # ldb [23]; jeq TCP
            (0x20, 0, 0, 26), (0x15, 0, 1, k_ip),       # ld [26];  jeq src ip
            (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]      # accept; drop
    return b"".join(struct.pack("HBBI", *insn) for insn in prog)


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


class SynProber:
    """SYNs from client_ip:port to dst_ip:dst_port, SYN-ACKs seen on the client's eth0."""

    def __init__(self, ns: str, client_ip: str, dst_ip: str, dst_port: int,
                 ifname: str = "eth0"):
        self.client_ip, self.dst_ip, self.dst_port = client_ip, dst_ip, dst_port
        with in_netns(ns):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
            self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            self._prog = ctypes.create_string_buffer(_bpf_tcp_from(dst_ip))
            fprog = struct.pack("HL", len(self._prog.raw) // 8, ctypes.addressof(self._prog))
            self.rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            self.rx.bind((ifname, ETH_P_IP))
        self.rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.rx.setblocking(False)
        self.sent: dict[int, float] = {}   # seq -> time.time() when sent

    def close(self) -> None:
        self.tx.close()
        self.rx.close()

    def send_syn(self, sport: int) -> float:
        seq = random.getrandbits(32)
        opts = struct.pack("!BBH", 2, 4, 1460)   # MSS
        hdr = struct.pack("!HHIIBBHHH", sport, self.dst_port, seq, 0, (5 + 1) << 4, 0x02,
                          64240, 0, 0) + opts
        pseudo = socket.inet_aton(self.client_ip) + socket.inet_aton(self.dst_ip) + \
            struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr))
        csum = _checksum(pseudo + hdr)
        seg = hdr[:16] + struct.pack("!H", csum) + hdr[18:]
        t = time.time()
        self.tx.sendto(seg, (self.dst_ip, 0))
        self.sent[seq] = t
        return t

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                self.rx.recv(65536)

    def _read(self) -> list[tuple[float, str, int, float | None]]:
        """SYN-ACKs waiting on the socket: (kernel rx time, source MAC, our port, send time of
        the SYN it answers or None)."""
        out = []
        while True:
            try:
                data, anc, _flags, addr = self.rx.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return out
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 14 + 20 + 20:
                continue
            ts = None
            for level, typ, val in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(val) >= 16:
                    sec, nsec = struct.unpack("qq", val[:16])
                    ts = sec + nsec / 1e9
            ip = data[14:]
            ihl = (ip[0] & 0xF) * 4
            tcp = ip[ihl:]
            if len(tcp) < 20:
                continue
            sport, dport, _seq, ack = struct.unpack("!HHII", tcp[:12])
            if sport != self.dst_port or tcp[13] & 0x12 != 0x12:
                continue
            out.append((ts or time.time(), mac_str(data[6:12]), dport,
                        self.sent.get((ack - 1) & 0xFFFFFFFF)))

    def touch(self, ports: list[int], wait: float = 0.3, pace: float = 0.002) -> dict[int, str]:
        """One SYN per port (paced); returns port -> MAC of whoever answered within `wait`."""
        self.drain()
        for p in ports:
            self.send_syn(p)
            time.sleep(pace)
        got: dict[int, str] = {}
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(got) < len(ports):
            select.select([self.rx], [], [], 0.01)
            for _ts, mac, port, _sent in self._read():
                got.setdefault(port, mac)
        return got

    def failover(self, sport: int, victim_mac: str, kill, interval: float = 0.005,
                 pre: float = 0.1, timeout: float = 10.0) -> dict:
        """Probe sport every `interval` s; after `pre` s (during which victim_mac must have
        answered) call kill() -> realtime of the crash; then keep probing until a SYN-ACK from
        another MAC arrives or `timeout` s pass. Returns {ok, ms, mac, syn_ms, pre_answers,
        probes, why, crash}."""
        self.drain()
        self.sent.clear()
        res = {"ok": False, "ms": None, "mac": None, "syn_ms": None, "pre_answers": 0,
               "probes": 0, "why": "", "crash": None}
        start = time.monotonic()
        t_kill = None
        next_send = start
        max_probes = int((pre + timeout) / interval) + 10  # hard bound on the loop
        while res["probes"] < max_probes:
            now = time.monotonic()
            if t_kill is None and now - start >= pre:
                if res["pre_answers"] == 0:
                    res["why"] = f"no SYN-ACK from the victim ({victim_mac}) before the kill"
                    return res
                self._read()   # anything still queued was answered before the crash
                t_kill = res["crash"] = kill()
                kill_mono = time.monotonic()
            if t_kill is not None and now - kill_mono > timeout:
                res["why"] = f"no SYN-ACK within {timeout:.1f} s of the crash"
                return res
            if now >= next_send:
                self.send_syn(sport)
                res["probes"] += 1
                next_send += interval
                if next_send < now:   # we were late (scheduling): do not burst to catch up
                    next_send = now + interval
            select.select([self.rx], [], [], max(0.0, next_send - time.monotonic()))
            for ts, mac, port, sent in self._read():
                if port != sport:
                    continue
                if t_kill is None:
                    if mac == victim_mac:
                        res["pre_answers"] += 1
                    else:
                        res["why"] = f"before the kill {mac} answered, not the victim"
                        return res
                elif mac != victim_mac and ts > t_kill:
                    res.update(ok=True, ms=(ts - t_kill) * 1000, mac=mac,
                               syn_ms=None if sent is None else (sent - t_kill) * 1000)
                    return res
        res["why"] = "probe budget exhausted"
        return res


def tcp_check(ns: str, dst_ip: str, dst_port: int, sport: int | None = None,
              payload: bytes | None = None, timeout: float = 2.0) -> str | None:
    """A real kernel connect() from namespace ns (optionally from sport); with payload, sends
    it and expects it echoed. Returns None when fine, else the reason."""
    with in_netns(ns):
        s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(timeout)
        if sport:
            s.bind(("", sport))
        s.connect((dst_ip, dst_port))
        if payload:
            s.sendall(payload)
            got = b""
            deadline = time.monotonic() + timeout
            while len(got) < len(payload) and time.monotonic() < deadline:
                b = s.recv(4096)
                if not b:
                    break
                got += b
            if got != payload:
                return f"echo returned {got!r}"
        return None
    except OSError as e:
        return repr(e)
    finally:
        s.close()
