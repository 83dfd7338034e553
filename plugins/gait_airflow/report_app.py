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

from include import names

URL_PREFIX = "/model-report"
RUNS_SHOWN = 50
PLOTS_SHOWN = 10  # runs whose plots are shown, newest first
PLOT_NAMES = ("confusion_matrix", "roc", "metrics_history")

app = FastAPI(title="Parkinson gait KNN: model report", dependencies=[Depends(requires_authenticated())])


def _mongo():
    from airflow.providers.mongo.hooks.mongo import MongoHook

    return MongoHook(mongo_conn_id=names.MONGO_CONN_ID)


def runs_and_champion(limit: int = RUNS_SHOWN) -> tuple[list[dict], dict | None]:
    """Registry entries, newest first, flattened to what the page shows; and the champion document."""
    with _mongo() as hook:
        docs = list(hook.find(names.METRICS_COLLECTION, {}, mongo_db=names.MONGO_DB,
                              projection={"artifact": 0, "lineage": 0}))
        champion = hook.find(names.CHAMPION_COLLECTION, {"_id": names.CHAMPION_ID}, find_one=True,
                             mongo_db=names.MONGO_DB)
    docs = sorted(docs, key=lambda d: d.get("trained_at", ""), reverse=True)[:limit]
    return [summarise(doc, champion) for doc in docs], champion


def summarise(doc: dict, champion: dict | None) -> dict:
    evaluation = doc.get("evaluation", {})
    honest = evaluation.get("subject_grouped_cv", {})
    subject, window = honest.get("subject", {}), honest.get("window", honest)  # older entries: window level only
    gate = doc.get("gate", {})
    return {
        "run_id": doc["_id"], "dag_id": doc.get("dag_id"), "trained_at": doc.get("trained_at"),
        "feature_set": doc.get("model", {}).get("feature_set", "means"), "k": doc.get("model", {}).get("k"),
        "windows": doc.get("data", {}).get("windows"), "subjects": doc.get("data", {}).get("subjects"),
        "subject_roc_auc": subject.get("roc_auc"), "subject_balanced_accuracy": subject.get("balanced_accuracy"),
        "window_roc_auc": window.get("roc_auc"), "window_balanced_accuracy": window.get("balanced_accuracy"),
        "leaky_roc_auc": evaluation.get("leaky_random_split", {}).get("roc_auc"),
        "majority_subject_accuracy": evaluation.get("majority_class", {}).get("subject_accuracy"),
        "gate_decision": gate.get("decision"), "gate_reason": gate.get("reason"),
        "champion": bool(champion and champion.get("run_id") == doc["_id"]),
        "plots": sorted(doc.get("plots", {})),
    }


@app.get("/api/runs")
def api_runs() -> dict:
    runs, champion = runs_and_champion()
    return {"champion": champion, "runs": runs}


