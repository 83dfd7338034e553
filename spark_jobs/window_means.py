"""Spark job: window means (and gait features) of one batch, Kafka -> Cassandra.

Reads exactly the offset range the replay task recorded in HDFS (through Spark's Hadoop filesystem), decodes the
readings (Avro, include/kafka_record.py), drops duplicate (recording_id, seq), and per recording computes the mean
of the 18 force channels over windows of `--window-size` readings (window_index = seq // window_size; complete
windows only unless --include-partial). From the same cached readings it computes the gait features of complete
windows of `--feature-window-size` readings into their own table (definitions and numpy reference:
include/features.py). Rows are upserted into Cassandra with prepared statements and concurrent writes, one session
per partition. No Airflow: the project's domain package (include/) comes with --py-files (SparkJobOperator ships
it), so channels, recording ids, feature definitions, the topic's schema and exit codes are the same definitions
the rest of the pipeline uses.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from functools import partial

from include import names
from include.errors import SPARK_BAD_INPUT_EXIT as BAD_INPUT_EXIT
from include.errors import SPARK_UNAVAILABLE_EXIT as UNAVAILABLE_EXIT
from include.errors import BadInput
from include.features import EPS, GAIT_FEATURES, HEEL, MIDFOOT, SENSOR_Y, STANCE_FRACTION, TOE
from include.gaitpdb import CHANNELS, parse_recording_id
from include.kafka_record import schema_text
from include.records import KafkaOffsets, SparkSummary, decode, encode

WRITE_BATCH_ROWS = 16  # rows per unlogged batch: about 5 KB, Cassandra's batch size warning threshold


class CassandraUnavailable(Exception):
    """Too few Cassandra replicas alive for the pipeline's consistency level (transient: the task retries)."""


def unavailability_errors() -> tuple[type[Exception], ...]:
    """The driver's errors that mean too few replicas answered (imported where the job runs: driver or executor)."""
    from cassandra import OperationTimedOut, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable

    return Unavailable, NoHostAvailable, WriteTimeout, OperationTimedOut


def unavailable(exc: Exception, cluster, what: str) -> CassandraUnavailable:
    """One line naming the consistency level, the replicas alive (when a coordinator said) and the nodes down (the
    ones the driver could not reach, or has marked down)."""
    from cassandra import Unavailable
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    errors = exc.errors if isinstance(exc, NoHostAvailable) else {}
    replies = [exc] if isinstance(exc, Unavailable) else [e for e in errors.values() if isinstance(e, Unavailable)]
    unreachable = {host_address(host) for host, error in errors.items()
                   if isinstance(error, ConnectionException | OSError)}
    down = sorted(unreachable | {host_address(h) for h in cluster.metadata.all_hosts() if h.is_up is False})
    replicas = (f"{replies[0].alive_replicas} replicas alive, {replies[0].required_replicas} required"
                if replies else type(exc).__name__)
    return CassandraUnavailable(f"Cassandra cannot take the batch's {what} at {names.CASSANDRA_CONSISTENCY} "
                                f"({replicas}); nodes down: {', '.join(down) or 'none seen by the driver'}")


