"""Reads and checks of the pipeline's outputs on the real services, shared by the end-to-end and fault tests."""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

from include import gaitpdb, names
from include.windowing import recording_windows

SAMPLE_READINGS = 13 * 1050  # the bundled sample: 13 recordings of 1,050 rows
SAMPLE_WINDOWS = 13 * 10  # complete 100-row windows
BLUE, ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two line colours (the plots' first two curves)


def pixels_like(png: bytes, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    """How many pixels of a PNG are within `tolerance` of an RGB colour (is the curve drawn at all?)."""
    from matplotlib import image

    rgb = (image.imread(io.BytesIO(png))[..., :3] * 255).round()
    return int((np.abs(rgb - np.array(colour)).max(axis=-1) <= tolerance).sum())


def reconciliation(batch: str) -> dict:
    """The batch's reconciliation as written to HDFS (its stored JSON, as an operator reads it)."""
    from gait_airflow.clients import hdfs_client
    from include.filestore import read_bytes
    from include.layout import BatchLayout

    return json.loads(read_bytes(hdfs_client(), BatchLayout(batch).reconciliation))


def cassandra_rows(table: str, recordings: list[str]) -> list[dict]:
    from cassandra.query import dict_factory

    from gait_airflow.clients import cassandra_session

    with cassandra_session() as session:
        session.row_factory = dict_factory
        statement = session.prepare(f"SELECT * FROM {names.CASSANDRA_KEYSPACE}.{table} WHERE recording_id = ?")
        return [row for r in recordings for row in session.execute(statement, (r,))]


def cassandra_windows(recordings: list[str]) -> list[dict]:
    return cassandra_rows(names.WINDOW_TABLE, recordings)


def champion_document() -> dict | None:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook:
        return hook.find(names.CHAMPION_COLLECTION, {"_id": names.CHAMPION_ID}, find_one=True,
                         mongo_db=names.MONGO_DB)


def metrics_documents(doc_id: str) -> list[dict]:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook:
        return list(hook.find(names.METRICS_COLLECTION, {"_id": doc_id}, mongo_db=names.MONGO_DB))


def reference_windows(folder: Path, window_size: int = 100) -> dict[tuple[str, int], dict]:
    """Complete windows of the numpy reference, by (recording, window index)."""
    expected = {}
    for recording_id, rows in gaitpdb.iter_recordings(folder):
        for window in recording_windows(recording_id, rows, window_size):
            expected[(recording_id, window["window_index"])] = window
    return expected


def assert_windows_equal_reference(batch: str, folder: Path = gaitpdb.SAMPLE_DIR, window_size: int = 100) -> int:
    """Cassandra holds exactly the reference's windows for the batch's recordings (no missing, no extra
    window, every value equal); returns how many."""
    expected = reference_windows(folder, window_size)
    stored = {(r["recording_id"], r["window_index"]): r for r in cassandra_windows(sorted({k[0] for k in expected}))
              if r["window_size"] == window_size}  # windows of other sizes may sit beside them
    assert set(stored) == set(expected)
    for key, want in expected.items():
        got = stored[key]
        assert got["batch_id"] == batch
        for field in ("subject_id", "study", "subject_group", "walk", "label", "n_rows", "window_size"):
            assert got[field] == want[field], (key, field)
        for field in ("t_start", "t_end", *gaitpdb.CHANNELS):
            assert got[field] == pytest.approx(want[field], abs=1e-6), (key, field)
    return len(expected)


def kafka_range(offsets: dict) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message in the replay's recorded offset range, read back from the topic by a
    consumer of its own: the connection's settings, assigned partitions, a group of its own that commits nothing
    (the pipeline's group offsets, which the Kafka sensor reads, stay as they were)."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
    from confluent_kafka import Consumer, TopicPartition

    hook = KafkaConsumerHook(topics=[], kafka_config_id=names.KAFKA_CONN_ID)
    consumer = Consumer({**hook.get_connection(names.KAFKA_CONN_ID).extra_dejson,
                         "group.id": "gait-tests-range-reader", "enable.auto.commit": False})
    ranges = {p: (lo, hi) for p, (lo, hi) in offsets.partitions.items() if hi > lo}
    consumer.assign([TopicPartition(offsets.topic, p, lo) for p, (lo, _hi) in ranges.items()])
    messages, done, deadline = [], set(), time.monotonic() + 60
    try:
        while len(done) < len(ranges):
            assert time.monotonic() < deadline, f"read only {len(messages)} messages of {ranges} in 60 s"
            for message in consumer.consume(10_000, timeout=10) or []:
                assert message.error() is None, message.error()
                partition, (_lo, hi) = message.partition(), ranges[message.partition()]
                if message.offset() < hi:
                    messages.append((message.key(), message.value()))
                if message.offset() >= hi - 1:
                    done.add(partition)
    finally:
        consumer.close()
    return messages


def assert_kafka_range_equals_landed(batch: str) -> dict:
    """The topic's recorded range holds exactly the batch's landed HDFS lines (each message's Avro reading, decoded
    with the schema file by fastavro, gives the landed line back), each keyed by its recording."""
    from collections import Counter

    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest
    from include.filestore import read_lines, require_record
    from include.kafka_record import decode
    from include.layout import BatchLayout
    from include.records import KafkaOffsets

    store, layout = hdfs_client(), BatchLayout(batch)
    manifest = read_manifest(store, batch)
    offsets = require_record(store, layout.kafka_offsets, KafkaOffsets, "the replay did not write it")
    landed = Counter((r.encode(), line.encode()) for r in manifest.recordings
                     for line in read_lines(store, layout.recording_file(r)))
    in_kafka = Counter((key, decode(value).to_json().encode()) for key, value in kafka_range(offsets))
    assert in_kafka == landed and sum(landed.values()) == offsets.messages == manifest.readings
    return offsets


# Fields of a metrics document that differ between two runs of the same batch by design: when, which Airflow run,
# the new replay's offsets and timings (lineage), and the gate's decision (a re-run finds itself champion).
RUN_SPECIFIC = ("trained_at", "stored_at", "airflow_run_id", "training_seconds", "gate", "lineage")
# Of a window row: when, and which batch last wrote it (windows are keyed by recording, so any batch holding
# the same recordings, e.g. a fault case's, rewrites the same rows with the same values).
ROW_SPECIFIC = ("written_at", "batch_id")


def final_state(batch: str, dag_id: str) -> dict:
    """Everything a run leaves behind for its batch, but what must differ between runs (RUN_SPECIFIC,
    ROW_SPECIFIC)."""
    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest
    from include.filestore import read_lines
    from include.layout import BatchLayout

    store, layout = hdfs_client(), BatchLayout(batch)
    manifest = read_manifest(store, batch)
    recordings = sorted(manifest.recordings)
    landed = {r: read_lines(store, layout.recording_file(r)) for r in recordings}
    dead = sorted(json.dumps({k: v for k, v in json.loads(line).items() if k != "received_at"}, sort_keys=True)
                  for line in read_lines(store, layout.dead_letter_file))
    tables = {table: sorted((tuple(sorted((k, v) for k, v in row.items() if k not in ROW_SPECIFIC))
                             for row in cassandra_rows(table, recordings)), key=repr)
              for table in (names.WINDOW_TABLE, names.FEATURE_TABLE)}
    docs = metrics_documents(f"{dag_id}__{batch}")
    metrics = [{k: v for k, v in doc.items() if k not in RUN_SPECIFIC} for doc in docs]
    return {"manifest": {k: getattr(manifest, k) for k in ("recordings", "seq_ranges", "readings", "dead_letters",
                                                  "dead_letter_reasons")},
            "landed": landed, "dead_letters": dead, "tables": tables,
            "metrics": json.loads(json.dumps(metrics, default=str))}
