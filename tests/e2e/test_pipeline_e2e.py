"""End to end on the real local services: the main DAG on the bundled sample plus malformed messages (the
session's sample run, tests/sample_batch.py), every task of both DAGs alone, both branches of the champion gate,
deterministic errors failing at once, and the nightly DAG. (Running the whole DAG again for the same batch is
fault case 7, tests/faults.)"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from include import gaitpdb, names
from include.features import GAIT_FEATURES, recording_feature_windows
from include.layout import BatchLayout
from include.plots import HEIGHT, WIDTH, png_size
from scripts.demo import last_state, run_dag, run_task
from tests.pipeline_checks import (
    BLUE,
    ORANGE,
    SAMPLE_READINGS,
    assert_kafka_range_equals_landed,
    assert_windows_equal_reference,
    cassandra_rows,
    champion_document,
    metrics_documents,
    pixels_like,
)
from tests.sample_batch import CONF, DAG_ID, LOGICAL_DATE, LOGS, MALFORMED, batch

NIGHTLY = "parkinson_nightly_retrain"
NIGHTLY_DATE = LOGICAL_DATE + timedelta(days=1)
NIGHTLY_CONF = {"bias_variance_rounds": 3, "cv_folds": 3, "feature_set": "gait"}


def returned(text: str):
    """The value a @task returned, from its `Done. Returned value was: ...` log line."""
    found = re.findall(r"Done\. Returned value was: (.*?) \[airflow", text)
    assert found, "the task logged no return value"
    return ast.literal_eval(found[-1])


def task_alone(dag_id: str, task_id: str, date: datetime = LOGICAL_DATE, params: dict | None = None) -> str:
    """The task alone with `airflow tasks test`, the Params its DAG run had; its log text once it succeeded."""
    ok, text = run_task(dag_id, task_id, date, LOGS / f"task-{dag_id}-{task_id}.log",
                        params if params is not None else CONF)
    assert ok, "\n".join(text.splitlines()[-30:])
    return text


def test_capture_landed_every_valid_reading_and_dead_lettered_the_rest(sample_run):
    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest
    from include.filestore import read_lines

    store = hdfs_client()
    manifest = read_manifest(store, batch())
    assert manifest.readings == SAMPLE_READINGS
    assert manifest.recordings == {p.stem: 1050 for p in gaitpdb.recording_files(gaitpdb.SAMPLE_DIR)}
    assert manifest.dead_letters == len(MALFORMED)
    assert manifest.dead_letter_reasons == dict(Counter(reason for _, _, reason in MALFORMED))
    records = [json.loads(line) for line in read_lines(store, BatchLayout(batch()).dead_letter_file)]
    assert len(records) == len(MALFORMED)
    for record in records:
        assert record["topic"].startswith("gait/readings/") and record["reason"] and record["received_at"]
        assert record["payload_encoding"] in ("utf-8", "base64") and record["payload"] is not None


def test_kafka_range_read_back_equals_the_landed_lines(sample_run):
    offsets = assert_kafka_range_equals_landed(batch())
    assert offsets.messages == SAMPLE_READINGS and len(offsets.partitions) == names.KAFKA_PARTITIONS


def test_every_cassandra_window_equals_the_numpy_reference(sample_run):
    assert assert_windows_equal_reference(batch()) == 130  # complete windows only: 10 per 1,050-row recording


def test_every_cassandra_feature_window_equals_the_numpy_reference(sample_run):
    expected = {}
    for recording_id, rows in gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR):
        for window in recording_feature_windows(recording_id, rows, 300):
            expected[(recording_id, window["window_index"])] = window
    stored = {(r["recording_id"], r["window_index"]): r
              for r in cassandra_rows(names.FEATURE_TABLE, sorted({k[0] for k in expected})) if r["window_size"] == 300}
    assert set(stored) == set(expected) and len(stored) == 39  # 3 complete 300-row windows per recording
    for key, want in expected.items():
        got = stored[key]
        assert got["batch_id"] == batch() and got["window_size"] == 300
        assert (got["subject_id"], got["label"]) == (want["subject_id"], want["label"])
        for field in ("t_start", "t_end", "body_load", *GAIT_FEATURES):
            assert got[field] == pytest.approx(want[field], rel=1e-6, abs=1e-9), (key, field)


def test_metrics_document_has_every_field(sample_run):
    from gait_airflow.clients import hdfs_client

    docs = metrics_documents(f"{DAG_ID}__{batch()}")
    assert len(docs) == 1
    doc = docs[0]
    assert doc["status"] == "trained" and doc["lineage"]["scope"] == "batch"
    honest = doc["evaluation"]["subject_grouped_cv"]
    for metrics in (honest["window"], honest["subject"], doc["evaluation"]["leaky_random_split"]):
        for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix",
                    "tp", "tn", "fp", "fn"):
            assert key in metrics
    assert honest["window"]["n"] == 130 and honest["subject"]["n"] == 12
    assert len(honest["chosen_per_fold"]) == honest["folds"] == CONF["cv_folds"]
    model = doc["model"]
    assert model["estimator"] == "knn" and model["params"]["k"] in model["grid"] and model["feature_set"] == "means"
    assert "leaky" in doc["evaluation"]["leaky_random_split"]["note"]
    assert doc["evaluation"]["majority_class"]["subject_accuracy"] == 0.5
    assert set(doc["evaluation"]["bias_variance"]) >= {"loss", "bias", "variance", "rounds"}
    assert doc["evaluation"]["bias_variance"]["rounds"] == CONF["bias_variance_rounds"]
    assert doc["data"]["windows"] == 130 and doc["data"]["subjects"] == 12
    assert doc["data"]["windows_per_class"] == {"control": 70, "parkinson": 60}
    assert doc["params"]["window_size"] == 100 and doc["params"]["cv_folds"] == 3
    lineage = doc["lineage"]
    assert lineage["batch_id"] == batch() and lineage["kafka_offsets"]["messages"] == SAMPLE_READINGS
    assert lineage["raw_dir"] == BatchLayout(batch()).raw_dir
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
    plots = {}
    for name, path in doc["plots"].items():
        with store.read(path) as reader:
            plots[name] = reader.read()
        assert png_size(plots[name]) == (WIDTH, HEIGHT), path
    assert pixels_like(plots["roc"], BLUE) > 300 and pixels_like(plots["roc"], ORANGE) > 300, \
        "the ROC plot should draw the subject and the window curves"


def set_champion(document: dict | None) -> None:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook:
        hook.delete_one(names.CHAMPION_COLLECTION, {"_id": names.CHAMPION_ID}, mongo_db=names.MONGO_DB)
        if document:
            hook.insert_one(names.CHAMPION_COLLECTION, document, mongo_db=names.MONGO_DB)


def champion_with_recipe(run_id: str, feature_set: str, window_size: int, k: int) -> dict:
    from include.records import Artifact, Champion, Recipe, to_document

    recipe = Recipe(feature_set=feature_set, window_size=window_size, estimator="knn", params={"k": k})
    return to_document(Champion(
        id=names.CHAMPION_ID, run_id=run_id, recipe=recipe,
        metric="subject_roc_auc", score=0.6, previous_run_id=None, previous_score_on_same_data=None,
        artifact=Artifact(hdfs_path="/nowhere", sha256="0" * 64, bytes=0, format="none"), reason="set by a test",
        promoted_at="2026-01-01T00:00:00+00:00"))


def test_gate_promotes_a_better_model_and_keeps_the_champion_otherwise(sample_run):
    """Both branches on the sample batch, each from a champion set up for it. A candidate trained with k fixed
    to 5 (grid of one) has exactly the score of a champion whose recipe is k=5 on the same folds: the tie keeps
    the champion. A champion whose k exceeds every training fold predicts the prior (AUC 0.5): promoted."""
    from gait_airflow.clients import AirflowServices
    from gait_airflow.params import TRAINING_PARAMS
    from include.stages.gate import champion_gate
    from include.stages.train import train

    dag_id, services = "gate_test", AirflowServices()
    params = {name: param.value for name, param in TRAINING_PARAMS.items()}
    trained = train(services, batch(), dag_id,
                    {**params, "knn_k_grid": [5], "cv_folds": 3, "bias_variance_rounds": 2}, "batch")
    before = champion_document()
    try:
        set_champion(champion_with_recipe("an_earlier_run", "means", 100, 5))
        kept = champion_gate(services, batch(), dag_id)
        assert kept.decision == "kept" and kept.champion_score == kept.candidate_score
        assert champion_document()["run_id"] == "an_earlier_run"
        assert kept.evaluated_on.subjects == 12 and kept.evaluated_on.folds == 3

        set_champion(champion_with_recipe("a_weak_run", "means", 100, 1000))
        promoted = champion_gate(services, batch(), dag_id)
        assert promoted.decision == "promoted" and promoted.champion_score == pytest.approx(0.5)
        assert promoted.candidate_score == kept.candidate_score > 0.5
        champion = champion_document()
        assert champion["run_id"] == trained["run_id"] and champion["previous_run_id"] == "a_weak_run"
    finally:
        set_champion(before)


def test_gate_compares_a_champion_of_another_window_size_on_the_same_data(sample_run):
    """Windows of several sizes coexist (window_size is in the tables' key): after the Spark job ran the sample
    batch with windows of 50, its windows of 100 are still there, and a champion trained on windows of 50 is
    re-scored on the candidate's recordings (windows of 100) instead of being reported unavailable."""
    from gait_airflow.clients import AirflowServices
    from gait_airflow.params import TRAINING_PARAMS
    from include.stages.gate import champion_gate
    from include.stages.train import train

    services = AirflowServices()
    text = task_alone(DAG_ID, "spark_window_means", params={**CONF, "window_size": 50})
    assert "-> 273 windows of 50" in text
    assert assert_windows_equal_reference(batch(), window_size=50) == 13 * 21
    assert assert_windows_equal_reference(batch()) == 130
    params = {name: param.value for name, param in TRAINING_PARAMS.items()}
    train(services, batch(), "gate_test", {**params, "knn_k_grid": [5], "cv_folds": 3, "bias_variance_rounds": 2},
          "batch")
    before = champion_document()
    try:
        set_champion(champion_with_recipe("a_run_on_windows_of_50", "means", 50, 5))
        decision = champion_gate(services, batch(), "gate_test")
    finally:
        set_champion(before)
    assert decision.champion_score is not None, decision.reason
    assert decision.evaluated_on.champion_recipe.window_size == 50
    assert decision.evaluated_on.subjects == 12 and decision.decision in ("promoted", "kept")
    assert (decision.decision == "promoted") == (decision.candidate_score > decision.champion_score)


MAIN_TASKS = [  # (task, what its log or return value must show); in the order the DAG runs them
    ("wait_for_mqtt", "the MQTT broker behind 'mqtt_default' accepted a connection"),
    ("wait_for_hdfs", f"Poking for file {names.HDFS_RAW_DIR}"),
    ("ensure_capture_session", None),
    ("simulate_sensors", {"simulated": True, "readings": SAMPLE_READINGS}),
    ("capture_mqtt_to_hdfs", {"readings": SAMPLE_READINGS, "new_readings": 0, "dead_letters": len(MALFORMED)}),
    ("replay_hdfs_to_kafka", {"messages": SAMPLE_READINGS}),
    ("wait_for_batch_in_kafka", f"batch {batch()}: all {SAMPLE_READINGS} messages readable on {names.KAFKA_TOPIC}"),
    ("wait_for_cassandra_table", f"existence of table: {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}"),
    ("spark_window_means", "window_means: 13,650 messages read (13,650 distinct) -> 130 windows"),
    ("reconcile_counts", {"ok": True}),
    ("train_knn", {"params": None}),
    ("store_metrics", {"updated": True}),
    ("champion_gate", {"metric": "subject_roc_auc"}),
]


def check_output(text: str, expected) -> None:
    if isinstance(expected, str):
        assert expected in text, f"the task's log lacks {expected!r}"
    elif isinstance(expected, dict):
        value = returned(text)
        for key, want in expected.items():
            assert key in value and (want is None or value[key] == want), (key, value.get(key), want)
    else:
        assert returned(text) is None


@pytest.mark.parametrize("task_id, expected", MAIN_TASKS, ids=[t for t, _ in MAIN_TASKS])
def test_each_main_task_alone_with_tasks_test(sample_run, task_id, expected):
    text = task_alone(DAG_ID, task_id)
    check_output(text, expected)
    if task_id == "capture_mqtt_to_hdfs":  # the batch was published again by simulate_sensors alone
        assert returned(text)["duplicates_dropped"] >= SAMPLE_READINGS
    if task_id == "spark_window_means":
        assert_windows_equal_reference(batch())
    if task_id == "replay_hdfs_to_kafka":
        assert_kafka_range_equals_landed(batch())


def test_a_batch_that_does_not_reconcile_fails_at_once(sample_run):
    """One window fewer in the Spark summary than the landed rows make: reconcile_counts fails on its first try
    (a deterministic error: no retry) and says which counts disagree."""
    from gait_airflow.clients import hdfs_client
    from include.filestore import read_bytes

    store, path = hdfs_client(), BatchLayout(batch()).spark_summary
    original = read_bytes(store, path)
    changed = json.loads(original)
    changed["windows_written"] -= 1
    store.write(path, data=json.dumps(changed), overwrite=True, encoding="utf-8")
    try:
        ok, text = run_task(DAG_ID, "reconcile_counts", LOGICAL_DATE, LOGS / "task-reconcile-mismatch.log")
    finally:
        store.write(path, data=original, overwrite=True)
    assert not ok and "does not reconcile: windows written = expected from the landed rows: 129 vs 130" in text
    assert last_state(text) == "failed", "a deterministic error must not be retried"
    task_alone(DAG_ID, "reconcile_counts")


NEVER_CAPTURED = datetime(2001, 1, 1, tzinfo=UTC)
DETERMINISTIC = [  # (task, date, what its one line must say): each fails on its first try, no retry
    ("replay_hdfs_to_kafka", NEVER_CAPTURED, "has not been captured"),
    ("spark_window_means", NEVER_CAPTURED, "no offsets manifest at /data/parkinson/manifests/batch=20010101T000000"),
    ("reconcile_counts", NEVER_CAPTURED, "no KafkaOffsets at hdfs:///data/parkinson/manifests/batch=20010101T000000/"),
    ("train_knn", NEVER_CAPTURED, "has not been captured"),
    ("store_metrics", NEVER_CAPTURED, "no TrainingReport at"),
    ("champion_gate", NEVER_CAPTURED, "no TrainingReport at"),
]


@pytest.mark.parametrize("task_id, date, message", DETERMINISTIC, ids=[t for t, _, _ in DETERMINISTIC])
def test_deterministic_errors_fail_on_the_first_try(task_id, date, message):
    """`airflow tasks test` exits 0 even when the task fails: the state is read from the log. A deterministic
    error goes straight to failed (a transient one would go to up_for_retry)."""
    ok, text = run_task(DAG_ID, task_id, date, LOGS / f"task-{task_id}-bad-input.log")
    assert not ok and message in text
    assert last_state(text) == "failed"
    assert "AirflowFailException" in text and "(a deterministic error: not retried)" in text


@pytest.mark.parametrize("case", ["corrupt file", "unknown recording id"])
def test_bad_simulator_input_fails_at_once_and_publishes_nothing(tmp_path, case):
    """A corrupt recording file (the error names file and line) or a recording id the folder does not have:
    simulate_sensors fails on its first try, before its first publish."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "GaCo01_01.txt").write_bytes((gaitpdb.SAMPLE_DIR / "GaCo01_01.txt").read_bytes()[:5000] + b"x\t1\n")
    params, message = (({"source_path": str(folder)}, f"{folder / 'GaCo01_01.txt'}:") if case == "corrupt file" else
                       ({"recordings": ["GaCo99_01"]}, "unknown recording(s) ['GaCo99_01']"))
    log_path = LOGS / f"task-simulate-{case.replace(' ', '-')}.log"
    ok, text = run_task(DAG_ID, "simulate_sensors", NEVER_CAPTURED, log_path, params)
    assert not ok and message in text and "(a deterministic error: not retried)" in text
    assert last_state(text) == "failed"
    assert "simulator: " not in text  # neither progress nor the final count: nothing was published


@pytest.fixture(scope="module")
def nightly_run(sample_run):
    """The nightly DAG after the sample batch, with a champion whose recipe is weak (k larger than any fold:
    AUC 0.5), so its gate surely promotes the retrained model."""
    from include.layout import batch_id

    set_champion(champion_with_recipe("a_weak_run", "gait", 300, 1000))
    ok, text = run_dag(NIGHTLY, NIGHTLY_DATE, NIGHTLY_CONF, LOGS / "nightly.log")
    assert ok, "\n".join(text.splitlines()[-30:])
    return f"{NIGHTLY}__{batch_id(NIGHTLY_DATE, '')}"


def test_nightly_retrain_gates_and_predicts_the_latest_batch(nightly_run):
    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest
    from include.stages.predict import latest_scored_batch

    docs = metrics_documents(nightly_run)
    assert len(docs) == 1 and docs[0]["lineage"]["scope"] == "all" and docs[0]["data"]["windows"] >= 39
    assert docs[0]["model"]["feature_set"] == "gait" and len(docs[0]["model"]["features"]) == 32
    gate = docs[0]["gate"]
    assert gate["decision"] == "promoted" and gate["champion_run_id"] == "a_weak_run"
    assert gate["evaluated_on"]["champion_recipe"] == {"feature_set": "gait", "window_size": 300, "estimator": "knn",
                                                       "params": {"k": 1000}}
    assert gate["champion_score"] < gate["candidate_score"]
    assert gate["evaluated_on"]["fingerprint"] == docs[0]["data"]["fingerprint"]
    champion = champion_document()
    assert champion["run_id"] == nightly_run and champion["recipe"]["feature_set"] == "gait"
    store = hdfs_client()
    latest = latest_scored_batch(store)  # the session's latest batch in CI; a later one may exist locally
    recordings = sorted(read_manifest(store, latest).recordings)
    by_model = [p for p in cassandra_rows(names.PREDICTION_TABLE, recordings) if p["model_run"] == nightly_run]
    assert len(by_model) == len(recordings)
    for row in by_model:
        assert 0 <= row["probability"] <= 1 and row["label"] == int(row["probability"] >= row["threshold"])
        assert row["actual_label"] == gaitpdb.parse_recording_id(row["recording_id"]).label
        assert row["windows"] > 0 and row["batch_id"] == latest


NIGHTLY_TASKS = [
    ("wait_for_cassandra_table", f"existence of table: {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}"),
    ("wait_for_hdfs", f"Poking for file {names.HDFS_MODEL_DIR}"),
    ("train_knn", {"params": None}),
    ("store_metrics", {"updated": True}),
    ("champion_gate", {"decision": "already_champion"}),
    ("predict_latest_batch", {"model_run": None}),
]


@pytest.mark.parametrize("task_id, expected", NIGHTLY_TASKS, ids=[t for t, _ in NIGHTLY_TASKS])
def test_each_nightly_task_alone_with_tasks_test(nightly_run, task_id, expected):
    started = datetime.now(UTC)
    text = task_alone(NIGHTLY, task_id, NIGHTLY_DATE, NIGHTLY_CONF)
    check_output(text, expected)
    if task_id == "predict_latest_batch":  # upserts: one row per recording and model run, all from this try
        from gait_airflow.clients import hdfs_client
        from include.capture import read_manifest

        result = returned(text)
        recordings = sorted(read_manifest(hdfs_client(), result["batch_id"]).recordings)
        rows = [p for p in cassandra_rows(names.PREDICTION_TABLE, recordings) if p["model_run"] == nightly_run]
        assert result["model_run"] == nightly_run and len(rows) == len(recordings) == result["recordings"]
        assert all(row["predicted_at"].replace(tzinfo=UTC) >= started.replace(microsecond=0) -
                   timedelta(seconds=1) for row in rows)


def test_tampered_champion_artifact_is_refused(nightly_run):
    """Predictions load the champion only if its bytes match the registry's sha256."""
    from gait_airflow.clients import AirflowServices, hdfs_client
    from include.errors import IntegrityError
    from include.stages.predict import load_champion

    store = hdfs_client()
    champion = champion_document()
    path = champion["artifact"]["hdfs_path"]
    with store.read(path) as reader:
        original = reader.read()
    store.write(path, data=original + b"tampered", overwrite=True)
    try:
        with pytest.raises(IntegrityError, match="refusing"):
            load_champion(AirflowServices(), store)
    finally:
        store.write(path, data=original, overwrite=True)
    entry, model = load_champion(AirflowServices(), store)
    assert entry.run_id == champion["run_id"] and hasattr(model, "predict_proba")


def test_mongo_down_gives_a_readable_failure_and_the_retry_succeeds(sample_run):
    """A service that is down: the try fails naming the service and what to check and is left to the retries
    (up_for_retry, not failed); once the service is back, running the task again succeeds."""
    from scripts.localservices import ferretdb

    ferretdb.SERVICE.stop()
    try:
        ok, text = run_task(DAG_ID, "store_metrics", LOGICAL_DATE, LOGS / "task-store-metrics-mongo-down.log")
        assert not ok
        assert "MongoDB behind connection 'mongo_default'" in text and "make status" in text
        assert last_state(text) == "up_for_retry"
    finally:
        ferretdb.SERVICE.start()
    task_alone(DAG_ID, "store_metrics")
    docs = metrics_documents(f"{DAG_ID}__{batch()}")
    assert len(docs) == 1 and set(docs[0]["plots"]) == {"confusion_matrix", "roc", "metrics_history"}, \
        "a re-run of store_metrics keeps the gate's decision and history plot"
    assert docs[0]["gate"]["decision"]
