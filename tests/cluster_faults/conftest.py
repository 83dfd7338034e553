"""The node-loss suite shares the cluster suite's guard: it runs only on the cluster profile."""
from tests.cluster.conftest import pytest_collection_modifyitems  # noqa: F401
