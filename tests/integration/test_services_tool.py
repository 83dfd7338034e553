"""The local services tool: a second `up` is a no-op, `status` names a dead service, `up` brings it back."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def services(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "services.py"), *args], capture_output=True,
                          text=True, timeout=600)


def test_second_up_is_a_no_op():
    began = time.monotonic()
    result = services("up")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("mosquitto", "kafka", "hdfs-namenode", "hdfs-datanode", "cassandra", "ferretdb"):
        assert f"{name}" in result.stdout and "already running" in result.stdout
    assert result.stdout.count("already running") == 6
    assert time.monotonic() - began < 60


def test_status_reports_memory_and_names_a_dead_service():
    from scripts.localservices import mosquitto

    result = services("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RSS MiB" in result.stdout and "total" in result.stdout
    pid = mosquitto.SERVICE.pid()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    try:
        result = services("status")
        assert result.returncode != 0
        assert "mosquitto" in result.stderr and "DOWN" in result.stdout
        assert "1883" in result.stderr and "mosquitto.log" in result.stderr
    finally:
        restarted = services("up", "mosquitto")
    assert restarted.returncode == 0 and "started" in restarted.stdout, restarted.stdout + restarted.stderr
    assert services("status", "mosquitto").returncode == 0