def host_address(host) -> str:
    """A driver Host's (or its endpoint's, or an "address:port" key's) address."""
    endpoint = getattr(host, "endpoint", host)
    return str(getattr(endpoint, "address", endpoint)).rsplit(":", 1)[0]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch-id", required=True)
    p.add_argument("--hdfs-uri", required=True, help="the file system of the manifests, e.g. hdfs://namenode:8020 "
                   "(the user is HADOOP_USER_NAME)")
    p.add_argument("--offsets-manifest", required=True, help="HDFS path of the replay's offsets manifest")
    p.add_argument("--summary-path", required=True, help="HDFS path to write the job's counts (JSON)")
    p.add_argument("--kafka-bootstrap", required=True)
    p.add_argument("--cassandra-hosts", required=True, help="comma-separated")
    p.add_argument("--cassandra-port", type=int, default=9042)
    p.add_argument("--keyspace", default=names.CASSANDRA_KEYSPACE)
    p.add_argument("--table", default=names.WINDOW_TABLE)
    p.add_argument("--window-size", type=int, default=100)
    p.add_argument("--features-table", default=names.FEATURE_TABLE)
    p.add_argument("--feature-window-size", type=int, default=300, help="0 = do not compute gait features")
    partial = p.add_mutually_exclusive_group()
    partial.add_argument("--include-partial", dest="include_partial", action="store_true",
                         help="also store each recording's last, incomplete window")
    partial.add_argument("--only-complete", dest="include_partial", action="store_false", help="the default")
    p.add_argument("--write-concurrency", type=int, default=32)
    args = p.parse_args(argv)
    if args.window_size < 1:
        p.error("--window-size must be >= 1")
    if args.feature_window_size and args.feature_window_size < 2:
        p.error("--feature-window-size must be >= 2 (or 0 to skip)")
    # The Cassandra login, from the driver's environment (never the command line); it reaches the executors
    # inside the tasks' closures, so executors on a cluster's workers need no secret of their own.
    args.cassandra_login = (os.environ["CASSANDRA_USER"], os.environ.get("CASSANDRA_PASSWORD", "")) \
        if os.environ.get("CASSANDRA_USER") else None
    return args


class HadoopFiles:
    """Small files on the cluster's file system through Spark's Hadoop FileSystem (the job's own Hadoop
    configuration: its scheme, TLS and Kerberos settings)."""

    def __init__(self, spark, uri: str) -> None:
        self.jvm = spark.sparkContext._jvm
        self.uri = uri.rstrip("/")
        hadoop_path = self.jvm.org.apache.hadoop.fs.Path(self.uri + "/")
        self.fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def path(self, path: str):
        return self.jvm.org.apache.hadoop.fs.Path(self.uri + path)

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when there is none."""
        if not self.fs.exists(self.path(path)):
            return None
        stream = self.fs.open(self.path(path))
        try:
            return bytes(self.jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_atomically(self, path: str, data: bytes) -> None:
        """Write a temporary file beside it, then rename it over the final one."""
        directory, name = path.rsplit("/", 1)
        tmp = self.path(f"{directory}/_tmp.{name}")
        stream = self.fs.create(tmp, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        self.fs.delete(self.path(path), False)
        if not self.fs.rename(tmp, self.path(path)):
            raise OSError(f"could not rename {tmp} to {path}")


def kafka_options() -> dict[str, str]:
    """Kafka SASL settings from the environment (never the command line); none when KAFKA_SASL_USERNAME is unset."""
    user = os.environ.get("KAFKA_SASL_USERNAME")
    if not user:
        return {}
    mechanism = os.environ.get("KAFKA_SASL_MECHANISM", "PLAIN")
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    password = os.environ["KAFKA_SASL_PASSWORD"].replace("\\", "\\\\").replace('"', '\\"')
    return {"kafka.security.protocol": os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
            "kafka.sasl.mechanism": mechanism,
            "kafka.sasl.jaas.config": f'{module} required username="{user}" password="{password}";'}


def cassandra_cluster(args: argparse.Namespace):
    """A driver Cluster at the pipeline's consistency level, with the driver's Cassandra login (if any)."""
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile

    auth = PlainTextAuthProvider(*args.cassandra_login) if args.cassandra_login else None
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.name_to_value[names.CASSANDRA_CONSISTENCY])
    return Cluster(args.cassandra_hosts.split(","), port=args.cassandra_port, auth_provider=auth,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile})


def clear_recordings(args: argparse.Namespace, tables: dict[str, int], recordings: list[str]) -> None:
    """Delete the batch's recordings' windows of the sizes this run writes ({table: window size}) first, so a
    re-run without partial windows leaves no stale window behind; windows of other sizes stay."""
    from cassandra.concurrent import execute_concurrent_with_args

    cluster = cassandra_cluster(args)
    try:
        session = cluster.connect(args.keyspace)
        for table, size in tables.items():
            statement = session.prepare(f"DELETE FROM {table} WHERE recording_id = ? AND window_size = ?")
            execute_concurrent_with_args(session, statement, [(r, size) for r in recordings],
                                         raise_on_first_error=True)
    except unavailability_errors() as exc:
        raise unavailable(exc, cluster, "deletes") from exc
    finally:
        cluster.shutdown()


def write_partition(rows, args: argparse.Namespace, table: str, batch_id: str, columns: list[str]):
    """foreachPartition body: upsert one partition's windows with a prepared statement, in small unlogged
    batches of one recording each (one Cassandra partition per batch: one round trip for many rows)."""
    from cassandra.concurrent import execute_concurrent
    from cassandra.query import BatchStatement, BatchType

    by_recording: dict[str, list] = {}
    for row in rows:
        by_recording.setdefault(row["recording_id"], []).append(row)
    if not by_recording:
        return
    cluster = cassandra_cluster(args)
    try:
        session = cluster.connect(args.keyspace)
        all_columns = columns + ["batch_id", "written_at"]
        statement = session.prepare(
            f"INSERT INTO {table} ({', '.join(all_columns)}) VALUES ({', '.join('?' * len(all_columns))})")
        now = datetime.now(UTC)
        batches = []
        for recording_rows in by_recording.values():
            for i in range(0, len(recording_rows), WRITE_BATCH_ROWS):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for row in recording_rows[i:i + WRITE_BATCH_ROWS]:
                    batch.add(statement, tuple(row[c] for c in columns) + (batch_id, now))
                batches.append((batch, ()))
        for ok, result in execute_concurrent(session, batches, concurrency=args.write_concurrency,
                                             raise_on_first_error=True):
            if not ok:
                raise result
    except unavailability_errors() as exc:
        raise unavailable(exc, cluster, f"writes to {table}") from exc
    finally:
        cluster.shutdown()


def window_index(F, window_size: int):
    """seq // window_size in integer arithmetic (a double division loses exactness past 2^53; seq is 64-bit)."""
    return F.expr(f"seq div {int(window_size)}")


