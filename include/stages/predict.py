"""predict_latest_batch: the champion scores the latest batch's recordings; per-recording results to Cassandra."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
from sklearn.pipeline import Pipeline

from include import names
from include.capture import read_manifest
from include.errors import IntegrityError, MissingInput
from include.filestore import exists
from include.layout import BatchLayout, batch_of
from include.records import TrainingReport
from include.stages.artifacts import load_model
from include.stages.model_registry import Registry
from include.stages.services import Services
from include.stages.windows import windows_of, write_predictions
from include.training import subject_level

log = logging.getLogger(__name__)

PREDICTION_THRESHOLD = 0.5  # as in the evaluation: Parkinson's when the recording's mean window probability >= 0.5


def latest_scored_batch(store) -> str | None:
    """The newest batch whose windows the Spark job wrote (it has a Spark summary)."""
    batches = sorted(filter(None, map(batch_of, store.list(names.HDFS_MANIFEST_DIR))))
    for batch in reversed(batches):
        if exists(store, BatchLayout(batch).spark_summary):
            return batch
    return None


def load_champion(services: Services, store) -> tuple[TrainingReport, Pipeline]:
    """The champion's registry entry and its model, loaded only if the artifact's sha256 matches the registry."""
    with services.mongo() as database:
        registry = Registry(database)
        current = registry.champion()
        if current is None:
            raise MissingInput("no champion model yet: run a training DAG (train_knn, store_metrics, champion_gate)")
        entry = registry.entry(current.run_id)
    if entry is None or entry.artifact is None:
        raise MissingInput(f"champion {current.run_id} has no registry entry in {names.METRICS_COLLECTION}")
    if entry.artifact.sha256 != current.artifact.sha256:
        raise IntegrityError(
            f"champion {current.run_id}'s registry entry names another artifact than the one "
            "promoted (re-trained?); refusing to load it: re-run its champion_gate"
        )
    return entry, load_model(store, entry.artifact)


def predict_latest_batch(services: Services) -> dict:
    store = services.hdfs()
    batch = latest_scored_batch(store)
    if batch is None:
        log.info("predict: no batch has windows yet; nothing to score")
        return {"batch_id": None, "recordings": 0}
    entry, model = load_champion(services, store)
    recipe = entry.recipe
    feature_set, window_size = recipe.feature_set, recipe.window_size
    data = windows_of(services, feature_set, window_size, list(read_manifest(store, batch).recordings))
    ids, actual, probability = subject_level(data.recordings, data.y, model.predict_proba(data.X)[:, 1])
    windows = dict(zip(*np.unique(data.recordings, return_counts=True)))
    subjects = dict(zip(data.recordings, data.subjects))
    rows = [
        (
            str(recording),
            entry.run_id,
            batch,
            str(subjects[recording]),
            float(p),
            int(p >= PREDICTION_THRESHOLD),
            int(y),
            PREDICTION_THRESHOLD,
            int(windows[recording]),
            int(window_size),
            feature_set,
        )
        for recording, y, p in zip(ids, actual, probability)
    ]
    with services.cassandra() as session:
        write_predictions(session, rows, datetime.now(UTC))
    correct = int(((probability >= PREDICTION_THRESHOLD).astype(int) == actual).sum())
    log.info(
        "predict: batch %s, %d recordings scored by champion %s (%d windows); %d of %d labels agree with the "
        "recording ids -> cassandra %s.%s",
        batch,
        len(ids),
        entry.run_id,
        len(data.y),
        correct,
        len(ids),
        names.CASSANDRA_KEYSPACE,
        names.PREDICTION_TABLE,
    )
    return {"batch_id": batch, "model_run": entry.run_id, "recordings": int(len(ids)), "agree": correct}
