"""The unchanged DAGs on the cluster profile's distributed Airflow (PostgreSQL, CeleryExecutor on Redis, two
workers): the main DAG triggered through the REST API with non-default Params as the UI's Trigger does, the
nightly DAG fired by its cron schedule, both executed by the scheduler and the Celery workers. While the main run
goes, every process's resident memory is sampled: the whole topology must stay under 12 GiB."""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.layout import batch_id
from scripts.localservices import airflow, spark, topology
from scripts.localservices.core import Service
from tests.pipeline_checks import (
    SAMPLE_READINGS,
    SAMPLE_WINDOWS,
    assert_kafka_range_equals_landed,
    assert_windows_equal_reference,
    metrics_documents,
    reconciliation,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "cluster"
DAG_ID = "parkinson_gait_pipeline"
NIGHTLY = "parkinson_nightly_retrain"
# A fresh batch per session, in the past: the scheduler does not run a run whose logical date is still to come.
LOGICAL_DATE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
CONF = {"capture_idle_seconds": 3, "bias_variance_rounds": 3, "cv_folds": 3, "window_size": 50}
MEMORY_LIMIT = 12 * 2**30  # the budget for the whole topology with Airflow


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


@dataclass
class SchedulerRun:
    """A run as the REST API reports it, each try of each task, and which Celery worker ran each task."""

    run: dict
    task_instances: list[dict]
    tries: dict[str, list[dict]]
    workers: dict[str, set[str]] = field(default_factory=dict)

    def failed_tries(self) -> int:
        """Tries that did not succeed: every try before a task's last one, and a last one that failed."""
        return sum(len(tries) - 1 + (tries[-1]["state"] == "failed") for tries in self.tries.values())

    def durations(self) -> dict[str, float]:
        return {ti["task_id"]: round(ti["duration"] or 0.0, 1) for ti in self.task_instances}


def collect(api: airflow.RestClient, dag_id: str, run_id: str) -> SchedulerRun:
    """Wait for the run's end, then read its task instances, their tries and the workers' logs."""
    run = api.wait_for_run(dag_id, run_id)
    tis = api.task_instances(dag_id, run_id)
    tries = {ti["task_id"]: api.tries(dag_id, run_id, ti["task_id"]) for ti in tis}
    workers: dict[str, set[str]] = {}
    pattern = re.compile(rf"Executing workload in Celery: .*?run_id={re.escape(run_id)}/task_id=(\w+)/attempt=")
    for worker in airflow.WORKERS:
        for task_id in pattern.findall(worker.log.read_text(errors="replace")):
            workers.setdefault(task_id, set()).add(worker.name)
    return SchedulerRun(run, tis, tries, workers)


def write_artifact(name: str, content: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_text(json.dumps(content, indent=2, default=sorted) + "\n")


@pytest.fixture(scope="module")
def api() -> airflow.RestClient:
    return airflow.RestClient()


@pytest.fixture(scope="module")
def triggered_run(api) -> tuple[str, SchedulerRun, MemorySampler]:
    """The main DAG, unpaused and triggered as the UI's Trigger form does (non-default Params), on an empty queue."""
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())
    api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run_id = f"cluster_suite__{LOGICAL_DATE:%Y%m%dT%H%M%S}"
    services = [s for group in topology.groups("cluster") for s in group]
    with MemorySampler(services) as memory:
        created = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns",
                           {"dag_run_id": run_id, "logical_date": LOGICAL_DATE.isoformat(), "conf": CONF})
        assert created["run_type"] == "manual" and created["conf"] == CONF
        result = collect(api, DAG_ID, run_id)
    write_artifact("triggered-run.json", {"run": result.run, "task_seconds": result.durations(),
                                          "workers": result.workers, "failed_tries": result.failed_tries()})
    write_artifact("memory.json", {"peak_total_bytes": memory.peak_total, "peak_bytes": memory.peaks})
    assert result.run["state"] == "success", {ti["task_id"]: ti["state"] for ti in result.task_instances}
    return batch_id(LOGICAL_DATE, ""), result, memory


