"""Shared helpers for the stack end-to-end tests (tests/e2e/stack_*_test.py).

A test imports this module first; it puts tools/phalanx-lab on sys.path, so `from lab import
Lab` works after it. What it gives:

  * paths: ROOT (PHALANX_ROOT), BUILD (PHALANX_BUILD), phalanxd_path(), CLIENTS (the folder of
    the helper scripts that run inside a client namespace);
  * log() / check() / Failure / main_wrapper(): timestamped progress, assertion with a reason,
    and a main() wrapper that prints "FAIL: <reason>" and exits 1;
  * Member: writes a stand-alone member config into the lab's scratch dir, starts phalanxd in
    a member namespace, waits until it answers ping, reads its counters (SIGHUP) and its VmRSS;
  * random_file() / sha256_file() / sha256_bytes();
  * client_py(): runs tests/e2e/clients/NAME.py in a client namespace with this interpreter.

Every wait has a timeout. Everything a test starts goes through the Lab (spawn/run/capture), so
the Lab context manager removes it even when the test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

ROOT = Path(os.environ.get("PHALANX_ROOT") or Path(__file__).resolve().parents[2])
BUILD = Path(os.environ.get("PHALANX_BUILD") or ROOT / "build")
CLIENTS = Path(__file__).resolve().parent / "clients"
sys.path.insert(0, str(ROOT / "tools" / "phalanx-lab"))

from lab import Lab, LabError  # noqa: E402,F401  (re-exported for the tests)

START = time.monotonic()


class Failure(Exception):
    """A test expectation that did not hold; the message is the reason printed."""


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:7.2f}s] {msg}", flush=True)


def check(cond, msg: str) -> None:
    if not cond:
        raise Failure(msg)


class Steps:
    """Runs independent steps of one test so that one failure does not hide the others:
    steps.run("name", fn) logs and records a Failure (other exceptions propagate);
    steps.finish() raises one Failure listing them all. `members` are asked for their
    counters and log tail when a step fails (while the lab is still up)."""

    def __init__(self, members: list | None = None):
        self.failures: list[str] = []
        self.members = members if members is not None else []

    def run(self, name: str, fn, *args, **kwargs):
        log(f"--- {name}")
        t0 = time.monotonic()
        try:
            out = fn(*args, **kwargs)
            log(f"    ok ({time.monotonic() - t0:.1f} s)")
            return out
        except Failure as e:
            log(f"    FAILED ({time.monotonic() - t0:.1f} s): {e}")
            for m in self.members:
                log(m.diagnose())
            self.failures.append(f"{name}: {e}")
            return None

    def finish(self) -> None:
        if self.failures:
            raise Failure(f"{len(self.failures)} step(s) failed:\n  - "
                          + "\n  - ".join(f.replace("\n", "\n    ") for f in self.failures))


def lab_name(tag: str) -> str:
    """A lab name unique to this process (labs of the same name replace each other)."""
    return f"{tag}{os.getpid() % 100000}"


def main_wrapper(fn) -> None:
    """Run fn() and exit: 0 when it returns, 1 with 'FAIL: reason' when it raises."""
    try:
        fn()
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any other error fails the test, with a trace
        traceback.print_exc()
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    log("PASS")
    sys.exit(0)


def phalanxd_path() -> str:
    for p in (BUILD / "tools" / "phalanxd", BUILD / "tools" / "phalanxd" / "phalanxd"):
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise Failure(f"phalanxd not built under {BUILD}/tools (build the 'phalanxd' target; "
                  "PHALANX_BUILD names the build directory)")


# ----------------------------------------------------------------------------- data


def random_file(path: str, size: int, chunk: int = 4 << 20) -> str:
    """Write `size` random bytes to path; returns the sha256 hex digest."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(chunk, left))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_range(path: str, start: int, end_inclusive: int) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        return sha256_bytes(f.read(end_inclusive - start + 1))


# ----------------------------------------------------------------------------- clients


def client_py(lab: Lab, node: str, script: str, args: list, timeout: float,
              check_rc: bool = True) -> subprocess.CompletedProcess:
    """Run tests/e2e/clients/<script>.py in `node` (a client namespace) with this Python.
    Each client prints one JSON object as its last stdout line; see parse_json()."""
    cmd = [sys.executable, str(CLIENTS / f"{script}.py")] + [str(a) for a in args]
    try:
        p = lab.run(node, cmd, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"client {script} {args} did not finish within {timeout:.0f} s")
    if check_rc and p.returncode != 0:
        raise Failure(f"client {script} {' '.join(map(str, args))} exited {p.returncode}:\n"
                      f"{p.stdout[-3000:]}{p.stderr[-3000:]}")
    return p


