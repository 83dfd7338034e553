"""Pipeline benchmark: every stage on the real local services, side by side with the original tutorial's
approach in the same run; median of N runs; prints a table and writes JSON.

    make bench                                          # full dataset, 3 runs, scaling 1x/2x/4x, whole DAG
    scripts/with-env python -m benchmarks.pipeline --smoke   # bundled sample, 1 run, no DAG (CI's smoke)

Stages (items are readings unless the table says otherwise):
  publish     the simulator -> Mosquitto, batched (50 readings/message) and single-reading payloads
  capture     Mosquitto -> HDFS: the DAG's capture code draining its durable session, readings landed
  replay      HDFS -> Kafka; baseline: produce + poll + flush per message, as the tutorial did
  windowing   Kafka -> Spark -> Cassandra: the DAG's spark_window_means task (`airflow tasks test`);
              baselines: (a) one Spark job per window recomputing row_number() (tutorial), per window,
              (b) a numpy single pass over the same recordings (the floor)
  training    windows from Cassandra + nested subject-grouped CV + bias-variance + final model (DAG defaults)
  dag         `airflow dags test` of the whole pipeline on the dataset: wall time, peak RSS of services + run
Scaling: replay and windowing at 1x, 2x, 4x the dataset (copies under new recording ids: walk + 20, + 40 ..).
Peak RSS: of the stage's own processes (sampled every 0.2 s), and of all local services together.
Benchmark traffic uses its own Kafka topic and batch ids (dates from 2026-12-31); copies are deleted after.
Do not run it while DAG runs are active: it drains the capture session.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FULL_DATA = ROOT / ".local" / "gaitpdb" / "gaitpdb-1.0.0"
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "gaitpdb" / "gaitpdb-1.0.0.tar.gz"
SAMPLE_DATA = ROOT / "include" / "sample" / "gaitpdb"
RESULTS_DIR = ROOT / "test-artifacts" / "benchmarks"
BENCH_TOPIC = "gait.readings.benchmark"
DAG_ID = "parkinson_gait_pipeline"
STAGE_TIMEOUT = 3600  # seconds for one stage or DAG run on the full dataset; a hang fails instead of waiting


def wait_or_kill(process: subprocess.Popen) -> None:
    try:
        process.wait(STAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
# Benchmark batches: EPOCH + n hours. On or after the DAG's start_date (2026-01-01), or `airflow dags test` creates
# a run whose tasks never start; away from the dates the tests and manual runs use.
EPOCH = datetime(2026, 12, 31, tzinfo=UTC)
TARGETS = {"capture_readings_per_s": 50_000, "replay_msgs_per_s": 200_000, "replay_vs_baseline": 50,
           "windowing_seconds": 60, "windowing_vs_per_window_jobs": 500, "windowing_vs_numpy_max": 10,
           "training_seconds": 60, "dag_seconds": 600, "dag_peak_rss_gib": 8}
GIB = 1024 ** 3


# --- measuring ------------------------------------------------------------------------------------------

def tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def service_pids() -> dict[str, int]:
    from scripts.services import SERVICES

    return {s.name: pid for s in SERVICES if (pid := s.pid()) is not None}


class PeakRss:
    """Samples the RSS of some process trees (and of all local services) in a thread; keeps the peaks."""

    def __init__(self, pids: list[int] | None = None, interval: float = 0.2) -> None:
        self.pids, self.interval = list(pids or []), interval
        self.services = list(service_pids().values())
        self.stage = self.all_services = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            stage = sum(tree_rss(p) for p in self.pids)
            services = sum(tree_rss(p) for p in self.services)
            self.stage, self.all_services = max(self.stage, stage), max(self.all_services, services)
            self.total = max(self.total, stage + services)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict:
        return {"stage_peak_rss_mib": round(self.stage / 2**20),
                "services_peak_rss_mib": round(self.all_services / 2**20),
                "total_peak_rss_mib": round(self.total / 2**20)}


def own_peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    began = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - began


# --- stages (each runs in its own child process, so its peak RSS is its own) ----------------------------

def batch_of(n: int) -> tuple[datetime, str]:
    from include.layout import batch_id

    date = EPOCH + timedelta(hours=n)
    return date, batch_id(date, "")


def stage_numpy_floor(folder: str) -> dict:
    """The same work as the Spark job in one numpy pass: parse the recordings, window means (100) and gait
    features (300) with the reference code the job is tested against."""
    import numpy as np

    from include import gaitpdb
    from include.features import gait_features
    from include.windowing import window_means

    arrays, parse = timed(lambda: [rows for _, rows in gaitpdb.iter_recordings(Path(folder))])
    began = time.perf_counter()
    windows = feature_windows = 0
    for rows in arrays:
        windows += len(window_means(np.arange(len(rows)), rows[:, 0], rows[:, 1:], 100)["window_index"])
        feature_windows += len(gait_features(np.arange(len(rows)), rows[:, 0], rows[:, 1:], 300)["window_index"])
    compute = time.perf_counter() - began
    readings = sum(len(rows) for rows in arrays)
    return {"items": readings, "seconds": parse + compute, "parse_seconds": parse, "compute_seconds": compute,
            "windows": windows, "feature_windows": feature_windows, "process_peak_rss_mib": own_peak_rss_mib()}


def stage_publish_capture(folder: str, n: int, per_message: int, max_rows: int) -> dict:
    """The DAG's simulate + capture stages on a fresh batch (after emptying the durable session)."""
    from gait_airflow.clients import AirflowServices
    from gait_airflow.params import PIPELINE_PARAMS
    from include.stages import ingest

    params = {name: param.value for name, param in PIPELINE_PARAMS.items()}
    params.update(source_path=folder, readings_per_message=per_message, max_rows_per_recording=max_rows)
    _, batch = batch_of(n)
    services = AirflowServices()
    dropped = ingest.discard_queued(services)
    with PeakRss([os.getpid()]) as publish_rss:
        published, publish_seconds = timed(ingest.simulate, services, batch, params)
    with PeakRss([os.getpid()]) as capture_rss:
        captured, capture_seconds = timed(ingest.capture, services, batch, params)
    if captured["readings"] != published["readings"]:
        raise RuntimeError(f"capture landed {captured['readings']} readings, {published['readings']} were published")
    return {"batch": batch, "discarded_before": dropped,
            "publish": {"items": published["readings"], "messages": published["messages"], "seconds": publish_seconds,
                        **publish_rss.figures()},
            "capture": {"items": captured["readings"], "messages": captured["messages_received"],
                        "seconds": capture_seconds, **capture_rss.figures()},
            "process_peak_rss_mib": own_peak_rss_mib()}


