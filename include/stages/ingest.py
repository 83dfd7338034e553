"""Ingest stages of a batch: simulate sensors (optional), capture MQTT -> HDFS, replay HDFS -> Kafka."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from include import names
from include.capture import Collector, acknowledge, capture_batch, wait_for_chunk
from include.filestore import write_record
from include.gaitpdb import SAMPLE_DIR
from include.layout import BatchLayout
from include.mqtt_client import ensure_durable_session, subscribe
from include.records import SimulatedManifest
from include.replay import replay as replay_batch
from include.stages.services import Services

log = logging.getLogger(__name__)


def simulate(services: Services, batch: str, params: dict) -> dict:
    """Publish recordings to MQTT when the run asks for it (Param simulate_sensors); its manifest goes to HDFS
    for the reconciliation."""
    from include.simulator import publish_recordings

    if not params["simulate_sensors"]:
        log.info("simulator: off (Param simulate_sensors=false); capturing what devices published")
        manifest = SimulatedManifest(simulated=False)
    else:
        folder = Path(params["source_path"]) if params["source_path"] else SAMPLE_DIR
        client = services.mqtt(client_id="")
        try:
            published = publish_recordings(
                client,
                folder,
                recordings=params["recordings"] or None,
                rate=params["publish_rate"],
                batch_size=params["readings_per_message"],
                max_rows=params["max_rows_per_recording"],
            )
        finally:
            client.disconnect()
        manifest = SimulatedManifest(simulated=True, **published)
    write_record(services.hdfs(), BatchLayout(batch).simulated, manifest)
    return {"simulated": manifest.simulated, "readings": manifest.readings, "messages": manifest.messages}


def ensure_session(services: Services) -> None:
    """Re-assert the capture client's durable MQTT session (also created by `scripts/services.py up`)."""
    ensure_durable_session(services.mqtt)


def _capture_client(services: Services, collector: Collector):
    client = services.mqtt(
        client_id=names.MQTT_CAPTURE_CLIENT_ID, clean_session=False, manual_ack=True, on_message=collector
    )
    try:
        subscribe(client, names.MQTT_TOPIC_FILTER, names.MQTT_QOS)
    except BaseException:
        client.disconnect()
        raise
    return client


def capture(services: Services, batch: str, params: dict) -> dict:
    """Drain the durable session into HDFS chunk by chunk, acknowledging each chunk once it is landed."""
    store = services.hdfs()
    collector = Collector(params["capture_max_messages"])
    client = _capture_client(services, collector)
    try:
        manifest = capture_batch(
            client,
            collector,
            store,
            batch,
            idle_seconds=params["capture_idle_seconds"],
            max_seconds=params["capture_max_seconds"],
        )
    finally:
        client.disconnect()
    return {
        "readings": manifest.readings,
        "dead_letters": manifest.dead_letters,
        "messages_received": manifest.messages_received,
        "new_readings": manifest.new_readings,
        "duplicates_dropped": manifest.duplicates_dropped,
        "chunks": manifest.chunks,
    }


def discard_queued(services: Services, idle_seconds: float = 2.0) -> int:
    """Acknowledge and drop whatever the capture client's durable session holds (tests and benchmarks start
    from an empty queue); returns how many messages were dropped."""
    collector = Collector(20_000_000)
    client = _capture_client(services, collector)
    try:
        deadline = time.monotonic() + 600
        while (
            wait_for_chunk(
                client, collector, chunk_messages=5_000, quiet_seconds=0.5, idle_seconds=idle_seconds, deadline=deadline
            )
            == "chunk"
        ):
            acknowledge(client, collector.take())
        acknowledge(client, collector.take())
    finally:
        client.disconnect()
    return collector.accepted


def replay(services: Services, batch: str) -> dict:
    offsets = replay_batch(services.hdfs(), services.kafka_producer(), services.kafka_end_offsets, batch)
    return {"messages": offsets.messages, "partitions": {str(p): list(r) for p, r in offsets.partitions.items()}}
