"""Smoke tests: write and read back through every real local service with the clients the pipeline uses."""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from include import names

ROOT = Path(__file__).resolve().parents[2]


def test_mqtt_round_trip_through_hook():
    from gait_airflow.hooks import MqttHook
    from include.mqtt_client import subscribe

    topic = f"smoke/{uuid.uuid4().hex}"
    received: list[bytes] = []
    consumer = MqttHook(names.MQTT_CONN_ID).get_conn(client_id=f"smoke-{uuid.uuid4().hex[:8]}")
    consumer.on_message = lambda _c, _u, msg: received.append(msg.payload)
    subscribe(consumer, topic, 1)
    producer = MqttHook(names.MQTT_CONN_ID).get_conn()
    producer.loop_start()
    producer.publish(topic, b"hello", qos=1).wait_for_publish(5)
    producer.loop_stop()
    producer.disconnect()
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        consumer.loop(0.1)
    consumer.disconnect()
    assert received == [b"hello"]


def test_webhdfs_round_trip_through_hook():
    from gait_airflow.clients import hdfs_client

    client = hdfs_client()
    path = f"/tmp/smoke-{uuid.uuid4().hex}.txt"
    client.write(path, data=b"gait", overwrite=True)  # the DataNode redirect must resolve to 127.0.0.1
    with client.read(path) as reader:
        assert reader.read() == b"gait"
    assert client.delete(path)
    for directory in names.HDFS_BASE_DIRS:
        assert client.status(directory)["type"] == "DIRECTORY"


@pytest.fixture
def kafka_topic():
    from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
    from confluent_kafka.admin import AdminClient, NewTopic

    admin: AdminClient = KafkaBaseHook(names.KAFKA_CONN_ID).get_conn
    topic = f"smoke.{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    yield topic
    admin.delete_topics([topic])[topic].result(30)


def produce(topic: str, n: int) -> None:
    from gait_airflow.hooks import ReadingsProducerHook

    producer = ReadingsProducerHook(kafka_config_id=names.KAFKA_CONN_ID).get_producer()
    for i in range(n):
        producer.produce(topic, key=f"k{i % 3}".encode(), value=json.dumps({"i": i}).encode())
    assert producer.flush(30) == 0


def test_kafka_round_trip_through_hooks(kafka_topic):
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook

    produce(kafka_topic, 50)
    consumer = KafkaConsumerHook([kafka_topic], kafka_config_id=names.KAFKA_CONN_ID).get_consumer()
    seen, deadline = [], time.monotonic() + 30
    while len(seen) < 50 and time.monotonic() < deadline:
        for message in consumer.consume(100, timeout=1):
            assert message.error() is None
            seen.append(json.loads(message.value())["i"])
    consumer.close()
    assert sorted(seen) == list(range(50))


def test_pipeline_topic_exists():
    from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook

    topics = KafkaBaseHook(names.KAFKA_CONN_ID).get_conn.list_topics(timeout=10).topics
    assert len(topics[names.KAFKA_TOPIC].partitions) == names.KAFKA_PARTITIONS


def test_cassandra_round_trip_through_hook():
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    hook = CassandraHook(names.CASSANDRA_CONN_ID)
    session = hook.get_conn()
    try:
        assert hook.table_exists(f"{names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}")
        key = f"smoke-{uuid.uuid4().hex[:8]}"
        insert = session.prepare(f"INSERT INTO {names.WINDOW_TABLE} (recording_id, window_size, window_index, l1) "
                                 "VALUES (?, ?, ?, ?)")
        session.execute(insert, (key, 100, 0, 1.5))
        select = session.prepare(f"SELECT l1 FROM {names.WINDOW_TABLE} WHERE recording_id = ?")
        assert [row.l1 for row in session.execute(select, (key,))] == [1.5]
        session.execute(session.prepare(f"DELETE FROM {names.WINDOW_TABLE} WHERE recording_id = ?"), (key,))
    finally:
        hook.shutdown_cluster()


def test_mongo_round_trip_through_hook():
    from airflow.providers.mongo.hooks.mongo import MongoHook

    with MongoHook(mongo_conn_id=names.MONGO_CONN_ID) as hook:
        doc_id = f"smoke-{uuid.uuid4().hex}"
        hook.replace_one("smoke", {"_id": doc_id, "v": 1}, mongo_db=names.MONGO_DB, upsert=True)
        hook.replace_one("smoke", {"_id": doc_id, "v": 2}, mongo_db=names.MONGO_DB, upsert=True)
        docs = list(hook.find("smoke", {"_id": doc_id}, mongo_db=names.MONGO_DB))
        assert docs == [{"_id": doc_id, "v": 2}]
        hook.delete_one("smoke", {"_id": doc_id}, mongo_db=names.MONGO_DB)


def test_spark_submit_reads_kafka(kafka_topic):
    """spark-submit (local mode, jars resolved at install time, no network) reads a bounded Kafka range."""
    from scripts.localservices import spark

    produce(kafka_topic, 25)
    cmd = ["spark-submit", "--master", "local[2]", "--jars", ",".join(spark.jars()),
           str(ROOT / "spark_jobs" / "smoke_kafka_read.py"), "--bootstrap-servers", "127.0.0.1:9092",
           "--topic", kafka_topic, "--expect", "25"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
