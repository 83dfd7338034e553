"""MqttBrokerSensor: waits until the MQTT broker behind a connection accepts a connection."""
from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk.bases.sensor import BaseSensorOperator

from gait_airflow.hooks import MqttHook
from include.mqtt_client import MqttError


class MqttBrokerSensor(BaseSensorOperator):
    template_fields: Sequence[str] = ("mqtt_conn_id",)

    def __init__(self, *, mqtt_conn_id: str = MqttHook.default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mqtt_conn_id = mqtt_conn_id

    def poke(self, context) -> bool:
        try:
            MqttHook(self.mqtt_conn_id).get_conn(timeout=5).disconnect()
        except MqttError as exc:
            self.log.info("waiting for the MQTT broker: %s", exc)
            return False
        self.log.info("the MQTT broker behind %r accepted a connection", self.mqtt_conn_id)
        return True
