"""Windows and predictions in Cassandra: the queries the model stages run (identifiers come from
include/names.py and include/features.py only; values are always bound)."""

from __future__ import annotations

from datetime import datetime

from include import names
from include.features import FEATURE_SETS
from include.training import TrainingDataError, Windows

KEY_COLUMNS = ["recording_id", "window_index", "window_size", "subject_id", "label"]


def load_windows(session, feature_set: str, window_size: int, recordings: list[str] | None) -> list[dict]:
    """Windows of a feature set's table and window size (all recordings, or the given ones' partitions)."""
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.query import dict_factory

    spec = FEATURE_SETS[feature_set]
    session.row_factory = dict_factory
    query = f"SELECT {', '.join([*KEY_COLUMNS, *spec.columns])} FROM {names.CASSANDRA_KEYSPACE}.{spec.table}"
    if recordings is None:  # every partition (window_size is a clustering column: kept here, not filtered there)
        return [row for row in session.execute(session.prepare(query)) if row["window_size"] == window_size]
    statement = session.prepare(query + " WHERE recording_id = ? AND window_size = ?")
    rows = []
    for _ok, result in execute_concurrent_with_args(
        session, statement, [(r, window_size) for r in recordings], concurrency=32, raise_on_first_error=True
    ):
        rows.extend(result)
    return rows


def windows_of(
    services, feature_set: str, window_size: int, recordings: list[str] | None, required: bool = True
) -> Windows:
    """The windows of a recipe (feature set, window size); none at all, when required, is bad input that names
    what to run."""
    with services.cassandra() as session:
        rows = load_windows(session, feature_set, window_size, recordings)
    if not rows and required:
        raise TrainingDataError(
            f"no windows of size {window_size} in {names.CASSANDRA_KEYSPACE}."
            f"{FEATURE_SETS[feature_set].table} for feature set {feature_set!r}: run "
            "spark_window_means with that window size first"
        )
    return Windows.from_rows(rows, feature_set)


def write_predictions(session, rows: list[tuple], predicted_at: datetime) -> None:
    """Upsert per-recording predictions: rows of (recording_id, model_run, batch_id, subject_id, probability,
    label, actual_label, threshold, windows, window_size, feature_set)."""
    statement = session.prepare(
        f"INSERT INTO {names.CASSANDRA_KEYSPACE}.{names.PREDICTION_TABLE} (recording_id, model_run, batch_id, "
        "subject_id, probability, label, actual_label, threshold, windows, window_size, feature_set, "
        "predicted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for row in rows:
        session.execute(statement, (*row, predicted_at))
