"""The Kafka topic's Avro messages: the replay's numpy encoder writes exactly what an Avro library writes with the
schema file, and a landed recording comes back reading for reading."""

import io
import json
import zipfile

import fastavro
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include import kafka_record
from include.contract import Reading, canonical_lines
from include.errors import BadInput
from include.gaitpdb import CHANNELS

SCHEMA = fastavro.parse_schema(json.loads(kafka_record.schema_text()))
doubles = st.floats(allow_nan=False, allow_infinity=False)


def fastavro_bytes(recording_id: str, seq: int, values) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, dict(zip(kafka_record.FIELDS, [recording_id, seq, *values])))
    return buffer.getvalue()


def test_schema_fields_are_the_reading_with_named_sensors():
    assert tuple(field["name"] for field in json.loads(kafka_record.schema_text())["fields"]) == (
        "recording_id", "seq", "t", *CHANNELS)


@settings(max_examples=60, deadline=None)
@given(recording_id=st.sampled_from(["GaCo01_01", "JuPt28_10", "SiCo30_02"]),
       rows=st.lists(st.tuples(st.integers(0, 2**63 - 1), st.lists(doubles, min_size=19, max_size=19)),
                     min_size=1, max_size=40))
def test_encoding_is_byte_for_byte_what_fastavro_writes(recording_id, rows):
    seq = np.array([s for s, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.float64)
    assert kafka_record.encode(recording_id, seq, values) == [fastavro_bytes(recording_id, s, v) for s, v in rows]


@pytest.mark.parametrize("seq", [0, 1, 63, 64, 8191, 8192, 2**21, 2**56, 2**63 - 1])
def test_every_varint_length_of_seq(seq):
    values = np.arange(19, dtype=np.float64)[None, :]
    assert kafka_record.encode("GaCo01_01", np.array([seq]), values) == [fastavro_bytes("GaCo01_01", seq, values[0])]


def landed(readings: list[Reading]) -> bytes:
    return ("\n".join(canonical_lines(readings)) + "\n").encode()


def test_a_landed_recording_comes_back_reading_for_reading_in_file_order():
    rng = np.random.default_rng(7)
    readings = [Reading("GaPt03_01", int(s), int(s) / 100, tuple(rng.normal(size=8).round(2).tolist()),
                        tuple(rng.normal(size=8).tolist()), 661.5, 748.0) for s in rng.permutation(500)]
    messages = kafka_record.encode_landed("GaPt03_01", landed(readings))
    assert [kafka_record.decode(m) for m in messages] == readings
    assert [kafka_record.decode(m).to_json() for m in messages] == canonical_lines(readings)


def test_an_empty_landed_file_has_no_messages():
    assert kafka_record.encode_landed("GaPt03_01", b"") == []


@pytest.mark.parametrize("lines, reason", [
    (b'{"recording_id":"GaPt03_01","seq":0}\n', "without one of"),
    (b"not json\n", "JSON lines"),
    (landed([Reading("GaCo01_01", 0, 0.0, (1.0,) * 8, (2.0,) * 8, 8.0, 16.0)]), "another recording"),
    (landed([Reading("GaPt03_01", 0, 0.0, (1.0,) * 8, (2.0,) * 8, 8.0, 16.0)]).replace(b"[1.0,", b"[", 1),
     "8 sensors"),
])
def test_a_landed_file_that_is_not_the_contract_is_refused(lines, reason):
    with pytest.raises(BadInput, match=reason):
        kafka_record.encode_landed("GaPt03_01", lines)


def test_the_schema_travels_with_the_domain_package_to_spark(tmp_path):
    from gait_airflow.operators import domain_zip

    with zipfile.ZipFile(domain_zip(tmp_path)) as archive:
        assert archive.read(f"include/{kafka_record.SCHEMA_FILE}").decode() == kafka_record.schema_text()
