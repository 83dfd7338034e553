"""The typed records between stages: each round-trips through its JSON, refuses another version or a malformed
file with one readable BadInput line, and the Kafka range knows what consumers can read."""
from __future__ import annotations

import msgspec
import pytest

from include.errors import BadInput
from include.layout import BatchLayout, ModelLayout, batch_of
from include.records import KafkaOffsets, Reconciliation, SparkSummary, TrainingReport, decode, encode

OFFSETS = KafkaOffsets(batch_id="b", topic="gait.readings", partitions={0: (10, 15), 2: (0, 0)}, messages=5,
                       recordings=["GaCo01_01"], produced_at="2026-12-02T00:00:00Z")


def test_a_record_round_trips_and_names_its_version():
    data = encode(OFFSETS)
    assert b'"record":"kafka_offsets/1"' in data and b'"0":[10,15]' in data  # what Spark's options take
    assert decode(data, KafkaOffsets, "here") == OFFSETS


@pytest.mark.parametrize("data, says", [
    (encode(OFFSETS).replace(b"kafka_offsets/1", b"kafka_offsets/0"), "Invalid value 'kafka_offsets/0'"),
    (encode(OFFSETS).replace(b'"messages":5', b'"messages":"5"'), "Expected `int`"),
    (b'{"batch_id": "b"', "truncated"),
    (b"[]", "Expected `object`"),
])
def test_another_version_or_a_malformed_file_is_bad_input(data, says):
    with pytest.raises(BadInput, match="hdfs://x is not a valid KafkaOffsets record") as raised:
        decode(data, KafkaOffsets, "hdfs://x")
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_records_of_one_kind_are_not_read_as_another():
    summary = SparkSummary(batch_id="b", window_size=100, include_partial=False, feature_window_size=0,
                           kafka_messages_expected=5, kafka_offsets=OFFSETS.partitions)
    with pytest.raises(BadInput, match="Invalid value 'spark_summary/1'"):
        decode(encode(summary), KafkaOffsets, "x")


def test_inconsistent_ranges_are_named():
    assert OFFSETS.inconsistency() is None
    wrong = msgspec.structs.replace(OFFSETS, messages=6)
    assert wrong.inconsistency() == "6 messages vs ranges {0: (10, 15), 2: (0, 0)}"
    assert msgspec.structs.replace(OFFSETS, partitions={0: (15, 10)}).inconsistency() is not None


@pytest.mark.parametrize("watermarks, pending, lost", [
    ({0: (0, 15), 2: (0, 0)}, [], []),          # every range readable (an empty range needs nothing)
    ({0: (0, 14), 2: (0, 0)}, [0], []),         # the last message is not yet on the in-sync replicas
    ({0: (11, 15), 2: (0, 0)}, [], [0]),        # retention deleted the range's first message
    ({2: (0, 0)}, [0], []),                     # a partition that reports nothing yet
])
def test_kafka_range_readability(watermarks, pending, lost):
    assert OFFSETS.unreadable(watermarks) == (pending, lost)


def test_the_registry_entry_keeps_mongo_field_names():
    fields = {field.encode_name for field in msgspec.structs.fields(TrainingReport)}
    assert "_id" in fields and "run_id" not in fields
    assert {"checks", "counts", "ok"} <= {field.name for field in msgspec.structs.fields(Reconciliation)}


def test_one_module_owns_the_batch_layout():
    layout = BatchLayout("20261202T020000")
    assert layout.raw_dir == "/data/parkinson/raw/batch=20261202T020000"
    assert layout.capture_manifest == f"{layout.raw_dir}/_SUCCESS"
    assert layout.recording_file("GaCo01_01") == f"{layout.raw_dir}/GaCo01_01.jsonl"
    assert layout.kafka_offsets.startswith("/data/parkinson/manifests/batch=20261202T020000/")
    assert len({layout.simulated, layout.kafka_offsets, layout.spark_summary, layout.reconciliation}) == 4
    assert ModelLayout("r").plot("roc") == "/models/parkinson_knn/r/plots/roc.png"
    assert batch_of("batch=x") == "x" and batch_of("_tmp") is None


CHAMPION_V1 = {"_id": "parkinson_knn", "record": "champion/1", "run_id": "r1", "metric": "subject_roc_auc",
               "score": 0.7, "previous_run_id": None, "previous_score_on_same_data": None, "feature_set": "gait",
               "k": 25, "window_size": 300, "reason": "first", "promoted_at": "t",
               "artifact": {"hdfs_path": "/m", "sha256": "0" * 64, "bytes": 1, "format": "pickle"}}


def test_a_registry_document_of_the_first_version_is_read_as_a_knn_recipe():
    from include.records import Champion, Recipe, from_document

    champion = from_document(CHAMPION_V1, Champion)
    assert champion.recipe == Recipe(feature_set="gait", window_size=300, estimator="knn", params={"k": 25})
    assert str(champion.recipe) == "knn k=25 on gait windows of 300"


def test_a_training_report_of_the_first_version_is_read_with_its_knn_fields_renamed():
    from include.records import from_document, to_document

    metrics = {"accuracy": 1.0, "balanced_accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0,
               "confusion_matrix": {}, "tp": 1, "tn": 1, "fp": 0, "fn": 0, "n": 2}
    v1 = {
        "_id": "d__b", "record": "training_report/1", "dag_id": "d", "batch_id": "b", "status": "trained",
        "trained_at": "t", "lineage": {"scope": "all", "windows_table": "t"},
        "data": {"windows": 2, "recordings": 2, "subjects": 2, "windows_per_class": {"control": 1, "parkinson": 1},
                 "subjects_per_class": {"control": 1, "parkinson": 1}},
        "params": {"window_size": 100, "feature_window_size": 300, "feature_set": "means", "knn_k_grid": [1, 5],
                   "cv_folds": 2, "bias_variance_rounds": 1, "seed": 1},
        "model": {"feature_set": "means", "type": "KNeighborsClassifier", "k": 5, "weights": "uniform",
                  "scaling": "StandardScaler", "features": ["a"], "k_grid": [1, 5], "k_selection": "cv",
                  "k_selection_scores": {"1": 0.5, "5": 0.6}},
        "evaluation": {
            "subject_grouped_cv": {"window": metrics, "subject": metrics, "folds": 2, "chosen_k_per_fold": [5, 1],
                                   "k_selection": "nested"},
            "leaky_random_split": metrics,
            "majority_class": {"window_accuracy": 0.5, "subject_accuracy": 0.5, "balanced_accuracy": 0.5,
                               "roc_auc": 0.5, "note": ""},
            "bias_variance": {"loss": 0, "bias": 0, "variance": 0, "rounds": 1, "holdout_subjects": 1,
                              "holdout_windows": 1, "holdout_windows_available": 1}},
        "gate": {"decision": "kept", "promote": False, "reason": "r", "decided_at": "t",
                 "evaluated_on": {"windows": 2, "subjects": 2, "folds": 2, "fingerprint": "f",
                                  "champion_recipe": {"feature_set": "means", "k": 9, "window_size": 100}}},
    }
    report = from_document(v1, TrainingReport)
    assert report.model.params == {"k": 5} and report.model.grid == [1, 5] and report.params.grid == [1, 5]
    assert report.model.description["type"] == "KNeighborsClassifier" and report.params.estimator == "knn"
    assert report.evaluation.subject_grouped_cv.chosen_per_fold == [5, 1]
    assert report.gate.evaluated_on.champion_recipe.params == {"k": 9}
    assert str(report.recipe) == "knn k=5 on means windows of 100"
    assert to_document(report)["record"] == "training_report/2"