def test_triggered_run_is_exact(triggered_run):
    """Every hop's count equals the sample's, no try failed, the batch's readings are spread over the topic's six
    partitions, and Cassandra holds exactly the numpy reference for the run's window size of 50."""
    batch, result, _ = triggered_run
    assert result.failed_tries() == 0, result.tries
    counts = reconciliation(batch)["counts"]
    assert counts["published"] == counts["landed_in_hdfs"] == counts["produced_to_kafka"] == \
        counts["read_by_spark"] == SAMPLE_READINGS
    assert counts["windows_written"] == counts["windows_expected"] == 2 * SAMPLE_WINDOWS + 13  # 21 per recording
    offsets = assert_kafka_range_equals_landed(batch)
    assert len(offsets.partitions) == 6 and offsets.messages == SAMPLE_READINGS
    assert assert_windows_equal_reference(batch, window_size=50) == 13 * 21
    assert len(metrics_documents(f"{DAG_ID}__{batch}")) == 1


def test_celery_workers_ran_every_task(triggered_run):
    """Each task ran once, on one of the two Celery workers (their own logs say which), and both took work."""
    _, result, _ = triggered_run
    assert set(result.workers) == {ti["task_id"] for ti in result.task_instances}
    assert all(len(workers) == 1 for workers in result.workers.values()), result.workers
    assert set().union(*result.workers.values()) == {w.name for w in airflow.WORKERS}, result.workers


def test_spark_job_ran_its_executors_on_both_workers(triggered_run):
    """The master's and the workers' own JSON status: the job's application finished with one executor on each
    worker (none in the driver)."""
    batch, _, _ = triggered_run
    apps = [a for a in spark.master_state()["completedapps"] if a["name"] == f"parkinson-window-means-{batch}"]
    assert len(apps) == 1, [a["name"] for a in spark.master_state()["completedapps"]]
    executors = [(worker.name, e["id"], e["memory"]) for worker in spark.WORKERS
                 for e in worker.state()["finishedexecutors"] if e["appid"] == apps[0]["id"]]
    write_artifact("spark-executors.json", {"application": apps[0], "executors": executors})
    assert sorted(name for name, *_ in executors) == ["spark-worker-1", "spark-worker-2"], executors


def test_topology_with_airflow_stays_under_12_gib(triggered_run):
    _, _, memory = triggered_run
    assert 0 < memory.peak_total < MEMORY_LIMIT, memory.peaks
    assert all(memory.peaks.values()), [name for name, peak in memory.peaks.items() if not peak]


def latest_tick(now: datetime, hour: int = 2) -> datetime:
    """The latest 02:00 UTC at or before now (the nightly DAG's cron, "0 2 * * *")."""
    tick = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return tick if tick <= now else tick - timedelta(days=1)


def forget_nightly_runs(api: airflow.RestClient) -> None:
    """A rerun on kept data: delete the DAG's records (the dag-processor adds it back, paused, on its next parse),
    so that unpausing it schedules the latest tick again."""
    if not api.get(f"/api/v2/dags/{NIGHTLY}/dagRuns?limit=1")["total_entries"]:
        return
    api.delete(f"/api/v2/dags/{NIGHTLY}")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if any(d["dag_id"] == NIGHTLY for d in api.get("/api/v2/dags?limit=100")["dags"]):
            return
        time.sleep(3)
    pytest.fail(f"{NIGHTLY} did not come back within 180 s of its deletion")


def test_nightly_cron_fires_under_the_scheduler(api, triggered_run):
    """Unpaused with catchup off, the scheduler creates and runs the run of the latest 02:00 tick, on the windows
    the triggered run wrote."""
    forget_nightly_runs(api)
    expected = latest_tick(datetime.now(UTC))
    api.patch(f"/api/v2/dags/{NIGHTLY}", {"is_paused": False})
    try:
        deadline, runs = time.monotonic() + 120, []
        while not runs and time.monotonic() < deadline:
            runs = api.get(f"/api/v2/dags/{NIGHTLY}/dagRuns?limit=10")["dag_runs"]
            time.sleep(2)
        assert len(runs) == 1, runs
        assert runs[0]["run_type"] == "scheduled"
        assert datetime.fromisoformat(runs[0]["logical_date"]) == expected
        result = collect(api, NIGHTLY, runs[0]["dag_run_id"])
    finally:
        api.patch(f"/api/v2/dags/{NIGHTLY}", {"is_paused": True})
    write_artifact("scheduled-run.json", {"run": result.run, "task_seconds": result.durations(),
                                          "workers": result.workers, "failed_tries": result.failed_tries()})
    assert result.run["state"] == "success", {ti["task_id"]: ti["state"] for ti in result.task_instances}
    assert result.failed_tries() == 0
    assert len(metrics_documents(f"{NIGHTLY}__{batch_id(expected, '')}")) == 1
