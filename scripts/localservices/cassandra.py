"""Cassandra 5.0 from Maven Central jars (cassandra-all + deps), loopback only, small heaps: one node in the
single-node profile, three (127.0.0.1-3, CassandraNode) in the cluster profile. With `credentials` (the
GAIT_LOCAL_AUTH=on file) PasswordAuthenticator + CassandraAuthorizer and a generated role in place of the
built-in cassandra/cassandra superuser."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import credentials as local_credentials
from .core import HOST, OPT, ROOT, Service, ServiceError, maven_fetch, render

if TYPE_CHECKING:
    from cassandra.cluster import Cluster

HOME = OPT / "cassandra"
LIB = HOME / "lib"
POM_DIR = Path(__file__).resolve().parent / "poms" / "cassandra"
SCHEMA = ROOT / "include" / "cql" / "schema.cql"
MAIN = "org.apache.cassandra.service.CassandraDaemon"
PORT, STORAGE_PORT, JMX_PORT = 9042, 7000, 7199
HEAP, DIRECT = "512m", "256m"  # 512m held 200k prepared upserts + a full scan without trouble
BUILTIN = ("cassandra", "cassandra")  # the superuser PasswordAuthenticator creates on a node without roles

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
    return prefix if subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0 else ()


def connect(port: int = PORT, timeout: float = 10.0, login: tuple[str, str] | None = None, host: str = HOST,
            **options: Any) -> Cluster:
    """A driver Cluster pinned to one local node (no load-balancing warning); caller shuts it down."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    if login:
        options["auth_provider"] = PlainTextAuthProvider(*login)
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=timeout)
    return Cluster([host], port=port, connect_timeout=timeout, control_connection_timeout=timeout,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **options)


@dataclass(eq=False)
class Cassandra(Service):
    storage_port: int = STORAGE_PORT
    jmx_port: int = JMX_PORT
    credentials: Path | None = None  # None: AllowAllAuthenticator, anyone may connect

    @property
    def config(self) -> Path:
        return self.run_dir / f"{self.name}.yaml"

    @property
    def logback(self) -> Path:
        return self.run_dir / f"{self.name}-logback.xml"

    def login(self) -> tuple[str, str] | None:
        """The generated role (None when authentication is off)."""
        if not self.credentials:
            return None
        creds = local_credentials.load(self.credentials)
        return creds["CASSANDRA_USER"], creds["CASSANDRA_PASSWORD"]

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
        auth = ("PasswordAuthenticator", "CassandraAuthorizer") if self.credentials else \
            ("AllowAllAuthenticator", "AllowAllAuthorizer")
        render("cassandra.yaml", self.config, data=self.data, port=self.port, storage_port=self.storage_port,
               authenticator=auth[0], authorizer=auth[1], **self.topology())
        render("cassandra-logback.xml", self.logback)
        (self.data / "triggers").mkdir(parents=True, exist_ok=True)  # else a warning at every start

    def topology(self) -> dict[str, object]:
        """One node owning the whole ring."""
        return {"host": self.host, "seeds": f"{self.host}:{self.storage_port}", "token": 0, "hints": "false"}

    def cluster_flags(self) -> list[str]:
        return ["-Dcassandra.shutdown_announce_in_ms=0"]  # one node: no peers to wait for on stop

    def command(self) -> list[str]:
        java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else "java"
        jamm = min(LIB.glob("jamm-*.jar"))
        return [
            *_no_memlock(), java, f"-Xms{HEAP}", f"-Xmx{HEAP}", f"-XX:MaxDirectMemorySize={DIRECT}", *JVM_FLAGS,
            f"-javaagent:{jamm}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={self.config.as_uri()}",
            f"-Dcassandra.storagedir={self.data}",
            f"-Dcassandra.logdir={self.data / 'logs'}",  # audit/fql defaults only; the log itself is stdout
            f"-Dlogback.configurationFile={self.logback}",
            f"-Dcassandra.triggers_dir={self.data / 'triggers'}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.ring_delay_ms=1000",
            # Skip the ~5 s memtable row-overhead measurement at boot; 180 is what 5.0 measures on Java 17.
            "-Dcassandra.memtable.row_overhead_size=180",
            *self.cluster_flags(),
            # With auth: create the built-in superuser at once, not after 10 s (bootstrap replaces it).
            *(["-Dcassandra.superuser_setup_delay_ms=0"] if self.credentials else []),
            # JMX (nodetool) only on loopback; no remote JMX.
            f"-Dcassandra.jmx.local.port={self.jmx_port}", f"-Djava.rmi.server.hostname={HOST}",
            "-cp", str(LIB / "*"), MAIN,
        ]

    def env(self) -> dict[str, str]:
        return {"MALLOC_ARENA_MAX": "4"}

    def ready(self) -> bool:
        # With auth, a fresh node only knows the built-in superuser until bootstrap replaces it.
        logins = [self.login(), BUILTIN] if self.credentials else [None]
        return any(self._answers(login) for login in logins)

    def _answers(self, login: tuple[str, str] | None) -> bool:
        cluster = connect(self.port, host=self.host, timeout=2.0, login=login, schema_metadata_enabled=False,
                          token_metadata_enabled=False)
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
            return row is not None
        except Exception:  # noqa: BLE001 - not listening yet / still starting / login not there yet
            return False
        finally:
            cluster.shutdown()

    def bootstrap(self) -> None:
        """With auth, replace the built-in superuser by the generated role; apply include/cql/schema.cql
        (IF NOT EXISTS statements) and wait for schema agreement."""
        if self.credentials:
            self._replace_builtin_superuser()
        cluster = connect(self.port, host=self.host, timeout=30.0, login=self.login(),
                          max_schema_agreement_wait=60)
        try:
            session = cluster.connect()
            drop_outdated_window_tables(session)
            for statement in [*cql_statements(SCHEMA.read_text()), *self.replication_statements()]:
                session.execute(statement)
            if not cluster.control_connection.wait_for_schema_agreement(wait_time=60):
                raise ServiceError(f"cassandra: no schema agreement after applying {SCHEMA}; see {self.log}")
        finally:
            cluster.shutdown()

    def replication_statements(self) -> list[str]:
        return []  # one node: the schema's own replication (one replica)

    def _replace_builtin_superuser(self) -> None:
        """Create the generated role (superuser, login) as cassandra/cassandra, then drop that one as the new
        role. Role options take no bind markers: the driver quotes the values (%s), nothing is pasted in."""
        login = self.login()
        if not self._answers(login):
            if not self._answers(BUILTIN):
                raise ServiceError(
                    f"{self.name}: neither the role in {self.credentials} nor the built-in superuser can log in "
                    f"(was the credentials file replaced after the role was made?); restore the file or wipe "
                    f"the node with `scripts/services.py reset {self.name}`; see {self.log}")
            cluster = connect(self.port, host=self.host, timeout=30.0, login=BUILTIN)
            try:
                cluster.connect().execute("CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = %s AND LOGIN = true "
                                          "AND SUPERUSER = true", login)
            finally:
                cluster.shutdown()
        cluster = connect(self.port, host=self.host, timeout=30.0, login=login)
        try:
            cluster.connect().execute("DROP ROLE IF EXISTS %s", (BUILTIN[0],))
        finally:
            cluster.shutdown()


