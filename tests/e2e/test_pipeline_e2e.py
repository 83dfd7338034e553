"""End to end on the real local services: the main DAG on the bundled sample plus malformed messages,
run twice for the same batch (nothing duplicates), each task alone, and the nightly DAG."""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from include import gaitpdb, names
from include.features import GAIT_FEATURES, recording_feature_windows
from include.plots import HEIGHT, WIDTH, png_size
from scripts.demo import run_dag, run_task
from tests.pipeline_checks import (SAMPLE_READINGS, assert_windows_equal_reference, cassandra_rows, cassandra_windows,
                                   champion_document, metrics_documents, read_json)

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "e2e"
DAG_ID = "parkinson_gait_pipeline"
# A batch of its own per test session: leftovers of earlier local runs never mix in.
LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=int(time.time()) % 10_000_000)
CONF = {"capture_idle_seconds": 3, "bias_variance_rounds": 5, "cv_folds": 3}
NONCE = uuid.uuid4().hex[:8]
VALID = {"recording_id": "GaCo01_01", "seq": 5_000_000, "t": 0.0, "left": [1.0] * 8, "right": [1.0] * 8,
         "left_total": 8.0, "right_total": 8.0}
MALFORMED = [  # (topic, payload, expected reason); each unique, so none is taken for a redelivery
    ("gait/readings/GaCo01_01", f"not json {NONCE}".encode(), "not_json"),
    ("gait/readings/GaCo01_01", b"\xff\xfe" + NONCE.encode(), "bad_utf8"),
    ("gait/readings/GaCo01_01", b"[" + b" " * 300_000 + NONCE.encode() + b"]", "payload_too_large"),
    ("gait/readings/NotAnId", json.dumps({**VALID, "nonce": NONCE}).encode(), "bad_topic"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "left": [1.0] * 7, "t": 1.5}).encode(), "wrong_length"),
    ("gait/readings/GaCo01_01", json.dumps({k: v for k, v in VALID.items() if k != "seq"} | {"t": 2.5}).encode(),
     "missing_field"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "seq": "7", "t": 3.5}).encode(), "wrong_type"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "recording_id": "GaPt03_01", "t": 4.5}).encode(),
     "recording_mismatch"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "t": 5.5}).replace("5.5", "NaN").encode(), "not_finite"),
    ("gait/readings/GaCo01_01", json.dumps([VALID, {**VALID, "seq": -1}]).encode(), "negative_seq"),
    ("gait/readings/GaCo01_01", b"[]", "empty_batch"),
]


def batch() -> str:
    from gait_airflow.stages import batch_id

    return batch_id(LOGICAL_DATE, "")


def purge_capture_session() -> None:
    """Acknowledge whatever earlier local runs left queued for the capture client (CI starts empty)."""
    from gait_airflow.stages import discard_queued

    discard_queued()


def publish_malformed() -> None:
    from gait_airflow.hooks import MqttHook

    client = MqttHook(names.MQTT_CONN_ID).get_conn()
    client.loop_start()
    for topic, payload, _ in MALFORMED:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


@pytest.fixture(scope="module")
def first_run():
    purge_capture_session()
    publish_malformed()
    began = time.monotonic()
    ok, text = run_dag(DAG_ID, LOGICAL_DATE, CONF, LOGS / "pipeline-run1.log")
    assert ok, f"DAG run failed; log: {LOGS / 'pipeline-run1.log'}\n" + "\n".join(text.splitlines()[-30:])
    return {"seconds": time.monotonic() - began}


def test_capture_landed_every_valid_reading_and_dead_lettered_the_rest(first_run):
    from gait_airflow.stages import hdfs_client
    from include.capture import dead_letter_dir, read_lines, read_manifest

    store = hdfs_client()
    manifest = read_manifest(store, batch())
    assert manifest["readings"] == SAMPLE_READINGS
    assert manifest["recordings"] == {p.stem: 1050 for p in gaitpdb.recording_files(gaitpdb.SAMPLE_DIR)}
    assert manifest["dead_letters"] == len(MALFORMED)
    assert manifest["dead_letter_reasons"] == dict(Counter(reason for _, _, reason in MALFORMED))
    landed = sum(len(read_lines(store, f"{manifest['raw_dir']}/{r}.jsonl")) for r in manifest["recordings"])
    assert landed == SAMPLE_READINGS
    records = [json.loads(line) for line in read_lines(store, f"{dead_letter_dir(batch())}/dead_letters.jsonl")]
    assert len(records) == len(MALFORMED)
    for record in records:
        assert record["topic"].startswith("gait/readings/") and record["reason"] and record["received_at"]
        assert record["payload_encoding"] in ("utf-8", "base64") and record["payload"] is not None


