"""KNN on window means: subject-grouped evaluation (the honest figure), the tutorial's random split
(leaky, kept for comparison), mlxtend's bias-variance decomposition, and the final model artifact."""
from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_score, recall_score, roc_auc_score)
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from include.gaitpdb import CHANNELS

FEATURES = CHANNELS


class TrainingDataError(ValueError):
    """Too little or one-sided data to train and evaluate honestly."""


@dataclass
class Windows:
    X: np.ndarray  # (n, 18) window means
    y: np.ndarray  # 1 = Parkinson's
    subjects: np.ndarray
    recordings: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[dict]) -> "Windows":
        rows = sorted(rows, key=lambda r: (r["recording_id"], r["window_index"]))
        return cls(X=np.array([[float(r[f]) for f in FEATURES] for r in rows]).reshape(-1, len(FEATURES)),
                   y=np.array([int(r["label"]) for r in rows], dtype=int),
                   subjects=np.array([r["subject_id"] for r in rows]),
                   recordings=np.array([r["recording_id"] for r in rows]))

    def counts(self) -> dict:
        return {"windows": int(len(self.y)), "recordings": int(len(set(self.recordings))),
                "subjects": int(len(set(self.subjects))),
                "windows_per_class": {"control": int((self.y == 0).sum()), "parkinson": int((self.y == 1).sum())},
                "subjects_per_class": {"control": int(len(set(self.subjects[self.y == 0]))),
                                       "parkinson": int(len(set(self.subjects[self.y == 1])))}}


def make_model(k: int) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=k))])


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict:
    predicted = (probability >= 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, predicted, labels=[0, 1]).ravel()
    both = len(set(y_true.tolist())) == 2
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, probability)) if both else None,
        # rows = true class, columns = predicted [control, parkinson] (no nested arrays: FerretDB v1 refuses them)
        "confusion_matrix": {"true_control": [int(tn), int(fp)], "true_parkinson": [int(fn), int(tp)]},
        "tp": int(tp), "tn": int(tn), "fp": int(fp), "fn": int(fn),
        "n": int(len(y_true)),
    }


def check_trainable(data: Windows, k: int, min_subjects_per_class: int = 2) -> None:
    counts = data.counts()["subjects_per_class"]
    if min(counts.values()) < min_subjects_per_class:
        raise TrainingDataError(f"need at least {min_subjects_per_class} subjects per class for grouped "
                                f"evaluation, have {counts}; capture more recordings first")
    if len(data.y) < 2 * k:
        raise TrainingDataError(f"{len(data.y)} windows are too few for k={k}")


def grouped_cv(data: Windows, k: int, n_splits: int, seed: int) -> tuple[dict, np.ndarray]:
    """Out-of-fold probabilities with subject-grouped, stratified folds: no subject in train and test."""
    per_class = data.counts()["subjects_per_class"]
    splits = max(2, min(n_splits, *per_class.values()))
    folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    probability = np.zeros(len(data.y))
    for train, test in folds.split(data.X, data.y, data.subjects):
        model = make_model(min(k, len(train))).fit(data.X[train], data.y[train])
        probability[test] = model.predict_proba(data.X[test])[:, 1]
    result = classification_metrics(data.y, probability)
    result["folds"] = splits
    return result, probability


def leaky_random_split(data: Windows, k: int, seed: int, test_size: float = 0.3) -> dict:
    """The original tutorial's figure: windows of one person land in train and test (leakage)."""
    train, test = train_test_split(np.arange(len(data.y)), test_size=test_size, stratify=data.y,
                                   random_state=seed)
    model = make_model(k).fit(data.X[train], data.y[train])
    return classification_metrics(data.y[test], model.predict_proba(data.X[test])[:, 1])


def bias_variance(data: Windows, k: int, rounds: int, seed: int, test_size: float = 0.3) -> dict:
    """mlxtend bias_variance_decomp (0-1 loss) on a subject-grouped hold-out."""
    from mlxtend.evaluate import bias_variance_decomp

    train, test = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
                       .split(data.X, data.y, data.subjects))
    loss, bias, variance = bias_variance_decomp(make_model(k), data.X[train], data.y[train], data.X[test],
                                                data.y[test], loss="0-1_loss", num_rounds=rounds,
                                                random_seed=seed)
    return {"loss": float(loss), "bias": float(bias), "variance": float(variance), "rounds": rounds,
            "holdout_subjects": int(len(set(data.subjects[test]))), "holdout_windows": int(len(test))}


def train_and_evaluate(data: Windows, k: int = 5, n_splits: int = 5, bv_rounds: int = 20,
                       seed: int = 42) -> tuple[Pipeline, dict]:
    """The final model (fit on all windows) and its evaluation document."""
    check_trainable(data, k)
    honest, _ = grouped_cv(data, k, n_splits, seed)
    majority = max(data.counts()["windows_per_class"].values()) / len(data.y)
    report = {
        "model": {"type": "KNeighborsClassifier", "k": k, "scaling": "StandardScaler", "features": list(FEATURES)},
        "data": data.counts(),
        "evaluation": {
            "subject_grouped_cv": honest,
            "leaky_random_split": {**leaky_random_split(data, k, seed),
                                   "note": "leaky (for comparison with the original tutorial): windows of the "
                                           "same subject are in train and test"},
            "majority_class_accuracy": float(majority),
            "bias_variance": bias_variance(data, k, bv_rounds, seed),
        },
        "seed": seed,
    }
    return make_model(k).fit(data.X, data.y), report


def serialize(model: Pipeline) -> tuple[bytes, str]:
    """Pickled model and its sha256 (checked again before the model is ever loaded)."""
    buffer = io.BytesIO()
    pickle.dump(model, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    blob = buffer.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()


def load_verified(blob: bytes, expected_sha256: str) -> Pipeline:
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected_sha256:
        raise ValueError(f"model artifact sha256 {actual} does not match the registry's {expected_sha256}; "
                         "refusing to load it")
    return pickle.loads(blob)  # noqa: S301 - only after the checksum matched the registry
