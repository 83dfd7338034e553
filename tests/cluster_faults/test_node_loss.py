"""Node loss on the cluster profile: one node SIGKILLed (no clean stop) at an exact moment of a real run that the
scheduler and the Celery workers execute, then started again. Every case ends with the common checks: the run
succeeded, exact counts at every hop, the Kafka range equal to the landed lines, every Cassandra window equal to
the numpy reference, one metrics document. The report (failed tries, time added against a fault-free run of the
same profile, how long the node was down) goes to test-artifacts/cluster-faults/report.json and the README.

The moment is read from the run itself: a task's state through the REST API, or a line of its live log (the Spark
job prints each phase as it starts)."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from include import names
from include.layout import batch_id
from scripts.localservices import airflow, cassandra, hdfs, kafka, spark
from scripts.localservices.core import Service
from scripts.localservices.kafka import KafkaNode
from tests import reports
from tests.cluster_runs import (
    DAG_ID,
    FAULT_FREE_RUN_SECONDS,
    SchedulerRun,
    assert_batch_exact,
    collect,
    fresh_logical_date,
    kafka_client_config,
    task_log,
    trigger,
    wait_for_log_line,
    wait_for_task_state,
    workers_of,
    write_artifact,
)

REPORT: list[dict] = []


@dataclass
class Fault:
    """The node killed, when, and when it was back (time.monotonic); `also` for a case that kills more than one."""

    node: Service
    killed_at: float
    restored_at: float | None = None
    also: tuple[Service, ...] = ()

    @classmethod
    def kill(cls, *nodes: Service) -> Fault:
        killed_at = [node.kill() for node in nodes][0]
        return cls(nodes[0], killed_at, also=nodes[1:])

    def restore(self) -> None:
        for node in (self.node, *self.also):  # one at a time: a Cassandra start is CPU-heavy on two cores
            node.start()
        self.restored_at = time.monotonic()

    @property
    def name(self) -> str:
        return " + ".join(node.name for node in (self.node, *self.also))

    @property
    def down_seconds(self) -> float:
        return round((self.restored_at or time.monotonic()) - self.killed_at, 1)


@pytest.fixture(scope="module")
def api() -> airflow.RestClient:
    return airflow.RestClient()


def run_case(api: airflow.RestClient, inject: Callable[[str], Fault] | None) -> tuple[str, str, SchedulerRun,
                                                                                      Fault | None]:
    """A run of the main DAG on an empty queue with `inject(run_id)` killing a node at its moment; the node is
    started again once the run has ended (so a retry cannot use it), and the batch is checked. The batch, the run
    id, the run and the fault."""
    from gait_airflow.clients import AirflowServices
    from include.stages.ingest import discard_queued

    discard_queued(AirflowServices())
    logical_date = fresh_logical_date()
    run_id = trigger(api, logical_date)
    fault = inject(run_id) if inject else None
    try:
        result = collect(api, DAG_ID, run_id)
    finally:
        if fault and fault.restored_at is None:
            fault.restore()
    assert result.run["state"] == "success", {ti["task_id"]: ti["state"] for ti in result.task_instances}
    batch = batch_id(logical_date, "")
    assert_batch_exact(batch)
    return batch, run_id, result, fault


@pytest.fixture(scope="module")
def baseline(api) -> float:
    """A fault-free run's seconds on the same profile, what each case's time is compared with: tests/cluster's
    triggered run when it ran in this session, else one of its own."""
    if not FAULT_FREE_RUN_SECONDS:
        _, _, result, _ = run_case(api, None)
        assert result.failed_tries() == 0
        FAULT_FREE_RUN_SECONDS.append(result.seconds)
    return FAULT_FREE_RUN_SECONDS[0]


def report(case: int, fault: Fault, moment: str, result: SchedulerRun, baseline: float, **extra) -> None:
    REPORT.append({"case": case, "node": fault.name, "moment": moment, "failed_tries": result.failed_tries(),
                   "run_seconds": result.seconds, "added_seconds": round(result.seconds - baseline, 1),
                   "node_down_seconds": fault.down_seconds, "workers": result.workers, **extra})
    path = write_artifact("cluster-faults", "report.json", {"baseline_seconds": baseline, "cases": REPORT})
    rows = [("case", "node", "moment", "failed tries", "added s", "down s")]
    rows += [(str(e["case"]), e["node"], e["moment"], str(e["failed_tries"]), str(e["added_seconds"]),
              str(e["node_down_seconds"])) for e in sorted(REPORT, key=lambda e: e["case"])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    reports.show(f"node loss on the cluster (also in {path.name}; fault-free run {baseline} s)",
                 ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows])


def test_case_3_cassandra_node_lost_during_the_spark_writes(api, baseline):
    """Killed as the Spark job starts clearing and writing the batch's rows: QUORUM with 2 of 3 replicas alive, so
    the Spark task has no failed try (Spark may retry a task inside the job)."""
    node = cassandra.CLUSTER[2]

    def inject(run_id: str) -> Fault:
        wait_for_log_line(task_log(DAG_ID, run_id, "spark_window_means"), r"phase clear started")
        return Fault.kill(node)

    _, _, result, fault = run_case(api, inject)
    report(3, fault, "Spark job: clear + writes", result, baseline)
    assert result.failed_tries() == 0, result.tries


def test_case_7_celery_worker_lost_while_it_runs_the_capture(api, baseline):
    """The worker running the capture dies with its task. The scheduler finds the task silent (heartbeat timeout),
    the retry runs on the other worker, and the batch is whole: nothing lost or doubled."""
    capture = "capture_mqtt_to_hdfs"

    def inject(run_id: str) -> Fault:
        wait_for_task_state(api, DAG_ID, run_id, capture, ("running",))
        time.sleep(1)  # the capture has connected and is draining
        name = workers_of(run_id)[capture][0]
        worker = next(w for w in airflow.WORKERS if w.name == name)
        return Fault.kill(worker)

    _, _, result, fault = run_case(api, inject)
    report(7, fault, "capture running", result, baseline)
    other = next(w.name for w in airflow.WORKERS if w is not fault.node)
    assert result.workers[capture] == [fault.node.name, other], result.workers
    assert result.failed_tries(capture) == 1 and result.failed_tries() == 1, result.tries
    assert result.tries[capture][0]["state"] in ("failed", "up_for_retry")


def partition_leaders() -> dict[int, int]:
    """Partition -> the broker (node id) leading it, for the pipeline's topic."""
    from confluent_kafka.admin import AdminClient

    topic = AdminClient(kafka_client_config()).list_topics(timeout=10).topics[names.KAFKA_TOPIC]
    return {p.id: p.leader for p in topic.partitions.values()}


