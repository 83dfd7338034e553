"""Airflow's own processes (cluster profile): the api-server, scheduler, dag-processor, triggerer and two Celery
workers, from the project venv. Their settings come from config/cluster.env (PostgreSQL, CeleryExecutor on Redis)
and the secrets scripts/with-env adds; every process shares them, so any of them may run on another host.

Each is ready when it says so itself: the api-server's health answer for the metadata database, the scheduler,
the dag-processor and the triggerer; a Celery worker's answer to a Celery ping.
"""
from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .core import HOST, LOOPBACK_HTTP, ROOT, Service, ServiceError, get_json, run

API_PORT = 8080
ADMIN = "admin"


def airflow_binary() -> Path:
    return ROOT / ".venv" / "bin" / "airflow"


def health() -> dict:
    """The api-server's public health answer: each component's status and latest heartbeat."""
    return get_json(f"http://{HOST}:{API_PORT}/api/v2/monitor/health")


def passwords_file() -> Path:
    return Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"


def admin_login() -> tuple[str, str]:
    """The UI and REST API user and its password (created on first use; Airflow's simple auth manager reads the
    file, and AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS names the user)."""
    path = passwords_file()
    stored = json.loads(path.read_text()) if path.exists() else {}
    if ADMIN not in stored:
        stored[ADMIN] = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    return ADMIN, stored[ADMIN]


@dataclass(eq=False)
class AirflowProcess(Service):
    args: tuple[str, ...] = ()
    component: str = ""  # its name in the api-server's health answer
    settings: dict[str, str] = field(default_factory=dict)  # this process's own Airflow settings

    def installed(self) -> bool:
        return airflow_binary().exists()

    def install(self) -> None:
        if not self.installed():
            raise ServiceError(f"{self.name}: {airflow_binary()} is missing; run `make install`")

    def command(self) -> list[str]:
        return [str(airflow_binary()), *self.args]

    def env(self) -> dict[str, str]:
        return {"MALLOC_ARENA_MAX": "2", **self.settings}

    def ready(self) -> bool:
        return health()[self.component]["status"] == "healthy"


class ApiServer(AirflowProcess):
    def prepare(self) -> None:
        """The metadata database's schema (idempotent) and the admin's password, before the first process."""
        admin_login()
        run([str(airflow_binary()), "db", "migrate"], log=self.log, what="airflow db migrate")


@dataclass(eq=False)
class CeleryWorker(AirflowProcess):
    @property
    def node_name(self) -> str:
        return f"{self.name}@{self.host}"

    def command(self) -> list[str]:
        return [*super().command(), "celery", "worker", "--celery-hostname", self.node_name, "--without-gossip"]

    def ready(self) -> bool:
        """A Celery ping over the broker (a bare Celery app: importing Airflow's would set up Airflow's logging
        in this tool)."""
        from celery import Celery

        with Celery(broker=os.environ["AIRFLOW__CELERY__BROKER_URL"]) as app:
            return bool(app.control.ping(destination=[self.node_name], timeout=1.0))


API_SERVER = ApiServer("airflow-api-server", API_PORT, ready_timeout=180, component="metadatabase",
                       args=("api-server", "--host", HOST, "--port", str(API_PORT), "--workers", "1"))
SCHEDULER = AirflowProcess("airflow-scheduler", 8974, ready_timeout=120, component="scheduler", args=("scheduler",),
                           settings={"AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                                     "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": HOST})
DAG_PROCESSOR = AirflowProcess("airflow-dag-processor", 0, ready_timeout=120, component="dag_processor",
                               args=("dag-processor",))
TRIGGERER = AirflowProcess("airflow-triggerer", 8794, ready_timeout=120, component="triggerer", args=("triggerer",))
# Each worker serves its task logs on its own port.
WORKERS = [CeleryWorker(f"airflow-worker-{i}", port, ready_timeout=120,
                        settings={"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)})
           for i, port in ((1, 8793), (2, 8795))]
CLUSTER = [API_SERVER, SCHEDULER, DAG_PROCESSOR, TRIGGERER, *WORKERS]


class RestClient:
    """Airflow's public REST API as the admin (what the UI's Trigger button and an operator's scripts call)."""

    def __init__(self, base: str = f"http://{HOST}:{API_PORT}") -> None:
        self.base = base
        user, password = admin_login()
        self.token = self._call("POST", "/auth/token", {"username": user, "password": password},
                                token=None)["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, token: str | None = "") -> dict:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with LOOPBACK_HTTP.open(request, timeout=30) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"Airflow API {method} {path}: HTTP {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(text) if text else {}

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)

    def delete(self, path: str) -> dict:
        return self._call("DELETE", path)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict:
        """The run once it has ended (success or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        raise ServiceError(f"{dag_id} run {run_id} did not end within {timeout:.0f}s (state {run['state']})")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return self.get(path)["task_instances"]
