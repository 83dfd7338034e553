"""paho-mqtt 2 client set-up shared by the Airflow hook and the services tool, and the durable capture session."""

from __future__ import annotations

import time
from typing import Any

import paho.mqtt.client as mqtt

from include import names


class MqttError(ConnectionError):
    """The broker refused or could not be reached; the message names host, port and what to check."""


def connect(
    host: str,
    port: int,
    *,
    client_id: str = "",
    clean_session: bool = True,
    manual_ack: bool = False,
    username: str | None = None,
    password: str | None = None,
    tls_ca: str | None = None,
    keepalive: int = 60,
    timeout: float = 60.0,
    on_message=None,
) -> mqtt.Client:
    """A connected MQTT 3.1.1 client whose CONNECT was accepted (network loop not started).

    A resumed durable session starts delivering queued messages right after CONNACK, so a receiving client
    must pass `on_message` here: set later, the first deliveries would be dropped unacknowledged."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if username:
        client.username_pw_set(username, password)
    if tls_ca:
        client.tls_set(ca_certs=tls_ca)
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    try:
        client.connect(host, port, keepalive=keepalive)
    except OSError as exc:
        raise MqttError(
            f"MQTT broker {host}:{port} unreachable: {exc}; check it with "
            f"`make status` and `scripts/services.py logs mosquitto`"
        ) from exc
    result: dict[str, Any] = {}

    def on_connect(_client, _userdata, _flags, reason_code, _properties) -> None:
        result["rc"] = reason_code

    client.on_connect = on_connect
    deadline = time.monotonic() + timeout
    while "rc" not in result and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.on_connect = None
    if "rc" not in result:
        client.disconnect()
        raise MqttError(f"MQTT broker {host}:{port} did not answer CONNECT within {timeout:.0f}s")
    if result["rc"].is_failure:
        raise MqttError(
            f"MQTT broker {host}:{port} refused the connection: {result['rc']} (check the connection's login/password)"
        )
    return client


def subscribe(client: mqtt.Client, topic: str, qos: int, timeout: float = 60.0) -> None:
    """Subscribe and wait for the SUBACK (runs the network loop inline). The timeouts here are generous: with
    a backlog of a million messages, Mosquitto stops answering for seconds while it saves its queue to disk."""
    granted: dict[str, Any] = {}
    client.on_subscribe = lambda _c, _u, mid, codes, _p: granted.update(mid=mid, codes=codes)
    _, mid = client.subscribe(topic, qos=qos)
    deadline = time.monotonic() + timeout
    while granted.get("mid") != mid and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.on_subscribe = None
    if granted.get("mid") != mid or any(code.is_failure for code in granted["codes"]):
        raise MqttError(f"subscription to {topic!r} was not granted: {granted.get('codes')}")


def ensure_durable_session(client_factory) -> None:
    """Create (or re-assert) the capture client's persistent session and its QoS 1 subscription, so the
    broker queues readings while no DAG runs. Never acknowledges: anything delivered now is redelivered
    to the next capture."""
    client = client_factory(client_id=names.MQTT_CAPTURE_CLIENT_ID, clean_session=False, manual_ack=True)
    try:
        subscribe(client, names.MQTT_TOPIC_FILTER, names.MQTT_QOS)
    finally:
        client.disconnect()