def stage_scale(source_n: int, n: int, copies: int) -> dict:
    """A landed batch holding `copies` copies of another batch's recordings under new ids (walk + 20, + 40 ..)."""
    import msgspec

    from gait_airflow.clients import hdfs_client
    from include.capture import read_manifest
    from include.filestore import read_lines, write_atomically, write_record
    from include.gaitpdb import parse_recording_id
    from include.layout import BatchLayout

    store = hdfs_client()
    _, source = batch_of(source_n)
    _, batch = batch_of(n)
    manifest, layout = read_manifest(store, source), BatchLayout(batch)
    recordings, ranges = {}, {}
    for recording_id, count in manifest.recordings.items():
        lines = read_lines(store, BatchLayout(source).recording_file(recording_id))
        rid = parse_recording_id(recording_id)
        for copy in range(copies):
            new_id = f"{rid.subject_id}_{rid.walk + 20 * (copy + 1):02d}"  # never an original id (walks < 20)
            body = "\n".join(lines).replace(f'"recording_id":"{recording_id}"', f'"recording_id":"{new_id}"')
            write_atomically(store, layout.recording_file(new_id), (body + "\n").encode())
            recordings[new_id], ranges[new_id] = count, manifest.seq_ranges[recording_id]
    scaled = msgspec.structs.replace(manifest, batch_id=batch, recordings=recordings, seq_ranges=ranges,
                                     raw_dir=layout.raw_dir, dead_letter_dir=layout.dead_letter_dir,
                                     readings=manifest.readings * copies, dead_letters=0, dead_letter_reasons={})
    write_record(store, layout.capture_manifest, scaled)
    return {"batch": batch, "items": scaled.readings, "recordings": len(recordings), "scaled_from": source}


