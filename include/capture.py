"""Capture MQTT -> HDFS: drain the durable session, validate, land one file per recording per batch.

Landing merges with what the batch already holds (so a retry after a crash loses and doubles nothing),
writes each file to a temporary path and renames it, then writes the `_SUCCESS` manifest. Only after
that are the MQTT messages acknowledged.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from include import names
from include.contract import Rejection, validate

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
TMP_PREFIX = "_tmp."


class FileStore(Protocol):
    """The part of the `hdfs` package's Client used here (WebHDFSHook.get_conn() returns one)."""

    def write(self, hdfs_path: str, data: bytes, overwrite: bool = ...) -> None: ...
    def read(self, hdfs_path: str): ...
    def rename(self, hdfs_src_path: str, hdfs_dst_path: str) -> None: ...
    def delete(self, hdfs_path: str, recursive: bool = ...) -> bool: ...
    def list(self, hdfs_path: str) -> list[str]: ...
    def status(self, hdfs_path: str, strict: bool = ...) -> dict | None: ...
    def makedirs(self, hdfs_path: str) -> None: ...


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

    def add(self, message: Message) -> None:
        result = validate(message.topic, message.payload)
        if isinstance(result, Rejection):
            key = hashlib.sha256(message.topic.encode() + b"\0" + message.payload).hexdigest()
            self.dead_letters.setdefault(key, result.dead_letter(message.topic, message.payload,
                                                                 message.received_at))
            return
        for reading in result:
            rows = self.readings.setdefault(reading.recording_id, {})
            if reading.seq in rows:
                self.duplicates += 1
            else:
                rows[reading.seq] = reading.to_json()

    def merge_lines(self, recording_id: str, lines: list[str]) -> None:
        rows = self.readings.setdefault(recording_id, {})
        for line in lines:
            rows.setdefault(json.loads(line)["seq"], line)

    @property
    def reading_count(self) -> int:
        return sum(len(rows) for rows in self.readings.values())