def recording_attributes(spark, recordings: list[str]):
    """What a recording id says (subject, study, group, walk, label), from the domain's one parser: a small
    table the windows join."""
    parsed = [parse_recording_id(r) for r in recordings]
    return spark.createDataFrame(
        [(r.recording_id, r.subject_id, r.study, r.group, r.walk, r.label) for r in parsed],
        "recording_id string, subject_id string, study string, subject_group string, walk int, label int")


def gait_features(readings, window_size: int, attributes, F, W):
    """Gait features of complete windows (see include/features.py): body load B per recording (mean total
    force of all its readings), stance = foot force > STANCE_FRACTION * B, previous reading by seq."""
    by_seq = W.partitionBy("recording_id").orderBy("seq")
    loads = readings.groupBy("recording_id").agg(F.avg(F.col("left_total") + F.col("right_total")).alias("body_load"))
    rows = (readings.join(loads, "recording_id")
            .withColumn("window_index", window_index(F, window_size))
            .withColumn("threshold", F.col("body_load") * STANCE_FRACTION))
    for side, total in (("l", "left_total"), ("r", "right_total")):
        force, sensors = F.col(total), [F.col(f"{side}{i}") for i in range(1, 9)]
        rows = (rows
                .withColumn(f"on_{side}", force > F.col("threshold"))
                .withColumn(f"previous_{side}", F.lag(total).over(by_seq))
                .withColumn(f"cop_{side}", sum(sensors[i] * y for i, y in enumerate(SENSOR_Y.tolist()))
                            / F.greatest(force, F.lit(EPS))))
    aggregates = [F.count("*").alias("n_rows"), F.min_by("t", "seq").alias("t_start"),
                  F.max_by("t", "seq").alias("t_end")]
    for side, total in (("l", "left_total"), ("r", "right_total")):
        force, sensors, on = F.col(total), [F.col(f"{side}{i}") for i in range(1, 9)], F.col(f"on_{side}")
        previous = F.coalesce(F.col(f"previous_{side}"), F.lit(float("inf")))
        increment = force - F.coalesce(F.col(f"previous_{side}"), force)
        stance_load = F.sum(F.when(on, force).otherwise(0.0)) + EPS

        def share(which, sensors=sensors, on=on, stance_load=stance_load):
            return F.sum(F.when(on, sum(sensors[i] for i in which)).otherwise(0.0)) / stance_load

        aggregates += [
            F.avg(on.cast("double")).alias(f"stance_{side}"),
            (F.avg(force) / F.first("body_load")).alias(f"load_mean_{side}"),
            (F.stddev_samp(force) / F.first("body_load")).alias(f"load_std_{side}"),
            (F.max(force) / F.first("body_load")).alias(f"load_peak_{side}"),
            (F.stddev_samp(force) / (F.avg(force) + EPS)).alias(f"load_cv_{side}"),
            (F.sum((on & (previous <= F.col("threshold"))).cast("double")) * (100.0 / window_size))
            .alias(f"strikes_{side}"),
            (F.avg(F.greatest(increment, F.lit(0.0))) / F.first("body_load")).alias(f"loading_rate_{side}"),
            share(HEEL).alias(f"heel_share_{side}"), share(MIDFOOT).alias(f"midfoot_share_{side}"),
            share(TOE).alias(f"toe_share_{side}"),
            F.coalesce(F.avg(F.when(on, F.col(f"cop_{side}"))), F.lit(0.0)).alias(f"cop_y_mean_{side}"),
            F.coalesce(F.stddev_samp(F.when(on, F.col(f"cop_{side}"))), F.lit(0.0)).alias(f"cop_y_std_{side}"),
        ]
    total = F.col("left_total") + F.col("right_total")
    aggregates += [
        F.avg((F.col("on_l") & F.col("on_r")).cast("double")).alias("double_support"),
        F.avg((~F.col("on_l") & ~F.col("on_r")).cast("double")).alias("no_support"),
        (F.stddev_samp(total) / F.first("body_load")).alias("total_std"),
        (F.max(total) / F.first("body_load")).alias("total_max"),
        (F.min(total) / F.first("body_load")).alias("total_min"),
        F.first("body_load").alias("body_load"),
    ]
    features = (rows.groupBy("recording_id", "window_index").agg(*aggregates)
                .where(F.col("n_rows") == window_size)
                .withColumn("asym_load", F.abs(F.col("load_mean_l") - F.col("load_mean_r"))
                            / (F.col("load_mean_l") + F.col("load_mean_r") + EPS))
                .withColumn("asym_peak", F.abs(F.col("load_peak_l") - F.col("load_peak_r"))
                            / (F.col("load_peak_l") + F.col("load_peak_r") + EPS))
                .withColumn("asym_stance", F.abs(F.col("stance_l") - F.col("stance_r")))
                .join(F.broadcast(attributes), "recording_id")
                .withColumn("window_size", F.lit(window_size)))
    columns = ["recording_id", "window_index", "window_size", "subject_id", "label", "t_start", "t_end",
               "body_load", *GAIT_FEATURES]
    return features.select(*columns), columns


