"""phalanx-lab: a Phalanx cluster lab in network namespaces on one bridge.

Used two ways:
  * the `phalanx-lab` command (tools/phalanx-lab/phalanx-lab calls main() below);
  * `from lab import Lab` in end-to-end tests:

        with Lab("e2e1", members=2, clients=1) as lab:
            lab.run("client1", ["ping", "-c1", lab.ip("member1")])

Topology (one lab, NAME):
  namespace plab-NAME-sw    the switch: bridge "br0", one port per node, nothing else
  namespace plab-NAME-m<i>  member i: "eth0", kernel address .(10+i), MAC derived from it
  namespace plab-NAME-c<j>  client j: "eth0", kernel address .(100+j)
Addresses come from one /24 inside 198.18.0.0/15. The cluster IP (.1) and each member's
"stack address" .(50+i) are reserved and configured in no kernel: Phalanx serves them
from userspace over AF_PACKET. Nothing is created in the host's root namespace.

Loss and partitions are nftables rules (bridge family, forward hook) in the *switch*
namespace, matched per bridge port. Rules inside a member's own namespace would not work
for Phalanx: an AF_PACKET (ETH_P_ALL) socket sees a frame before the netdev ingress hook
and the IP hooks, so the userspace stack would still receive what nftables "dropped".

State (the undo log and the topology) lives in /run/phalanx-lab/NAME.json; every creation
step is written there before it is made, so `down` can undo a half-built lab.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

STATE_DIR = "/run/phalanx-lab"
NS_PREFIX = "plab-"
NFT_TABLE = "phalanx_lab"
LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
NODE_IF = "eth0"
BRIDGE = "br0"
CLUSTER_HOST = 1  # cluster IP = .1
MEMBER_BASE = 10  # member i -> .(10+i)
STACK_BASE = 50  # member i's userspace-only address -> .(50+i)
CLIENT_BASE = 100  # client j -> .(100+j)
MAX_MEMBERS = 39
MAX_CLIENTS = 149
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


class LabError(Exception):
    """A failure the user can act on. exit_code 2: environment/usage, 1: operation failed."""

    def __init__(self, msg: str, exit_code: int = 1):
        super().__init__(msg)
        self.exit_code = exit_code


# ----------------------------------------------------------------------------- helpers


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("phalanx-lab must run as root (it creates network namespaces)", 2)


def _need_tool(tool: str) -> str:
    path = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None)
    if not path:
        package = {"nft": "nftables", "ip": "iproute2"}.get(tool, tool)
        raise LabError(f"'{tool}' not found in PATH; install it (Debian: apt-get install "
                       f"{package})", 2)
    return path


def _sh(args: list[str], check: bool = True, inp: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    p = subprocess.run(args, input=inp, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise LabError(f"command failed ({p.returncode}): {' '.join(args)}\n{p.stderr.strip()}")
    return p


def _netns_list() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def _mac_for(ip: ipaddress.IPv4Address, multicast: bool = False) -> str:
    """02:50 + the four address bytes: the MAC tells you the address in every capture."""
    first = 0x03 if multicast else 0x02
    return ":".join(f"{b:02x}" for b in bytes([first, 0x50]) + ip.packed)


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
SIOCETHTOOL = 0x8946
ETHTOOL_SRXCSUM, ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGRO = 0x15, 0x17, 0x1F, 0x2C
ETHTOOL_GTXCSUM = 0x16


def in_netns(ns: str, fn, *args) -> None:
    """Run fn(*args) in a forked child that has joined namespace `ns` (for sysctls and
    ioctls without spawning programs). Raises LabError with the child's message."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(rfd)
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns({ns})")
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - report everything to the parent
            os.write(wfd, f"{type(e).__name__}: {e}".encode()[:4000])
            code = 1
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        msg = r.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise LabError(f"in namespace {ns}: {msg or 'child failed'}")


def _sysctls(values: dict[str, str]) -> None:
    """Write /proc/sys/net/... in the current (joined) namespace; missing keys are skipped
    (e.g. IPv6 compiled out)."""
    for key, val in values.items():
        path = "/proc/sys/" + key.replace(".", "/")
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write(val)


def _ethtool_value(sock: socket.socket, ifname: str, cmd: int, data: int = 0) -> int:
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, data), 8)
    ifr = struct.pack("16sP", ifname.encode(), ctypes.addressof(buf)) + b"\0" * 16
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack("II", buf.raw)[1]


