"""Fault injection on the real local services: each case runs the main DAG on the bundled sample (a batch of
its own), stops, restarts or kills a real process at a set moment, and checks that the run still ends
successful with exact counts at every hop and exactly the reference's windows in Cassandra.

Moments are exact: tests/faults/dag_runner.py pauses the run inside the capture or the replay while the test
acts, or the test acts on a line of the run's log. Each case records the affected task's failed tries (Airflow's
retries, from 3 s in these runs: tests/faults/harness.py) and the time from the fault to that task's success
(report.json + summary).

`make test` (and CI) and `make faults` run all seven in five DAG runs: cases 3, 5 and 6 hit three different
stages of one run (the replay, the Spark job, the metrics), each recorded as its own case; case 7 re-runs the
session's sample batch (tests/sample_batch.py) instead of a batch of its own.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include import names
from tests.faults.harness import REPORT, DagRun, RunLog, save_report, utcnow
from tests.pipeline_checks import (
    SAMPLE_READINGS,
    SAMPLE_WINDOWS,
    assert_windows_equal_reference,
    cassandra_rows,
    final_state,
    metrics_documents,
    reconciliation,
)

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "faults"
DAG_ID = "parkinson_gait_pipeline"
# Batches of this session: from 2026-06-01 (the e2e tests use dates before May, the benchmark December).
BASE_DATE = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=int(time.time()) % 100_000)
CONF = {"capture_idle_seconds": 3, "bias_variance_rounds": 3, "cv_folds": 3}
# One reading per message: 13,650 messages, so the capture lands three chunks of 5,000 and acknowledges each.
SINGLE = {**CONF, "readings_per_message": 1}


def logical_date(case: int) -> datetime:
    return BASE_DATE + timedelta(hours=case)


def batch(case: int) -> str:
    from include.layout import batch_id

    return batch_id(logical_date(case), "")


@pytest.fixture(autouse=True)
def empty_capture_session():
    """Each case captures only its own batch: drop what earlier local runs left queued for the capture."""
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())


def start(case: int, conf: dict, pause: str | None = None, attempt: str = "") -> DagRun:
    return DagRun(DAG_ID, logical_date(case), conf, LOGS / f"case{case}{attempt}.log", pause=pause)


def assert_exact(run: RunLog, case: int, published: int | None = SAMPLE_READINGS) -> dict:
    """The run succeeded, every hop's count equals the sample's, and Cassandra holds exactly the reference.
    `published` is None when the run did not simulate (it captured what an earlier run published)."""

    assert run.ok, f"the DAG run ended {run.state}:\n{run.tail()}"
    report = reconciliation(batch(case))
    counts = report["counts"]
    assert report["ok"], report
    assert {k: counts[k] for k in ("published", "landed_in_hdfs", "produced_to_kafka", "read_by_spark",
                                   "dead_lettered", "windows_written", "windows_expected")} == {
        "published": published, "landed_in_hdfs": SAMPLE_READINGS, "produced_to_kafka": SAMPLE_READINGS,
        "read_by_spark": SAMPLE_READINGS, "dead_lettered": 0, "windows_written": SAMPLE_WINDOWS,
        "windows_expected": SAMPLE_WINDOWS}
    assert assert_windows_equal_reference(batch(case)) == SAMPLE_WINDOWS
    assert len(metrics_documents(f"{DAG_ID}__{batch(case)}")) == 1
    return counts


def record(case: int, fault: str, task_id: str, run: RunLog, fault_at: datetime, down_seconds: float | None,
           run_seconds: float, retries: int | None = None) -> dict:
    done = run.succeeded_at(task_id)
    entry = {"case": case, "fault": fault, "task": task_id, "passed": False,
             "retries": run.failed_tries(task_id) if retries is None else retries,
             "recovery_seconds": round((done - fault_at).total_seconds(), 1) if done else None,
             "service_down_seconds": None if down_seconds is None else round(down_seconds, 1),
             "run_seconds": round(run_seconds, 1)}
    REPORT.append(entry)
    save_report()
    return entry


def passed(entry: dict) -> None:
    entry["passed"] = True
    save_report()


def outage(run: DagRun, service, task_id: str, release: bool = False) -> tuple[datetime, float]:
    """Stop the service now (then let a paused run go on); start it again once a try of the task has
    failed, so the fault surely hit it. When the fault began, and for how many seconds the service was down."""
    fault_at = utcnow()
    began = time.monotonic()
    service.stop()
    if release:
        run.release()
    try:
        run.wait_for_state(task_id, ("up_for_retry", "failed"), timeout=300)
    finally:
        service.start()
    return fault_at, time.monotonic() - began


def test_1_mosquitto_restarted_while_the_capture_drains():
    """Part of the batch landed and acknowledged, the rest still in flight or queued: the broker restarts (its
    persistence keeps the durable session); the capture's try fails, the retry gets the rest redelivered."""
    from scripts.localservices import mosquitto

    run = start(1, SINGLE, pause="after_ack:1")
    run.wait_paused()
    fault_at = utcnow()
    began = time.monotonic()
    mosquitto.SERVICE.stop()
    mosquitto.SERVICE.start()
    down = time.monotonic() - began
    run.release()
    log = run.finish()
    entry = record(1, "Mosquitto restarted after the capture acknowledged its first chunk of three",
                   "capture_mqtt_to_hdfs", log, fault_at, down, run.seconds)
    assert entry["retries"] >= 1, "the restart should have failed the capture's try"
    assert_exact(log, 1)
    passed(entry)


