"""Stage callables of the DAGs: provider hooks on Airflow connections + the domain code in include/.

Every stage addresses its inputs and outputs by the batch id (from the run's logical date), so any task
can run alone (`airflow tasks test parkinson_gait_pipeline <task> <date>`) and a re-run replaces its output.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from include import names
from include.capture import Collector, capture_batch, read_manifest, write_manifest
from include.errors import BadInput, MissingInput
from include.gaitpdb import SAMPLE_DIR
from include.mqtt_client import ensure_durable_session, subscribe

log = logging.getLogger(__name__)


class ServiceUnavailable(RuntimeError):
    """A service behind a connection is down; the message says which and what to check."""


@contextmanager
def reporting_unavailable(service: str, conn_id: str, local_name: str, *errors: type[Exception]):
    """Turn a client's connection error into one readable line: which service, which connection, what to run."""
    try:
        yield
    except errors as exc:
        raise ServiceUnavailable(f"{service} behind connection {conn_id!r} is unreachable or refused the request "
                                 f"({exc}); check it with `make status` / `scripts/services.py logs "
                                 f"{local_name}`") from exc


def fail_fast(stage):
    """A stage's deterministic errors (include.errors.BadInput) fail its task at once, without retries, with one
    readable line; every other error (a service down, a timeout) is left to the task's retries."""
    @functools.wraps(stage)
    def run(*args, **kwargs):
        try:
            return stage(*args, **kwargs)
        except BadInput as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{stage.__name__}: {exc} (a deterministic error: not retried)") from exc
    return run


def batch_id(logical_date: datetime | None, run_id: str) -> str:
    """The batch a run works on: its logical date (UTC, e.g. 20261121T020000), else its sanitised run id."""
    if logical_date is not None:
        return logical_date.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


# --- clients from Airflow connections ------------------------------------------------------------------

def hdfs_client(conn_id: str = names.WEBHDFS_CONN_ID):
    from airflow.providers.apache.hdfs.hooks.webhdfs import AirflowWebHDFSHookException, WebHDFSHook

    with reporting_unavailable("HDFS NameNode", conn_id, "hdfs-namenode", AirflowWebHDFSHookException):
        return WebHDFSHook(webhdfs_conn_id=conn_id).get_conn()


def mqtt_client_factory(conn_id: str = names.MQTT_CONN_ID):
    from gait_airflow.hooks import MqttHook

    return MqttHook(conn_id).get_conn


def kafka_producer(conn_id: str = names.KAFKA_CONN_ID):
    from gait_airflow.hooks import ReadingsProducerHook

    return ReadingsProducerHook(kafka_config_id=conn_id).get_producer()


def cassandra_session(conn_id: str = names.CASSANDRA_CONN_ID):
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook
    from cassandra.cluster import NoHostAvailable

    with reporting_unavailable("Cassandra", conn_id, "cassandra", NoHostAvailable):
        return CassandraHook(cassandra_conn_id=conn_id).get_conn()


# --- stages --------------------------------------------------------------------------------------------

@fail_fast
def simulate(batch: str, params: dict) -> dict:
    """Publish recordings to MQTT when the run asks for it (Param simulate_sensors); counts go to HDFS for
    the reconciliation."""
    from include.simulator import publish_recordings

    if not params["simulate_sensors"]:
        log.info("simulator: off (Param simulate_sensors=false); capturing what devices published")
        result = {"simulated": False, "readings": 0, "messages": 0, "recordings": {}}
    else:
        folder = Path(params["source_path"]) if params["source_path"] else SAMPLE_DIR
        client = mqtt_client_factory()(client_id="")
        try:
            result = {"simulated": True, **publish_recordings(
                client, folder, recordings=params["recordings"] or None, rate=params["publish_rate"],
                batch_size=params["readings_per_message"], max_rows=params["max_rows_per_recording"])}
        finally:
            client.disconnect()
    write_manifest(hdfs_client(), batch, names.SIMULATED_MANIFEST, result)
    return result


def ensure_session() -> None:
    """Re-assert the capture client's durable MQTT session (also created by `scripts/services.py up`)."""
    ensure_durable_session(mqtt_client_factory())


@fail_fast
def capture(batch: str, params: dict) -> dict:
    """Drain the durable session into HDFS chunk by chunk, acknowledging each chunk once it is landed."""
    store = hdfs_client()
    collector = Collector(params["capture_max_messages"])
    client = mqtt_client_factory()(client_id=names.MQTT_CAPTURE_CLIENT_ID, clean_session=False,
                                   manual_ack=True, on_message=collector)
    try:
        subscribe(client, names.MQTT_TOPIC_FILTER, names.MQTT_QOS)
        manifest = capture_batch(client, collector, store, batch, idle_seconds=params["capture_idle_seconds"],
                                 max_seconds=params["capture_max_seconds"])
    finally:
        client.disconnect()
    return {k: manifest[k] for k in ("readings", "dead_letters", "messages_received", "new_readings",
                                     "duplicates_dropped", "chunks")}


