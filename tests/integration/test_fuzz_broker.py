"""Property-based fuzzing of the MQTT message contract through the real broker and the real capture into HDFS.

Hypothesis draws about 1,200 messages (every reason in contract.REASONS, valid readings and batches mixed in),
plus redelivered copies of some; they are published once with QoS 1 and drained by include/capture.py into a batch
of the test's own. Each malformed message carries the reason it was built for, checked against the dead letters and
against `include.contract.validate`.

Isolation from other work on the same broker and HDFS: a client id, recording ids (subjects 90-99, walk drawn per
run) and a batch id of its own; it subscribes only to its own topics. The pipeline's durable session
(gait/readings/+) also gets the copies on gait/readings/<x>: they carry an MQTT 5 message expiry, so they are
dropped unless a capture is draining at that very moment, instead of landing in a later pipeline batch.
"""
from __future__ import annotations

import base64
import json
import random
import re
import time
import uuid
from collections import Counter
from typing import NamedTuple

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from include import contract, names
from include.contract import FIELDS, MAX_PAYLOAD_BYTES, Rejection, validate

RUN = uuid.uuid4().hex[:8]
_walks = random.Random(RUN)
RECORDINGS = [f"{study}{group}{number}_{_walks.randrange(100):02d}" for study, group, number in
              (("Ga", "Co", 90), ("Ga", "Pt", 91), ("Ju", "Co", 92), ("Ju", "Pt", 93), ("Si", "Co", 94),
               ("Si", "Pt", 97))]
FUZZ_PREFIX = f"gait/fuzz-{RUN}"  # bad topics outside gait/readings, under one wildcard subscription
BAD_TOPICS = [FUZZ_PREFIX, f"gait/readings/fuzz{RUN}", f"gait/readings/{RECORDINGS[0]}/{RUN}",
              f"gait/readings/{RECORDINGS[0]}{RUN}", f"gait/readings-{RUN}/{RECORDINGS[0]}"]
EXPIRY_SECONDS = 60
# The contract's recording id, written independently of include/gaitpdb.py: ASCII digits, the whole string.
RECORDING_ID = re.compile(r"(Ga|Ju|Si)(Co|Pt)[0-9]{2}_[0-9]{2}")


def topic(recording_id: str) -> str:
    return f"gait/readings/{recording_id}"


class Raw(str):
    """JSON text written as is (NaN, Infinity, 1e999), which json.dumps cannot produce inside a document."""


SEQ = object()  # placeholder: every reading gets a seq no other reading has when the message is rendered


class Case(NamedTuple):
    topic: str
    body: object  # bytes, or a JSON document with SEQ placeholders and Raw values
    reason: str | None  # None: valid
    sep: str = ","
    style: str = "json"  # json | repr (Python literal) | cut (truncated) | trailing (data after the value)
    cut: float = 0.0
    pad_to: int = 0  # trailing spaces up to this many bytes


# --- strategies ----------------------------------------------------------------------------------------

NUMBER = st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
SCALAR = st.none() | st.booleans() | NUMBER | st.text(max_size=8)
JSON_VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=8)
NOT_NUMBER = st.none() | st.booleans() | st.text(max_size=8) | st.lists(NUMBER, max_size=3) \
    | st.dictionaries(st.text(max_size=4), NUMBER, max_size=2)
NOT_LIST = st.none() | st.booleans() | NUMBER | st.text(max_size=8) | st.dictionaries(st.text(max_size=4), NUMBER)
NOT_INT = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8) \
    | st.lists(st.integers(), max_size=2)
NOT_STRING = st.none() | st.booleans() | NUMBER | st.lists(st.text(max_size=4), max_size=2) | st.just({})
CONSTANTS = ["NaN", "Infinity", "-Infinity"]
OVERFLOWS = ["1e999", "-1e999", "1" + "0" * 400, "-1" + "0" * 400]  # parsed fine, but no finite float
NUMERIC_SLOTS = ["t", "left_total", "right_total"] + [f"{foot}[{i}]" for foot in ("left", "right") for i in range(8)]
SEPARATORS = st.sampled_from([",", ", ", ",\n  ", "\t,"])
# A topic level the broker takes: no wildcards, NUL or control characters
TOPIC_TEXT = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="+#"), max_size=12)
ANY_ID = st.builds("{}{}{:02d}_{:02d}".format, st.sampled_from(["Ga", "Ju", "Si"]), st.sampled_from(["Co", "Pt"]),
                   st.integers(0, 99), st.integers(0, 99))


