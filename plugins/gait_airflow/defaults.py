"""default_args shared by the gait DAGs: retries with exponential backoff, timeouts, failure logging.

The first retry's delay is the deployment's `[core] default_task_retry_delay` (15 s in config/local.env and the
compose file), not set here: operators tune it like any Airflow setting, and the fault tests shorten it."""

from datetime import timedelta

from gait_airflow.callbacks import log_failure

DEFAULT_ARGS = {
    "owner": "gait-platform",
    "retries": 3,
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(minutes=45),
    "on_failure_callback": log_failure,
}

SENSOR_ARGS = {"mode": "reschedule", "poke_interval": 10, "timeout": 600}
