"""A run's summary read back from the stores: counts per stage, dead letters, metrics, where things are."""

from __future__ import annotations

from dataclasses import dataclass

from gait_airflow.clients import hdfs_client, mongo_database
from include import names
from include.capture import read_manifest
from include.filestore import read_record
from include.layout import BatchLayout, ModelLayout
from include.records import CaptureManifest, KafkaOffsets, SparkSummary, TrainingReport
from include.stages.model_registry import Registry
from include.stages.train import training_run_id


@dataclass
class BatchSummary:
    batch_id: str
    capture: CaptureManifest
    kafka: KafkaOffsets | None
    spark: SparkSummary | None
    metrics: TrainingReport | None
    model_dir: str


def batch_summary(batch: str, dag_id: str = "parkinson_gait_pipeline") -> BatchSummary:
    store, layout = hdfs_client(), BatchLayout(batch)
    run_id = training_run_id(dag_id, batch)
    with mongo_database() as database:
        metrics = Registry(database).entry(run_id)
    return BatchSummary(
        batch,
        read_manifest(store, batch),
        read_record(store, layout.kafka_offsets, KafkaOffsets),
        read_record(store, layout.spark_summary, SparkSummary),
        metrics,
        ModelLayout(run_id).directory,
    )


def format_summary(summary: BatchSummary) -> str:
    capture, kafka, spark = summary.capture, summary.kafka, summary.spark
    lines = [
        f"batch {summary.batch_id}",
        f"  captured   {capture.readings:>9,} readings of {len(capture.recordings)} recordings -> hdfs://{capture.raw_dir}",
        f"  dead letters {capture.dead_letters:>7,} {capture.dead_letter_reasons} -> hdfs://{capture.dead_letter_dir}",
    ]
    if kafka:
        lines.append(f"  kafka      {kafka.messages:>9,} messages on {kafka.topic} offsets {kafka.partitions}")
    if spark:
        lines.append(
            f"  spark      {spark.windows_written:>9,} windows of {spark.recordings} recordings (window "
            f"{spark.window_size}) -> cassandra {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE} in {spark.seconds}s; "
            f"{spark.feature_windows_written:,} gait-feature windows (window {spark.feature_window_size}) -> "
            f"{names.CASSANDRA_KEYSPACE}.{names.FEATURE_TABLE}"
        )
    if summary.metrics:
        lines += _model_lines(summary.metrics, summary.model_dir)
    return "\n".join(lines)


def _model_lines(metrics: TrainingReport, model_dir: str) -> list[str]:
    evaluation, model = metrics.evaluation, metrics.model
    if evaluation is None or metrics.artifact is None:
        return [f"  model      {metrics.reason or 'not trained'}"]
    window, subject = evaluation.subject_grouped_cv.window, evaluation.subject_grouped_cv.subject
    leaky, majority, bv = evaluation.leaky_random_split, evaluation.majority_class, evaluation.bias_variance
    gate = metrics.gate
    return [
        f"  model      {model}, "
        f"{metrics.data.windows} windows of {metrics.data.subjects} subjects -> hdfs://{metrics.artifact.hdfs_path}",
        f"  honest     subject-grouped CV, subjects: ROC AUC {_f(subject.roc_auc)}, balanced accuracy "
        f"{subject.balanced_accuracy:.3f}, F1 {subject.f1:.3f} (majority class {majority.subject_accuracy:.3f})",
        f"             windows: ROC AUC {_f(window.roc_auc)}, balanced accuracy {window.balanced_accuracy:.3f}, "
        f"accuracy {window.accuracy:.3f} (majority class {majority.window_accuracy:.3f})",
        f"  leaky      random window split (the original tutorial's figure): accuracy {leaky.accuracy:.3f}, "
        f"ROC AUC {_f(leaky.roc_auc)}",
        f"  bias-var   loss {bv.loss:.3f} bias {bv.bias:.3f} variance {bv.variance:.3f} ({bv.rounds} rounds)",
        f"  gate       {gate.decision if gate else 'not run'}: {gate.reason if gate else ''}",
        f"  metrics    mongodb {names.MONGO_DB}.{names.METRICS_COLLECTION} _id={metrics.run_id}; plots "
        f"{', '.join(sorted(metrics.plots))} under hdfs://{model_dir}/plots",
    ]


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
