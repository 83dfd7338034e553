import io

import numpy as np
import pytest
from matplotlib import image

from include.plots import HEIGHT, WIDTH, confusion_matrix_png, metrics_history_png, png_size, roc_png
from tests.pipeline_checks import BLUE, ORANGE, pixels_like

DARKEST_BLUES, GOLD = (8, 48, 107), (255, 215, 0)


def test_confusion_matrix_png_shades_the_largest_cell_darkest():
    blob = confusion_matrix_png({"true_control": [5, 1], "true_parkinson": [2, 7]}, "run")
    assert png_size(blob) == (WIDTH, HEIGHT)
    assert pixels_like(blob, DARKEST_BLUES) > 0.02 * WIDTH * HEIGHT  # the 7's cell, a quarter of the axes
    even = confusion_matrix_png({"true_control": [0, 0], "true_parkinson": [0, 0]}, "run")
    assert pixels_like(even, DARKEST_BLUES) < pixels_like(blob, DARKEST_BLUES)


def test_roc_png_draws_one_curve_per_label():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    blob = roc_png({"windows": (y, rng.random(200)), "subjects": (y[:20], rng.random(20))}, "run")
    assert png_size(blob) == (WIDTH, HEIGHT)
    assert pixels_like(blob, BLUE) > 300 and pixels_like(blob, ORANGE) > 100
    one_class = roc_png({"windows": (y, rng.random(200)), "subjects": (np.ones(20), rng.random(20))}, "run")
    assert pixels_like(one_class, ORANGE) < 50, "a label with one class has no curve"


def test_roc_png_of_a_perfect_model_climbs_the_left_edge():
    y = np.repeat([0, 1], 50)
    perfect, chance = roc_png({"windows": (y, y * 0.9)}, "run"), roc_png({"windows": (y, np.full(100, 0.5))}, "run")
    rgb = (image.imread(io.BytesIO(perfect))[..., :3] * 255).round()
    blue = np.argwhere(np.abs(rgb - np.array(BLUE)).max(axis=-1) <= 12)
    assert len(blue) > 300
    left_column = blue[:, 1].min()
    assert (blue[:, 1] <= left_column + 3).sum() > 150, "the perfect curve should rise vertically at fpr = 0"
    assert perfect != chance


def test_metrics_history_png_marks_champions():
    history = [{"run_id": "dag__20260101T000000", "honest": 0.6, "leaky": 0.95, "champion": True},
               {"run_id": "dag__20260102T000000", "honest": None, "leaky": 0.97, "champion": False}]
    blob = metrics_history_png(history, "history")
    assert png_size(blob) == (WIDTH, HEIGHT)
    assert pixels_like(blob, GOLD) > 30 and pixels_like(blob, ORANGE) > 30
    no_champion = metrics_history_png([{**run, "champion": False} for run in history], "history")
    assert pixels_like(no_champion, GOLD) == 0


def test_png_size_rejects_other_bytes():
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + b"\0" * 30)
