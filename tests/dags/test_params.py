"""Bad Params are refused before a run exists, with a message naming the Param: validated as the API server does
when a run is triggered (the serialized DAG's params merged with the run's conf, then validated)."""
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.exceptions import ParamValidationError
from airflow.serialization.serialized_objects import DagSerialization

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
PIPELINE, NIGHTLY = "parkinson_gait_pipeline", "parkinson_nightly_retrain"

TRAINING_BAD = [  # (param, bad value): both DAGs
    ("window_size", -5), ("window_size", 0), ("window_size", 1), ("window_size", 10_001), ("window_size", "100"),
    ("window_size", 2.5), ("window_size", True), ("window_size", None),
    ("feature_window_size", 9), ("feature_window_size", 10_001),
    ("feature_set", "magic"), ("feature_set", 1),
    ("knn_k_grid", []), ("knn_k_grid", [0]), ("knn_k_grid", [1002]), ("knn_k_grid", [1.5]), ("knn_k_grid", ["5"]),
    ("knn_k_grid", 5), ("knn_k_grid", list(range(1, 22))),
    ("cv_folds", 1), ("cv_folds", 0), ("cv_folds", 21), ("cv_folds", "5"),
    ("bias_variance_rounds", 0), ("bias_variance_rounds", 501),
    ("seed", -1), ("seed", "42"),
]
PIPELINE_BAD = [  # the pipeline DAG only
    ("recordings", ["nope"]), ("recordings", ["GaCo1_01"]), ("recordings", ["gaco01_01"]),
    ("recordings", ["GaCo01_01 "]), ("recordings", ["XxCo01_01"]), ("recordings", "GaCo01_01"), ("recordings", [1]),
    ("publish_rate", -1), ("publish_rate", -0.5), ("publish_rate", 1_000_001), ("publish_rate", 1e12),
    ("publish_rate", "fast"), ("publish_rate", True),
    ("readings_per_message", 0), ("readings_per_message", 1_001),
    ("max_rows_per_recording", -1),
    ("capture_max_messages", 0), ("capture_idle_seconds", 0), ("capture_max_seconds", 3_601),
    ("simulate_sensors", "yes"), ("train_scope", "everything"), ("source_path", 5),
]


@pytest.fixture(scope="module")
def dags():
    """The DAGs as the API server holds them (serialized, then deserialized)."""
    bag = DagBag(dag_folder=str(DAGS_DIR))
    return {dag_id: DagSerialization.from_dict(DagSerialization.to_dict(bag.dags[dag_id]))
            for dag_id in (PIPELINE, NIGHTLY)}


def validate(dag, conf: dict) -> dict:
    return dag.params.deep_merge(conf).validate()


@pytest.mark.parametrize("dag_id, name, value", [(d, n, v) for d in (PIPELINE, NIGHTLY) for n, v in TRAINING_BAD]
                         + [(PIPELINE, n, v) for n, v in PIPELINE_BAD])
def test_bad_value_is_refused_naming_the_param(dags, dag_id, name, value):
    with pytest.raises(ParamValidationError) as error:
        validate(dags[dag_id], {name: value})
    assert str(error.value).startswith(f"Invalid input for param {name}: "), str(error.value)


@pytest.mark.parametrize("dag_id, conf", [
    (PIPELINE, {}), (NIGHTLY, {}),
    (PIPELINE, {"window_size": 2, "feature_window_size": 10, "cv_folds": 2, "knn_k_grid": [1],
                "recordings": ["GaCo01_01", "SiPt40_02"], "publish_rate": 1_000_000, "readings_per_message": 1_000}),
    (NIGHTLY, {"window_size": 10_000, "cv_folds": 20, "knn_k_grid": [1_001] * 20, "bias_variance_rounds": 500}),
])
def test_defaults_and_bounds_are_accepted(dags, dag_id, conf):
    """The refusals above come from the bounds, not from a schema that refuses everything."""
    assert validate(dags[dag_id], conf) | conf == validate(dags[dag_id], conf)