def stage_replay(n: int) -> dict:
    from gait_airflow.clients import AirflowServices, hdfs_client, kafka_producer
    from include.replay import replay

    _, batch = batch_of(n)
    store, producer = hdfs_client(), kafka_producer()
    with PeakRss([os.getpid()]) as rss:
        offsets, seconds = timed(replay, store, producer, AirflowServices().kafka_end_offsets, batch, BENCH_TOPIC)
    return {"batch": batch, "items": offsets.messages, "seconds": seconds, **rss.figures(),
            "process_peak_rss_mib": own_peak_rss_mib()}


def stage_replay_baseline(n: int, messages: int) -> dict:
    """The tutorial's producer loop: produce, poll and flush for every message."""
    from gait_airflow.clients import hdfs_client, kafka_producer
    from include.capture import read_manifest
    from include.filestore import read_lines
    from include.layout import BatchLayout

    _, batch = batch_of(n)
    store, producer = hdfs_client(), kafka_producer()
    manifest = read_manifest(store, batch)
    lines: list[str] = []
    for recording_id in manifest.recordings:
        lines += read_lines(store, BatchLayout(batch).recording_file(recording_id))[:messages - len(lines)]
        if len(lines) >= messages:
            break
    began = time.perf_counter()
    for line in lines:
        producer.produce(BENCH_TOPIC + ".baseline", value=line.encode(), key=json.loads(line)["recording_id"].encode())
        producer.poll(0)
        producer.flush()
    return {"items": len(lines), "seconds": time.perf_counter() - began, "process_peak_rss_mib": own_peak_rss_mib()}


def airflow_task(task_id: str, date: datetime, log_path: Path) -> tuple[bool, float, dict]:
    """`airflow tasks test` of one DAG task, its process tree's peak RSS sampled; success read from the log."""
    from scripts.demo import last_state

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        began = time.perf_counter()
        process = subprocess.Popen(["airflow", "tasks", "test", DAG_ID, task_id, date.isoformat()], stdout=log,
                                   stderr=subprocess.STDOUT)
        with PeakRss([process.pid]) as rss:
            wait_or_kill(process)
        seconds = time.perf_counter() - began
    return last_state(log_path.read_text(errors="replace")) == "success", seconds, rss.figures()


def stage_windowing(n: int) -> dict:
    """The DAG's spark_window_means task on a replayed batch: wall time of the task, and the Spark job's own
    time (from its summary; without the JVM start)."""
    from gait_airflow.clients import hdfs_client
    from include.filestore import require_record
    from include.layout import BatchLayout
    from include.records import SparkSummary

    date, batch = batch_of(n)
    log_path = RESULTS_DIR / "logs" / f"windowing-{batch}.log"
    ok, seconds, rss = airflow_task("spark_window_means", date, log_path)
    if not ok:
        raise RuntimeError(f"spark_window_means failed for batch {batch}; log: {log_path}")
    summary = require_record(hdfs_client(), BatchLayout(batch).spark_summary, SparkSummary, "the task did not write it")
    return {"batch": batch, "items": summary.kafka_messages_read, "seconds": seconds,
            "job_seconds": summary.seconds, "phase_seconds": summary.phase_seconds, "windows": summary.windows_written,
            "feature_windows": summary.feature_windows_written, **rss}


