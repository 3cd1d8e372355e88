#!/usr/bin/env python3
"""End-to-end test of tools/phalanx-lab: topology, offloads, kernel silence for the
cluster IP, loss, partition, coexistence of labs, and clean removal.

Needs root. Exit 0 on success; on failure prints what broke and exits 1. Every lab it makes
is removed on the way out (Lab is a context manager; the CLI-made lab is in a finally).
"""

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("PHALANX_ROOT") or Path(__file__).resolve().parents[2])
LAB_DIR = ROOT / "tools" / "phalanx-lab"
CLI = str(LAB_DIR / "phalanx-lab")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(LAB_DIR))
import lab as labmod  # noqa: E402
from lab import Lab  # noqa: E402

TAG = f"lt{os.getpid() % 100000}"
START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.2f}s] {msg}", flush=True)


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def cli(*args, check_rc: int | None = 0, timeout: float = 60) -> subprocess.CompletedProcess:
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError(f"phalanx-lab {' '.join(args)} -> {p.returncode} "
                             f"(wanted {check_rc})\n{p.stdout}{p.stderr}")
    return p


def lab_netns(name: str) -> list[str]:
    return [ns for ns in labmod._netns_list() if ns.startswith(f"plab-{name}-")]


def root_snapshot() -> tuple[str, str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    links = "\n".join(sorted(re.sub(r"^\d+: ", "", ln).split(" ")[0]
                             for ln in links.splitlines()))
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return links, nft


def assert_gone(name: str, before: tuple[str, str]) -> None:
    check(not lab_netns(name), f"namespaces left behind: {lab_netns(name)}")
    check(not os.path.exists(labmod.state_path(name)), f"state file left for {name}")
    after = root_snapshot()
    check(after[0] == before[0] or name not in after[0],
          f"root namespace links changed:\n{before[0]}\n---\n{after[0]}")
    check(name not in after[0], f"a link named after {name} is in the root namespace")
    check(after[1] == before[1], f"root nft tables changed: {before[1]!r} -> {after[1]!r}")


# ----------------------------------------------------------------------------- checks


def check_topology(lab: Lab) -> None:
    st = lab.state
    net = labmod.ipaddress.ip_network(st["prefix"])
    check(net.subnet_of(labmod.LAB_RANGE), f"prefix {net} outside 198.18.0.0/15")
    base = int(net.network_address)
    check(int(labmod.ipaddress.ip_address(lab.cluster_ip)) == base + 1, "cluster IP is not .1")
    for i, m in enumerate(lab.members, 1):
        check(int(labmod.ipaddress.ip_address(lab.ip(m))) == base + 10 + i, f"{m} address")
    for j, c in enumerate(lab.clients, 1):
        check(int(labmod.ipaddress.ip_address(lab.ip(c))) == base + 100 + j, f"{c} address")
    reserved = [lab.cluster_ip] + [lab.stack_ip(m) for m in lab.members]
    for node in lab.members + lab.clients:
        out = lab.run(node, ["ip", "-o", "addr", "show"]).stdout
        for ip in reserved:
            check(f" {ip}/" not in out, f"{ip} is configured in {node}: {out}")
        check("inet6" not in out, f"IPv6 still on in {node}: {out}")
        check(f"inet {lab.ip(node)}/24" in out, f"{node} lacks its address: {out}")
        mac = lab.run(node, ["cat", f"/sys/class/net/{labmod.NODE_IF}/address"]).stdout.strip()
        check(mac == lab.mac(node), f"{node} MAC {mac} != {lab.mac(node)}")


def check_ping_all(lab: Lab) -> None:
    nodes = lab.members + lab.clients
    for a in nodes:
        for b in nodes:
            if a != b:
                sent, got = lab.ping(a, lab.ip(b), count=1, interval=0.2, wait=2)
                check(got == 1, f"ping {a} -> {b} ({lab.ip(b)}) failed")


def check_offloads(lab: Lab) -> None:
    """A kernel TCP bulk transfer client1 -> member1 must reach member1's AF_PACKET taps as
    MTU-sized frames with complete checksums (tx checksum offload off on the veths)."""
    m, c = "member1", "client1"
    srv = lab.spawn(m, [sys.executable, "-c",
                        "import socket\ns=socket.socket()\n"
                        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                        f"s.bind(('{lab.ip(m)}',5001))\ns.listen()\nprint('ready',flush=True)\n"
                        "s.settimeout(10)\nc,_=s.accept()\nc.settimeout(10)\n"
                        "while c.recv(65536): pass\n"])
    check(lab.wait_for(lambda: "ready" in srv.output(), 5), "tcp sink did not start")
    cap = lab.capture(m, f"tcp and src host {lab.ip(c)} and dst port 5001")
    lab.run(c, [sys.executable, "-c",
                f"import socket\ns=socket.create_connection(('{lab.ip(m)}',5001),timeout=10)\n"
                "s.sendall(b'x'*400000)\ns.close()\n"], timeout=20)
    cap.stop()
    lines = cap.lines(["-vv"])
    frames = [ln for ln in lines if " > " in ln and ".5001:" in ln]
    lengths = [int(x) for x in re.findall(r"\blength (\d+)\)", "\n".join(lines))]
    check(lengths and max(lengths) <= 1500,
          f"IP datagrams larger than the MTU (TSO still on?): max {max(lengths or [0])}")
    bad = [ln.strip() for ln in lines if "incorrect" in ln]
    check(not bad, f"frames with incomplete checksums reached the member: {bad[:2]}")
    check(len(frames) > 250 and cap.dropped() == 0,
          f"capture incomplete: {len(frames)} frames, {cap.dropped()} dropped by the kernel")
    srv.kill()
    log(f"offloads: {len(frames)} frames, max IP length {max(lengths)}, checksums complete")


def check_kernel_silent(lab: Lab) -> None:
    """Frames for the cluster IP (multicast and unicast cluster MAC) and for a member's
    stack address reach the members, and no kernel answers: no ARP reply, RST or ICMP."""
    st = lab.state
    cip = lab.cluster_ip
    m1 = "member1"
    c1, c2 = "client1", "client2"
    # Frames to the cluster MAC are flooded to every port, so clients see each other's
    # probes: look only at what members send.
    from_members = " or ".join(f"ether src {lab.mac(m)}" for m in lab.members)
    # ARP replies about the cluster IP or the stack address only: a client's kernel re-checks
    # its entries for the members' own addresses (unicast probes) whenever they go stale, and
    # the members' kernels rightly answer those.
    ours = " or ".join(f"arp[14:4] = {int(ipaddress.ip_address(a))}"
                       for a in (cip, lab.stack_ip(m1)))
    answer = (f"({from_members}) and ((arp[6:2] = 2 and ({ours})) or icmp"
              " or tcp[tcpflags] & tcp-rst != 0)")
    silent = lab.capture(c1, answer, direction="in")
    silent2 = lab.capture(c2, answer, direction="in")
    seen = lab.capture(m1, f"host {cip} or host {lab.stack_ip(m1)}")
    # ARP for the cluster IP: nobody may answer.
    lab.ping(c2, cip, count=1, wait=1)
    lab.run(c1, ["ip", "neigh", "replace", cip, "lladdr", st["cluster_mac_multicast"],
                 "nud", "permanent", "dev", "eth0"])
    lab.run(c2, ["ip", "neigh", "replace", cip, "lladdr", st["cluster_mac_unicast"],
                 "nud", "permanent", "dev", "eth0"])
    lab.run(c1, ["ip", "neigh", "replace", lab.stack_ip(m1), "lladdr", lab.mac(m1),
                 "nud", "permanent", "dev", "eth0"])
    probe = ("import socket,sys\n"
             "for dst in sys.argv[1:]:\n"
             "  s=socket.socket(); s.settimeout(0.3)\n"
             "  try: s.connect((dst,80))\n"
             "  except OSError: pass\n"
             "  s.close()\n"
             "  u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.sendto(b'x',(dst,9))\n")
    lab.run(c1, [sys.executable, "-c", probe, cip, lab.stack_ip(m1)])
    lab.run(c2, [sys.executable, "-c", probe, cip])
    lab.ping(c1, cip, count=1, wait=0.3)
    lab.ping(c1, lab.stack_ip(m1), count=1, wait=0.3)
    got = seen.stop(0.3)
    answers = silent.stop(0.05) + silent2.stop(0.05)
    check(not answers, "a kernel answered for the cluster IP / stack address:\n"
          + "\n".join(answers))
    syn_mc = [ln for ln in got if st["cluster_mac_multicast"] in ln and f"> {cip}.80:" in ln]
    syn_uc = [ln for ln in got if st["cluster_mac_unicast"] in ln and f"> {cip}.80:" in ln]
    syn_st = [ln for ln in got if f"> {lab.stack_ip(m1)}.80:" in ln]
    check(syn_mc and syn_uc and syn_st,
          "member1 did not see the probes (multicast %d, unicast %d, stack %d):\n%s"
          % (len(syn_mc), len(syn_uc), len(syn_st), "\n".join(got)))
    log(f"kernel silent: member1 saw {len(got)} probe frames, clients got no ARP reply/RST/ICMP")


def udp_count(lab: Lab, src: str, dst: str, port: int, n: int = 20) -> int:
    rx = lab.spawn(dst, [sys.executable, "-c",
                         "import socket,time\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                         f"u.bind(('{lab.ip(dst)}',{port}))\nu.settimeout(0.1)\n"
                         "print('ready',flush=True)\nn=0\nend=time.time()+1.0\n"
                         "while time.time()<end:\n"
                         "  try: u.recv(100); n+=1\n"
                         "  except socket.timeout: pass\n"
                         "print('count',n,flush=True)\n"])
    check(lab.wait_for(lambda: "ready" in rx.output(), 5), "udp receiver did not start")
    lab.run(src, [sys.executable, "-c",
                  "import socket,time\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                  f"u.bind(('{lab.ip(src)}',0))\n"
                  f"for i in range({n}):\n"
                  f"  u.sendto(b'x',('{lab.ip(dst)}',{port}))\n  time.sleep(0.005)\n"])
    check(lab.wait_for(lambda: not rx.alive(), 5), "udp receiver did not finish")
    m = re.search(r"count (\d+)", rx.output())
    check(m is not None, f"udp receiver output: {rx.output()}")
    return int(m.group(1))


def check_loss(lab: Lab) -> None:
    c1, m1, m2 = "client1", "member1", "member2"
    lab.loss(c1, 30, direction="out")
    sent, got = lab.ping(c1, lab.ip(m1), count=200, interval=0.005, wait=1)
    lost = 100.0 * (sent - got) / sent
    check(sent == 200 and 15 <= lost <= 45, f"30% loss gave {lost:.1f}% of {sent} lost")
    log(f"loss 30% out on client1: {lost:.1f}% of 200 pings lost")
    lab.clear_loss()
    sent, got = lab.ping(c1, lab.ip(m1), count=20, interval=0.005, wait=1)
    check(got >= 19, f"loss not cleared: {got}/{sent}")
    # --match control: UDP from a member's own address; data: everything else.
    lab.loss(m1, 100, direction="out", match="control")
    check(udp_count(lab, m1, m2, 7000) == 0, "control loss let member UDP through")
    check(lab.ping(m1, lab.ip(m2), count=3, interval=0.05)[1] == 3, "control loss hit ping")
    lab.clear_loss(m1)
    lab.loss(m1, 100, direction="out", match="data")
    check(udp_count(lab, m1, m2, 7000) == 20, "data loss hit member UDP")
    check(lab.ping(m1, lab.ip(m2), count=2, interval=0.05, wait=0.5)[1] == 0,
          "data loss let ping through")
    lab.clear_loss()
    log("loss --match control/data ok")


def check_partition(lab: Lab) -> None:
    m1, m2, c1, c2 = "member1", "member2", "client1", "client2"
    lab.partition([m1], [m2, c1])
    for a, b, ok in ((m1, m2, False), (m2, m1, False), (m1, c1, False), (m2, c1, True),
                     (c2, m1, True), (c2, m2, True)):
        got = lab.ping(a, lab.ip(b), count=1, wait=0.5)[1]
        check(bool(got) == ok, f"partition: ping {a} -> {b} {'failed' if ok else 'passed'}")
    lab.heal()
    check(lab.wait_for(lambda: lab.ping(m1, lab.ip(m2), count=1, wait=1)[1] == 1, 10),
          "heal: member1 cannot reach member2")
    check(lab.ping(m1, lab.ip(c1), count=1, wait=1)[1] == 1, "heal: member1 -> client1")
    out = lab.run("switch", ["nft", "list", "tables"]).stdout
    check(labmod.NFT_TABLE not in out, f"nft table left after heal: {out}")
    log("partition and heal ok")


def check_cli(name: str, other: Lab) -> None:
    """The CLI side: up/status/exec/errors/down on a second lab running beside `other`."""
    p = cli("up", "--name", name, "--members", "1", "--clients", "1", "--json")
    st = json.loads(p.stdout)
    check(st["prefix"] != other.state["prefix"], "two labs got the same prefix")
    check(len(lab_netns(name)) == 3, f"namespaces of {name}: {lab_netns(name)}")
    p = cli("up", "--name", name, "--members", "1", "--clients", "1", check_rc=2)
    check("already exists" in p.stderr, f"duplicate up: {p.stderr}")
    check(json.loads(cli("status", "--name", name, "--json").stdout)["name"] == name, "status")
    p = cli("exec", "--name", name, "--node", "client1", "--", "ping", "-c1", "-W2",
            st["nodes"]["member1"]["ip"])
    check("1 received" in p.stdout, f"exec ping: {p.stdout}")
    # The other lab is untouched and isolated: its member is unreachable from this one.
    p = cli("exec", "--name", name, "--node", "client1", "--", "ping", "-c1", "-W1",
            other.ip("member1"), check_rc=None)
    check(p.returncode != 0, "a lab reached another lab's member")
    check(other.ping("client1", other.ip("member1"), count=1)[1] == 1, "other lab broken")
    cli("loss", "--name", name, "--node", "nosuch", "--percent", "5", check_rc=2)
    cli("status", "--name", "no-such-lab", check_rc=2)
    check_non_root_refused()
    cli("down", "--name", name)
    check(not lab_netns(name), f"down left {lab_netns(name)}")
    check("nothing" in cli("down", "--name", name).stdout, "second down not idempotent")
    log("cli: up/status/exec/errors/down ok, labs coexist and are isolated")


def check_non_root_refused() -> None:
    """An unprivileged user is told that the lab needs root. The checkout may sit where that
    user cannot read (a clone in /root, mode 700), so it runs a world-readable copy of the tool."""
    with tempfile.TemporaryDirectory(prefix="phalanx-lab-nonroot.") as tmp:
        os.chmod(tmp, 0o755)
        for f in ("phalanx-lab", "lab.py"):
            shutil.copy(LAB_DIR / f, tmp)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            str(Path(tmp) / "phalanx-lab"), "up", "--name", "x", "--members", "1"],
                           capture_output=True, text=True, cwd=tmp)
    check(p.returncode == 2 and "root" in p.stderr, f"non-root: {p.returncode} {p.stderr}")


