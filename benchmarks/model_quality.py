"""Model quality on a gaitpdb folder, per feature set: leaky vs honest, window vs subject level, chosen k,
and the wall time of training + evaluation. Same code as the DAG's train_knn (include/training.py) on the
windows that include/windowing.py and include/features.py define (the Spark job's references, which the
end-to-end test checks equal to Cassandra's rows).

    scripts/with-env python benchmarks/model_quality.py [--data DIR] [--json out.json]

DIR defaults to the full dataset unpacked as the README says (.local/gaitpdb/gaitpdb-1.0.0).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import msgspec

from gait_airflow.params import TRAINING_PARAMS
from include import gaitpdb
from include.estimators import KNN
from include.features import FEATURE_SETS, recording_feature_windows
from include.records import Metrics
from include.training import Windows, leaky_random_split, train_and_evaluate
from include.windowing import recording_windows

ROOT = Path(__file__).resolve().parents[1]
FULL_DATA = ROOT / ".local" / "gaitpdb" / "gaitpdb-1.0.0"
DEFAULTS = {name: param.value for name, param in TRAINING_PARAMS.items()}  # the DAGs' Param defaults
K_GRID = tuple(DEFAULTS[KNN.grid_param])
RECIPES = tuple((name, DEFAULTS[spec.window_param]) for name, spec in FEATURE_SETS.items())  # (set, window size)
TUTORIAL_K = 5  # the original tutorial: KNN k=5 on 100-row window means, random window split


def window_rows(folder: Path, feature_set: str, window_size: int) -> list[dict]:
    make = recording_windows if FEATURE_SETS[feature_set].window_param == "window_size" else recording_feature_windows
    rows = []
    for recording_id, data in gaitpdb.iter_recordings(folder):
        rows.extend(make(recording_id, data, window_size))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=FULL_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bias-variance-rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not gaitpdb.recording_files(args.data):
        parser.error(f"no gaitpdb recordings in {args.data} (unpack the dataset first: see README)")
    results = []
    for feature_set, window_size in RECIPES:
        began = time.monotonic()
        data = Windows.from_rows(window_rows(args.data, feature_set, window_size), feature_set)
        windowed = time.monotonic() - began
        began = time.monotonic()
        trained = train_and_evaluate(KNN(), data, feature_set, K_GRID, args.folds, args.bias_variance_rounds,
                                     args.seed)
        seconds = time.monotonic() - began
        print(f"{feature_set}: {len(data.y)} windows, train+evaluate {seconds:.1f} s", flush=True)
        honest, evaluation = trained.evaluation.subject_grouped_cv, trained.evaluation
        results.append({
            "feature_set": feature_set, "window_size": window_size, "features": len(data.features),
            "windows": len(data.y), "subjects": trained.data.subjects, "k": trained.model_info.params["k"],
            "chosen_k_per_fold": honest.chosen_per_fold,
            "tutorial_leaky_window": _pick(leaky_random_split(KNN(), TUTORIAL_K, data, args.seed)),
            "leaky_window": _pick(evaluation.leaky_random_split), "honest_window": _pick(honest.window),
            "honest_subject": _pick(honest.subject), "majority": msgspec.to_builtins(evaluation.majority_class),
            "bias_variance": msgspec.to_builtins(evaluation.bias_variance), "windowing_seconds": round(windowed, 1),
            "train_evaluate_seconds": round(seconds, 1),
        })
    print(f"{'features':<8} {'win':>4} {'windows':>7} {'k':>4}  {'level':<22} {'acc':>6} {'bal':>6} {'F1':>6} "
          f"{'AUC':>6}")
    for r in results:
        rows = ((f"leaky split k={TUTORIAL_K}, win", r["tutorial_leaky_window"]),
                ("leaky random split, win", r["leaky_window"]), ("honest grouped, window", r["honest_window"]),
                ("honest grouped, subject", r["honest_subject"]))
        for i, (level, m) in enumerate(rows):
            head = f"{r['feature_set']:<8} {r['window_size']:>4} {r['windows']:>7} {r['k']:>4}" if i == 0 else " " * 26
            print(f"{head}  {level:<22} {m['accuracy']:>6.3f} {m['balanced_accuracy']:>6.3f} {m['f1']:>6.3f} "
                  f"{m['roc_auc']:>6.3f}")
        print(f"{'':26}  majority class: window acc {r['majority']['window_accuracy']:.3f}, subject acc "
              f"{r['majority']['subject_accuracy']:.3f}; nested k per fold {r['chosen_k_per_fold']}; "
              f"train+evaluate {r['train_evaluate_seconds']} s (windowing {r['windowing_seconds']} s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "results": results, "peak_rss_mib": round(peak)},
                                        indent=1))
    return 0


def _pick(metrics: Metrics) -> dict:
    return {k: getattr(metrics, k) for k in ("accuracy", "balanced_accuracy", "f1", "roc_auc", "n")}


if __name__ == "__main__":
    sys.exit(main())
