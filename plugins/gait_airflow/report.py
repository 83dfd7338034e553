"""A run's summary read back from the stores: counts per stage, dead letters, metrics, where things are."""
from __future__ import annotations

from gait_airflow.model_stages import model_dir, training_run_id
from gait_airflow.stages import hdfs_client, read_json, spark_summary_path
from include import names
from include.capture import read_manifest
from include.replay import offsets_manifest_path


def batch_summary(batch: str, dag_id: str = "parkinson_gait_pipeline") -> dict:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    store = hdfs_client()
    run_id = training_run_id(dag_id, batch)
    with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook:
        metrics = hook.find(names.METRICS_COLLECTION, {"_id": run_id}, find_one=True, mongo_db=names.MONGO_DB)
    return {
        "batch_id": batch,
        "capture": read_manifest(store, batch),
        "kafka": read_json(store, offsets_manifest_path(batch)),
        "spark": read_json(store, spark_summary_path(batch)),
        "metrics": metrics,
        "model_dir": model_dir(run_id),
    }


def format_summary(summary: dict) -> str:
    capture, kafka, spark, metrics = (summary[k] or {} for k in ("capture", "kafka", "spark", "metrics"))
    lines = [
        f"batch {summary['batch_id']}",
        f"  captured   {capture.get('readings', 0):>9,} readings of {len(capture.get('recordings', {}))} recordings "
        f"-> hdfs://{capture.get('raw_dir')}",
        f"  dead letters {capture.get('dead_letters', 0):>7,} {capture.get('dead_letter_reasons', {})} "
        f"-> hdfs://{capture.get('dead_letter_dir')}",
        f"  kafka      {kafka.get('messages', 0):>9,} messages on {kafka.get('topic')} offsets {kafka.get('partitions')}",
        f"  spark      {spark.get('windows_written', 0):>9,} windows of {spark.get('recordings', 0)} recordings "
        f"(window {spark.get('window_size')}) -> cassandra {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE} "
        f"in {spark.get('seconds')}s; {spark.get('feature_windows_written', 0):,} gait-feature windows "
        f"(window {spark.get('feature_window_size')}) -> {names.CASSANDRA_KEYSPACE}.{names.FEATURE_TABLE}",
    ]
    if metrics and "evaluation" not in metrics:
        lines.append(f"  model      {metrics.get('reason', 'not trained')}")
    elif metrics:
        evaluation, model = metrics["evaluation"], metrics["model"]
        window, subject = evaluation["subject_grouped_cv"]["window"], evaluation["subject_grouped_cv"]["subject"]
        leaky, majority, bv = evaluation["leaky_random_split"], evaluation["majority_class"], evaluation["bias_variance"]
        gate = metrics.get("gate", {})
        lines += [
            f"  model      KNN k={model['k']} (nested CV over {model['k_grid']}), features {model['feature_set']}, "
            f"{metrics['data']['windows']} windows of {metrics['data']['subjects']} subjects "
            f"-> hdfs://{metrics['artifact']['hdfs_path']}",
            f"  honest     subject-grouped CV, subjects: ROC AUC {_f(subject['roc_auc'])}, balanced accuracy "
            f"{subject['balanced_accuracy']:.3f}, F1 {subject['f1']:.3f} (majority class {majority['subject_accuracy']:.3f})",
            f"             windows: ROC AUC {_f(window['roc_auc'])}, balanced accuracy {window['balanced_accuracy']:.3f}, "
            f"accuracy {window['accuracy']:.3f} (majority class {majority['window_accuracy']:.3f})",
            f"  leaky      random window split (the original tutorial's figure): accuracy {leaky['accuracy']:.3f}, "
            f"ROC AUC {_f(leaky['roc_auc'])}",
            f"  bias-var   loss {bv['loss']:.3f} bias {bv['bias']:.3f} variance {bv['variance']:.3f} ({bv['rounds']} rounds)",
            f"  gate       {gate.get('decision', 'not run')}: {gate.get('reason', '')}",
            f"  metrics    mongodb {names.MONGO_DB}.{names.METRICS_COLLECTION} _id={metrics['_id']}; plots "
            f"{', '.join(sorted(metrics.get('plots', {})))} under hdfs://{summary['model_dir']}/plots",
        ]
    return "\n".join(lines)


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