def test_2_capture_killed_after_landing_a_chunk_before_acknowledging_it():
    """SIGKILL of the process running the capture, with its second chunk in HDFS but not acknowledged; the
    next attempt merges the landed parts and drops the redelivered copies."""
    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest

    run = start(2, SINGLE, pause="before_ack:2", attempt="-killed")
    run.wait_paused()
    fault_at = utcnow()
    run.kill()
    killed = RunLog.parse("".join(run.lines)).killed_tries("capture_mqtt_to_hdfs")
    assert killed == 1, "the capture's try should have been running when the process was killed"
    again = start(2, {**SINGLE, "simulate_sensors": False}, attempt="-retry")  # what was published is queued
    log = again.finish()
    entry = record(2, "process running the capture SIGKILLed with chunk 2 of 3 landed, not acknowledged",
                   "capture_mqtt_to_hdfs", log, fault_at, None, again.seconds,
                   retries=killed + log.failed_tries("capture_mqtt_to_hdfs"))
    manifest = read_manifest(hdfs_client(), batch(2))
    assert manifest.duplicates_dropped > 0, "the landed but unacknowledged chunk should come back as copies"
    assert_exact(log, 2, published=None)
    passed(entry)


def test_4_hdfs_datanode_restarted_during_landing():
    """The DataNode stops as the capture writes the batch's final files; the try fails, the DataNode comes
    back, the retry lands from the acknowledged parts (nothing is left in the broker to redeliver)."""
    from scripts.localservices import hdfs

    run = start(4, CONF, pause="before_land:1")
    run.wait_paused()
    fault_at, down = outage(run, hdfs.DATANODE, "capture_mqtt_to_hdfs", release=True)
    log = run.finish()
    entry = record(4, "HDFS DataNode stopped as the capture began its final landing, restarted after the failed try",
                   "capture_mqtt_to_hdfs", log, fault_at, down, run.seconds)
    assert entry["retries"] >= 1, "the outage should have failed a try"
    assert_exact(log, 4)
    passed(entry)