def end_offsets(consumer) -> int:
    """The sum of the topic's end offsets (grows as the replay produces)."""
    from confluent_kafka import TopicPartition

    return sum(consumer.get_watermark_offsets(TopicPartition(names.KAFKA_TOPIC, p), timeout=5)[1]
               for p in range(kafka.CLUSTER_PARTITIONS))


def leading_broker() -> KafkaNode:
    """A broker that leads at least one partition of the topic."""
    leaders = partition_leaders()
    node_id = max(set(leaders.values()), key=list(leaders.values()).count)
    return next(node for node in kafka.CLUSTER if node.node_id == node_id)


def test_case_1_kafka_leader_lost_mid_replay(api, baseline):
    """Killed once the replay's first messages are in: the idempotent producer (acks=all) re-sends what was in
    flight to the new leaders, with no failed try and no duplicate in the range (the common checks compare the
    range with the landed lines, as a multiset)."""
    def inject(run_id: str) -> Fault:
        from confluent_kafka import Consumer

        consumer = Consumer(kafka_client_config(**{"group.id": "cluster-faults-probe"}))
        try:
            broker, before = leading_broker(), end_offsets(consumer)
            wait_for_task_state(api, DAG_ID, run_id, "replay_hdfs_to_kafka", ("running",))
            deadline = time.monotonic() + 120
            while end_offsets(consumer) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            return Fault.kill(broker)
        finally:
            consumer.close()

    _, _, result, fault = run_case(api, inject)
    report(1, fault, "replay producing", result, baseline)
    assert result.failed_tries() == 0, result.tries


def test_case_2_kafka_broker_lost_while_spark_reads(api, baseline):
    """Killed as the Spark job starts reading the batch's range: its Kafka source fetches from the new leaders."""
    def inject(run_id: str) -> Fault:
        wait_for_log_line(task_log(DAG_ID, run_id, "spark_window_means"), r"phase read_parse_deduplicate started")
        broker = leading_broker()
        return Fault.kill(broker)

    _, _, result, fault = run_case(api, inject)
    report(2, fault, "Spark job: Kafka read", result, baseline)
    assert result.failed_tries() == 0, result.tries


def test_case_4_cassandra_node_lost_while_training_reads(api, baseline):
    """Killed as training starts reading the windows: every read and write (metrics aside, which go to FerretDB) at
    LOCAL_QUORUM with 2 of 3 replicas alive, so no try fails."""
    node = cassandra.CLUSTER[1]

    def inject(run_id: str) -> Fault:
        wait_for_task_state(api, DAG_ID, run_id, "train_knn", ("running",))
        return Fault.kill(node)

    _, _, result, fault = run_case(api, inject)
    report(4, fault, "training reads", result, baseline)
    assert result.failed_tries() == 0, result.tries