def read_offsets_manifest(files: HadoopFiles, args: argparse.Namespace) -> KafkaOffsets:
    """The replay's offsets manifest; BadInput when it is missing, malformed or inconsistent."""
    data = files.read(args.offsets_manifest)
    if data is None:
        raise BadInput(f"no offsets manifest at {args.offsets_manifest}: run replay_hdfs_to_kafka for batch "
                       f"{args.batch_id} first")
    offsets = decode(data, KafkaOffsets, args.offsets_manifest)
    inconsistency = offsets.inconsistency()
    if inconsistency:
        raise BadInput(f"offsets manifest {args.offsets_manifest} is inconsistent: {inconsistency}")
    return offsets


def bad_input(message: str) -> None:
    print(f"window_means: BAD INPUT: {message}", file=sys.stderr, flush=True)


def unavailable_line(exc: Exception) -> str | None:
    """The CassandraUnavailable message of a failure in the driver, or in an executor's task (then inside the
    Spark error's text), or None."""
    if isinstance(exc, CassandraUnavailable):
        return str(exc)
    found = [line.split("CassandraUnavailable: ", 1)[1] for line in str(exc).splitlines()
             if "CassandraUnavailable: " in line]
    return found[-1].strip() if found else None


class Phases:
    """Wall time of each Spark action (the job's profile, in the summary); the task log shows each as it starts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, action):
        print(f"window_means: phase {name} started", flush=True)
        start = time.time()
        result = action()
        self.seconds[name] = round(time.time() - start, 2)
        return result


def read_readings(spark, args: argparse.Namespace, offsets: KafkaOffsets, F):
    """The batch's offset range, parsed and de-duplicated by (recording_id, seq); `copies` counts what was read."""
    from pyspark.sql.avro.functions import from_avro

    topic, parallelism = offsets.topic, spark.sparkContext.defaultParallelism
    # `assign`, not `subscribe`: the range names only the partitions the batch's recordings were keyed to
    # (one recording: one partition), and Spark wants offsets for exactly the partitions it reads.
    raw = (spark.read.format("kafka")
           .option("kafka.bootstrap.servers", args.kafka_bootstrap)
           .options(**kafka_options())
           .option("assign", json.dumps({topic: sorted(offsets.partitions)}))
           .option("startingOffsets", json.dumps({topic: {str(p): r[0] for p, r in offsets.partitions.items()}}))
           .option("endingOffsets", json.dumps({topic: {str(p): r[1] for p, r in offsets.partitions.items()}}))
           .option("minPartitions", str(2 * parallelism))  # split each Kafka partition's range over the cores
           .option("failOnDataLoss", "true")
           .load())
    # The topic's Avro schema (include/schemas); a message it cannot decode becomes null, is not counted as read,
    # and the count check below names the shortfall.
    parsed = raw.select(from_avro(F.col("value"), schema_text(), {"mode": "PERMISSIVE"}).alias("r")).select("r.*")
    flat = parsed.where(F.col("recording_id").isin(offsets.recordings)).select("recording_id", "seq", "t", *CHANNELS)
    # One shuffle puts each recording in one partition: the de-duplication, both window aggregations and
    # the per-recording window function of the gait features then need no other shuffle.
    return (flat.repartition(2 * parallelism, "recording_id")
            .groupBy("recording_id", "seq")
            .agg(F.count("*").alias("copies"), *[F.first(c).alias(c) for c in ["t", *CHANNELS]])
            .cache())