def _offloads_on(ifnames: list[str]) -> None:
    """ethtool -K IF tx on tso on gro on: what a deployment on a physical or virtio NIC sees.
    Clients' kernel TCP then hands its veth segments of up to 64 KB (TSO), which reach the
    member whole with only the pseudo-header checksum (CHECKSUM_PARTIAL), and GRO merges
    what arrives in MTU-sized frames (on veth, asking for GRO turns on its NAPI path)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for ifname in ifnames:
            for cmd in (ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGRO):
                _ethtool_value(s, ifname, cmd, 1)
            if _ethtool_value(s, ifname, ETHTOOL_GTXCSUM) == 0:
                raise OSError(f"{ifname}: tx checksum offload still off")


def _offloads_off(ifnames: list[str]) -> None:
    """ethtool -K IF tx off tso off gro off (rx csum stays on: it changes nothing on veth)
    via SIOCETHTOOL, so the ethtool program is not needed. With tx checksum offload on, a
    kernel sending over veth hands the peer CHECKSUM_PARTIAL skbs (AF_PACKET readers see
    only the pseudo-header sum, TP_STATUS_CSUMNOTREADY) and TSO super-frames up to 64 KB."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for ifname in ifnames:
            for cmd in (ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGRO):
                try:
                    _ethtool_value(s, ifname, cmd, 0)
                except OSError as e:  # TSO/GRO may be fixed off; the tx checksum must go
                    if cmd == ETHTOOL_STXCSUM:
                        raise
                    del e
            if _ethtool_value(s, ifname, ETHTOOL_GTXCSUM) != 0:
                raise OSError(f"{ifname}: tx checksum offload still on")


# ----------------------------------------------------------------------------- state


def state_path(name: str) -> str:
    return os.path.join(STATE_DIR, f"{name}.json")


def _check_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise LabError(f"bad lab name {name!r}: 1-20 chars of a-z, 0-9, '-', starting "
                       "with a letter or digit", 2)


