"""Spark runtime: pyspark's own spark-submit plus the Kafka source and Avro jars, fetched ahead of time; in the
cluster profile also a standalone master and two workers, started with pyspark's own `spark-class`.

`install` copies spark-sql-kafka-0-10 and spark-avro (same version as pyspark) and the dependencies pyspark/jars
lacks into .local/opt/spark-jars; `jars()` lists them for spark-submit --jars. The single-node profile runs the
job in local mode (no daemon).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import credentials as local_credentials
from .core import HOST, OPT, ROOT, Service, ServiceError, get_json, run

JARS = OPT / "spark-jars"
POM_DIR = Path(__file__).resolve().parent / "poms" / "spark-kafka"
KAFKA_SOURCE = "spark-sql-kafka-0-10_2.13"
SPARK_ARTIFACTS = (KAFKA_SOURCE, "spark-avro_2.13")  # the Kafka source, and from_avro for the topic's messages
# Central (as reachable here) has no spark-token-provider-kafka after 4.0.0 (4.1.0-preview1 aside).
# 4.0.0 links against Spark 4.2 except two log keys used only when fetching Kafka delegation tokens
# (Kerberos clusters), which local runs never do.
TOKEN_PROVIDER_FALLBACK = "4.0.0"


def venv_bin() -> Path:
    """The interpreter's bin dir if it has spark-submit, else the project venv's."""
    here = Path(sys.executable).parent
    return here if (here / "spark-submit").exists() else ROOT / ".venv" / "bin"


def spark_submit() -> str:
    path = venv_bin() / "spark-submit"
    if not path.exists():
        raise ServiceError(f"spark: {path} is missing; install pyspark 4.x into the project venv "
                           f"(`make install`), the Airflow provider's pyspark-client has no spark-submit")
    return str(path)


def pyspark_info() -> tuple[str, Path]:
    """(pyspark distribution version, its jars dir), asked of the venv's own Python."""
    code = ("import importlib.metadata as m, json, os, pyspark; "
            "print(json.dumps([m.version('pyspark'), os.path.join(os.path.dirname(pyspark.__file__), 'jars')]))")
    out = subprocess.run([str(venv_bin() / "python"), "-c", code], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise ServiceError(f"spark: cannot import pyspark in {venv_bin()}:\n{out.stderr.strip()[-800:]}")
    version, jars_dir = json.loads(out.stdout)
    if not any(Path(jars_dir).glob(f"spark-core_2.13-{version}.jar")):
        raise ServiceError(f"spark: pyspark {version} metadata does not match {jars_dir} (no spark-core "
                           f"{version} jar); another package overwrote it? reinstall pyspark=={version}")
    return version, Path(jars_dir)


def java_major() -> int:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ServiceError("spark needs Java 17+ (`java` not on PATH and JAVA_HOME unset)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    found = re.search(r'version "(\d+)', out)
    return int(found.group(1)) if found else 0


def artifact_id(jar: str) -> str:
    """`kafka-clients-3.9.2.jar` -> `kafka-clients` (the version starts at the first "-<digit>")."""
    return re.sub(r"-\d.*$", "", jar)


class SparkRuntime:
    name = "spark"

    def missing(self, version: str) -> list[str]:
        """The Spark artifacts of this version not yet in JARS."""
        return [a for a in SPARK_ARTIFACTS if not (JARS / f"{a}-{version}.jar").exists()]

    def installed(self) -> bool:
        try:
            return not self.missing(pyspark_info()[0])
        except ServiceError:
            return False

    def install(self) -> None:
        spark_submit()
        if (major := java_major()) < 17:
            raise ServiceError(f"spark: Java 17+ required, found Java {major or '?'} (set JAVA_HOME)")
        version, shipped = pyspark_info()
        if not self.missing(version):
            return
        OPT.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=OPT) as tmp:
            self._fetch(version, Path(tmp))
            # Drop what pyspark already ships (Spark, Scala, hadoop-client, slf4j, ...), whatever its version.
            have = {artifact_id(p.name) for p in shipped.glob("*.jar")}
            shutil.rmtree(JARS, ignore_errors=True)
            JARS.mkdir(parents=True)
            for jar in Path(tmp).glob("*.jar"):
                if artifact_id(jar.name) not in have:
                    shutil.move(jar, JARS / jar.name)
        if missing := self.missing(version):
            raise ServiceError(f"spark: {', '.join(missing)} {version} missing after the download; see install.log")

    def _fetch(self, version: str, target: Path) -> None:
        def mvn(token_version: str) -> None:
            run(["mvn", "-q", "-B", "-f", str(POM_DIR / "pom.xml"), "dependency:copy-dependencies",
                 f"-DoutputDirectory={target}", "-DincludeScope=runtime", f"-Dspark.version={version}",
                 f"-Dtoken.provider.version={token_version}"], what=f"maven download of {KAFKA_SOURCE}:{version}")

        try:
            mvn(version)
        except ServiceError as exc:
            if "spark-token-provider" not in str(exc) or version == TOKEN_PROVIDER_FALLBACK:
                raise ServiceError(f"{exc}\nIs {KAFKA_SOURCE}:{version} on Maven Central? If not, pin pyspark "
                                   f"to a version that is.") from exc
            mvn(TOKEN_PROVIDER_FALLBACK)

    def jars(self) -> list[str]:
        found = sorted(str(p) for p in JARS.glob("*.jar"))
        if not any(KAFKA_SOURCE in p for p in found):
            raise ServiceError(f"spark: no Kafka source jars in {JARS}; run `scripts/services.py install spark`")
        return found


RUNTIME = SparkRuntime()


def jars() -> list[str]:
    """Jar paths for spark-submit --jars (join with commas)."""
    return RUNTIME.jars()


MASTER_PORT, MASTER_UI_PORT = 7077, 8090  # 8080 is Airflow's api-server
MASTER_URL = f"spark://{HOST}:{MASTER_PORT}"
WORKER_CORES, WORKER_MEMORY = 1, "1g"
# The daemons read the cluster's shared secret from this environment variable (never a command line), and a worker
# hands it to the executors it starts; a driver takes it as a property (plugins/gait_airflow/operators.py).
AUTH_SECRET_ENV = "_SPARK_AUTH_SECRET"


def master_state() -> dict:
    """The master's JSON status (workers, applications), as its web UI serves it."""
    return get_json(f"http://{HOST}:{MASTER_UI_PORT}/json/")


@dataclass(eq=False)
class SparkDaemon(Service):
    """A standalone master or worker in the foreground, from pyspark's spark-class, with a small daemon heap."""

    main_class: str = ""
    arguments: tuple[str, ...] = ()
    credentials: Path | None = None  # RPC authentication with this file's SPARK_AUTH_SECRET (None: off)

    def installed(self) -> bool:
        return (venv_bin() / "spark-class").exists()

    def command(self) -> list[str]:
        return [str(venv_bin() / "spark-class"), self.main_class, *self.arguments]

    def env(self) -> dict[str, str]:
        env = {"SPARK_LOCAL_IP": HOST, "SPARK_DAEMON_MEMORY": "256m", "SPARK_LOG_DIR": str(self.data),
               "SPARK_WORKER_DIR": str(self.data / "work"), "SPARK_LOCAL_DIRS": str(self.data / "tmp")}
        if self.credentials:  # the master's REST submission server takes no login: off
            env.update({"SPARK_DAEMON_JAVA_OPTS": "-Dspark.authenticate=true -Dspark.master.rest.enabled=false",
                        AUTH_SECRET_ENV: local_credentials.load(self.credentials)["SPARK_AUTH_SECRET"]})
        return env


class SparkMaster(SparkDaemon):
    def ready(self) -> bool:
        return master_state().get("status") == "ALIVE"


class SparkWorker(SparkDaemon):
    def state(self) -> dict:
        """The worker's JSON status (its running and finished executors)."""
        return get_json(f"http://{HOST}:{self.extra_ports[0]}/json/")

    def ready(self) -> bool:
        """The master lists this worker as alive."""
        return any(w["port"] == self.port and w["state"] == "ALIVE" for w in master_state()["workers"])


MASTER = SparkMaster("spark-master", MASTER_PORT, extra_ports=(MASTER_UI_PORT,), ready_timeout=90,
                     credentials=local_credentials.FILE, main_class="org.apache.spark.deploy.master.Master",
                     arguments=("--host", HOST, "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT)))
WORKERS = [
    SparkWorker(f"spark-worker-{i}", MASTER_PORT + i, extra_ports=(MASTER_UI_PORT + i,), ready_timeout=90,
                credentials=local_credentials.FILE, main_class="org.apache.spark.deploy.worker.Worker",
                arguments=(MASTER_URL, "--host", HOST, "--port", str(MASTER_PORT + i), "--webui-port",
                           str(MASTER_UI_PORT + i), "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY))
    for i in (1, 2)]
