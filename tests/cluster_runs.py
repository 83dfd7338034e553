"""Scheduler-driven runs on the cluster profile, shared by tests/cluster and tests/cluster_faults: trigger through
the REST API, watch a task's live log or state, read each try and which Celery worker ran it, check the batch."""
from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scripts.localservices import airflow
from scripts.localservices.core import Service
from tests.pipeline_checks import (
    SAMPLE_READINGS,
    SAMPLE_WINDOWS,
    assert_kafka_range_equals_landed,
    assert_windows_equal_reference,
    metrics_documents,
    reconciliation,
)

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "parkinson_gait_pipeline"
# Non-default Params (window size 50: 21 windows per sample recording), small training rounds.
CONF = {"capture_idle_seconds": 3, "bias_variance_rounds": 3, "cv_folds": 3, "window_size": 50}
WINDOWS_PER_RECORDING = 21
# Seconds of the fault-free runs of CONF this session (tests/cluster's triggered run): the node-loss suite measures
# the time each case adds against the first, and runs one of its own only when there is none.
FAULT_FREE_RUN_SECONDS: list[float] = []


def fresh_logical_date() -> datetime:
    """A new batch per call, in the past: the scheduler does not run a run whose logical date is still to come."""
    time.sleep(1)  # two calls never share a second
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@dataclass
class SchedulerRun:
    """A run as the REST API reports it, each try of each task, and which Celery worker ran each task's tries."""

    run: dict
    task_instances: list[dict]
    tries: dict[str, list[dict]]
    workers: dict[str, list[str]] = field(default_factory=dict)  # task -> the worker of each try, in order

    def failed_tries(self, task_id: str | None = None) -> int:
        """Tries that did not succeed: every try before a task's last one, and a last one that failed."""
        chosen = [self.tries[task_id]] if task_id else self.tries.values()
        return sum(len(tries) - 1 + (tries[-1]["state"] == "failed") for tries in chosen)

    def durations(self) -> dict[str, float]:
        return {ti["task_id"]: round(ti["duration"] or 0.0, 1) for ti in self.task_instances}

    def summary(self) -> dict:
        """What a run's artifact keeps: the run, each task's state, seconds and workers, the failed tries."""
        return {"run": self.run, "task_states": {ti["task_id"]: ti["state"] for ti in self.task_instances},
                "task_seconds": self.durations(), "workers": self.workers, "failed_tries": self.failed_tries()}

    @property
    def seconds(self) -> float:
        started, ended = (datetime.fromisoformat(self.run[key]) for key in ("start_date", "end_date"))
        return round((ended - started).total_seconds(), 1)


def trigger(api: airflow.RestClient, logical_date: datetime, conf: dict = CONF, dag_id: str = DAG_ID) -> str:
    """Unpause the DAG and create a run as the UI's Trigger form does; its run id."""
    api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run_id = f"cluster__{logical_date:%Y%m%dT%H%M%S}"
    created = api.post(f"/api/v2/dags/{dag_id}/dagRuns",
                       {"dag_run_id": run_id, "logical_date": logical_date.isoformat(), "conf": conf})
    assert created["run_type"] == "manual" and created["conf"] == conf
    return run_id


def collect(api: airflow.RestClient, dag_id: str, run_id: str, timeout: float = 900) -> SchedulerRun:
    """Wait for the run's end, then read its task instances, their tries and the workers' logs."""
    run = api.wait_for_run(dag_id, run_id, timeout)
    tis = api.task_instances(dag_id, run_id)
    tries = {ti["task_id"]: api.tries(dag_id, run_id, ti["task_id"]) for ti in tis}
    return SchedulerRun(run, tis, tries, workers_of(run_id))


def workers_of(run_id: str) -> dict[str, list[str]]:
    """Task -> the Celery worker that took each of its tries, from the workers' own logs."""
    pattern = re.compile(rf"Executing workload in Celery: .*?run_id={re.escape(run_id)}/task_id=(\w+)/attempt=(\d+)")
    taken: dict[str, dict[int, str]] = {}
    for worker in airflow.WORKERS:
        for task_id, attempt in pattern.findall(worker.log.read_text(errors="replace")):
            taken.setdefault(task_id, {})[int(attempt)] = worker.name
    return {task: [by_try[n] for n in sorted(by_try)] for task, by_try in taken.items()}


def task_log(dag_id: str, run_id: str, task_id: str, attempt: int = 1) -> Path:
    return (Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / f"dag_id={dag_id}" / f"run_id={run_id}"
            / f"task_id={task_id}" / f"attempt={attempt}.log")


def wait_for_log_line(path: Path, pattern: str, timeout: float = 300) -> float:
    """Until a line of a task's live log matches; the monotonic time it was seen."""
    regex, deadline = re.compile(pattern), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and regex.search(path.read_text(errors="replace")):
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"no line matching {pattern!r} in {path} within {timeout:.0f}s")


def wait_for_task_state(api: airflow.RestClient, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...],
                        timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")["state"] in states:
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{task_id} of {run_id} never reached {states} within {timeout:.0f}s")


def kafka_client_config(**overrides) -> dict:
    """The pipeline's Kafka connection (its SASL login) as a librdkafka config for the tests' own clients."""
    extra = json.loads(os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
    config = {k: v for k, v in extra.items() if k not in ("group.id", "auto.offset.reset")}
    return {**config, "log_level": 0, "socket.connection.setup.timeout.ms": 3000, **overrides}


def assert_batch_exact(batch: str, dag_id: str = DAG_ID) -> dict:
    """Exact counts at every hop (published = landed = produced = read = windows expected), the Kafka range equal
    to the landed lines (nothing doubled), every Cassandra window equal to the numpy reference, one metrics
    document. The Kafka offsets, for more checks."""
    counts = reconciliation(batch)["counts"]
    assert counts["published"] == counts["landed_in_hdfs"] == counts["produced_to_kafka"] == \
        counts["read_by_spark"] == SAMPLE_READINGS, counts
    assert counts["windows_written"] == counts["windows_expected"] == 2 * SAMPLE_WINDOWS + 13, counts
    offsets = assert_kafka_range_equals_landed(batch)
    assert offsets.messages == SAMPLE_READINGS
    assert assert_windows_equal_reference(batch, window_size=CONF["window_size"]) == 13 * WINDOWS_PER_RECORDING
    assert len(metrics_documents(f"{dag_id}__{batch}")) == 1
    return offsets


class MemorySampler(threading.Thread):
    """Every service's resident memory (its whole process tree: a Celery worker's tasks and their Spark driver, a
    Spark worker's executors) every 2 s; the peak of each and of their sum."""

    def __init__(self, services: list[Service]) -> None:
        super().__init__(daemon=True)
        self.services, self.peaks, self.peak_total = services, {s.name: 0 for s in services}, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(2):
            sizes = {s.name: s.rss_bytes() for s in self.services}
            self.peaks = {name: max(self.peaks[name], size) for name, size in sizes.items()}
            self.peak_total = max(self.peak_total, sum(sizes.values()))

    def __enter__(self) -> MemorySampler:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.halt.set()
        self.join()


def write_artifact(folder: str, name: str, content: dict) -> Path:
    path = ROOT / "test-artifacts" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, default=sorted) + "\n")
    return path
