"""Hooks: MqttHook (an Airflow connection of type mqtt -> a connected paho-mqtt 2 client) and the replay's
Kafka producer hook (the provider's, with idempotent batching defaults)."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from airflow.sdk.bases.hook import BaseHook

from include.mqtt_client import connect


class MqttHook(BaseHook):
    """Connection fields: host, port, login/password; extra: {"keepalive": 60, "tls_ca": "/path/ca.pem"}."""

    conn_name_attr = "mqtt_conn_id"
    default_conn_name = "mqtt_default"
    conn_type = "mqtt"
    hook_name = "MQTT"

    def __init__(self, mqtt_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mqtt_conn_id = mqtt_conn_id

    def get_conn(
        self,
        client_id: str = "",
        clean_session: bool = True,
        manual_ack: bool = False,
        timeout: float = 60.0,
        on_message=None,
    ) -> mqtt.Client:
        conn = self.get_connection(self.mqtt_conn_id)
        extra = conn.extra_dejson
        if not conn.host:
            raise ValueError(f"connection {self.mqtt_conn_id!r} has no host")
        return connect(
            conn.host,
            int(conn.port or 1883),
            client_id=client_id,
            clean_session=clean_session,
            manual_ack=manual_ack,
            username=conn.login or None,
            password=conn.password or None,
            tls_ca=extra.get("tls_ca"),
            keepalive=int(extra.get("keepalive", 60)),
            timeout=timeout,
            on_message=on_message,
        )


class ReadingsProducerHook(KafkaProducerHook):
    """Kafka producer for the replay: idempotent and batched by default; the connection's extra overrides."""

    CONSUMER_ONLY = ("group.id", "auto.offset.reset", "enable.auto.commit", "session.timeout.ms")

    def _get_client(self, config):
        from include.replay import PRODUCER_SETTINGS

        producer_config = {k: v for k, v in config.items() if k not in self.CONSUMER_ONLY}
        return super()._get_client({**PRODUCER_SETTINGS, **producer_config})
