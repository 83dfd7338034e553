"""DAG integrity: every DAG file imports, no service is called at parse time, every task retries."""
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags(dagbag):
    assert {"parkinson_gait_pipeline", "parkinson_nightly_retrain"} <= set(dagbag.dag_ids)


def test_every_task_retries_with_backoff_and_timeout(dagbag):
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag.dag_id}.{t.task_id} has no retries"
            assert t.retry_exponential_backoff, f"{dag.dag_id}.{t.task_id} retries without backoff"
            assert t.execution_timeout is not None or t.task_id.startswith("wait_for"), \
                f"{dag.dag_id}.{t.task_id} has no execution timeout"
            assert t.on_failure_callback, f"{dag.dag_id}.{t.task_id} has no failure callback"


def test_tags_and_docs(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags and dag.description, dag.dag_id


def test_nightly_schedule(dagbag):
    dag = dagbag.dags["parkinson_nightly_retrain"]
    assert dag.schedule == "0 2 * * *"
    assert not dag.catchup and dag.max_active_runs == 1


def test_pipeline_order(dagbag):
    dag = dagbag.dags["parkinson_gait_pipeline"]
    order = ["ensure_capture_session", "simulate_sensors", "capture_mqtt_to_hdfs", "replay_hdfs_to_kafka",
             "wait_for_batch_in_kafka", "wait_for_cassandra_table", "spark_window_means", "reconcile_counts",
             "train_knn", "store_metrics", "champion_gate"]
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)


def test_nightly_order(dagbag):
    """Batch predictions run after the gate, so they always use the champion the gate left."""
    dag = dagbag.dags["parkinson_nightly_retrain"]
    order = ["train_knn", "store_metrics", "champion_gate", "predict_latest_batch"]
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)


def test_parse_does_not_touch_services(monkeypatch):
    """Parsing with every connection pointing at a closed port must still succeed (no I/O at parse time)."""
    import os
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
        monkeypatch.setenv(key, '{"conn_type": "generic", "host": "127.0.0.1", "port": 1}')
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {} and len(bag.dags) >= 2


def test_params_reject_bad_values(dagbag):
    from airflow.sdk.definitions.param import ParamsDict

    dag = dagbag.dags["parkinson_gait_pipeline"]
    for bad in ({"window_size": -5}, {"window_size": 0}, {"publish_rate": -1}, {"recordings": ["nope"]},
                {"train_scope": "everything"}, {"knn_k_grid": [0]},
                {"knn_k_grid": []}, {"feature_set": "magic"}):
        params = ParamsDict({k: v for k, v in dag.params.items()})
        with pytest.raises(Exception) as error:
            params.update(bad)
            params.validate()
        assert list(bad)[0] in str(error.value) or "valid" in str(error.value).lower()


def test_every_task_names_the_services_to_check_when_it_fails(dagbag):
    from gait_airflow.callbacks import TASK_SERVICES, failure_advice

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert task.task_id in TASK_SERVICES, (dag.dag_id, task.task_id)
            assert "scripts/services.py logs" in failure_advice(task.task_id)


def test_the_trigger_form_can_submit_every_default(dagbag):
    """The UI marks a field required unless its type admits null: an empty default must admit null, and every
    Param carries a title and a description for the form."""
    for dag in dagbag.dags.values():
        for name, param in dag.params.items():
            schema = dag.params.get_param(name).schema
            assert schema.get("title") and dag.params.get_param(name).description, (dag.dag_id, name)
            if param in ("", [], None):
                assert "null" in schema["type"], (dag.dag_id, name, "empty default needs a nullable type")


def test_parsing_the_dags_imports_no_model_or_plotting_library():
    """The scheduler and every `airflow tasks test` parse the DAG files: the stages' heavy libraries load only when
    a task runs (scikit-learn and matplotlib cost about 3 s of every parse)."""
    import subprocess
    import sys

    heavy = "{'sklearn', 'matplotlib', 'mlxtend', 'pyspark'}"
    code = ("import sys; sys.path[:0] = ['dags', 'plugins']; "
            "import parkinson_gait_pipeline, parkinson_nightly_retrain; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=DAGS_DIR.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
