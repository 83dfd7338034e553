"""Process management shared by every local service: paths, start/stop, readiness, status."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
OPT = LOCAL / "opt"  # downloaded software (reused by `install`), shared by both profiles
BIN = LOCAL / "bin"
TOPOLOGY_SETTING = "GAIT_TOPOLOGY"  # single (default) or cluster: scripts/localservices/topology.py
CLUSTER_BASE = LOCAL / "cluster"
# The profile's own data, logs, pid files, configs and credentials: the cluster's apart from the single node's.
PROFILE_BASE = CLUSTER_BASE if os.environ.get(TOPOLOGY_SETTING) == "cluster" else LOCAL
DATA = PROFILE_BASE / "data"  # service data (wiped by `reset`)
LOGS = PROFILE_BASE / "logs"
RUN = PROFILE_BASE / "run"  # pid files and generated configs
TEMPLATES = Path(__file__).resolve().parent / "templates"
HOST = "127.0.0.1"
INSTALL_TIMEOUT = 1800  # seconds for one set-up command (a download, a Go or Maven build)


class ServiceError(RuntimeError):
    """A service could not be installed or started; the message says which, where and what to check."""


def run(cmd: list[str], *, log: Path | None = None, cwd: Path | None = None, env: dict | None = None,
        what: str = "") -> None:
    """Run a set-up command to completion; on failure raise with the log's tail."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = log or LOGS / "install.log"
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        try:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                 env={**os.environ, **(env or {})}, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ServiceError(f"{what or cmd[0]} ran over {INSTALL_TIMEOUT}s; see {log}:\n{tail(log)}") from None
    if rc != 0:
        raise ServiceError(f"{what or cmd[0]} failed (exit {rc}); see {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


LOOPBACK_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def get_json(url: str, timeout: float = 5) -> dict:
    """A local service's JSON status or REST answer (HDFS's WebHDFS and JMX, Spark's daemons)."""
    with LOOPBACK_HTTP.open(url, timeout=timeout) as response:
        return json.load(response)


def render(template: str, target: Path, **values: object) -> Path:
    """Fill a config template from templates/ with absolute paths and ports."""
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


@dataclass(eq=False)
class Service:
    """One long-running process. Subclasses fill in install/prepare/command/ready/bootstrap."""

    name: str
    port: int
    ready_timeout: float = 120.0
    extra_ports: tuple[int, ...] = field(default_factory=tuple)
    base: Path = PROFILE_BASE  # data/, logs/ and run/ live below it (a test instance uses its own)
    host: str = HOST  # the loopback address it listens on (the cluster's Cassandra nodes differ by address)

    # --- paths -------------------------------------------------------------------------------
    @property
    def log(self) -> Path:
        return self.base / "logs" / f"{self.name}.log"

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def data(self) -> Path:
        return self.base / "data" / self.name

    # --- to override ---------------------------------------------------------------------------
    def install(self) -> None:
        """Download/build what the service needs; a no-op when already present."""

    def installed(self) -> bool:
        return True

    def prepare(self) -> None:
        """Write configs, format storage once. Runs before every start; must be idempotent."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def ready(self) -> bool:
        """A real client round trip; True once the service answers."""
        raise NotImplementedError

    def bootstrap(self) -> None:
        """Create the pipeline's durable objects idempotently (topics, tables, dirs, indexes)."""

    # --- lifecycle -----------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        if _is_zombie(pid):
            return None
        return pid

    def started_at(self) -> tuple[float, float] | None:
        """(start epoch, seconds until ready) recorded by `start`."""
        try:
            parts = self.pidfile.read_text().split()
            return float(parts[1]), float(parts[2])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def start(self) -> str:
        if self.pid() is not None:
            if self.is_ready():
                return "already running"
            self._wait_ready(time.time())
            return "already running"
        if not self.installed():
            raise ServiceError(f"{self.name} is not installed; run `make install` (see {LOGS / 'install.log'})")
        for port in (self.port, *self.extra_ports):
            if port_open(port, self.host):
                raise ServiceError(
                    f"{self.name}: port {self.host}:{port} is taken by another process "
                    f"(find it with `ss -ltnp 'sport = :{port}'`); log: {self.log}")
        for folder in (self.data, self.log.parent, self.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.prepare()
        began = time.time()
        with self.log.open("a") as out:
            out.write(f"\n==== start {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(self.command())}\n")
            out.flush()
            proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.data, start_new_session=True,
                                    env={**os.environ, **self.env()})
        self.pidfile.write_text(f"{proc.pid} {began} 0\n")
        self._wait_ready(began, proc)
        self.pidfile.write_text(f"{proc.pid} {began} {time.time() - began:.2f}\n")
        return f"started in {time.time() - began:.1f}s"

    def is_ready(self) -> bool:
        try:
            return bool(self.ready())
        except Exception:  # noqa: BLE001 - a probe that throws just means "not yet"
            return False

    def _wait_ready(self, began: float, proc: subprocess.Popen | None = None) -> None:
        while time.time() - began < self.ready_timeout:
            if proc is not None and proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {proc.returncode} while starting (port {self.port}); "
                    f"see {self.log}:\n{tail(self.log)}")
            if self.is_ready():
                return
            time.sleep(0.5)
        raise ServiceError(
            f"{self.name} did not become ready on {self.host}:{self.port} within {self.ready_timeout:.0f}s; "
            f"see {self.log}:\n{tail(self.log)}")

    def stop(self, timeout: float = 60.0) -> str:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return "not running"
        _signal_group(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.5)
        self.pidfile.unlink(missing_ok=True)
        return "stopped"

    def kill(self) -> float:
        """SIGKILL the process and every descendant at once, as a lost node (no shutdown hook, no flush); the
        moment it happened (time.monotonic)."""
        pid = self.pid()
        if pid is None:
            raise ServiceError(f"{self.name} is not running: nothing to kill")
        for victim in [pid, *_descendants(pid)]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed = time.monotonic()
        while _alive(pid):
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        return killed

    def rss_bytes(self) -> int:
        pid = self.pid()
        return _tree_rss(pid) if pid else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A finished process. A JVM's main thread shows as a zombie while its shutdown hooks still run (and
    still hold the ports), so it only counts as finished once no other thread is left."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state == "Z" and len(list(Path(f"/proc/{pid}/task").iterdir())) <= 1
    except (FileNotFoundError, IndexError):
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and its descendants (bytes)."""
    total = 0
    for current in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            pass
    return total


def maven_fetch(pom_dir: Path, target: Path, what: str) -> None:
    """Copy a pom's dependencies into target/ (Maven reuses ~/.m2; nothing is fetched twice)."""
    if target.is_dir() and any(target.glob("*.jar")):
        return
    target.mkdir(parents=True, exist_ok=True)
    run(["mvn", "-q", "-B", "-f", str(pom_dir / "pom.xml"), "dependency:copy-dependencies",
         f"-DoutputDirectory={target}", "-DincludeScope=runtime"], what=f"maven download for {what}")
