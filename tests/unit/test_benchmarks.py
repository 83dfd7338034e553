import json

from benchmarks.model_quality import main
from include.gaitpdb import SAMPLE_DIR


def test_model_quality_benchmark_runs_on_the_sample(tmp_path, capsys):
    out = tmp_path / "quality.json"
    assert main(["--data", str(SAMPLE_DIR), "--folds", "3", "--bias-variance-rounds", "2", "--json", str(out)]) == 0
    results = {r["feature_set"]: r for r in json.loads(out.read_text())["results"]}
    assert results["means"]["windows"] == 130 and results["gait"]["windows"] == 39
    for r in results.values():
        assert r["subjects"] == 12 and len(r["chosen_k_per_fold"]) == 3
        for level in ("tutorial_leaky_window", "leaky_window", "honest_window", "honest_subject"):
            assert 0 <= r[level]["roc_auc"] <= 1
    assert "honest grouped, subject" in capsys.readouterr().out