def test_3_5_6_kafka_cassandra_and_mongodb_outages_in_one_run():
    """Three outages at three stages of one run, each recorded as its own case:
    3. Kafka stops after 6,000 of 13,650 messages were produced and starts 5 s later; the idempotent producer
       delivers the rest (or the task retries); Spark reads exactly the recorded offsets.
    5. Cassandra stops as the Spark job starts its window phase (its next steps clear and write the batch's
       windows); the job fails, Cassandra comes back, the retried job rewrites every window.
    6. The MongoDB-wire server (FerretDB) stops as training starts, before the metrics are stored; the try of
       store_metrics fails naming the service and its connection, the retry stores them."""
    from scripts.localservices import cassandra, ferretdb, kafka

    run = start(3, CONF, pause="produce:6000", attempt="-5-6")
    run.wait_paused()
    kafka_at, began = utcnow(), time.monotonic()
    kafka.SERVICE.stop()
    run.release()
    time.sleep(5)  # the replay keeps producing into its local queue while the broker is away
    kafka.SERVICE.start()
    kafka_down = time.monotonic() - began
    run.wait_for_line(r"window_means: phase window_means started", timeout=600)
    cassandra_at, cassandra_down = outage(run, cassandra.SERVICE, "spark_window_means")
    run.wait_for_line(r"\[DAG TEST\] starting task_id=train_knn", timeout=600)
    mongo_at, mongo_down = outage(run, ferretdb.SERVICE, "store_metrics")
    log = run.finish()
    entries = [
        record(3, "Kafka stopped after 6,000 of 13,650 messages were produced, started 5 s later",
               "replay_hdfs_to_kafka", log, kafka_at, kafka_down, run.seconds),
        record(5, "Cassandra stopped as the Spark job reached its window and write phases, restarted after the "
                  "failed try", "spark_window_means", log, cassandra_at, cassandra_down, run.seconds),
        record(6, "MongoDB-wire server (FerretDB) stopped before the metrics were stored, started after the failed "
                  "try", "store_metrics", log, mongo_at, mongo_down, run.seconds),
    ]
    assert entries[0]["recovery_seconds"] is not None and entries[0]["recovery_seconds"] >= 5, \
        "the replay should have waited for Kafka to come back"
    assert entries[1]["retries"] >= 1 and entries[2]["retries"] >= 1, "each outage should have failed a try"
    assert "MongoDB behind connection 'mongo_default'" in log.text, "the failure should name the service"
    assert_exact(log, 3)
    for entry in entries:
        passed(entry)


def test_7_rerunning_the_whole_dag_for_the_same_batch_gives_an_identical_final_state(sample_run):
    """The session's sample batch (its run, then every task alone in tests/e2e) run again as a whole, with the
    same readings and malformed messages published again: every landed line, dead letter, window and feature
    value and the metrics (all but timestamps and this run's own offsets and gate) are identical, nothing is
    added, and every window row is this batch's again (other batches of the same recordings rewrote them)."""
    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest
    from tests import sample_batch

    before = final_state(sample_batch.batch(), sample_batch.DAG_ID)
    sample_batch.publish_malformed()  # redelivered copies must not add dead letters
    fault_at = utcnow()
    again = DagRun(DAG_ID, sample_batch.LOGICAL_DATE, sample_batch.CONF, LOGS / "case7-again.log")
    log = again.finish()
    assert log.ok, log.tail()
    entry = record(7, "the whole DAG run again for the same batch (same readings and malformed messages published "
                   "again)", "champion_gate", log, fault_at, None, again.seconds, retries=log.all_failed_tries())
    manifest = read_manifest(hdfs_client(), sample_batch.batch())
    assert manifest.new_readings == 0 and manifest.duplicates_dropped >= SAMPLE_READINGS
    after = final_state(sample_batch.batch(), sample_batch.DAG_ID)
    assert after["manifest"] == before["manifest"] and after["manifest"]["dead_letters"] == len(sample_batch.MALFORMED)
    assert after["landed"] == before["landed"] and after["dead_letters"] == before["dead_letters"]
    assert after["tables"] == before["tables"]
    assert assert_windows_equal_reference(sample_batch.batch()) == SAMPLE_WINDOWS  # this batch's rows again
    features = cassandra_rows(names.FEATURE_TABLE, sorted(manifest.recordings))
    assert {row["batch_id"] for row in features} == {sample_batch.batch()}
    report = reconciliation(sample_batch.batch())
    assert report["ok"] and report["counts"]["landed_in_hdfs"] == report["counts"]["read_by_spark"] == SAMPLE_READINGS
    assert len(after["metrics"]) == 1 and after["metrics"] == before["metrics"]
    assert entry["retries"] == 0
    passed(entry)
