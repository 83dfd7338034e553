"""MQTT -> HDFS -> Kafka -> Spark window means -> Cassandra -> KNN -> MongoDB -> champion gate, for one batch
(the run's date)."""
from __future__ import annotations

from datetime import datetime

from airflow.providers.apache.cassandra.sensors.table import CassandraTableSensor
from airflow.providers.apache.hdfs.sensors.web_hdfs import WebHdfsSensor
from airflow.providers.apache.kafka.sensors.kafka import AwaitMessageSensor
from airflow.providers.mongo.sensors.mongo import MongoSensor
from airflow.sdk import DAG, Asset, chain, task

from gait_airflow import model_stages, stages
from gait_airflow.defaults import DEFAULT_ARGS, SENSOR_ARGS
from gait_airflow.operators import SparkJobOperator
from gait_airflow.params import PIPELINE_PARAMS
from gait_airflow.sensors import MqttBrokerSensor
from include import names

BATCH = "{{ batch_id(logical_date, run_id) }}"
WINDOWS = Asset("parkinson.window_means")
METRICS = Asset("parkinson.model_metrics")

with DAG(
    dag_id="parkinson_gait_pipeline",
    description=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PIPELINE_PARAMS,
    user_defined_macros={"batch_id": stages.batch_id},
    tags=["parkinson", "gait", "pipeline"],
) as dag:
    wait_for_mqtt = MqttBrokerSensor(task_id="wait_for_mqtt", mqtt_conn_id=names.MQTT_CONN_ID, **SENSOR_ARGS)
    wait_for_hdfs = WebHdfsSensor(task_id="wait_for_hdfs", filepath=names.HDFS_RAW_DIR,
                                  webhdfs_conn_id=names.WEBHDFS_CONN_ID, **SENSOR_ARGS)

    @task
    def ensure_capture_session() -> None:
        stages.ensure_session()

    @task
    def simulate_sensors(logical_date=None, run_id=None, params=None) -> dict:
        return stages.simulate(stages.batch_id(logical_date, run_id), params)

    @task
    def capture_mqtt_to_hdfs(logical_date=None, run_id=None, params=None) -> dict:
        return stages.capture(stages.batch_id(logical_date, run_id), params)

    @task
    def replay_hdfs_to_kafka(logical_date=None, run_id=None) -> dict:
        return stages.replay(stages.batch_id(logical_date, run_id))

    wait_for_kafka = AwaitMessageSensor(
        task_id="wait_for_kafka_readings", topics=[names.KAFKA_TOPIC], kafka_config_id=names.KAFKA_CONN_ID,
        apply_function="gait_airflow.stages.is_reading", poll_timeout=1, poll_interval=1, timeout=600)
    wait_for_table = CassandraTableSensor(
        task_id="wait_for_cassandra_table", table=f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}",
        cassandra_conn_id=names.CASSANDRA_CONN_ID, **SENSOR_ARGS)

    window_means = SparkJobOperator(
        task_id="spark_window_means",
        conn_id=names.SPARK_CONN_ID,
        application="{{ var.value.spark_jobs_dir }}/window_means.py",
        jars="{{ var.value.spark_kafka_jars }}",
        name="parkinson-window-means",
        application_args=[
            "--batch-id", BATCH,
            "--webhdfs-url", "http://{{ conn.webhdfs_default.host }}:{{ conn.webhdfs_default.port }}",
            "--webhdfs-user", "{{ conn.webhdfs_default.login or 'root' }}",
            "--offsets-manifest", names.manifest_path(BATCH, names.KAFKA_OFFSETS_MANIFEST),
            "--summary-path", names.manifest_path(BATCH, names.WINDOW_SUMMARY_MANIFEST),
            "--kafka-bootstrap", "{{ conn.kafka_default.extra_dejson['bootstrap.servers'] }}",
            "--cassandra-hosts", "{{ conn.cassandra_default.host }}",
            "--cassandra-port", "{{ conn.cassandra_default.port }}",
            "--keyspace", names.CASSANDRA_KEYSPACE, "--table", names.WINDOW_TABLE,
            "--window-size", "{{ params.window_size }}",
            "--features-table", names.FEATURE_TABLE, "--feature-window-size", "{{ params.feature_window_size }}",
            "{{ '--include-partial' if params.include_partial_windows else '--only-complete' }}",
        ],
        # 2g: the batch's readings stay cached in memory (the full dataset: about 0.6 GB) instead of spilling.
        conf={"spark.sql.shuffle.partitions": "4", "spark.ui.showConsoleProgress": "false",
              "spark.driver.memory": "2g"},
        outlets=[WINDOWS],
    )

    @task
    def reconcile_counts(logical_date=None, run_id=None) -> dict:
        return stages.reconcile(stages.batch_id(logical_date, run_id))

    @task(inlets=[WINDOWS])
    def train_knn(logical_date=None, run_id=None, params=None, dag=None) -> dict:
        return model_stages.train(stages.batch_id(logical_date, run_id), dag.dag_id, params, params["train_scope"])

    @task(outlets=[METRICS])
    def store_metrics(logical_date=None, run_id=None, dag=None) -> dict:
        return model_stages.store_metrics(stages.batch_id(logical_date, run_id), dag.dag_id, run_id)

    metrics_stored = MongoSensor(
        task_id="wait_for_metrics_document", collection=names.METRICS_COLLECTION, mongo_db=names.MONGO_DB,
        query={"_id": "{{ dag.dag_id }}__" + BATCH}, mongo_conn_id=names.MONGO_CONN_ID, **SENSOR_ARGS)

    @task
    def champion_gate(logical_date=None, run_id=None, dag=None) -> dict:
        return model_stages.champion_gate(stages.batch_id(logical_date, run_id), dag.dag_id)

    captured = capture_mqtt_to_hdfs()
    chain([wait_for_mqtt, wait_for_hdfs], ensure_capture_session(), simulate_sensors(), captured,
          replay_hdfs_to_kafka(), wait_for_kafka, wait_for_table, window_means, reconcile_counts(), train_knn(),
          store_metrics(), metrics_stored, champion_gate())
