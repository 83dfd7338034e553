"""`airflow dags test` in this process, with one pause point added to the pipeline's code, for the fault tests.

    FAULT_PAUSE=<point>:<n> FAULT_DIR=<dir> python -m tests.faults.dag_runner dags test <dag> <date> --conf ...

At the n-th call of the point the run writes <dir>/paused and waits until <dir>/release exists, so the test can
stop, restart or kill something at an exact moment (the task runs in this process: `dags test` runs tasks in
line). Later calls (the retries) run unpaused. Points:
  after_ack    the capture acknowledged its n-th chunk (part of the batch landed, the rest still queued)
  before_ack   the capture landed its n-th chunk in HDFS but has not acknowledged it
  before_land  the capture drained everything and is about to write the batch's final files
  produce      the replay is about to produce its n-th message to Kafka
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

RELEASE_TIMEOUT = 600.0


def pause(point: str) -> None:
    folder = Path(os.environ["FAULT_DIR"])
    (folder / "paused").write_text(f"{point} {os.getpid()}\n")
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while not (folder / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"fault test never released pause point {point}")
        time.sleep(0.05)


def install(spec: str) -> None:
    point, n = spec.split(":")
    at = int(n)
    calls = 0

    def due() -> bool:
        nonlocal calls
        calls += 1
        return calls == at

    from include import capture

    if point in ("after_ack", "before_ack"):
        acknowledge = capture.acknowledge

        def paused_acknowledge(client, messages):
            hit = due()
            if hit and point == "before_ack":
                pause(point)
            acknowledge(client, messages)
            if hit and point == "after_ack":
                pause(point)

        capture.acknowledge = paused_acknowledge
    elif point == "before_land":
        land = capture.land

        def paused_land(*args, **kwargs):
            if due():
                pause(point)
            return land(*args, **kwargs)

        capture.land = paused_land
    elif point == "produce":
        from gait_airflow import clients

        make_producer = clients.kafka_producer

        class PausingProducer:
            def __init__(self, producer) -> None:
                self._producer = producer

            def produce(self, *args, **kwargs):
                if due():
                    pause(point)
                return self._producer.produce(*args, **kwargs)

            def __getattr__(self, name):
                return getattr(self._producer, name)

        clients.kafka_producer = lambda *a, **kw: PausingProducer(make_producer(*a, **kw))
    else:
        raise SystemExit(f"unknown pause point {point!r}")


def main() -> int:
    if os.environ.get("FAULT_PAUSE"):
        install(os.environ["FAULT_PAUSE"])
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[1:]]
    return airflow_main() or 0


if __name__ == "__main__":
    sys.exit(main())
