"""Source of docs/architecture.png (the README's diagram): `scripts/with-env python docs/architecture.py`."""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).with_suffix(".png")
SERVICE, TASK, STORE, AIRFLOW = "#bee3f8", "#c6f6d5", "#fefcbf", "#e9d8fd"

BOXES = {  # name: (x, y, text, colour); x, y = centre in a 16 x 9 canvas
    "sensors": (1.6, 7.0, "Insole sensors\n(or the simulator)\n8 + 8 forces, 100 Hz", SERVICE),
    "mqtt": (4.7, 7.0, "Mosquitto\ngait/readings/<id>\nQoS 1, durable\nsession", SERVICE),
    "capture": (7.8, 7.0, "capture_mqtt_to_hdfs\nvalidate, land,\nthen acknowledge", TASK),
    "hdfs": (10.9, 7.0, "HDFS (WebHDFS)\nraw/batch=…/\ndead_letter/\nmanifests/", STORE),
    "replay": (14.0, 7.0, "replay_hdfs_to_kafka\nidempotent producer\noffsets → HDFS", TASK),
    "kafka": (14.0, 4.6, "Kafka\ngait.readings\n3 partitions", SERVICE),
    "spark": (10.9, 4.6, "Spark job\n(SparkSubmitOperator)\nwindow means\n+ gait features", TASK),
    "cassandra": (7.8, 4.6, "Cassandra\nwindow_means\nwindow_features\npredictions", STORE),
    "train": (4.7, 4.6, "train_knn\nnested grouped CV\nmodel + plots → HDFS", TASK),
    "mongo": (1.6, 4.6, "MongoDB (FerretDB)\nmodel_metrics\n(registry)\nmodel_champion", STORE),
    "gate": (4.7, 2.2, "champion_gate\nbeats the champion on\nthe same data?", TASK),
    "predict": (7.8, 2.2, "predict_latest_batch\n(nightly) champion,\nsha256 checked", TASK),
    "airflow": (12.4, 2.2, "Airflow 3: scheduler, dag-processor, api-server\nUI trigger form (Params), nightly 02:00,\n"
                           "Model report page (plugin)", AIRFLOW),
}
ARROWS = [("sensors", "mqtt"), ("mqtt", "capture"), ("capture", "hdfs"), ("hdfs", "replay"), ("replay", "kafka"),
          ("kafka", "spark"), ("spark", "cassandra"), ("cassandra", "train"), ("train", "mongo"),
          ("train", "gate"), ("gate", "mongo"), ("gate", "predict"), ("predict", "cassandra")]
WIDTH, HEIGHT = 2.5, 1.5
WIDE = {"airflow": 5.2}


def edge(centre: tuple[float, float], towards: tuple[float, float], pad: float = 0.15) -> tuple[float, float]:
    """Where the line from a box's centre towards another point leaves the box (plus a small gap)."""
    dx, dy = towards[0] - centre[0], towards[1] - centre[1]
    t = min((WIDTH / 2 + pad) / abs(dx) if dx else float("inf"), (HEIGHT / 2 + pad) / abs(dy) if dy else float("inf"))
    return centre[0] + t * dx, centre[1] + t * dy


def draw(path: Path = OUT) -> Path:
    figure, axes = plt.subplots(figsize=(16, 9), dpi=80)
    axes.set_xlim(0, 16)
    axes.set_ylim(0, 9)
    axes.axis("off")
    for name, (x, y, text, colour) in BOXES.items():
        width = WIDE.get(name, WIDTH)
        axes.add_patch(FancyBboxPatch((x - width / 2, y - HEIGHT / 2), width, HEIGHT, boxstyle="round,pad=0.08",
                                      facecolor=colour, edgecolor="#2d3748"))
        axes.text(x, y, text, ha="center", va="center", fontsize=10.5)
    for start, end in ARROWS:
        a, b = BOXES[start][:2], BOXES[end][:2]
        axes.add_patch(FancyArrowPatch(edge(a, b), edge(b, a), arrowstyle="-|>", mutation_scale=18,
                                       color="#2d3748", linewidth=1.5))
    axes.text(8, 8.55, "Parkinson's gait pipeline: one Airflow DAG per batch (= the run's logical date)",
              ha="center", fontsize=15, weight="bold")
    for i, (label, colour) in enumerate((("service", SERVICE), ("Airflow task", TASK), ("store", STORE))):
        axes.add_patch(FancyBboxPatch((0.4 + i * 2.2, 0.35), 0.4, 0.3, boxstyle="round,pad=0.03", facecolor=colour))
        axes.text(0.95 + i * 2.2, 0.5, label, va="center", fontsize=10)
    figure.subplots_adjust(0, 0, 1, 1)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
