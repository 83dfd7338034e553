"""What a stage talks to. Airflow builds these clients from its connections (gait_airflow.clients); nothing
here knows how."""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from include.filestore import FileStore


class ServiceUnavailable(RuntimeError):
    """A service behind a connection is down; the message says which and what to check."""


class Services(Protocol):
    def hdfs(self) -> FileStore: ...

    def mqtt(self, **options: Any) -> Any:
        """A connected paho-mqtt client (options: client_id, clean_session, manual_ack, on_message)."""

    def kafka_producer(self) -> Any: ...

    def kafka_end_offsets(self, topic: str) -> dict[int, int]:
        """Each partition's high watermark (the offset the next message will get), asked of the brokers now."""

    def cassandra(self) -> AbstractContextManager[Any]:
        """A Cassandra session, shut down on exit."""

    def mongo(self) -> AbstractContextManager[Any]:
        """The pipeline's MongoDB database (pymongo), its client closed on exit."""


@contextmanager
def reporting_unavailable(service: str, conn_id: str, local_name: str, *errors: type[Exception]):
    """Turn a client's connection error into one readable line: which service, which connection, what to run."""
    try:
        yield
    except errors as exc:
        raise ServiceUnavailable(
            f"{service} behind connection {conn_id!r} is unreachable or refused the request "
            f"({exc}); check it with `make status` / `scripts/services.py logs "
            f"{local_name}`"
        ) from exc
