"""The MQTT message contract: one reading (or a JSON array of them) per message on gait/readings/<id>.

    {"recording_id": "GaCo01_01", "seq": 0, "t": 0.0, "left": [8 numbers], "right": [8 numbers],
     "left_total": 662.2, "right_total": 748.0}

`validate` never raises on bad input: it returns the readings or a Rejection with a reason code.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from include import names
from include.gaitpdb import RECORDING_ID

MAX_PAYLOAD_BYTES = 256 * 1024
FIELDS = ("recording_id", "seq", "t", "left", "right", "left_total", "right_total")
SENSORS_PER_FOOT = 8
MAX_SEQ = 2**63 - 1  # a Kafka/Spark/Cassandra bigint

# Every reason a message can be dead-lettered for.
REASONS = (
    "payload_too_large",
    "bad_utf8",
    "not_json",
    "bad_topic",
    "empty_batch",
    "not_an_object",
    "missing_field",
    "unexpected_field",
    "wrong_type",
    "wrong_length",
    "not_finite",
    "negative_seq",
    "bad_recording_id",
    "recording_mismatch",
)


Foot = Annotated[tuple[float, ...], msgspec.Meta(min_length=SENSORS_PER_FOOT, max_length=SENSORS_PER_FOOT)]


class Reading(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    recording_id: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
    t: float
    left: Foot
    right: Foot
    left_total: float
    right_total: float

    def to_json(self) -> str:
        """Canonical compact JSON: the line landed in HDFS and the value replayed to Kafka."""
        return _ENCODER.encode(self).decode()


_ENCODER = msgspec.json.Encoder()
# Decodes (and type-checks) a well-formed message in C; anything it refuses goes to the checks below for a reason.
_DECODER = msgspec.json.Decoder(list[Reading] | Reading)


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str

    def dead_letter(self, topic: str, payload: bytes, received_at: float) -> dict:
        """The record kept in the dead letter: topic, raw payload, reason, receive time."""
        try:
            raw, encoding = payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            raw, encoding = base64.b64encode(payload).decode("ascii"), "base64"
        return {
            "topic": topic,
            "payload": raw,
            "payload_encoding": encoding,
            "reason": self.reason,
            "detail": self.detail,
            "received_at": datetime.fromtimestamp(received_at, UTC).isoformat(),
        }


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def recording_id_from_topic(topic: str) -> str | None:
    prefix = names.MQTT_TOPIC_PREFIX + "/"
    if not topic.startswith(prefix):
        return None
    candidate = topic[len(prefix) :]
    return candidate if RECORDING_ID.match(candidate) else None


def validate(topic: str, payload: bytes) -> list[Reading] | Rejection:
    """Parse and check one MQTT message; all readings are valid, or the whole message is rejected."""
    readings = _decode_well_formed(topic, payload)
    return readings if readings is not None else checked(topic, payload)


def checked(topic: str, payload: bytes) -> list[Reading] | Rejection:
    """The slow path of `validate`: every check in turn, so a rejected message gets its reason."""
    try:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise _Invalid("payload_too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
        topic_id = recording_id_from_topic(topic)
        if topic_id is None:
            raise _Invalid("bad_topic", f"topic {topic!r} is not {names.MQTT_TOPIC_PREFIX}/<recording id>")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Invalid("bad_utf8", str(exc)) from None
        try:
            document = json.loads(text, parse_constant=_reject_constant)
        except _Invalid:
            raise
        except (ValueError, RecursionError) as exc:
            raise _Invalid("not_json", str(exc)[:200]) from None
        items = document if isinstance(document, list) else [document]
        if not items:
            raise _Invalid("empty_batch", "empty JSON array")
        return [_reading(item, topic_id, index) for index, item in enumerate(items)]
    except _Invalid as invalid:
        return invalid.rejection


def _decode_well_formed(topic: str, payload: bytes) -> list[Reading] | None:
    """The fast path: the readings when the message is valid beyond doubt, else None (then the checks below
    find the reason, or accept what this path is too strict for, such as a seq beyond 64 bits)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    topic_id = recording_id_from_topic(topic)
    try:
        decoded = _DECODER.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    readings = decoded if type(decoded) is list else [decoded]
    if not readings:
        return None
    # msgspec refuses numbers beyond the float range, so every float here is finite.
    if any(r.recording_id != topic_id for r in readings):
        return None
    return readings


def _reject_constant(name: str) -> float:
    raise _Invalid("not_finite", f"{name} is not a finite number")


def _reading(item: object, topic_id: str, index: int) -> Reading:
    where = f"item {index}: "
    if not isinstance(item, dict):
        raise _Invalid("not_an_object", f"{where}expected a JSON object, got {type(item).__name__}")
    missing = [f for f in FIELDS if f not in item]
    if missing:
        raise _Invalid("missing_field", f"{where}missing {missing}")
    extra = sorted(set(item) - set(FIELDS))
    if extra:
        raise _Invalid("unexpected_field", f"{where}unexpected {extra}")
    recording_id = item["recording_id"]
    if not isinstance(recording_id, str):
        raise _Invalid("wrong_type", f"{where}recording_id must be a string")
    if not RECORDING_ID.match(recording_id):
        raise _Invalid("bad_recording_id", f"{where}{recording_id!r} is not like 'GaCo01_01'")
    if recording_id != topic_id:
        raise _Invalid("recording_mismatch", f"{where}recording_id {recording_id!r} != topic's {topic_id!r}")
    seq = item["seq"]
    if type(seq) is not int:
        raise _Invalid("wrong_type", f"{where}seq must be an integer")
    if seq < 0:
        raise _Invalid("negative_seq", f"{where}seq {seq} < 0")
    if seq > MAX_SEQ:
        raise _Invalid("wrong_type", f"{where}seq {seq} does not fit a 64-bit integer")
    left = _foot(item["left"], "left", where)
    right = _foot(item["right"], "right", where)
    return Reading(
        recording_id,
        seq,
        _number(item["t"], "t", where),
        left,
        right,
        _number(item["left_total"], "left_total", where),
        _number(item["right_total"], "right_total", where),
    )


def _number(value: object, field: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):  # bool is not a number here
        raise _Invalid("wrong_type", f"{where}{field} must be a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        raise _Invalid("not_finite", f"{where}{field} is not finite")
    return float(value)


def _foot(value: object, field: str, where: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise _Invalid("wrong_type", f"{where}{field} must be an array of {SENSORS_PER_FOOT} numbers")
    if len(value) != SENSORS_PER_FOOT:
        raise _Invalid("wrong_length", f"{where}{field} has {len(value)} values, expected {SENSORS_PER_FOOT}")
    return tuple(_number(v, f"{field}[{i}]", where) for i, v in enumerate(value))


def reading_from_row(recording_id: str, seq: int, row) -> Reading:
    """A contract reading from one gaitpdb row (time, L1..L8, R1..R8, left total, right total)."""
    values = list(map(float, row))
    return Reading(recording_id, seq, values[0], tuple(values[1:9]), tuple(values[9:17]), values[17], values[18])


def encode(readings: list[Reading]) -> bytes:
    """An MQTT payload: one object for a single reading, a JSON array for a batch."""
    return _ENCODER.encode(readings[0] if len(readings) == 1 else readings)


def canonical_lines(readings: list[Reading]) -> list[str]:
    """Each reading's canonical JSON (as Reading.to_json), encoded in one call."""
    return _ENCODER.encode_lines(readings).decode().split("\n")[:-1]
