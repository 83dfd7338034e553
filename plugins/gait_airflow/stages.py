"""Stage callables of the DAGs: provider hooks on Airflow connections + the domain code in include/.

Every stage addresses its inputs and outputs by the batch id (from the run's logical date), so any task
can run alone (`airflow tasks test parkinson_gait_pipeline <task> <date>`) and a re-run replaces its output.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from include import names
from include.capture import Collector, capture_batch, read_manifest, write_atomically
from include.gaitpdb import CHANNELS, SAMPLE_DIR
from include.mqtt_client import ensure_durable_session, subscribe
from include.replay import offsets_manifest_path

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


def batch_id(logical_date: datetime | None, run_id: str) -> str:
    """The batch a run works on: its logical date (UTC, e.g. 20261121T020000), else its sanitised run id."""
    if logical_date is not None:
        return logical_date.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def training_run_id(dag_id: str, batch: str) -> str:
    return f"{dag_id}__{batch}"


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

def simulate(params: dict) -> dict:
    """Publish recordings to MQTT when the run asks for it (Param simulate_sensors)."""
    from include.simulator import publish_recordings

    if not params["simulate_sensors"]:
        log.info("simulator: off (Param simulate_sensors=false); capturing what devices published")
        return {"readings": 0, "messages": 0, "recordings": {}}
    folder = Path(params["source_path"]) if params["source_path"] else SAMPLE_DIR
    client = mqtt_client_factory()(client_id="")
    try:
        return publish_recordings(client, folder, recordings=params["recordings"] or None,
                                  rate=params["publish_rate"], batch_size=params["readings_per_message"],
                                  max_rows=params["max_rows_per_recording"])
    finally:
        client.disconnect()


def ensure_session() -> None:
    """Re-assert the capture client's durable MQTT session (also created by `scripts/services.py up`)."""
    ensure_durable_session(mqtt_client_factory())


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


def load_windows(session, window_size: int, recordings: list[str] | None) -> list[dict]:
    """Window rows from Cassandra: all, or only the given recordings' partitions (prepared statements)."""
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.query import dict_factory

    session.row_factory = dict_factory
    columns = "recording_id, window_index, window_size, subject_id, label, " + ", ".join(CHANNELS)
    if recordings is None:
        rows = list(session.execute(f"SELECT {columns} FROM {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}"))
    else:
        statement = session.prepare(f"SELECT {columns} FROM {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE} "
                                    "WHERE recording_id = ?")
        rows = []
        for ok, result in execute_concurrent_with_args(session, statement, [(r,) for r in recordings],
                                                       concurrency=32, raise_on_first_error=True):
            rows.extend(result)
    return [row for row in rows if row["window_size"] == window_size]


def model_dir(run_id: str) -> str:
    return f"{names.HDFS_MODEL_DIR}/{run_id}"


def train(batch: str, dag_id: str, params: dict, scope: str) -> dict:
    """Read windows, train and evaluate KNN, save the model and its report under /models/parkinson_knn/<run>/."""
    from include.training import Windows, serialize, train_and_evaluate

    began = time.monotonic()
    store = hdfs_client()
    run_id = training_run_id(dag_id, batch)
    lineage: dict = {"scope": scope}
    recordings = None
    if scope == "batch":
        capture_manifest = read_manifest(store, batch)
        recordings = list(capture_manifest["recordings"])
        lineage.update(batch_id=batch, raw_dir=capture_manifest["raw_dir"],
                       dead_letter_dir=capture_manifest["dead_letter_dir"],
                       kafka_offsets=read_json(store, offsets_manifest_path(batch)),
                       spark_summary=read_json(store, spark_summary_path(batch)))
    session = cassandra_session()
    try:
        rows = load_windows(session, params["window_size"], recordings)
    finally:
        session.cluster.shutdown()
    data = Windows.from_rows(rows)
    log.info("train: %d windows of %d recordings, %d subjects", len(data.y), len(set(data.recordings)),
             len(set(data.subjects)))
    model, report = train_and_evaluate(data, k=params["knn_k"], n_splits=params["cv_folds"],
                                       bv_rounds=params["bias_variance_rounds"], seed=params["seed"])
    blob, sha256 = serialize(model)
    directory = model_dir(run_id)
    store.makedirs(directory)
    write_atomically(store, directory, "model.pkl", blob)
    lineage["windows_table"] = f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}"
    report.update(_id=run_id, dag_id=dag_id, batch_id=batch, lineage=lineage,
                  params={k: params[k] for k in ("window_size", "knn_k", "cv_folds", "bias_variance_rounds", "seed")},
                  artifact={"hdfs_path": f"{directory}/model.pkl", "sha256": sha256, "bytes": len(blob),
                            "format": "pickle (sklearn Pipeline)"},
                  trained_at=datetime.now(timezone.utc).isoformat(),
                  training_seconds=round(time.monotonic() - began, 2))
    write_atomically(store, directory, "report.json", json.dumps(report, indent=1).encode())
    honest = report["evaluation"]["subject_grouped_cv"]
    leaky = report["evaluation"]["leaky_random_split"]
    log.info("train: subject-grouped CV accuracy %.3f balanced %.3f AUC %s | leaky random split accuracy %.3f "
             "AUC %s | model %s/model.pkl sha256 %s", honest["accuracy"], honest["balanced_accuracy"],
             _fmt(honest["roc_auc"]), leaky["accuracy"], _fmt(leaky["roc_auc"]), directory, sha256[:12])
    return {"run_id": run_id, "model": f"{directory}/model.pkl", "honest_accuracy": honest["accuracy"],
            "leaky_accuracy": leaky["accuracy"]}


def store_metrics(batch: str, dag_id: str, airflow_run_id: str, conn_id: str = names.MONGO_CONN_ID) -> dict:
    """Upsert the training report into MongoDB (one document per training run, `_id` = its id)."""
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from pymongo.errors import PyMongoError

    run_id = training_run_id(dag_id, batch)
    report = read_json(hdfs_client(), f"{model_dir(run_id)}/report.json")
    if report is None:
        raise FileNotFoundError(f"no training report at {model_dir(run_id)}/report.json: run train_knn first")
    report.update(airflow_run_id=airflow_run_id, stored_at=datetime.now(timezone.utc).isoformat())
    with reporting_unavailable("MongoDB", conn_id, "ferretdb", PyMongoError), MongoHook(mongo_conn_id=conn_id) as hook:
        result = hook.replace_one(names.METRICS_COLLECTION, report, mongo_db=names.MONGO_DB, upsert=True)
    log.info("metrics: %s document %s in %s.%s", "updated" if result.matched_count else "inserted", run_id,
             names.MONGO_DB, names.METRICS_COLLECTION)
    return {"_id": run_id, "updated": bool(result.matched_count)}


def spark_summary_path(batch: str) -> str:
    return names.manifest_path(batch, names.WINDOW_SUMMARY_MANIFEST)


def read_json(store, path: str) -> dict | None:
    if not store.status(path, strict=False):
        return None
    with store.read(path) as reader:
        return json.loads(reader.read())


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def log_failure(context) -> None:
    """on_failure_callback: one clear line naming the task, the try and where to look."""
    ti = context["ti"]
    log.error("FAILED %s.%s (try %s of %s) for %s: %s. Services: `make status`; task log: `airflow tasks "
              "test %s %s <date>` to re-run it alone.", ti.dag_id, ti.task_id, ti.try_number,
              ti.max_tries + 1, context.get("run_id"), context.get("exception"), ti.dag_id, ti.task_id)