def drop_outdated_window_tables(session) -> None:
    """Window tables made before window_size joined their clustering key (so that windows of several sizes
    coexist) cannot be altered in place: drop them (their rows are derived: re-run spark_window_means for a
    batch to refill it) and let the schema create them anew."""
    from include import names

    for table in (names.WINDOW_TABLE, names.FEATURE_TABLE):
        kinds = {row.column_name: row.kind for row in session.execute(
            "SELECT column_name, kind FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (names.CASSANDRA_KEYSPACE, table))}
        if kinds and kinds.get("window_size") != "clustering":
            print(f"  cassandra: {names.CASSANDRA_KEYSPACE}.{table} predates window_size in its key; dropped and "
                  "re-created (re-run spark_window_means to refill its windows)", flush=True)
            session.execute(f"DROP TABLE IF EXISTS {names.CASSANDRA_KEYSPACE}.{table}")


SERVICE = Cassandra("cassandra", PORT, extra_ports=(STORAGE_PORT,), ready_timeout=180,
                    credentials=local_credentials.local_file())

CLUSTER_NODES = 3
CLUSTER_REPLICATION = 3
DATA_CENTRE = "datacenter1"  # SimpleSnitch's one data centre
# Evenly spaced Murmur3 tokens, one per node (ccm's): nothing bootstraps, the nodes start together.
TOKENS = [-(2**63) + i * (2**64 // CLUSTER_NODES) for i in range(CLUSTER_NODES)]


@dataclass(eq=False)
class CassandraNode(Cassandra):
    """Node `node_id` of the cluster profile: 127.0.0.<node_id> on the usual ports, a preset token, every node a
    seed, hints on; the pipeline keyspace and system_auth replicated to all three (NetworkTopologyStrategy)."""

    node_id: int = 1

    def topology(self) -> dict[str, object]:
        seeds = ",".join(f"127.0.0.{i}:{self.storage_port}" for i in range(1, CLUSTER_NODES + 1))
        return {"host": self.host, "seeds": seeds, "token": TOKENS[self.node_id - 1], "hints": "true"}

    def cluster_flags(self) -> list[str]:
        # system_auth gets three replicas before the first start (roles are read at QUORUM for logins).
        return [f"-Dcassandra.system_auth.default_rf={CLUSTER_REPLICATION}"]

    def ready(self) -> bool:
        """The node listens for CQL clients (the last step of its start). Logins wait for bootstrap: the roles
        are read at QUORUM, which needs two of the three nodes."""
        from .core import port_open

        return port_open(self.port, self.host)

    def bootstrap(self) -> None:
        if self.node_id == 1:  # once for the cluster, with every node up
            super().bootstrap()

    def replication_statements(self) -> list[str]:
        from include import names

        replication = f"{{'class': 'NetworkTopologyStrategy', '{DATA_CENTRE}': {CLUSTER_REPLICATION}}}"
        return [f"ALTER KEYSPACE {keyspace} WITH replication = {replication}"
                for keyspace in (names.CASSANDRA_KEYSPACE, "system_auth")]


CLUSTER = [CassandraNode(f"cassandra-{i}", PORT, extra_ports=(STORAGE_PORT,), ready_timeout=300,
                         credentials=local_credentials.local_file(), host=f"127.0.0.{i}",
                         jmx_port=JMX_PORT + 100 * (i - 1), node_id=i)
           for i in range(1, CLUSTER_NODES + 1)]
