"""Replay a landed batch HDFS -> Kafka (one Avro reading per message, include/kafka_record.py), keyed by recording
id, and record the produced offset range."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from include import names
from include.capture import read_manifest
from include.filestore import FileStore, read_bytes, write_record
from include.kafka_record import encode_landed
from include.layout import BatchLayout
from include.records import KafkaOffsets

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")

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


def produced_range(
    before: dict[int, int], end_offsets: Callable[[], dict[int, int]], produced: int, wait: float = 10.0
) -> dict[int, tuple[int, int]]:
    """The half-open offset range per partition the replay's messages took: from the end offsets before it to the
    end offsets once they account for every message produced (a broker's high watermark may trail an
    acknowledgement briefly). A range holding more messages means another producer wrote to the topic meanwhile."""
    deadline = time.monotonic() + wait
    while True:
        after = end_offsets()
        ranges = {p: (before.get(p, 0), end) for p, end in sorted(after.items()) if end > before.get(p, 0)}
        moved = sum(end - start for start, end in ranges.values())
        if moved >= produced or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if moved != produced:
        raise RuntimeError(
            f"{produced} messages produced but the topic's end offsets moved by {moved} ({ranges}): "
            + ("another producer wrote to the topic meanwhile" if moved > produced else "messages were lost")
            + "; the retry replays the batch again (check Kafka with `make status`)"
        )
    return ranges


def produce_waiting(producer, topic: str, value: bytes, key: bytes) -> None:
    """produce(); while the producer's local queue is full, let deliveries drain first."""
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)


def one_ahead(items: Iterable[Item], work: Callable[[Item], Result]) -> Iterator[Result]:
    """work(item) for each item in order, the next one computed in a thread while the caller uses this one (the
    landed file's read and parse release the GIL while the producer runs)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[Result] | None = None
        for item in items:
            submitted = pool.submit(work, item)
            if pending is not None:
                yield pending.result()
            pending = submitted
        if pending is not None:
            yield pending.result()


def replay(
    store: FileStore,
    producer,
    end_offsets: Callable[[str], dict[int, int]],
    batch_id: str,
    topic: str = names.KAFKA_TOPIC,
    progress_every: float = 5.0,
) -> KafkaOffsets:
    """Produce every landed reading of the batch, one message each; returns (and writes to HDFS) the offsets
    manifest. No delivery callback per message: the range is read from the topic's end offsets (see
    produced_range), and a message that failed leaves it short."""
    manifest = read_manifest(store, batch_id)
    before = end_offsets(topic)
    began = next_report = time.monotonic()
    produced = 0

    def encoded(recording_id: str) -> tuple[bytes, list[bytes]]:
        landed = read_bytes(store, BatchLayout(batch_id).recording_file(recording_id))
        return recording_id.encode(), encode_landed(recording_id, landed)

    produce = producer.produce
    for key, values in one_ahead(manifest.recordings, encoded):
        for value in values:
            try:
                produce(topic, value, key)
            except BufferError:
                produce_waiting(producer, topic, value, key)
        produced += len(values)
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
    if remaining:
        raise RuntimeError(
            f"replay of batch {batch_id} to Kafka topic {topic!r} incomplete: {remaining} of {produced} messages "
            "still queued after 120 s; check Kafka with `make status`"
        )
    offsets = KafkaOffsets(
        batch_id=batch_id,
        topic=topic,
        partitions=produced_range(before, lambda: end_offsets(topic), produced),
        messages=produced,
        recordings=sorted(manifest.recordings),
        produced_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    elapsed = time.monotonic() - began
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
