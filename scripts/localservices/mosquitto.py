"""Mosquitto from Debian, with a project config: persistence on, loopback only; with `credentials` (the
GAIT_LOCAL_AUTH=on file) a password file and no anonymous clients."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import credentials as local_credentials
from .core import HOST, Service, ServiceError, render, run

PORT = 1883


@dataclass(eq=False)
class Mosquitto(Service):
    credentials: Path | None = None  # None: anonymous clients allowed

    @property
    def conf(self) -> Path:
        return self.run_dir / f"{self.name}.conf"

    @property
    def password_file(self) -> Path:
        return self.run_dir / f"{self.name}.passwd"

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
        auth = "allow_anonymous true"
        if self.credentials:
            self._write_password_file()
            auth = f"allow_anonymous false\npassword_file {self.password_file}"
        render("mosquitto.conf", self.conf, port=self.port, data=self.data, user_line=user, auth=auth)

    def _write_password_file(self) -> None:
        """user:password in a 0600 file, hashed in place by mosquitto_passwd -U (no password on a command line)."""
        login = self.login()
        self.password_file.unlink(missing_ok=True)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{login['username']}:{login['password']}\n")
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        run([tool, "-U", str(self.password_file)], log=self.log, what="mosquitto_passwd")

    def login(self) -> dict[str, str]:
        if not self.credentials:
            return {}
        creds = local_credentials.load(self.credentials)
        return {"username": creds["MQTT_USER"], "password": creds["MQTT_PASSWORD"]}

    def command(self) -> list[str]:
        return [self.binary() or "mosquitto", "-c", str(self.conf)]

    def ready(self) -> bool:
        from include.mqtt_client import connect

        client = connect(HOST, self.port, client_id="localservices-probe", timeout=3, **self.login())
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

        ensure_durable_session(lambda **kw: connect(HOST, self.port, **self.login(), **kw))


SERVICE = Mosquitto("mosquitto", PORT, ready_timeout=20, credentials=local_credentials.local_file())
