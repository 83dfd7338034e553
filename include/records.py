"""Typed records that cross stage boundaries: the manifests a batch's stages write to HDFS, the training report
that becomes the registry entry, and the champion. Each record has one writer and one reader; its tag (the
`record` field, e.g. "capture/1") is its name and version, so a reader refuses a record it does not know.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from include.errors import BadInput
from include.features import FEATURE_SETS

R = TypeVar("R", bound="Record")


class Record(msgspec.Struct, kw_only=True, tag_field="record"):
    """A versioned record: bump the tag's version when a field changes meaning."""


def encode(record: msgspec.Struct) -> bytes:
    return msgspec.json.encode(record)


def decode(data: bytes, kind: type[R], where: str) -> R:
    """A record from its JSON; an unknown version or a malformed file is bad input, named with where it is."""
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadInput(
            f"{where} is not a valid {kind.__name__} record ({exc}); re-run the stage that writes it"
        ) from exc


def to_document(record: msgspec.Struct) -> dict:
    """The record as a MongoDB document (whose keys are strings, as in its JSON)."""
    return msgspec.to_builtins(record, str_keys=True)


def from_document(document: dict, kind: type[R]) -> R:
    """The record of a registry document; documents of an earlier version are read as the current one."""
    upgrade = UPGRADES.get(document.get("record", ""))
    if upgrade:
        document = upgrade(document)
    try:
        return msgspec.convert(document, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        raise BadInput(f"document {document.get('_id')!r} is not a valid {kind.__name__} record ({exc})") from exc


# --- batch manifests (HDFS) --------------------------------------------------------------------------------


class SimulatedManifest(Record, tag="simulated/1"):
    """What the simulator published (simulate_sensors), or that it did not run."""

    simulated: bool
    readings: int = 0
    messages: int = 0
    recordings: dict[str, int] = {}
    seconds: float = 0.0


class CaptureManifest(Record, tag="capture/1"):
    """The capture's `_SUCCESS`: what landed in HDFS for the batch (the input of every later stage)."""

    batch_id: str
    recordings: dict[str, int]  # readings per recording
    seq_ranges: dict[str, tuple[int, int]]  # first and last seq per recording
    readings: int
    dead_letters: int
    dead_letter_reasons: dict[str, int]
    duplicates_dropped: int
    raw_dir: str
    dead_letter_dir: str
    landed_at: str
    messages_received: int = 0
    chunks: int = 0
    stopped_on: str = ""
    new_readings: int = 0
    new_dead_letters: int = 0


OffsetRanges = dict[int, tuple[int, int]]  # Kafka partition -> half-open [start, end)


class KafkaOffsets(Record, tag="kafka_offsets/1"):
    """The replay's produced range: exactly what the Spark job reads."""

    batch_id: str
    topic: str
    partitions: OffsetRanges
    messages: int
    recordings: list[str]
    produced_at: str

    def inconsistency(self) -> str | None:
        """Why the ranges cannot be this many messages, or None."""
        if (
            all(0 <= start <= end for start, end in self.partitions.values())
            and sum(end - start for start, end in self.partitions.values()) == self.messages
        ):
            return None
        return f"{self.messages} messages vs ranges {self.partitions}"

    def unreadable(self, watermarks: dict[int, tuple[int, int]]) -> tuple[list[int], list[int]]:
        """Given each partition's (low, high) watermarks: the partitions whose range consumers cannot read yet
        (high < end: not yet replicated to the in-sync replicas) and those whose start is gone (low > start:
        deleted by retention, so the batch cannot be read whole)."""
        pending, lost = [], []
        for partition, (start, end) in sorted(self.partitions.items()):
            low, high = watermarks.get(partition, (0, 0))
            if end > high:
                pending.append(partition)
            if start < low and start < end:
                lost.append(partition)
        return pending, lost


class SparkSummary(Record, tag="spark_summary/1"):
    """The Spark job's counts and phase times for a batch."""

    batch_id: str
    window_size: int
    include_partial: bool
    feature_window_size: int  # 0: no gait features computed
    kafka_messages_expected: int
    kafka_offsets: OffsetRanges
    kafka_messages_read: int = 0
    distinct_readings: int = 0
    windows_written: int = 0
    recordings: int = 0
    feature_windows_written: int = 0
    seconds: float = 0.0
    phase_seconds: dict[str, float] = {}


class HopCounts(msgspec.Struct, kw_only=True):
    published: int | None  # None: the simulator did not run
    messages_received: int
    dead_lettered: int
    duplicates_dropped: int
    landed_in_hdfs: int
    produced_to_kafka: int
    read_by_spark: int
    distinct_read_by_spark: int
    windows_written: int
    windows_expected: int | None  # None: some recording's seqs are not contiguous
    feature_windows_written: int
    feature_windows_expected: int | None


class Check(msgspec.Struct):
    name: str
    left: int
    right: int
    ok: bool


class Reconciliation(Record, tag="reconciliation/1"):
    """Counts at every hop of a batch and the pairs that must agree."""

    batch_id: str
    counts: HopCounts
    checks: list[Check]
    ok: bool

    def failures(self) -> str:
        return "; ".join(f"{c.name}: {c.left:,} vs {c.right:,}" for c in self.checks if not c.ok)


# --- the training report (HDFS report.json, then the registry entry in MongoDB) ---------------------------


class Metrics(msgspec.Struct, kw_only=True):
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None  # None: one class only
    confusion_matrix: dict[str, list[int]]  # rows = true class, columns = predicted [control, parkinson]
    tp: int
    tn: int
    fp: int
    fn: int
    n: int
    subjects: int | None = None  # subject-level figures: how many subjects
    note: str | None = None


class HonestCV(msgspec.Struct, kw_only=True):
    window: Metrics
    subject: Metrics
    folds: int
    chosen_per_fold: list[int]  # the tuned hyperparameter's value chosen in each outer fold
    selection: str


class MajorityBaseline(msgspec.Struct, kw_only=True):
    window_accuracy: float
    subject_accuracy: float
    balanced_accuracy: float
    roc_auc: float
    note: str


class BiasVariance(msgspec.Struct, kw_only=True):
    loss: float
    bias: float
    variance: float
    rounds: int
    holdout_subjects: int
    holdout_windows: int
    holdout_windows_available: int


class Evaluation(msgspec.Struct, kw_only=True):
    subject_grouped_cv: HonestCV  # the honest figures
    leaky_random_split: Metrics
    majority_class: MajorityBaseline
    bias_variance: BiasVariance


class PerClass(msgspec.Struct):
    control: int
    parkinson: int


class DataSummary(msgspec.Struct, kw_only=True):
    windows: int
    recordings: int
    subjects: int
    windows_per_class: PerClass
    subjects_per_class: PerClass
    fingerprint: str = ""  # which recordings with which labels: figures compare only if equal
    recording_ids: list[str] = []


class ModelInfo(msgspec.Struct, kw_only=True):
    feature_set: str
    estimator: str
    hyperparameter: str = ""  # the one tuned by grouped CV (include/estimators.py), e.g. "k"
    params: dict[str, int] = {}  # its chosen value, e.g. {"k": 25}
    grid: list[int] = []
    selection: str = ""
    selection_scores: dict[str, float] = {}
    description: dict[str, str] = {}  # type, weights, scaling
    features: list[str] = []

    def __str__(self) -> str:
        return f"{chosen_params(self.estimator, self.params)} (nested CV over {self.grid}), features {self.feature_set}"


def chosen_params(estimator: str, params: dict[str, int]) -> str:
    """An estimator with its chosen hyperparameters, as people read it: `knn k=25`."""
    return " ".join([estimator, *(f"{name}={value}" for name, value in params.items())])


class TrainingParams(msgspec.Struct, kw_only=True):
    window_size: int
    feature_window_size: int
    feature_set: str
    estimator: str
    grid: list[int]  # the estimator's grid Param (e.g. knn_k_grid)
    cv_folds: int
    bias_variance_rounds: int
    seed: int


class Lineage(msgspec.Struct, kw_only=True):
    scope: str  # "batch" or "all"
    windows_table: str
    batch_id: str | None = None
    raw_dir: str | None = None
    dead_letter_dir: str | None = None
    kafka_offsets: KafkaOffsets | None = None
    spark_summary: SparkSummary | None = None
    reconciliation: Reconciliation | None = None
    requested_scope: str | None = None  # set when a batch too small was widened to every window
    widened_because: str | None = None


class Artifact(msgspec.Struct, kw_only=True):
    hdfs_path: str
    sha256: str
    bytes: int
    format: str


class Recipe(msgspec.Struct, kw_only=True):
    """What a model is, apart from its data: the windows it reads and the estimator with its chosen params.
    The gate scores the champion's recipe on the candidate's data."""

    feature_set: str
    window_size: int
    estimator: str
    params: dict[str, int]

    def __str__(self) -> str:
        return f"{chosen_params(self.estimator, self.params)} on {self.feature_set} windows of {self.window_size}"


class EvaluatedOn(msgspec.Struct, kw_only=True):
    windows: int
    subjects: int
    folds: int
    fingerprint: str
    champion_recipe: Recipe


class Gate(msgspec.Struct, kw_only=True):
    """The champion gate's decision, recorded on the candidate's registry entry."""

    decision: str
    promote: bool
    reason: str
    decided_at: str
    metric: str | None = None
    candidate_run_id: str | None = None
    candidate_score: float | None = None
    champion_run_id: str | None = None
    champion_score: float | None = None  # the champion's recipe on the candidate's evaluation data
    evaluated_on: EvaluatedOn | None = None
    artifact_refreshed: bool = False


TRAINED, NOT_TRAINED = "trained", "not_trained"


class TrainingReport(Record, tag="training_report/2"):
    """One training run: written to HDFS by train_knn, upserted into the registry by store_metrics."""

    run_id: str = msgspec.field(name="_id")
    dag_id: str
    batch_id: str
    status: str  # TRAINED or NOT_TRAINED
    data: DataSummary
    lineage: Lineage
    params: TrainingParams
    model: ModelInfo
    trained_at: str
    reason: str | None = None  # why it was not trained
    evaluation: Evaluation | None = None
    seed: int | None = None
    gate_score: float | None = None
    artifact: Artifact | None = None
    plots: dict[str, str] = {}
    training_seconds: float | None = None
    airflow_run_id: str | None = None
    stored_at: str | None = None
    gate: Gate | None = None

    @property
    def trained(self) -> bool:
        return self.status == TRAINED

    @property
    def recipe(self) -> Recipe:
        window_param = FEATURE_SETS[self.model.feature_set].window_param
        return Recipe(
            feature_set=self.model.feature_set,
            window_size=getattr(self.params, window_param),
            estimator=self.model.estimator,
            params=self.model.params,
        )


class Champion(Record, tag="champion/2"):
    """The registry's one champion document."""

    id: str = msgspec.field(name="_id")
    run_id: str
    metric: str
    score: float | None
    previous_run_id: str | None
    previous_score_on_same_data: float | None
    recipe: Recipe
    artifact: Artifact
    reason: str
    promoted_at: str


# --- earlier versions of the registry's documents ----------------------------------------------------------


def _knn_recipe_fields(model: dict) -> dict:
    """Version 1 documents predate recipes: their model is a KNN whose fields are named after k."""
    return {
        "estimator": "knn",
        "hyperparameter": "k",
        "params": {"k": model["k"]} if model.get("k") else {},
        "grid": model.get("k_grid", []),
        "selection": model.get("k_selection", ""),
        "selection_scores": model.get("k_selection_scores", {}),
        "description": {key: model[key] for key in ("type", "weights", "scaling") if model.get(key)},
    }


def _training_report_v1(document: dict) -> dict:
    old_model, old_params = document["model"], document["params"]
    model = {"feature_set": old_model["feature_set"], "features": old_model.get("features", [])}
    upgraded = {
        **document,
        "record": "training_report/2",
        "model": {**model, **_knn_recipe_fields(old_model)},
        "params": {
            **{key: value for key, value in old_params.items() if key != "knn_k_grid"},
            "estimator": "knn",
            "grid": old_params["knn_k_grid"],
        },
    }
    if document.get("evaluation"):
        honest = dict(document["evaluation"]["subject_grouped_cv"])
        honest["chosen_per_fold"], honest["selection"] = honest.pop("chosen_k_per_fold"), honest.pop("k_selection")
        upgraded["evaluation"] = {**document["evaluation"], "subject_grouped_cv": honest}
    evaluated_on = (document.get("gate") or {}).get("evaluated_on")
    if evaluated_on:
        recipe = _knn_recipe(evaluated_on["champion_recipe"])
        upgraded["gate"] = {**document["gate"], "evaluated_on": {**evaluated_on, "champion_recipe": recipe}}
    return upgraded


def _knn_recipe(fields: dict) -> dict:
    return {
        "feature_set": fields["feature_set"],
        "window_size": fields["window_size"],
        "estimator": "knn",
        "params": {"k": fields["k"]},
    }


def _champion_v1(document: dict) -> dict:
    kept = {key: value for key, value in document.items() if key not in ("feature_set", "window_size", "k")}
    return {**kept, "record": "champion/2", "recipe": _knn_recipe(document)}


UPGRADES = {"training_report/1": _training_report_v1, "champion/1": _champion_v1}
