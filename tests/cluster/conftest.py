"""The cluster suites (tests/cluster, tests/cluster_faults) run only on the cluster profile (GAIT_TOPOLOGY=cluster:
`make cluster-test`, `make cluster-faults`, and the cluster phase of `make test`)."""
import os

import pytest

SUITES = ("/tests/cluster/", "/tests/cluster_faults/")


def pytest_collection_modifyitems(config, items):
    on_cluster = os.environ.get("GAIT_TOPOLOGY") == "cluster"
    if not on_cluster and any(suite in str(item.fspath) for item in items for suite in SUITES):
        raise pytest.UsageError("tests/cluster and tests/cluster_faults need the cluster profile: run `make "
                                "cluster-test` or `make cluster-faults` (or set GAIT_TOPOLOGY=cluster for "
                                "scripts/with-env and `make cluster-up` first)")
