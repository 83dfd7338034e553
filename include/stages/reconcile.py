"""The reconcile_counts stage: counts at every hop of the batch, written to HDFS; a mismatch fails the run."""

from __future__ import annotations

import logging

from include.capture import read_manifest
from include.filestore import read_record, require_record, write_record
from include.layout import BatchLayout
from include.reconcile import ReconciliationError
from include.reconcile import reconcile as reconcile_batch
from include.records import KafkaOffsets, Reconciliation, SimulatedManifest, SparkSummary
from include.stages.services import Services

log = logging.getLogger(__name__)


def reconcile(services: Services, batch: str) -> Reconciliation:
    store, layout = services.hdfs(), BatchLayout(batch)
    simulated = read_record(store, layout.simulated, SimulatedManifest)
    kafka = require_record(store, layout.kafka_offsets, KafkaOffsets, "run replay_hdfs_to_kafka first")
    spark = require_record(store, layout.spark_summary, SparkSummary, "run spark_window_means first")
    report = reconcile_batch(
        simulated if simulated and simulated.simulated else None, read_manifest(store, batch), kafka, spark
    )
    path = write_record(store, layout.reconciliation, report)
    counts = report.counts
    log.info(
        "reconcile: published %s, landed %s, dead-lettered %s, produced %s, read by Spark %s, windows %s of %s "
        "expected, gait-feature windows %s of %s: %s",
        counts.published,
        counts.landed_in_hdfs,
        counts.dead_lettered,
        counts.produced_to_kafka,
        counts.read_by_spark,
        counts.windows_written,
        counts.windows_expected,
        counts.feature_windows_written,
        counts.feature_windows_expected,
        "all agree" if report.ok else "MISMATCH",
    )
    if not report.ok:
        raise ReconciliationError(f"batch {batch} does not reconcile: {report.failures()} (counts in hdfs://{path})")
    return report