def discard_queued(idle_seconds: float = 2.0) -> int:
    """Acknowledge and drop whatever the capture client's durable session holds (tests and benchmarks start
    from an empty queue); returns how many messages were dropped."""
    from include.capture import acknowledge, wait_for_chunk

    collector = Collector(20_000_000)
    client = mqtt_client_factory()(client_id=names.MQTT_CAPTURE_CLIENT_ID, clean_session=False, manual_ack=True,
                                   on_message=collector)
    try:
        subscribe(client, names.MQTT_TOPIC_FILTER, names.MQTT_QOS)
        deadline = time.monotonic() + 600
        while wait_for_chunk(client, collector, chunk_messages=5_000, quiet_seconds=0.5, idle_seconds=idle_seconds,
                             deadline=deadline) == "chunk":
            acknowledge(client, collector.take())
        acknowledge(client, collector.take())
    finally:
        client.disconnect()
    return collector.accepted


@fail_fast
def replay(batch: str) -> dict:
    from include.replay import replay as replay_batch

    offsets = replay_batch(hdfs_client(), kafka_producer(), batch)
    return {"messages": offsets["messages"], "partitions": offsets["partitions"]}


def is_reading(message) -> bool:
    """apply_function of the Kafka sensor: any well-formed reading on the topic."""
    try:
        return "recording_id" in json.loads(message.value())
    except (TypeError, ValueError):
        return False


@fail_fast
def reconcile(batch: str) -> dict:
    """Counts at every hop of the batch; fails the run loudly when two that must agree do not."""
    from include.reconcile import ReconciliationError, failures, reconcile as reconcile_batch
    from include.replay import offsets_manifest_path

    store = hdfs_client()
    simulated = read_json(store, names.manifest_path(batch, names.SIMULATED_MANIFEST))
    kafka = read_json(store, offsets_manifest_path(batch))
    spark = read_json(store, spark_summary_path(batch))
    if kafka is None or spark is None:
        raise MissingInput(f"batch {batch}: replay or Spark manifest missing; run those tasks first")
    report = reconcile_batch(simulated if simulated and simulated.get("simulated") else None,
                             read_manifest(store, batch), kafka, spark)
    path = write_manifest(store, batch, names.RECONCILIATION_MANIFEST, report)
    counts = report["counts"]
    log.info("reconcile: published %s, landed %s, dead-lettered %s, produced %s, read by Spark %s, windows %s of %s "
             "expected, gait-feature windows %s of %s: %s", counts["published"], counts["landed_in_hdfs"],
             counts["dead_lettered"], counts["produced_to_kafka"], counts["read_by_spark"], counts["windows_written"],
             counts["windows_expected"], counts["feature_windows_written"], counts["feature_windows_expected"],
             "all agree" if report["ok"] else "MISMATCH")
    if not report["ok"]:
        raise ReconciliationError(f"batch {batch} does not reconcile: {failures(report)} (counts in hdfs://{path})")
    return report


def spark_summary_path(batch: str) -> str:
    return names.manifest_path(batch, names.WINDOW_SUMMARY_MANIFEST)


def read_json(store, path: str) -> dict | None:
    if not store.status(path, strict=False):
        return None
    with store.read(path) as reader:
        return json.loads(reader.read())


# What each task talks to, as (service, local name for `scripts/services.py logs`), for failure messages.
TASK_SERVICES = {
    "wait_for_mqtt": [("Mosquitto", "mosquitto")], "ensure_capture_session": [("Mosquitto", "mosquitto")],
    "simulate_sensors": [("Mosquitto", "mosquitto")],
    "wait_for_hdfs": [("HDFS NameNode", "hdfs-namenode")],
    "capture_mqtt_to_hdfs": [("Mosquitto", "mosquitto"), ("HDFS", "hdfs-datanode")],
    "replay_hdfs_to_kafka": [("HDFS", "hdfs-datanode"), ("Kafka", "kafka")],
    "wait_for_kafka_readings": [("Kafka", "kafka")],
    "wait_for_cassandra_table": [("Cassandra", "cassandra")],
    "spark_window_means": [("Kafka", "kafka"), ("Cassandra", "cassandra"), ("HDFS", "hdfs-namenode")],
    "reconcile_counts": [("HDFS", "hdfs-namenode")],
    "train_knn": [("Cassandra", "cassandra"), ("HDFS", "hdfs-datanode")],
    "store_metrics": [("MongoDB", "ferretdb"), ("HDFS", "hdfs-datanode")],
    "wait_for_metrics_document": [("MongoDB", "ferretdb")],
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
    advice = ("not retried: fix the input it names, then clear the task" if isinstance(exception, AirflowFailException)
              else failure_advice(ti.task_id))
    log.error("FAILED %s.%s (try %s of %s) for %s: %s | %s | re-run it alone: `airflow tasks test %s %s <date>`",
              ti.dag_id, ti.task_id, ti.try_number, ti.max_tries + 1, context.get("run_id"), exception, advice,
              ti.dag_id, ti.task_id)
