"""Cassandra 5.0 single node from Maven Central jars (cassandra-all + deps), loopback only, small heap."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import HOST, OPT, ROOT, RUN, Service, ServiceError, maven_fetch, render

if TYPE_CHECKING:
    from cassandra.cluster import Cluster

HOME = OPT / "cassandra"
LIB = HOME / "lib"
POM_DIR = Path(__file__).resolve().parent / "poms" / "cassandra"
SCHEMA = ROOT / "include" / "cql" / "schema.cql"
CONFIG = RUN / "cassandra.yaml"
LOGBACK = RUN / "cassandra-logback.xml"
MAIN = "org.apache.cassandra.service.CassandraDaemon"
PORT, STORAGE_PORT, JMX_PORT = 9042, 7000, 7199
HEAP, DIRECT = "512m", "256m"  # 512m held 200k prepared upserts + a full scan without trouble

# From Cassandra's conf/jvm-server.options and conf/jvm17-server.options (Java 17).
_EXPORTS = ["java.base/jdk.internal.misc", "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry", "java.rmi/sun.rmi.server", "java.sql/java.sql",
            "java.base/java.lang.ref", "jdk.unsupported/sun.misc", "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach"]
_OPENS = [*(f"java.base/{p}" for p in ("java.lang.module", "jdk.internal.loader", "jdk.internal.ref",
                                      "jdk.internal.reflect", "jdk.internal.math", "jdk.internal.module",
                                      "jdk.internal.util.jar", "sun.nio.ch", "java.io", "java.lang.reflect",
                                      "java.lang", "java.util", "java.nio")),
          "jdk.management/com.sun.management.internal", "jdk.compiler/com.sun.tools.javac"]
JVM_FLAGS = [
    "-ea", "-da:net.openhft...", "-Xss256k", "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1", "-XX:MaxGCPauseMillis=300", "-XX:+PerfDisableSharedMem",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true", "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true", "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    *(f"--add-exports={m}=ALL-UNNAMED" for m in _EXPORTS),
    *(f"--add-opens={m}=ALL-UNNAMED" for m in _OPENS),
]


def cql_statements(text: str) -> list[str]:
    """Split a CQL script: a ';' at line end closes a statement; '--' comment lines are skipped."""
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if current:
        statements.append("\n".join(current).strip())
    return statements


@functools.cache
def _no_memlock() -> tuple[str, ...]:
    """As root, Cassandra's mlockall() pins the whole heap (RSS = -Xmx from the start). Dropping
    CAP_IPC_LOCK (when setpriv may) makes it fail softly, as it does for ordinary users."""
    prefix = ("setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return ()
    return prefix if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0 else ()


def connect(port: int = PORT, timeout: float = 10.0, **options: Any) -> Cluster:
    """A driver Cluster pinned to the local node (no load-balancing warning); caller shuts it down."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([HOST]), request_timeout=timeout)
    return Cluster([HOST], port=port, connect_timeout=timeout, control_connection_timeout=timeout,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **options)


class Cassandra(Service):
    def installed(self) -> bool:
        return any(LIB.glob("cassandra-all-*.jar")) and any(LIB.glob("jamm-*.jar"))

    def install(self) -> None:
        if self.installed():
            return
        shutil.rmtree(LIB, ignore_errors=True)  # a half-finished copy would make maven_fetch skip
        maven_fetch(POM_DIR, LIB, "cassandra")
        if not self.installed():
            raise ServiceError(f"cassandra: Maven finished but {LIB} lacks cassandra-all/jamm jars")

    def prepare(self) -> None:
        render("cassandra.yaml", CONFIG, data=self.data, port=self.port, storage_port=STORAGE_PORT)
        render("cassandra-logback.xml", LOGBACK)
        (self.data / "triggers").mkdir(parents=True, exist_ok=True)  # else a warning at every start

    def command(self) -> list[str]:
        java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else "java"
        jamm = min(LIB.glob("jamm-*.jar"))
        return [
            *_no_memlock(), java, f"-Xms{HEAP}", f"-Xmx{HEAP}", f"-XX:MaxDirectMemorySize={DIRECT}", *JVM_FLAGS,
            f"-javaagent:{jamm}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={CONFIG.as_uri()}",
            f"-Dcassandra.storagedir={self.data}",
            f"-Dcassandra.logdir={self.data / 'logs'}",  # audit/fql defaults only; the log itself is stdout
            f"-Dlogback.configurationFile={LOGBACK}",
            f"-Dcassandra.triggers_dir={self.data / 'triggers'}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.ring_delay_ms=1000",
            # Skip the ~5 s memtable row-overhead measurement at boot; 180 is what 5.0 measures on Java 17.
            "-Dcassandra.memtable.row_overhead_size=180",
            "-Dcassandra.shutdown_announce_in_ms=0",  # one node: no peers to wait for on stop
            # JMX (nodetool) only on loopback; no remote JMX.
            f"-Dcassandra.jmx.local.port={JMX_PORT}", f"-Djava.rmi.server.hostname={HOST}",
            "-cp", str(LIB / "*"), MAIN,
        ]

    def env(self) -> dict[str, str]:
        return {"MALLOC_ARENA_MAX": "4"}

    def ready(self) -> bool:
        cluster = connect(self.port, timeout=2.0, schema_metadata_enabled=False, token_metadata_enabled=False)
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
            return row is not None
        except Exception:  # noqa: BLE001 - not listening yet / still starting
            return False
        finally:
            cluster.shutdown()

    def bootstrap(self) -> None:
        """Apply include/cql/schema.cql (IF NOT EXISTS statements) and wait for schema agreement."""
        cluster = connect(self.port, timeout=30.0, max_schema_agreement_wait=60)
        try:
            session = cluster.connect()
            for statement in cql_statements(SCHEMA.read_text()):
                session.execute(statement)
            if not cluster.control_connection.wait_for_schema_agreement(wait_time=60):
                raise ServiceError(f"cassandra: no schema agreement after applying {SCHEMA}; see {self.log}")
        finally:
            cluster.shutdown()


SERVICE = Cassandra("cassandra", PORT, extra_ports=(STORAGE_PORT,), ready_timeout=180)
