"""Redis 7 from Debian (cluster profile): the Celery broker of Airflow's CeleryExecutor.

Loopback only, a password (`requirepass`) from the credentials file, no persistence: a queued Celery message
lives as long as the broker, and Airflow's scheduler re-queues what it lost (`task_queued_timeout`).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import credentials as local_credentials
from .core import Service, ServiceError

PORT = 6379


@dataclass(eq=False)
class Redis(Service):
    credentials: Path = local_credentials.FILE

    @property
    def conf(self) -> Path:
        return self.run_dir / f"{self.name}.conf"

    def binary(self) -> str | None:
        return shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server")
                                                else None)

    def installed(self) -> bool:
        return self.binary() is not None

    def install(self) -> None:
        if not self.installed():
            raise ServiceError("redis-server is missing: the system step (`make install` as root) installs "
                               "Debian's redis-server")

    def password(self) -> str:
        return local_credentials.load(self.credentials)["REDIS_PASSWORD"]

    def prepare(self) -> None:
        """The config holds the password, so it is written 0600."""
        settings = {"bind": self.host, "port": self.port, "protected-mode": "yes", "daemonize": "no",
                    "dir": self.data, "save": '""', "appendonly": "no", "maxmemory": "256mb",
                    "requirepass": self.password()}
        self.conf.unlink(missing_ok=True)
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{key} {value}\n" for key, value in settings.items()))

    def command(self) -> list[str]:
        return [self.binary() or "redis-server", str(self.conf)]

    def client(self, password: str | None = None):
        import redis

        return redis.Redis(host=self.host, port=self.port, password=password, socket_timeout=3)

    def ready(self) -> bool:
        with self.client(self.password()) as client:
            return bool(client.ping())


SERVICE = Redis("redis", PORT, ready_timeout=30)
