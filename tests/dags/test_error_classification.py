"""Every stage tells deterministic errors (fail at once, no retry) from transient ones (left to the retries)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.errors import BadInput, IntegrityError, MissingInput
from include.gaitpdb import DatasetError
from include.reconcile import ReconciliationError
from include.training import TrainingDataError

ROOT = Path(__file__).resolve().parents[2]
DETERMINISTIC = [DatasetError("GaXx.txt:3: not a number"), TrainingDataError("need 2 subjects per class"),
                 ReconciliationError("landed 5 vs produced 4"), MissingInput("batch x has not been captured"),
                 IntegrityError("sha256 does not match")]
TRANSIENT = [ConnectionError("broker unreachable"), TimeoutError("no answer"), RuntimeError("replay incomplete")]


def run(error):
    from gait_airflow.tasks import run_stage

    def stage(_services):
        raise error

    return run_stage(stage)


@pytest.mark.parametrize("error", DETERMINISTIC, ids=lambda e: type(e).__name__)
def test_deterministic_errors_fail_at_once_with_their_own_line(error):
    with pytest.raises(AirflowFailException) as raised:
        run(error)
    assert isinstance(error, BadInput) and str(error) in str(raised.value)
    assert "\n" not in str(raised.value) and "not retried" in str(raised.value)


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_are_left_to_the_retries(error):
    from include.stages.services import ServiceUnavailable

    with pytest.raises(type(error)):
        run(error)
    unavailable = ServiceUnavailable("Kafka behind connection 'kafka_default' is unreachable")
    assert not isinstance(error, BadInput) and not isinstance(unavailable, BadInput)


def test_nothing_to_do_skips_the_task():
    from airflow.sdk.exceptions import AirflowSkipException

    from include.errors import NothingToDo

    with pytest.raises(AirflowSkipException, match="no model to gate"):
        run(NothingToDo("no model to gate"))


def test_every_python_task_runs_its_stage_through_run_stage():
    import inspect

    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    callables = [task.python_callable for dag in bag.dags.values() for task in dag.tasks
                 if hasattr(task, "python_callable")]
    assert len(callables) >= 12
    for function in callables:
        assert "run_stage(" in inspect.getsource(function), f"{function.__name__} bypasses run_stage"


def test_spark_bad_input_exit_code_is_the_jobs():
    sys.path.insert(0, str(ROOT / "spark_jobs"))
    try:
        import window_means
    finally:
        sys.path.remove(str(ROOT / "spark_jobs"))
    from gait_airflow.operators import BAD_INPUT_MARK
    from include.errors import SPARK_BAD_INPUT_EXIT

    assert window_means.BAD_INPUT_EXIT == SPARK_BAD_INPUT_EXIT
    with pytest.raises(SystemExit) as usage:
        window_means.parse_args(["--batch-id", "b"])
    assert usage.value.code == SPARK_BAD_INPUT_EXIT
    assert f"window_means: {BAD_INPUT_MARK}" in (ROOT / "spark_jobs" / "window_means.py").read_text()


def test_spark_unavailability_is_one_line_naming_the_level_and_the_nodes_down():
    """The job's CassandraUnavailable, raised in the driver or in an executor's task (then inside Spark's error
    text), becomes one line with the operator's mark and its own exit code."""
    sys.path.insert(0, str(ROOT / "spark_jobs"))
    try:
        import window_means
    finally:
        sys.path.remove(str(ROOT / "spark_jobs"))
    from types import SimpleNamespace

    from cassandra import ConsistencyLevel, Unavailable

    from gait_airflow.operators import UNAVAILABLE_MARK
    from include.errors import SPARK_UNAVAILABLE_EXIT

    hosts = [SimpleNamespace(endpoint=SimpleNamespace(address=f"127.0.0.{i}"), is_up=i == 1) for i in (1, 2, 3)]
    cluster = SimpleNamespace(metadata=SimpleNamespace(all_hosts=lambda: hosts))
    refused = Unavailable("Cannot achieve consistency level LOCAL_QUORUM", consistency=ConsistencyLevel.LOCAL_QUORUM,
                          required_replicas=2, alive_replicas=1)
    error = window_means.unavailable(refused, cluster, "writes to window_means")
    line = ("Cassandra cannot take the batch's writes to window_means at LOCAL_QUORUM (1 replicas alive, 2 "
            "required); nodes down: 127.0.0.2, 127.0.0.3")
    assert str(error) == line and window_means.unavailable_line(error) == line
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    hosts = [SimpleNamespace(endpoint=SimpleNamespace(address=f"127.0.0.{i}"), is_up=None) for i in (1, 2, 3)]
    no_host = NoHostAvailable("Unable to complete the operation against any hosts", {
        "127.0.0.1:9042": refused, "127.0.0.2:9042": ConnectionException("refused"),
        "127.0.0.3:9042": ConnectionRefusedError(111, "Connection refused")})
    assert str(window_means.unavailable(no_host, cluster, "writes to window_means")) == line
    spark_error = RuntimeError(f"Job aborted\nTraceback (most recent call last):\n  ...\n"
                               f"__main__.CassandraUnavailable: {line}\n\tat org.apache.spark...")
    assert window_means.unavailable_line(spark_error) == line
    assert window_means.unavailable_line(RuntimeError("something else")) is None
    assert window_means.UNAVAILABLE_EXIT == SPARK_UNAVAILABLE_EXIT
    assert f"window_means: {UNAVAILABLE_MARK}" in (ROOT / "spark_jobs" / "window_means.py").read_text()
