import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_seq_beyond_64_bits_is_rejected():
    assert validate(TOPIC, payload(reading(seq=contract.MAX_SEQ + 1))).reason == "wrong_type"
    assert validate(TOPIC, payload(reading(seq=contract.MAX_SEQ)))[0].seq == contract.MAX_SEQ


def test_integer_too_large_for_a_float_is_not_finite():
    assert validate(TOPIC, payload(reading(t=10**400))).reason == "not_finite"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=12), inner, max_size=8),
    max_leaves=20)


@st.composite
def _near_valid_payloads(draw) -> bytes:
    """Valid readings with some fields replaced, dropped or added, or raw JSON-ish bytes."""
    item = reading(seq=draw(st.integers(min_value=0, max_value=10**6)))
    for key in draw(st.lists(st.sampled_from(contract.FIELDS), max_size=3)):
        action = draw(st.sampled_from(["replace", "drop", "number"]))
        if action == "drop":
            item.pop(key, None)
        elif action == "number":
            item[key] = draw(st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=False))
        else:
            item[key] = draw(_json_values)
    if draw(st.booleans()):
        item[draw(st.text(max_size=5))] = draw(_json_values)
    body = json.dumps(draw(st.sampled_from([item, [item], [item, reading(seq=1)], []]))).encode()
    return draw(st.sampled_from([body, body[:-1], body.replace(b"1.0", b"1e999"), body.replace(b"1.0", b"NaN")]))


@settings(max_examples=500, deadline=None, derandomize=True)
@given(_near_valid_payloads(), st.sampled_from([TOPIC, "gait/readings/GaPt01_01", "gait/other"]))
def test_fast_path_agrees_with_the_checks(body, topic):
    """`validate` decodes well-formed messages in C; it must decide exactly as the field-by-field checks do."""
    fast, slow = validate(topic, body), contract.checked(topic, body)
    if isinstance(slow, Rejection):
        assert isinstance(fast, Rejection) and fast.reason == slow.reason
    else:
        assert fast == slow and [r.to_json() for r in fast] == [r.to_json() for r in slow]


def test_canonical_lines_are_each_readings_json():
    readings = validate(TOPIC, payload([reading(seq=i, t=i / 100) for i in range(7)]))
    assert contract.canonical_lines(readings) == [r.to_json() for r in readings]
    assert [json.loads(line)["seq"] for line in contract.canonical_lines(readings)] == list(range(7))
