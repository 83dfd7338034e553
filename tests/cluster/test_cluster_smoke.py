"""The cluster profile (scripts/localservices/topology.py) on its real services: Kafka as three KRaft brokers with
SASL on every listener, the pipeline topic replicated; Cassandra as three nodes with the keyspace and the roles
replicated to all; HDFS as a NameNode and three DataNodes keeping three replicas of every block; the main DAG on it
with exact counts and windows. So far Spark and Airflow run as in the single-node profile (issue #14)."""
from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include import names
from scripts.demo import run_dag
from tests.faults.harness import RunLog
from tests.pipeline_checks import (
    SAMPLE_READINGS,
    SAMPLE_WINDOWS,
    assert_kafka_range_equals_landed,
    assert_windows_equal_reference,
    metrics_documents,
    reconciliation,
)

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "cluster"
DAG_ID = "parkinson_gait_pipeline"
LOGICAL_DATE = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=int(time.time()) % 100_000)
CONF = {"capture_idle_seconds": 3, "bias_variance_rounds": 3, "cv_folds": 3, "window_size": 50}


def kafka_client_config(**overrides) -> dict:
    extra = json.loads(os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
    config = {k: v for k, v in extra.items() if k not in ("group.id", "auto.offset.reset")}
    return {**config, "log_level": 0, "socket.connection.setup.timeout.ms": 3000, **overrides}


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


@pytest.fixture(scope="module")
def cluster_run() -> tuple[str, RunLog]:
    """The unchanged main DAG on the profile, with a non-default window size; the batch id and the run's log."""
    from gait_airflow.clients import AirflowServices
    from include.layout import batch_id
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())
    ok, text = run_dag(DAG_ID, LOGICAL_DATE, CONF, LOGS / "pipeline.log")
    log = RunLog.parse(text)
    assert ok, f"the run ended {log.state}:\n{log.tail()}"
    return batch_id(LOGICAL_DATE, ""), log


def test_spark_job_ran_its_executors_on_both_workers(cluster_run):
    """The master's and the workers' own JSON status: the job's application finished with one executor on each
    worker (none in the driver)."""
    from scripts.localservices import spark

    batch, _ = cluster_run
    apps = [a for a in spark.master_state()["completedapps"] if a["name"] == f"parkinson-window-means-{batch}"]
    assert len(apps) == 1, [a["name"] for a in spark.master_state()["completedapps"]]
    hosts = []
    for worker in spark.WORKERS:
        hosts += [worker.name for e in worker.state()["finishedexecutors"] if e["appid"] == apps[0]["id"]]
    assert sorted(hosts) == ["spark-worker-1", "spark-worker-2"], hosts


def test_main_dag_on_the_cluster_profile_is_exact(cluster_run):
    """Every hop's count equals the sample's, no try failed, the batch's readings are spread over the topic's six
    partitions, and Cassandra holds exactly the numpy reference."""
    batch, log = cluster_run
    assert log.all_failed_tries() == 0
    counts = reconciliation(batch)["counts"]
    assert counts["published"] == counts["landed_in_hdfs"] == counts["produced_to_kafka"] == \
        counts["read_by_spark"] == SAMPLE_READINGS
    assert counts["windows_written"] == counts["windows_expected"] == 2 * SAMPLE_WINDOWS + 13  # 21 per recording
    offsets = assert_kafka_range_equals_landed(batch)
    assert len(offsets.partitions) == 6 and offsets.messages == SAMPLE_READINGS
    assert assert_windows_equal_reference(batch, window_size=50) == 13 * 21
    assert len(metrics_documents(f"{DAG_ID}__{batch}")) == 1
