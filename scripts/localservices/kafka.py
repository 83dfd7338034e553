"""Kafka 3.9.1 from Maven Central: one KRaft node (broker + controller) on loopback, small heap."""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from include import names

from .core import LOGS, OPT, RUN, Service, ServiceError, maven_fetch, render, run

HOME = OPT / "kafka"
LIB = HOME / "lib"
POM_DIR = Path(__file__).resolve().parent / "poms" / "kafka"
CONFIG = RUN / "kafka-server.properties"
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

    def cluster_id(self) -> str:
        """Generated on first start and kept next to the data, so re-formatting is never needed."""
        path = self.data / "cluster.id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    def prepare(self) -> None:
        render("kafka-server.properties", CONFIG, port=self.port, controller_port=self.controller_port,
               data=self.data)
        render("kafka-log4j.properties", LOG4J)
        if (self.log_dir / "meta.properties").exists():
            return  # formatted before
        run([java(), "-Xmx128m", f"-Dlog4j.configuration=file:{LOG4J}", "-cp", f"{LIB}/*",
             "kafka.tools.StorageTool", "format", "-t", self.cluster_id(), "-c", str(CONFIG),
             "--ignore-formatted"], log=self.log, what="kafka storage format")

    def command(self) -> list[str]:
        # C1 only (TieredStopAtLevel=1): half the start-up CPU and time (~5 s instead of ~11 s on
        # 2 busy cores); peak throughput is irrelevant for one local pipeline.
        return [java(), "-Xms384m", "-Xmx384m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{LOG4J}", f"-Dkafka.logs.dir={LOGS}",
                "-cp", f"{LIB}/*", "kafka.Kafka", str(CONFIG)]

    def _admin(self) -> AdminClient:
        from confluent_kafka.admin import AdminClient

        # log_level 0: no "connection refused" noise on stderr while the broker is still starting
        return AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port}", "log_level": 0,
                            "socket.connection.setup.timeout.ms": 2000})

    def ready(self) -> bool:
        metadata = self._admin().list_topics(timeout=3)
        return bool(metadata.brokers)

    def bootstrap(self) -> None:
        """Create the pipeline topic (idempotent); grow it if it exists with fewer partitions."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewPartitions, NewTopic

        admin = self._admin()
        topic = NewTopic(names.KAFKA_TOPIC, num_partitions=names.KAFKA_PARTITIONS, replication_factor=1,
                         config={"retention.ms": str(WEEK_MS), "cleanup.policy": "delete"})
        try:
            admin.create_topics([topic], operation_timeout=30, request_timeout=30)[names.KAFKA_TOPIC].result()
            return
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        existing = admin.list_topics(names.KAFKA_TOPIC, timeout=10).topics[names.KAFKA_TOPIC]
        if len(existing.partitions) < names.KAFKA_PARTITIONS:
            admin.create_partitions([NewPartitions(names.KAFKA_TOPIC, names.KAFKA_PARTITIONS)],
                                    request_timeout=30)[names.KAFKA_TOPIC].result()


SERVICE = Kafka("kafka", 9092, extra_ports=(9093,), ready_timeout=90)
