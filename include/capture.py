"""Capture MQTT -> HDFS: drain the durable session, validate, land one file per recording per batch.

Messages are landed chunk by chunk as part files and each chunk is acknowledged only once its part is in
HDFS (the broker holds at most its in-flight window unacknowledged). At the end the batch's parts, merged
with whatever earlier attempts of the batch landed, become one file per recording (temporary path, then
rename), the dead letters and the `_SUCCESS` manifest. A retry after a crash loses and doubles nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from include.contract import Rejection, canonical_lines, validate
from include.filestore import TMP_PREFIX, FileStore, read_lines, require_record, write_atomically, write_record
from include.layout import BatchLayout
from include.records import CaptureManifest

log = logging.getLogger(__name__)

# Messages landed and acknowledged together; the broker's in-flight window (max_inflight_messages) must be >= this.
CHUNK_MESSAGES = 5_000
LANDING_THREADS = 4


@dataclass
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float


@dataclass
class Batch:
    """Readings (one JSON line per (recording, seq)) and dead letters of one batch."""

    readings: dict[str, dict[int, str]] = field(default_factory=dict)
    dead_letters: dict[str, dict] = field(default_factory=dict)  # key: sha256 of topic + payload
    duplicates: int = 0

    def add(self, message: Message) -> tuple[list[str], list[dict]]:
        """Validate one message; returns what it newly added (reading lines, dead-letter records)."""
        result = validate(message.topic, message.payload)
        if isinstance(result, Rejection):
            key = hashlib.sha256(message.topic.encode() + b"\0" + message.payload).hexdigest()
            if key in self.dead_letters:
                return [], []
            record = {"key": key, **result.dead_letter(message.topic, message.payload, message.received_at)}
            self.dead_letters[key] = record
            return [], [record]
        added = []
        rows = self.readings.setdefault(result[0].recording_id, {})  # a message holds one recording (its topic's)
        for reading, line in zip(result, canonical_lines(result), strict=True):
            if reading.seq in rows:
                self.duplicates += 1
            else:
                rows[reading.seq] = line
                added.append(line)
        return added, []

    def merge_lines(self, lines: list[str]) -> None:
        """Reading lines landed earlier (any recording); the first copy of a (recording, seq) wins."""
        for line in lines:
            reading = json.loads(line)
            self.readings.setdefault(reading["recording_id"], {}).setdefault(reading["seq"], line)

    def merge_dead_letters(self, lines: list[str]) -> None:
        for line in lines:
            record = json.loads(line)
            self.dead_letters.setdefault(record["key"], record)

    @property
    def reading_count(self) -> int:
        return sum(len(rows) for rows in self.readings.values())

    def manifest(self, batch_id: str, layout: BatchLayout, drain: Drain) -> CaptureManifest:
        return CaptureManifest(
            batch_id=batch_id,
            recordings={rid: len(rows) for rid, rows in sorted(self.readings.items())},
            seq_ranges={rid: (min(rows), max(rows)) for rid, rows in sorted(self.readings.items())},
            readings=self.reading_count,
            dead_letters=len(self.dead_letters),
            dead_letter_reasons=dict(Counter(r["reason"] for r in self.dead_letters.values())),
            duplicates_dropped=self.duplicates,
            raw_dir=layout.raw_dir,
            dead_letter_dir=layout.dead_letter_dir,
            landed_at=datetime.now(UTC).isoformat(),
            messages_received=drain.messages,
            chunks=drain.chunks,
            stopped_on=drain.stopped_on,
        )


class Collector:
    """on_message callback of the capture client: buffers deliveries, never acknowledges. Stops taking
    new ones after max_messages in total; those are redelivered to the next capture."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.pending: list[Message] = []
        self.accepted = 0
        self.last_seen = time.monotonic()

    def __call__(self, _client, _userdata, msg) -> None:
        self.last_seen = time.monotonic()
        if self.accepted < self.max_messages:
            self.accepted += 1
            self.pending.append(Message(msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    def take(self) -> list[Message]:
        taken, self.pending = self.pending, []
        return taken


def wait_for_chunk(
    client, collector: Collector, *, chunk_messages: int, quiet_seconds: float, idle_seconds: float, deadline: float
) -> str:
    """Run the network loop until a chunk is ready ("chunk") or the capture should end ("idle",
    "max messages", "max duration"). A short quiet spell also closes a chunk: the broker sends at most its
    in-flight window before it waits for acknowledgements."""
    collector.last_seen = max(collector.last_seen, time.monotonic())
    while True:
        _loop(client)
        now = time.monotonic()
        quiet = now - collector.last_seen
        if len(collector.pending) >= chunk_messages:
            return "chunk"
        if collector.accepted >= collector.max_messages:
            return "max messages"
        if now >= deadline:
            return "max duration"
        if collector.pending and quiet >= quiet_seconds:
            return "chunk"
        if not collector.pending and quiet >= idle_seconds:
            return "idle"


def _loop(client) -> None:
    """One pass of the network loop; a lost connection fails at once (unacknowledged messages are
    redelivered to the retry), instead of waiting for a timeout."""
    rc = client.loop(timeout=0.05)
    if rc != 0:
        raise ConnectionError(
            f"lost the MQTT connection during the capture ({rc!r}); another client with the "
            "same client id, or the broker restarting? The retry resumes the durable session"
        )


def acknowledge(client, messages: list[Message]) -> None:
    """Send PUBACKs for landed messages (in the order received) and make sure they left the socket."""
    for message in messages:
        if message.qos > 0:
            client.ack(message.mid, message.qos)
    deadline = time.monotonic() + 60 + len(messages) / 500
    while client.want_write() and time.monotonic() < deadline:
        _loop(client)
    if client.want_write():
        raise TimeoutError(
            f"could not send {len(messages)} acknowledgements to the MQTT broker in time; "
            "the retry gets them redelivered and lands them once"
        )


def _complete_lines(store: FileStore, path: str) -> list[str]:
    """Lines of a leftover temporary file, or none if it was cut off mid-write (then it was never acked)."""
    lines = read_lines(store, path)
    try:
        for line in lines:
            json.loads(line)
    except ValueError:
        return []
    return lines


def _files(store: FileStore, directory: str) -> list[str]:
    return store.list(directory) if store.status(directory, strict=False) else []


def load_existing(store: FileStore, layout: BatchLayout, batch: Batch) -> None:
    """Merge everything earlier attempts of this batch landed: final files, complete leftover temporary
    files, and chunk parts (already acknowledged, so they must never be lost)."""
    for name in _files(store, layout.raw_dir):
        if name.endswith(".jsonl"):
            path = f"{layout.raw_dir}/{name}"
            batch.merge_lines(_complete_lines(store, path) if name.startswith(TMP_PREFIX) else read_lines(store, path))
    for name in _files(store, layout.dead_letter_dir):
        if name.endswith(".jsonl"):
            batch.merge_dead_letters(_complete_lines(store, f"{layout.dead_letter_dir}/{name}"))
    for name in _files(store, layout.parts_dir):
        if name.startswith(TMP_PREFIX):
            continue  # cut off before its rename, so never acknowledged: the broker redelivers it
        lines = read_lines(store, f"{layout.parts_dir}/{name}")
        if name.endswith(".readings.jsonl"):
            batch.merge_lines(lines)
        elif name.endswith(".dead.jsonl"):
            batch.merge_dead_letters(lines)


def land_chunk(store: FileStore, layout: BatchLayout, batch: Batch, messages: list[Message], name: str) -> None:
    """Validate a chunk into the batch and land what it added as part files (before acknowledging it)."""
    readings: list[str] = []
    dead: list[dict] = []
    for message in messages:
        added, rejected = batch.add(message)
        readings.extend(added)
        dead.extend(rejected)
    if readings:
        write_atomically(store, f"{layout.parts_dir}/{name}.readings.jsonl", ("\n".join(readings) + "\n").encode())
    if dead:
        write_atomically(
            store, f"{layout.parts_dir}/{name}.dead.jsonl", "".join(json.dumps(r) + "\n" for r in dead).encode()
        )


@dataclass
class Drain:
    """Takes the session's messages chunk by chunk: each chunk lands as part files, then is acknowledged."""

    client: object
    collector: Collector
    store: FileStore
    layout: BatchLayout
    batch: Batch
    chunks: int = 0
    messages: int = 0
    stopped_on: str = ""

    def run(self, *, progress_every: float, **wait) -> None:
        began = next_report = time.monotonic()
        attempt = uuid.uuid4().hex[:8]
        while self.stopped_on in ("", "chunk"):
            self.stopped_on = wait_for_chunk(self.client, self.collector, **wait)
            messages = self.collector.take()
            if messages:
                land_chunk(self.store, self.layout, self.batch, messages, f"{attempt}-{self.chunks:06d}")
                acknowledge(self.client, messages)
                self.chunks += 1
                self.messages += len(messages)
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + progress_every
                log.info(
                    "capture: %d messages, %d readings so far (%.0f msg/s)",
                    self.messages,
                    self.batch.reading_count,
                    self.messages / (time.monotonic() - began),
                )
        seconds = time.monotonic() - began
        log.info(
            "capture: drained %d messages in %d chunks in %.1fs (%.0f msg/s), stopped on %s",
            self.messages,
            self.chunks,
            seconds,
            self.messages / max(seconds, 1e-9),
            self.stopped_on,
        )


def capture_batch(
    client,
    collector: Collector,
    store: FileStore,
    batch_id: str,
    *,
    idle_seconds: float,
    max_seconds: float,
    chunk_messages: int = CHUNK_MESSAGES,
    quiet_seconds: float = 0.5,
    progress_every: float = 5.0,
) -> CaptureManifest:
    """Drain the durable session chunk by chunk (land a part, then acknowledge it) until idle, max duration
    or max messages; then write one file per recording, the dead letters and `_SUCCESS`, and drop the parts."""
    began = time.monotonic()
    layout, batch = BatchLayout(batch_id), Batch()
    load_existing(store, layout, batch)
    before = (batch.reading_count, len(batch.dead_letters))
    store.makedirs(layout.parts_dir)
    drain = Drain(client, collector, store, layout, batch)
    drain.run(
        chunk_messages=chunk_messages,
        quiet_seconds=quiet_seconds,
        idle_seconds=idle_seconds,
        deadline=began + max_seconds,
        progress_every=progress_every,
    )
    land(store, layout, batch)
    manifest = batch.manifest(batch_id, layout, drain)
    manifest.new_readings, manifest.new_dead_letters = (
        batch.reading_count - before[0],
        len(batch.dead_letters) - before[1],
    )
    write_record(store, layout.capture_manifest, manifest)
    store.delete(layout.parts_dir, recursive=True)
    log.info(
        "capture: landed %d readings of %d recordings (%d new, %d duplicates dropped), %d dead letters in %s in %.1fs",
        manifest.readings,
        len(manifest.recordings),
        manifest.new_readings,
        batch.duplicates,
        manifest.dead_letters,
        manifest.raw_dir,
        time.monotonic() - began,
    )
    return manifest


def land(store: FileStore, layout: BatchLayout, batch: Batch) -> None:
    """Write one file per recording and the dead letters."""
    store.makedirs(layout.raw_dir)

    def write_recording(item: tuple[str, dict[int, str]]) -> None:
        recording_id, rows = item
        body = "\n".join(rows[seq] for seq in sorted(rows)) + "\n"
        write_atomically(store, layout.recording_file(recording_id), body.encode())

    # A few files in flight at once: each HDFS write is mostly waiting for the NameNode and DataNode.
    with ThreadPoolExecutor(max_workers=LANDING_THREADS) as pool:
        list(pool.map(write_recording, sorted(batch.readings.items())))
    if batch.dead_letters:
        store.makedirs(layout.dead_letter_dir)
        body = "".join(json.dumps(record) + "\n" for _, record in sorted(batch.dead_letters.items()))
        write_atomically(store, layout.dead_letter_file, body.encode())


def read_manifest(store: FileStore, batch_id: str) -> CaptureManifest:
    """The capture manifest of a batch; MissingInput when the batch has not been captured."""
    return require_record(
        store,
        BatchLayout(batch_id).capture_manifest,
        CaptureManifest,
        "the batch has not been captured; run the capture task for this date first",
    )
