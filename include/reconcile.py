"""Reconciliation of one batch: the counts at every hop and the pairs that must agree.

Inputs are the records the stages write to HDFS (include/records.py): the simulator's manifest (when it ran),
the capture's, the replay's Kafka offsets and the Spark job's summary.
"""

from __future__ import annotations

from include.errors import BadInput
from include.records import (
    CaptureManifest,
    Check,
    HopCounts,
    KafkaOffsets,
    Reconciliation,
    SimulatedManifest,
    SparkSummary,
)


class ReconciliationError(BadInput, RuntimeError):
    """Two counts that must agree do not: something was lost or doubled between two stages."""


def expected_windows(
    seq_ranges: dict[str, tuple[int, int]], counts: dict[str, int], window_size: int, include_partial: bool
) -> int | None:
    """Windows the landed rows make (window_index = seq div window_size), or None when the seqs of some recording
    are not contiguous (then only the rows themselves could tell)."""
    total = 0
    for recording, count in counts.items():
        low, high = seq_ranges[recording]
        if high - low + 1 != count:
            return None
        first, last = low // window_size, high // window_size
        if include_partial:
            total += last - first + 1
        else:  # the windows between the first and the last are full; the edges may not be
            total += max(0, last - first - 1) + sum(
                _rows_in_window(w, low, high, window_size) == window_size for w in {first, last}
            )
    return total


def _rows_in_window(window: int, low: int, high: int, size: int) -> int:
    return min(high, (window + 1) * size - 1) - max(low, window * size) + 1


def reconcile(
    simulated: SimulatedManifest | None, capture: CaptureManifest, kafka: KafkaOffsets, spark: SparkSummary
) -> Reconciliation:
    """Counts per hop and the checks between them; `ok` is False if any check fails."""
    landed = capture.readings
    counts = HopCounts(
        published=simulated.readings if simulated else None,
        messages_received=capture.messages_received,
        dead_lettered=capture.dead_letters,
        duplicates_dropped=capture.duplicates_dropped,
        landed_in_hdfs=landed,
        produced_to_kafka=kafka.messages,
        read_by_spark=spark.kafka_messages_read,
        distinct_read_by_spark=spark.distinct_readings,
        windows_written=spark.windows_written,
        windows_expected=expected_windows(
            capture.seq_ranges, capture.recordings, spark.window_size, spark.include_partial
        ),
        feature_windows_written=spark.feature_windows_written,
        feature_windows_expected=(
            expected_windows(capture.seq_ranges, capture.recordings, spark.feature_window_size, False)
            if spark.feature_window_size
            else 0
        ),
    )
    checks = [
        Check("landed in HDFS = produced to Kafka", landed, kafka.messages, landed == kafka.messages),
        Check(
            "produced to Kafka = read by Spark",
            kafka.messages,
            spark.kafka_messages_read,
            kafka.messages == spark.kafka_messages_read,
        ),
        Check(
            "landed in HDFS = distinct readings Spark saw",
            landed,
            spark.distinct_readings,
            landed == spark.distinct_readings,
        ),
    ]
    if simulated:
        missing = sum(max(0, n - capture.recordings.get(r, 0)) for r, n in simulated.recordings.items())
        checks.append(Check("published readings missing from HDFS", missing, 0, missing == 0))
    for written, expected, label in (
        (counts.windows_written, counts.windows_expected, "windows"),
        (counts.feature_windows_written, counts.feature_windows_expected, "gait-feature windows"),
    ):
        if expected is not None:
            checks.append(
                Check(f"{label} written = expected from the landed rows", written, expected, written == expected)
            )
    return Reconciliation(batch_id=capture.batch_id, counts=counts, checks=checks, ok=all(c.ok for c in checks))
