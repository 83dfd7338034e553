"""PNG plots of a training run (confusion matrix, grouped-CV ROC) and of the metrics history across runs.

Every figure is FIGSIZE at DPI, so the PNG is WIDTH x HEIGHT pixels.
"""

from __future__ import annotations

import io
import struct

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

FIGSIZE, DPI = (6.4, 4.8), 100
WIDTH, HEIGHT = 640, 480
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def png_size(blob: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; ValueError if the bytes are not a PNG."""
    if blob[:8] != PNG_SIGNATURE or blob[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", blob[16:24])


def confusion_matrix_png(matrix: dict, title: str) -> bytes:
    """matrix = {"true_control": [tn, fp], "true_parkinson": [fn, tp]} as stored in the metrics."""
    cells = np.array([matrix["true_control"], matrix["true_parkinson"]])
    figure, axes = plt.subplots(figsize=FIGSIZE)
    axes.imshow(cells, cmap="Blues")
    for (row, col), value in np.ndenumerate(cells):
        axes.text(
            col,
            row,
            f"{value:,}",
            ha="center",
            va="center",
            color="white" if value > cells.max() / 2 else "black",
            fontsize=14,
        )
    axes.set_xticks([0, 1], ["control", "parkinson"])
    axes.set_yticks([0, 1], ["control", "parkinson"])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    return _png(figure)


def roc_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes:
    """curves = {label: (y_true, probability)}; one ROC line per label with its AUC."""
    from sklearn.metrics import roc_auc_score

    figure, axes = plt.subplots(figsize=FIGSIZE)
    for label, (y_true, probability) in curves.items():
        if len(set(np.asarray(y_true).tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(y_true, probability)
        axes.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, probability):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    return _png(figure)


def metrics_history_png(history: list[dict], title: str) -> bytes:
    """history = [{"run_id", "honest", "leaky", "champion": bool}] oldest first (honest/leaky may be None)."""
    figure, axes = plt.subplots(figsize=FIGSIZE)
    x = np.arange(len(history))
    for key, label, style in (
        ("honest", "subject-grouped CV, subject ROC AUC (honest)", "o-"),
        ("leaky", "random window split ROC AUC (leaky)", "s--"),
    ):
        values = [np.nan if run.get(key) is None else run[key] for run in history]
        axes.plot(x, values, style, label=label)
    champions = [i for i, run in enumerate(history) if run.get("champion")]
    if champions:
        axes.plot(
            champions,
            [history[i]["honest"] for i in champions],
            "*",
            markersize=16,
            color="gold",
            markeredgecolor="black",
            label="champion when its gate decided",
        )
    axes.axhline(0.5, color="grey", linestyle=":", label="chance")
    axes.set_ylim(0, 1.05)
    axes.set_xticks(x, [run["run_id"].split("__")[-1] for run in history], rotation=30, ha="right", fontsize=7)
    axes.set_ylabel("ROC AUC")
    axes.set_title(title)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return _png(figure)
