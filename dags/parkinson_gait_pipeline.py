"""MQTT -> HDFS -> Kafka -> Spark window means -> Cassandra -> KNN -> MongoDB -> champion gate, for one batch
(the run's date)."""
from __future__ import annotations

from datetime import datetime

from airflow.providers.apache.cassandra.sensors.table import CassandraTableSensor
from airflow.providers.apache.hdfs.sensors.web_hdfs import WebHdfsSensor
from airflow.sdk import DAG, Asset, chain, task

from gait_airflow.defaults import DEFAULT_ARGS, SENSOR_ARGS
from gait_airflow.operators import WindowMeansOperator
from gait_airflow.params import PIPELINE_PARAMS
from gait_airflow.sensors import KafkaBatchSensor, MqttBrokerSensor
from gait_airflow.tasks import run_stage
from include import names
from include.layout import batch_id

# Tasks import their stage module (include.stages) when they run: parsing this file must not pay for
# scikit-learn and matplotlib (Airflow's advice on top-level code).

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
    user_defined_macros={"batch_id": batch_id},
    tags=["parkinson", "gait", "pipeline"],
) as dag:
    wait_for_mqtt = MqttBrokerSensor(task_id="wait_for_mqtt", mqtt_conn_id=names.MQTT_CONN_ID, **SENSOR_ARGS)
    wait_for_hdfs = WebHdfsSensor(task_id="wait_for_hdfs", filepath=names.HDFS_RAW_DIR,
                                  webhdfs_conn_id=names.WEBHDFS_CONN_ID, **SENSOR_ARGS)

    @task
    def ensure_capture_session() -> None:
        from include.stages import ingest
        run_stage(ingest.ensure_session)

    @task
    def simulate_sensors(logical_date=None, run_id=None, params=None) -> dict:
        from include.stages import ingest
        return run_stage(ingest.simulate, batch_id(logical_date, run_id), params)

    @task
    def capture_mqtt_to_hdfs(logical_date=None, run_id=None, params=None) -> dict:
        from include.stages import ingest
        return run_stage(ingest.capture, batch_id(logical_date, run_id), params)

    @task
    def replay_hdfs_to_kafka(logical_date=None, run_id=None) -> dict:
        from include.stages import ingest
        return run_stage(ingest.replay, batch_id(logical_date, run_id))

    wait_for_kafka = KafkaBatchSensor(task_id="wait_for_batch_in_kafka", batch_id=BATCH, **SENSOR_ARGS)
    wait_for_table = CassandraTableSensor(
        task_id="wait_for_cassandra_table", table=f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}",
        cassandra_conn_id=names.CASSANDRA_CONN_ID, **SENSOR_ARGS)
    window_means = WindowMeansOperator(task_id="spark_window_means", batch_id=BATCH, outlets=[WINDOWS])

    @task
    def reconcile_counts(logical_date=None, run_id=None) -> dict:
        from include.stages import reconcile
        return run_stage(reconcile.reconcile, batch_id(logical_date, run_id))

    @task(inlets=[WINDOWS])
    def train_knn(logical_date=None, run_id=None, params=None, dag=None) -> dict:
        from include.stages import train
        return run_stage(train.train, batch_id(logical_date, run_id), dag.dag_id, params, params["train_scope"])

    @task(outlets=[METRICS])
    def store_metrics(logical_date=None, run_id=None, dag=None) -> dict:
        from include.stages import train
        return run_stage(train.store_metrics, batch_id(logical_date, run_id), dag.dag_id, run_id)

    @task
    def champion_gate(logical_date=None, run_id=None, dag=None) -> dict:
        from include.stages import gate
        return run_stage(gate.champion_gate, batch_id(logical_date, run_id), dag.dag_id)

    chain([wait_for_mqtt, wait_for_hdfs], ensure_capture_session(), simulate_sensors(), capture_mqtt_to_hdfs(),
          replay_hdfs_to_kafka(), wait_for_kafka, wait_for_table, window_means, reconcile_counts(), train_knn(),
          store_metrics(), champion_gate())
