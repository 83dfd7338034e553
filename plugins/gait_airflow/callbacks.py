"""Task callbacks: a failure is logged as one line naming the task, the try, the error and what to check."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


# What each task talks to, as (service, local name for `scripts/services.py logs`), for failure messages.
TASK_SERVICES = {
    "wait_for_mqtt": [("Mosquitto", "mosquitto")],
    "ensure_capture_session": [("Mosquitto", "mosquitto")],
    "simulate_sensors": [("Mosquitto", "mosquitto")],
    "wait_for_hdfs": [("HDFS NameNode", "hdfs-namenode")],
    "capture_mqtt_to_hdfs": [("Mosquitto", "mosquitto"), ("HDFS", "hdfs-datanode")],
    "replay_hdfs_to_kafka": [("HDFS", "hdfs-datanode"), ("Kafka", "kafka")],
    "wait_for_batch_in_kafka": [("Kafka", "kafka"), ("HDFS NameNode", "hdfs-namenode")],
    "wait_for_cassandra_table": [("Cassandra", "cassandra")],
    "spark_window_means": [("Kafka", "kafka"), ("Cassandra", "cassandra"), ("HDFS", "hdfs-namenode")],
    "reconcile_counts": [("HDFS", "hdfs-namenode")],
    "train_knn": [("Cassandra", "cassandra"), ("HDFS", "hdfs-datanode")],
    "store_metrics": [("MongoDB", "ferretdb"), ("HDFS", "hdfs-datanode")],
    "champion_gate": [("MongoDB", "ferretdb"), ("Cassandra", "cassandra"), ("HDFS", "hdfs-datanode")],
    "predict_latest_batch": [("MongoDB", "ferretdb"), ("Cassandra", "cassandra"), ("HDFS", "hdfs-datanode")],
}


def failure_advice(task_id: str) -> str:
    services = TASK_SERVICES.get(task_id, [])
    checks = "; ".join(f"{name}: `scripts/services.py logs {local}`" for name, local in services)
    return f"check `make status`{'; ' + checks if checks else ''}"


def log_failure(context) -> None:
    """on_failure_callback: one line naming the task, the try, the error and what to check."""
    from airflow.sdk.exceptions import AirflowFailException

    ti, exception = context["ti"], context.get("exception")
    advice = (
        "not retried: fix the input it names, then clear the task"
        if isinstance(exception, AirflowFailException)
        else failure_advice(ti.task_id)
    )
    log.error(
        "FAILED %s.%s (try %s of %s) for %s: %s | %s | re-run it alone: `airflow tasks test %s %s <date>`",
        ti.dag_id,
        ti.task_id,
        ti.try_number,
        ti.max_tries + 1,
        context.get("run_id"),
        exception,
        advice,
        ti.dag_id,
        ti.task_id,
    )
