"""Spark submission of the window-means job: the domain package shipped with it, its arguments and environment
built in one place from the Airflow connections, and its deterministic failure told from a transient one."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

import include
from include import names
from include.errors import SPARK_BAD_INPUT_EXIT, SPARK_UNAVAILABLE_EXIT
from include.layout import BatchLayout

BAD_INPUT_MARK = "BAD INPUT: "  # the job's line that says what is wrong (spark_jobs/window_means.py: bad_input)
UNAVAILABLE_MARK = "UNAVAILABLE: "  # the job's line naming the consistency level and the Cassandra nodes down


def domain_zip(folder: Path) -> Path:
    """The domain package (include/: its Python modules and the Kafka topic's Avro schema) as a zip for --py-files:
    the job imports the same definitions (channels, recording ids, features, records, errors, the topic's schema) as
    the rest of the pipeline, on the driver and on every executor, wherever the cluster runs."""
    package = Path(include.__file__).resolve().parent
    target = folder / "gait_domain.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted([*package.rglob("*.py"), *package.rglob("*.avsc")]):
            archive.write(path, Path(package.name) / path.relative_to(package))
    return target


def window_means_submission(batch: str, params: dict) -> tuple[list[str], dict[str, str]]:
    """The job's arguments and environment from the connections: addresses on the command line, logins and
    secrets only in the environment."""
    from airflow.sdk.bases.hook import BaseHook

    hdfs = BaseHook.get_connection(names.HDFS_CONN_ID)
    kafka = BaseHook.get_connection(names.KAFKA_CONN_ID).extra_dejson
    cassandra = BaseHook.get_connection(names.CASSANDRA_CONN_ID)
    layout = BatchLayout(batch)
    arguments = [
        "--batch-id",
        batch,
        "--hdfs-uri",
        f"hdfs://{hdfs.host}:{hdfs.port or 8020}",
        "--offsets-manifest",
        layout.kafka_offsets,
        "--summary-path",
        layout.spark_summary,
        "--kafka-bootstrap",
        kafka["bootstrap.servers"],
        "--cassandra-hosts",
        cassandra.host,
        "--cassandra-port",
        str(cassandra.port or 9042),
        "--keyspace",
        names.CASSANDRA_KEYSPACE,
        "--table",
        names.WINDOW_TABLE,
        "--window-size",
        str(params["window_size"]),
        "--features-table",
        names.FEATURE_TABLE,
        "--feature-window-size",
        str(params["feature_window_size"]),
        "--include-partial" if params["include_partial_windows"] else "--only-complete",
    ]
    environment = {"HADOOP_USER_NAME": hdfs.login or "root"}
    if cassandra.login:
        environment.update(CASSANDRA_USER=cassandra.login, CASSANDRA_PASSWORD=cassandra.password or "")
    if kafka.get("sasl.username"):
        environment.update(
            KAFKA_SECURITY_PROTOCOL=kafka.get("security.protocol", "SASL_PLAINTEXT"),
            KAFKA_SASL_MECHANISM=kafka.get("sasl.mechanism", "PLAIN"),
            KAFKA_SASL_USERNAME=kafka["sasl.username"],
            KAFKA_SASL_PASSWORD=kafka["sasl.password"],
        )
    return arguments, environment


def secret_properties(folder: Path, conn_id: str) -> str | None:
    """A standalone cluster's shared secret (the Spark connection's password, with spark.authenticate on in
    Variable spark_conf) as a 0600 file for --properties-file: the driver takes it only as the property
    spark.authenticate.secret, and a property on the command line would show in every process list."""
    from airflow.sdk.bases.hook import BaseHook

    secret = BaseHook.get_connection(conn_id).password
    if not secret:
        return None
    path = folder / "secret.properties"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(f"spark.authenticate.secret={secret}\n")
    return str(path)


def deployment_spark_conf() -> dict[str, str]:
    """Spark properties of this deployment (Variable spark_conf, a JSON object; none when unset), over the
    operator's own: JVM options, executor sizes and the like differ between one machine and a cluster."""
    from airflow.sdk import Variable

    conf = Variable.get("spark_conf", default=None, deserialize_json=True) or {}
    if not isinstance(conf, dict):
        raise ValueError(f"Variable spark_conf must be a JSON object of Spark properties, not {conf!r}")
    return {str(key): str(value) for key, value in conf.items()}


class SparkJobOperator(SparkSubmitOperator):
    """Submits like SparkSubmitOperator, with the domain package added to --py-files; when the job exits with
    SPARK_BAD_INPUT_EXIT (bad arguments, a missing or inconsistent manifest) the task fails at once with the
    job's own line instead of using its retries; with SPARK_UNAVAILABLE_EXIT (too few Cassandra replicas alive)
    it fails with the job's line and retries."""

    def execute(self, context) -> None:
        with tempfile.TemporaryDirectory(prefix="gait-spark-") as folder:
            self.py_files = ",".join(filter(None, [self.py_files, str(domain_zip(Path(folder)))]))
            self.properties_file = self.properties_file or secret_properties(Path(folder), self._conn_id)
            self._submit(context)

    def _submit(self, context) -> None:
        try:
            super().execute(context)
        except Exception as exc:
            hook = self._hook
            process = getattr(hook, "_submit_sp", None)
            if (
                hook is None
                or process is None
                or process.returncode not in (SPARK_BAD_INPUT_EXIT, SPARK_UNAVAILABLE_EXIT)
            ):
                raise
            code = process.returncode
            from airflow.sdk.exceptions import AirflowException, AirflowFailException

            mark = BAD_INPUT_MARK if code == SPARK_BAD_INPUT_EXIT else UNAVAILABLE_MARK
            lines = [line for line in hook._last_submit_log_lines if mark in line]
            if code == SPARK_UNAVAILABLE_EXIT:  # transient: the task's retries apply
                detail = lines[-1].split(mark, 1)[1] if lines else "Cassandra has too few replicas alive"
                raise AirflowException(f"{self.task_id}: {detail} (transient: retried)") from exc
            detail = lines[-1].split(mark, 1)[1] if lines else "bad arguments (see the usage line above)"
            raise AirflowFailException(f"{self.task_id}: {detail} (a deterministic error: not retried)") from exc


class WindowMeansOperator(SparkJobOperator):
    """spark_jobs/window_means.py for one batch, with the run's Params (window sizes, partial windows)."""

    template_fields: Sequence[str] = (*SparkJobOperator.template_fields, "batch_id")

    def __init__(self, *, batch_id: str, **kwargs) -> None:
        super().__init__(
            conn_id=names.SPARK_CONN_ID,
            application="{{ var.value.spark_jobs_dir }}/window_means.py",
            jars="{{ var.value.spark_kafka_jars }}",
            name="parkinson-window-means",
            # 2g: the batch's readings stay cached in memory (the full dataset: about 0.6 GB) instead of spilling.
            conf={
                "spark.sql.shuffle.partitions": "4",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": "2g",
            },
            **kwargs,
        )
        self.batch_id = batch_id

    def execute(self, context) -> None:
        self.application_args, self.env_vars = window_means_submission(self.batch_id, context["params"])
        self.conf = {**(self.conf or {}), **deployment_spark_conf()}
        super().execute(context)
