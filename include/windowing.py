"""Reference definition of the window means (numpy): what the Spark job must reproduce exactly.

window_index = seq // window_size; a window is complete when it holds window_size readings.
"""

from __future__ import annotations

import numpy as np

from include.gaitpdb import CHANNELS, parse_recording_id


def window_means(
    seq: np.ndarray, t: np.ndarray, values: np.ndarray, window_size: int, complete_only: bool = True
) -> dict[str, np.ndarray]:
    """Means of each channel per window of one recording.

    seq (n,), t (n,), values (n, 18) -> dict of arrays: window_index, n_rows, t_start, t_end, means (k, 18).
    """
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    seq = np.asarray(seq, dtype=np.int64)
    order = np.argsort(seq, kind="stable")
    seq, t, values = seq[order], np.asarray(t, dtype=np.float64)[order], np.asarray(values, dtype=np.float64)[order]
    window = seq // window_size
    starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]]) if len(seq) else np.array([], dtype=np.int64)
    n_rows = np.diff(np.r_[starts, len(seq)])
    sums = np.add.reduceat(values, starts, axis=0) if len(seq) else np.empty((0, values.shape[1]))
    result = {
        "window_index": window[starts],
        "n_rows": n_rows,
        "t_start": t[starts],
        "t_end": t[starts + n_rows - 1],
        "means": sums / n_rows[:, None],
    }
    if complete_only:
        keep = n_rows == window_size
        result = {key: value[keep] for key, value in result.items()}
    return result


def recording_windows(recording_id: str, rows: np.ndarray, window_size: int, complete_only: bool = True) -> list[dict]:
    """Window rows as stored in Cassandra (without batch id) from a gaitpdb recording array (n, 19)."""
    rid = parse_recording_id(recording_id)
    seq = np.arange(len(rows))
    result = window_means(seq, rows[:, 0], rows[:, 1:], window_size, complete_only)
    out = []
    for i, index in enumerate(result["window_index"]):
        row = {
            "recording_id": recording_id,
            "window_index": int(index),
            "window_size": window_size,
            "subject_id": rid.subject_id,
            "study": rid.study,
            "subject_group": rid.group,
            "walk": rid.walk,
            "label": rid.label,
            "n_rows": int(result["n_rows"][i]),
            "t_start": float(result["t_start"][i]),
            "t_end": float(result["t_end"][i]),
        }
        row.update({name: float(v) for name, v in zip(CHANNELS, result["means"][i])})
        out.append(row)
    return out