def test_kafka_range_equals_landed_rows(first_run):
    from gait_airflow.stages import hdfs_client
    from include.replay import offsets_manifest_path

    offsets = read_json(hdfs_client(), offsets_manifest_path(batch()))
    assert offsets["messages"] == SAMPLE_READINGS
    assert sum(hi - lo for lo, hi in offsets["partitions"].values()) == SAMPLE_READINGS


def test_every_cassandra_window_equals_the_numpy_reference(first_run):
    assert assert_windows_equal_reference(batch()) == 130  # complete windows only: 10 per 1,050-row recording


def test_every_cassandra_feature_window_equals_the_numpy_reference(first_run):
    expected = {}
    for recording_id, rows in gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR):
        for window in recording_feature_windows(recording_id, rows, 300):
            expected[(recording_id, window["window_index"])] = window
    stored = {(r["recording_id"], r["window_index"]): r
              for r in cassandra_rows(names.FEATURE_TABLE, sorted({k[0] for k in expected}))}
    assert set(stored) == set(expected) and len(stored) == 39  # 3 complete 300-row windows per recording
    for key, want in expected.items():
        got = stored[key]
        assert got["batch_id"] == batch() and got["window_size"] == 300
        assert (got["subject_id"], got["label"]) == (want["subject_id"], want["label"])
        for field in ("t_start", "t_end", "body_load", *GAIT_FEATURES):
            assert got[field] == pytest.approx(want[field], rel=1e-6, abs=1e-9), (key, field)


def test_metrics_document_has_every_field(first_run):
    from gait_airflow.stages import hdfs_client

    docs = metrics_documents(f"{DAG_ID}__{batch()}")
    assert len(docs) == 1
    doc = docs[0]
    honest = doc["evaluation"]["subject_grouped_cv"]
    for metrics in (honest["window"], honest["subject"], doc["evaluation"]["leaky_random_split"]):
        for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix",
                    "tp", "tn", "fp", "fn"):
            assert key in metrics
    assert honest["window"]["n"] == 130 and honest["subject"]["n"] == 12
    assert len(honest["chosen_k_per_fold"]) == honest["folds"] == CONF["cv_folds"]
    assert doc["model"]["k"] in doc["model"]["k_grid"] and doc["model"]["feature_set"] == "means"
    assert "leaky" in doc["evaluation"]["leaky_random_split"]["note"]
    assert doc["evaluation"]["majority_class"]["subject_accuracy"] == 0.5
    assert set(doc["evaluation"]["bias_variance"]) >= {"loss", "bias", "variance", "rounds"}
    assert doc["evaluation"]["bias_variance"]["rounds"] == CONF["bias_variance_rounds"]
    assert doc["data"]["windows"] == 130 and doc["data"]["subjects"] == 12
    assert doc["data"]["windows_per_class"] == {"control": 70, "parkinson": 60}
    assert doc["params"]["window_size"] == 100 and doc["params"]["cv_folds"] == 3
    lineage = doc["lineage"]
    assert lineage["batch_id"] == batch() and lineage["kafka_offsets"]["messages"] == SAMPLE_READINGS
    assert lineage["raw_dir"] == names.raw_batch_dir(batch())
    reconciliation = lineage["reconciliation"]  # counts at every hop, checked by reconcile_counts
    assert reconciliation["ok"] and all(check["ok"] for check in reconciliation["checks"])
    assert {k: reconciliation["counts"][k] for k in ("published", "landed_in_hdfs", "dead_lettered",
                                                     "produced_to_kafka", "read_by_spark", "windows_written",
                                                     "windows_expected", "feature_windows_expected")} == {
        "published": SAMPLE_READINGS, "landed_in_hdfs": SAMPLE_READINGS, "dead_lettered": len(MALFORMED),
        "produced_to_kafka": SAMPLE_READINGS, "read_by_spark": SAMPLE_READINGS, "windows_written": 130,
        "windows_expected": 130, "feature_windows_expected": 39}
    assert doc["trained_at"] and doc["stored_at"] and doc["airflow_run_id"]
    store = hdfs_client()
    with store.read(doc["artifact"]["hdfs_path"]) as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == doc["artifact"]["sha256"]
    assert set(doc["plots"]) == {"confusion_matrix", "roc", "metrics_history"}
    for path in doc["plots"].values():
        with store.read(path) as reader:
            assert png_size(reader.read()) == (WIDTH, HEIGHT), path


