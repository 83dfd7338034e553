"""How a DAG task runs a stage: with the services built from Airflow connections, and with the stage's outcome
in Airflow's terms. Every stage addresses its inputs and outputs by the batch id (from the run's logical
date), so any task can run alone (`airflow tasks test <dag> <task> <date>`) and a re-run replaces its output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msgspec import Struct, to_builtins

from gait_airflow.clients import AirflowServices
from include.errors import BadInput, NothingToDo


def run_stage(stage: Callable[..., Any], *args: Any) -> Any:
    """Deterministic errors (include.errors.BadInput) fail the task at once, without retries, with one readable
    line; NothingToDo skips it; every other error (a service down, a timeout) is left to the task's retries."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        result = stage(AirflowServices(), *args)
    except BadInput as exc:
        raise AirflowFailException(f"{stage.__name__}: {exc} (a deterministic error: not retried)") from exc
    except NothingToDo as exc:
        raise AirflowSkipException(str(exc)) from exc
    return to_builtins(result, str_keys=True) if isinstance(result, Struct) else result  # a record: its XCom value
