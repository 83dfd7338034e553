"""The local services' two profiles, chosen by GAIT_TOPOLOGY: `single` (default: one node of each service) and
`cluster` (replicated services on loopback, authentication on; ../docs and README "Cluster profile").

The cluster keeps its data, logs and credentials under .local/cluster, apart from the single-node profile's, and
adds Airflow's own processes on PostgreSQL and Redis. Mosquitto is the one service it does not replicate. One
profile runs at a time (they share ports such as Cassandra's 9042).
"""
from __future__ import annotations

import os

from . import airflow, cassandra, ferretdb, hdfs, kafka, mosquitto, postgres, redis, spark
from .core import TOPOLOGY_SETTING, Service, ServiceError


def current() -> str:
    value = os.environ.get(TOPOLOGY_SETTING) or "single"
    if value not in ("single", "cluster"):
        raise ServiceError(f"{TOPOLOGY_SETTING} must be 'single' or 'cluster', not {value!r}")
    return value


def groups(topology: str) -> list[list[Service]]:
    """Start groups: groups start in parallel, the services of one group in order (the DataNode needs the
    NameNode). Kafka's cluster nodes each get a group: a node is ready only once a quorum of them runs."""
    if topology == "cluster":  # Cassandra's nodes one after the other (each start is CPU-heavy on two cores)
        return [[mosquitto.SERVICE], [postgres.SERVICE, ferretdb.CLUSTER, redis.SERVICE, *airflow.CLUSTER],
                [hdfs.CLUSTER_NAMENODE, *hdfs.CLUSTER_DATANODES], cassandra.CLUSTER,
                *([node] for node in kafka.CLUSTER), [spark.MASTER, *spark.WORKERS]]
    return [[mosquitto.SERVICE, ferretdb.SERVICE], [hdfs.NAMENODE, hdfs.DATANODE], [cassandra.SERVICE],
            [kafka.SERVICE]]