def stage_tutorial_windowing(n: int, recordings: int, max_windows: int) -> dict:
    """Submit benchmarks/tutorial_windowing.py through the Spark provider's hook, same connection and jars."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
    from airflow.sdk import BaseHook

    from gait_airflow.clients import hdfs_client
    from gait_airflow.operators import deployment_spark_conf
    from include import names
    from include.filestore import read_bytes
    from include.layout import BatchLayout

    _, batch = batch_of(n)
    offsets = json.loads(read_bytes(hdfs_client(), BatchLayout(batch).kafka_offsets))  # handed on to the baseline job
    chosen = offsets["recordings"][:recordings]
    kafka = BaseHook.get_connection(names.KAFKA_CONN_ID).extra_dejson["bootstrap.servers"]
    jars = os.environ["AIRFLOW_VAR_SPARK_KAFKA_JARS"]
    with tempfile.TemporaryDirectory() as tmp:
        offsets_file, result_file = Path(tmp) / "offsets.json", Path(tmp) / "result.json"
        offsets_file.write_text(json.dumps(offsets))
        hook = SparkSubmitHook(conn_id=names.SPARK_CONN_ID, name="tutorial-windowing-baseline",
                               jars=",".join(str(p) for p in sorted(Path(jars).parent.glob(Path(jars).name))),
                               conf={"spark.ui.showConsoleProgress": "false", **deployment_spark_conf()},
                               application_args=["--offsets-file", str(offsets_file), "--kafka-bootstrap", kafka,
                                                 "--recordings", ",".join(chosen), "--max-windows", str(max_windows),
                                                 "--result-file", str(result_file)])
        hook.submit(str(ROOT / "benchmarks" / "tutorial_windowing.py"))
        result = json.loads(result_file.read_text())
    return {"items": result["windows"], "seconds": result["seconds"],
            "seconds_per_window": result["seconds_per_window"],
            "recordings": chosen, "rows": result["rows"]}


def stage_training(n: int) -> dict:
    """What train_knn does for a batch, with the DAG's Param defaults: windows from Cassandra, nested grouped
    CV, leaky split, bias-variance and the final model (no HDFS/MongoDB writes)."""
    from gait_airflow.clients import AirflowServices, hdfs_client
    from gait_airflow.params import TRAINING_PARAMS
    from include.capture import read_manifest
    from include.estimators import estimator_named
    from include.features import FEATURE_SETS
    from include.stages.windows import windows_of
    from include.training import train_and_evaluate

    params = {name: param.value for name, param in TRAINING_PARAMS.items()}
    _, batch = batch_of(n)
    recordings = list(read_manifest(hdfs_client(), batch).recordings)
    feature_set = params["feature_set"]
    with PeakRss([os.getpid()]) as rss:
        began = time.perf_counter()
        data = windows_of(AirflowServices(), feature_set, params[FEATURE_SETS[feature_set].window_param], recordings)
        loaded = time.perf_counter() - began
        estimator = estimator_named(params["estimator"])
        trained = train_and_evaluate(estimator, data, feature_set, tuple(params[estimator.grid_param]),
                                     params["cv_folds"], params["bias_variance_rounds"], params["seed"])
        seconds = time.perf_counter() - began
    return {"items": len(data.y), "seconds": seconds, "load_seconds": loaded, "feature_set": feature_set,
            "params": trained.model_info.params, "subject_roc_auc": trained.gate_score, **rss.figures(),
            "process_peak_rss_mib": own_peak_rss_mib()}


def stage_dag(folder: str, n: int) -> dict:
    """`airflow dags test` of the whole pipeline on the dataset (after emptying the capture session)."""
    import re

    from gait_airflow.clients import AirflowServices, hdfs_client
    from include.capture import read_manifest
    from include.stages.ingest import discard_queued
    from scripts.demo import task_durations

    date, batch = batch_of(n)
    dropped = discard_queued(AirflowServices())
    log_path = RESULTS_DIR / "logs" / f"dag-{batch}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        began = time.perf_counter()
        process = subprocess.Popen(["airflow", "dags", "test", DAG_ID, date.isoformat(), "--conf",
                                    json.dumps({"source_path": folder})], stdout=log, stderr=subprocess.STDOUT)
        with PeakRss([process.pid]) as rss:
            wait_or_kill(process)
        seconds = time.perf_counter() - began
    text = log_path.read_text(errors="replace")
    finished = re.findall(r"DagRun Finished: dag_id=" + re.escape(DAG_ID) + r",.*?state=(\w+)", text)
    if finished[-1:] != ["success"]:
        raise RuntimeError(f"the DAG run for batch {batch} did not succeed; log: {log_path}")
    landed = read_manifest(hdfs_client(), batch).readings
    return {"batch": batch, "items": landed, "seconds": seconds, "discarded_before": dropped,
            "tasks": dict(task_durations(text)), **rss.figures()}


def stage_cleanup(batches: list[int], scaled: list[int]) -> dict:
    """Delete the benchmark's HDFS batches, the copies' Cassandra partitions and the benchmark topics."""
    from gait_airflow.clients import cassandra_session, hdfs_client
    from include import names
    from include.capture import read_manifest
    from include.filestore import exists
    from include.layout import BatchLayout

    store = hdfs_client()
    copies: set[str] = set()
    for n in scaled:
        _, batch = batch_of(n)
        if exists(store, BatchLayout(batch).capture_manifest):
            copies |= set(read_manifest(store, batch).recordings)
    with cassandra_session() as session:
        for table in (names.WINDOW_TABLE, names.FEATURE_TABLE):
            statement = session.prepare(f"DELETE FROM {names.CASSANDRA_KEYSPACE}.{table} WHERE recording_id = ?")
            for recording_id in sorted(copies):
                session.execute(statement, (recording_id,))
    for n in batches:
        _, batch = batch_of(n)
        for directory in BatchLayout(batch).directories:
            store.delete(directory, recursive=True)
    admin = kafka_admin()
    for future in admin.delete_topics([BENCH_TOPIC, BENCH_TOPIC + ".baseline"]).values():
        try:
            future.result(30)
        except Exception as exc:  # noqa: BLE001 - a topic never created is fine
            if "UNKNOWN_TOPIC" not in str(exc):
                raise
    return {"copies_deleted": len(copies), "batches_deleted": len(batches)}


def kafka_admin():
    """An AdminClient on the pipeline's Kafka connection, with its whole config (SASL included)."""
    from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

    from include import names

    return KafkaAdminClientHook(kafka_config_id=names.KAFKA_CONN_ID).get_conn