class Collector:
    """on_message callback of the capture client: keeps up to max_messages, never acknowledges."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.messages: list[Message] = []
        self.last_seen = time.monotonic()

    def __call__(self, _client, _userdata, msg) -> None:
        self.last_seen = time.monotonic()
        if len(self.messages) < self.max_messages:
            self.messages.append(Message(msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    @property
    def full(self) -> bool:
        return len(self.messages) >= self.max_messages


def drain(client, collector: Collector, *, idle_seconds: float, max_seconds: float,
          progress_every: float = 5.0) -> list[Message]:
    """Receive from the durable session (client created with on_message=collector) until idle, max duration
    or max messages. Nothing is acknowledged here; messages beyond max_messages stay for the next capture."""
    began = next_report = time.monotonic()
    collector.last_seen = max(collector.last_seen, began)
    stop = "max duration"
    while time.monotonic() - began < max_seconds:
        client.loop(timeout=0.05)
        now = time.monotonic()
        if collector.full:
            stop = "max messages"
            break
        if now - collector.last_seen >= idle_seconds:
            stop = "idle"
            break
        if now >= next_report:
            next_report = now + progress_every
            log.info("capture: %d messages so far (%.0f msg/s)", len(collector.messages),
                     len(collector.messages) / max(now - began, 1e-9))
    elapsed = time.monotonic() - began
    messages = collector.messages
    log.info("capture: drained %d messages in %.1fs (%.0f msg/s), stopped on %s",
             len(messages), elapsed, len(messages) / max(elapsed, 1e-9), stop)
    return messages


def acknowledge(client, messages: list[Message], timeout: float = 30.0) -> None:
    """Send PUBACKs for landed messages and make sure they left the socket."""
    for message in messages:
        if message.qos > 0:
            client.ack(message.mid, message.qos)
    deadline = time.monotonic() + timeout
    while client.want_write() and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    if client.want_write():
        raise TimeoutError("could not send all acknowledgements to the MQTT broker")


def read_lines(store: FileStore, path: str) -> list[str]:
    with store.read(path) as reader:
        return [line for line in reader.read().decode("utf-8").splitlines() if line]


def _complete_lines(store: FileStore, path: str) -> list[str]:
    """Lines of a leftover temporary file, or none if it was cut off mid-write (then it was never acked)."""
    lines = read_lines(store, path)
    try:
        for line in lines:
            json.loads(line)
    except ValueError:
        return []
    return lines


def write_atomically(store: FileStore, directory: str, name: str, data: bytes) -> None:
    """Write to a temporary name, then replace the final file by renaming."""
    tmp, final = f"{directory}/{TMP_PREFIX}{name}", f"{directory}/{name}"
    store.write(tmp, data=data, overwrite=True)
    store.delete(final)
    store.rename(tmp, final)


def load_existing(store: FileStore, batch_id: str, batch: Batch) -> None:
    """Merge what earlier attempts of this batch already landed (final files and complete leftovers)."""
    raw_dir = names.raw_batch_dir(batch_id)
    if store.status(raw_dir, strict=False):
        for name in store.list(raw_dir):
            if not name.endswith(".jsonl"):
                continue
            path = f"{raw_dir}/{name}"
            lines = _complete_lines(store, path) if name.startswith(TMP_PREFIX) else read_lines(store, path)
            batch.merge_lines(name.removeprefix(TMP_PREFIX).removesuffix(".jsonl"), lines)
    dead_dir = dead_letter_dir(batch_id)
    if store.status(dead_dir, strict=False):
        for name in store.list(dead_dir):
            if name.endswith(".jsonl"):
                for line in _complete_lines(store, f"{dead_dir}/{name}"):
                    record = json.loads(line)
                    batch.dead_letters.setdefault(record["key"], record)


def dead_letter_dir(batch_id: str) -> str:
    return f"{names.HDFS_DEAD_LETTER_DIR}/batch={batch_id}"


def land(store: FileStore, batch_id: str, messages: list[Message]) -> dict:
    """Land a drained batch in HDFS; returns the manifest written to `_SUCCESS`."""
    began = time.monotonic()
    batch = Batch()
    load_existing(store, batch_id, batch)
    before = (batch.reading_count, len(batch.dead_letters))
    for message in messages:
        batch.add(message)
    raw_dir, dead_dir = names.raw_batch_dir(batch_id), dead_letter_dir(batch_id)
    store.makedirs(raw_dir)
    for recording_id, rows in sorted(batch.readings.items()):
        body = "\n".join(rows[seq] for seq in sorted(rows)) + "\n"
        write_atomically(store, raw_dir, f"{recording_id}.jsonl", body.encode())
    if batch.dead_letters:
        store.makedirs(dead_dir)
        body = "".join(json.dumps({"key": key, **record}) + "\n"
                       for key, record in sorted(batch.dead_letters.items()))
        write_atomically(store, dead_dir, "dead_letters.jsonl", body.encode())
    manifest = {
        "batch_id": batch_id,
        "recordings": {rid: len(rows) for rid, rows in sorted(batch.readings.items())},
        "readings": batch.reading_count,
        "dead_letters": len(batch.dead_letters),
        "dead_letter_reasons": dict(Counter(r["reason"] for r in batch.dead_letters.values())),
        "messages_received": len(messages),
        "new_readings": batch.reading_count - before[0],
        "new_dead_letters": len(batch.dead_letters) - before[1],
        "duplicates_dropped": batch.duplicates,
        "raw_dir": raw_dir,
        "dead_letter_dir": dead_dir,
        "landed_at": datetime.now(timezone.utc).isoformat(),
    }
    write_atomically(store, raw_dir, SUCCESS, json.dumps(manifest, indent=1).encode())
    elapsed = time.monotonic() - began
    log.info("capture: landed %d readings of %d recordings (%d new, %d duplicates dropped), %d dead letters "
             "in %s in %.1fs", manifest["readings"], len(manifest["recordings"]), manifest["new_readings"],
             batch.duplicates, manifest["dead_letters"], raw_dir, elapsed)
    return manifest


def read_manifest(store: FileStore, batch_id: str) -> dict:
    path = f"{names.raw_batch_dir(batch_id)}/{SUCCESS}"
    if not store.status(path, strict=False):
        raise FileNotFoundError(f"batch {batch_id!r} has not been captured: no {path} in HDFS; "
                                f"run the capture task for this date first")
    with store.read(path) as reader:
        return json.loads(reader.read())
