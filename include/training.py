"""An estimator (include/estimators.py; KNN by default) on window features, judged honestly.

- The figure every run is judged on: subject-grouped, stratified CV (no subject in train and test), at window
  level and at subject level (a subject's probability = the mean of its windows' out-of-fold probabilities).
- The estimator's hyperparameter (KNN: k) is chosen by nested grouped CV: inner folds on the outer training
  subjects only, never on a test fold.
- The tutorial's random window split is kept only as "leaky", beside the majority-class baseline.
- mlxtend's bias-variance decomposition on a subject-grouped hold-out.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GroupShuffleSplit, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from include.errors import BadInput, IntegrityError
from include.estimators import Estimator
from include.features import FEATURE_SETS
from include.records import (
    BiasVariance,
    DataSummary,
    Evaluation,
    HonestCV,
    MajorityBaseline,
    Metrics,
    ModelInfo,
    PerClass,
    Recipe,
)

INNER_FOLDS = 3
# mlxtend re-predicts the hold-out every round; a seeded sample of this many hold-out windows keeps the
# decomposition's cost bounded on the full dataset (about 10k hold-out windows) without changing its meaning.
BIAS_VARIANCE_MAX_TEST_WINDOWS = 2_000
GATE_METRIC = "subject_roc_auc"  # subject-level ROC AUC under subject-grouped CV
LEAKY_NOTE = "leaky (for comparison with the original tutorial): windows of the same subject are in train and test"


class TrainingDataError(BadInput, ValueError):
    """Too little or one-sided data to train and evaluate honestly."""


@dataclass
class Windows:
    X: np.ndarray  # (n, len(features))
    y: np.ndarray  # 1 = Parkinson's
    subjects: np.ndarray
    recordings: np.ndarray
    features: tuple[str, ...]

    @classmethod
    def from_rows(cls, rows: list[dict], feature_set: str = "means") -> Windows:
        features = FEATURE_SETS[feature_set].columns
        rows = sorted(rows, key=lambda r: (r["recording_id"], r["window_index"]))
        return cls(
            X=np.array([[float(r[f]) for f in features] for r in rows]).reshape(-1, len(features)),
            y=np.array([int(r["label"]) for r in rows], dtype=int),
            subjects=np.array([r["subject_id"] for r in rows]),
            recordings=np.array([r["recording_id"] for r in rows]),
            features=tuple(features),
        )

    def counts(self) -> DataSummary:
        return DataSummary(
            windows=int(len(self.y)),
            recordings=int(len(set(self.recordings))),
            subjects=int(len(set(self.subjects))),
            windows_per_class=PerClass(int((self.y == 0).sum()), int((self.y == 1).sum())),
            subjects_per_class=PerClass(
                int(len(set(self.subjects[self.y == 0]))), int(len(set(self.subjects[self.y == 1])))
            ),
        )

    def summary(self) -> DataSummary:
        """The counts, the fingerprint and the recordings: what a report records of its evaluation data."""
        summary = self.counts()
        summary.fingerprint, summary.recording_ids = self.fingerprint(), sorted(set(self.recordings.tolist()))
        return summary

    def fingerprint(self) -> str:
        """Identifies the evaluation data (which recordings, which labels): figures compare only if equal."""
        digest = hashlib.sha256()
        for recording, label in sorted(set(zip(self.recordings.tolist(), self.y.tolist()))):
            digest.update(f"{recording}:{label}\n".encode())
        return digest.hexdigest()


def classification_metrics(y_true: np.ndarray, probability: np.ndarray, **extra) -> Metrics:
    predicted = (probability >= 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, predicted, labels=[0, 1]).ravel()
    both = len(set(y_true.tolist())) == 2
    return Metrics(
        accuracy=float(accuracy_score(y_true, predicted)),
        balanced_accuracy=float(balanced_accuracy_score(y_true, predicted)),
        precision=float(precision_score(y_true, predicted, zero_division=0)),
        recall=float(recall_score(y_true, predicted, zero_division=0)),
        f1=float(f1_score(y_true, predicted, zero_division=0)),
        roc_auc=float(roc_auc_score(y_true, probability)) if both else None,
        # rows = true class, columns = predicted [control, parkinson] (no nested arrays: FerretDB v1 refuses them)
        confusion_matrix={"true_control": [int(tn), int(fp)], "true_parkinson": [int(fn), int(tp)]},
        tp=int(tp),
        tn=int(tn),
        fp=int(fp),
        fn=int(fn),
        n=int(len(y_true)),
        **extra,
    )


def subject_level(
    subjects: np.ndarray, y: np.ndarray, probability: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subject: (ids, label, mean of its windows' probabilities)."""
    ids, inverse = np.unique(subjects, return_inverse=True)
    counts = np.bincount(inverse)
    return (
        ids,
        (np.bincount(inverse, weights=y) / counts).round().astype(int),
        np.bincount(inverse, weights=probability) / counts,
    )


