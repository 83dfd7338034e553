#!/usr/bin/env python3
"""Run the main DAG once on the local services with the bundled sample, then print its summary."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


DAG_TIMEOUT, TASK_TIMEOUT = 600.0, 300.0  # seconds; on the sample a DAG run takes about a minute, a task seconds


def run_airflow(args: list[str], log_path: Path, timeout: float) -> str:
    """Run an `airflow` CLI command with its output in log_path; returns the output. A command still running
    after `timeout` seconds, or when the caller is interrupted, is killed with its children (the output says so)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(["airflow", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.write(f"\nTIMEOUT: `airflow {' '.join(args[:3])}` ran over {timeout:.0f}s and was killed\n")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return log_path.read_text(errors="replace")


def run_dag(dag_id: str, logical_date: datetime, conf: dict, log_path: Path) -> tuple[bool, str]:
    """`airflow dags test`; success is read from the run's final state in the log, not the exit code."""
    text = run_airflow(["dags", "test", dag_id, logical_date.isoformat(), "--conf", json.dumps(conf)], log_path,
                       DAG_TIMEOUT)
    finished = re.findall(r"DagRun Finished: dag_id=" + re.escape(dag_id) + r",.*?state=(\w+)", text)
    return finished[-1:] == ["success"], text


def run_task(dag_id: str, task_id: str, logical_date: datetime, log_path: Path,
             params: dict | None = None) -> tuple[bool, str]:
    """`airflow tasks test` (with Params overridden as a run's conf would); it exits 0 even when the task fails:
    read the final state from the log."""
    extra = ["-t", json.dumps(params)] if params else []
    text = run_airflow(["tasks", "test", dag_id, task_id, logical_date.isoformat(), *extra], log_path, TASK_TIMEOUT)
    return last_state(text) == "success", text


def last_state(text: str) -> str | None:
    """The task's final state in an `airflow tasks test` log (success, failed, up_for_retry, ...), or None."""
    states = re.findall(r"new_state=(\w+)", text)
    return states[-1] if states else None


def task_durations(text: str) -> list[tuple[str, float]]:
    """Wall time of each task from the `[DAG TEST] starting/end task` lines of `airflow dags test`."""
    started: dict[str, datetime] = {}
    durations = []
    for match in re.finditer(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\S+)", text, re.M):
        when = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
        if match[2] == "starting":
            started.setdefault(match[3], when)
        elif match[3] in started:
            durations.append((match[3], (when - started.pop(match[3])).total_seconds()))
    return durations


def main() -> int:
    from gait_airflow.report import batch_summary, format_summary
    from include.layout import batch_id

    logical_date = datetime.now(UTC).replace(microsecond=0)
    log_path = ROOT / ".local" / "logs" / f"demo-{logical_date:%Y%m%dT%H%M%S}.log"
    print(f"running parkinson_gait_pipeline on the bundled sample (log: {log_path}) ...", flush=True)
    began = time.monotonic()
    ok, text = run_dag("parkinson_gait_pipeline", logical_date, {}, log_path)
    if not ok:
        print("\n".join(text.splitlines()[-40:]))
        print(f"\nthe DAG run failed; full log: {log_path}; services: `make status`", file=sys.stderr)
        return 1
    print(f"finished in {time.monotonic() - began:.0f}s; wall time per task:")
    for task_id, seconds in task_durations(text):
        print(f"  {task_id:<28} {seconds:6.1f}s")
    logging.disable(logging.INFO)  # the hooks' connection chatter; the summary says it all
    print()
    print(format_summary(batch_summary(batch_id(logical_date, ""))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