def test_gate_recorded_its_decision(first_run):
    doc = metrics_documents(f"{DAG_ID}__{batch()}")[0]
    gate = doc["gate"]
    assert gate["metric"] == "subject_roc_auc" and gate["candidate_score"] == doc["gate_score"]
    assert gate["decision"] in ("first_model", "promoted", "kept", "already_champion") and gate["reason"]
    champion = champion_document()
    assert champion is not None
    if gate["promote"]:
        assert champion["run_id"] == doc["_id"] and champion["artifact"]["sha256"] == doc["artifact"]["sha256"]
    else:
        assert champion["run_id"] == gate["champion_run_id"] != doc["_id"]
        # the champion's recipe re-scored on this run's 13 recordings (12 subjects), whatever its feature set
        assert gate["champion_score"] is not None and gate["evaluated_on"]["subjects"] == 12
        assert gate["evaluated_on"]["fingerprint"] == doc["data"]["fingerprint"]


def test_second_run_of_the_same_batch_duplicates_nothing(first_run):
    from gait_airflow.stages import hdfs_client
    from include.capture import read_manifest

    publish_malformed()  # the same messages again: redeliveries must not add dead letters
    ok, text = run_dag(DAG_ID, LOGICAL_DATE, CONF, LOGS / "pipeline-run2.log")
    assert ok, "\n".join(text.splitlines()[-30:])
    manifest = read_manifest(hdfs_client(), batch())
    assert manifest["readings"] == SAMPLE_READINGS and manifest["dead_letters"] == len(MALFORMED)
    assert manifest["new_readings"] == 0 and manifest["duplicates_dropped"] >= SAMPLE_READINGS
    recordings = sorted(manifest["recordings"])
    assert len(cassandra_windows(recordings)) == 130
    assert len(metrics_documents(f"{DAG_ID}__{batch()}")) == 1


@pytest.mark.parametrize("task_id", ["capture_mqtt_to_hdfs", "replay_hdfs_to_kafka", "spark_window_means",
                                     "reconcile_counts", "train_knn", "store_metrics", "champion_gate"])
def test_each_task_alone_with_tasks_test(first_run, task_id):
    ok, text = run_task(DAG_ID, task_id, LOGICAL_DATE, LOGS / f"task-{task_id}.log")
    assert ok, "\n".join(text.splitlines()[-30:])


def test_a_batch_that_does_not_reconcile_fails_loudly(first_run):
    """One window fewer in the Spark summary than the landed rows make: reconcile_counts fails and says which."""
    from gait_airflow.stages import hdfs_client, spark_summary_path

    store, path = hdfs_client(), spark_summary_path(batch())
    original = read_json(store, path)
    store.write(path, data=json.dumps({**original, "windows_written": original["windows_written"] - 1}),
                overwrite=True, encoding="utf-8")
    try:
        ok, text = run_task(DAG_ID, "reconcile_counts", LOGICAL_DATE, LOGS / "task-reconcile-mismatch.log")
    finally:
        store.write(path, data=json.dumps(original), overwrite=True, encoding="utf-8")
    assert not ok and "does not reconcile: windows written = expected from the landed rows: 129 vs 130" in text
    ok, text = run_task(DAG_ID, "reconcile_counts", LOGICAL_DATE, LOGS / "task-reconcile-restored.log")
    assert ok, "\n".join(text.splitlines()[-30:])


def test_tasks_test_failure_is_detected_from_the_state():
    """`airflow tasks test` exits 0 even when the task fails; our helper must still see the failure."""
    ok, text = run_task(DAG_ID, "train_knn", datetime(2001, 1, 1, tzinfo=timezone.utc), LOGS / "task-fails.log")
    assert not ok and "has not been captured" in text