def stage_prepare_topic() -> dict:
    """The benchmark topic, fresh, with the pipeline topic's partitions."""
    from confluent_kafka.admin import NewTopic

    from include import names

    admin = kafka_admin()
    for topic in (BENCH_TOPIC, BENCH_TOPIC + ".baseline"):
        if topic in admin.list_topics(timeout=10).topics:
            admin.delete_topics([topic])[topic].result(30)
            deadline = time.monotonic() + 30
            while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
                time.sleep(0.5)
        for attempt in range(20):
            try:
                admin.create_topics([NewTopic(topic, names.KAFKA_PARTITIONS, 1)])[topic].result(30)
                break
            except Exception as exc:  # noqa: BLE001 - deletion still finishing
                if "TOPIC_ALREADY_EXISTS" not in str(exc) and "being deleted" not in str(exc) or attempt == 19:
                    raise
                time.sleep(1)
    return {"topic": BENCH_TOPIC, "partitions": names.KAFKA_PARTITIONS}


STAGES = {"numpy_floor": stage_numpy_floor, "publish_capture": stage_publish_capture, "scale": stage_scale,
          "replay": stage_replay, "replay_baseline": stage_replay_baseline, "windowing": stage_windowing,
          "tutorial_windowing": stage_tutorial_windowing, "training": stage_training, "dag": stage_dag,
          "cleanup": stage_cleanup, "prepare_topic": stage_prepare_topic}


def child(name: str, kwargs: dict) -> dict:
    """Run one stage in a fresh interpreter; its last output line is the result."""
    print(f"  {name} {kwargs} ...", flush=True)
    out = subprocess.run([sys.executable, "-m", "benchmarks.pipeline", "--child", name, json.dumps(kwargs)],
                         cwd=ROOT, capture_output=True, text=True, timeout=STAGE_TIMEOUT)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"benchmark stage {name} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


# --- orchestration and report -----------------------------------------------------------------------------

