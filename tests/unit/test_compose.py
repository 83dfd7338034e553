"""docker-compose.airflow.yml: valid for `docker-compose config`, complete, and in step with the local setup.

No Docker engine is needed: `docker-compose config` only parses, interpolates (with .env.example) and validates.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.airflow.yml"
ENV_EXAMPLE = ROOT / ".env.example"
LOCAL_ENV = ROOT / "config" / "local.env"
REQUIREMENTS = ROOT / "requirements.txt"

AIRFLOW_COMPONENTS = {
    "airflow-api-server": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
SERVICES = ["postgres", "mosquitto", "kafka", "namenode", "datanode", "spark-master", "spark-worker",
            "cassandra", "mongo"]
ONE_SHOTS = ["airflow-init", "cassandra-init", "kafka-init", "hdfs-init", "mqtt-init"]
REPO_MOUNTS = {"dags": "/opt/airflow/dags", "plugins": "/opt/airflow/plugins",
               "include": "/opt/airflow/include", "spark_jobs": "/opt/airflow/spark_jobs"}
# ${VAR}, ${VAR:-default}, ${VAR:?message} and friends; "$${" is an escaped literal "${".
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
ONLY_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}$")
SECRET_KEY = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|FERNET|API_KEY|PRIVATE_KEY)", re.IGNORECASE)
FLAG_WITH_PASSWORD = re.compile(r"(?:^|\s)(?:-p|-P|--password|--pass)(?:\s+|=)(\S+)")


def load_names():
    spec = importlib.util.spec_from_file_location("names_for_compose_test", ROOT / "include" / "names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


def strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def walk_strings(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(value, path + (str(key),))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, path + (str(i),))
    elif isinstance(node, str):
        yield path, node


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def mount_targets(service: dict) -> dict[str, str]:
    """target -> source, for both the short "src:dst[:mode]" and the long {source, target} syntax."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume["target"]] = str(volume.get("source", ""))
        else:
            parts = volume.split(":")
            if len(parts) >= 2:
                mounts[parts[1]] = parts[0]
    return mounts


@pytest.fixture(scope="module")
def compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not found on PATH: install it (Debian/Ubuntu: `sudo apt-get install "
                    "docker-compose`) - it validates docker-compose.airflow.yml without a Docker engine")
    return binary


