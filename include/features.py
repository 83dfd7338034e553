"""Window feature sets the KNN can be trained on (Param feature_set), and the numpy reference of the gait
features that the Spark job computes in the same pass as the window means.

- means: the mission's window_means table exactly (18 channel means per `window_size` readings).
- gait:  the window_features table (per `feature_window_size` readings, 300 = 3 s, whole strides). Forces are
  normalised by the recording's body load B = mean(left_total + right_total) over all its readings; a foot is
  in stance when its total force T > STANCE_FRACTION * B. Per foot (_l, _r): stance fraction, load mean / std /
  peak / coefficient of variation, heel strikes per second (rising crossings of the stance threshold, the
  previous reading taken across window borders), loading rate (mean positive force increment), heel / midfoot /
  toe share of the stance load, centre-of-pressure (anterior-posterior) mean and std over stance readings;
  both feet: load, peak and stance asymmetry, double- and no-support fractions, total-force std / max / min.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from include import names
from include.gaitpdb import CHANNELS, parse_recording_id

STANCE_FRACTION = 0.05
EPS = 1e-9
# Sensor positions along the foot (gaitpdb README, y in mm; heel -800 .. toe +800) scaled to -1 .. 1
SENSOR_Y = np.array([-800, -400, -400, 0, 0, 400, 400, 800], dtype=np.float64) / 800.0
HEEL, MIDFOOT, TOE = (0,), (3, 4), (6, 7)  # sensor indices (0-based) per foot

PER_FOOT = (
    "stance",
    "load_mean",
    "load_std",
    "load_peak",
    "load_cv",
    "strikes",
    "loading_rate",
    "heel_share",
    "midfoot_share",
    "toe_share",
    "cop_y_mean",
    "cop_y_std",
)
BOTH_FEET = (
    "asym_load",
    "asym_peak",
    "asym_stance",
    "double_support",
    "no_support",
    "total_std",
    "total_max",
    "total_min",
)
GAIT_FEATURES = tuple(f"{name}_{side}" for side in ("l", "r") for name in PER_FOOT) + BOTH_FEET


@dataclass(frozen=True)
class FeatureSet:
    table: str  # Cassandra table of the windows
    columns: tuple[str, ...]
    window_param: str  # the Param giving the window size of that table


FEATURE_SETS: dict[str, FeatureSet] = {
    "means": FeatureSet(names.WINDOW_TABLE, tuple(CHANNELS), "window_size"),
    "gait": FeatureSet(names.FEATURE_TABLE, GAIT_FEATURES, "feature_window_size"),
}


def gait_features(seq: np.ndarray, t: np.ndarray, values: np.ndarray, window_size: int) -> dict[str, np.ndarray]:
    """Gait features of one recording's complete windows (window_index = seq // window_size, window_size
    readings): seq (n,), t (n,), values (n, 18) with columns as CHANNELS, in any order.

    Returns window_index, t_start, t_end (k,), body_load (scalar array) and one (k,) array per GAIT_FEATURES name.
    The body load is the mean total force of all the recording's readings; a reading's previous one is the
    reading before it by seq, also across windows.
    """
    order = np.argsort(np.asarray(seq, dtype=np.int64), kind="stable")
    seq, t = np.asarray(seq, dtype=np.int64)[order], np.asarray(t, dtype=np.float64)[order]
    values = np.asarray(values, dtype=np.float64)[order]
    body_load = (values[:, 16] + values[:, 17]).mean() if len(values) else 0.0
    threshold = STANCE_FRACTION * body_load
    window = seq // window_size
    ids, counts = np.unique(window, return_counts=True)
    complete = ids[counts == window_size]
    in_complete = np.isin(window, complete)  # their readings are contiguous in seq order: window_size each

    def by_window(column: np.ndarray) -> np.ndarray:
        return column[in_complete].reshape(len(complete), window_size, *column.shape[1:])

    windows, times = by_window(values), by_window(t)
    out: dict[str, np.ndarray] = {
        "window_index": complete,
        "t_start": times[:, 0],
        "t_end": times[:, -1],
        "body_load": np.array(body_load),
    }
    on = {}
    for side, first, total in (("l", 0, 16), ("r", 8, 17)):
        force = windows[:, :, total]
        sensors = windows[:, :, first : first + 8]
        on[side] = stance = force > threshold
        mean, std = force.mean(1), force.std(1, ddof=1)
        previous = by_window(np.r_[np.inf, values[:-1, total]][: len(values)])
        increment = by_window(np.diff(np.r_[values[:1, total], values[:, total]]))
        stance_load = np.where(stance, force, 0).sum(1) + EPS
        cop = (sensors * SENSOR_Y).sum(2) / np.maximum(force, EPS)
        count = stance.sum(1)
        cop_mean = np.where(stance, cop, 0).sum(1) / np.maximum(count, 1)
        cop_var = np.where(stance, (cop - cop_mean[:, None]) ** 2, 0).sum(1) / np.maximum(count - 1, 1)
        out.update(
            {
                f"stance_{side}": stance.mean(1),
                f"load_mean_{side}": mean / body_load,
                f"load_std_{side}": std / body_load,
                f"load_peak_{side}": force.max(1) / body_load,
                f"load_cv_{side}": std / (mean + EPS),
                f"strikes_{side}": (stance & (previous <= threshold)).sum(1) * (100.0 / window_size),
                f"loading_rate_{side}": np.maximum(increment, 0).mean(1) / body_load,
                f"heel_share_{side}": _share(sensors, stance, HEEL) / stance_load,
                f"midfoot_share_{side}": _share(sensors, stance, MIDFOOT) / stance_load,
                f"toe_share_{side}": _share(sensors, stance, TOE) / stance_load,
                f"cop_y_mean_{side}": cop_mean,
                f"cop_y_std_{side}": np.sqrt(cop_var),
            }
        )
    total = windows[:, :, 16] + windows[:, :, 17]
    out.update(
        {
            "asym_load": _asymmetry(out["load_mean_l"], out["load_mean_r"]),
            "asym_peak": _asymmetry(out["load_peak_l"], out["load_peak_r"]),
            "asym_stance": np.abs(out["stance_l"] - out["stance_r"]),
            "double_support": (on["l"] & on["r"]).mean(1),
            "no_support": (~on["l"] & ~on["r"]).mean(1),
            "total_std": total.std(1, ddof=1) / body_load,
            "total_max": total.max(1) / body_load,
            "total_min": total.min(1) / body_load,
        }
    )
    return out


def _share(sensors: np.ndarray, stance: np.ndarray, which: tuple[int, ...]) -> np.ndarray:
    return np.where(stance, sensors[:, :, list(which)].sum(2), 0).sum(1)


def _asymmetry(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.abs(left - right) / (left + right + EPS)


def recording_feature_windows(recording_id: str, rows: np.ndarray, window_size: int) -> list[dict]:
    """window_features rows (without batch id) from a gaitpdb recording array (n, 19), seq = row number (as the
    simulator publishes it): the Spark job's reference."""
    rid = parse_recording_id(recording_id)
    features = gait_features(np.arange(len(rows)), rows[:, 0], rows[:, 1:], window_size)
    return [
        {
            "recording_id": recording_id,
            "window_index": int(index),
            "window_size": window_size,
            "subject_id": rid.subject_id,
            "label": rid.label,
            "body_load": float(features["body_load"]),
            "t_start": float(features["t_start"][i]),
            "t_end": float(features["t_end"][i]),
            **{name: float(features[name][i]) for name in GAIT_FEATURES},
        }
        for i, index in enumerate(features["window_index"])
    ]
