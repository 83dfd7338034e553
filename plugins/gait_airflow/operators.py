"""SparkSubmitOperator that tells a Spark job's deterministic failure from a transient one."""
from __future__ import annotations

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from include.errors import SPARK_BAD_INPUT_EXIT

BAD_INPUT_MARK = "BAD INPUT: "  # the job's line that says what is wrong (spark_jobs/window_means.py: bad_input)


class SparkJobOperator(SparkSubmitOperator):
    """Submits like SparkSubmitOperator; when the job exits with SPARK_BAD_INPUT_EXIT (bad arguments, a missing or
    inconsistent manifest) the task fails at once with the job's own line instead of using its retries."""

    def execute(self, context) -> None:
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
