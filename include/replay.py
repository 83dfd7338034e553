"""Replay a landed batch HDFS -> Kafka, keyed by recording id, and record the produced offset range."""

from __future__ import annotations

import logging
import time

from include import names
from include.capture import read_manifest
from include.filestore import FileStore, read_bytes, write_record
from include.layout import BatchLayout
from include.records import KafkaOffsets

log = logging.getLogger(__name__)

# Idempotent, batched producer: per-key order is kept, a retry inside the client never duplicates.
PRODUCER_SETTINGS = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 50,
    "batch.size": 4_000_000,
    "batch.num.messages": 100_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
}


class DeliveryTracker:
    """Delivery callback that counts and keeps the first/last offset per partition (no per-message log).
    Kept to a few operations: it runs once per message. Offsets of one partition are reported in order."""

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.delivered = 0
        self.errors: list[str] = []

    def __call__(self, error, message) -> None:
        if error is None:
            partition, offset = message.partition(), message.offset()
            if partition not in self.first:
                self.first[partition] = offset
            self.last[partition] = offset
            self.delivered += 1
        elif len(self.errors) < 10:
            self.errors.append(str(error))

    def offsets(self, batch_id: str, topic: str, recordings: list[str]) -> KafkaOffsets:
        """The delivered range as the offsets manifest: half-open [start, end) per partition, exactly what
        Spark's startingOffsets/endingOffsets take."""
        return KafkaOffsets(
            batch_id=batch_id,
            topic=topic,
            partitions={p: (self.first[p], self.last[p] + 1) for p in sorted(self.first)},
            messages=self.delivered,
            recordings=recordings,
            produced_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )


def produce_waiting(producer, topic: str, value: bytes, key: bytes, on_delivery) -> None:
    """produce(); while the producer's local queue is full, let deliveries drain first."""
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.05)


def replay(
    store: FileStore, producer, batch_id: str, topic: str = names.KAFKA_TOPIC, progress_every: float = 5.0
) -> KafkaOffsets:
    """Produce every landed reading of the batch; returns (and writes to HDFS) the offsets manifest."""
    manifest = read_manifest(store, batch_id)
    tracker = DeliveryTracker()
    began = next_report = time.monotonic()
    produced = 0
    for recording_id in manifest.recordings:
        key = recording_id.encode()
        lines = read_bytes(store, BatchLayout(batch_id).recording_file(recording_id)).split(b"\n")
        for line in lines:
            if not line:
                continue
            produce_waiting(producer, topic, line, key, tracker)
            produced += 1
            if produced % 10_000 == 0:
                producer.poll(0)
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + progress_every
                    log.info(
                        "replay: %d/%d produced (%.0f msg/s)",
                        produced,
                        manifest.readings,
                        produced / (time.monotonic() - began),
                    )
    remaining = producer.flush(120)
    if remaining or tracker.errors or tracker.delivered != produced:
        raise RuntimeError(
            f"replay of batch {batch_id} to Kafka topic {topic!r} incomplete: "
            f"{tracker.delivered}/{produced} delivered, {remaining} still queued, "
            f"errors: {tracker.errors}; check Kafka with `make status`"
        )
    elapsed = time.monotonic() - began
    offsets = tracker.offsets(batch_id, topic, sorted(manifest.recordings))
    path = write_record(store, BatchLayout(batch_id).kafka_offsets, offsets)
    log.info(
        "replay: %d messages of %d recordings to %s in %.1fs (%.0f msg/s); offsets %s -> %s",
        produced,
        len(manifest.recordings),
        topic,
        elapsed,
        produced / max(elapsed, 1e-9),
        offsets.partitions,
        path,
    )
    return offsets