@app.get("/plots/{run_id}/{name}.png")
def plot(run_id: str, name: str) -> Response:
    from gait_airflow.stages import hdfs_client

    if name not in PLOT_NAMES:
        raise HTTPException(404, f"unknown plot {name!r}")
    with _mongo() as hook:
        doc = hook.find(names.METRICS_COLLECTION, {"_id": run_id}, find_one=True, mongo_db=names.MONGO_DB,
                        projection={"plots": 1})
    path = (doc or {}).get("plots", {}).get(name)
    if path is None:
        raise HTTPException(404, f"run {run_id!r} has no {name} plot")
    with hdfs_client().read(path) as reader:
        return Response(reader.read(), media_type="image/png", headers={"Cache-Control": "max-age=60"})


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    runs, champion = runs_and_champion()
    return PAGE.format(champion=_champion_html(champion), history=_history_html(runs),
                       plots=_plots_html(runs[:PLOTS_SHOWN]), generated=datetime.now().isoformat(timespec="seconds"))


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _f(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _champion_html(champion: dict | None) -> str:
    if champion is None:
        return "<p>No champion yet: the first model a training run gates becomes champion.</p>"
    previous = champion.get("previous_run_id")
    replaced = "nothing (first model)" if previous is None else \
        f"{previous} (its score on the same data: {_f(champion.get('previous_score_on_same_data'))})"
    return (f'<dl id="champion"><dt>Model run</dt><dd>{_e(champion["run_id"])}</dd>'
            f'<dt>{_e(champion["metric"])}</dt><dd>{_f(champion.get("score"))}</dd>'
            f'<dt>Recipe</dt><dd>features {_e(champion.get("feature_set"))}, window {_e(champion.get("window_size"))}, '
            f'k={_e(champion.get("k"))}</dd><dt>Why</dt><dd>{_e(champion.get("reason"))}</dd>'
            f'<dt>Replaced</dt><dd>{_e(replaced)}</dd><dt>Promoted at</dt><dd>{_e(champion.get("promoted_at"))}</dd>'
            '</dl>')


def _history_html(runs: list[dict]) -> str:
    if not runs:
        return "<p>No training run yet: trigger <code>parkinson_gait_pipeline</code>.</p>"
    rows = "".join(
        f'<tr class="run{" champion" if r["champion"] else ""}" data-run-id="{_e(r["run_id"])}">'
        f'<td>{_e(r["run_id"])}{" ★" if r["champion"] else ""}</td><td>{_e((r["trained_at"] or "")[:19])}</td>'
        f'<td>{_e(r["feature_set"])}</td><td>{_e(r["k"])}</td><td>{_e(r["windows"])} / {_e(r["subjects"])}</td>'
        f'<td class="honest">{_f(r["subject_roc_auc"])}</td>'
        f'<td class="honest">{_f(r["subject_balanced_accuracy"])}</td>'
        f'<td>{_f(r["window_roc_auc"])}</td><td class="leaky">{_f(r["leaky_roc_auc"])}</td>'
        f'<td>{_f(r["majority_subject_accuracy"])}</td>'
        f'<td title="{_e(r["gate_reason"])}">{_e(r["gate_decision"] or "–")}</td></tr>' for r in runs)
    return ('<table id="history"><thead><tr><th>Run</th><th>Trained (UTC)</th><th>Features</th><th>k</th>'
            '<th>Windows / subjects</th><th>Subject AUC (honest)</th><th>Subject bal. acc. (honest)</th>'
            '<th>Window AUC (honest)</th><th>Window AUC (leaky)</th><th>Majority class (subjects)</th>'
            f'<th>Gate</th></tr></thead><tbody>{rows}</tbody></table>')


def _plots_html(runs: list[dict]) -> str:
    sections = []
    for r in runs:
        images = "".join(f'<figure><img src="{URL_PREFIX}/plots/{_e(r["run_id"])}/{name}.png" alt="{name}" '
                         f'width="480" loading="lazy"><figcaption>{name.replace("_", " ")}</figcaption></figure>'
                         for name in PLOT_NAMES if name in r["plots"])
        sections.append(f'<section class="run-plots" data-run-id="{_e(r["run_id"])}"><h3>{_e(r["run_id"])}</h3>'
                        f'{images or "<p>no plots stored</p>"}</section>')
    return "".join(sections)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model report · Parkinson gait KNN</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ border: 1px solid #cbd5e0; padding: 0.25rem 0.5rem; text-align: left; }}
tr.champion {{ background: #fefcbf; }} td.honest {{ font-weight: 600; }} td.leaky {{ color: #a0aec0; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }} dt {{ font-weight: 600; }}
figure {{ display: inline-block; margin: 0.5rem; }} figcaption {{ text-align: center; font-size: 0.8rem; }}
</style></head><body>
<h1>Parkinson gait KNN: model report</h1>
<p>Honest = subject-grouped cross-validation (no person in train and test), at subject level unless
marked window; leaky = random window split, as the original tutorial reported (kept only for comparison).
The gate promotes a model only if its honest subject ROC AUC beats the champion's recipe on the same data.</p>
<h2>Champion</h2>{champion}
<h2>Metrics history</h2>{history}
<h2>Plots</h2>{plots}
<p><small>Generated {generated} from MongoDB parkinson.model_metrics / model_champion and HDFS /models.</small></p>
</body></html>"""