@st.composite
def reading(draw, recording_id: str) -> dict:
    values = {"recording_id": recording_id, "seq": SEQ, "t": draw(NUMBER),
              "left": draw(st.lists(NUMBER, min_size=8, max_size=8)),
              "right": draw(st.lists(NUMBER, min_size=8, max_size=8)),
              "left_total": draw(NUMBER), "right_total": draw(NUMBER)}
    return {key: values[key] for key in draw(st.permutations(FIELDS))}  # any field order


@st.composite
def valid(draw, batch: bool) -> Case:
    recording_id = draw(st.sampled_from(RECORDINGS))
    body = draw(st.lists(reading(recording_id), min_size=2, max_size=40)) if batch else draw(reading(recording_id))
    return Case(topic(recording_id), body, None, draw(SEPARATORS))


@st.composite
def broken(draw, reason: str, breaker) -> Case:
    """A single reading or a batch on its recording's topic whose item at a drawn index `breaker` spoils;
    the items before and after it are valid."""
    recording_id = draw(st.sampled_from(RECORDINGS))
    items = draw(st.lists(reading(recording_id), min_size=1, max_size=5))
    index = draw(st.integers(0, len(items) - 1))
    items[index] = breaker(draw, items[index], recording_id)
    body = items[0] if len(items) == 1 and isinstance(items[0], dict) and draw(st.booleans()) else items
    return Case(topic(recording_id), body, reason, draw(SEPARATORS))


def set_slot(item: dict, slot: str, value) -> dict:
    if "[" in slot:
        foot, i = slot[:-1].split("[")
        item[foot] = [value if j == int(i) else v for j, v in enumerate(item[foot])]
    else:
        item[slot] = value
    return item


def drop_fields(draw, item, _):
    dropped = draw(st.sets(st.sampled_from(FIELDS), min_size=1))
    kept = {k: v for k, v in item.items() if k not in dropped}
    if draw(st.booleans()):  # an extra field too: missing is checked first
        kept[draw(st.text(max_size=6).filter(lambda k: k not in FIELDS))] = draw(JSON_VALUE)
    return kept


def add_fields(draw, item, _):
    extra = draw(st.dictionaries(st.text(max_size=10).filter(lambda k: k not in FIELDS), JSON_VALUE, min_size=1,
                                 max_size=3))
    return {**item, **extra}


def wrong_type(draw, item, _):
    field = draw(st.sampled_from(FIELDS))
    if field == "recording_id":
        return {**item, field: draw(NOT_STRING)}
    if field == "seq":
        return {**item, field: draw(NOT_INT)}
    if field in ("left", "right") and draw(st.booleans()):
        return set_slot(item, f"{field}[{draw(st.integers(0, 7))}]", draw(NOT_NUMBER))
    return {**item, field: draw(NOT_LIST if field in ("left", "right") else NOT_NUMBER)}


def wrong_length(draw, item, _):
    foot = draw(st.sampled_from(["left", "right"]))
    return {**item, foot: draw(st.lists(NUMBER, max_size=20).filter(lambda v: len(v) != 8))}


def not_finite(draw, item, _):
    if draw(st.booleans()):  # a NaN/Infinity token anywhere: refused while parsing
        return {**item, draw(st.sampled_from(FIELDS)): Raw(draw(st.sampled_from(CONSTANTS)))}
    return set_slot(item, draw(st.sampled_from(NUMERIC_SLOTS)), Raw(draw(st.sampled_from(CONSTANTS + OVERFLOWS))))


def negative_seq(draw, item, _):
    return {**item, "seq": draw(st.integers(max_value=-1))}


