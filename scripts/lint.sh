#!/usr/bin/env bash
# ruff lint (the whole project), ruff format check and mypy (the domain and orchestration: include/ and
# plugins/gait_airflow, settings in pyproject.toml). Part of the test command, before any service starts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/with-env ruff check .
scripts/with-env ruff format --check include plugins
scripts/with-env mypy