def parse_json(p: subprocess.CompletedProcess) -> dict:
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise Failure(f"no JSON result from client:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return json.loads(lines[-1])


# curl gives up on a transfer that moves less than 1 kB/s for this many seconds, so a stalled
# transfer fails fast instead of using up its whole time bound.
STALL_SECONDS = 5


def curl(lab: Lab, node: str, args: list, timeout: float,
         stall: int = STALL_SECONDS) -> subprocess.CompletedProcess:
    """curl in a node with a hard time bound (curl's own --max-time plus our timeout) and a
    stall bound (--speed-limit 1000 --speed-time stall)."""
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "--speed-limit", "1000",
           "--speed-time", str(stall)] + [str(a) for a in args]
    try:
        return lab.run(node, cmd, check=False, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        raise Failure(f"curl {args} did not finish within {timeout + 10:.0f} s")


# ----------------------------------------------------------------------------- the member


class Member:
    """phalanxd stand-alone in a member namespace, serving lab.stack_ip(member).

        m = Member(lab, "member1", www=dir_or_None, tcp={"time_wait_ms": 1000})
                                     # exe=PATH runs another phalanxd than BUILD's
        m.start()                    # waits (bounded) until the address answers ping
        m.counters()                 # SIGHUP, parse the "SIGHUP stack:" line -> dict
        m.rss_kb()                   # VmRSS of the phalanxd process
    """

    def __init__(self, lab: Lab, member: str = "member1", www: str | None = None,
                 echo: bool = True, tcp: dict | None = None, link: dict | None = None,
                 log_level: str = "info", exe: str | None = None):
        self.lab, self.member = lab, member
        self.exe = exe  # None: BUILD's phalanxd (phalanxd_path())
        self.ip = lab.stack_ip(member)
        self.www, self.echo, self.tcp, self.link = www, echo, tcp or {}, link or {}
        self.log_level = log_level
        self.cfg = lab.path(f"{member}.toml")
        self.proc = None
        self._hups = 0

    def config_text(self) -> str:
        def val(v):
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, str):
                return json.dumps(v)
            return str(v)
        out = ["[member]", f'interface = "eth0"', f'address = "{self.ip}"', "prefix = 24", ""]
        if self.link:
            out += ["[link]"] + [f"{k} = {val(v)}" for k, v in self.link.items()] + [""]
        if self.tcp:
            out += ["[tcp]"] + [f"{k} = {val(v)}" for k, v in self.tcp.items()] + [""]
        if self.echo:
            out += ["[apps.echo]", "enabled = true", "ports = [7]", ""]
        if self.www:
            out += ["[apps.http]", "enabled = true", "port = 80", f"root = {json.dumps(self.www)}",
                    ""]
        out += ["[log]", f'level = "{self.log_level}"', ""]
        return "\n".join(out)

    def start(self, timeout: float = 15) -> "Member":
        with open(self.cfg, "w") as f:
            f.write(self.config_text())
        exe = self.exe or phalanxd_path()
        chk = subprocess.run([exe, "--config", self.cfg, "--check"], capture_output=True,
                             text=True, timeout=10)
        check(chk.returncode == 0, f"phalanxd --check rejected the test config "
              f"(rc {chk.returncode}):\n{chk.stdout}{chk.stderr}\n{self.config_text()}")
        self.proc = self.lab.spawn(self.member, [exe, "--config", self.cfg],
                                   log=self.lab.path(f"phalanxd-{self.member}.log"))
        ok = self.lab.wait_for(
            lambda: not self.proc.alive() or self.lab.ping(self.lab.clients[0], self.ip, count=1,
                                                           wait=0.5)[1] == 1,
            timeout=timeout, interval=0.1)
        check(self.proc.alive(), f"phalanxd exited at start (rc {self.proc.popen.returncode}):"
              f"\n{self.proc.output()[-3000:]}")
        check(ok, f"{self.ip} did not answer ping within {timeout} s of starting phalanxd:\n"
              f"{self.proc.output()[-3000:]}")
        comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        check(comm == "phalanxd", f"spawned pid {self.pid} is {comm!r}, not phalanxd")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def output(self) -> str:
        return self.proc.output() if self.proc else ""

    def check_alive(self, what: str) -> None:
        check(self.alive(), f"phalanxd died {what} (rc {self.proc.popen.returncode}); log tail:\n"
              f"{self.output()[-3000:]}")

    def counters(self, timeout: float = 5, which: str = "stack") -> dict:
        """Send SIGHUP and return the counters of the new 'SIGHUP <which>:' line (stack, link
        or loop; only non-zero counters are logged: a missing name means 0)."""
        self.check_alive("before SIGHUP")
        before = self.output().count("SIGHUP stack:")
        os.kill(self.pid, signal.SIGHUP)
        ok = self.lab.wait_for(lambda: self.output().count("SIGHUP stack:") > before,
                               timeout=timeout)
        check(ok, f"phalanxd logged no counters within {timeout} s of SIGHUP")
        line = [ln for ln in self.output().splitlines() if f"SIGHUP {which}:" in ln][-1]
        return {k: int(v) for k, v in re.findall(r"([\w.]+)=(\d+)", line)}

    def diagnose(self) -> str:
        """Counters (if still running) and the log tail, for a failure report."""
        head = f"phalanxd in {self.member} (pid {self.pid if self.proc else '-'}): "
        if self.alive():
            try:
                self.counters()
                head += "alive"
            except Failure as e:
                head += f"alive, {e}"
        elif self.proc is not None:
            head += f"EXITED rc {self.proc.popen.returncode}"
        tail = "\n".join(self.output().splitlines()[-12:])
        return f"{head}; log tail:\n{tail}"

    def rss_kb(self) -> int:
        m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{self.pid}/status").read_text(), re.M)
        return int(m.group(1)) if m else 0

    def cpu_seconds(self) -> float:
        f = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 5) -> str:
        """SIGTERM, wait; returns the log (which ends with the exit counters)."""
        if self.proc is not None:
            self.proc.kill(signal.SIGTERM, timeout)
        return self.output()


def open_connections(c: dict) -> int:
    """Connections the stack still holds (every state, TIME-WAIT included)."""
    return c.get("tcp_connections", 0)


def ping_ok(lab: Lab, client: str, ip: str) -> bool:
    return lab.ping(client, ip, count=1, wait=1)[1] == 1
