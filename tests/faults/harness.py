"""A DAG run in a child process (`airflow dags test`) that a fault test can watch, pause, kill, and read back:
the state of every task try and when it changed, from the run's own log."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRY = re.compile(r"\[DAG TEST\] running task <TaskInstance: [^.\s]+\.(\S+) .*?ti_id=(\S+)>")
STATE = re.compile(r"^(\S+) .*Task instance state updated .*new_state=(\w+).*ti_id=(\S+)")
FINISHED = re.compile(r"DagRun Finished: .*?state=(\w+)")
END_STATES = ("success", "failed", "up_for_retry", "skipped", "upstream_failed")
# The first retry's delay in these runs (Airflow's default_task_retry_delay; 15 s in config/local.env): the cases
# restart a service before or right after the failed try, so a longer wait only adds idle time.
RETRY_DELAY_SECONDS = 3
REPORT_FILE = ROOT / "test-artifacts" / "faults" / "report.json"
REPORT: list[dict] = []  # one entry per fault case
STARTED: list[DagRun] = []  # every run started, so that a failed test leaves none behind


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunLog:
    """What a `dags test` log says: final state, and each task's state changes in order."""

    text: str
    state: str | None = None
    states: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    ended: dict[str, bool] = field(default_factory=dict)  # per try (ti_id): whether it reached an end state
    tries: dict[str, list[str]] = field(default_factory=dict)  # per task: its tries' ti_ids in order

    @classmethod
    def parse(cls, text: str) -> RunLog:
        task_of: dict[str, str] = {}
        states: dict[str, list[tuple[datetime, str]]] = {}
        ended: dict[str, bool] = {}
        tries: dict[str, list[str]] = {}
        for line in text.splitlines():
            if match := TRY.search(line):
                task_of[match[2]] = match[1]
                ended.setdefault(match[2], False)
                if match[2] not in tries.setdefault(match[1], []):
                    tries[match[1]].append(match[2])
            elif (match := STATE.search(line)) and match[3] in task_of:
                when = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
                states.setdefault(task_of[match[3]], []).append((when, match[2]))
                ended[match[3]] = ended[match[3]] or match[2] in END_STATES
        finished = FINISHED.findall(text)
        return cls(text, finished[-1] if finished else None, states, ended, tries)

    def killed_tries(self, task_id: str) -> int:
        """Tries of the task that started but never reached an end state (the process running them was killed)."""
        return sum(not self.ended[ti_id] for ti_id in self.tries.get(task_id, []))

    def all_failed_tries(self) -> int:
        return sum(self.failed_tries(task_id) for task_id in self.states)

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def failed_tries(self, task_id: str) -> int:
        return sum(state in ("up_for_retry", "failed") for _, state in self.states.get(task_id, []))

    def succeeded_at(self, task_id: str) -> datetime | None:
        done = [when for when, state in self.states.get(task_id, []) if state == "success"]
        return done[-1] if done else None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text.splitlines()[-lines:])


class DagRun:
    """`airflow dags test` through tests/faults/dag_runner.py (optionally with a pause point), its output
    teed to a log file and watched line by line."""

    def __init__(self, dag_id: str, logical_date: datetime, conf: dict, log_path: Path,
                 pause: str | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="fault-"))
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": str(RETRY_DELAY_SECONDS)}
        if pause:
            env.update(FAULT_PAUSE=pause, FAULT_DIR=str(self.folder))
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.dag_runner", "dags", "test", dag_id, logical_date.isoformat(),
             "--conf", json.dumps(conf)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        STARTED.append(self)

    def _read(self) -> None:
        with self.log_path.open("w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                with self.changed:
                    self.lines.append(line)
                    self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float) -> str:
        """The first output line matching `pattern` (from the start of the run); fails if the run ends first."""
        regex = re.compile(pattern)
        seen = 0
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if not self.reader.is_alive():
                    raise AssertionError(f"the run ended before a line matching {pattern!r}; log: {self.log_path}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f}s; log: {self.log_path}")
                self.changed.wait(0.5)

    def wait_for_state(self, task_id: str, states: tuple[str, ...], timeout: float) -> None:
        """Until one of the task's tries reaches one of `states` (e.g. up_for_retry: the try failed)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                log = RunLog.parse("".join(self.lines))
                alive = self.reader.is_alive()
            if any(state in states for _, state in log.states.get(task_id, [])):
                return
            if not alive or time.monotonic() > deadline:
                raise AssertionError(f"{task_id} never reached {states} ({'run ended' if not alive else 'timeout'}); "
                                     f"log: {self.log_path}")
            time.sleep(0.5)

    def wait_paused(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not (self.folder / "paused").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the run never reached its pause point; log: {self.log_path}")
            time.sleep(0.05)

    def release(self) -> None:
        (self.folder / "release").touch()

    def kill(self) -> None:
        """SIGKILL the whole run (the task runs inside it): no cleanup, no acknowledgement, no state update."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.reader.join(30)

    def finish(self, timeout: float = 600) -> RunLog:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the DAG run took over {timeout:.0f}s and was killed; log: {self.log_path}") from None
        self.reader.join(30)
        self.seconds = time.monotonic() - self.started
        return RunLog.parse("".join(self.lines))


def kill_leftovers() -> None:
    """SIGKILL every run a test started and left running (it failed or timed out before the run ended)."""
    while STARTED:
        run = STARTED.pop()
        if run.proc.poll() is None:
            run.kill()


def save_report() -> None:
    from tests import reports

    REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    REPORT_FILE.write_text(json.dumps(REPORT, indent=1))
    reports.show(f"fault injection (also in {REPORT_FILE.relative_to(ROOT)})", report_lines())


def report_lines() -> list[str]:
    rows = [("case", "result", "task", "failed tries", "recovery s", "service down s", "run s", "fault")]
    for e in REPORT:
        rows.append((str(e["case"]), "pass" if e["passed"] else "FAIL", e["task"], str(e["retries"]),
                     str(e["recovery_seconds"]), str(e["service_down_seconds"] or "-"), str(e["run_seconds"]),
                     e["fault"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
