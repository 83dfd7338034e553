"""HDFS from Maven Central jars: one NameNode and its DataNode JVMs sharing a conf dir, WebHDFS on 9870. One
DataNode in the single-node profile; three, told apart by port (not by loopback address: the NameNode keys a
DataNode by the source address of its registration, 127.0.0.1 for all), with three replicas in the cluster."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import core
from .core import HOST, LOGS, OPT, RUN, Service, render

if TYPE_CHECKING:
    from hdfs import InsecureClient

HOME = OPT / "hadoop"
LIB = HOME / "lib"
CONF = RUN / "hadoop-conf"
POM_DIR = Path(__file__).resolve().parent / "poms" / "hadoop"
RPC_PORT, HTTP_PORT = 8020, 9870
DN_PORT, DN_HTTP_PORT, DN_IPC_PORT = 9866, 9864, 9867
WEBHDFS_URL = f"http://{HOST}:{HTTP_PORT}"

# Hadoop on Java 17: reflective access its RPC, security and NIO code needs (from Hadoop's own scripts).
ADD_OPENS = [f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in (
    "java.io", "java.lang", "java.lang.reflect", "java.math", "java.net", "java.nio", "java.text",
    "java.util", "java.util.concurrent", "java.util.zip", "sun.nio.ch", "sun.security.util",
    "sun.security.x509")]

def _get(path: str) -> dict:
    return core.get_json(f"{WEBHDFS_URL}{path}")


def _jmx(bean: str) -> dict:
    """One NameNode JMX bean's attributes."""
    return _get(f"/jmx?qry=Hadoop:service=NameNode,name={bean}")["beans"][0]


# Cluster profile: a DataNode lost is noticed within seconds (stale after 3 s, dead after 20 s) and writes go on
# with the nodes left (with three nodes no replacement can be found; hdfs-default.xml advises NEVER). A copy the
# NameNode asked for while a node was going down is asked again after 15 s, not 5 min: the blocks written during the
# loss get their third replica soon after the node is back.
CLUSTER_PROPERTIES = {
    "dfs.heartbeat.interval": "1",
    "dfs.namenode.heartbeat.recheck-interval": "5000",
    "dfs.namenode.stale.datanode.interval": "3000",
    "dfs.namenode.avoid.read.stale.datanode": "true",
    "dfs.namenode.avoid.write.stale.datanode": "true",
    "dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
    "dfs.namenode.redundancy.considerLoad": "false",
    "dfs.namenode.reconstruction.pending.timeout-sec": "15",
}


@dataclass(eq=False)
class _Hdfs(Service):
    """What NameNode and DataNodes share: one install, one conf dir, the JVM command line."""

    replication: int = 1  # dfs.replication; more than one turns the cluster properties on
    main_class = ""

    def installed(self) -> bool:
        return any(LIB.glob("hadoop-hdfs-[0-9]*.jar")) and any(LIB.glob("hadoop-common-[0-9]*.jar"))

    def install(self) -> None:
        core.maven_fetch(POM_DIR, LIB, "hadoop")

    def prepare(self) -> None:
        namenode, datanode = self.base / "data" / "hdfs-namenode", self.base / "data" / "hdfs-datanode"
        cluster = CLUSTER_PROPERTIES if self.replication > 1 else {}
        properties = "\n".join(f"  <property><name>{k}</name><value>{v}</value></property>" for k, v in cluster.items())
        values = dict(host=HOST, rpc_port=RPC_PORT, http_port=HTTP_PORT, dn_port=DN_PORT,
                      dn_http_port=DN_HTTP_PORT, dn_ipc_port=DN_IPC_PORT, tmp_dir=namenode / "tmp",
                      name_dir=namenode / "name", data_dir=datanode / "data", replication=self.replication,
                      cluster_properties=properties)
        for template in ("core-site.xml", "hdfs-site.xml"):
            render(template, CONF / template, **values)
        render("hadoop-log4j.properties", CONF / "log4j.properties")

    def java(self, *args: str) -> list[str]:
        # C1 only: ~40% less CPU to start on 2 cores; plenty for a dev cluster.
        return ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+IgnoreUnrecognizedVMOptions", *ADD_OPENS,
                "-Djava.net.preferIPv4Stack=true", f"-Dproc_{self.name}",
                f"-Dlog4j.configuration=file:{CONF / 'log4j.properties'}",
                f"-Dhadoop.log.dir={LOGS}", f"-Dhadoop.home.dir={HOME}",
                "-cp", f"{CONF}:{LIB}/*", self.main_class, *args]

    def command(self) -> list[str]:
        return self.java()


