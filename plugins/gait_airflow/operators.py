"""SparkSubmitOperator that ships the project's domain package to the job and tells the job's deterministic
failure from a transient one."""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

import include
from include.errors import SPARK_BAD_INPUT_EXIT

BAD_INPUT_MARK = "BAD INPUT: "  # the job's line that says what is wrong (spark_jobs/window_means.py: bad_input)


def domain_zip(folder: Path) -> Path:
    """The domain package (include/, its Python modules) as a zip for --py-files: the job imports the same
    definitions (channels, recording ids, features, errors) as the rest of the pipeline, on the driver and on
    every executor, wherever the cluster runs."""
    package = Path(include.__file__).resolve().parent
    target = folder / "gait_domain.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*.py")):
            archive.write(path, Path(package.name) / path.relative_to(package))
    return target


class SparkJobOperator(SparkSubmitOperator):
    """Submits like SparkSubmitOperator, with the domain package added to --py-files; when the job exits with
    SPARK_BAD_INPUT_EXIT (bad arguments, a missing or inconsistent manifest) the task fails at once with the
    job's own line instead of using its retries."""

    def execute(self, context) -> None:
        with tempfile.TemporaryDirectory(prefix="gait-spark-") as folder:
            self.py_files = ",".join(filter(None, [self.py_files, str(domain_zip(Path(folder)))]))
            self._submit(context)

    def _submit(self, context) -> None:
        try:
            super().execute(context)
        except Exception as exc:
            process = getattr(self._hook, "_submit_sp", None)
            if process is None or process.returncode != SPARK_BAD_INPUT_EXIT:
                raise
            from airflow.sdk.exceptions import AirflowFailException

            lines = [line for line in self._hook._last_submit_log_lines if BAD_INPUT_MARK in line]
            detail = lines[-1].split(BAD_INPUT_MARK, 1)[1] if lines else "bad arguments (see the usage line above)"
            raise AirflowFailException(f"{self.task_id}: {detail} (a deterministic error: not retried)") from exc
