import numpy as np
import pytest

from include import gaitpdb
from include.windowing import recording_windows, window_means


def naive(seq, t, values, size, complete_only):
    out = {}
    for s, tt, v in sorted(zip(seq, t, values), key=lambda x: x[0]):
        out.setdefault(s // size, []).append((tt, v))
    rows = []
    for index in sorted(out):
        items = out[index]
        if complete_only and len(items) != size:
            continue
        rows.append((index, len(items), items[0][0], items[-1][0], np.mean([v for _, v in items], axis=0)))
    return rows


@pytest.mark.parametrize("size, complete_only", [(1, True), (3, True), (3, False), (100, True), (7, False)])
def test_matches_naive_definition(size, complete_only):
    rng = np.random.default_rng(size)
    seq = rng.permutation(250)[:230]  # shuffled, with gaps
    t, values = seq / 100.0, rng.normal(size=(len(seq), 18))
    got = window_means(seq, t, values, size, complete_only)
    want = naive(seq, t, values, size, complete_only)
    assert list(got["window_index"]) == [w[0] for w in want]
    assert list(got["n_rows"]) == [w[1] for w in want]
    assert np.allclose(got["t_start"], [w[2] for w in want]) and np.allclose(got["t_end"], [w[3] for w in want])
    assert np.allclose(got["means"], np.array([w[4] for w in want]).reshape(-1, 18))


def test_bad_window_size():
    with pytest.raises(ValueError):
        window_means(np.arange(3), np.zeros(3), np.zeros((3, 18)), 0)


def test_sample_recording_windows():
    rows = gaitpdb.read_recording(gaitpdb.SAMPLE_DIR / "GaPt03_01.txt")
    windows = recording_windows("GaPt03_01", rows, 100)
    assert len(windows) == 10  # 1,050 rows: the 50-row tail is incomplete
    first = windows[0]
    assert first["label"] == 1 and first["subject_id"] == "GaPt03" and first["n_rows"] == 100
    assert first["l1"] == pytest.approx(rows[:100, 1].mean())
    assert first["right_total"] == pytest.approx(rows[:100, 18].mean())
    assert len(recording_windows("GaPt03_01", rows, 100, complete_only=False)) == 11