class NameNode(_Hdfs):
    main_class = "org.apache.hadoop.hdfs.server.namenode.NameNode"

    def prepare(self) -> None:
        super().prepare()
        name_dir = self.data / "name"
        if not name_dir.is_dir() or not any(name_dir.iterdir()):  # format once, keep data afterwards
            core.run(self.java("-format", "-force", "-nonInteractive", "-clusterid", "local"),
                     log=self.log, cwd=self.data, what="HDFS NameNode format")

    def ready(self) -> bool:
        # WebHDFS answers a real filesystem call, and safe mode is off (writes would fail otherwise).
        _get("/webhdfs/v1/?op=GETFILESTATUS&user.name=root")["FileStatus"]
        return _jmx("FSNamesystemState").get("FSState") == "Operational"


@dataclass(eq=False)
class DataNode(_Hdfs):
    """DataNode `index` (from 1): its ports are the usual ones + 100 per index after the first."""

    index: int = 1
    main_class = "org.apache.hadoop.hdfs.server.datanode.DataNode"

    def command(self) -> list[str]:
        shift = 100 * (self.index - 1)
        return self.java(
            "-D", f"dfs.datanode.address={HOST}:{DN_PORT + shift}",
            "-D", f"dfs.datanode.http.address={HOST}:{DN_HTTP_PORT + shift}",
            "-D", f"dfs.datanode.ipc.address={HOST}:{DN_IPC_PORT + shift}",
            "-D", f"dfs.datanode.data.dir=file://{self.data / 'data'}")

    def ready(self) -> bool:
        if int(_jmx("FSNamesystemState").get("NumLiveDataNodes", 0)) < self.index:
            return False
        # A real write through the WebHDFS redirect to this DataNode, read back, then removed.
        fs = client()
        probe = f"/tmp/localservices-probe-{self.name}"
        fs.write(probe, data=b"ok", overwrite=True)
        with fs.read(probe) as reader:
            body = reader.read()
        fs.delete(probe)
        return body == b"ok"

    def bootstrap(self) -> None:
        """The pipeline's base directories (mkdir -p semantics: a no-op when present)."""
        from include import names

        fs = client()
        for folder in names.HDFS_BASE_DIRS:
            fs.makedirs(folder)


def client() -> InsecureClient:
    """The WebHDFS client Airflow's WebHDFSHook uses (the `hdfs` package)."""
    import requests
    from hdfs import InsecureClient

    session = requests.Session()
    session.trust_env = False  # loopback: ignore proxy variables
    return InsecureClient(WEBHDFS_URL, user="root", timeout=10, session=session)


NAMENODE = NameNode("hdfs-namenode", HTTP_PORT, ready_timeout=120, extra_ports=(RPC_PORT,))
DATANODE = DataNode("hdfs-datanode", DN_HTTP_PORT, ready_timeout=120, extra_ports=(DN_PORT, DN_IPC_PORT))

CLUSTER_REPLICATION = 3
CLUSTER_NAMENODE = NameNode("hdfs-namenode", HTTP_PORT, ready_timeout=120, extra_ports=(RPC_PORT,),
                            replication=CLUSTER_REPLICATION)
CLUSTER_DATANODES = [
    DataNode(f"hdfs-datanode-{i}", DN_HTTP_PORT + 100 * (i - 1), ready_timeout=120,
             extra_ports=(DN_PORT + 100 * (i - 1), DN_IPC_PORT + 100 * (i - 1)), replication=CLUSTER_REPLICATION,
             index=i)
    for i in range(1, CLUSTER_REPLICATION + 1)]
