"""Authentication (GAIT_LOCAL_AUTH=on) on real Mosquitto and Cassandra processes: anonymous and wrong logins are
refused, the generated ones get in, and no password reaches a log record or an error message.

The instances are the services tool's own classes with auth on, started on free ports with their own data, run
and log folders (the shared services on the default ports are left alone) and stopped at the end.
"""
from __future__ import annotations

import json
import logging
import shutil
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

# Imported before any test: importing Airflow replaces the root log handlers, caplog's among them.
from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

from gait_airflow.clients import cassandra_session
from gait_airflow.hooks import MqttHook
from include.mqtt_client import MqttError, connect
from include.stages.services import ServiceUnavailable
from scripts.localservices import cassandra, credentials, mosquitto
from scripts.localservices.core import HOST


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Secured:
    broker: mosquitto.Mosquitto
    db: cassandra.Cassandra
    creds: dict[str, str]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth")
    file = base / "credentials.env"
    broker = mosquitto.Mosquitto("mosquitto-auth", free_port(), ready_timeout=20, base=base, credentials=file)
    storage, jmx = free_port(), free_port()
    db = cassandra.Cassandra("cassandra-auth", free_port(), extra_ports=(storage, jmx), ready_timeout=180,
                             base=base, storage_port=storage, jmx_port=jmx, credentials=file)
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda service: service.start(), [broker, db]))
        broker.bootstrap()
        db.bootstrap()
        yield Secured(broker, db, credentials.load(file))
    finally:
        for service in (broker, db):
            service.stop()
        shutil.rmtree(base / "data", ignore_errors=True)  # logs stay for a failed run


def test_credentials_file_is_private(secured):
    file = secured.broker.credentials
    assert file.stat().st_mode & 0o777 == 0o600
    assert secured.creds["MQTT_PASSWORD"] and secured.creds["CASSANDRA_PASSWORD"]
    assert secured.creds["MQTT_PASSWORD"] not in secured.broker.password_file.read_text()  # hashed


# --- MQTT -----------------------------------------------------------------------------------------------
def test_mosquitto_refuses_anonymous_and_wrong_password(secured):
    port, user = secured.broker.port, secured.creds["MQTT_USER"]
    with pytest.raises(MqttError, match="refused"):
        connect(HOST, port, timeout=5)
    with pytest.raises(MqttError, match="refused"):
        connect(HOST, port, username=user, password="wrong-password", timeout=5)
    client = connect(HOST, port, username=user, password=secured.creds["MQTT_PASSWORD"], timeout=5)
    info = client.publish("auth/probe", b"ping", qos=1)
    client.loop_start()
    try:
        info.wait_for_publish(timeout=5)
        assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


# --- Cassandra ------------------------------------------------------------------------------------------
def cassandra_error(port: int, login: tuple[str, str] | None) -> str:
    """The refusal's text; fails the test if the login is accepted."""
    from cassandra.cluster import NoHostAvailable

    cluster = cassandra.connect(port, timeout=10, login=login)
    try:
        with pytest.raises(NoHostAvailable) as refused:
            cluster.connect()
        return str(refused.value)
    finally:
        cluster.shutdown()


def test_cassandra_refuses_anonymous_builtin_and_wrong_password(secured):
    port, user = secured.db.port, secured.creds["CASSANDRA_USER"]
    assert "requires authentication" in cassandra_error(port, None)
    assert "Bad credentials" in cassandra_error(port, cassandra.BUILTIN)  # the built-in superuser is gone
    assert "Bad credentials" in cassandra_error(port, (user, "wrong-password"))

    cluster = cassandra.connect(port, timeout=10, login=(user, secured.creds["CASSANDRA_PASSWORD"]))
    try:
        session = cluster.connect()
        roles = {row.role: row.super for row in session.execute(session.prepare("LIST ROLES"))}
        assert roles == {user: True}
        tables = session.execute(session.prepare(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?"), ("parkinson",))
        assert "window_means" in {row.table_name for row in tables}  # schema applied as the generated role
    finally:
        cluster.shutdown()


# --- no secret in logs or errors ------------------------------------------------------------------------
def test_hooks_log_and_raise_without_the_password(secured, monkeypatch, caplog, capfd):
    """The project's hooks/helpers on connections that carry a password (right and wrong): the connection works
    with the right one, fails readably with the wrong one, and neither password is in any log record (DEBUG
    and up, every logger), captured output, error message (with its causes) or the servers' logs."""
    wrong = f"wrong-{uuid.uuid4().hex}"
    secrets = [secured.creds["MQTT_PASSWORD"], secured.creds["CASSANDRA_PASSWORD"], wrong]
    mqtt = {"conn_type": "mqtt", "host": HOST, "port": secured.broker.port, "login": secured.creds["MQTT_USER"]}
    db = {"conn_type": "cassandra", "host": HOST, "port": secured.db.port, "schema": "parkinson",
          "login": secured.creds["CASSANDRA_USER"]}
    for conn_id, conn, password in [("auth_mqtt", mqtt, secured.creds["MQTT_PASSWORD"]),
                                    ("auth_mqtt_wrong", mqtt, wrong),
                                    ("auth_cassandra", db, secured.creds["CASSANDRA_PASSWORD"]),
                                    ("auth_cassandra_wrong", db, wrong)]:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, "password": password}))
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    MqttHook("auth_mqtt").get_conn(timeout=5).disconnect()
    with pytest.raises(MqttError, match="refused") as refused:
        MqttHook("auth_mqtt_wrong").get_conn(timeout=5)
    errors.append(refused.value)

    hook = CassandraHook("auth_cassandra")
    try:
        session = hook.get_conn()
        assert session.execute(session.prepare("SELECT release_version FROM system.local")).one()
    finally:
        hook.shutdown_cluster()
    with pytest.raises(ServiceUnavailable, match="auth_cassandra_wrong") as unavailable:
        with cassandra_session("auth_cassandra_wrong"):
            pass
    errors.append(unavailable.value)

    texts = [record.getMessage() for record in caplog.records]
    texts += [caplog.text, *capfd.readouterr()]
    texts += [service.log.read_text() for service in (secured.broker, secured.db)]  # the servers' own logs
    for error in errors:
        while error is not None:
            texts += [str(error), repr(error)]
            error = error.__cause__ or error.__context__
    assert len(caplog.records) > 0, "nothing was logged: the check would prove nothing"
    leaks = [(i, text[:200]) for i, text in enumerate(texts) for secret in secrets if secret in text]
    assert not leaks, f"a password appears in logs/errors: {leaks}"
