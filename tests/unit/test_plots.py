import numpy as np
import pytest

from include.plots import HEIGHT, WIDTH, confusion_matrix_png, metrics_history_png, png_size, roc_png


def test_confusion_matrix_png():
    blob = confusion_matrix_png({"true_control": [5, 1], "true_parkinson": [2, 7]}, "run")
    assert png_size(blob) == (WIDTH, HEIGHT)


def test_roc_png():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    blob = roc_png({"windows": (y, rng.random(200)), "subjects": (y[:20], rng.random(20))}, "run")
    assert png_size(blob) == (WIDTH, HEIGHT)


def test_metrics_history_png_with_gaps():
    history = [{"run_id": "dag__20260101T000000", "honest": 0.6, "leaky": 0.95, "champion": True},
               {"run_id": "dag__20260102T000000", "honest": None, "leaky": 0.97, "champion": False}]
    assert png_size(metrics_history_png(history, "history")) == (WIDTH, HEIGHT)


def test_png_size_rejects_other_bytes():
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + b"\0" * 30)