def bad_recording_id(draw, item, recording_id):
    mutated = draw(st.sampled_from([recording_id.lower(), recording_id.upper(), recording_id.replace("_", "-"),
                                    "Xx" + recording_id[2:], recording_id[:2] + "Cx" + recording_id[4:]])
                   | st.builds(lambda i: recording_id[:i] + recording_id[i + 1:], st.integers(0, 8))
                   | st.builds(lambda i, c: recording_id[:i] + c + recording_id[i:], st.integers(0, 9),
                               st.characters(codec="ascii", exclude_categories=["Cc"]))
                   | st.text(max_size=12))
    assume(not RECORDING_ID.fullmatch(mutated))
    return {**item, "recording_id": mutated}


def other_recording(draw, item, recording_id):
    return {**item, "recording_id": draw(ANY_ID.filter(lambda r: r != recording_id))}


def not_an_object(draw, _item, _):
    return draw(SCALAR | st.lists(JSON_VALUE, max_size=3))


@st.composite
def bad_utf8(draw) -> Case:
    """Bytes that are invalid UTF-8 wherever they stand: never valid lead bytes, a surrogate, beyond U+10FFFF."""
    recording_id = draw(st.sampled_from(RECORDINGS))
    base = draw(st.binary(max_size=300) | st.builds(lambda d: json.dumps(d).encode(), JSON_VALUE))
    bad = draw(st.sampled_from([b"\xff", b"\xfe", b"\xc0\xaf", b"\xc1\xbf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                b"\xf8\x88\x80\x80\x80"]))
    at = draw(st.integers(0, len(base)))
    return Case(topic(recording_id), base[:at] + bad + base[at:], "bad_utf8")


@st.composite
def not_json(draw) -> Case:
    recording_id = draw(st.sampled_from(RECORDINGS))
    kind = draw(st.sampled_from(["cut", "repr", "trailing", "garbage", "bom", "deep"]))
    if kind == "garbage":  # starts with something no JSON value starts with
        text = draw(st.sampled_from(["#", "x", "<", "'", "}", "]", ","])) + draw(st.text(max_size=40))
        return Case(topic(recording_id), text.encode(), "not_json")
    if kind == "bom":
        return Case(topic(recording_id), b"\xef\xbb\xbf" + json.dumps(draw(JSON_VALUE)).encode(), "not_json")
    if kind == "deep":  # nesting deeper than any parser's recursion limit
        depth = draw(st.integers(2_000, 60_000))
        return Case(topic(recording_id), b"[" * depth + b"]" * depth, "not_json")
    doc = draw(reading(recording_id) | st.lists(reading(recording_id), min_size=1, max_size=5))
    return Case(topic(recording_id), doc, "not_json", style=kind, cut=draw(st.floats(0, 0.999)))


@st.composite
def empty_batch(draw) -> Case:
    space = st.text(" \t\r\n", max_size=3)
    body = draw(space) + "[" + draw(space) + "]" + draw(space)
    return Case(topic(draw(st.sampled_from(RECORDINGS))), body.encode(), "empty_batch")


@st.composite
def any_body(draw):
    return draw(st.binary(max_size=200) | JSON_VALUE | reading(draw(st.sampled_from(RECORDINGS))))


@st.composite
def bad_topic(draw) -> Case:
    name = draw(st.sampled_from(BAD_TOPICS) | st.builds(f"{FUZZ_PREFIX}/{{}}".format, TOPIC_TEXT))
    return Case(name, draw(any_body()), "bad_topic")


@st.composite
def too_large(draw) -> Case:
    name = draw(st.sampled_from([topic(r) for r in RECORDINGS] + BAD_TOPICS))
    return Case(name, draw(any_body()), "payload_too_large", pad_to=MAX_PAYLOAD_BYTES + draw(st.integers(1, 40_000)))


@st.composite
def at_the_limit(draw) -> Case:
    """A valid batch padded with whitespace to exactly the largest payload the contract takes."""
    return draw(valid(batch=True))._replace(pad_to=MAX_PAYLOAD_BYTES)


# (strategy, examples): every reason in contract.REASONS, plus valid singles and batches
KINDS = {
    "valid reading": (valid(batch=False), 220),
    "valid batch": (valid(batch=True), 110),
    "valid batch at the size limit": (at_the_limit(), 3),
    "payload_too_large": (too_large(), 20),
    "bad_utf8": (bad_utf8(), 60),
    "not_json": (not_json(), 80),
    "bad_topic": (bad_topic(), 60),
    "empty_batch": (empty_batch(), 30),
    "not_an_object": (broken("not_an_object", not_an_object) | st.builds(
        lambda r, v: Case(topic(r), v, "not_an_object"), st.sampled_from(RECORDINGS), SCALAR), 60),
    "missing_field": (broken("missing_field", drop_fields), 60),
    "unexpected_field": (broken("unexpected_field", add_fields), 60),
    "wrong_type": (broken("wrong_type", wrong_type), 120),
    "wrong_length": (broken("wrong_length", wrong_length), 60),
    "not_finite": (broken("not_finite", not_finite) | st.builds(
        lambda r, c: Case(topic(r), Raw(c), "not_finite"), st.sampled_from(RECORDINGS), st.sampled_from(CONSTANTS)),
        80),
    "negative_seq": (broken("negative_seq", negative_seq), 50),
    "bad_recording_id": (broken("bad_recording_id", bad_recording_id), 60),
    "recording_mismatch": (broken("recording_mismatch", other_recording), 50),
}


def draw_examples(strategy, n: int) -> list:
    """n examples of a strategy, derandomized (no example database). Hypothesis also mixes in literals of the
    project's modules loaded at the time, so the draw is the same for the same test selection, not across
    selections; a failure shows the offending payloads."""
    drawn = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example):
        drawn.append(example)

    collect()
    return drawn


# --- rendering -----------------------------------------------------------------------------------------

def to_text(value, sep: str) -> str:
    if isinstance(value, Raw):
        return value
    if isinstance(value, dict):
        return "{" + sep.join(f"{json.dumps(k)}:{to_text(v, sep)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + sep.join(to_text(v, sep) for v in value) + "]"
    return json.dumps(value)


def fill_seqs(body, seqs) -> list[dict]:
    """Replace the SEQ placeholders of the top-level readings in place; returns those readings."""
    items = body if isinstance(body, list) else [body]
    readings = [item for item in items if isinstance(item, dict) and item.get("seq") is SEQ]
    for item in readings:
        item["seq"] = next(seqs)
    return readings


class Published(NamedTuple):
    topic: str
    payload: bytes
    reason: str | None
    readings: list[dict]  # of a valid message


def render(case: Case, seqs) -> Published:
    readings = [] if isinstance(case.body, bytes) else fill_seqs(case.body, seqs)
    if isinstance(case.body, bytes):
        payload = case.body
    elif case.style == "repr":
        payload = repr(case.body).encode()
    else:
        payload = to_text(case.body, case.sep).encode()
        if case.style == "cut":  # a proper prefix of an object or array is never JSON
            payload = payload[:int(len(payload) * case.cut)]
        elif case.style == "trailing":
            payload += b" x"
    if case.pad_to:
        assert len(payload) <= case.pad_to
        payload += b" " * (case.pad_to - len(payload))
    return Published(case.topic, payload, case.reason, readings if case.reason is None else [])


def corpus() -> tuple[list[Published], Counter]:
    """Every message to publish: each kind's examples, then a copy of every 7th valid and 9th malformed one
    (a redelivery: landed or dead-lettered once)."""
    seqs = iter(range(10**9))
    messages, kinds = [], Counter()
    for kind, (strategy, n) in KINDS.items():
        for case in draw_examples(strategy, n):
            message = render(case, seqs)
            messages.append(message)
            kinds[kind] += 1
    copies = [m for m in messages if m.reason is None][::7] + [m for m in messages if m.reason][::9]
    kinds["redelivered copies"] = len(copies)
    return messages + copies, kinds


# --- broker and HDFS -----------------------------------------------------------------------------------

def publisher() -> mqtt.Client:
    """An MQTT 5 client on the mqtt_default connection (the project's helper speaks 3.1.1, which has no message
    expiry)."""
    from gait_airflow.hooks import MqttHook

    conn = MqttHook.get_connection(names.MQTT_CONN_ID)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fuzz-publish-{RUN}", protocol=mqtt.MQTTv5)
    if conn.login:
        client.username_pw_set(conn.login, conn.password)
    if conn.extra_dejson.get("tls_ca"):
        client.tls_set(ca_certs=conn.extra_dejson["tls_ca"])
    client.connect(conn.host, int(conn.port or 1883))
    return client


def publish(messages: list[Published]) -> None:
    expiry = Properties(PacketTypes.PUBLISH)
    expiry.MessageExpiryInterval = EXPIRY_SECONDS
    client = publisher()
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.is_connected(), "the MQTT broker did not accept the publisher's connection"
        sent = [client.publish(m.topic, m.payload, qos=1, properties=expiry) for m in messages]
        for info in sent:
            info.wait_for_publish(timeout=120)
            assert info.is_published(), f"the broker did not acknowledge message {info.mid}"
    finally:
        client.loop_stop()
        client.disconnect()


def publish_and_capture(messages: list[Published], batch: str) -> tuple[dict, float, float]:
    """Subscribe a capture client of this test's own to its topics, publish, drain into `batch`; returns the
    capture's manifest and the publish and capture seconds."""
    from gait_airflow.clients import hdfs_client
    from gait_airflow.hooks import MqttHook
    from include.capture import Collector, capture_batch
    from include.mqtt_client import subscribe

    collector = Collector(max_messages=10 * len(messages))
    client = MqttHook(names.MQTT_CONN_ID).get_conn(client_id=f"fuzz-capture-{RUN}", clean_session=True,
                                                   manual_ack=True, on_message=collector)
    try:
        for name in sorted({m.topic for m in messages if not m.topic.startswith(FUZZ_PREFIX)}) + [f"{FUZZ_PREFIX}/#"]:
            subscribe(client, name, names.MQTT_QOS)
        began = time.monotonic()
        publish(messages)
        published = time.monotonic()
        manifest = capture_batch(client, collector, hdfs_client(), batch, idle_seconds=3, max_seconds=300)
        return manifest, published - began, time.monotonic() - published
    finally:
        client.disconnect()


@pytest.fixture
def batch():
    """A batch id of this test's own; its HDFS folders are deleted afterwards."""
    from gait_airflow.clients import hdfs_client
    from include.layout import BatchLayout

    batch_id = f"fuzz-{RUN}-{uuid.uuid4().hex[:6]}"
    yield batch_id
    store = hdfs_client()
    for directory in BatchLayout(batch_id).directories:
        store.delete(directory, recursive=True)


def dead_letters(batch_id: str) -> dict[tuple[str, bytes], dict]:
    """The batch's dead letters by (topic, raw payload)."""
    from gait_airflow.clients import hdfs_client
    from include.filestore import read_lines
    from include.layout import BatchLayout

    store = hdfs_client()
    path = BatchLayout(batch_id).dead_letter_file
    if not store.status(path, strict=False):
        return {}
    records = {}
    for line in read_lines(store, path):
        record = json.loads(line)
        raw = (base64.b64decode(record["payload"]) if record["payload_encoding"] == "base64"
               else record["payload"].encode("utf-8"))
        assert (record["topic"], raw) not in records, "a message was dead-lettered twice"
        records[(record["topic"], raw)] = record
    return records


def landed(batch_id: str, manifest) -> dict[str, list[dict]]:
    from gait_airflow.clients import hdfs_client
    from include.filestore import read_lines
    from include.layout import BatchLayout

    store, layout = hdfs_client(), BatchLayout(batch_id)
    files = set(store.list(layout.raw_dir))
    assert files == {f"{r}.jsonl" for r in manifest.recordings} | {"_SUCCESS"}, files
    return {r: [json.loads(line) for line in read_lines(store, layout.recording_file(r))] for r in manifest.recordings}


# --- tests ---------------------------------------------------------------------------------------------

def test_fuzzed_messages_through_broker_and_capture(batch):
    began = time.monotonic()
    messages, kinds = corpus()
    drawn = time.monotonic() - began

    # the corpus is what it claims: each malformed message has the reason it was built for
    assert len(messages) >= 1_000
    for m in messages:
        result = validate(m.topic, m.payload)
        got = result.reason if isinstance(result, Rejection) else None
        assert got == m.reason, (m.reason, got, m.topic, m.payload[:300])
    reasons = Counter(m.reason for m in messages if m.reason)
    assert set(reasons) == set(contract.REASONS)

    manifest, publish_seconds, capture_seconds = publish_and_capture(messages, batch)

    # every malformed message is dead-lettered once, with its reason
    expected_dead = {(m.topic, m.payload): m.reason for m in messages if m.reason}
    records = dead_letters(batch)
    got = {key: r["reason"] for key, r in records.items()}
    wrong = [(t, p[:200], expected_dead.get((t, p)), got.get((t, p))) for t, p in expected_dead.keys() | got.keys()
             if expected_dead.get((t, p)) != got.get((t, p))]
    assert not wrong, f"{len(wrong)} messages (topic, payload, expected, dead-lettered as): {wrong[:10]}"
    assert all(r["detail"] and r["received_at"] for r in records.values())

    # every valid reading landed exactly once, as published, in seq order
    expected: dict[str, dict[int, dict]] = {}
    published_readings = 0
    for m in messages:
        for item in m.readings:
            expected.setdefault(item["recording_id"], {})[item["seq"]] = item
            published_readings += 1
    rows = landed(batch, manifest)
    assert {r: len(lines) for r, lines in rows.items()} == {r: len(seqs) for r, seqs in expected.items()}
    for recording, lines in rows.items():
        assert [line["seq"] for line in lines] == sorted(expected[recording])
        assert all(line == expected[recording][line["seq"]] for line in lines), recording

    # the manifest's counts agree
    unique_readings = sum(len(seqs) for seqs in expected.values())
    assert manifest.messages_received == len(messages)
    assert manifest.readings == manifest.new_readings == unique_readings
    assert manifest.recordings == {r: len(seqs) for r, seqs in sorted(expected.items())}
    assert manifest.duplicates_dropped == published_readings - unique_readings > 0
    assert manifest.dead_letters == manifest.new_dead_letters == len(expected_dead)
    assert manifest.dead_letter_reasons == dict(Counter(expected_dead.values()))

    per_reason = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    print(f"\nfuzz: {len(messages)} messages ({dict(kinds)}); malformed per reason (with copies): {per_reason}; "
          f"{unique_readings} readings landed of {len(expected)} recordings, {len(expected_dead)} dead letters; "
          f"drawn in {drawn:.1f}s, published in {publish_seconds:.1f}s, captured in {capture_seconds:.1f}s")


def test_look_alike_recording_ids_are_dead_lettered(batch):
    """A recording id must be ASCII and nothing but the id. include/gaitpdb.py's RECORDING_ID uses `\\d` (any
    Unicode digit) and `$` (also matches before a trailing newline) with `re.match`, so a reading on
    gait/readings/SiPt٩٧_03 lands in HDFS as recording "SiPt٩٧_03", and "SiPt97_03\\n" in a payload is called a
    mismatch instead of a bad id. Fix: `[0-9]` (or re.ASCII) and `\\Z` (or fullmatch)."""
    arabic = RECORDINGS[-1][:4] + "\u0669\u0667" + RECORDINGS[-1][6:]  # SiPt٩٧_<walk>
    item = {"recording_id": arabic, "seq": 0, "t": 0.0, "left": [1.0] * 8, "right": [1.0] * 8,
            "left_total": 8.0, "right_total": 8.0}
    messages = [
        Published(topic(arabic), json.dumps(item).encode(), "bad_topic", []),
        Published(topic(RECORDINGS[-1]), json.dumps({**item, "recording_id": arabic}).encode(), "bad_recording_id", []),
        Published(topic(RECORDINGS[-1]), json.dumps({**item, "recording_id": RECORDINGS[-1] + "\n"}).encode(),
                "bad_recording_id", []),
    ]
    manifest, _, _ = publish_and_capture(messages, batch)
    assert manifest.readings == 0, f"look-alike ids landed as recordings {list(manifest.recordings)}"
    assert {key: r["reason"] for key, r in dead_letters(batch).items()} == \
        {(m.topic, m.payload): m.reason for m in messages}
