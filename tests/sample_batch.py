"""The bundled sample's batch, run once per test session and shared: the main DAG on the 13 recordings plus one
malformed message of every kind (end-to-end checks, every task alone, the whole-DAG re-run fault case and the
small-batch tests all read it)."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from include import names

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "test-artifacts" / "e2e"
DAG_ID = "parkinson_gait_pipeline"
# A batch of its own per test session: leftovers of earlier local runs never mix in.
LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=int(time.time()) % 10_000_000)
CONF = {"capture_idle_seconds": 3, "bias_variance_rounds": 5, "cv_folds": 3}
NONCE = uuid.uuid4().hex[:8]
VALID = {"recording_id": "GaCo01_01", "seq": 5_000_000, "t": 0.0, "left": [1.0] * 8, "right": [1.0] * 8,
         "left_total": 8.0, "right_total": 8.0}
MALFORMED = [  # (topic, payload, expected reason); each unique, so none is taken for a redelivery
    ("gait/readings/GaCo01_01", f"not json {NONCE}".encode(), "not_json"),
    ("gait/readings/GaCo01_01", b"\xff\xfe" + NONCE.encode(), "bad_utf8"),
    ("gait/readings/GaCo01_01", b"[" + b" " * 300_000 + NONCE.encode() + b"]", "payload_too_large"),
    ("gait/readings/NotAnId", json.dumps({**VALID, "nonce": NONCE}).encode(), "bad_topic"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "left": [1.0] * 7, "t": 1.5}).encode(), "wrong_length"),
    ("gait/readings/GaCo01_01", json.dumps({k: v for k, v in VALID.items() if k != "seq"} | {"t": 2.5}).encode(),
     "missing_field"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "seq": "7", "t": 3.5}).encode(), "wrong_type"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "recording_id": "GaPt03_01", "t": 4.5}).encode(),
     "recording_mismatch"),
    ("gait/readings/GaCo01_01", json.dumps({**VALID, "t": 5.5}).replace("5.5", "NaN").encode(), "not_finite"),
    ("gait/readings/GaCo01_01", json.dumps([VALID, {**VALID, "seq": -1}]).encode(), "negative_seq"),
    ("gait/readings/GaCo01_01", b"[]", "empty_batch"),
]


def batch() -> str:
    from include.layout import batch_id

    return batch_id(LOGICAL_DATE, "")


def publish_malformed() -> None:
    from gait_airflow.hooks import MqttHook

    client = MqttHook(names.MQTT_CONN_ID).get_conn()
    client.loop_start()
    for topic, payload, _ in MALFORMED:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def run_sample_batch() -> dict:
    """The first run of the session's sample batch (asserts that it succeeded); its log text and seconds."""
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued
    from scripts.demo import run_dag

    discard_queued(AirflowServices())  # what earlier local runs left queued for the capture client (CI starts empty)
    publish_malformed()
    began = time.monotonic()
    log_path = LOGS / "pipeline-run1.log"
    ok, text = run_dag(DAG_ID, LOGICAL_DATE, CONF, log_path)
    assert ok, f"DAG run failed; log: {log_path}\n" + "\n".join(text.splitlines()[-30:])
    return {"seconds": time.monotonic() - began, "text": text}
