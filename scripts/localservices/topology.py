"""The local services' two profiles, chosen by GAIT_TOPOLOGY: `single` (default: one node of each service) and
`cluster` (replicated services on loopback, authentication on; ../docs and README "Cluster profile").

The cluster keeps its data, logs and credentials under .local/cluster, apart from the single-node profile's.
Services the cluster profile does not replicate yet run as in the single-node profile. One profile runs at a
time (they share ports such as Cassandra's 9042).
"""
from __future__ import annotations

import os

from . import cassandra, ferretdb, hdfs, kafka, mosquitto, spark
from .core import TOPOLOGY_SETTING, Service, ServiceError


def current() -> str:
    value = os.environ.get(TOPOLOGY_SETTING) or "single"
    if value not in ("single", "cluster"):
        raise ServiceError(f"{TOPOLOGY_SETTING} must be 'single' or 'cluster', not {value!r}")
    return value


def groups(topology: str) -> list[list[Service]]:
    """Start groups: groups start in parallel, the services of one group in order (the DataNode needs the
    NameNode). Kafka's cluster nodes each get a group: a node is ready only once a quorum of them runs."""
    common = [[mosquitto.SERVICE, ferretdb.SERVICE]]
    if topology == "cluster":  # Cassandra's nodes one after the other (each start is CPU-heavy on two cores)
        return [*common, [hdfs.CLUSTER_NAMENODE, *hdfs.CLUSTER_DATANODES], cassandra.CLUSTER,
                *([node] for node in kafka.CLUSTER), [spark.MASTER, *spark.WORKERS]]
    return [*common, [hdfs.NAMENODE, hdfs.DATANODE], [cassandra.SERVICE], [kafka.SERVICE]]
