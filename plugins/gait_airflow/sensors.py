"""Sensors that wait for a real condition: the MQTT broker accepting a connection, and this batch's replayed
range being readable in Kafka."""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk.bases.sensor import BaseSensorOperator

from gait_airflow.hooks import MqttHook
from include import names
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


class KafkaBatchSensor(BaseSensorOperator):
    """Waits until every message the replay produced for this batch (its offsets manifest) is readable: each
    partition's high watermark has reached the range's end. Fails at once if retention already deleted part of
    the range, or if the batch was never replayed."""

    template_fields: Sequence[str] = ("batch_id",)

    def __init__(self, *, batch_id: str, kafka_config_id: str = names.KAFKA_CONN_ID, **kwargs) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.kafka_config_id = kafka_config_id

    def poke(self, context) -> bool:
        from airflow.sdk.exceptions import AirflowFailException

        from gait_airflow.clients import hdfs_client
        from include.errors import BadInput
        from include.filestore import require_record
        from include.layout import BatchLayout
        from include.records import KafkaOffsets

        try:
            offsets = require_record(
                hdfs_client(), BatchLayout(self.batch_id).kafka_offsets, KafkaOffsets, "run replay_hdfs_to_kafka first"
            )
        except BadInput as exc:
            raise AirflowFailException(f"{self.task_id}: {exc} (a deterministic error: not retried)") from exc
        pending, lost = offsets.unreadable(self._watermarks(offsets))
        if lost:
            raise AirflowFailException(
                f"{self.task_id}: partitions {lost} of {offsets.topic} no longer hold the start "
                f"of batch {self.batch_id}'s range {offsets.partitions} (retention?); re-run "
                "replay_hdfs_to_kafka"
            )
        if pending:
            self.log.info("waiting for partitions %s of %s to reach the batch's range ends", pending, offsets.topic)
            return False
        self.log.info(
            "batch %s: all %d messages readable on %s %s",
            self.batch_id,
            offsets.messages,
            offsets.topic,
            offsets.partitions,
        )
        return True

    def _watermarks(self, offsets) -> dict[int, tuple[int, int]]:
        from gait_airflow.clients import kafka_watermarks

        return kafka_watermarks(offsets.topic, sorted(offsets.partitions), self.kafka_config_id)
