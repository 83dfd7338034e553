"""The cluster profile (scripts/localservices/topology.py) on its real services: Kafka as three KRaft brokers with
SASL on every listener, the pipeline topic replicated; Cassandra as three nodes with the keyspace and the roles
replicated to all; HDFS as a NameNode and three DataNodes keeping three replicas of every block; and every service
that takes a login (all but HDFS, which would need Kerberos) refusing an anonymous client. The DAGs on it:
test_cluster_airflow.py."""
from __future__ import annotations

import os
import time
import urllib.error

import pytest

from include import names
from tests.cluster_runs import kafka_client_config


def test_kafka_topic_has_three_replicas_on_three_brokers():
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient(kafka_client_config())
    deadline = time.monotonic() + 60  # after a restart, leaders move back to their preferred replicas (10 s checks)
    while True:
        metadata = admin.list_topics(timeout=10)
        topic = metadata.topics[names.KAFKA_TOPIC]
        leaders = {p.leader for p in topic.partitions.values()}
        if len(leaders) == 3 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sorted(metadata.brokers) == [1, 2, 3]
    assert len(topic.partitions) == 6
    assert all(len(p.replicas) == 3 and len(p.isrs) == 3 for p in topic.partitions.values())
    assert leaders == {1, 2, 3}, "leadership should be spread over the brokers"
    resource = ConfigResource(ConfigResource.Type.TOPIC, names.KAFKA_TOPIC)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["min.insync.replicas"].value == "2"


@pytest.mark.parametrize("port", [19092, 29092, 39092, 19094, 29094, 39094, 19093])
def test_kafka_refuses_anonymous_clients_on_every_listener(port):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    anonymous = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0,
                             "socket.connection.setup.timeout.ms": 3000})
    with pytest.raises(KafkaException):
        anonymous.list_topics(timeout=2)


def test_kafka_refuses_a_wrong_password():
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    with pytest.raises(KafkaException):
        AdminClient(kafka_client_config(**{"sasl.password": "not-the-password"})).list_topics(timeout=2)


CASSANDRA_NODES = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def test_cassandra_has_three_nodes_and_three_replicas_of_the_keyspace_and_the_roles():
    from gait_airflow.clients import cassandra_session
    from scripts.localservices.cassandra import CLUSTER, connect

    for node in CLUSTER:  # each node knows the two others, in the one data centre
        cluster = connect(host=node.host, login=node.login())
        try:
            rows = cluster.connect().execute("SELECT peer, data_center FROM system.peers")
            peers = {(str(row.peer), row.data_center) for row in rows}
        finally:
            cluster.shutdown()
        assert peers == {(host, "datacenter1") for host in CASSANDRA_NODES if host != node.host}, node.host
    with cassandra_session() as session:
        for keyspace in (names.CASSANDRA_KEYSPACE, "system_auth"):
            replication = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                          (keyspace,)).one().replication
            assert replication == {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy",
                                   "datacenter1": "3"}, (keyspace, replication)
        assert session.default_consistency_level == 6  # LOCAL_QUORUM (include/names.py), for every stage


@pytest.mark.parametrize("host", CASSANDRA_NODES)
def test_cassandra_refuses_anonymous_clients_on_every_node(host):
    from cassandra.cluster import NoHostAvailable

    from scripts.localservices.cassandra import connect

    cluster = connect(host=host, timeout=5.0)
    try:
        with pytest.raises(NoHostAvailable, match="AuthenticationFailed|requires authentication"):
            cluster.connect()
    finally:
        cluster.shutdown()


def test_hdfs_has_three_datanodes_and_keeps_three_replicas_of_every_block():
    from gait_airflow.clients import hdfs_client
    from scripts.localservices import hdfs

    state = hdfs._jmx("FSNamesystemState")
    assert int(state["NumLiveDataNodes"]) == 3 and int(state["NumDeadDataNodes"]) == 0
    store, path = hdfs_client(), "/tmp/cluster-suite-replication-probe"
    store.write(path, data=b"x" * 4096, overwrite=True)
    try:
        assert store.status(path)["replication"] == 3
        locations = hdfs._get(f"/webhdfs/v1{path}?op=GETFILEBLOCKLOCATIONS&user.name=root")["BlockLocations"]
        hosts = {name for block in locations["BlockLocation"] for name in block["names"]}
        assert hosts == {"127.0.0.1:9866", "127.0.0.1:9966", "127.0.0.1:10066"}, hosts
    finally:
        store.delete(path)


def test_postgresql_refuses_anonymous_clients():
    import psycopg2

    from scripts.localservices import postgres

    for database in postgres.DATABASES:
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(host="127.0.0.1", port=postgres.PORT, dbname=database, user="postgres", connect_timeout=3)


def test_redis_refuses_anonymous_clients():
    import redis

    from scripts.localservices.redis import SERVICE

    with SERVICE.client() as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()


def test_ferretdb_refuses_anonymous_clients_and_serves_the_pipeline_login():
    from pymongo.errors import OperationFailure

    from scripts.localservices.ferretdb import CLUSTER

    with CLUSTER.client(anonymous=True) as anonymous, pytest.raises(OperationFailure):
        anonymous[names.MONGO_DB].list_collection_names()
    with CLUSTER.client() as client:
        assert names.METRICS_COLLECTION in client[names.MONGO_DB].list_collection_names()


def test_mosquitto_refuses_anonymous_clients():
    from include.mqtt_client import MqttError, connect

    with pytest.raises(MqttError, match="refused the connection"):
        connect("127.0.0.1", 1883, client_id="cluster-suite-anonymous", timeout=5)


@pytest.mark.parametrize("path", ["/api/v2/dags", "/api/v2/dags/parkinson_gait_pipeline/dagRuns",
                                  "/model-report/api/runs"])
def test_airflow_api_refuses_anonymous_requests(path):
    from scripts.localservices.core import LOOPBACK_HTTP

    with pytest.raises(urllib.error.HTTPError) as refused:
        LOOPBACK_HTTP.open(f"http://127.0.0.1:8080{path}", timeout=10)
    assert refused.value.code in (401, 403)


def test_spark_refuses_an_application_without_the_cluster_secret(tmp_path):
    """An application that does not prove the shared secret never registers: the master refuses its RPCs (SASL
    expected) until the driver gives up. The REST submission server, which takes no login, is off."""
    import subprocess

    from scripts.localservices import spark
    from scripts.localservices.core import port_open

    assert not port_open(6066)
    probe = tmp_path / "anonymous_probe.py"
    probe.write_text("from pyspark.sql import SparkSession\n"
                     "spark = SparkSession.builder.appName('anonymous-probe').getOrCreate()\n"
                     "print(spark.sparkContext.parallelize([1]).count())\n")
    env = {key: value for key, value in os.environ.items() if key != spark.AUTH_SECRET_ENV}
    seen = spark.MASTER.log.stat().st_size
    result = subprocess.run([spark.spark_submit(), "--master", spark.MASTER_URL, "--conf", "spark.authenticate=false",
                             str(probe)], env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode != 0
    assert "All masters are unresponsive" in result.stdout + result.stderr
    state = spark.master_state()
    assert "anonymous-probe" not in {app["name"] for app in state["activeapps"] + state["completedapps"]}
    with spark.MASTER.log.open("rb") as log:
        log.seek(seen)
        assert b"Expected SaslMessage" in log.read()
