"""Window feature sets the KNN can be trained on (Param feature_set). `means` is the mission's window_means
table exactly; the other sets add columns of the window_features table, computed in the same Spark pass."""
from __future__ import annotations

from include.gaitpdb import CHANNELS

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "means": tuple(CHANNELS),
}


def feature_columns(feature_set: str) -> tuple[str, ...]:
    """The set's columns that live in the window_features table (not in window_means)."""
    return tuple(c for c in FEATURE_SETS[feature_set] if c not in CHANNELS)
