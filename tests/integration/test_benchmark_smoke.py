"""The pipeline benchmark's smoke mode on the real services (bundled sample, one run, 1x and 2x): every stage
runs and the figures it reports are the ones measured (items and seconds agree with the rates and ratios)."""
import json

from benchmarks import pipeline


def test_benchmark_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert pipeline.main(["--smoke", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    readings = 13_650  # the bundled sample
    assert r["numpy_floor"]["items"] == readings and r["numpy_floor"]["windows"] == 130
    for stage in ("publish_batched", "capture_batched", "replay", "windowing"):
        assert r[stage]["items"] == readings and r[stage]["seconds"] > 0, stage
        assert abs(r[stage]["rate"] - readings / r[stage]["seconds"]) < 1e-6 * r[stage]["rate"], stage
    assert r["capture_single"]["items"] == 13 * 200 and r["replay_baseline"]["items"] == 2_000
    assert r["windowing"]["windows"] == 130 and r["windowing"]["feature_windows"] == 39
    assert r["tutorial_windowing"]["items"] == 5 and r["training"]["items"] == 130
    assert r["scaling"]["2"]["replay"]["items"] == 2 * readings
    assert r["scaling"]["2"]["windowing"]["windows"] == 2 * 130
    figures = r["summary"]["figures"]
    assert figures["replay_vs_baseline"] == r["replay"]["rate"] / r["replay_baseline"]["rate"]
    assert r["cleanup"]["copies_deleted"] == 2 * 13 and r["cleanup"]["batches_deleted"] == 3
    assert "replay HDFS -> Kafka" in capsys.readouterr().out