def test_nightly_retrain_gates_and_predicts_the_latest_batch(first_run):
    from gait_airflow.model_stages import latest_scored_batch
    from gait_airflow.stages import batch_id, hdfs_client
    from include.capture import read_manifest

    date = LOGICAL_DATE + timedelta(days=1)
    champion_before = champion_document()  # the main DAG's first run made one (the first model, in CI)
    ok, text = run_dag("parkinson_nightly_retrain", date, {"bias_variance_rounds": 3, "cv_folds": 3,
                                                           "feature_set": "gait"}, LOGS / "nightly.log")
    assert ok, "\n".join(text.splitlines()[-30:])
    run_id = f"parkinson_nightly_retrain__{batch_id(date, '')}"
    docs = metrics_documents(run_id)
    assert len(docs) == 1 and docs[0]["lineage"]["scope"] == "all" and docs[0]["data"]["windows"] >= 39
    assert docs[0]["model"]["feature_set"] == "gait" and len(docs[0]["model"]["features"]) == 32
    gate = docs[0]["gate"]
    assert gate["decision"] in ("promoted", "kept") and gate["champion_run_id"] == champion_before["run_id"]
    if gate["champion_score"] is not None:  # the champion's recipe re-scored on the candidate's recordings
        assert gate["evaluated_on"]["champion_recipe"]["feature_set"] == champion_before["feature_set"]
        assert gate["evaluated_on"]["fingerprint"] == docs[0]["data"]["fingerprint"]
        assert (gate["decision"] == "promoted") == (gate["candidate_score"] > gate["champion_score"])
    champion = champion_document()
    assert champion["run_id"] == (run_id if gate["promote"] else champion_before["run_id"])
    store = hdfs_client()
    latest = latest_scored_batch(store)  # this session's batch in CI; a later one may exist locally
    recordings = sorted(read_manifest(store, latest)["recordings"])
    predictions = cassandra_rows(names.PREDICTION_TABLE, recordings)
    by_model = [p for p in predictions if p["model_run"] == champion["run_id"]]
    assert len(by_model) == len(recordings)
    for row in by_model:
        assert 0 <= row["probability"] <= 1 and row["label"] == int(row["probability"] >= row["threshold"])
        assert row["actual_label"] == gaitpdb.parse_recording_id(row["recording_id"]).label
        assert row["windows"] > 0 and row["batch_id"] == latest

    # a second run of the prediction task upserts: still one row per recording and model run
    ok, text = run_task("parkinson_nightly_retrain", "predict_latest_batch", date, LOGS / "task-predict-again.log")
    assert ok, "\n".join(text.splitlines()[-30:])
    again = cassandra_rows(names.PREDICTION_TABLE, [r["recording_id"] for r in by_model])
    assert len([p for p in again if p["model_run"] == champion["run_id"]]) == len(recordings)
    assert min(p["predicted_at"] for p in again if p["model_run"] == champion["run_id"]) > \
        max(p["predicted_at"] for p in by_model)


def test_tampered_champion_artifact_is_refused(first_run):
    """Predictions load the champion only if its bytes match the registry's sha256."""
    from gait_airflow.model_stages import load_champion
    from gait_airflow.stages import hdfs_client
    from airflow.providers.mongo.hooks.mongo import MongoHook

    store = hdfs_client()
    champion = champion_document()
    path = champion["artifact"]["hdfs_path"]
    with store.read(path) as reader:
        original = reader.read()
    store.write(path, data=original + b"tampered", overwrite=True)
    try:
        with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook, pytest.raises(ValueError, match="refusing"):
            load_champion(store, hook)
    finally:
        store.write(path, data=original, overwrite=True)
    with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook:
        entry, model = load_champion(store, hook)
    assert entry["_id"] == champion["run_id"] and hasattr(model, "predict_proba")


def test_mongo_down_gives_a_readable_failure_and_the_retry_succeeds(first_run):
    """A service that is down: the task fails naming the service and what to check; once it is back,
    running the task again succeeds (what Airflow's retry does)."""
    from scripts.localservices import ferretdb

    ferretdb.SERVICE.stop()
    try:
        ok, text = run_task(DAG_ID, "store_metrics", LOGICAL_DATE, LOGS / "task-store-metrics-mongo-down.log")
        assert not ok
        assert "MongoDB behind connection 'mongo_default'" in text and "make status" in text
    finally:
        ferretdb.SERVICE.start()
    ok, text = run_task(DAG_ID, "store_metrics", LOGICAL_DATE, LOGS / "task-store-metrics-mongo-back.log")
    assert ok, "\n".join(text.splitlines()[-30:])
    assert len(metrics_documents(f"{DAG_ID}__{batch()}")) == 1
