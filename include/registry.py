"""The champion gate: a model replaces the champion only if it beats it on the same honest metric, on the same
evaluation data. Pure decision logic; the Airflow task records both figures and the decision in MongoDB."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PROMOTED, KEPT, FIRST, ALREADY = "promoted", "kept", "first_model", "already_champion"
CHAMPION_DECISIONS = (PROMOTED, FIRST, ALREADY)  # the run was champion when its gate decided


@dataclass(frozen=True)
class GateDecision:
    decision: str  # promoted | kept | first_model | already_champion
    promote: bool
    metric: str
    candidate_run_id: str
    candidate_score: float | None
    champion_run_id: str | None
    champion_score: float | None  # the champion's recipe on the candidate's evaluation data
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    metric: str,
    candidate_run_id: str,
    candidate_score: float | None,
    champion_run_id: str | None,
    champion_score: float | None,
    champion_unavailable: str = "",
) -> GateDecision:
    """Strictly better wins; a tie, an undefined score or a champion that cannot be evaluated on the same data
    keeps the champion; no champion -> the candidate is first."""

    def verdict(decision: str, promote: bool, reason: str) -> GateDecision:
        return GateDecision(
            decision, promote, metric, candidate_run_id, candidate_score, champion_run_id, champion_score, reason
        )

    if champion_run_id is None:
        return verdict(FIRST, True, "no champion yet: the first model becomes champion")
    if champion_run_id == candidate_run_id:
        return verdict(ALREADY, False, "this run is already the champion (re-run)")
    if candidate_score is None:
        return verdict(KEPT, False, f"candidate {metric} is undefined (one class only)")
    if champion_score is None:
        why = champion_unavailable or f"the champion's {metric} on this data is undefined"
        return verdict(KEPT, False, f"no comparison on the same data ({why}); the champion stays")
    if candidate_score > champion_score:
        return verdict(
            PROMOTED,
            True,
            f"candidate {metric} {candidate_score:.4f} > champion {_fmt(champion_score)} on the same data",
        )
    return verdict(
        KEPT, False, f"candidate {metric} {candidate_score:.4f} <= champion {_fmt(champion_score)} on the same data"
    )


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"
