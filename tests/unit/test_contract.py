import json

import pytest

from include import contract
from include.contract import Reading, Rejection, encode, validate

TOPIC = "gait/readings/GaCo01_01"


def reading(**overrides) -> dict:
    base = {"recording_id": "GaCo01_01", "seq": 0, "t": 0.0, "left": [1.0] * 8, "right": [2.0] * 8,
            "left_total": 8.0, "right_total": 16.0}
    base.update(overrides)
    return base


def payload(obj) -> bytes:
    return json.dumps(obj).encode()


def test_single_reading_is_valid():
    result = validate(TOPIC, payload(reading(seq=7, t=0.07)))
    assert result == [Reading("GaCo01_01", 7, 0.07, (1.0,) * 8, (2.0,) * 8, 8.0, 16.0)]


def test_batch_keeps_order():
    result = validate(TOPIC, payload([reading(seq=i) for i in range(5)]))
    assert [r.seq for r in result] == [0, 1, 2, 3, 4]


def test_integers_are_numbers():
    result = validate(TOPIC, payload(reading(left=[1] * 8, left_total=8)))
    assert result[0].left == (1.0,) * 8 and isinstance(result[0].left_total, float)


@pytest.mark.parametrize("topic, body, reason", [
    (TOPIC, b"x" * (contract.MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
    (TOPIC, b"\xff\xfe{", "bad_utf8"),
    (TOPIC, b"{not json", "not_json"),
    (TOPIC, b"", "not_json"),
    ("gait/other/GaCo01_01", payload(reading()), "bad_topic"),
    ("gait/readings/Nope", payload(reading()), "bad_topic"),
    (TOPIC, b"[]", "empty_batch"),
    (TOPIC, b"42", "not_an_object"),
    (TOPIC, payload([reading(), "x"]), "not_an_object"),
    (TOPIC, payload({k: v for k, v in reading().items() if k != "t"}), "missing_field"),
    (TOPIC, payload(reading(extra=1)), "unexpected_field"),
    (TOPIC, payload(reading(seq="0")), "wrong_type"),
    (TOPIC, payload(reading(seq=1.5)), "wrong_type"),
    (TOPIC, payload(reading(t=True)), "wrong_type"),
    (TOPIC, payload(reading(left="1,2")), "wrong_type"),
    (TOPIC, payload(reading(right=[1.0] * 9)), "wrong_length"),
    (TOPIC, payload(reading(left=[1.0] * 7)), "wrong_length"),
    (TOPIC, payload(reading(right=[1.0] * 7 + [None])), "wrong_type"),
    (TOPIC, payload(reading(recording_id=5)), "wrong_type"),
    (TOPIC, b'{"recording_id":"GaCo01_01","seq":0,"t":NaN,"left":[1,1,1,1,1,1,1,1],'
            b'"right":[1,1,1,1,1,1,1,1],"left_total":1,"right_total":1}', "not_finite"),
    (TOPIC, payload(reading(left_total=1e999)), "not_finite"),
    (TOPIC, payload(reading(seq=-1)), "negative_seq"),
    (TOPIC, payload(reading(recording_id="XxCo01_01")), "bad_recording_id"),
    (TOPIC, payload(reading(recording_id="GaPt03_01")), "recording_mismatch"),
])
def test_rejections(topic, body, reason):
    result = validate(topic, body)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert result.reason in contract.REASONS and result.detail


def test_every_reason_is_tested():
    source = open(__file__).read()
    assert all(f'"{reason}"' in source for reason in contract.REASONS)


def test_one_bad_item_rejects_the_whole_batch():
    result = validate(TOPIC, payload([reading(seq=0), reading(seq=1, left=[1.0])]))
    assert isinstance(result, Rejection) and "item 1" in result.detail


def test_dead_letter_keeps_raw_payload():
    rejection = validate(TOPIC, b"\xff")
    record = rejection.dead_letter(TOPIC, b"\xff", 0.0)
    assert record["payload_encoding"] == "base64" and record["payload"] == "/w=="
    assert record["topic"] == TOPIC and record["reason"] == "bad_utf8"
    assert record["received_at"].startswith("1970-01-01T00:00:00")


def test_encode_round_trips():
    readings = validate(TOPIC, payload([reading(seq=i, t=i / 100) for i in range(3)]))
    assert validate(TOPIC, encode(readings)) == readings
    assert validate(TOPIC, encode(readings[:1])) == readings[:1]
    assert json.loads(readings[0].to_json()) == reading(seq=0, t=0.0)
