"""Batch assembly of the capture (no services): dedupe, dead letters, merge with an earlier attempt."""
import json

from include.capture import Batch, Message

TOPIC = "gait/readings/GaCo01_01"


def reading(seq: int, **overrides) -> dict:
    base = {"recording_id": "GaCo01_01", "seq": seq, "t": seq / 100, "left": [1.0] * 8, "right": [2.0] * 8,
            "left_total": 8.0, "right_total": 16.0}
    return {**base, **overrides}


def message(payload, topic: str = TOPIC) -> Message:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Message(topic, body, mid=1, qos=1, received_at=0.0)


def test_duplicates_written_once():
    batch = Batch()
    added = [batch.add(m) for m in (message(reading(0)), message([reading(0), reading(1)]), message(reading(1)))]
    assert batch.reading_count == 2 and batch.duplicates == 2
    assert [len(lines) for lines, _ in added] == [1, 1, 0]  # a chunk's part holds only what it added


def test_dead_letters_keep_reason_and_dedupe_redeliveries():
    batch = Batch()
    bad = message(b"not json")
    batch.add(bad)
    batch.add(bad)  # a redelivery of the same message
    batch.add(message(reading(-1)))
    reasons = sorted(r["reason"] for r in batch.dead_letters.values())
    assert reasons == ["negative_seq", "not_json"] and batch.reading_count == 0


def test_merge_with_landed_lines_keeps_first_copy():
    batch = Batch()
    batch.merge_lines([json.dumps(reading(0)), json.dumps(reading(1))])
    batch.add(message(reading(1)))
    batch.add(message(reading(2)))
    assert sorted(batch.readings["GaCo01_01"]) == [0, 1, 2] and batch.duplicates == 1


def test_batch_id_from_logical_date_or_run_id():
    from datetime import datetime, timedelta, timezone

    from include.layout import batch_id

    date = datetime(2026, 3, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert batch_id(date, "ignored") == "20260301T003000"
    assert batch_id(None, "manual__2026-03-01T00:30:00+00:00") == "manual__2026-03-01T00_30_00_00_00"
