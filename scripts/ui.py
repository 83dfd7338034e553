"""Start the Airflow UI on the project's DAGs and the local services: `airflow standalone` (api-server,
scheduler, dag-processor, triggerer; LocalExecutor, SQLite) on 127.0.0.1, with one login.

    make ui                      # = scripts/with-env python scripts/ui.py   (port: AIRFLOW_UI_PORT, 8080)

The password is generated once into .local/airflow (git-ignored) and printed with the URL.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from scripts.localservices.airflow import ADMIN as USER
from scripts.localservices.airflow import admin_login as login

ROOT = Path(__file__).resolve().parents[1]


def environment(port: int) -> dict:
    base = f"http://127.0.0.1:{port}"
    return {**os.environ, "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def start(port: int, log_path: Path | None = None) -> subprocess.Popen:
    """`airflow standalone` in its own process group (stop() ends all its components)."""
    output = open(log_path, "ab") if log_path else None  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=environment(port),
                            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT if output else None,
                            start_new_session=True)


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    """Until the api-server answers and the scheduler and dag-processor report healthy."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as response:
                health = json.loads(response.read())
            last = json.dumps(health)
            if all(health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler",
                                                                           "dag_processor")):
                return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(2)
    raise TimeoutError(f"Airflow UI on port {port} not ready after {timeout:.0f}s: {last}")


def stop(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to every component, then SIGKILL to whatever of the group outlives the grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _signal_group(process.pid, 0):
        time.sleep(0.5)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, signum: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(group, signum)
        return True
    except ProcessLookupError:
        return False


def main() -> int:
    port = int(os.environ.get("AIRFLOW_UI_PORT", "8080"))
    user, password = login()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop Airflow's components on SIGTERM too
    process = start(port)
    try:
        wait_ready(port, process)
        print(f"\nAirflow UI: http://127.0.0.1:{port}   login: {user} / {password}\n"
              f"Model report: http://127.0.0.1:{port}/plugin/model-report   (Browse menu)\n"
              "Trigger parkinson_gait_pipeline from its page (the defaults simulate the bundled sample). "
              "Ctrl-C stops Airflow; `make down` stops the services.\n", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(process)


if __name__ == "__main__":
    sys.exit(main())