@pytest.fixture(scope="module")
def raw_text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw(raw_text) -> dict:
    return yaml.safe_load(raw_text)


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def config_run(compose_binary, raw_text) -> subprocess.CompletedProcess:
    # Variables set in the caller's shell would override .env.example: drop those the file references.
    referenced = set(REFERENCE.findall(raw_text))
    env = {k: v for k, v in os.environ.items() if k not in referenced and not k.startswith("COMPOSE_")}
    return subprocess.run(
        [compose_binary, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def config(config_run) -> dict:
    assert config_run.returncode == 0, f"docker-compose config failed:\n{config_run.stderr}"
    return yaml.safe_load(config_run.stdout)


# --- docker-compose config ------------------------------------------------------------------------------
def test_docker_compose_config_accepts_the_file(config_run):
    assert config_run.returncode == 0, (
        f"`docker-compose -f {COMPOSE.name} --env-file .env.example config` exited "
        f"{config_run.returncode}:\n{config_run.stderr}")
    assert "services:" in config_run.stdout


def test_header_says_validated_but_not_run(raw_text):
    header = "\n".join(line for line in raw_text.splitlines()[:15] if line.startswith("#"))
    assert "docker-compose config" in header
    assert "NOT RUN" in header.upper()


# --- services ---------------------------------------------------------------------------------------------
def test_all_services_exist(config):
    services = config["services"]
    missing = [name for name in [*AIRFLOW_COMPONENTS, *SERVICES, *ONE_SHOTS] if name not in services]
    assert not missing, f"services missing from {COMPOSE.name}: {missing}"


def test_airflow_components_share_the_common_block(raw, config):
    assert "x-airflow-common" in raw
    images = {config["services"][name].get("image") for name in [*AIRFLOW_COMPONENTS, "airflow-init"]}
    assert len(images) == 1, f"Airflow containers use different images: {images}"
    for name, command in AIRFLOW_COMPONENTS.items():
        service = config["services"][name]
        actual = service["command"] if isinstance(service["command"], str) else " ".join(service["command"])
        assert actual == command, f"{name}: command {actual!r}, expected {command!r}"
        assert env_of(service)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env_of(service)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")


def test_airflow_image_extends_the_official_one(config):
    build = config["services"]["airflow-scheduler"]["build"]
    dockerfile = Path(build["context"]) / build["dockerfile"]
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    text = dockerfile.read_text(encoding="utf-8")
    assert "apache/airflow:3.3.2-python3.11" in text
    assert "requirements.txt" in text and "pip install" in text
    assert re.search(r"(temurin:17|openjdk-17)", text), "the image needs a Java 17 runtime for spark-submit"
    assert build["args"]["AIRFLOW_BASE_IMAGE"] == "apache/airflow:3.3.2-python3.11"


def test_init_migrates_the_database(config):
    init = config["services"]["airflow-init"]
    command = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    scripts = [Path(src) for dst, src in mount_targets(init).items() if dst in command]
    assert scripts and scripts[0].is_file(), "airflow-init should run a script mounted from the repository"
    script = scripts[0]
    assert "airflow db migrate" in script.read_text(encoding="utf-8")
    for name in AIRFLOW_COMPONENTS:
        dependency = config["services"][name]["depends_on"].get("airflow-init", {})
        assert dependency.get("condition") == "service_completed_successfully", name


def test_simple_auth_manager_admin_from_env(raw, config):
    common_env = env_of(raw["x-airflow-common"])
    assert common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].startswith("${AIRFLOW_ADMIN_USER")
    assert common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].endswith(":admin")
    password_file = env_of(config["services"]["airflow-api-server"])[
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    folder = str(Path(password_file).parent)
    for name in [*AIRFLOW_COMPONENTS, "airflow-init"]:
        assert folder in mount_targets(config["services"][name]), f"{name}: {folder} is not on a volume"


def test_repo_folders_mounted_and_importable(config):
    for name in [*AIRFLOW_COMPONENTS, "airflow-init", "mqtt-init"]:
        service = config["services"][name]
        mounts = mount_targets(service)
        for folder, target in REPO_MOUNTS.items():
            assert target in mounts, f"{name}: ./{folder} is not mounted at {target}"
            assert Path(mounts[target]) == ROOT / folder, f"{name}: {target} comes from {mounts[target]}"
        pythonpath = env_of(service)["PYTHONPATH"].split(":")
        # include/ sits in /opt/airflow (import include.names); gait_airflow in /opt/airflow/plugins.
        assert str(Path(REPO_MOUNTS["include"]).parent) in pythonpath, name
        assert REPO_MOUNTS["plugins"] in pythonpath, name


def test_healthchecks_and_conditions(config):
    services = config["services"]
    for name in [*AIRFLOW_COMPONENTS, *SERVICES]:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    conditions = {name: {dep: (spec or {}).get("condition") for dep, spec in
                         (services[name].get("depends_on") or {}).items()}
                  for name in services}
    assert conditions["airflow-scheduler"]["postgres"] == "service_healthy"
    for one_shot in ["mqtt-init", "hdfs-init", "kafka-init", "cassandra-init"]:
        assert conditions["airflow-scheduler"][one_shot] == "service_completed_successfully", one_shot
    assert conditions["datanode"]["namenode"] == "service_healthy"
    assert conditions["spark-worker"]["spark-master"] == "service_healthy"
    assert conditions["cassandra-init"]["cassandra"] == "service_healthy"
    assert conditions["kafka-init"]["kafka"] == "service_healthy"
    for one_shot in ONE_SHOTS:
        assert services[one_shot].get("restart", "no") == "no", f"{one_shot} is a one-shot: restart must be no"


def test_small_heaps(config):
    services = config["services"]
    assert env_of(services["cassandra"])["MAX_HEAP_SIZE"] == "1G"
    assert "-Xmx" in env_of(services["kafka"])["KAFKA_HEAP_OPTS"]


# --- service configuration ----------------------------------------------------------------------------
def test_mosquitto_config(config):
    service = config["services"]["mosquitto"]
    assert service["image"].startswith("eclipse-mosquitto:2")
    mounts = mount_targets(service)
    command = service["command"]
    conf_target = command[command.index("-c") + 1]
    conf = Path(mounts[conf_target])
    settings = {}
    for line in conf.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            settings.setdefault(key, value)
    assert settings["persistence"] == "true"
    assert settings["max_queued_messages"] == "0"
    assert settings["max_inflight_messages"] == "10000"
    assert settings["allow_anonymous"] == "false"
    assert settings.get("password_file"), "mosquitto.conf must set password_file"
    assert "/mosquitto/data" in mounts, "Mosquitto's persistence folder should be on a volume"


def test_kafka_kraft_single_node(config):
    service = config["services"]["kafka"]
    assert service["image"] == "apache/kafka:3.9.1"
    env = env_of(service)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CLIENT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    bootstrap = json.loads(env_of(config["services"]["airflow-scheduler"])["AIRFLOW_CONN_KAFKA_DEFAULT"])
    assert bootstrap["extra"]["bootstrap.servers"] == "kafka:9092"


def test_kafka_clients_authenticate_with_sasl(config, env_example):
    """Every client listener is SASL_PLAINTEXT with PLAIN and the .env login; Airflow's connection, the Spark
    driver's environment and the one-shot/healthcheck tools carry that login."""
    services = config["services"]
    env = env_of(services["kafka"])
    user, password = env_example["KAFKA_USER"], env_example["KAFKA_PASSWORD"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = [item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert listeners and set(listeners) <= set(protocols)
    for name in listeners:
        if name != controller:
            assert protocols[name] == "SASL_PLAINTEXT", f"listener {name} is {protocols[name]}"
            jaas = env[f"KAFKA_LISTENER_NAME_{name}_PLAIN_SASL_JAAS_CONFIG"]
            assert "PlainLoginModule required" in jaas and jaas.endswith(";")
            assert f'username="{user}" password="{password}"' in jaas, "the broker's own login"
            assert f'user_{user}="{password}"' in jaas, "the accepted client login"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] != controller
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "PLAIN"
    # The image turns every KAFKA_* variable into a broker setting: the healthcheck's login is not one of them.
    assert env["PIPELINE_KAFKA_USER"] == user and env["PIPELINE_KAFKA_PASSWORD"] == password
    for name in [*AIRFLOW_COMPONENTS, "airflow-init"]:
        conn_env = env_of(services[name])
        extra = json.loads(conn_env["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
        assert (extra["security.protocol"], extra["sasl.mechanism"]) == ("SASL_PLAINTEXT", "PLAIN"), name
        assert (extra["sasl.username"], extra["sasl.password"]) == (user, password), name
        # spark_jobs/window_means.py (driver in the scheduler) reads these, never a command-line option.
        assert (conn_env["KAFKA_SECURITY_PROTOCOL"], conn_env["KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", "PLAIN")
        assert (conn_env["KAFKA_SASL_USERNAME"], conn_env["KAFKA_SASL_PASSWORD"]) == (user, password), name
    client = ROOT / "docker" / "kafka" / "client.sh"
    for name in ["kafka", "kafka-init"]:
        mounts = mount_targets(services[name])
        assert Path(mounts["/opt/parkinson/kafka-client.sh"]) == client, name
        assert env_of(services[name])["PIPELINE_KAFKA_PASSWORD"] == password, name
    assert "/opt/parkinson/kafka-client.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "/opt/parkinson/kafka-client.sh" in (ROOT / "docker" / "kafka" / "init-topics.sh").read_text()
    script = client.read_text()
    assert "--command-config" in script and "mktemp" in script and "sasl.mechanism=PLAIN" in script


def test_hdfs_webhdfs_redirects_resolve_in_the_network(config):
    services = config["services"]
    for name in ["namenode", "datanode"]:
        assert services[name]["image"].startswith("apache/hadoop:3"), name
    env = env_of(services["datanode"])
    assert env["HDFS-SITE.XML_dfs.datanode.hostname"] == "datanode"
    assert services["datanode"].get("hostname", "datanode") == "datanode"
    assert env["HDFS-SITE.XML_dfs.replication"] == "1"
    assert env["HDFS-SITE.XML_dfs.webhdfs.enabled"] == "true"
    assert env["HDFS-SITE.XML_dfs.namenode.http-address"].endswith(":9870")


def test_hdfs_proxy_user_is_restricted(config, env_example):
    for name in ["namenode", "datanode"]:
        env = env_of(config["services"][name])
        hosts = env["CORE-SITE.XML_hadoop.proxyuser.airflow.hosts"]
        groups = env["CORE-SITE.XML_hadoop.proxyuser.airflow.groups"]
        assert hosts == env_example["HDFS_PROXY_HOSTS"] and groups == env_example["HDFS_PROXY_GROUPS"], name
        assert "*" not in hosts and "*" not in groups, f"{name}: the proxy user may act for anyone from anywhere"


def test_spark_versions_match_pyspark(config, env_example):
    master = config["services"]["spark-master"]
    assert master["image"] == f"apache/spark:{env_example['SPARK_VERSION']}"
    if REQUIREMENTS.is_file():
        pins = dict(re.findall(r"(?im)^([A-Za-z0-9_.-]+)==([^\s;#]+)", REQUIREMENTS.read_text(encoding="utf-8")))
        pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
        assert pins.get("apache-airflow") == "3.3.2", "requirements.txt should pin apache-airflow==3.3.2"
        pyspark = pins.get("pyspark")
        source = "requirements.txt"
    else:  # not locked yet: the installed one is what the lock will pin
        pyspark = metadata.version("pyspark")
        source = "the installed pyspark"
    assert pyspark and pyspark.startswith("4."), f"pyspark 4.x expected, {source} has {pyspark}"
    assert env_example["SPARK_VERSION"] == pyspark, (
        f".env.example SPARK_VERSION={env_example['SPARK_VERSION']} but {source} is pyspark {pyspark}")


def test_cassandra_and_mongo_credentials(config):
    services = config["services"]
    assert services["cassandra"]["image"].startswith("cassandra:5.0")
    entrypoint = mount_targets(services["cassandra"])
    script = next(Path(src) for dst, src in entrypoint.items() if dst.endswith("entrypoint.sh"))
    assert "PasswordAuthenticator" in script.read_text(encoding="utf-8")
    init_mounts = mount_targets(services["cassandra-init"])
    assert Path(init_mounts[env_of(services["cassandra-init"])["SCHEMA_FILE"]]) == ROOT / "include/cql/schema.cql"
    assert services["mongo"]["image"].startswith("mongo:8")
    mongo_env = env_of(services["mongo"])
    assert mongo_env["MONGO_INITDB_ROOT_USERNAME"] and mongo_env["MONGO_INITDB_ROOT_PASSWORD"]


def test_bootstrap_objects_match_names():
    """The one-shots create what include/names.py names (as scripts/services.py up does locally)."""
    names = load_names()
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    kafka = env_of(services["kafka-init"])
    assert kafka["PIPELINE_KAFKA_TOPIC"] == names.KAFKA_TOPIC
    assert int(kafka["PIPELINE_KAFKA_PARTITIONS"]) == names.KAFKA_PARTITIONS
    assert env_of(services["hdfs-init"])["PIPELINE_HDFS_DIRS"].split() == list(names.HDFS_BASE_DIRS)
    assert env_of(services["cassandra-init"])["CASSANDRA_KEYSPACE"] == names.CASSANDRA_KEYSPACE
    assert env_of(services["mongo"])["MONGO_INITDB_DATABASE"] == names.MONGO_DB
    mongo_init = ROOT / "docker" / "mongo" / "init"
    scripts = "\n".join(p.read_text(encoding="utf-8") for p in sorted(mongo_init.glob("*.js")))
    assert f'"{names.MONGO_DB}"' in scripts and f'"{names.METRICS_COLLECTION}"' in scripts


# --- connections ----------------------------------------------------------------------------------------
def test_connections_match_local_env(config):
    local = {k: strip_quotes(v) for k, v in parse_env_file(LOCAL_ENV).items()}
    local_conns = {k: json.loads(v) for k, v in local.items() if k.startswith("AIRFLOW_CONN_")}
    local_vars = [k for k in local if k.startswith("AIRFLOW_VAR_")]
    assert local_conns, f"no AIRFLOW_CONN_* in {LOCAL_ENV}"
    address_keys = {"bootstrap.servers"}
    for name in [*AIRFLOW_COMPONENTS, "airflow-init"]:
        env = env_of(config["services"][name])
        for conn_id, local_conn in local_conns.items():
            assert conn_id in env, f"{name}: {conn_id} (defined in config/local.env) is not set"
            conn = json.loads(env[conn_id])
            assert conn["conn_type"] == local_conn["conn_type"], f"{name}: {conn_id} conn_type"
            assert conn.get("schema") == local_conn.get("schema"), f"{name}: {conn_id} schema"
            for key, value in (local_conn.get("extra") or {}).items():
                assert key in conn.get("extra", {}), f"{name}: {conn_id} lacks extra {key!r}"
                if key not in address_keys:
                    assert conn["extra"][key] == value, f"{name}: {conn_id} extra {key!r}"
            host = str(conn.get("host", ""))
            assert not host.startswith(("127.", "localhost")), f"{name}: {conn_id} points at {host}"
        for var in local_vars:
            assert var in env, f"{name}: {var} (defined in config/local.env) is not set"
    spark = json.loads(env_of(config["services"]["airflow-scheduler"])["AIRFLOW_CONN_SPARK_DEFAULT"])
    master = f"{spark['host']}:{spark['port']}" if spark.get("port") else spark["host"]
    assert master == "spark://spark-master:7077"
    assert spark["extra"]["deploy-mode"] == "client"


# --- secrets and variables ------------------------------------------------------------------------------
def command_lines(node, path=()):
    """command/entrypoint/healthcheck lists joined into one line each, so `-p`, `secret` pairs are seen."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("command", "entrypoint", "test") and isinstance(value, list):
                yield path + (str(key), "joined"), " ".join(str(v) for v in value)
            else:
                yield from command_lines(value, path + (str(key),))


def test_no_secret_literal_in_compose_file(raw):
    """Every password/secret in the file is a ${VAR} from .env: in env values, JSON connections, URLs, flags."""
    problems = []
    for path, value in [*walk_strings(raw), *command_lines(raw)]:
        where = ".".join(path)
        key = path[-1] if path else ""
        if SECRET_KEY.search(key) and not key.upper().endswith(("_FILE", "_PATH")):
            if value and not ONLY_REFERENCE.match(value):
                problems.append(f"{where} = {value!r}")
        if value.lstrip().startswith("{"):
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if isinstance(document, dict):
                for inner_path, inner in walk_strings(document):
                    if inner_path and SECRET_KEY.search(inner_path[-1]) and not ONLY_REFERENCE.match(inner):
                        problems.append(f"{where} JSON {'.'.join(inner_path)} = {inner!r}")
        for match in re.finditer(r"[a-z][a-z0-9+.-]*://([^\s'\"@/]+)@", value):
            userinfo = match.group(1)
            if ":" in userinfo:  # user:password@host
                secret = userinfo.split(":", 1)[1]
                if not ONLY_REFERENCE.match(secret):
                    problems.append(f"{where} URL password {secret!r}")
        for match in FLAG_WITH_PASSWORD.finditer(value):
            secret = strip_quotes(match.group(1))
            if not secret.startswith("$") and not secret.isdigit():  # mosquitto_sub -p is the port
                problems.append(f"{where} flag password {secret!r}")
    assert not problems, "secret-like literals in the compose file:\n" + "\n".join(problems)


def test_required_secrets_fail_loudly(raw_text):
    for variable in ["POSTGRES_PASSWORD", "MQTT_PASSWORD", "CASSANDRA_PASSWORD", "MONGO_ROOT_PASSWORD",
                     "KAFKA_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"]:
        uses = re.findall(r"(?<!\$)\$\{" + variable + r"([^}]*)\}", raw_text)
        assert uses, f"{variable} is not used"
        assert all(use.startswith(":?") for use in uses), f"{variable} should be ${{{variable}:?message}}"


def test_env_example_defines_every_referenced_variable(raw_text, env_example):
    referenced = set(REFERENCE.findall(raw_text))
    bare = re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", raw_text)
    assert not bare, f"use ${{VAR}} (or $$VAR for the container's shell), not $VAR: {sorted(set(bare))}"
    missing = sorted(referenced - set(env_example))
    assert not missing, f".env.example lacks {missing}"
    unused = sorted(set(env_example) - referenced - {"COMPOSE_PROJECT_NAME", "COMPOSE_FILE"})
    assert not unused, f".env.example defines variables the compose file never uses: {unused}"


def test_env_example_has_no_real_secrets(env_example):
    for key, value in env_example.items():
        if SECRET_KEY.search(key) and value:
            assert value.startswith("change-me"), f".env.example {key} should be a change-me placeholder"


def test_shell_snippets_parse(config):
    """The CMD-SHELL healthchecks and inline commands are at least valid shell words."""
    for service in config["services"].values():
        test = (service.get("healthcheck") or {}).get("test") or []
        if test and test[0] == "CMD-SHELL":
            shlex.split(test[1].replace("$$", "$"))
