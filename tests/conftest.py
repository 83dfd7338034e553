"""Shared test set-up. Tests run through scripts/with-env (config/local.env), so connections and
AIRFLOW_HOME point at the project's local services and folders."""
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "full_faults: fault cases only `make faults` runs (too long for `make test`)")
    if "AIRFLOW_HOME" not in os.environ:
        raise pytest.UsageError("run tests through `scripts/with-env python -m pytest` (or `make test`) so the "
                                "project's settings in config/local.env are loaded")


def pytest_terminal_summary(terminalreporter):
    """Figures the fault and load suites measured (tests/reports.py), when they ran."""
    import sys

    reports = sys.modules.get("tests.reports")
    for title, lines in (reports.SECTIONS.items() if reports else []):
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(line)
