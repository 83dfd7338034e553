"""The Kafka topic's contract: one reading per message, Avro binary with the schema in
include/schemas/gait_reading.avsc (no schema-registry framing), key = the recording id (UTF-8).

The replay encodes a landed recording (the MQTT contract's canonical JSON lines) in a few numpy operations; any Avro
library reads the messages with the schema file (`decode` here uses fastavro; the Spark job uses from_avro).
"""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from include.contract import SENSORS_PER_FOOT, Reading
from include.errors import BadInput
from include.gaitpdb import CHANNELS

SCHEMA_FILE = "schemas/gait_reading.avsc"
FIELDS = ("recording_id", "seq", "t", *CHANNELS)
DOUBLES = 1 + len(CHANNELS)  # t and the 18 channels, 8 bytes each (little endian), after the varints
MAX_VARINT_BYTES = 10


def schema_text() -> str:
    """The schema file's text (also from a zipped copy of this package, as Spark's executors have it)."""
    return resources.files("include").joinpath(SCHEMA_FILE).read_text()


def zigzag_varint(value: int) -> bytes:
    """Avro's encoding of one long."""
    zigzag, out = (value << 1) ^ (value >> 63), bytearray()
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def encode(recording_id: str, seq: np.ndarray, values: np.ndarray) -> list[bytes]:
    """One message value per reading: seq (n,) >= 0, values (n, 19) = t and CHANNELS. Readings with the same varint
    length of seq are laid out side by side in one byte matrix."""
    name = recording_id.encode()
    prefix = np.frombuffer(zigzag_varint(len(name)) + name, dtype=np.uint8)
    zigzag = np.asarray(seq, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    lengths = 1 + sum((zigzag >> np.uint64(7 * k)) > 0 for k in range(1, MAX_VARINT_BYTES))
    doubles = np.ascontiguousarray(values, dtype="<f8").view(np.uint8).reshape(len(zigzag), 8 * DOUBLES)
    out: list[bytes] = [b""] * len(zigzag)
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        matrix = np.empty((len(rows), len(prefix) + length + 8 * DOUBLES), dtype=np.uint8)
        matrix[:, : len(prefix)] = prefix
        for k in range(length):
            byte = (zigzag[rows] >> np.uint64(7 * k)) & np.uint64(0x7F)
            matrix[:, len(prefix) + k] = byte | np.uint64(0x80 if k < length - 1 else 0)
        matrix[:, len(prefix) + length :] = doubles[rows]
        blob, width = matrix.tobytes(), matrix.shape[1]
        for i, row in enumerate(rows.tolist()):
            out[row] = blob[i * width : (i + 1) * width]
    return out


def encode_landed(recording_id: str, lines: bytes) -> list[bytes]:
    """Message values of a landed recording file (canonical JSON lines of the MQTT contract), in file order."""
    if not lines.strip():
        return []
    seq, values = landed_columns(recording_id, lines)
    return encode(recording_id, seq, values)


def landed_columns(recording_id: str, lines: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(seq, values (n, 19): t and CHANNELS) of a landed recording file, parsed into columns in C (pyarrow);
    BadInput when a line is not one of the recording's readings."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pa_json

    feet = pa.list_(pa.float64())
    schema = pa.schema(
        [
            ("recording_id", pa.string()),
            ("seq", pa.int64()),
            ("t", pa.float64()),
            ("left", feet),
            ("right", feet),
            ("left_total", pa.float64()),
            ("right_total", pa.float64()),
        ]
    )
    try:
        table = pa_json.read_json(
            io.BytesIO(lines),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=max(len(lines), 1 << 20)),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
    except pa.ArrowInvalid as exc:
        raise BadInput(f"landed recording {recording_id} is not the contract's JSON lines: {exc}") from exc
    if any(column.null_count for column in table.columns):
        raise BadInput(f"landed recording {recording_id} has a reading without one of {', '.join(schema.names)}")
    if table.column("recording_id").unique().to_pylist() != [recording_id]:
        raise BadInput(f"landed recording {recording_id} holds readings of another recording")
    sides = [table.column(side).combine_chunks() for side in ("left", "right")]
    if any(pc.any(pc.not_equal(pc.list_value_length(side), SENSORS_PER_FOOT)).as_py() for side in sides):
        raise BadInput(f"landed recording {recording_id} has a foot without {SENSORS_PER_FOOT} sensors")
    foot = [side.flatten().to_numpy().reshape(-1, SENSORS_PER_FOOT) for side in sides]
    columns = [table.column(name).to_numpy() for name in ("t", "left_total", "right_total")]
    return table.column("seq").to_numpy(), np.column_stack([columns[0], *foot, *columns[1:]])


@cache
def _parsed_schema():
    import fastavro

    return fastavro.parse_schema(json.loads(schema_text()))


def decode(value: bytes) -> Reading:
    """A message value back as the MQTT contract's reading."""
    import fastavro

    record: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(value), _parsed_schema())  # type: ignore[assignment]
    return Reading(
        record["recording_id"],
        record["seq"],
        record["t"],
        tuple(record[f"l{i}"] for i in range(1, 9)),
        tuple(record[f"r{i}"] for i in range(1, 9)),
        record["left_total"],
        record["right_total"],
    )
