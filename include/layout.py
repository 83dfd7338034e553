"""Where things live in HDFS: a batch's landed files and manifests, a training run's artifacts. The one place
these paths are built (a path's batch id may also be an Airflow template: the DAG passes one to Spark)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from include import names

SUCCESS = "_SUCCESS"  # the capture's manifest, beside the landed files
PARTS = "_parts"  # chunks landed during a capture, folded into the final files at its end
DEAD_LETTERS = "dead_letters.jsonl"


@dataclass(frozen=True)
class BatchLayout:
    batch_id: str

    @property
    def raw_dir(self) -> str:
        return f"{names.HDFS_RAW_DIR}/batch={self.batch_id}"

    def recording_file(self, recording_id: str) -> str:
        return f"{self.raw_dir}/{recording_id}.jsonl"

    @property
    def parts_dir(self) -> str:
        return f"{self.raw_dir}/{PARTS}"

    @property
    def capture_manifest(self) -> str:
        return f"{self.raw_dir}/{SUCCESS}"

    @property
    def dead_letter_dir(self) -> str:
        return f"{names.HDFS_DEAD_LETTER_DIR}/batch={self.batch_id}"

    @property
    def dead_letter_file(self) -> str:
        return f"{self.dead_letter_dir}/{DEAD_LETTERS}"

    @property
    def manifest_dir(self) -> str:
        return f"{names.HDFS_MANIFEST_DIR}/batch={self.batch_id}"

    @property
    def simulated(self) -> str:
        """What the simulator published (simulate_sensors)."""
        return f"{self.manifest_dir}/simulated.json"

    @property
    def kafka_offsets(self) -> str:
        """The replay's produced range, read by the Spark job."""
        return f"{self.manifest_dir}/kafka_offsets.json"

    @property
    def spark_summary(self) -> str:
        """The Spark job's counts and phase times."""
        return f"{self.manifest_dir}/window_means_summary.json"

    @property
    def reconciliation(self) -> str:
        """Counts at every hop (reconcile_counts)."""
        return f"{self.manifest_dir}/reconciliation.json"

    @property
    def directories(self) -> tuple[str, ...]:
        return self.raw_dir, self.dead_letter_dir, self.manifest_dir


def batch_of(directory_name: str) -> str | None:
    """The batch id of a `batch=<id>` directory name, or None."""
    return directory_name.split("=", 1)[1] if directory_name.startswith("batch=") else None


@dataclass(frozen=True)
class ModelLayout:
    run_id: str

    @property
    def directory(self) -> str:
        return f"{names.HDFS_MODEL_DIR}/{self.run_id}"

    @property
    def model(self) -> str:
        return f"{self.directory}/model.pkl"

    @property
    def report(self) -> str:
        return f"{self.directory}/report.json"

    @property
    def plots_dir(self) -> str:
        return f"{self.directory}/plots"

    def plot(self, name: str) -> str:
        return f"{self.plots_dir}/{name}.png"


def batch_id(logical_date: datetime | None, run_id: str) -> str:
    """The batch a run works on: its logical date (UTC, e.g. 20261121T020000), else its sanitised run id."""
    if logical_date is not None:
        return logical_date.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
