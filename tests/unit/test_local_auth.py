"""GAIT_LOCAL_AUTH: off leaves the services and connections exactly as before; on gives scripts/with-env's
connections and the services tool the generated credentials (.local/credentials.env, 0600), never printed.
(tests/integration/test_auth.py runs the auth-enabled services.)"""
from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from scripts.localservices import cassandra, credentials, mosquitto
from scripts.localservices.core import ROOT

PROBE = """
import json, os
from scripts.localservices import cassandra, credentials, mosquitto
conns = {k: json.loads(os.environ[k]) for k in ("AIRFLOW_CONN_MQTT_DEFAULT", "AIRFLOW_CONN_CASSANDRA_DEFAULT")}
on = credentials.enabled()
creds = credentials.load() if on else {}
print(json.dumps({
    "services": [str(mosquitto.SERVICE.credentials), str(cassandra.SERVICE.credentials)],
    "logins": {k: [c.get("login"), "password" in c] for k, c in conns.items()},
    "mqtt_password_matches": conns["AIRFLOW_CONN_MQTT_DEFAULT"].get("password") == creds.get("MQTT_PASSWORD"),
    "cassandra_password_matches":
        conns["AIRFLOW_CONN_CASSANDRA_DEFAULT"].get("password") == creds.get("CASSANDRA_PASSWORD")
        == os.environ.get("CASSANDRA_PASSWORD"),
    "spark_user": os.environ.get("CASSANDRA_USER"),
}))
"""


