"""config/local.env, the services tool and include/names.py agree; no secret is committed."""
import json
import os
import re
from pathlib import Path

from include import names

ROOT = Path(__file__).resolve().parents[2]


def connections() -> dict[str, dict]:
    return {key[len("AIRFLOW_CONN_"):].lower(): json.loads(value) for key, value in os.environ.items()
            if key.startswith("AIRFLOW_CONN_")}


def test_every_connection_id_is_defined():
    defined = connections()
    for conn_id in (names.MQTT_CONN_ID, names.KAFKA_CONN_ID, names.WEBHDFS_CONN_ID, names.HDFS_CONN_ID,
                    names.SPARK_CONN_ID, names.CASSANDRA_CONN_ID, names.MONGO_CONN_ID):
        assert conn_id in defined, conn_id


def test_connections_point_at_the_local_services():
    from scripts.localservices import cassandra, ferretdb, hdfs, kafka, mosquitto

    conns = connections()
    assert conns["mqtt_default"]["port"] == mosquitto.SERVICE.port
    assert conns["kafka_default"]["extra"]["bootstrap.servers"] == f"127.0.0.1:{kafka.SERVICE.port}"
    assert conns["webhdfs_default"]["port"] == hdfs.NAMENODE.port
    assert conns["hdfs_default"]["port"] == hdfs.RPC_PORT
    assert conns["cassandra_default"]["port"] == cassandra.SERVICE.port
    assert conns["cassandra_default"]["schema"] == names.CASSANDRA_KEYSPACE
    assert conns["mongo_default"]["port"] == ferretdb.SERVICE.port


def test_schema_file_defines_the_tables():
    cql = (ROOT / "include" / "cql" / "schema.cql").read_text()
    assert f"CREATE TABLE IF NOT EXISTS {names.CASSANDRA_KEYSPACE}.{names.WINDOW_TABLE}" in cql
    assert cql.count("PRIMARY KEY ((recording_id), window_size, window_index)") == 2  # both window tables


def test_no_hard_coded_hosts_in_task_code():
    for folder in ("dags", "plugins", "spark_jobs"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"(127\.0\.0\.1|localhost):\d+", text), f"{path} hard-codes a service address"


def test_broker_window_fits_the_capture_chunk():
    from include.capture import CHUNK_MESSAGES

    for conf in (ROOT / "scripts/localservices/templates/mosquitto.conf", ROOT / "docker/mosquitto/mosquitto.conf"):
        window = int(re.search(r"^max_inflight_messages (\d+)", conf.read_text(), re.M)[1])
        assert CHUNK_MESSAGES <= window < 65_535, conf
