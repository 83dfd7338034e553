"""Reads and checks of the pipeline's outputs on the real services, shared by the end-to-end and fault tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from include import gaitpdb, names
from include.windowing import recording_windows

SAMPLE_READINGS = 13 * 1050  # the bundled sample: 13 recordings of 1,050 rows
SAMPLE_WINDOWS = 13 * 10  # complete 100-row windows


def read_json(store, path: str) -> dict:
    with store.read(path) as reader:
        return json.loads(reader.read())


def cassandra_rows(table: str, recordings: list[str]) -> list[dict]:
    from cassandra.query import dict_factory

    from gait_airflow.stages import cassandra_session

    session = cassandra_session()
    session.row_factory = dict_factory
    statement = session.prepare(f"SELECT * FROM {names.CASSANDRA_KEYSPACE}.{table} WHERE recording_id = ?")
    try:
        return [row for r in recordings for row in session.execute(statement, (r,))]
    finally:
        session.cluster.shutdown()


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


def assert_windows_equal_reference(batch: str, folder: Path = gaitpdb.SAMPLE_DIR) -> int:
    """Cassandra holds exactly the reference's windows for the batch's recordings (no missing, no extra
    window, every value equal); returns how many."""
    expected = reference_windows(folder)
    stored = {(r["recording_id"], r["window_index"]): r for r in cassandra_windows(sorted({k[0] for k in expected}))}
    assert set(stored) == set(expected)
    for key, want in expected.items():
        got = stored[key]
        assert got["batch_id"] == batch
        for field in ("subject_id", "study", "subject_group", "walk", "label", "n_rows", "window_size"):
            assert got[field] == want[field], (key, field)
        for field in ("t_start", "t_end", *gaitpdb.CHANNELS):
            assert got[field] == pytest.approx(want[field], abs=1e-6), (key, field)
    return len(expected)