def load_state(name: str) -> dict | None:
    try:
        with open(state_path(name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise LabError(f"state file {state_path(name)} is corrupt ({e}); "
                       f"remove it and run 'phalanx-lab down --name {name}'")


def _save_state(st: dict) -> None:
    os.makedirs(STATE_DIR, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=STATE_DIR, prefix=f".{st['name']}.")
    with os.fdopen(fd, "w") as f:
        json.dump(st, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, state_path(st["name"]))


@contextlib.contextmanager
def _global_lock():
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(os.path.join(STATE_DIR, ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def all_lab_names() -> list[str]:
    names = set()
    if os.path.isdir(STATE_DIR):
        names |= {f[:-5] for f in os.listdir(STATE_DIR)
                  if f.endswith(".json") and not f.startswith(".")}
    for ns in _netns_list():
        m = re.match(rf"^{NS_PREFIX}(.+)-(sw|m\d+|c\d+)$", ns)
        if m:
            names.add(m.group(1))
    return sorted(names)


def _pick_prefix(name: str, requested: str | None) -> ipaddress.IPv4Network:
    used = set()
    for other in all_lab_names():
        st = load_state(other) if other != name else None
        if st and st.get("prefix"):
            used.add(st["prefix"])
    if requested:
        try:
            net = ipaddress.ip_network(requested, strict=True)
        except ValueError as e:
            raise LabError(f"bad --prefix {requested!r}: {e}", 2)
        if net.version != 4 or net.prefixlen != 24 or not net.subnet_of(LAB_RANGE):
            raise LabError(f"--prefix must be a /24 inside {LAB_RANGE} (got {requested})", 2)
        if str(net) in used:
            raise LabError(f"prefix {net} is already used by another lab", 2)
        return net
    subnets = list(LAB_RANGE.subnets(new_prefix=24))  # 512 of them
    start = zlib.crc32(name.encode()) % len(subnets)
    for k in range(len(subnets)):
        net = subnets[(start + k) % len(subnets)]
        if net.network_address.packed[2] == 0:  # keep 198.18.0.0/24 and 198.19.0.0/24 free
            continue
        if str(net) not in used:
            return net
    raise LabError("no free /24 left in 198.18.0.0/15", 2)


def _plan(name: str, members: int, clients: int, net: ipaddress.IPv4Network) -> dict:
    base = net.network_address
    ports = name[:8].rstrip("-")
    nodes = {}
    for role, count, host0 in (("member", members, MEMBER_BASE), ("client", clients, CLIENT_BASE)):
        for i in range(1, count + 1):
            ip = base + host0 + i
            node = {
                "role": role, "index": i, "netns": f"{NS_PREFIX}{name}-{role[0]}{i}",
                "ifname": NODE_IF, "ip": str(ip), "prefixlen": net.prefixlen,
                "mac": _mac_for(ip), "port": f"{ports}-{role[0]}{i}",
            }
            if role == "member":
                node["stack_ip"] = str(base + STACK_BASE + i)
            nodes[f"{role}{i}"] = node
    cluster_ip = base + CLUSTER_HOST
    return {
        "version": 1, "name": name, "status": "creating", "created": time.time(),
        "prefix": str(net), "cluster_ip": str(cluster_ip),
        "cluster_mac_unicast": _mac_for(cluster_ip),
        "cluster_mac_multicast": _mac_for(cluster_ip, multicast=True),
        "broadcast": str(net.broadcast_address),
        "switch": {"netns": f"{NS_PREFIX}{name}-sw", "bridge": BRIDGE},
        "members": [n for n in nodes if n.startswith("member")],
        "clients": [n for n in nodes if n.startswith("client")],
        "nodes": nodes, "steps": [], "loss": [], "partition": None,
    }


# ----------------------------------------------------------------------------- up / down

MEMBER_SYSCTLS = {
    # The cluster IP and stack addresses are in no kernel: with forwarding off, a frame for
    # them is dropped by ip_error() without an ICMP, TCP never sees it (no RST), and ARP
    # never answers for it. Set explicitly; the last one makes the kernel drop IP-unicast
    # frames sent to the (multicast) cluster MAC at once - AF_PACKET has already seen them.
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.drop_unicast_in_l2_multicast": "1",
    "net.ipv4.conf.default.drop_unicast_in_l2_multicast": "1",
}
COMMON_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
SWITCH_SYSCTLS = {
    # Bridged frames must not traverse the IP hooks of the switch namespace.
    "net.bridge.bridge-nf-call-iptables": "0",
    "net.bridge.bridge-nf-call-arptables": "0",
    "net.bridge.bridge-nf-call-ip6tables": "0",
}


OFFLOAD_CHOICES = ("off", "on")


def up(name: str, members: int, clients: int, prefix: str | None = None,
       replace: bool = False, keep_on_error: bool = False, offloads: str = "off") -> dict:
    _need_root()
    ip = _need_tool("ip")
    _check_name(name)
    if not 1 <= members <= MAX_MEMBERS:
        raise LabError(f"--members must be 1..{MAX_MEMBERS}", 2)
    if not 0 <= clients <= MAX_CLIENTS:
        raise LabError(f"--clients must be 0..{MAX_CLIENTS}", 2)
    if offloads not in OFFLOAD_CHOICES:
        raise LabError(f"--offloads must be one of {', '.join(OFFLOAD_CHOICES)}", 2)
    with _global_lock():
        leftovers = [ns for ns in _netns_list() if ns.startswith(f"{NS_PREFIX}{name}-")]
        if load_state(name) is not None or leftovers:
            if not replace:
                raise LabError(f"lab {name!r} already exists (state {state_path(name)}"
                               f"{', namespaces ' + ' '.join(leftovers) if leftovers else ''}); "
                               "use --replace, or 'phalanx-lab down --name " + name + "'", 2)
            _down_locked(name)
        st = _plan(name, members, clients, _pick_prefix(name, prefix))
        st["offloads"] = offloads
        _save_state(st)
    try:
        _build(st, ip)
    except BaseException:
        if not keep_on_error:
            with contextlib.suppress(Exception):
                down(name)
        raise
    return st


def _step(st: dict, **step) -> None:
    st["steps"].append(step)
    _save_state(st)


def _build(st: dict, ip: str) -> None:
    sw = st["switch"]["netns"]
    all_ns = [sw] + [n["netns"] for n in st["nodes"].values()]
    for ns in all_ns:
        _step(st, op="netns", netns=ns)
        _sh([ip, "netns", "add", ns])
        sysctls = dict(COMMON_SYSCTLS)
        if ns == sw:
            sysctls.update(SWITCH_SYSCTLS)
        elif "-m" in ns[len(NS_PREFIX) + len(st["name"]):]:
            sysctls.update(MEMBER_SYSCTLS)
        in_netns(ns, _sysctls, sysctls)
    batch = {ns: [] for ns in all_ns}
    batch[sw].append(f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0 "
                     "mcast_snooping 0 ageing_time 30000")
    _step(st, op="link", netns=sw, ifname=BRIDGE)
    for node in st["nodes"].values():
        _step(st, op="link", netns=sw, ifname=node["port"], peer_netns=node["netns"])
        _sh([ip, "-n", sw, "link", "add", node["port"], "type", "veth", "peer", "name",
             node["ifname"], "address", node["mac"], "netns", node["netns"]])
        batch[sw].append(f"link set {node['port']} master {BRIDGE} up")
        batch[node["netns"]] += [
            "link set lo up",
            f"addr add {node['ip']}/{node['prefixlen']} brd + dev {node['ifname']}",
            f"link set {node['ifname']} up",
        ]
    batch[sw].append(f"link set {BRIDGE} up")
    offloads = _offloads_on if st.get("offloads") == "on" else _offloads_off
    for node in st["nodes"].values():
        in_netns(node["netns"], offloads, [node["ifname"]])
    in_netns(sw, offloads, [n["port"] for n in st["nodes"].values()])
    for ns, cmds in batch.items():
        _sh([ip, "-n", ns, "-batch", "-"], inp="\n".join(cmds) + "\n")
    _wait_links_up(st, ip)
    st["status"] = "up"
    _save_state(st)


def _wait_links_up(st: dict, ip: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    for node in st["nodes"].values():
        while True:
            out = _sh([ip, "-n", node["netns"], "-o", "link", "show", node["ifname"]]).stdout
            if "LOWER_UP" in out:
                break
            if time.monotonic() > deadline:
                raise LabError(f"{node['netns']}/{node['ifname']} did not come up: {out}")
            time.sleep(0.02)


def _kill_netns_pids(ns: str, ip: str) -> None:
    def pids():
        p = _sh([ip, "netns", "pids", ns], check=False)
        return [int(x) for x in p.stdout.split() if x.isdigit() and int(x) != os.getpid()]
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        victims = pids()
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids() and time.monotonic() < deadline:
            time.sleep(0.05)


def _down_locked(name: str) -> list[str]:
    ip = _need_tool("ip")
    try:
        st = load_state(name)
    except LabError:  # corrupt state file: fall back to the namespace names
        st = None
    removed = []
    netns = set()
    steps = st.get("steps", []) if st else []
    if st:
        st["status"] = "removing"
        _save_state(st)
    for step in steps:
        if step.get("op") == "netns":
            netns.add(step["netns"])
    # Namespaces named like this lab but missing from the log (state file lost).
    netns |= {ns for ns in _netns_list() if ns.startswith(f"{NS_PREFIX}{name}-")}
    existing = set(_netns_list())
    for step in reversed(steps):  # links outside the lab's namespaces (none today)
        if step.get("op") == "link" and step["netns"] not in netns:
            args = [ip] + (["-n", step["netns"]] if step["netns"] else [])
            _sh(args + ["link", "del", step["ifname"]], check=False)
            removed.append(f"link {step['ifname']}")
    for ns in sorted(netns):
        if ns in existing:
            _kill_netns_pids(ns, ip)
            p = _sh([ip, "netns", "del", ns], check=False)
            if p.returncode != 0 and ns in _netns_list():
                raise LabError(f"could not delete namespace {ns}: {p.stderr.strip()}")
            removed.append(f"netns {ns}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(state_path(name))
    return removed


def down(name: str) -> list[str]:
    _need_root()
    _check_name(name)
    with _global_lock():
        return _down_locked(name)


def down_all() -> list[str]:
    _need_root()
    removed = []
    with _global_lock():
        for name in all_lab_names():
            removed += _down_locked(name)
    return removed


def require_lab(name: str) -> dict:
    _check_name(name)
    st = load_state(name)
    if st is None:
        raise LabError(f"no lab named {name!r} (no {state_path(name)})", 2)
    if st.get("status") != "up":
        raise LabError(f"lab {name!r} is {st.get('status')}, not up; "
                       f"run 'phalanx-lab down --name {name}'", 2)
    return st


def resolve_node(st: dict, node: str) -> tuple[str, dict | None]:
    """'member1' / 'm1' / 'client2' / 'c2' / 'switch' -> (node name, node dict)."""
    if node in ("switch", "sw"):
        return "switch", None
    m = re.match(r"^(member|client|m|c)(\d+)$", node)
    if m:
        full = ("member" if m.group(1)[0] == "m" else "client") + str(int(m.group(2)))
        if full in st["nodes"]:
            return full, st["nodes"][full]
    raise LabError(f"no node {node!r} in lab {st['name']} (nodes: "
                   f"{', '.join(list(st['nodes']) + ['switch'])})", 2)


def node_netns(st: dict, node: str) -> str:
    full, nd = resolve_node(st, node)
    return st["switch"]["netns"] if nd is None else nd["netns"]


# ----------------------------------------------------------------------------- nftables


def _nft_ruleset(st: dict) -> str:
    """The whole table, regenerated from the state and loaded atomically."""
    rules, chains = [], []
    port = {n: d["port"] for n, d in st["nodes"].items()}
    part = st.get("partition")
    if part:
        groups = part["groups"]
        for a in range(len(groups)):
            for b in range(len(groups)):
                if a == b or (part.get("oneway") and b < a):
                    continue
                src = ", ".join(f'"{port[n]}"' for n in groups[a])
                dst = ", ".join(f'"{port[n]}"' for n in groups[b])
                rules.append(f"iifname {{ {src} }} oifname {{ {dst} }} counter drop")
    members = ", ".join(st["nodes"][m]["ip"] for m in st["members"])
    for k, loss in enumerate(st.get("loss", [])):
        p = port[loss["node"]]
        dirs = {"out": [f'iifname "{p}"'], "in": [f'oifname "{p}"'],
                "both": [f'iifname "{p}"', f'oifname "{p}"']}[loss["direction"]]
        threshold = int(round(loss["percent"] * 100))
        draw = ("counter drop" if threshold >= 10000
                else f"numgen random mod 10000 < {threshold} counter drop")
        control = f"ip protocol udp ip saddr {{ {members} }}"
        if loss.get("port"):
            control += f" udp dport {int(loss['port'])}"
        body = {"all": [draw], "control": [f"{control} {draw}"],
                "data": [f"{control} return", draw]}[loss["match"]]
        chains.append(f"  chain loss{k} {{\n" + "".join(f"    {r}\n" for r in body) + "  }\n")
        rules += [f"{d} jump loss{k}" for d in dirs]
    head = f"table bridge {NFT_TABLE}\ndelete table bridge {NFT_TABLE}\n"
    if not rules:
        return head
    return (head + f"table bridge {NFT_TABLE} {{\n"
            "  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
            + "".join(f"    {r}\n" for r in rules) + "  }\n" + "".join(chains) + "}\n")


def _apply_nft(st: dict) -> None:
    nft = _need_tool("nft")
    _sh([_need_tool("ip"), "netns", "exec", st["switch"]["netns"], nft, "-f", "-"],
        inp=_nft_ruleset(st))


def _modify(name: str, fn) -> dict:
    _need_root()
    _need_tool("nft")
    with _global_lock():
        st = require_lab(name)
        fn(st)
        _apply_nft(st)
        _save_state(st)
    return st


def set_loss(name: str, node: str, percent: float, direction: str = "both",
             match: str = "all", port: int | None = None) -> dict:
    if not 0 <= percent <= 100:
        raise LabError("--percent must be 0..100", 2)
    if direction not in ("in", "out", "both") or match not in ("control", "data", "all"):
        raise LabError("bad --direction or --match", 2)

    def fn(st):
        full, nd = resolve_node(st, node)
        if nd is None:
            raise LabError("loss applies to a member or client, not the switch", 2)
        st["loss"] = [x for x in st.get("loss", []) if (x["node"], x["direction"], x["match"])
                      != (full, direction, match)]
        if percent > 0:
            st["loss"].append({"node": full, "percent": percent, "direction": direction,
                               "match": match, "port": port})
    return _modify(name, fn)


def clear_loss(name: str, node: str | None = None) -> dict:
    def fn(st):
        full = resolve_node(st, node)[0] if node else None
        st["loss"] = [x for x in st.get("loss", []) if full and x["node"] != full]
    return _modify(name, fn)


def partition(name: str, groups: list[list[str]], oneway: bool = False) -> dict:
    def fn(st):
        seen, resolved = set(), []
        for g in groups:
            names = []
            for n in g:
                full, nd = resolve_node(st, n)
                if nd is None or full in seen:
                    raise LabError(f"bad or repeated node {n!r} in --groups", 2)
                seen.add(full)
                names.append(full)
            resolved.append(names)
        if len(resolved) < 2 or not all(resolved):
            raise LabError("--groups needs at least two non-empty groups: a,b:c", 2)
        st["partition"] = {"groups": resolved, "oneway": oneway}
    return _modify(name, fn)


def heal(name: str) -> dict:
    def fn(st):
        st["partition"] = None
    return _modify(name, fn)


# ----------------------------------------------------------------------------- status


def format_status(st: dict) -> str:
    out = [f"lab {st['name']}: {st['status']}  prefix {st['prefix']}  "
           f"offloads {st.get('offloads', 'off')}  "
           f"switch netns {st['switch']['netns']} (bridge {st['switch']['bridge']})",
           f"cluster_ip {st['cluster_ip']}  cluster MAC unicast {st['cluster_mac_unicast']}"
           f"  multicast {st['cluster_mac_multicast']}  (configured in no kernel)",
           f"{'node':<10} {'netns':<22} {'if':<5} {'address':<16} {'mac':<18} "
           f"{'port':<14} stack_ip"]
    for n, d in st["nodes"].items():
        out.append(f"{n:<10} {d['netns']:<22} {d['ifname']:<5} {d['ip']:<16} {d['mac']:<18} "
                   f"{d['port']:<14} {d.get('stack_ip', '')}")
    for x in st.get("loss", []):
        out.append(f"loss {x['node']} {x['percent']}% direction {x['direction']} "
                   f"match {x['match']}{' port ' + str(x['port']) if x.get('port') else ''}")
    if st.get("partition"):
        out.append("partition " + " | ".join(",".join(g) for g in st["partition"]["groups"])
                   + (" (one-way, left to right)" if st["partition"].get("oneway") else ""))
    return "\n".join(out)


def public_state(st: dict) -> dict:
    return {k: v for k, v in st.items() if k != "steps"} | {"state_file": state_path(st["name"])}


# ----------------------------------------------------------------------------- Lab (tests)


class Process:
    """A background process in a node; killed (whole process group) at teardown."""

    def __init__(self, popen: subprocess.Popen, node: str, log: str | None):
        self.popen, self.node, self.log = popen, node, log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        if not self.log:
            return ""
        with open(self.log, errors="replace") as f:
            return f.read()

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 3.0) -> int | None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        return self.popen.returncode


class Capture:
    """tcpdump in a node, writing a pcap; stop() returns the decoded lines."""

    def __init__(self, lab: "Lab", node: str, bpf: str, iface: str, pcap: str,
                 direction: str = "inout", snaplen: int = 2048):
        self.lab, self.node, self.pcap = lab, node, pcap
        # --immediate-mode: without it libpcap's TPACKET_V3 ring hands frames over only
        # when a block fills or its 1 s timeout expires, and frames still in the ring when
        # tcpdump is stopped are lost. The ring has one slot per snaplen bytes, so the
        # default snaplen of 262144 leaves 8 slots in a 2 MB buffer and drops most of a
        # burst: capture 2048 bytes of each frame (more than the MTU; a longer frame is cut
        # but the headers still show its real length) into a 16 MB ring.
        self.proc = lab.spawn(node, ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode",
                                     "-s", str(snaplen), "-B", "16384", "-Q", direction,
                                     "-w", pcap] + ([bpf] if bpf else []), log=pcap + ".log")
        ok = lab.wait_for(lambda: "listening on" in self.proc.output() or not self.proc.alive(),
                          timeout=5)
        if not ok or not self.proc.alive():
            raise LabError(f"tcpdump did not start in {node}: {self.proc.output()}")

    def stop(self, settle: float = 0.2, max_wait: float = 3.0) -> list[str]:
        """Wait until the pcap has not grown for `settle` seconds (frames still in the
        socket ring are lost when tcpdump stops; bounded by max_wait), stop tcpdump,
        return the decoded lines."""
        deadline = time.monotonic() + max_wait
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            size = os.path.getsize(self.pcap) if os.path.exists(self.pcap) else 0
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= settle:
                break
            time.sleep(0.02)
        self.proc.kill(signal.SIGINT)
        return self.lines()

    def dropped(self) -> int:
        """Frames the kernel dropped because tcpdump was slow (known after stop())."""
        m = re.search(r"(\d+) packets? dropped by kernel", self.proc.output())
        return int(m.group(1)) if m else 0

    def lines(self, extra: list[str] | None = None) -> list[str]:
        p = _sh(["tcpdump", "-r", self.pcap, "-nn", "-e"] + (extra or []), check=False)
        return [ln for ln in p.stdout.splitlines() if ln.strip()]


class Lab:
    """Context manager: brings a lab up on entry and ALWAYS removes it on exit (also on
    exceptions, SIGINT and SIGTERM). Helpers run things inside the nodes.

        with Lab("t1", members=2, clients=1) as lab:
            srv = lab.spawn("member1", [build + "/tools/phalanxd/phalanxd", "--config", cfg])
            lab.wait_for(lambda: lab.run("client1", ["ping", "-c1", "-W1", lab.cluster_ip],
                                         check=False).returncode == 0, timeout=10)
            cap = lab.capture("client1", "tcp[tcpflags] & tcp-rst != 0 or icmp")
            ...
            assert not cap.stop()
    """

    def __init__(self, name: str, members: int = 2, clients: int = 1,
                 prefix: str | None = None, replace: bool = True, keep: bool = False,
                 offloads: str = "off"):
        self.name, self.members_n, self.clients_n = name, members, clients
        self.offloads = offloads
        self.prefix, self.replace = prefix, replace
        self.keep = keep or os.environ.get("PHALANX_LAB_KEEP") == "1"
        self.state: dict | None = None
        self.procs: list[Process] = []
        self.tmpdir: str | None = None
        self._old_handlers: dict = {}

    # -- lifecycle
    def __enter__(self) -> "Lab":
        self._install_signals()
        try:
            self.tmpdir = tempfile.mkdtemp(prefix=f"phalanx-lab-{self.name}-")
            self.state = up(self.name, self.members_n, self.clients_n, self.prefix,
                            replace=self.replace, offloads=self.offloads)
        except LabError as e:
            # exit_code 2: refused before creating anything (e.g. the name is taken by a
            # lab that is not ours) - do not remove it.
            self.close(remove_lab=e.exit_code != 2)
            raise
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, remove_lab: bool = True) -> None:
        blocked = {signal.SIGINT, signal.SIGTERM}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            for p in reversed(self.procs):
                with contextlib.suppress(Exception):
                    p.kill()
            self.procs.clear()
            if not remove_lab:
                pass
            elif self.keep:
                print(f"phalanx-lab: keeping lab {self.name} (PHALANX_LAB_KEEP=1); "
                      f"remove with: phalanx-lab down --name {self.name}", file=sys.stderr)
            else:
                down(self.name)
            if self.tmpdir and not self.keep:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            self._restore_signals()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread

        def on_signal(signum, _frame):
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, on_signal)

    def _restore_signals(self) -> None:
        for sig, h in self._old_handlers.items():
            signal.signal(sig, h)
        self._old_handlers.clear()

    # -- topology
    @property
    def cluster_ip(self) -> str:
        return self.state["cluster_ip"]

    @property
    def members(self) -> list[str]:
        return list(self.state["members"])

    @property
    def clients(self) -> list[str]:
        return list(self.state["clients"])

    def node(self, node: str) -> dict:
        return resolve_node(self.state, node)[1]

    def ip(self, node: str) -> str:
        return self.node(node)["ip"]

    def mac(self, node: str) -> str:
        return self.node(node)["mac"]

    def stack_ip(self, member: str) -> str:
        return self.node(member)["stack_ip"]

    def netns(self, node: str) -> str:
        return node_netns(self.state, node)

    def path(self, filename: str) -> str:
        """A file in this lab's scratch directory (removed at teardown)."""
        return os.path.join(self.tmpdir, filename)

    # -- running things
    def _argv(self, node: str, cmd) -> list[str]:
        cmd = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return ["ip", "netns", "exec", self.netns(node)] + cmd

    def run(self, node: str, cmd, check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run cmd (list, or str for sh -c) in node; returns CompletedProcess (text)."""
        p = subprocess.run(self._argv(node, cmd), capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise LabError(f"{node}: {cmd} exited {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def spawn(self, node: str, cmd, log: str | None = None, env: dict | None = None) -> Process:
        """Start cmd in node in the background (own process group, output to a log file in
        the scratch directory); it is killed at teardown."""
        if log is None:
            log = self.path(f"{node}-{len(self.procs)}.log")
        with open(log, "w") as f:
            popen = subprocess.Popen(self._argv(node, cmd), stdout=f, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env=None if env is None else os.environ | env)
        proc = Process(popen, node, log)
        self.procs.append(proc)
        return proc

    @staticmethod
    def wait_for(predicate, timeout: float = 10, interval: float = 0.05) -> bool:
        """Poll predicate() until true (returns True) or timeout seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def capture(self, node: str, bpf: str = "", iface: str | None = None,
                name: str | None = None, direction: str = "inout",
                snaplen: int = 2048) -> Capture:
        """Start tcpdump in node (returns once it is listening), writing a pcap in the
        scratch directory; Capture.stop() returns `tcpdump -r -nn -e` lines. bpf is a
        tcpdump filter expression; direction 'in' keeps only frames the node receives;
        frames longer than snaplen are cut in the pcap (tcpdump still prints their length).
        iface defaults to the node's eth0, or br0 for 'switch'."""
        if iface is None:
            iface = BRIDGE if node in ("switch", "sw") else NODE_IF
        pcap = self.path(name or f"{node}-{len(self.procs)}.pcap")
        return Capture(self, node, bpf, iface, pcap, direction, snaplen)

    def ping(self, node: str, dst: str, count: int = 3, interval: float = 0.2,
             wait: float = 1) -> tuple[int, int]:
        """(transmitted, received) for `ping -c count` from node to dst."""
        p = self.run(node, ["ping", "-n", "-q", "-c", str(count), "-i", str(interval),
                            "-W", str(wait), dst], check=False,
                     timeout=count * interval + wait + 10)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", p.stdout)
        if not m:
            raise LabError(f"ping from {node} to {dst}: {p.stdout}{p.stderr}")
        return int(m.group(1)), int(m.group(2))

    # -- faults
    def loss(self, node: str, percent: float, direction: str = "both", match: str = "all",
             port: int | None = None) -> None:
        self.state = set_loss(self.name, node, percent, direction, match, port)

    def clear_loss(self, node: str | None = None) -> None:
        self.state = clear_loss(self.name, node)

    def partition(self, *groups, oneway: bool = False) -> None:
        """lab.partition(["member1"], ["member2", "member3"])"""
        self.state = partition(self.name, [list(g) for g in groups], oneway)

    def heal(self) -> None:
        self.state = heal(self.name)


# ----------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="phalanx-lab",
                                 description="Phalanx cluster lab in network namespaces.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="create a lab")
    p.add_argument("--name", required=True)
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--prefix", help="a /24 inside 198.18.0.0/15 (default: picked from NAME)")
    p.add_argument("--replace", action="store_true", help="remove an existing lab NAME first")
    p.add_argument("--offloads", choices=OFFLOAD_CHOICES, default="off",
                   help="veth tx checksum, TSO and GRO: off (default) or on, as Linux "
                        "sets them on a physical NIC (segments up to 64 KB reach the members)")
    p.add_argument("--keep-on-error", action="store_true",
                   help="leave a half-built lab for inspection")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("down", help="remove a lab (idempotent)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--name")
    g.add_argument("--all", action="store_true")
    p = sub.add_parser("status", help="print a lab's topology")
    p.add_argument("--name", required=True)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="list labs")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("exec", help="run a command in a node: exec --name N --node member1 -- CMD")
    p.add_argument("--name", required=True)
    p.add_argument("--node", required=True, help="memberI, clientJ (or mI, cJ) or switch")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("loss", help="random loss on a node's bridge port")
    p.add_argument("--name", required=True)
    p.add_argument("--node")
    p.add_argument("--percent", type=float)
    p.add_argument("--direction", choices=("in", "out", "both"), default="both")
    p.add_argument("--match", choices=("control", "data", "all"), default="all",
                   help="control = UDP from a member's own address; data = everything else")
    p.add_argument("--port", type=int, help="with --match control/data: only this UDP dport")
    p.add_argument("--clear", action="store_true", help="remove loss (of --node, or all)")
    p = sub.add_parser("partition", help="drop frames between groups of nodes")
    p.add_argument("--name", required=True)
    p.add_argument("--groups", required=True, help="member1,member2:member3[:...]")
    p.add_argument("--oneway", action="store_true",
                   help="drop only from a group to the groups after it")
    p = sub.add_parser("heal", help="remove the partition")
    p.add_argument("--name", required=True)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "up":
            st = up(args.name, args.members, args.clients, args.prefix, args.replace,
                    args.keep_on_error, args.offloads)
            print(json.dumps(public_state(st), indent=1) if args.json else format_status(st))
        elif args.cmd == "down":
            _need_root()
            removed = down_all() if args.all else down(args.name)
            print("\n".join(f"removed {r}" for r in removed) or "nothing to remove")
        elif args.cmd == "status":
            st = load_state(args.name) if NAME_RE.match(args.name) else None
            if st is None:
                raise LabError(f"no lab named {args.name!r}", 2)
            print(json.dumps(public_state(st), indent=1) if args.json else format_status(st))
        elif args.cmd == "list":
            names = all_lab_names()
            if args.json:
                print(json.dumps({n: (load_state(n) or {}).get("status", "orphan")
                                  for n in names}))
            for n in [] if args.json else names:
                st = load_state(n) or {}
                print(f"{n:<20} {st.get('status', 'orphan (no state file)'):<10} "
                      f"{st.get('prefix', '')}")
        elif args.cmd == "exec":
            _need_root()
            cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not cmd:
                raise LabError("exec: no command given (exec --name N --node X -- CMD...)", 2)
            ns = node_netns(require_lab(args.name), args.node)
            os.execvp(_need_tool("ip"), ["ip", "netns", "exec", ns] + cmd)
        elif args.cmd == "loss":
            if args.clear:
                st = clear_loss(args.name, args.node)
            else:
                if not args.node or args.percent is None:
                    raise LabError("loss needs --node and --percent (or --clear)", 2)
                st = set_loss(args.name, args.node, args.percent, args.direction, args.match,
                              args.port)
            print(format_status(st))
        elif args.cmd == "partition":
            groups = [g.split(",") for g in args.groups.split(":")]
            print(format_status(partition(args.name, groups, args.oneway)))
        elif args.cmd == "heal":
            print(format_status(heal(args.name)))
    except LabError as e:
        print(f"phalanx-lab: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("phalanx-lab: interrupted", file=sys.stderr)
        return 130
    return 0