def test_case_5_datanode_lost_while_the_capture_lands(api, baseline):
    """Killed while the capture writes its parts: the write pipeline goes on with the two DataNodes left, and once
    the node is back the NameNode brings every block to three replicas again."""
    node = hdfs.CLUSTER_DATANODES[2]

    def inject(run_id: str) -> Fault:
        wait_for_task_state(api, DAG_ID, run_id, "capture_mqtt_to_hdfs", ("running",))
        return Fault.kill(node)

    batch, _, result, fault = run_case(api, inject)
    back = fault.restored_at  # run_case started the node again once the run ended
    while (short := under_replicated(batch)) and time.monotonic() < back + 120:
        time.sleep(2)
    report(5, fault, "capture landing", result, baseline,
           re_replicated_seconds=None if short else round(time.monotonic() - back, 1))
    assert result.failed_tries() == 0, result.tries
    assert not short, f"still under three replicas 120 s after the DataNode returned: {short}"


def under_replicated(batch: str) -> dict[str, int]:
    """The batch's HDFS files (landed recordings, manifests) with fewer than three live replicas of a block."""
    from include.layout import BatchLayout

    layout, short = BatchLayout(batch), {}
    for folder in (layout.raw_dir, layout.manifest_dir):
        for entry in hdfs._get(f"/webhdfs/v1{folder}?op=LISTSTATUS&user.name=root")["FileStatuses"]["FileStatus"]:
            path = f"{folder}/{entry['pathSuffix']}"
            blocks = hdfs._get(f"/webhdfs/v1{path}?op=GETFILEBLOCKLOCATIONS&user.name=root")
            replicas = [len(block["names"]) for block in blocks["BlockLocations"]["BlockLocation"]]
            if replicas and min(replicas) < hdfs.CLUSTER_REPLICATION:
                short[path] = min(replicas)
    return short


def test_case_6_spark_worker_lost_mid_job(api, baseline):
    """Killed with its executor while the job computes the windows: Spark runs the lost tasks again on the
    executor left, and the Airflow task does not fail."""
    node = spark.WORKERS[1]

    def inject(run_id: str) -> Fault:
        wait_for_log_line(task_log(DAG_ID, run_id, "spark_window_means"), r"phase window_means started")
        return Fault.kill(node)

    _, _, result, fault = run_case(api, inject)
    report(6, fault, "Spark job: windows", result, baseline)
    assert result.failed_tries() == 0, result.tries


def test_case_8_scheduler_lost_mid_run_and_started_again(api, baseline):
    """Killed while the Spark task runs, started again 10 s later: the Celery worker goes on with the task, the new
    scheduler adopts the run and finishes it."""
    node = airflow.SCHEDULER

    def inject(run_id: str) -> Fault:
        wait_for_task_state(api, DAG_ID, run_id, "spark_window_means", ("running",))
        fault = Fault.kill(node)
        time.sleep(10)
        fault.restore()
        return fault

    _, _, result, fault = run_case(api, inject)
    report(8, fault, "Spark task running", result, baseline)
    assert result.failed_tries() == 0, result.tries


def test_case_9_two_cassandra_nodes_lost_during_the_writes(api, baseline):
    """Two of three replicas gone as the Spark job starts its deletes and writes: LOCAL_QUORUM cannot be met, so
    the Spark task fails with one line naming the level and the nodes down (and retries); once both nodes are
    back, a retry succeeds and the batch is whole."""
    spark_task, nodes = "spark_window_means", cassandra.CLUSTER[1:]

    def inject(run_id: str) -> Fault:
        wait_for_log_line(task_log(DAG_ID, run_id, spark_task), r"phase clear started")
        fault = Fault.kill(*nodes)
        wait_for_task_state(api, DAG_ID, run_id, spark_task, ("up_for_retry", "failed"), timeout=600)
        fault.restore()
        return fault

    _, run_id, result, fault = run_case(api, inject)
    report(9, fault, "Spark job: clear + writes", result, baseline)
    assert result.failed_tries(spark_task) >= 1 and result.failed_tries() == result.failed_tries(spark_task)
    first_try = task_log(DAG_ID, run_id, spark_task, attempt=1).read_text(errors="replace")
    assert re.search(r"spark_window_means: Cassandra cannot take the batch's [\w ]+ at LOCAL_QUORUM \(.*\); "
                     r"nodes down: 127\.0\.0\.2, 127\.0\.0\.3 \(transient: retried\)", first_try), first_try[-3000:]