MIN_SUBJECTS_PER_CLASS = 2  # subject-grouped CV needs a subject of each class on both sides of every split


def untrainable(data: Windows, min_subjects_per_class: int = MIN_SUBJECTS_PER_CLASS) -> str | None:
    """Why these windows cannot train and evaluate a model honestly, or None when they can."""
    counts = data.counts().subjects_per_class
    if min(counts.control, counts.parkinson) < min_subjects_per_class:
        return (
            f"{len(data.y)} windows with {counts.control} control and {counts.parkinson} Parkinson's "
            f"subjects: subject-grouped evaluation needs at least {min_subjects_per_class} subjects per class"
        )
    return None


def check_trainable(data: Windows) -> None:
    reason = untrainable(data)
    if reason:
        raise TrainingDataError(f"{reason}; capture more recordings first")


def grouped_folds(y: np.ndarray, subjects: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds drawn over subjects (stratified by their label), then mapped to their windows: no subject on both
    sides, and the same subjects fall in the same fold whatever windows (feature set, window size) they have."""
    ids, inverse = np.unique(subjects, return_inverse=True)
    labels = np.bincount(inverse, weights=y) / np.bincount(inverse) >= 0.5
    splits = max(2, min(n_splits, int(labels.sum()), int((~labels).sum())))
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    return [
        (np.flatnonzero(np.isin(inverse, train)), np.flatnonzero(np.isin(inverse, test)))
        for train, test in folds.split(ids, labels)
    ]


def subject_auc(y: np.ndarray, subjects: np.ndarray, probability: np.ndarray) -> float:
    _, y_subject, p_subject = subject_level(subjects, y, probability)
    return float(roc_auc_score(y_subject, p_subject)) if len(set(y_subject.tolist())) == 2 else 0.5


def select_value(
    estimator: Estimator,
    X: np.ndarray,
    y: np.ndarray,
    subjects: np.ndarray,
    grid: tuple[int, ...],
    seed: int,
    n_splits: int = INNER_FOLDS,
) -> tuple[int, dict[int, float]]:
    """The grid value with the best mean subject-level ROC AUC over grouped folds of these subjects (ties: the
    smaller value, the simpler KNN)."""
    scores: dict[int, list[float]] = {value: [] for value in grid}
    for train, test in grouped_folds(y, subjects, n_splits, seed):
        for value, probability in estimator.probabilities(X[train], y[train], X[test], grid).items():
            scores[value].append(subject_auc(y[test], subjects[test], probability))
    mean = {value: float(np.mean(v)) for value, v in scores.items() if v}
    best = max(sorted(mean), key=lambda value: (mean[value], -value))
    return best, mean


def nested_grouped_cv(estimator: Estimator, data: Windows, grid: tuple[int, ...], n_splits: int, seed: int) -> dict:
    """Outer subject-grouped folds for the figure, inner grouped folds (training subjects only) for the value."""
    folds = grouped_folds(data.y, data.subjects, n_splits, seed)
    probability = np.zeros(len(data.y))
    chosen = []
    for train, test in folds:
        value, _ = select_value(estimator, data.X[train], data.y[train], data.subjects[train], grid, seed)
        chosen.append(value)
        probability[test] = estimator.probabilities(data.X[train], data.y[train], data.X[test], [value])[value]
    return {"probability": probability, "chosen_per_fold": chosen, "folds": folds}


def recipe_cv(estimator: Estimator, recipe: Recipe, data: Windows, folds: list) -> np.ndarray:
    """Out-of-fold probabilities of one fixed recipe on given folds (the champion on the candidate's data)."""
    value = recipe.params[estimator.hyperparameter]
    probability = np.zeros(len(data.y))
    for train, test in folds:
        probability[test] = estimator.probabilities(data.X[train], data.y[train], data.X[test], [value])[value]
    return probability


def honest_cv(data: Windows, nested: dict) -> HonestCV:
    ids, y_subject, p_subject = subject_level(data.subjects, data.y, nested["probability"])
    return HonestCV(
        window=classification_metrics(data.y, nested["probability"]),
        subject=classification_metrics(y_subject, p_subject, subjects=int(len(ids))),
        folds=len(nested["folds"]),
        chosen_per_fold=nested["chosen_per_fold"],
        selection=f"nested: inner grouped {INNER_FOLDS}-fold CV on each outer fold's training subjects",
    )


def majority_baseline(data: Windows) -> MajorityBaseline:
    _, y_subject, _ = subject_level(data.subjects, data.y, np.zeros(len(data.y)))
    window = max(np.mean(data.y), 1 - np.mean(data.y))
    subject = max(np.mean(y_subject), 1 - np.mean(y_subject))
    return MajorityBaseline(
        window_accuracy=float(window),
        subject_accuracy=float(subject),
        balanced_accuracy=0.5,
        roc_auc=0.5,
        note="always predicting the larger class",
    )


def leaky_random_split(estimator: Estimator, value: int, data: Windows, seed: int, test_size: float = 0.3) -> Metrics:
    """The original tutorial's figure: windows of one person land in train and test (leakage)."""
    train, test = train_test_split(np.arange(len(data.y)), test_size=test_size, stratify=data.y, random_state=seed)
    model = estimator.model(value, len(train)).fit(data.X[train], data.y[train])
    return classification_metrics(data.y[test], model.predict_proba(data.X[test])[:, 1], note=LEAKY_NOTE)


def bias_variance(
    estimator: Estimator, value: int, data: Windows, rounds: int, seed: int, test_size: float = 0.3
) -> BiasVariance:
    """mlxtend bias_variance_decomp (0-1 loss) on a subject-grouped hold-out (at most
    BIAS_VARIANCE_MAX_TEST_WINDOWS of its windows, a seeded sample)."""
    from mlxtend.evaluate import bias_variance_decomp

    train, test = next(
        GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(data.X, data.y, data.subjects)
    )
    available = len(test)
    if available > BIAS_VARIANCE_MAX_TEST_WINDOWS:
        test = np.sort(np.random.default_rng(seed).choice(test, BIAS_VARIANCE_MAX_TEST_WINDOWS, replace=False))
    loss, bias, variance = bias_variance_decomp(
        estimator.model(value, len(train)),
        data.X[train],
        data.y[train],
        data.X[test],
        data.y[test],
        loss="0-1_loss",
        num_rounds=rounds,
        random_seed=seed,
    )
    return BiasVariance(
        loss=float(loss),
        bias=float(bias),
        variance=float(variance),
        rounds=rounds,
        holdout_subjects=int(len(set(data.subjects[test]))),
        holdout_windows=int(len(test)),
        holdout_windows_available=int(available),
    )


@dataclass
class Trained:
    model_info: ModelInfo
    data: DataSummary
    evaluation: Evaluation
    seed: int
    probability: np.ndarray  # out-of-fold window probabilities (for the ROC plot)
    model: Pipeline

    @property
    def gate_score(self) -> float | None:
        """The figure the champion gate compares: subject-level ROC AUC under subject-grouped CV."""
        return self.evaluation.subject_grouped_cv.subject.roc_auc


def train_and_evaluate(
    estimator: Estimator,
    data: Windows,
    feature_set: str,
    grid: tuple[int, ...],
    n_splits: int = 5,
    bv_rounds: int = 20,
    seed: int = 42,
) -> Trained:
    """Nested grouped CV (the honest figures), the leaky split, bias-variance and the final model."""
    check_trainable(data)
    nested = nested_grouped_cv(estimator, data, grid, n_splits, seed)
    value, inner_scores = select_value(estimator, data.X, data.y, data.subjects, grid, seed)
    model_info = ModelInfo(
        feature_set=feature_set,
        estimator=estimator.name,
        hyperparameter=estimator.hyperparameter,
        params={estimator.hyperparameter: value},
        grid=list(grid),
        selection=f"grouped {INNER_FOLDS}-fold CV on all subjects by subject-level ROC AUC",
        selection_scores={str(key): score for key, score in inner_scores.items()},
        description=estimator.description(),
        features=list(data.features),
    )
    evaluation = Evaluation(
        subject_grouped_cv=honest_cv(data, nested),
        leaky_random_split=leaky_random_split(estimator, value, data, seed),
        majority_class=majority_baseline(data),
        bias_variance=bias_variance(estimator, value, data, bv_rounds, seed),
    )
    return Trained(
        model_info,
        data.summary(),
        evaluation,
        seed,
        nested["probability"],
        estimator.model(value, len(data.y)).fit(data.X, data.y),
    )


def serialize(model: Pipeline) -> tuple[bytes, str]:
    """Pickled model and its sha256 (checked again before the model is ever loaded)."""
    buffer = io.BytesIO()
    pickle.dump(model, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    blob = buffer.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()


def load_verified(blob: bytes, expected_sha256: str) -> Pipeline:
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected_sha256:
        raise IntegrityError(
            f"model artifact sha256 {actual} does not match the registry's {expected_sha256}; refusing to load it"
        )
    return pickle.loads(blob)  # noqa: S301 - only after the checksum matched the registry
