"""Sensor simulator: publish gaitpdb recordings to MQTT as the insoles would (QoS 1, one topic each)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from include import names
from include.contract import encode, reading_from_row
from include.gaitpdb import iter_recordings

log = logging.getLogger(__name__)


def publish_recordings(
    client,
    folder: Path,
    *,
    recordings: list[str] | None = None,
    rate: float = 0.0,
    batch_size: int = 1,
    max_rows: int = 0,
    progress_every: float = 5.0,
) -> dict:
    """Publish every row of the chosen recordings; `rate` readings/s (0 = as fast as the broker takes),
    `batch_size` readings per message (1 = one JSON object), `max_rows` per recording (0 = all).
    The client must be connected; returns counts once the broker acknowledged every message."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    # Every file is read (and checked) before the first publish: a corrupt one stops the run with nothing sent.
    chosen = list(iter_recordings(Path(folder), recordings))
    client.loop_start()
    began = next_report = time.monotonic()
    published = messages = 0
    per_recording: dict[str, int] = {}
    last = None
    try:
        for recording_id, rows in chosen:
            if max_rows:
                rows = rows[:max_rows]
            topic = names.mqtt_topic(recording_id)
            for start in range(0, len(rows), batch_size):
                chunk = [
                    reading_from_row(recording_id, seq, rows[seq])
                    for seq in range(start, min(start + batch_size, len(rows)))
                ]
                last = _publish(client, topic, encode(chunk))
                published += len(chunk)
                messages += 1
                if rate > 0:
                    delay = began + published / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + progress_every
                    log.info(
                        "simulator: %d readings in %d messages (%.0f readings/s)",
                        published,
                        messages,
                        published / (time.monotonic() - began),
                    )
            per_recording[recording_id] = len(rows)
        if last is not None:
            last.wait_for_publish(timeout=300)
        _wait_all_acked(client)
    finally:
        client.loop_stop()
    elapsed = time.monotonic() - began
    log.info(
        "simulator: published %d readings of %d recordings in %d messages in %.1fs (%.0f readings/s)",
        published,
        len(per_recording),
        messages,
        elapsed,
        published / max(elapsed, 1e-9),
    )
    return {"readings": published, "messages": messages, "recordings": per_recording, "seconds": round(elapsed, 2)}


def _publish(client, topic: str, payload: bytes):
    """Publish with QoS 1; when paho refuses because the message id it drew still belongs to an
    unacknowledged message (ids are 16-bit: over 65,535 in flight), wait a moment and publish again
    (paho would otherwise drop the message, reporting it only on that message's info)."""
    while True:
        info = client.publish(topic, payload, qos=names.MQTT_QOS)
        if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
            return info
        time.sleep(0.002)


def _wait_all_acked(client, timeout: float = 300.0) -> None:
    """paho keeps unacknowledged QoS>0 messages in _out_messages; wait until the broker acked them all."""
    deadline = time.monotonic() + timeout
    while client._out_messages and time.monotonic() < deadline:  # noqa: SLF001 - no public API for this
        time.sleep(0.05)
    if client._out_messages:  # noqa: SLF001
        raise TimeoutError(f"{len(client._out_messages)} MQTT messages were not acknowledged by the broker")
