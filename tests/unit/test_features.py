import numpy as np
import pytest

from include import gaitpdb
from include.features import FEATURE_SETS, GAIT_FEATURES, STANCE_FRACTION, gait_features, recording_feature_windows


def naive_features(values: np.ndarray, window_size: int) -> list[dict]:
    """Row-by-row restatement of the definitions in include/features.py (loops, no vectorisation)."""
    body_load = float(np.mean(values[:, 16] + values[:, 17]))
    threshold = STANCE_FRACTION * body_load
    y = [-1.0, -0.5, -0.5, 0.0, 0.0, 0.5, 0.5, 1.0]
    out = []
    for w in range(len(values) // window_size):
        rows = range(w * window_size, (w + 1) * window_size)
        f = {}
        for side, first, total in (("l", 0, 16), ("r", 8, 17)):
            force = [values[i, total] for i in rows]
            stance = [x > threshold for x in force]
            mean, std = np.mean(force), np.std(force, ddof=1)
            strikes = sum(1 for i in rows if values[i, total] > threshold
                          and i > 0 and values[i - 1, total] <= threshold)  # first reading: no previous
            rate = np.mean([max(values[i, total] - values[i - 1, total], 0.0) if i else 0.0 for i in rows])
            stance_load = sum(x for x, on in zip(force, stance) if on) + 1e-9
            cops = [sum(values[i, first + j] * y[j] for j in range(8)) / max(values[i, total], 1e-9)
                    for i, on in zip(rows, stance) if on]
            f.update({f"stance_{side}": np.mean(stance), f"load_mean_{side}": mean / body_load,
                      f"load_std_{side}": std / body_load, f"load_peak_{side}": max(force) / body_load,
                      f"load_cv_{side}": std / (mean + 1e-9), f"strikes_{side}": strikes * 100.0 / window_size,
                      f"loading_rate_{side}": rate / body_load,
                      f"heel_share_{side}": sum(values[i, first] for i, on in zip(rows, stance) if on) / stance_load,
                      f"midfoot_share_{side}": sum(values[i, first + 3] + values[i, first + 4]
                                                   for i, on in zip(rows, stance) if on) / stance_load,
                      f"toe_share_{side}": sum(values[i, first + 6] + values[i, first + 7]
                                               for i, on in zip(rows, stance) if on) / stance_load,
                      f"cop_y_mean_{side}": np.mean(cops) if cops else 0.0,
                      f"cop_y_std_{side}": np.std(cops, ddof=1) if len(cops) > 1 else 0.0})
        left = [values[i, 16] > threshold for i in rows]
        right = [values[i, 17] > threshold for i in rows]
        total = [values[i, 16] + values[i, 17] for i in rows]
        f.update({"asym_load": abs(f["load_mean_l"] - f["load_mean_r"]) / (f["load_mean_l"] + f["load_mean_r"] + 1e-9),
                  "asym_peak": abs(f["load_peak_l"] - f["load_peak_r"]) / (f["load_peak_l"] + f["load_peak_r"] + 1e-9),
                  "asym_stance": abs(f["stance_l"] - f["stance_r"]),
                  "double_support": np.mean([a and b for a, b in zip(left, right)]),
                  "no_support": np.mean([not a and not b for a, b in zip(left, right)]),
                  "total_std": np.std(total, ddof=1) / body_load, "total_max": max(total) / body_load,
                  "total_min": min(total) / body_load})
        out.append(f)
    return out


@pytest.mark.parametrize("window_size", [100, 300, 1000])
def test_vectorised_features_equal_the_naive_definition(window_size):
    recording_id, rows = next(gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR))
    fast = gait_features(np.arange(len(rows)), rows[:, 0], rows[:, 1:], window_size)
    naive = naive_features(rows[:, 1:], window_size)
    assert len(fast["window_index"]) == len(naive) == len(rows) // window_size
    for i, expected in enumerate(naive):
        for name in GAIT_FEATURES:
            assert fast[name][i] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), (name, i)


def test_feature_rows_are_complete_windows_with_ids():
    rows = gaitpdb.read_recording(gaitpdb.recording_files(gaitpdb.SAMPLE_DIR)[0])
    windows = recording_feature_windows("GaCo01_01", rows, 300)
    assert [w["window_index"] for w in windows] == [0, 1, 2]  # 1,050 rows: the last 150 are not a window
    assert windows[1]["t_start"] == rows[300, 0] and windows[1]["t_end"] == rows[599, 0]
    assert windows[0]["subject_id"] == "GaCo01" and windows[0]["label"] == 0
    assert set(GAIT_FEATURES) <= set(windows[0]) and all(np.isfinite(windows[0][n]) for n in GAIT_FEATURES)


def test_gait_features_are_scale_free():
    """Normalised by the recording's body load: the same gait with every force doubled gives the same features."""
    rows = gaitpdb.read_recording(gaitpdb.recording_files(gaitpdb.SAMPLE_DIR)[0])
    seq = np.arange(len(rows))
    one, two = gait_features(seq, rows[:, 0], rows[:, 1:], 300), gait_features(seq, rows[:, 0], rows[:, 1:] * 2, 300)
    for name in GAIT_FEATURES:
        assert np.allclose(one[name], two[name]), name


def test_feature_sets_name_their_table_and_window_param():
    assert FEATURE_SETS["means"].table == "window_means" and FEATURE_SETS["means"].window_param == "window_size"
    assert FEATURE_SETS["gait"].columns == GAIT_FEATURES and len(GAIT_FEATURES) == 32


def test_windows_are_seq_div_size_in_any_order_with_gaps_and_large_seqs():
    """The one window definition (window_index = seq // size, complete windows only), as in the Spark job: the
    readings' order does not matter, a gap drops only its window, and seqs past 2^53 keep exact windows."""
    rows = gaitpdb.read_recording(gaitpdb.recording_files(gaitpdb.SAMPLE_DIR)[0])
    seq, t, values = np.arange(len(rows)), rows[:, 0], rows[:, 1:]
    base = gait_features(seq, t, values, 300)
    shuffled = np.random.default_rng(0).permutation(len(rows))
    same = gait_features(seq[shuffled], t[shuffled], values[shuffled], 300)
    keep = seq != 450  # one reading missing from window 1
    gap = gait_features(seq[keep], t[keep], values[keep], 300)
    offset = (2**53 // 300 + 7) * 300  # a multiple of the window size past 2^53
    large = gait_features(seq + offset, t, values, 300)
    assert base["window_index"].tolist() == same["window_index"].tolist() == [0, 1, 2]
    assert gap["window_index"].tolist() == [0, 2]
    assert (large["window_index"] - offset // 300).tolist() == [0, 1, 2]
    for name in ("t_start", "t_end", *GAIT_FEATURES):
        assert np.array_equal(base[name], same[name]) and np.array_equal(base[name], large[name]), name
        assert np.allclose(gap[name][[0, 1]], base[name][[0, 2]], rtol=1e-3), name  # body load moved slightly
