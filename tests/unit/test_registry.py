import pytest

from include.registry import ALREADY, FIRST, KEPT, PROMOTED, decide

METRIC = "subject_roc_auc"


def test_first_model_becomes_champion():
    decision = decide(METRIC, "run2", 0.6, None, None)
    assert decision.decision == FIRST and decision.promote


@pytest.mark.parametrize("candidate, champion, expected", [
    (0.81, 0.80, PROMOTED),
    (0.80, 0.80, KEPT),  # a tie keeps the champion
    (0.79, 0.80, KEPT),
    (None, 0.80, KEPT),  # undefined candidate score never wins
    (0.70, None, KEPT),  # the champion's recipe cannot be evaluated on this data: no comparison, no promotion
])
def test_strictly_better_wins(candidate, champion, expected):
    decision = decide(METRIC, "new", candidate, "old", champion)
    assert decision.decision == expected and decision.promote == (expected == PROMOTED)
    record = decision.as_dict()
    assert record["candidate_score"] == candidate and record["champion_score"] == champion
    assert record["champion_run_id"] == "old" and record["reason"]


def test_rerun_of_the_champion_changes_nothing():
    decision = decide(METRIC, "run1", 0.9, "run1", None)
    assert decision.decision == ALREADY and not decision.promote
