"""Kafka 3.9.1 from Maven Central, on loopback with small heaps: one KRaft node (broker + controller) in the
single-node profile; three, with SASL on every listener, in the cluster profile (KafkaNode)."""
from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from include import names

from . import credentials as local_credentials
from .core import LOGS, OPT, RUN, Service, ServiceError, maven_fetch, render, run

HOME = OPT / "kafka"
LIB = HOME / "lib"
POM_DIR = Path(__file__).resolve().parent / "poms" / "kafka"
LOG4J = RUN / "kafka-log4j.properties"
WEEK_MS = 7 * 24 * 3600 * 1000

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ServiceError("kafka needs Java 17 (`java` not on PATH and JAVA_HOME unset)")
    return found


def new_cluster_id() -> str:
    """Like Kafka's Uuid.randomUuid: base64url of 16 random bytes, no padding, not starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):  # would be read as a command-line option
            return cid


class Kafka(Service):
    heap = "384m"
    logs_dir = LOGS

    @property
    def controller_port(self) -> int:
        return self.extra_ports[0]

    @property
    def log_dir(self) -> Path:
        return self.data / "logs"

    def installed(self) -> bool:
        return any(LIB.glob("kafka_2.13-*.jar")) and any(LIB.glob("slf4j-reload4j-*.jar"))

    def install(self) -> None:
        if not self.installed():
            shutil.rmtree(LIB, ignore_errors=True)  # a half-finished copy would look installed
            maven_fetch(POM_DIR, LIB, "kafka")

    @property
    def config(self) -> Path:
        return self.run_dir / f"{self.name}.properties"

    @property
    def cluster_id_file(self) -> Path:
        return self.data / "cluster.id"

    def cluster_id(self) -> str:
        """Generated on first start and kept next to the data, so re-formatting is never needed."""
        path = self.cluster_id_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    def prepare(self) -> None:
        self.render_config()
        render("kafka-log4j.properties", LOG4J)
        if (self.log_dir / "meta.properties").exists():
            return  # formatted before
        run([java(), "-Xmx128m", f"-Dlog4j.configuration=file:{LOG4J}", "-cp", f"{LIB}/*",
             "kafka.tools.StorageTool", "format", "-t", self.cluster_id(), "-c", str(self.config),
             "--ignore-formatted"], log=self.log, what="kafka storage format")

    def render_config(self) -> None:
        render("kafka-server.properties", self.config, port=self.port, controller_port=self.controller_port,
               data=self.data)

    def command(self) -> list[str]:
        # C1 only (TieredStopAtLevel=1): half the start-up CPU and time (~5 s instead of ~11 s on
        # 2 busy cores); peak throughput is irrelevant for one local pipeline.
        return [java(), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{LOG4J}", f"-Dkafka.logs.dir={self.logs_dir}",
                "-cp", f"{LIB}/*", "kafka.Kafka", str(self.config)]

    def admin_config(self) -> dict[str, str | int]:
        return {"bootstrap.servers": f"127.0.0.1:{self.port}"}

    def _admin(self) -> AdminClient:
        from confluent_kafka.admin import AdminClient

        # log_level 0: no "connection refused" noise on stderr while the broker is still starting
        return AdminClient({**self.admin_config(), "log_level": 0, "socket.connection.setup.timeout.ms": 2000})

    def ready(self) -> bool:
        metadata = self._admin().list_topics(timeout=3)
        return bool(metadata.brokers)

    def bootstrap(self) -> None:
        create_topic(self._admin(), names.KAFKA_PARTITIONS, replication=1, config={})


def create_topic(admin: AdminClient, partitions: int, replication: int, config: dict[str, str]) -> None:
    """Create the pipeline topic (idempotent); grow it if it exists with fewer partitions."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewPartitions, NewTopic

    topic = NewTopic(names.KAFKA_TOPIC, num_partitions=partitions, replication_factor=replication,
                     config={"retention.ms": str(WEEK_MS), "cleanup.policy": "delete", **config})
    try:
        admin.create_topics([topic], operation_timeout=30, request_timeout=30)[names.KAFKA_TOPIC].result()
        return
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    existing = admin.list_topics(names.KAFKA_TOPIC, timeout=10).topics[names.KAFKA_TOPIC]
    if len(existing.partitions) < partitions:
        admin.create_partitions([NewPartitions(names.KAFKA_TOPIC, partitions)],
                                request_timeout=30)[names.KAFKA_TOPIC].result()


