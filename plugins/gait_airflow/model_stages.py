"""Model stages of the DAGs: train + evaluate, store metrics, the champion gate, batch predictions.

The registry is MongoDB's metrics collection (one document per training run, `_id` = run id, with the
artifact's HDFS path and sha256) plus one champion document; artifacts and plots live in HDFS under
/models/parkinson_knn/<run id>/.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

import numpy as np

from gait_airflow.stages import (cassandra_session, fail_fast, hdfs_client, read_json, reporting_unavailable,
                                 spark_summary_path)
from include import names
from include.capture import read_manifest, write_atomically
from include.errors import IntegrityError, MissingInput
from include.features import FEATURE_SETS
from include.registry import ALREADY, CHAMPION_DECISIONS, decide
from include.replay import offsets_manifest_path

log = logging.getLogger(__name__)

TRAINED, NOT_TRAINED = "trained", "not_trained"  # a training report's status
HISTORY_RUNS = 30  # runs shown in the metrics-history plot
PREDICTION_THRESHOLD = 0.5  # as in the evaluation: Parkinson's when the recording's mean window probability >= 0.5


def training_run_id(dag_id: str, batch: str) -> str:
    return f"{dag_id}__{batch}"


def model_dir(run_id: str) -> str:
    return f"{names.HDFS_MODEL_DIR}/{run_id}"


def plot_path(run_id: str, name: str) -> str:
    return f"{model_dir(run_id)}/plots/{name}.png"


# --- windows from Cassandra ------------------------------------------------------------------------------

def load_windows(session, feature_set: str, window_size: int, recordings: list[str] | None) -> list[dict]:
    """Windows of a feature set's table and window size (all recordings, or the given ones' partitions)."""
    spec = FEATURE_SETS[feature_set]
    return _select(session, spec.table, ["recording_id", "window_index", "window_size", "subject_id", "label",
                                         *spec.columns], window_size, recordings)


def _select(session, table: str, columns: list[str], window_size: int, recordings: list[str] | None) -> list[dict]:
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.query import dict_factory

    session.row_factory = dict_factory
    # Identifiers come from include/names.py and include/features.py only; values are always bound.
    query = f"SELECT {', '.join(columns)} FROM {names.CASSANDRA_KEYSPACE}.{table}"
    if recordings is None:  # every partition (window_size is a clustering column: kept here, not filtered there)
        return [row for row in session.execute(session.prepare(query)) if row["window_size"] == window_size]
    statement = session.prepare(query + " WHERE recording_id = ? AND window_size = ?")
    rows = []
    for _ok, result in execute_concurrent_with_args(session, statement, [(r, window_size) for r in recordings],
                                                    concurrency=32, raise_on_first_error=True):
        rows.extend(result)
    return rows


def _training_recordings(store, batch: str, scope: str) -> tuple[list[str] | None, dict]:
    lineage: dict = {"scope": scope, "windows_table": f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}"}
    if scope != "batch":
        return None, lineage
    capture_manifest = read_manifest(store, batch)
    lineage.update(batch_id=batch, raw_dir=capture_manifest["raw_dir"],
                   dead_letter_dir=capture_manifest["dead_letter_dir"],
                   kafka_offsets=read_json(store, offsets_manifest_path(batch)),
                   spark_summary=read_json(store, spark_summary_path(batch)),
                   reconciliation=read_json(store, names.manifest_path(batch, names.RECONCILIATION_MANIFEST)))
    return list(capture_manifest["recordings"]), lineage


def _rows(params: dict, recordings: list[str] | None, feature_set: str) -> list[dict]:
    session = cassandra_session()
    try:
        return load_windows(session, feature_set, params[FEATURE_SETS[feature_set].window_param], recordings)
    finally:
        session.cluster.shutdown()


def _windows(params: dict, recordings: list[str] | None, feature_set: str) -> list[dict]:
    from include.training import TrainingDataError

    window_size = params[FEATURE_SETS[feature_set].window_param]
    rows = _rows(params, recordings, feature_set)
    if not rows:
        raise TrainingDataError(f"no windows of size {window_size} in {names.CASSANDRA_KEYSPACE}."
                                f"{FEATURE_SETS[feature_set].table} for feature set {feature_set!r}: run "
                                "spark_window_means with that window size first")
    return rows


# --- train ------------------------------------------------------------------------------------------------

@fail_fast
def train(batch: str, dag_id: str, params: dict, scope: str) -> dict:
    """Nested grouped CV + final model; model, report and plots under /models/parkinson_knn/<run id>/."""
    from include.plots import confusion_matrix_png, roc_png
    from include.training import serialize, subject_level, train_and_evaluate

    began = time.monotonic()
    store = hdfs_client()
    run_id = training_run_id(dag_id, batch)
    recordings, lineage = _training_recordings(store, batch, scope)
    feature_set = params["feature_set"]
    data, reason = _training_data(params, recordings, feature_set, lineage)
    if reason:
        return _not_trained(store, run_id, dag_id, batch, params, data, lineage, reason)
    log.info("train: %d windows of %d recordings, %d subjects, feature set %s (%d features)", len(data.y),
             len(set(data.recordings)), len(set(data.subjects)), feature_set, len(data.features))
    result = train_and_evaluate(data, feature_set, tuple(params["knn_k_grid"]), params["cv_folds"],
                                params["bias_variance_rounds"], params["seed"])
    report = result.report
    blob, sha256 = serialize(result.model)
    directory = model_dir(run_id)
    store.makedirs(f"{directory}/plots")
    write_atomically(store, directory, "model.pkl", blob)
    honest = report["evaluation"]["subject_grouped_cv"]
    _, y_subject, p_subject = subject_level(data.subjects, data.y, result.probability)
    plots = {
        "confusion_matrix": confusion_matrix_png(honest["subject"]["confusion_matrix"],
                                                 f"{run_id}\nsubjects, subject-grouped CV"),
        "roc": roc_png({"subjects": (y_subject, p_subject), "windows": (data.y, result.probability)},
                       f"{run_id}\nsubject-grouped CV (out-of-fold)"),
    }
    for name, png in plots.items():
        write_atomically(store, f"{directory}/plots", f"{name}.png", png)
    report.update(_id=run_id, dag_id=dag_id, batch_id=batch, status=TRAINED, lineage=lineage,
                  params=_recorded_params(params),
                  artifact={"hdfs_path": f"{directory}/model.pkl", "sha256": sha256, "bytes": len(blob),
                            "format": "pickle (sklearn Pipeline)"},
                  plots={name: plot_path(run_id, name) for name in plots},
                  trained_at=datetime.now(timezone.utc).isoformat(),
                  training_seconds=round(time.monotonic() - began, 2))
    write_atomically(store, directory, "report.json", json.dumps(report, indent=1).encode())
    leaky = report["evaluation"]["leaky_random_split"]
    log.info("train: k=%d (nested per fold %s) | honest subject-grouped CV: subjects AUC %s balanced %.3f, windows "
             "AUC %s | leaky random split AUC %s | majority class %.3f of subjects | %.1fs | model %s sha256 %s",
             report["model"]["k"], honest["chosen_k_per_fold"], _fmt(honest["subject"]["roc_auc"]),
             honest["subject"]["balanced_accuracy"], _fmt(honest["window"]["roc_auc"]), _fmt(leaky["roc_auc"]),
             report["evaluation"]["majority_class"]["subject_accuracy"], report["training_seconds"],
             report["artifact"]["hdfs_path"], sha256[:12])
    return {"run_id": run_id, "model": report["artifact"]["hdfs_path"], "k": report["model"]["k"],
            "subject_roc_auc": honest["subject"]["roc_auc"], "leaky_roc_auc": leaky["roc_auc"]}


def _training_data(params: dict, recordings: list[str] | None, feature_set: str, lineage: dict):
    """The windows to train on, and why they cannot be evaluated honestly (None when they can). A batch too
    small for subject-grouped evaluation trains on every window in Cassandra instead (lineage says so)."""
    from include.training import Windows, untrainable

    data = Windows.from_rows(_rows(params, recordings, feature_set), feature_set)
    reason = untrainable(data)
    if reason and recordings is not None:
        log.warning("train: the batch alone cannot be evaluated honestly (%s); training on every window in "
                    "Cassandra instead", reason)
        lineage.update(requested_scope="batch", scope="all", widened_because=reason)
        data = Windows.from_rows(_rows(params, None, feature_set), feature_set)
        reason = untrainable(data)
    return data, reason


def _not_trained(store, run_id: str, dag_id: str, batch: str, params: dict, data, lineage: dict,
                 reason: str) -> dict:
    """Too little data anywhere for an honest evaluation: normal operation, not a failure. The report says
    why (the registry and the report page show it) and the gate skips."""
    where = "in the batch and in all of Cassandra" if "widened_because" in lineage else "in all of Cassandra"
    reason = f"not trained: {reason} ({where}); capture more recordings"
    report = {"_id": run_id, "dag_id": dag_id, "batch_id": batch, "status": NOT_TRAINED, "reason": reason,
              "data": data.counts(), "lineage": lineage, "params": _recorded_params(params),
              "model": {"feature_set": params["feature_set"]}, "trained_at": datetime.now(timezone.utc).isoformat()}
    store.makedirs(model_dir(run_id))
    write_atomically(store, model_dir(run_id), "report.json", json.dumps(report, indent=1).encode())
    log.warning("train: %s", reason)
    return {"run_id": run_id, "status": NOT_TRAINED, "reason": reason}


def _recorded_params(params: dict) -> dict:
    return {k: params[k] for k in ("window_size", "feature_window_size", "feature_set", "knn_k_grid", "cv_folds",
                                   "bias_variance_rounds", "seed")}


def _report(store, run_id: str) -> dict:
    report = read_json(store, f"{model_dir(run_id)}/report.json")
    if report is None:
        raise MissingInput(f"no training report at {model_dir(run_id)}/report.json: run train_knn first")
    return report


def _mongo(conn_id: str = names.MONGO_CONN_ID):
    from airflow.providers.mongo.hooks.mongo import MongoHook

    return MongoHook(mongo_conn_id=conn_id)


def _mongo_errors():
    from pymongo.errors import PyMongoError

    return reporting_unavailable("MongoDB", names.MONGO_CONN_ID, "ferretdb", PyMongoError)


@fail_fast
def store_metrics(batch: str, dag_id: str, airflow_run_id: str) -> dict:
    """Upsert the training report into MongoDB (the registry entry of this run, `_id` = its run id)."""
    run_id = training_run_id(dag_id, batch)
    report = _report(hdfs_client(), run_id)
    report.update(airflow_run_id=airflow_run_id, stored_at=datetime.now(timezone.utc).isoformat())
    with _mongo_errors(), _mongo() as hook:
        existing = hook.find(names.METRICS_COLLECTION, {"_id": run_id}, find_one=True, mongo_db=names.MONGO_DB)
        _keep_what_the_gate_wrote(existing or {}, report)
        result = hook.replace_one(names.METRICS_COLLECTION, report, mongo_db=names.MONGO_DB, upsert=True)
    log.info("metrics: %s document %s in %s.%s", "updated" if result.matched_count else "inserted", run_id,
             names.MONGO_DB, names.METRICS_COLLECTION)
    return {"_id": run_id, "updated": bool(result.matched_count)}


def _keep_what_the_gate_wrote(existing: dict, report: dict) -> None:
    """A re-run of store_metrics keeps the gate's recorded decision and its history plot until the gate runs
    again (the training report has neither)."""
    if "gate" in existing:
        report["gate"] = existing["gate"]
    history = existing.get("plots", {}).get("metrics_history")
    if history:
        report["plots"] = {**report.get("plots", {}), "metrics_history": history}


# --- champion gate --------------------------------------------------------------------------------------

def champion(hook) -> dict | None:
    return hook.find(names.CHAMPION_COLLECTION, {"_id": names.CHAMPION_ID}, find_one=True, mongo_db=names.MONGO_DB)


@fail_fast
def champion_gate(batch: str, dag_id: str) -> dict:
    """Promote this run only if it beats the champion's recipe on this run's evaluation data (same folds)."""
    from include.training import (GATE_METRIC, TrainingDataError, Windows, fixed_k_grouped_cv, grouped_folds,
                                  subject_auc)

    store = hdfs_client()
    run_id = training_run_id(dag_id, batch)
    report = _report(store, run_id)
    if report.get("status") == NOT_TRAINED:
        return _no_model_to_gate(run_id, report["reason"])
    with _mongo_errors(), _mongo() as hook:
        current = champion(hook)
    champion_score, evaluated_on, unavailable = None, None, ""
    if current and current["run_id"] != run_id:
        recordings = report["data"]["recording_ids"]  # the candidate's evaluation recordings
        champion_set, window_size = current["feature_set"], current["window_size"]  # the champion's recipe
        recipe = {"feature_set": champion_set, "k": current["k"], "window_size": window_size}
        try:
            rows = _windows({FEATURE_SETS[champion_set].window_param: window_size}, recordings, champion_set)
            data = Windows.from_rows(rows, champion_set)
            if data.fingerprint() != report["data"]["fingerprint"]:
                raise TrainingDataError(f"its windows ({champion_set}, size {window_size}) do not cover the same "
                                        "recordings")
        except TrainingDataError as exc:
            unavailable = f"champion recipe {recipe}: {exc}"
        else:
            folds = grouped_folds(data.y, data.subjects, report["params"]["cv_folds"], report["seed"])
            champion_score = subject_auc(data.y, data.subjects, fixed_k_grouped_cv(data, current["k"], folds))
            evaluated_on = {"windows": len(data.y), "subjects": int(len(set(data.subjects))), "folds": len(folds),
                            "fingerprint": report["data"]["fingerprint"], "champion_recipe": recipe}
    decision = decide(GATE_METRIC, run_id, report["gate_score"], current["run_id"] if current else None,
                      champion_score, unavailable)
    # a re-run of the champion's own run that re-trained it: the champion entry follows its new artifact
    refreshed = decision.decision == ALREADY and current["artifact"]["sha256"] != report["artifact"]["sha256"]
    gate = {**decision.as_dict(), "evaluated_on": evaluated_on, "artifact_refreshed": refreshed,
            "decided_at": datetime.now(timezone.utc).isoformat()}
    with _mongo_errors(), _mongo() as hook:
        if decision.promote or refreshed:
            _replace_champion(hook, current, run_id, report, gate)
        hook.update_one(names.METRICS_COLLECTION, {"_id": run_id}, {"$set": {"gate": gate}}, mongo_db=names.MONGO_DB)
        history = _history(hook)
    png = _history_png(history)
    write_atomically(store, f"{model_dir(run_id)}/plots", "metrics_history.png", png)
    with _mongo_errors(), _mongo() as hook:
        hook.update_one(names.METRICS_COLLECTION, {"_id": run_id},
                        {"$set": {"plots.metrics_history": plot_path(run_id, "metrics_history")}},
                        mongo_db=names.MONGO_DB)
    log.info("gate: %s — %s (champion now %s)", decision.decision, decision.reason,
             run_id if decision.promote else decision.champion_run_id)
    return gate


def _no_model_to_gate(run_id: str, reason: str):
    """Record in the registry that this run has no model to gate, then skip the task (and what depends on it)."""
    from airflow.sdk.exceptions import AirflowSkipException

    gate = {"decision": NOT_TRAINED, "promote": False, "reason": reason,
            "decided_at": datetime.now(timezone.utc).isoformat()}
    with _mongo_errors(), _mongo() as hook:
        hook.update_one(names.METRICS_COLLECTION, {"_id": run_id}, {"$set": {"gate": gate}}, mongo_db=names.MONGO_DB)
    raise AirflowSkipException(f"champion_gate skipped: no model to gate ({reason})")


def _replace_champion(hook, current: dict | None, run_id: str, report: dict, gate: dict) -> None:
    """Compare-and-set: replace only the champion this gate evaluated against."""
    document = {"_id": names.CHAMPION_ID, "run_id": run_id, "metric": gate["metric"], "score": gate["candidate_score"],
                "previous_run_id": current["run_id"] if current else None,
                "previous_score_on_same_data": gate["champion_score"], "feature_set": report["model"]["feature_set"],
                "k": report["model"]["k"],
                "window_size": report["params"][FEATURE_SETS[report["model"]["feature_set"]].window_param],
                "artifact": report["artifact"], "reason": gate["reason"], "promoted_at": gate["decided_at"]}
    if current is None:
        from pymongo.errors import DuplicateKeyError

        try:
            hook.insert_one(names.CHAMPION_COLLECTION, document, mongo_db=names.MONGO_DB)
        except DuplicateKeyError as exc:
            raise RuntimeError("another run became champion while this gate ran; the retry will compare "
                               "against it") from exc
        return
    result = hook.replace_one(names.CHAMPION_COLLECTION, document, {"_id": names.CHAMPION_ID,
                                                                    "run_id": current["run_id"]},
                              mongo_db=names.MONGO_DB)
    if not result.matched_count:
        raise RuntimeError("the champion changed while this gate ran; the retry will compare against the new one")


def _history(hook) -> list[dict]:
    docs = list(hook.find(names.METRICS_COLLECTION, {}, mongo_db=names.MONGO_DB,
                          projection={"evaluation": 1, "trained_at": 1, "gate": 1}))
    docs = sorted((d for d in docs if "evaluation" in d), key=lambda d: d.get("trained_at", ""))[-HISTORY_RUNS:]
    return [{"run_id": d["_id"],
             "honest": d["evaluation"]["subject_grouped_cv"].get("subject", {}).get("roc_auc"),
             "leaky": d["evaluation"]["leaky_random_split"].get("roc_auc"),
             "champion": d.get("gate", {}).get("decision") in CHAMPION_DECISIONS} for d in docs]


def _history_png(history: list[dict]) -> bytes:
    from include.plots import metrics_history_png

    return metrics_history_png(history, f"model metrics, last {len(history)} runs")


# --- batch predictions -----------------------------------------------------------------------------------

def latest_scored_batch(store) -> str | None:
    """The newest batch whose windows the Spark job wrote (it has a window summary manifest)."""
    batches = sorted(name.split("=", 1)[1] for name in store.list(names.HDFS_MANIFEST_DIR)
                     if name.startswith("batch="))
    for batch in reversed(batches):
        if store.status(spark_summary_path(batch), strict=False):
            return batch
    return None


def load_champion(store, hook) -> tuple[dict, object]:
    """The champion's registry entry and its model, loaded only if the artifact's sha256 matches the registry."""
    from include.training import load_verified

    current = champion(hook)
    if current is None:
        raise MissingInput("no champion model yet: run a training DAG (train_knn, store_metrics, champion_gate)")
    entry = hook.find(names.METRICS_COLLECTION, {"_id": current["run_id"]}, find_one=True, mongo_db=names.MONGO_DB)
    if entry is None:
        raise MissingInput(f"champion {current['run_id']} has no registry entry in {names.METRICS_COLLECTION}")
    if entry["artifact"]["sha256"] != current["artifact"]["sha256"]:
        raise IntegrityError(f"champion {current['run_id']}'s registry entry names another artifact than the one "
                         "promoted (re-trained?); refusing to load it: re-run its champion_gate")
    with store.read(entry["artifact"]["hdfs_path"]) as reader:
        blob = reader.read()
    return entry, load_verified(blob, entry["artifact"]["sha256"])


@fail_fast
def predict_latest_batch() -> dict:
    """Score the latest batch's recordings with the champion; upsert per-recording results into Cassandra."""
    from include.training import Windows, subject_level

    store = hdfs_client()
    batch = latest_scored_batch(store)
    if batch is None:
        log.info("predict: no batch has windows yet; nothing to score")
        return {"batch_id": None, "recordings": 0}
    with _mongo_errors(), _mongo() as hook:
        entry, model = load_champion(store, hook)
    recordings = list(read_manifest(store, batch)["recordings"])
    feature_set = entry["model"]["feature_set"]
    window_size = entry["params"][FEATURE_SETS[feature_set].window_param]
    data = Windows.from_rows(_windows(entry["params"], recordings, feature_set), feature_set)
    ids, actual, probability = subject_level(data.recordings, data.y, model.predict_proba(data.X)[:, 1])
    windows = dict(zip(*np.unique(data.recordings, return_counts=True)))
    now = datetime.now(timezone.utc)
    session = cassandra_session()
    try:
        statement = session.prepare(
            f"INSERT INTO {names.CASSANDRA_KEYSPACE}.{names.PREDICTION_TABLE} (recording_id, model_run, batch_id, "
            "subject_id, probability, label, actual_label, threshold, windows, window_size, feature_set, "
            "predicted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        subjects = dict(zip(data.recordings, data.subjects))
        for recording, y, p in zip(ids, actual, probability):
            session.execute(statement, (str(recording), entry["_id"], batch, str(subjects[recording]), float(p),
                                        int(p >= PREDICTION_THRESHOLD), int(y), PREDICTION_THRESHOLD, int(windows[recording]),
                                        int(window_size), feature_set, now))
    finally:
        session.cluster.shutdown()
    correct = int(((probability >= PREDICTION_THRESHOLD).astype(int) == actual).sum())
    log.info("predict: batch %s, %d recordings scored by champion %s (%d windows); %d of %d labels agree with the "
             "recording ids -> cassandra %s.%s", batch, len(ids), entry["_id"], len(data.y), correct, len(ids),
             names.CASSANDRA_KEYSPACE, names.PREDICTION_TABLE)
    return {"batch_id": batch, "model_run": entry["_id"], "recordings": int(len(ids)), "agree": correct}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