def window_means(readings, window_size: int, include_partial: bool, attributes, F):
    """Mean of every channel per window (window_index = seq div window_size), with the recording's attributes."""
    windows = (readings
               .withColumn("window_index", window_index(F, window_size))
               .groupBy("recording_id", "window_index")
               .agg(F.count("*").cast("int").alias("n_rows"),
                    F.min_by("t", "seq").alias("t_start"), F.max_by("t", "seq").alias("t_end"),
                    *[F.avg(c).alias(c) for c in CHANNELS]))
    if not include_partial:
        windows = windows.where(F.col("n_rows") == window_size)
    columns = ["recording_id", "window_index", "window_size", "subject_id", "study", "subject_group", "walk",
               "label", "n_rows", "t_start", "t_end", *CHANNELS]
    windows = windows.join(F.broadcast(attributes), "recording_id").withColumn("window_size", F.lit(window_size))
    return windows.select(*columns), columns


def compute_and_write(spark, args: argparse.Namespace, offsets: KafkaOffsets, summary: SparkSummary,
                      timed: Phases) -> None:
    """Windows and gait features of the batch, counted into the summary, then upserted into Cassandra."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    readings = read_readings(spark, args, offsets, F)
    read, distinct = timed("read_parse_deduplicate", lambda: readings.agg(F.sum("copies"), F.count("*")).first())
    summary.kafka_messages_read, summary.distinct_readings = int(read or 0), int(distinct)
    attributes = recording_attributes(spark, offsets.recordings)
    windows, columns = window_means(readings, args.window_size, args.include_partial, attributes, F)
    windows = windows.cache()
    summary.windows_written = timed("window_means", windows.count)
    summary.recordings = timed("recordings", windows.select("recording_id").distinct().count)
    tables = {args.table: (windows, columns, args.window_size)}
    if args.feature_window_size:
        features, feature_columns = gait_features(readings, args.feature_window_size, attributes, F, W)
        features = features.cache()
        summary.feature_windows_written = timed("gait_features", features.count)
        tables[args.features_table] = (features, feature_columns, args.feature_window_size)
    readings.unpersist()
    timed("clear", lambda: clear_recordings(args, {t: size for t, (_, _, size) in tables.items()},
                                            offsets.recordings))
    for table, (frame, frame_columns, _size) in tables.items():
        phase = "write_means" if table == args.table else "write_features"
        timed(phase, partial(frame.foreachPartition, partial(write_partition, args=args, table=table,
                                                             batch_id=args.batch_id, columns=frame_columns)))


def run(spark, args: argparse.Namespace, files: HadoopFiles, timed: Phases, began: float) -> SparkSummary:
    """The batch's summary, written to the file system once its windows are in Cassandra."""
    offsets = read_offsets_manifest(files, args)
    summary = SparkSummary(batch_id=args.batch_id, window_size=args.window_size, include_partial=args.include_partial,
                           feature_window_size=args.feature_window_size, kafka_messages_expected=offsets.messages,
                           kafka_offsets=offsets.partitions)
    if offsets.partitions:
        compute_and_write(spark, args, offsets, summary, timed)
    summary.seconds, summary.phase_seconds = round(time.time() - began, 2), timed.seconds
    files.write_atomically(args.summary_path, encode(summary))
    print("WINDOW_MEANS_SUMMARY " + encode(summary).decode(), flush=True)
    print(f"window_means: {summary.kafka_messages_read:,} messages read ({summary.distinct_readings:,} distinct) "
          f"-> {summary.windows_written:,} windows of {args.window_size} and {summary.feature_windows_written:,} "
          f"gait-feature windows of {summary.recordings} recordings in {summary.seconds}s "
          f"({summary.kafka_messages_read / max(summary.seconds, 1e-9):,.0f} readings/s)", flush=True)
    if summary.kafka_messages_read != summary.kafka_messages_expected:
        raise BadInput(f"read {summary.kafka_messages_read} messages from Kafka, the replay produced "
                       f"{summary.kafka_messages_expected}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession

    began, timed = time.time(), Phases()
    spark = timed("session", SparkSession.builder.appName(f"parkinson-window-means-{args.batch_id}").getOrCreate)
    spark.sparkContext.setLogLevel("WARN")
    try:
        run(spark, args, HadoopFiles(spark, args.hdfs_uri), timed, began)
    except BadInput as exc:
        bad_input(str(exc))
        return BAD_INPUT_EXIT
    except Exception as exc:
        line = unavailable_line(exc)
        if line is None:
            raise
        print(f"window_means: UNAVAILABLE: {line}", file=sys.stderr, flush=True)
        return UNAVAILABLE_EXIT
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
