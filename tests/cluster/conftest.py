"""The cluster suite runs only on the cluster profile (GAIT_TOPOLOGY=cluster: `make cluster-test`, and the cluster
phase of `make test`)."""
import os

import pytest


def pytest_collection_modifyitems(config, items):
    if any("tests/cluster/" in str(item.fspath) for item in items) and os.environ.get("GAIT_TOPOLOGY") != "cluster":
        raise pytest.UsageError("tests/cluster needs the cluster profile: run `make cluster-test` (or set "
                                "GAIT_TOPOLOGY=cluster for scripts/with-env and `make cluster-up` first)")
