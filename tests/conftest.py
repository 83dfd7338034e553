"""Shared test set-up. Tests run through scripts/with-env (config/local.env), so connections and
AIRFLOW_HOME point at the project's local services and folders."""
import os

import pytest


def pytest_configure(config):
    if "AIRFLOW_HOME" not in os.environ:
        raise pytest.UsageError("run tests through `scripts/with-env python -m pytest` (or `make test`) so the "
                                "project's settings in config/local.env are loaded")
