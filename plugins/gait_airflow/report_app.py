"""The model report page, a FastAPI app mounted in Airflow's api-server by plugins/model_report_plugin.py.

Reads the stores through the pipeline's connections: the registry and champion from MongoDB, the plots
from HDFS (paths taken from the registry, never from the URL). Every route needs an Airflow login.
"""

from __future__ import annotations

import html
from datetime import datetime

from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from gait_airflow.clients import hdfs_client, mongo_database
from include.filestore import read_bytes
from include.records import Champion, TrainingReport, chosen_params, to_document
from include.stages.model_registry import Registry

URL_PREFIX = "/model-report"
RUNS_SHOWN = 50
PLOTS_SHOWN = 10  # runs whose plots are shown, newest first
PLOT_NAMES = ("confusion_matrix", "roc", "metrics_history")

app = FastAPI(title="Parkinson gait: model report", dependencies=[Depends(requires_authenticated())])


def runs_and_champion(limit: int = RUNS_SHOWN) -> tuple[list[dict], Champion | None]:
    """Registry entries, newest first, flattened to what the page shows; and the champion."""
    with mongo_database() as database:
        registry = Registry(database)
        entries, champion = registry.entries(limit), registry.champion()
    return [summarise(entry, champion) for entry in entries], champion


def summarise(entry: TrainingReport, champion: Champion | None) -> dict:
    honest = entry.evaluation.subject_grouped_cv if entry.evaluation else None
    return {
        "run_id": entry.run_id,
        "dag_id": entry.dag_id,
        "trained_at": entry.trained_at,
        "feature_set": entry.model.feature_set,
        "estimator": entry.model.estimator,
        "params": entry.model.params,
        "windows": entry.data.windows,
        "subjects": entry.data.subjects,
        "subject_roc_auc": honest.subject.roc_auc if honest else None,
        "subject_balanced_accuracy": honest.subject.balanced_accuracy if honest else None,
        "window_roc_auc": honest.window.roc_auc if honest else None,
        "window_balanced_accuracy": honest.window.balanced_accuracy if honest else None,
        "leaky_roc_auc": entry.evaluation.leaky_random_split.roc_auc if entry.evaluation else None,
        "majority_subject_accuracy": entry.evaluation.majority_class.subject_accuracy if entry.evaluation else None,
        "gate_decision": entry.gate.decision if entry.gate else None,
        "gate_reason": entry.gate.reason if entry.gate else None,
        "champion": bool(champion and champion.run_id == entry.run_id),
        "plots": sorted(entry.plots),
    }


@app.get("/api/runs")
def api_runs() -> dict:
    runs, champion = runs_and_champion()
    return {"champion": to_document(champion) if champion else None, "runs": runs}