def with_env(setting: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "CASSANDRA_", "GAIT_"))}
    if setting is not None:
        env["GAIT_LOCAL_AUTH"] = setting
    return subprocess.run([str(ROOT / "scripts" / "with-env"), "python", "-c", PROBE], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_off_by_default_changes_nothing():
    result = with_env(None)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["services"] == ["None", "None"]
    assert seen["logins"] == {"AIRFLOW_CONN_MQTT_DEFAULT": [None, False],
                              "AIRFLOW_CONN_CASSANDRA_DEFAULT": [None, False]}
    assert seen["spark_user"] is None


def test_on_puts_the_generated_logins_in_the_connections_and_prints_no_secret():
    result = with_env("on")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    creds = credentials.load()
    assert seen["services"] == [str(credentials.FILE)] * 2
    assert seen["logins"] == {"AIRFLOW_CONN_MQTT_DEFAULT": [creds["MQTT_USER"], True],
                              "AIRFLOW_CONN_CASSANDRA_DEFAULT": [creds["CASSANDRA_USER"], True]}
    assert seen["mqtt_password_matches"] and seen["cassandra_password_matches"]
    assert seen["spark_user"] == creds["CASSANDRA_USER"]  # spark_jobs/window_means.py reads it
    assert credentials.FILE.stat().st_mode & 0o777 == 0o600
    for secret in (creds["MQTT_PASSWORD"], creds["CASSANDRA_PASSWORD"]):
        assert secret not in result.stdout + result.stderr


def test_a_typo_fails_loudly():
    result = with_env("yes")
    assert result.returncode != 0
    assert "GAIT_LOCAL_AUTH must be 'on' or 'off'" in result.stderr


def test_generated_once_private_and_reused(tmp_path):
    file = tmp_path / "nested" / "credentials.env"
    first = credentials.load(file)
    assert set(first) == {"MQTT_USER", "MQTT_PASSWORD", "CASSANDRA_USER", "CASSANDRA_PASSWORD", "KAFKA_USER",
                          "KAFKA_PASSWORD", "KAFKA_BROKER_PASSWORD", "KAFKA_CONTROLLER_PASSWORD", "MONGO_USER",
                          "MONGO_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD", "REDIS_PASSWORD",
                          "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY",
                          "SPARK_AUTH_SECRET"}
    assert len(set(first[key] for key in credentials.PASSWORDS)) == len(credentials.PASSWORDS)
    assert len(base64.urlsafe_b64decode(first["AIRFLOW_FERNET_KEY"])) == 32  # Fernet's key format
    assert len(first["MQTT_PASSWORD"]) == 32 and first["MQTT_PASSWORD"] != first["CASSANDRA_PASSWORD"]
    assert file.stat().st_mode & 0o777 == 0o600
    assert credentials.load(file) == first
    assert list(file.parent.iterdir()) == [file]  # no draft left behind
    file.chmod(0o644)
    with pytest.raises(credentials.ServiceError, match="chmod 600"):
        credentials.load(file)


def test_configs_with_and_without_auth(tmp_path):
    file = tmp_path / "credentials.env"
    for auth in (None, file):
        broker = mosquitto.Mosquitto("mosquitto", 1883, base=tmp_path / str(bool(auth)), credentials=auth)
        db = cassandra.Cassandra("cassandra", 9042, base=tmp_path / str(bool(auth)), credentials=auth)
        for service in (broker, db):
            for folder in (service.data, service.log.parent, service.run_dir):  # as start() does
                folder.mkdir(parents=True, exist_ok=True)
            service.prepare()
        conf, yaml = broker.conf.read_text(), db.config.read_text()
        if auth is None:
            assert "allow_anonymous true" in conf and "password_file" not in conf
            assert "authenticator: AllowAllAuthenticator" in yaml and "authorizer: AllowAllAuthorizer" in yaml
            assert not any("superuser_setup_delay" in arg for arg in db.command())
        else:
            assert "allow_anonymous false" in conf and f"password_file {broker.password_file}" in conf
            assert "authenticator: PasswordAuthenticator" in yaml and "authorizer: CassandraAuthorizer" in yaml
            hashed = broker.password_file.read_text()
            creds = credentials.load(file)
            assert hashed.startswith(f"{creds['MQTT_USER']}:$") and creds["MQTT_PASSWORD"] not in hashed
            assert broker.password_file.stat().st_mode & 0o777 == 0o600


CLUSTER_PROBE = """
import json, os
from scripts.localservices import credentials, topology
from urllib.parse import urlsplit
kafka = json.loads(os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
mongo = json.loads(os.environ["AIRFLOW_CONN_MONGO_DEFAULT"])
spark = json.loads(os.environ["AIRFLOW_CONN_SPARK_DEFAULT"])
creds = credentials.load()
database = urlsplit(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
broker = urlsplit(os.environ["AIRFLOW__CELERY__BROKER_URL"])
print(json.dumps({
    "database": [database.scheme, database.username, database.password == creds["AIRFLOW_DB_PASSWORD"]],
    "broker": [broker.scheme, broker.password == creds["REDIS_PASSWORD"]],
    "result_backend_has_password": creds["AIRFLOW_DB_PASSWORD"] in os.environ["AIRFLOW__CELERY__RESULT_BACKEND"],
    "shared_secrets": [os.environ[s] == creds[k] for s, k in credentials.AIRFLOW_SECRETS.items()],
    "mongo_login_matches": (mongo["login"], mongo["password"]) == (creds["MONGO_USER"], creds["MONGO_PASSWORD"]),
    "spark_secret_matches": spark["password"] == creds["SPARK_AUTH_SECRET"],
    "file": str(credentials.FILE),
    "services": [s.name for group in topology.groups(topology.current()) for s in group],
    "bootstrap": kafka["bootstrap.servers"], "mechanism": kafka["sasl.mechanism"],
    "kafka_login_matches": (kafka["sasl.username"], kafka["sasl.password"]) == (creds["KAFKA_USER"],
                                                                                creds["KAFKA_PASSWORD"]),
}))
"""


def test_cluster_profile_has_its_own_credentials_and_logs_in_to_kafka():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "CASSANDRA_", "GAIT_"))}
    result = subprocess.run([str(ROOT / "scripts" / "with-env"), "python", "-c", CLUSTER_PROBE],
                            env={**env, "GAIT_TOPOLOGY": "cluster"}, cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["file"] == str(ROOT / ".local" / "cluster" / "credentials.env")
    nodes = {f"{service}-{i}" for service in ("kafka", "cassandra", "hdfs-datanode") for i in (1, 2, 3)}
    airflow = {f"airflow-{name}" for name in ("api-server", "scheduler", "dag-processor", "triggerer", "worker-1",
                                              "worker-2")}
    assert nodes | airflow | {"spark-master", "spark-worker-1", "spark-worker-2", "postgres", "redis"} <= \
        set(seen["services"])
    assert not {"kafka", "cassandra", "hdfs-datanode"} & set(seen["services"])
    assert seen["bootstrap"] == "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
    assert seen["mechanism"] == "SCRAM-SHA-512" and seen["kafka_login_matches"]
    assert seen["database"] == ["postgresql+psycopg2", "airflow", True] and seen["broker"] == ["redis", True]
    assert seen["result_backend_has_password"] and seen["shared_secrets"] == [True] * 3
    assert seen["mongo_login_matches"] and seen["spark_secret_matches"]
    secrets = credentials.load(ROOT / ".local" / "cluster" / "credentials.env")
    assert not [key for key in (*credentials.PASSWORDS, credentials.FERNET_KEY) if secrets[key] in result.stdout]


def test_an_unknown_topology_is_refused_in_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIT_")}
    result = subprocess.run([str(ROOT / "scripts" / "with-env"), "python", str(ROOT / "scripts" / "services.py"),
                             "status"], env={**env, "GAIT_TOPOLOGY": "mesh"}, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1 and result.stderr.strip() == "GAIT_TOPOLOGY must be 'single' or 'cluster', not 'mesh'"


def test_a_file_from_before_a_new_login_gets_it_appended(tmp_path):
    file = tmp_path / "credentials.env"
    file.write_text("MQTT_USER=gait\nMQTT_PASSWORD=kept\nCASSANDRA_USER=parkinson\nCASSANDRA_PASSWORD=kept2\n")
    file.chmod(0o600)
    values = credentials.load(file)
    assert values["MQTT_PASSWORD"] == "kept" and len(values["KAFKA_PASSWORD"]) == 32
    assert credentials.load(file) == values


def test_a_password_goes_into_a_url_that_names_a_host_only():
    assert credentials.with_password("redis://127.0.0.1:6379/0", "s3") == "redis://:s3@127.0.0.1:6379/0"
    assert credentials.with_password("postgresql+psycopg2://airflow@h:5433/airflow", "s3") == \
        "postgresql+psycopg2://airflow:s3@h:5433/airflow"
    creds = {"AIRFLOW_DB_PASSWORD": "db", "REDIS_PASSWORD": "r"}
    single_node = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////tmp/airflow.db",
                   "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    assert credentials.airflow_exports(creds, single_node) == {}  # the single-node profile keeps its own
