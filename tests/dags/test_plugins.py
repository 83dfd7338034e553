"""The project's Airflow plugin loads in Airflow's own plugin manager and registers the report app and view."""


def test_model_report_plugin_loads():
    from airflow import plugins_manager

    errors = plugins_manager.get_import_errors()
    assert not errors, errors
    apps, _ = plugins_manager.get_fastapi_plugins()
    mounted = {app["url_prefix"]: app for app in apps}
    assert "/model-report" in mounted and mounted["/model-report"]["name"] == "Model report"
    views = [view for info in plugins_manager.get_plugin_info() for view in info.get("external_views", [])]
    assert any(view["href"] == "/model-report/" and view["url_route"] == "model-report" for view in views), views


def test_report_page_renders_without_data():
    from gait_airflow.report_app import _champion_html, _history_html, _plots_html

    assert "No champion yet" in _champion_html(None)
    assert "No training run yet" in _history_html([])
    assert _plots_html([]) == ""


def test_report_escapes_what_it_shows():
    from gait_airflow.report_app import _history_html, summarise
    from include.records import DataSummary, Gate, Lineage, ModelInfo, PerClass, TrainingParams, TrainingReport

    entry = TrainingReport(
        run_id="<script>x</script>", dag_id="d", batch_id="b", status="not_trained", trained_at="",
        data=DataSummary(windows=0, recordings=0, subjects=0, windows_per_class=PerClass(0, 0),
                         subjects_per_class=PerClass(0, 0)),
        lineage=Lineage(scope="all", windows_table="t"), model=ModelInfo(feature_set="means", estimator="knn"),
        params=TrainingParams(window_size=100, feature_window_size=300, feature_set="means", estimator="knn", grid=[1],
                              cv_folds=5, bias_variance_rounds=1, seed=1),
        gate=Gate(decision="kept", promote=False, reason="<b>", decided_at=""))
    run = summarise(entry, None)
    page = _history_html([run])
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page


def test_only_the_plugin_module_is_scanned_as_a_plugin():
    """Airflow imports every .py file under plugins/ (under its bare file name) to look for plugins: the
    gait_airflow package is excluded, so its modules are imported once, as the package's."""
    import sys

    from airflow import plugins_manager

    sources = {str(info["source"]) for info in plugins_manager.get_plugin_info()}
    assert {source for source in sources if "PLUGINS_FOLDER" in source} == {"$PLUGINS_FOLDER/model_report_plugin.py"}
    assert not {"clients", "operators", "hooks", "tasks"} & set(sys.modules)


def test_deployment_spark_conf_comes_from_the_variable(monkeypatch):
    import pytest

    from gait_airflow.operators import deployment_spark_conf

    monkeypatch.setenv("AIRFLOW_VAR_SPARK_CONF", '{"spark.executor.memory": "1g", "spark.cores.max": 2}')
    assert deployment_spark_conf() == {"spark.executor.memory": "1g", "spark.cores.max": "2"}
    monkeypatch.delenv("AIRFLOW_VAR_SPARK_CONF")
    assert deployment_spark_conf() == {}
    monkeypatch.setenv("AIRFLOW_VAR_SPARK_CONF", '["not", "an", "object"]')
    with pytest.raises(ValueError, match="JSON object"):
        deployment_spark_conf()


def test_the_spark_secret_goes_to_a_private_properties_file_never_to_the_command_line(monkeypatch, tmp_path):
    import json
    import os
    from pathlib import Path

    from gait_airflow.operators import secret_properties, window_means_submission

    params = {"window_size": 100, "feature_window_size": 300, "include_partial_windows": False}
    spark = {"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077}
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(spark))
    assert secret_properties(tmp_path, "spark_default") is None
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({**spark, "password": "s3cret-value"}))
    path = secret_properties(tmp_path, "spark_default")
    assert Path(path).read_text() == "spark.authenticate.secret=s3cret-value\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    arguments, environment = window_means_submission("b1", params)
    assert not [value for value in [*arguments, *environment.values()] if "s3cret" in value]


def test_an_hdfs_write_asks_the_namenode_again_when_its_datanode_is_lost():
    import pytest
    import requests

    from gait_airflow.clients import past_lost_datanodes

    def refused(url: str) -> requests.ConnectionError:
        return requests.ConnectionError("refused", request=requests.Request("PUT", url).prepare())

    calls = []

    def write(path, data=None, overwrite=False):
        calls.append(path)
        if len(calls) == 1:
            raise refused("http://127.0.0.1:10064/webhdfs/v1/x?op=CREATE")
        return "written"

    assert past_lost_datanodes(write, "http://127.0.0.1:9870", pause=0)("/x", data=b"1", overwrite=True) == "written"
    assert calls == ["/x", "/x"]

    def namenode_down(path, data=None, overwrite=False):
        calls.append(path)
        raise refused("http://127.0.0.1:9870/webhdfs/v1/x?op=CREATE")

    calls.clear()
    with pytest.raises(requests.ConnectionError):
        past_lost_datanodes(namenode_down, "http://127.0.0.1:9870", pause=0)("/x", data=b"1")
    assert calls == ["/x"]  # the NameNode itself unreachable: the task's retries deal with it