@app.get("/plots/{run_id}/{name}.png")
def plot(run_id: str, name: str) -> Response:
    if name not in PLOT_NAMES:
        raise HTTPException(404, f"unknown plot {name!r}")
    with mongo_database() as database:
        entry = Registry(database).entry(run_id)
    path = entry.plots.get(name) if entry else None
    if path is None:
        raise HTTPException(404, f"run {run_id!r} has no {name} plot")
    return Response(read_bytes(hdfs_client(), path), media_type="image/png", headers={"Cache-Control": "max-age=60"})


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    runs, champion = runs_and_champion()
    return PAGE.format(
        champion=_champion_html(champion),
        history=_history_html(runs),
        plots=_plots_html(runs[:PLOTS_SHOWN]),
        generated=datetime.now().isoformat(timespec="seconds"),
    )


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _f(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _champion_html(champion: Champion | None) -> str:
    if champion is None:
        return "<p>No champion yet: the first model a training run gates becomes champion.</p>"
    replaced = (
        "nothing (first model)"
        if champion.previous_run_id is None
        else f"{champion.previous_run_id} (its score on the same data: {_f(champion.previous_score_on_same_data)})"
    )
    return (
        f'<dl id="champion"><dt>Model run</dt><dd>{_e(champion.run_id)}</dd>'
        f"<dt>{_e(champion.metric)}</dt><dd>{_f(champion.score)}</dd>"
        f"<dt>Recipe</dt><dd>{_e(champion.recipe)}</dd><dt>Why</dt><dd>{_e(champion.reason)}</dd>"
        f"<dt>Replaced</dt><dd>{_e(replaced)}</dd><dt>Promoted at</dt><dd>{_e(champion.promoted_at)}</dd>"
        "</dl>"
    )


def _history_html(runs: list[dict]) -> str:
    if not runs:
        return "<p>No training run yet: trigger <code>parkinson_gait_pipeline</code>.</p>"
    rows = "".join(
        f'<tr class="run{" champion" if r["champion"] else ""}" data-run-id="{_e(r["run_id"])}">'
        f"<td>{_e(r['run_id'])}{' ★' if r['champion'] else ''}</td><td>{_e((r['trained_at'] or '')[:19])}</td>"
        f"<td>{_e(r['feature_set'])}</td><td>{_e(chosen_params(r['estimator'], r['params']))}</td>"
        f"<td>{_e(r['windows'])} / {_e(r['subjects'])}</td>"
        f'<td class="honest">{_f(r["subject_roc_auc"])}</td>'
        f'<td class="honest">{_f(r["subject_balanced_accuracy"])}</td>'
        f'<td>{_f(r["window_roc_auc"])}</td><td class="leaky">{_f(r["leaky_roc_auc"])}</td>'
        f"<td>{_f(r['majority_subject_accuracy'])}</td>"
        f'<td title="{_e(r["gate_reason"])}">{_e(r["gate_decision"] or "–")}</td></tr>'
        for r in runs
    )
    return (
        '<table id="history"><thead><tr><th>Run</th><th>Trained (UTC)</th><th>Features</th><th>Estimator</th>'
        "<th>Windows / subjects</th><th>Subject AUC (honest)</th><th>Subject bal. acc. (honest)</th>"
        "<th>Window AUC (honest)</th><th>Window AUC (leaky)</th><th>Majority class (subjects)</th>"
        f"<th>Gate</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _plots_html(runs: list[dict]) -> str:
    sections = []
    for r in runs:
        images = "".join(
            f'<figure><img src="{URL_PREFIX}/plots/{_e(r["run_id"])}/{name}.png" alt="{name}" '
            f'width="480" loading="lazy"><figcaption>{name.replace("_", " ")}</figcaption></figure>'
            for name in PLOT_NAMES
            if name in r["plots"]
        )
        sections.append(
            f'<section class="run-plots" data-run-id="{_e(r["run_id"])}"><h3>{_e(r["run_id"])}</h3>'
            f"{images or '<p>no plots stored</p>'}</section>"
        )
    return "".join(sections)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model report · Parkinson gait</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ border: 1px solid #cbd5e0; padding: 0.25rem 0.5rem; text-align: left; }}
tr.champion {{ background: #fefcbf; }} td.honest {{ font-weight: 600; }} td.leaky {{ color: #a0aec0; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }} dt {{ font-weight: 600; }}
figure {{ display: inline-block; margin: 0.5rem; }} figcaption {{ text-align: center; font-size: 0.8rem; }}
</style></head><body>
<h1>Parkinson gait: model report</h1>
<p>Honest = subject-grouped cross-validation (no person in train and test), at subject level unless
marked window; leaky = random window split, as the original tutorial reported (kept only for comparison).
The gate promotes a model only if its honest subject ROC AUC beats the champion's recipe on the same data.</p>
<h2>Champion</h2>{champion}
<h2>Metrics history</h2>{history}
<h2>Plots</h2>{plots}
<p><small>Generated {generated} from MongoDB parkinson.model_metrics / model_champion and HDFS /models.</small></p>
</body></html>"""
