"""The unchanged DAGs on the cluster profile's distributed Airflow (PostgreSQL, CeleryExecutor on Redis, two
workers): the main DAG triggered through the REST API with non-default Params as the UI's Trigger does, the
nightly DAG fired by its cron schedule, both executed by the scheduler and the Celery workers. While the main run
goes, every process's resident memory is sampled: the whole topology must stay under 12 GiB."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from include.layout import batch_id
from scripts.localservices import airflow, spark, topology
from tests.cluster_runs import (
    DAG_ID,
    FAULT_FREE_RUN_SECONDS,
    MemorySampler,
    assert_batch_exact,
    collect,
    fresh_logical_date,
    trigger,
    write_artifact,
)
from tests.pipeline_checks import metrics_documents

NIGHTLY = "parkinson_nightly_retrain"
MEMORY_LIMIT = 12 * 2**30  # the budget for the whole topology with Airflow


@pytest.fixture(scope="module")
def api() -> airflow.RestClient:
    return airflow.RestClient()


@pytest.fixture(scope="module")
def triggered_run(api):
    """The main DAG, unpaused and triggered as the UI's Trigger form does (non-default Params), on an empty queue,
    while every process's memory is sampled."""
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())
    logical_date = fresh_logical_date()
    services = [s for group in topology.groups("cluster") for s in group]
    with MemorySampler(services) as memory:
        result = collect(api, DAG_ID, trigger(api, logical_date))
    write_artifact("cluster", "triggered-run.json", result.summary())
    write_artifact("cluster", "memory.json", {"peak_total_bytes": memory.peak_total, "peak_bytes": memory.peaks})
    assert result.run["state"] == "success", {ti["task_id"]: ti["state"] for ti in result.task_instances}
    if result.failed_tries() == 0:
        FAULT_FREE_RUN_SECONDS.append(result.seconds)
    return batch_id(logical_date, ""), result, memory


def test_triggered_run_is_exact(triggered_run):
    """No try failed, every hop's count equals the sample's, the Kafka range equals the landed lines and is spread
    over the topic's six partitions, and Cassandra holds exactly the numpy reference for window size 50."""
    batch, result, _ = triggered_run
    assert result.failed_tries() == 0, result.tries
    offsets = assert_batch_exact(batch)
    assert len(offsets.partitions) == 6


def test_celery_workers_ran_every_task(triggered_run):
    """Each task ran once, on one of the two Celery workers (their own logs say which), and both took work."""
    _, result, _ = triggered_run
    assert set(result.workers) == {ti["task_id"] for ti in result.task_instances}
    assert all(len(workers) == 1 for workers in result.workers.values()), result.workers
    assert {w for workers in result.workers.values() for w in workers} == {w.name for w in airflow.WORKERS}


def test_spark_job_ran_its_executors_on_both_workers(triggered_run):
    """The master's and the workers' own JSON status: the job's application finished with one executor on each
    worker (none in the driver)."""
    batch, _, _ = triggered_run
    apps = [a for a in spark.master_state()["completedapps"] if a["name"] == f"parkinson-window-means-{batch}"]
    assert len(apps) == 1, [a["name"] for a in spark.master_state()["completedapps"]]
    executors = [(worker.name, e["id"], e["memory"]) for worker in spark.WORKERS
                 for e in worker.state()["finishedexecutors"] if e["appid"] == apps[0]["id"]]
    write_artifact("cluster", "spark-executors.json", {"application": apps[0], "executors": executors})
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
    write_artifact("cluster", "scheduled-run.json", result.summary())
    assert result.run["state"] == "success", {ti["task_id"]: ti["state"] for ti in result.task_instances}
    assert result.failed_tries() == 0
    assert len(metrics_documents(f"{NIGHTLY}__{batch_id(expected, '')}")) == 1
