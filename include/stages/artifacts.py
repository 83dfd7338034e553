"""A training run's artifacts in HDFS (ModelLayout): the model, verified by sha256 before it is loaded, and
the plots."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from include.filestore import read_bytes, write_atomically
from include.layout import ModelLayout
from include.plots import confusion_matrix_png, metrics_history_png, roc_png
from include.records import Artifact
from include.training import Trained, Windows, load_verified, serialize, subject_level

MODEL_FORMAT = "pickle (sklearn Pipeline)"


def write_model(store, layout: ModelLayout, data: Windows, trained: Trained) -> tuple[Artifact, dict[str, str]]:
    """The model and its evaluation plots; returns the artifact's registry record and the plots' paths."""
    blob, sha256 = serialize(trained.model)
    write_atomically(store, layout.model, blob)
    honest = trained.evaluation.subject_grouped_cv
    _, y_subject, p_subject = subject_level(data.subjects, data.y, trained.probability)
    plots = {
        "confusion_matrix": confusion_matrix_png(
            honest.subject.confusion_matrix, f"{layout.run_id}\nsubjects, subject-grouped CV"
        ),
        "roc": roc_png(
            {"subjects": (y_subject, p_subject), "windows": (data.y, trained.probability)},
            f"{layout.run_id}\nsubject-grouped CV (out-of-fold)",
        ),
    }
    for name, png in plots.items():
        write_atomically(store, layout.plot(name), png)
    artifact = Artifact(hdfs_path=layout.model, sha256=sha256, bytes=len(blob), format=MODEL_FORMAT)
    return artifact, {name: layout.plot(name) for name in plots}


def write_history_plot(store, layout: ModelLayout, history: list[dict]) -> str:
    path = layout.plot("metrics_history")
    write_atomically(store, path, metrics_history_png(history, f"model metrics, last {len(history)} runs"))
    return path


def load_model(store, artifact: Artifact) -> Pipeline:
    """The model, loaded only if its bytes match the sha256 the registry recorded."""
    return load_verified(read_bytes(store, artifact.hdfs_path), artifact.sha256)
