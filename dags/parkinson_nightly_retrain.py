"""Nightly: retrain KNN on every window in Cassandra, store its metrics, gate it against the champion, and score
the latest batch with the champion (same code as the pipeline)."""
from __future__ import annotations

from datetime import datetime

from airflow.providers.apache.cassandra.sensors.table import CassandraTableSensor
from airflow.providers.apache.hdfs.sensors.web_hdfs import WebHdfsSensor
from airflow.sdk import DAG, Asset, chain, task

from gait_airflow.defaults import DEFAULT_ARGS, SENSOR_ARGS
from gait_airflow.params import TRAINING_PARAMS
from gait_airflow.tasks import run_stage
from include import names
from include.layout import batch_id

# Tasks import their stage module (include.stages) when they run: parsing this file must not pay for
# scikit-learn and matplotlib (Airflow's advice on top-level code).

WINDOWS = Asset("parkinson.window_means")
METRICS = Asset("parkinson.model_metrics")

with DAG(
    dag_id="parkinson_nightly_retrain",
    description=__doc__,
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=TRAINING_PARAMS,
    tags=["parkinson", "gait", "training"],
) as dag:
    wait_for_table = CassandraTableSensor(
        task_id="wait_for_cassandra_table", table=f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}",
        cassandra_conn_id=names.CASSANDRA_CONN_ID, **SENSOR_ARGS)
    wait_for_hdfs = WebHdfsSensor(task_id="wait_for_hdfs", filepath=names.HDFS_MODEL_DIR,
                                  webhdfs_conn_id=names.WEBHDFS_CONN_ID, **SENSOR_ARGS)

    @task(inlets=[WINDOWS])
    def train_knn(logical_date=None, run_id=None, params=None, dag=None) -> dict:
        from include.stages import train
        return run_stage(train.train, batch_id(logical_date, run_id), dag.dag_id, params, "all")

    @task(outlets=[METRICS])
    def store_metrics(logical_date=None, run_id=None, dag=None) -> dict:
        from include.stages import train
        return run_stage(train.store_metrics, batch_id(logical_date, run_id), dag.dag_id, run_id)

    @task
    def champion_gate(logical_date=None, run_id=None, dag=None) -> dict:
        from include.stages import gate
        return run_stage(gate.champion_gate, batch_id(logical_date, run_id), dag.dag_id)

    @task
    def predict_latest_batch() -> dict:
        from include.stages import predict
        return run_stage(predict.predict_latest_batch)

    chain([wait_for_table, wait_for_hdfs], train_knn(), store_metrics(), champion_gate(), predict_latest_batch())
