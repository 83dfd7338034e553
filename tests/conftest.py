"""Shared test set-up. Tests run through scripts/with-env (config/local.env), so connections and
AIRFLOW_HOME point at the project's local services and folders."""
import os

import pytest


def pytest_configure(config):
    if "AIRFLOW_HOME" not in os.environ:
        raise pytest.UsageError("run tests through `scripts/with-env python -m pytest` (or `make test`) so the "
                                "project's settings in config/local.env are loaded")


@pytest.fixture(autouse=True)
def no_run_left_behind():
    """A test that fails or times out mid-run leaves no `airflow dags test` of tests/faults/harness.py running."""
    import sys

    yield
    harness = sys.modules.get("tests.faults.harness")
    if harness:
        harness.kill_leftovers()


@pytest.fixture(scope="session")
def sample_run() -> dict:
    """The session's one run of the main DAG on the bundled sample (tests/sample_batch.py)."""
    from tests.sample_batch import run_sample_batch

    return run_sample_batch()


def pytest_terminal_summary(terminalreporter):
    """Figures the fault and load suites measured (tests/reports.py), when they ran."""
    import sys

    reports = sys.modules.get("tests.reports")
    for title, lines in (reports.SECTIONS.items() if reports else []):
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(line)
