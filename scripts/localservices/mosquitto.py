"""Mosquitto from Debian, with a project config: persistence on, loopback only."""
from __future__ import annotations

import os
import shutil

from .core import HOST, RUN, Service, ServiceError, render

PORT = 1883


class Mosquitto(Service):
    def binary(self) -> str | None:
        return shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)

    def installed(self) -> bool:
        return self.binary() is not None

    def install(self) -> None:
        if not self.installed():
            raise ServiceError("mosquitto is missing: the system step (`make system-deps`) installs it "
                               "with apt-get as root; or install Debian's `mosquitto` package yourself")

    def prepare(self) -> None:
        user = "user root" if os.geteuid() == 0 else ""
        render("mosquitto.conf", RUN / "mosquitto.conf", port=self.port, data=self.data, user_line=user)

    def command(self) -> list[str]:
        return [self.binary() or "mosquitto", "-c", str(RUN / "mosquitto.conf")]

    def ready(self) -> bool:
        from include.mqtt_client import connect

        client = connect(HOST, self.port, client_id="localservices-probe", timeout=3)
        info = client.publish("localservices/probe", b"ping", qos=1)
        client.loop_start()
        try:
            info.wait_for_publish(timeout=3)
            return info.is_published()
        finally:
            client.loop_stop()
            client.disconnect()

    def bootstrap(self) -> None:
        """Create the capture client's durable session so readings published before any DAG run are kept."""
        from include.mqtt_client import connect, ensure_durable_session

        ensure_durable_session(lambda **kw: connect(HOST, self.port, **kw))


SERVICE = Mosquitto("mosquitto", PORT, ready_timeout=20)