def median_run(runs: list[dict]) -> dict:
    """The run with the median time (so items and RSS belong to one real run), plus every run's seconds."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["seconds_all_runs"] = [round(r["seconds"], 3) for r in runs]
    chosen["seconds"] = statistics.median(r["seconds"] for r in runs)
    chosen["rate"] = chosen["items"] / chosen["seconds"]
    return chosen


def run(args: argparse.Namespace, results: dict) -> dict:
    """Fills `results` stage by stage (so a failure keeps what was measured before it)."""
    folder = str(args.data)
    counter = iter(range(1, 10_000))
    batches: list[int] = []
    scaled: list[int] = []
    from gait_airflow.operators import deployment_spark_conf

    results.update({"data": folder, "runs": args.runs, "scales": args.scales, "targets": TARGETS,
                    "started_at": datetime.now(UTC).isoformat(), "machine": machine(), "commit": commit(),
                    "spark_master": spark_master(), "spark_conf": deployment_spark_conf()})
    child("prepare_topic", {})
    results["numpy_floor"] = median_run([child("numpy_floor", {"folder": folder}) for _ in range(args.runs)])

    publish = results["publish_runs"] = {"batched": [], "single": []}
    base = None
    for _ in range(args.runs):
        for variant, per_message, max_rows in (("batched", 50, 0), ("single", 1, args.single_rows)):
            n = next(counter)
            batches.append(n)
            publish[variant].append(child("publish_capture", {"folder": folder, "n": n, "per_message": per_message,
                                                              "max_rows": max_rows}))
            if variant == "batched":
                base = n
    for variant, runs in publish.items():
        results[f"publish_{variant}"] = median_run([r["publish"] for r in runs])
        results[f"capture_{variant}"] = median_run([r["capture"] for r in runs])
    results["replay"] = median_run([child("replay", {"n": base}) for _ in range(args.runs)])
    results["replay_baseline"] = median_run([child("replay_baseline", {"n": base, "messages": args.baseline_messages})
                                             for _ in range(args.runs)])
    results["windowing"] = median_run([child("windowing", {"n": base}) for _ in range(args.runs)])
    results["tutorial_windowing"] = child("tutorial_windowing", {"n": base, "recordings": args.tutorial_recordings,
                                                                 "max_windows": args.tutorial_windows})
    results["training"] = median_run([child("training", {"n": base}) for _ in range(args.runs)])

    scaling = {"1": {"replay": results["replay"], "windowing": results["windowing"]}}
    for copies in [s for s in args.scales if s != 1]:
        n = next(counter)
        batches.append(n)
        scaled.append(n)
        child("scale", {"source_n": base, "n": n, "copies": copies})
        scaling[str(copies)] = {"replay": median_run([child("replay", {"n": n})]),
                                "windowing": median_run([child("windowing", {"n": n})])}
    results["scaling"] = scaling
    if args.dag_runs:
        dag_runs = []
        for _ in range(args.dag_runs):
            n = next(counter)
            batches.append(n)
            dag_runs.append(child("dag", {"folder": folder, "n": n}))
        results["dag"] = median_run(dag_runs)
    results["cleanup"] = child("cleanup", {"batches": batches, "scaled": scaled})
    results["finished_at"] = datetime.now(UTC).isoformat()
    results["summary"] = summarise(results)
    return results


def full_dataset() -> Path:
    """Unpack the full dataset from the shared archive when there is one, else download it (README)."""
    from include import gaitpdb

    target = FULL_DATA.parent
    folder = gaitpdb.unpack(SHARED_ARCHIVE, target) if SHARED_ARCHIVE.exists() else gaitpdb.download(target)
    print(f"full dataset: {folder}", flush=True)
    return folder


def machine() -> dict:
    import platform

    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def commit() -> str:
    """The commit measured, with "+changes" when the work tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return f"{head or 'unknown'}{'+changes' if dirty else ''}"


def spark_master() -> str:
    """Where the windowing job ran (spark_default's master: local[2] on one machine)."""
    from airflow.sdk import BaseHook

    from include import names

    connection = BaseHook.get_connection(names.SPARK_CONN_ID)
    return f"{connection.host}:{connection.port}" if connection.port else str(connection.host)


def summarise(r: dict) -> dict:
    """Ratios to the baselines and each target as met / not met."""
    windowing, tutorial, floor = r["windowing"], r["tutorial_windowing"], r["numpy_floor"]
    per_window = windowing["job_seconds"] / max(windowing["windows"], 1)
    s = {
        "capture_readings_per_s": r["capture_batched"]["rate"],
        "replay_msgs_per_s": r["replay"]["rate"],
        "replay_vs_baseline": r["replay"]["rate"] / r["replay_baseline"]["rate"],
        "windowing_seconds": windowing["seconds"],
        "windowing_job_seconds": windowing["job_seconds"],
        "windowing_vs_per_window_jobs": tutorial["seconds_per_window"] / per_window,
        "windowing_vs_numpy_max": windowing["seconds"] / floor["seconds"],
        "training_seconds": r["training"]["seconds"],
    }
    if "dag" in r:
        s["dag_seconds"] = r["dag"]["seconds"]
        s["dag_peak_rss_gib"] = r["dag"]["total_peak_rss_mib"] / 1024
    met = {}
    for key, value in s.items():
        if key in TARGETS:
            met[key] = value <= TARGETS[key] if key.endswith(("seconds", "_max", "_gib")) else value >= TARGETS[key]
    scale = {}
    for copies, stages in r["scaling"].items():
        scale[copies] = {name: {"items": st["items"], "seconds": round(st["seconds"], 2),
                                "time_per_item_vs_1x": (st["seconds"] / st["items"])
                                / (r["scaling"]["1"][name]["seconds"] / r["scaling"]["1"][name]["items"])}
                         for name, st in stages.items()}
    return {"figures": s, "targets_met": met, "scaling": scale}


