"""Reconciliation of one batch: the counts at every hop and the pairs that must agree.

Inputs are the manifests the stages write to HDFS: simulated.json (the simulator, when it ran), the capture's
_SUCCESS, kafka_offsets.json (replay) and window_means_summary.json (Spark).
"""
from __future__ import annotations

from dataclasses import dataclass

from include.errors import BadInput


class ReconciliationError(BadInput, RuntimeError):
    """Two counts that must agree do not: something was lost or doubled between two stages."""


@dataclass(frozen=True)
class Check:
    name: str
    left: int
    right: int
    ok: bool


def expected_windows(seq_ranges: dict[str, list[int]] | None, counts: dict[str, int], window_size: int,
                     include_partial: bool) -> int | None:
    """Windows the landed rows make (window_index = seq // window_size), or None when the seqs of some recording
    are not contiguous or unknown (then only the rows themselves could tell)."""
    if seq_ranges is None:
        return None
    total = 0
    for recording, count in counts.items():
        low, high = seq_ranges[recording]
        if high - low + 1 != count:
            return None
        first, last = low // window_size, high // window_size
        if include_partial:
            total += last - first + 1
        else:  # the windows between the first and the last are full; the edges may not be
            total += max(0, last - first - 1) + sum(_rows_in_window(w, low, high, window_size) == window_size
                                                    for w in {first, last})
    return total


def _rows_in_window(window: int, low: int, high: int, size: int) -> int:
    return min(high, (window + 1) * size - 1) - max(low, window * size) + 1


def reconcile(simulated: dict | None, capture: dict, kafka: dict, spark: dict) -> dict:
    """Counts per hop and the checks between them; `ok` is False if any check fails."""
    landed = capture["readings"]
    counts = {
        "published": simulated["readings"] if simulated else None,
        "messages_received": capture.get("messages_received"),
        "dead_lettered": capture["dead_letters"],
        "duplicates_dropped": capture.get("duplicates_dropped"),
        "landed_in_hdfs": landed,
        "produced_to_kafka": kafka["messages"],
        "read_by_spark": spark["kafka_messages_read"],
        "distinct_read_by_spark": spark["distinct_readings"],
        "windows_written": spark["windows_written"],
        "windows_expected": expected_windows(capture.get("seq_ranges"), capture["recordings"],
                                             spark["window_size"], spark["include_partial"]),
        "feature_windows_written": spark.get("feature_windows_written", 0),
        "feature_windows_expected": (expected_windows(capture.get("seq_ranges"), capture["recordings"],
                                                      spark["feature_window_size"], False)
                                     if spark.get("feature_window_size") else 0),
    }
    checks = [
        Check("landed in HDFS = produced to Kafka", landed, kafka["messages"], landed == kafka["messages"]),
        Check("produced to Kafka = read by Spark", kafka["messages"], spark["kafka_messages_read"],
              kafka["messages"] == spark["kafka_messages_read"]),
        Check("landed in HDFS = distinct readings Spark saw", landed, spark["distinct_readings"],
              landed == spark["distinct_readings"]),
    ]
    if simulated:
        missing = sum(max(0, n - capture["recordings"].get(r, 0)) for r, n in simulated["recordings"].items())
        checks.append(Check("published readings missing from HDFS", missing, 0, missing == 0))
    for written, expected, label in ((counts["windows_written"], counts["windows_expected"], "windows"),
                                     (counts["feature_windows_written"], counts["feature_windows_expected"],
                                      "gait-feature windows")):
        if expected is not None:
            checks.append(Check(f"{label} written = expected from the landed rows", written, expected,
                                written == expected))
    return {"counts": counts, "checks": [c.__dict__ for c in checks], "ok": all(c.ok for c in checks)}


def failures(report: dict) -> str:
    return "; ".join(f"{c['name']}: {c['left']:,} vs {c['right']:,}" for c in report["checks"] if not c["ok"])
