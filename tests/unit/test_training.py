import numpy as np
import pytest

from include import gaitpdb
from include.training import (TrainingDataError, Windows, classification_metrics, load_verified, serialize,
                              train_and_evaluate)
from include.windowing import recording_windows


@pytest.fixture(scope="module")
def sample_windows() -> Windows:
    rows = []
    for recording_id, data in gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR):
        rows.extend(recording_windows(recording_id, data, 100))
    return Windows.from_rows(rows)


def test_counts(sample_windows):
    counts = sample_windows.counts()
    assert counts["windows"] == 130 and counts["recordings"] == 13 and counts["subjects"] == 12
    assert counts["subjects_per_class"] == {"control": 6, "parkinson": 6}


def test_train_and_evaluate(sample_windows):
    model, report = train_and_evaluate(sample_windows, k=5, n_splits=3, bv_rounds=3)
    honest = report["evaluation"]["subject_grouped_cv"]
    leaky = report["evaluation"]["leaky_random_split"]
    for metrics in (honest, leaky):
        assert {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix",
                "tp", "tn", "fp", "fn"} <= set(metrics)
        assert metrics["tp"] + metrics["tn"] + metrics["fp"] + metrics["fn"] == metrics["n"]
        assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["roc_auc"] <= 1
    assert honest["n"] == 130 and honest["folds"] == 3
    assert "leaky" in leaky["note"]
    bv = report["evaluation"]["bias_variance"]
    assert bv["rounds"] == 3 and bv["loss"] >= 0 and bv["variance"] >= 0
    assert model.predict(sample_windows.X[:5]).shape == (5,)


def test_grouped_folds_never_share_a_subject(sample_windows):
    from sklearn.model_selection import StratifiedGroupKFold

    for seed in range(5):
        folds = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=seed)
        for train, test in folds.split(sample_windows.X, sample_windows.y, sample_windows.subjects):
            assert not set(sample_windows.subjects[train]) & set(sample_windows.subjects[test])


def test_refuses_one_sided_data(sample_windows):
    only_patients = sample_windows.y == 1
    data = Windows(sample_windows.X[only_patients], sample_windows.y[only_patients],
                   sample_windows.subjects[only_patients], sample_windows.recordings[only_patients])
    with pytest.raises(TrainingDataError, match="subjects per class"):
        train_and_evaluate(data)


def test_metrics_known_values():
    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.2]))
    assert (metrics["tp"], metrics["tn"], metrics["fp"], metrics["fn"]) == (1, 1, 1, 1)
    assert metrics["accuracy"] == 0.5 and metrics["confusion_matrix"] == {"true_control": [1, 1], "true_parkinson": [1, 1]}


def test_artifact_checksum(sample_windows):
    model, _ = train_and_evaluate(sample_windows, k=3, n_splits=2, bv_rounds=2)
    blob, sha = serialize(model)
    assert load_verified(blob, sha).predict(sample_windows.X[:3]).shape == (3,)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ValueError, match="refusing"):
        load_verified(tampered, sha)
