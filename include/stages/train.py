"""train_knn and store_metrics: nested grouped CV and the final model from the windows in Cassandra; the report,
model and plots to HDFS (ModelLayout); the report into the registry."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from include import names
from include.capture import read_manifest
from include.estimators import Estimator, estimator_named
from include.features import FEATURE_SETS
from include.filestore import read_record, require_record, write_record
from include.layout import BatchLayout, ModelLayout
from include.records import (
    NOT_TRAINED,
    TRAINED,
    KafkaOffsets,
    Lineage,
    ModelInfo,
    Reconciliation,
    SparkSummary,
    TrainingParams,
    TrainingReport,
)
from include.stages.artifacts import write_model
from include.stages.model_registry import Registry
from include.stages.services import Services
from include.stages.windows import windows_of
from include.training import Windows, train_and_evaluate, untrainable

log = logging.getLogger(__name__)


def training_run_id(dag_id: str, batch: str) -> str:
    return f"{dag_id}__{batch}"


def read_report(store, run_id: str) -> TrainingReport:
    return require_record(store, ModelLayout(run_id).report, TrainingReport, "run train_knn first")


def train(services: Services, batch: str, dag_id: str, params: dict, scope: str) -> dict:
    """Nested grouped CV + final model; model, report and plots under ModelLayout(run id)."""
    began = time.monotonic()
    store = services.hdfs()
    run_id = training_run_id(dag_id, batch)
    recordings, lineage = _training_recordings(store, batch, scope)
    feature_set, estimator = params["feature_set"], estimator_named(params["estimator"])
    data, reason = _training_data(services, params, recordings, lineage)
    report = TrainingReport(
        run_id=run_id,
        dag_id=dag_id,
        batch_id=batch,
        status=NOT_TRAINED,
        data=data.counts(),
        lineage=lineage,
        params=_recorded_params(params, estimator),
        model=ModelInfo(feature_set=feature_set, estimator=estimator.name),
        trained_at=datetime.now(UTC).isoformat(),
    )
    if reason:
        return _not_trained(store, report, reason)
    log.info(
        "train: %d windows of %d recordings, %d subjects, feature set %s (%d features)",
        len(data.y),
        len(set(data.recordings)),
        len(set(data.subjects)),
        feature_set,
        len(data.features),
    )
    trained = train_and_evaluate(
        estimator,
        data,
        feature_set,
        tuple(params[estimator.grid_param]),
        params["cv_folds"],
        params["bias_variance_rounds"],
        params["seed"],
    )
    report.status, report.model, report.data, report.evaluation = (
        TRAINED,
        trained.model_info,
        trained.data,
        trained.evaluation,
    )
    report.seed, report.gate_score = trained.seed, trained.gate_score
    report.artifact, report.plots = write_model(store, ModelLayout(run_id), data, trained)
    report.training_seconds = round(time.monotonic() - began, 2)
    write_record(store, ModelLayout(run_id).report, report)
    _log_trained(report)
    honest = trained.evaluation.subject_grouped_cv.subject
    return {
        "run_id": run_id,
        "model": report.artifact.hdfs_path,
        "params": trained.model_info.params,
        "subject_roc_auc": honest.roc_auc,
        "leaky_roc_auc": trained.evaluation.leaky_random_split.roc_auc,
    }


def _training_recordings(store, batch: str, scope: str) -> tuple[list[str] | None, Lineage]:
    lineage = Lineage(scope=scope, windows_table=f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}")
    if scope != "batch":
        return None, lineage
    layout = BatchLayout(batch)
    capture = read_manifest(store, batch)
    lineage.batch_id, lineage.raw_dir, lineage.dead_letter_dir = batch, capture.raw_dir, capture.dead_letter_dir
    lineage.kafka_offsets = read_record(store, layout.kafka_offsets, KafkaOffsets)
    lineage.spark_summary = read_record(store, layout.spark_summary, SparkSummary)
    lineage.reconciliation = read_record(store, layout.reconciliation, Reconciliation)
    return list(capture.recordings), lineage


def _training_data(
    services: Services, params: dict, recordings: list[str] | None, lineage: Lineage
) -> tuple[Windows, str | None]:
    """The windows to train on, and why they cannot be evaluated honestly (None when they can). A batch too
    small for subject-grouped evaluation trains on every window in Cassandra instead (lineage says so)."""
    feature_set = params["feature_set"]
    window_size = params[FEATURE_SETS[feature_set].window_param]
    data = windows_of(services, feature_set, window_size, recordings, required=False)
    reason = untrainable(data)
    if reason and recordings is not None:
        log.warning(
            "train: the batch alone cannot be evaluated honestly (%s); training on every window in Cassandra instead",
            reason,
        )
        lineage.requested_scope, lineage.scope, lineage.widened_because = "batch", "all", reason
        data = windows_of(services, feature_set, window_size, None, required=False)
        reason = untrainable(data)
    return data, reason


def _not_trained(store, report: TrainingReport, reason: str) -> dict:
    """Too little data anywhere for an honest evaluation: normal operation, not a failure. The report says
    why (the registry and the report page show it) and the gate skips."""
    where = "in the batch and in all of Cassandra" if report.lineage.widened_because else "in all of Cassandra"
    report.reason = f"not trained: {reason} ({where}); capture more recordings"
    write_record(store, ModelLayout(report.run_id).report, report)
    log.warning("train: %s", report.reason)
    return {"run_id": report.run_id, "status": NOT_TRAINED, "reason": report.reason}


def _recorded_params(params: dict, estimator: Estimator) -> TrainingParams:
    named = {key: params[key] for key in TrainingParams.__struct_fields__ if key in params}
    return TrainingParams(**named, grid=params[estimator.grid_param])


def _log_trained(report: TrainingReport) -> None:
    evaluation, artifact = report.evaluation, report.artifact
    assert evaluation is not None and artifact is not None
    honest = evaluation.subject_grouped_cv
    log.info(
        "train: %s (nested per fold %s) | honest subject-grouped CV: subjects AUC %s balanced %.3f, windows "
        "AUC %s | leaky random split AUC %s | majority class %.3f of subjects | %.1fs | model %s sha256 %s",
        report.model,
        honest.chosen_per_fold,
        _fmt(honest.subject.roc_auc),
        honest.subject.balanced_accuracy,
        _fmt(honest.window.roc_auc),
        _fmt(evaluation.leaky_random_split.roc_auc),
        evaluation.majority_class.subject_accuracy,
        report.training_seconds,
        artifact.hdfs_path,
        artifact.sha256[:12],
    )


def store_metrics(services: Services, batch: str, dag_id: str, airflow_run_id: str) -> dict:
    """Upsert the training report into the registry (the entry of this run, `_id` = its run id). A re-run keeps
    the gate's recorded decision and history plot until the gate runs again (the training report has neither)."""
    run_id = training_run_id(dag_id, batch)
    report = read_report(services.hdfs(), run_id)
    report.airflow_run_id, report.stored_at = airflow_run_id, datetime.now(UTC).isoformat()
    with services.mongo() as database:
        registry = Registry(database)
        existing = registry.entry(run_id)
        if existing is not None:
            report.gate = existing.gate
            if "metrics_history" in existing.plots:
                report.plots["metrics_history"] = existing.plots["metrics_history"]
        updated = registry.save(report)
    log.info(
        "metrics: %s document %s in %s.%s",
        "updated" if updated else "inserted",
        run_id,
        names.MONGO_DB,
        names.METRICS_COLLECTION,
    )
    return {"_id": run_id, "updated": updated}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
