"""The stages' services built from Airflow connections with the providers' hooks: a hook owns each connection
and its client; a client that cannot connect becomes one readable ServiceUnavailable line."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from include import names
from include.stages.services import reporting_unavailable


def hdfs_client(conn_id: str = names.WEBHDFS_CONN_ID):
    from airflow.providers.apache.hdfs.hooks.webhdfs import AirflowWebHDFSHookException, WebHDFSHook

    with reporting_unavailable("HDFS NameNode", conn_id, "hdfs-namenode", AirflowWebHDFSHookException):
        client = WebHDFSHook(webhdfs_conn_id=conn_id).get_conn()
    client.write = past_lost_datanodes(client.write, client.url)
    return client


def past_lost_datanodes(write, namenode_url: str, attempts: int = 6, pause: float = 2.0):
    """A WebHDFS write that asks the NameNode again when the DataNode it redirected to is unreachable (just lost:
    until the NameNode marks it stale, 3 s on the cluster profile, it may still hand it out). HDFS's own Java
    client does the same by excluding the node; the WebHDFS client does not. Nothing was created on the failed
    attempt (the DataNode runs the CREATE), so asking again is safe. The NameNode unreachable is not retried here."""
    import functools
    import logging
    import time

    import requests

    log = logging.getLogger(__name__)

    @functools.wraps(write)
    def writing(hdfs_path: str, data=None, **options):
        for _ in range(attempts - 1):
            try:
                return write(hdfs_path, data=data, **options)
            except requests.ConnectionError as exc:
                target = str(exc.request.url) if exc.request is not None and exc.request.url else namenode_url
                if target.startswith(namenode_url) or not isinstance(data, bytes | str):
                    raise
                log.warning(
                    "HDFS write of %s: DataNode unreachable (%s); asking the NameNode again in %.0f s",
                    hdfs_path,
                    target.split("/webhdfs", 1)[0],
                    pause,
                )
                time.sleep(pause)
        return write(hdfs_path, data=data, **options)

    return writing


def mqtt_client(conn_id: str = names.MQTT_CONN_ID, **options: Any):
    from gait_airflow.hooks import MqttHook

    return MqttHook(conn_id).get_conn(**options)


def kafka_producer(conn_id: str = names.KAFKA_CONN_ID):
    from gait_airflow.hooks import ReadingsProducerHook

    return ReadingsProducerHook(kafka_config_id=conn_id).get_producer()


def kafka_watermarks(
    topic: str, partitions: list[int] | None = None, conn_id: str = names.KAFKA_CONN_ID
) -> dict[int, tuple[int, int]]:
    """(low, high) watermark of each partition of the topic (or of those named), asked of the brokers now."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
    from confluent_kafka import KafkaException, TopicPartition

    # the connection's consumer, not subscribed: it joins no group and commits nothing
    with reporting_unavailable("Kafka", conn_id, "kafka", KafkaException):
        consumer = KafkaConsumerHook(topics=[topic], kafka_config_id=conn_id).get_conn
        try:
            if partitions is None:
                partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                for p in partitions
            }
        finally:
            consumer.close()


@contextmanager
def cassandra_session(conn_id: str = names.CASSANDRA_CONN_ID):
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook
    from cassandra import ConsistencyLevel
    from cassandra.cluster import NoHostAvailable

    hook = CassandraHook(cassandra_conn_id=conn_id)
    with reporting_unavailable("Cassandra", conn_id, "cassandra", NoHostAvailable):
        session = hook.get_conn()
    session.default_consistency_level = ConsistencyLevel.name_to_value[names.CASSANDRA_CONSISTENCY]
    try:
        yield session
    finally:
        hook.shutdown_cluster()


@contextmanager
def mongo_database(conn_id: str = names.MONGO_CONN_ID):
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from pymongo.errors import PyMongoError

    with reporting_unavailable("MongoDB", conn_id, "ferretdb", PyMongoError), MongoHook(mongo_conn_id=conn_id) as hook:
        yield hook.get_conn()[names.MONGO_DB]


class AirflowServices:
    """include.stages.services.Services on the pipeline's Airflow connections."""

    def hdfs(self):
        return hdfs_client()

    def mqtt(self, **options: Any):
        return mqtt_client(**options)

    def kafka_producer(self):
        return kafka_producer()

    def kafka_end_offsets(self, topic: str) -> dict[int, int]:
        return {p: high for p, (_low, high) in kafka_watermarks(topic).items()}

    def cassandra(self):
        return cassandra_session()

    def mongo(self):
        return mongo_database()
