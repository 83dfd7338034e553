"""Small batches published by devices (the simulator off), on the real services: the most basic real use.

- One recording: its readings sit on one partition of the 3-partition topic; the Spark job reads exactly that
  partition's range. With window size 70, which no other batch uses, there is too little data anywhere for an
  honest evaluation: the model tasks record why (task log, registry, report page) and the gate skips.
- Two recordings keyed to the same partition, one control and one Parkinson's subject, with redelivered copies:
  the batch alone cannot be evaluated honestly, so training widens to every window in Cassandra (the session's
  sample batch guarantees enough subjects) and says so in the lineage.
Both runs end successful with their data landed, replayed and windowed exactly.
"""
from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include import gaitpdb
from scripts.demo import run_dag
from tests.faults.harness import RunLog
from tests.pipeline_checks import assert_kafka_range_equals_landed, assert_windows_equal_reference, metrics_documents

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "small-batches"
DAG_ID = "parkinson_gait_pipeline"
BASE_DATE = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=int(time.time()) % 100_000)
CONF = {"simulate_sensors": False, "capture_idle_seconds": 3, "bias_variance_rounds": 3, "cv_folds": 3}
# recording published -> sample file whose rows it carries; ids no other test uses (subjects 9x)
ONE = {"GaPt93_01": "GaPt03_01"}  # partition 2 of 3 (librdkafka's partitioner: CRC32 of the key)
ONE_WINDOW = 70  # a window size no other test writes (the e2e gate test writes 50 for the sample): 15 windows
PAIR = {"GaCo91_01": "GaCo01_01", "GaPt91_01": "GaPt04_01"}  # both on partition 0


def device_folder(case: str, recordings: dict[str, str]) -> Path:
    folder = LOGS / case
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for recording_id, source in recordings.items():
        shutil.copy(gaitpdb.SAMPLE_DIR / f"{source}.txt", folder / f"{recording_id}.txt")
    return folder


def publish(folder: Path, readings_per_message: int, max_rows: int = 0) -> dict:
    """What the insoles would send, published before the run (the DAG's simulator stays off)."""
    from gait_airflow.clients import mqtt_client
    from include.simulator import publish_recordings

    client = mqtt_client(client_id="")
    try:
        return publish_recordings(client, folder, batch_size=readings_per_message, max_rows=max_rows)
    finally:
        client.disconnect()


def run_case(case: str, day: int, conf: dict) -> tuple[str, RunLog]:
    from include.layout import batch_id

    date = BASE_DATE + timedelta(days=day)
    ok, text = run_dag(DAG_ID, date, {**CONF, **conf}, LOGS / f"{case}.log")
    log = RunLog.parse(text)
    assert ok, f"the run of {case} ended {log.state}:\n{log.tail()}"
    return batch_id(date, ""), log


@pytest.fixture(scope="module")
def one_recording():
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())
    folder = device_folder("one-recording", ONE)
    publish(folder, readings_per_message=1)
    batch, log = run_case("one-recording", 0, {"window_size": ONE_WINDOW})
    return {"batch": batch, "log": log, "folder": folder}


@pytest.fixture(scope="module")
def pair_on_one_partition(sample_run):
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())
    folder = device_folder("pair", PAIR)
    publish(folder, readings_per_message=25)
    publish(folder, readings_per_message=1, max_rows=120)  # a device re-sending its first 120 readings
    batch, log = run_case("pair", 1, {})
    return {"batch": batch, "log": log, "folder": folder}


def test_one_recording_is_read_from_its_one_partition(one_recording):
    offsets = assert_kafka_range_equals_landed(one_recording["batch"])
    assert list(offsets.partitions) == [2] and offsets.messages == 1050
    assert assert_windows_equal_reference(one_recording["batch"], one_recording["folder"], ONE_WINDOW) == 15


def test_one_recording_is_not_trained_and_says_why(one_recording):
    log, run_id = one_recording["log"], f"{DAG_ID}__{one_recording['batch']}"
    docs = metrics_documents(run_id)
    assert len(docs) == 1 and docs[0]["status"] == "not_trained"
    reason = docs[0]["reason"]
    assert "15 windows with 0 control and 1 Parkinson's subjects" in reason and "at least 2" in reason
    assert docs[0]["gate"]["decision"] == "not_trained" and docs[0]["gate"]["reason"] == reason
    assert docs[0]["lineage"]["widened_because"].startswith("15 windows")
    assert log.states["champion_gate"][-1][1] == "skipped" and "champion_gate skipped: no model to gate" in log.text
    assert all(log.failed_tries(task) == 0 for task in log.states), "a small batch must fail no try"


def test_one_recording_shows_on_the_report_page(one_recording):
    from gait_airflow.report_app import page

    html = page()
    assert f"{DAG_ID}__{one_recording['batch']}" in html and "not_trained" in html


def test_pair_on_one_partition_is_exact(pair_on_one_partition):
    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest

    batch = pair_on_one_partition["batch"]
    offsets = assert_kafka_range_equals_landed(batch)
    assert list(offsets.partitions) == [0] and offsets.messages == 2 * 1050
    manifest = read_manifest(hdfs_client(), batch)
    assert manifest.duplicates_dropped == 2 * 120 and manifest.recordings == {r: 1050 for r in PAIR}
    assert assert_windows_equal_reference(batch, pair_on_one_partition["folder"]) == 20


def test_pair_trains_on_every_window_and_says_so(pair_on_one_partition):
    log, run_id = pair_on_one_partition["log"], f"{DAG_ID}__{pair_on_one_partition['batch']}"
    doc = metrics_documents(run_id)[0]
    lineage = doc["lineage"]
    assert doc["status"] == "trained" and (lineage["requested_scope"], lineage["scope"]) == ("batch", "all")
    assert lineage["widened_because"].startswith("20 windows with 1 control and 1 Parkinson's subjects")
    assert doc["data"]["subjects_per_class"]["control"] >= 2 and doc["data"]["subjects_per_class"]["parkinson"] >= 2
    assert set(PAIR) <= set(doc["data"]["recording_ids"])
    assert doc["gate"]["decision"] in ("first_model", "promoted", "kept")
    assert all(log.failed_tries(task) == 0 for task in log.states), "a small batch must fail no try"
    assert "training on every window in Cassandra instead" in log.text
