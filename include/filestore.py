"""The file store the stages write to (HDFS through WebHDFSHook's client): atomic writes and typed records."""

from __future__ import annotations

from typing import Protocol, TypeVar

from include.errors import MissingInput
from include.records import Record, decode, encode

TMP_PREFIX = "_tmp."
R = TypeVar("R", bound=Record)


class FileStore(Protocol):
    """The part of the `hdfs` package's Client used here (WebHDFSHook.get_conn() returns one)."""

    def write(self, hdfs_path: str, data: bytes, overwrite: bool = ...) -> None: ...
    def read(self, hdfs_path: str): ...
    def rename(self, hdfs_src_path: str, hdfs_dst_path: str) -> None: ...
    def delete(self, hdfs_path: str, recursive: bool = ...) -> bool: ...
    def list(self, hdfs_path: str) -> list[str]: ...
    def status(self, hdfs_path: str, strict: bool = ...) -> dict | None: ...
    def makedirs(self, hdfs_path: str) -> None: ...


def exists(store: FileStore, path: str) -> bool:
    return bool(store.status(path, strict=False))


def read_bytes(store: FileStore, path: str) -> bytes:
    with store.read(path) as reader:
        return reader.read()


def read_lines(store: FileStore, path: str) -> list[str]:
    return [line for line in read_bytes(store, path).decode("utf-8").splitlines() if line]


def write_atomically(store: FileStore, path: str, data: bytes) -> None:
    """Write to a temporary name in the same directory (WebHDFS creates missing parents), then replace the final
    file by renaming."""
    directory, name = path.rsplit("/", 1)
    tmp = f"{directory}/{TMP_PREFIX}{name}"
    store.write(tmp, data=data, overwrite=True)
    store.delete(path)
    store.rename(tmp, path)


def write_record(store: FileStore, path: str, record: Record) -> str:
    write_atomically(store, path, encode(record))
    return path


def read_record(store: FileStore, path: str, kind: type[R]) -> R | None:
    """The record at path, or None when there is none."""
    if not exists(store, path):
        return None
    return decode(read_bytes(store, path), kind, f"hdfs://{path}")


def require_record(store: FileStore, path: str, kind: type[R], missing: str) -> R:
    """The record at path; its absence is a MissingInput error saying `missing` (what to run first)."""
    record = read_record(store, path, kind)
    if record is None:
        raise MissingInput(f"no {kind.__name__} at hdfs://{path}: {missing}")
    return record