def table(r: dict) -> str:
    rows = [("stage", "items", "seconds", "items/s", "stage RSS MiB", "services RSS MiB", "vs baseline")]

    def add(label: str, st: dict, ratio: str = "") -> None:
        rows.append((label, f"{st['items']:,}", f"{st['seconds']:.2f}", f"{st['items'] / st['seconds']:,.0f}",
                     str(st.get("stage_peak_rss_mib", st.get("process_peak_rss_mib", "-"))),
                     str(st.get("services_peak_rss_mib", "-")), ratio))

    f = r["summary"]["figures"]
    add("publish, 50 readings/message", r["publish_batched"])
    add("publish, 1 reading/message", r["publish_single"])
    add("capture -> HDFS, 50/message", r["capture_batched"])
    add("capture -> HDFS, 1/message", r["capture_single"])
    add("replay HDFS -> Kafka", r["replay"], f"{f['replay_vs_baseline']:.0f}x")
    add("  baseline: flush per message", r["replay_baseline"])
    add("windowing Kafka -> Cassandra (task)", r["windowing"],
        f"{f['windowing_vs_per_window_jobs']:,.0f}x per window; {f['windowing_vs_numpy_max']:.1f}x numpy time")
    add("  Spark job alone (no JVM start)", {**r["windowing"], "seconds": r["windowing"]["job_seconds"]})
    tutorial = r["tutorial_windowing"]
    rows.append(("  baseline: Spark job per window", f"{tutorial['items']:,} windows", f"{tutorial['seconds']:.2f}",
                 f"{tutorial['seconds_per_window']:.3f} s/window", "-", "-", ""))
    add("  floor: numpy single pass", r["numpy_floor"])
    add(f"training + evaluation ({r['training']['feature_set']}, windows)", r["training"])
    if "dag" in r:
        add("whole DAG (airflow dags test)", r["dag"], f"peak RSS all: {r['dag']['total_peak_rss_mib']:,} MiB")
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.append("")
    lines.append("scaling (time per item relative to 1x; 1.00 = linear):")
    for copies, stages in r["summary"]["scaling"].items():
        lines.append("  " + f"{copies}x: " + ", ".join(
            f"{name} {st['items']:,} items in {st['seconds']:.1f}s ({st['time_per_item_vs_1x']:.2f})"
            for name, st in stages.items()))
    lines.append("")
    lines.append("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'} ({f[k]:,.2f} vs {TARGETS[k]:,})"
                                         for k, v in r["summary"]["targets_met"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        result = STAGES[argv[1]](**json.loads(argv[2]))
        print(json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=FULL_DATA, help="gaitpdb folder (default: the full dataset)")
    parser.add_argument("--runs", type=int, default=3, help="runs per stage; the table shows the median")
    parser.add_argument("--scales", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--single-rows", type=int, default=1_000,
                        help="rows per recording for single-reading payloads (0 = all)")
    parser.add_argument("--baseline-messages", type=int, default=20_000)
    parser.add_argument("--tutorial-recordings", type=int, default=2)
    parser.add_argument("--tutorial-windows", type=int, default=0, help="per recording; 0 = all")
    parser.add_argument("--dag-runs", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="bundled sample, 1 run, scales 1,2, small baselines, "
                                                             "no DAG: checks the suite works (CI)")
    parser.add_argument("--json", type=Path,
                        help="results file (default: test-artifacts/benchmarks/pipeline-<time>.json)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.data, args.runs, args.scales, args.single_rows = SAMPLE_DATA, 1, [1, 2], 200
        args.baseline_messages, args.tutorial_recordings, args.tutorial_windows, args.dag_runs = 2_000, 1, 5, 0
    if args.data == FULL_DATA and not FULL_DATA.is_dir():
        args.data = full_dataset()
    if not args.data.is_dir():
        parser.error(f"no dataset at {args.data}: unpack the full dataset first (README, 'Full dataset')")
    print(f"pipeline benchmark on {args.data} ({args.runs} run(s) per stage) ...", flush=True)
    path = args.json or RESULTS_DIR / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    try:
        run(args, results)
    finally:  # what was measured before a failure is kept
        path.write_text(json.dumps(results, indent=1, default=str))
    print()
    print(table(results))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