CLUSTER_NODES = 3
CLUSTER_PARTITIONS = 6
CLUSTER_REPLICATION = 3
CLUSTER_MIN_INSYNC = 2
SCRAM = "SCRAM-SHA-512"


@dataclass(eq=False)
class KafkaNode(Kafka):
    """Node `node_id` of the cluster profile's three KRaft nodes (broker + controller each). Clients log in
    with SCRAM on the CLIENT listener (port); brokers and controllers talk over SASL/PLAIN with static logins
    (the internal and controller ports). The services tool works through the INTERNAL listener as the broker
    login: it makes the pipeline's SCRAM user there, so no password goes on a command line."""

    node_id: int = 1
    credentials: Path = local_credentials.FILE
    heap = "256m"

    @property
    def logs_dir(self) -> Path:  # type: ignore[override]
        return self.base / "logs" / self.name

    @property
    def internal_port(self) -> int:
        return self.extra_ports[1]

    @property
    def cluster_id_file(self) -> Path:
        return self.base / "data" / "kafka-cluster.id"  # one id for the three nodes

    def secrets(self) -> dict[str, str]:
        return local_credentials.load(self.credentials)

    def render_config(self) -> None:
        creds = self.secrets()
        voters = ",".join(f"{i}@127.0.0.1:{node_port(i, 9093)}" for i in range(1, CLUSTER_NODES + 1))
        render("kafka-cluster-node.properties", self.config, node_id=self.node_id, voters=voters, port=self.port,
               internal_port=self.internal_port, controller_port=self.controller_port, data=self.data,
               broker_password=creds["KAFKA_BROKER_PASSWORD"], controller_password=creds["KAFKA_CONTROLLER_PASSWORD"])
        self.config.chmod(0o600)  # it holds the static logins

    def admin_config(self) -> dict[str, str | int]:
        return {"bootstrap.servers": f"127.0.0.1:{self.internal_port}", "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN", "sasl.username": "broker",
                "sasl.password": self.secrets()["KAFKA_BROKER_PASSWORD"]}

    def ready(self) -> bool:
        """This node's broker is registered with the quorum (its own metadata lists it)."""
        metadata = self._admin().list_topics(timeout=3)
        return self.node_id in metadata.brokers

    def bootstrap(self) -> None:
        """The pipeline's SCRAM user (upserted: the password follows the credentials file) and its topic, with
        three replicas and min.insync.replicas 2; once the three brokers are registered."""
        from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        admin = self._admin()
        registered = admin.list_topics(timeout=10).brokers
        if len(registered) < CLUSTER_NODES:
            raise ServiceError(f"only brokers {sorted(registered)} of {CLUSTER_NODES} are registered")
        creds = self.secrets()
        upsert = UserScramCredentialUpsertion(creds["KAFKA_USER"], ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512,
                                                                                       8192),
                                              creds["KAFKA_PASSWORD"].encode())
        for future in admin.alter_user_scram_credentials([upsert], request_timeout=30).values():
            future.result()
        create_topic(admin, CLUSTER_PARTITIONS, CLUSTER_REPLICATION,
                     {"min.insync.replicas": str(CLUSTER_MIN_INSYNC)})


SERVICE = Kafka("kafka", 9092, extra_ports=(9093,), ready_timeout=90)


def node_port(node_id: int, port: int) -> int:
    """Node i of the cluster listens on i9092 (clients), i9093 (controller) and i9094 (brokers)."""
    return node_id * 10_000 + port


CLUSTER = [KafkaNode(f"kafka-{i}", node_port(i, 9092), ready_timeout=180,
                     extra_ports=(node_port(i, 9093), node_port(i, 9094)), node_id=i)
           for i in range(1, CLUSTER_NODES + 1)]
