import msgspec
import pytest

from include.reconcile import expected_windows, reconcile
from include.records import CaptureManifest, KafkaOffsets, SimulatedManifest, SparkSummary
from include.windowing import window_means


@pytest.mark.parametrize("low, high, size, partial", [(0, 1049, 100, False), (0, 1049, 100, True),
                                                      (0, 1049, 300, False), (50, 1049, 100, False),
                                                      (0, 99, 100, False), (0, 98, 100, False), (7, 7, 100, True)])
def test_expected_windows_equal_the_windowing_reference(low, high, size, partial):
    import numpy as np

    seq = np.arange(low, high + 1)
    reference = window_means(seq, seq.astype(float), np.zeros((len(seq), 18)), size, complete_only=not partial)
    assert expected_windows({"r": (low, high)}, {"r": len(seq)}, size, partial) == len(reference["window_index"])


def test_gaps_give_no_expectation():
    assert expected_windows({"r": (0, 10)}, {"r": 10}, 5, False) is None


CAPTURE = CaptureManifest(batch_id="b", readings=2100, recordings={"a": 1050, "b": 1050},
                          seq_ranges={"a": (0, 1049), "b": (0, 1049)}, dead_letters=3, dead_letter_reasons={},
                          messages_received=50, duplicates_dropped=0, raw_dir="/raw", dead_letter_dir="/dead",
                          landed_at="2026-12-02T00:00:00+00:00")
KAFKA = KafkaOffsets(batch_id="b", topic="t", partitions={0: (0, 2100)}, messages=2100, recordings=["a", "b"],
                     produced_at="2026-12-02T00:00:00Z")
SPARK = SparkSummary(batch_id="b", kafka_messages_read=2100, distinct_readings=2100, windows_written=20,
                     window_size=100, include_partial=False, feature_windows_written=6, feature_window_size=300,
                     kafka_messages_expected=2100, kafka_offsets={0: (0, 2100)})
SIMULATED = SimulatedManifest(simulated=True, readings=2100, recordings={"a": 1050, "b": 1050})


def test_a_clean_batch_reconciles():
    report = reconcile(SIMULATED, CAPTURE, KAFKA, SPARK)
    assert report.ok and report.counts.windows_expected == 20
    assert report.counts.feature_windows_expected == 6 and report.counts.published == 2100


@pytest.mark.parametrize("stage, change, named", [
    ("kafka", {"messages": 2099}, "landed in HDFS = produced to Kafka"),
    ("spark", {"kafka_messages_read": 2101}, "produced to Kafka = read by Spark"),
    ("spark", {"distinct_readings": 2000}, "distinct readings Spark saw"),
    ("spark", {"windows_written": 19}, "windows written = expected"),
    ("spark", {"feature_windows_written": 7}, "gait-feature windows written"),
    ("simulated", {"recordings": {"a": 1050, "b": 1051}}, "published readings missing from HDFS"),
])
def test_every_disagreement_is_named(stage, change, named):
    parts = {"simulated": SIMULATED, "capture": CAPTURE, "kafka": KAFKA, "spark": SPARK}
    parts[stage] = msgspec.structs.replace(parts[stage], **change)
    report = reconcile(**parts)
    assert not report.ok and named in report.failures()
