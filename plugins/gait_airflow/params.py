"""Params of the gait DAGs: what the trigger form shows (titles, descriptions, types, bounds, defaults)."""

from __future__ import annotations

from airflow.sdk import Param

from include.estimators import DEFAULT_ESTIMATOR, ESTIMATORS, Estimator
from include.features import FEATURE_SETS


def grid_param(estimator: Estimator) -> Param:
    """The grid an estimator's hyperparameter is chosen from (one Param per estimator)."""
    return Param(
        list(estimator.default_grid),
        type="array",
        items={"type": "integer", "minimum": 1, "maximum": estimator.grid_maximum},
        minItems=1,
        maxItems=20,
        title=f"{estimator.title} to choose from",
        description=f"{estimator.hyperparameter} is chosen by nested subject-grouped CV among these (never on a "
        "test fold).",
    )


TRAINING_PARAMS = {
    "window_size": Param(
        100,
        type="integer",
        minimum=2,
        maximum=10_000,
        title="Window size (readings)",
        description="Readings per window: window_index = seq // window_size (100 = 1 s at 100 Hz).",
    ),
    "feature_window_size": Param(
        300,
        type="integer",
        minimum=10,
        maximum=10_000,
        title="Gait-feature window size (readings)",
        description="Readings per window of the window_features table (300 = 3 s: whole "
        "strides); used by feature_set=gait.",
    ),
    "feature_set": Param(
        "means",
        type="string",
        enum=list(FEATURE_SETS),
        title="Feature set",
        description="means = the 18 window means (window_means table); gait = normalised "
        "stance, load, strike, centre-of-pressure and asymmetry features "
        "(window_features table, same Spark pass; see include/features.py).",
    ),
    "estimator": Param(
        DEFAULT_ESTIMATOR,
        type="string",
        enum=list(ESTIMATORS),
        title="Estimator",
        description="The classifier (include/estimators.py); its hyperparameter grid is the Param below.",
    ),
    **{estimator.grid_param: grid_param(estimator) for estimator in ESTIMATORS.values()},
    "cv_folds": Param(
        5,
        type="integer",
        minimum=2,
        maximum=20,
        title="Grouped CV folds",
        description="Subject-grouped stratified folds (capped by subjects per class).",
    ),
    "bias_variance_rounds": Param(
        20,
        type="integer",
        minimum=1,
        maximum=500,
        title="Bias-variance rounds",
        description="Bootstrap rounds of mlxtend's bias_variance_decomp.",
    ),
    "seed": Param(
        42,
        type="integer",
        minimum=0,
        title="Random seed",
        description="Seed of the CV split, the leaky split and the bias-variance rounds.",
    ),
}

PIPELINE_PARAMS = {
    "simulate_sensors": Param(
        True,
        type="boolean",
        title="Simulate the insole sensors",
        description="Publish recordings to MQTT before capturing (off: capture only what devices published).",
    ),
    "source_path": Param(
        None,
        type=["null", "string"],
        title="Recordings folder",
        description="gaitpdb folder to simulate from; empty = the bundled sample (include/sample/gaitpdb).",
    ),
    "recordings": Param(
        None,
        type=["null", "array"],
        items={"type": "string", "pattern": r"^(Ga|Ju|Si)(Co|Pt)[0-9]{2}_[0-9]{2}$"},
        title="Recordings to simulate",
        description="Recording ids like GaCo01_01, one per line; empty = all.",
    ),
    "publish_rate": Param(
        0,
        type="number",
        minimum=0,
        maximum=1_000_000,
        title="Publish rate (readings/s)",
        description="0 = as fast as the broker accepts; 100 = one insole in real time.",
    ),
    "readings_per_message": Param(
        50,
        type="integer",
        minimum=1,
        maximum=1_000,
        title="Readings per MQTT message",
        description="1 = one JSON object per message; more = a JSON array (batched).",
    ),
    "max_rows_per_recording": Param(
        0,
        type="integer",
        minimum=0,
        title="Max rows per recording",
        description="Publish only the first N rows of each recording; 0 = all.",
    ),
    "capture_max_messages": Param(
        2_000_000,
        type="integer",
        minimum=1,
        maximum=20_000_000,
        title="Capture: max messages",
        description="Stop draining after this many.",
    ),
    "capture_idle_seconds": Param(
        5.0,
        type="number",
        minimum=0.5,
        maximum=600,
        title="Capture: idle seconds",
        description="Stop draining when nothing arrived for this long.",
    ),
    "capture_max_seconds": Param(
        900.0,
        type="number",
        minimum=1,
        maximum=3_600,
        title="Capture: max seconds",
        description="Stop draining after this long in any case.",
    ),
    "include_partial_windows": Param(
        False,
        type="boolean",
        title="Store partial windows",
        description="Also store a recording's last, incomplete window.",
    ),
    "train_scope": Param(
        "batch",
        type="string",
        enum=["batch", "all"],
        title="Train on",
        description="batch = this batch's recordings; all = every window in Cassandra.",
    ),
    **TRAINING_PARAMS,
}