def check_half_built(name: str) -> None:
    """A lab that died half-way (state file with a partial step log; or namespaces with no
    state file at all) is removed by `down --name`."""
    st = labmod._plan(name, 2, 1, labmod.ipaddress.ip_network("198.19.254.0/24"))
    labmod._save_state(st)
    for node in ("member1", "member2"):
        labmod._step(st, op="netns", netns=st["nodes"][node]["netns"])
    subprocess.run(["ip", "netns", "add", st["nodes"]["member1"]["netns"]], check=True)
    subprocess.run(["ip", "netns", "add", f"plab-{name}-c7"], check=True)  # not in the log
    cli("up", "--name", name, "--members", "1", check_rc=2)
    cli("down", "--name", name)
    check(not lab_netns(name) and not os.path.exists(labmod.state_path(name)),
          f"half-built lab not removed: {lab_netns(name)}")
    log("half-built lab removed by down")


def check_sigterm(name: str) -> None:
    """SIGTERM to a process inside `with Lab(...)` still removes the lab."""
    code = (f"import sys,time\nsys.path.insert(0,{str(LAB_DIR)!r})\nfrom lab import Lab\n"
            f"with Lab({name!r},1,1) as l:\n"
            "  l.spawn('member1',['sleep','30'])\n  print('ready',flush=True)\n  time.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        check("ready" in line, f"child lab did not start: {line!r}")
        check(len(lab_netns(name)) == 3, "child lab not up")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(15)
        check(rc != 0, "child ignored SIGTERM")
        check(not lab_netns(name), f"SIGTERM left {lab_netns(name)}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    log("SIGTERM inside Lab tears the lab down")


def main() -> int:
    if os.geteuid() != 0:
        print("lab_test: needs root", file=sys.stderr)
        return 1
    before = root_snapshot()
    name_a, name_b, name_c, name_d = TAG + "a", TAG + "b", TAG + "c", TAG + "d"
    try:
        with Lab(name_a, members=2, clients=2) as lab:
            log(f"lab {name_a} up: {lab.state['prefix']} cluster IP {lab.cluster_ip}")
            check_topology(lab)
            check_ping_all(lab)
            log("ping between all nodes ok")
            check_offloads(lab)
            check_kernel_silent(lab)
            check_loss(lab)
            check_partition(lab)
            check_cli(name_b, lab)
        assert_gone(name_a, before)
        check_half_built(name_c)
        check_sigterm(name_d)
        assert_gone(name_d, before)
    except (AssertionError, labmod.LabError, subprocess.SubprocessError) as e:
        print(f"lab_test: FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        for n in (name_a, name_b, name_c, name_d):
            if lab_netns(n) or os.path.exists(labmod.state_path(n)):
                subprocess.run([CLI, "down", "--name", n], capture_output=True)
    log("lab_test: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
