"""The model registry in MongoDB, as a repository: one entry per training run (its TrainingReport, `_id` = run
id) in the metrics collection, and the one Champion document. Artifacts and plots live in HDFS
(include/layout.py: ModelLayout)."""

from __future__ import annotations

from include import names
from include.records import Champion, Gate, TrainingReport, from_document, to_document
from include.registry import CHAMPION_DECISIONS

HISTORY_RUNS = 30  # runs shown in the metrics-history plot


class ChampionChanged(RuntimeError):
    """Another gate replaced the champion meanwhile (transient: the retry compares against the new one)."""


class Registry:
    def __init__(self, database) -> None:
        self.metrics = database[names.METRICS_COLLECTION]
        self.champions = database[names.CHAMPION_COLLECTION]

    def entry(self, run_id: str) -> TrainingReport | None:
        document = self.metrics.find_one({"_id": run_id})
        return from_document(document, TrainingReport) if document else None

    def save(self, report: TrainingReport) -> bool:
        """Upsert a run's entry; True if it replaced an earlier one."""
        return bool(self.metrics.replace_one({"_id": report.run_id}, to_document(report), upsert=True).matched_count)

    def record_gate(self, run_id: str, gate: Gate) -> None:
        self.metrics.update_one({"_id": run_id}, {"$set": {"gate": to_document(gate)}})

    def record_plot(self, run_id: str, name: str, path: str) -> None:
        self.metrics.update_one({"_id": run_id}, {"$set": {f"plots.{name}": path}})

    def champion(self) -> Champion | None:
        document = self.champions.find_one({"_id": names.CHAMPION_ID})
        return from_document(document, Champion) if document else None

    def replace_champion(self, current: Champion | None, new: Champion) -> None:
        """Compare-and-set: replace only the champion the gate evaluated against."""
        from pymongo.errors import DuplicateKeyError

        if current is None:
            try:
                self.champions.insert_one(to_document(new))
            except DuplicateKeyError as exc:
                raise ChampionChanged(
                    "another run became champion while this gate ran; the retry will compare against it"
                ) from exc
            return
        result = self.champions.replace_one({"_id": names.CHAMPION_ID, "run_id": current.run_id}, to_document(new))
        if not result.matched_count:
            raise ChampionChanged(
                "the champion changed while this gate ran; the retry will compare against the new one"
            )

    def history(self, runs: int = HISTORY_RUNS) -> list[dict]:
        """The last trained runs' honest and leaky figures, oldest first, for the metrics-history plot."""
        entries = [from_document(d, TrainingReport) for d in self.metrics.find({"status": "trained"})]
        entries = sorted(entries, key=lambda e: e.trained_at)[-runs:]
        return [
            {
                "run_id": e.run_id,
                "honest": e.evaluation.subject_grouped_cv.subject.roc_auc,
                "leaky": e.evaluation.leaky_random_split.roc_auc,
                "champion": bool(e.gate and e.gate.decision in CHAMPION_DECISIONS),
            }
            for e in entries
            if e.evaluation
        ]

    def entries(self, limit: int) -> list[TrainingReport]:
        """The newest entries first."""
        documents = self.metrics.find({})
        return sorted((from_document(d, TrainingReport) for d in documents), key=lambda e: e.trained_at, reverse=True)[
            :limit
        ]
