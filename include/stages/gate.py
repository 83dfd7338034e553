"""champion_gate: promote this run only if it beats the champion's recipe on this run's evaluation data (same
subjects, same folds)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from include import names
from include.errors import NothingToDo
from include.estimators import estimator_named
from include.layout import ModelLayout
from include.records import NOT_TRAINED, Champion, EvaluatedOn, Gate, TrainingReport
from include.registry import ALREADY, decide
from include.stages.artifacts import write_history_plot
from include.stages.model_registry import Registry
from include.stages.services import Services
from include.stages.train import read_report, training_run_id
from include.stages.windows import windows_of
from include.training import GATE_METRIC, TrainingDataError, grouped_folds, recipe_cv, subject_auc

log = logging.getLogger(__name__)


def champion_gate(services: Services, batch: str, dag_id: str) -> Gate:
    store = services.hdfs()
    run_id = training_run_id(dag_id, batch)
    report = read_report(store, run_id)
    if not report.trained:
        _no_model_to_gate(services, run_id, report.reason or "")
    with services.mongo() as database:
        current = Registry(database).champion()
    champion_score, evaluated_on, unavailable = None, None, ""
    if current and current.run_id != run_id:
        try:
            champion_score, evaluated_on = champion_on_candidate_data(services, current, report)
        except TrainingDataError as exc:
            unavailable = f"champion recipe {current.recipe}: {exc}"
    decision = decide(
        GATE_METRIC, run_id, report.gate_score, current.run_id if current else None, champion_score, unavailable
    )
    assert report.artifact is not None
    # a re-run of the champion's own run that re-trained it: the champion entry follows its new artifact
    refreshed = (
        decision.decision == ALREADY and current is not None and current.artifact.sha256 != report.artifact.sha256
    )
    gate = Gate(
        **decision.as_dict(),
        evaluated_on=evaluated_on,
        artifact_refreshed=refreshed,
        decided_at=datetime.now(UTC).isoformat(),
    )
    with services.mongo() as database:
        registry = Registry(database)
        if decision.promote or refreshed:
            registry.replace_champion(current, _champion(current, report, gate))
        registry.record_gate(run_id, gate)
        history = registry.history()
    path = write_history_plot(store, ModelLayout(run_id), history)
    with services.mongo() as database:
        Registry(database).record_plot(run_id, "metrics_history", path)
    log.info(
        "gate: %s — %s (champion now %s)",
        decision.decision,
        decision.reason,
        run_id if decision.promote else decision.champion_run_id,
    )
    return gate


def champion_on_candidate_data(
    services: Services, current: Champion, report: TrainingReport
) -> tuple[float, EvaluatedOn]:
    """The champion's recipe (feature set, window size, estimator and its params) scored on the candidate's
    recordings and folds."""
    recipe = current.recipe
    data = windows_of(services, recipe.feature_set, recipe.window_size, report.data.recording_ids)
    if data.fingerprint() != report.data.fingerprint:
        raise TrainingDataError(
            f"its windows ({recipe.feature_set}, size {recipe.window_size}) do not cover the same recordings"
        )
    assert report.seed is not None
    folds = grouped_folds(data.y, data.subjects, report.params.cv_folds, report.seed)
    score = subject_auc(data.y, data.subjects, recipe_cv(estimator_named(recipe.estimator), recipe, data, folds))
    return score, EvaluatedOn(
        windows=len(data.y),
        subjects=int(len(set(data.subjects))),
        folds=len(folds),
        fingerprint=report.data.fingerprint,
        champion_recipe=recipe,
    )


def _no_model_to_gate(services: Services, run_id: str, reason: str) -> None:
    """Record in the registry that this run has no model to gate; then the task is skipped (and what depends
    on it)."""
    gate = Gate(decision=NOT_TRAINED, promote=False, reason=reason, decided_at=datetime.now(UTC).isoformat())
    with services.mongo() as database:
        Registry(database).record_gate(run_id, gate)
    raise NothingToDo(f"champion_gate skipped: no model to gate ({reason})")


def _champion(current: Champion | None, report: TrainingReport, gate: Gate) -> Champion:
    assert report.artifact is not None
    return Champion(
        id=names.CHAMPION_ID,
        run_id=report.run_id,
        metric=gate.metric or GATE_METRIC,
        score=gate.candidate_score,
        previous_run_id=current.run_id if current else None,
        previous_score_on_same_data=gate.champion_score,
        recipe=report.recipe,
        artifact=report.artifact,
        reason=gate.reason,
        promoted_at=gate.decided_at,
    )
