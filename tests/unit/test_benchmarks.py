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


def test_capacity_plan_arithmetic(tmp_path, capsys):
    """Rates from a results file: 10,000 readings in 1 s of capture and replay (one core each), 40,000 readings
    in 2 s of Spark job on local[2] (10,000 per core), 400 window rows in 0.1 s of writes (4,000 per node)."""
    import pytest

    from benchmarks import capacity

    results = {"capture_batched": {"items": 10_000, "seconds": 1.0}, "replay": {"items": 10_000, "seconds": 1.0},
               "windowing": {"items": 40_000, "job_seconds": 2.0, "windows": 400,
                             "phase_seconds": {"write_means": 0.1}},
               "spark_master": "local[2]", "commit": "abc", "machine": {"cpus": 2}}
    rates = capacity.Rates.from_results(results, "test")
    assert (rates.capture, rates.replay, rates.windowing, rates.cassandra_writes) == (10_000, 10_000, 10_000, 4_000)
    p = capacity.plan(10_000, rates, line_bytes=400, headroom=2)
    assert p["readings_per_s"] == 500_000  # 5,000 subjects (2 insoles each) at 100 Hz
    assert p["cores"] == {"capture": 100, "replay": 100, "windowing (Spark executors)": 100}
    assert p["spark_executor_cores"] == 100 and p["kafka_partitions"] == 102  # 100 consumers, a multiple of 3
    assert p["cassandra_node_load"] == 5_000 * 3 * 2 / 4_000 and p["cassandra_nodes"] == 8  # 7.5 nodes' worth
    assert p["hdfs_gib_per_day"] == pytest.approx(500_000 * 86_400 * 400 * 3 / 2**30)
    assert p["kafka_gib_retained"] == pytest.approx(500_000 * 86_400 * 400 * 3 * 7 / 2**30)
    assert capacity.plan(10_000, rates, line_bytes=400, headroom=2, message_bytes=100)["kafka_gib_retained"] == \
        pytest.approx(p["kafka_gib_retained"] / 4)
    small = capacity.plan(100, rates, line_bytes=400, headroom=2)
    assert small["kafka_partitions"] == 6 and small["cassandra_nodes"] == 3
    with pytest.raises(ValueError, match="local"):
        capacity.spark_cores_of("spark://127.0.0.1:7077")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    assert capacity.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 10,000 | 500,000 |" in out and "bytes per landed reading" in out and "per Kafka message" in out
