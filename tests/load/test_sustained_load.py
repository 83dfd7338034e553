"""Sustained load on the real services: devices publish for a long time while no DAG runs, then one DAG run.

The broker must keep every reading for the capture's durable session (Mosquitto: max_queued_messages 0, no
byte limit; memory is the limit, see the README), and the capture must stay within its bound: it takes at most
Param capture_max_messages per run and leaves the rest queued for the next run. Nothing may be lost: what the
run landed plus what is still queued equals what was published.

Duration and bound come from the environment; `make load` runs the full 10 minutes:
  GAIT_LOAD_SECONDS (default 20)   GAIT_LOAD_CAPTURE_BOUND (default 50,000 messages)
Figures go to test-artifacts/load/report.json and pytest's summary.
"""
from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.pipeline import PeakRss, tree_rss
from include import gaitpdb, names
from tests import reports
from tests.faults.harness import DagRun

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "load"
SECONDS = float(os.environ.get("GAIT_LOAD_SECONDS", "20"))
BOUND = int(os.environ.get("GAIT_LOAD_CAPTURE_BOUND", "50000"))
LOGICAL_DATE = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=int(time.time()) % 100_000)
REPORT: dict = {}


def publish_for(seconds: float) -> dict:
    """One reading per message (QoS 1), the bundled sample's recordings over and over, each pass under new
    seqs (so every reading is distinct), as fast as the broker acknowledges, until `seconds` have passed."""
    from gait_airflow.clients import mqtt_client
    from include.contract import encode, reading_from_row
    from include.simulator import _publish, _wait_all_acked

    recordings = list(gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR))
    rows = len(recordings[0][1])
    client = mqtt_client(client_id="")
    client.loop_start()
    began = time.monotonic()
    published = passes = 0
    try:
        while time.monotonic() - began < seconds:
            for start in range(0, rows, 50):
                for recording_id, values in recordings:
                    topic = names.mqtt_topic(recording_id)
                    for row in range(start, min(start + 50, rows)):
                        _publish(client, topic, encode([reading_from_row(recording_id, passes * rows + row,
                                                                         values[row])]))
                        published += 1
            passes += 1
        _wait_all_acked(client, timeout=600)
    finally:
        client.loop_stop()
        client.disconnect()
    elapsed = time.monotonic() - began
    return {"published": published, "passes": passes, "seconds": round(elapsed, 1),
            "readings_per_s": round(published / elapsed)}


@pytest.mark.timeout(SECONDS + 2 * 3600)  # `make load`: 10 minutes of publishing, then a run of a million readings
def test_sustained_publish_then_one_dag_run_loses_nothing_and_bounds_the_capture():
    from gait_airflow.clients import AirflowServices, hdfs_client
    from include.capture import read_manifest
    from include.layout import batch_id
    from include.stages.ingest import discard_queued
    from scripts.localservices import mosquitto

    discard_queued(AirflowServices())
    broker = PeakRss([mosquitto.SERVICE.pid()]).__enter__()
    publish = publish_for(SECONDS)
    REPORT.update(publish=publish, capture_bound_messages=BOUND)
    run = DagRun("parkinson_gait_pipeline", LOGICAL_DATE,
                 {"simulate_sensors": False, "capture_max_messages": BOUND, "capture_idle_seconds": 5,
                  "bias_variance_rounds": 3, "cv_folds": 3}, LOGS / "dag-run.log")
    # The capture runs inside the `dags test` process: its peak up to the capture's end, and what the process
    # already held when the capture started (Airflow itself).
    run.wait_for_line(r"\[DAG TEST\] starting task_id=capture_mqtt_to_hdfs", timeout=600)
    before_capture = tree_rss(run.proc.pid)
    with PeakRss([run.proc.pid]) as dag_rss:
        run.wait_for_line(r"\[DAG TEST\] end task task_id=capture_mqtt_to_hdfs", timeout=1800)
    capture_rss = dag_rss.figures()["stage_peak_rss_mib"]
    log = run.finish(timeout=3600)
    REPORT.update(capture_process_peak_rss_mib=capture_rss, dag_run_seconds=round(run.seconds, 1), dag_run_ok=log.ok)
    remaining = discard_queued(AirflowServices(), idle_seconds=5)
    broker.__exit__()
    broker_rss = broker.figures()["stage_peak_rss_mib"]
    manifest = read_manifest(hdfs_client(), batch_id(LOGICAL_DATE, ""))
    REPORT.update(landed=manifest.readings, still_queued_after_run=remaining,
                  capture_messages=manifest.messages_received, dead_letters=manifest.dead_letters,
                  capture_process_rss_before_mib=round(before_capture / 2**20), broker_peak_rss_mib=broker_rss)
    drained = [line for line in log.text.splitlines() if "capture: drained" in line]
    REPORT["capture_drain"] = drained[-1].split("capture: ", 1)[1].split(" [")[0] if drained else None
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "report.json").write_text(json.dumps(REPORT, indent=1))
    reports.show("sustained load (also in test-artifacts/load/report.json)",
                 [f"{key}: {value}" for key, value in REPORT.items()])
    assert log.ok, log.tail()
    assert manifest.dead_letters == 0
    assert publish["published"] > BOUND, "the load must exceed the capture's bound, or the bound went untested"
    assert manifest.readings == BOUND and remaining > 0  # one reading per message; the rest stays queued
    assert manifest.readings + remaining == publish["published"]  # nothing lost: landed or still queued
