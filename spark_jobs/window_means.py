"""Spark job: window means (and gait features) of one batch, Kafka -> Cassandra.

Reads exactly the offset range the replay task recorded in HDFS (WebHDFS), parses the readings, drops
duplicate (recording_id, seq), and per recording computes the mean of the 18 force channels over windows
of `--window-size` readings (window_index = seq // window_size; complete windows only unless
--include-partial). From the same cached readings it computes the gait features of complete windows of
`--feature-window-size` readings into their own table (definitions and numpy reference:
include/features.py). Rows are upserted into Cassandra with prepared statements and concurrent writes,
one session per partition. No Airflow: the project's domain package (include/) comes with --py-files
(SparkJobOperator ships it), so channels, recording ids, feature definitions and exit codes are the same
definitions the rest of the pipeline uses.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from datetime import datetime, timezone

from include import names
from include.errors import SPARK_BAD_INPUT_EXIT as BAD_INPUT_EXIT
from include.features import EPS, GAIT_FEATURES, HEEL, MIDFOOT, SENSOR_Y, STANCE_FRACTION, TOE
from include.gaitpdb import CHANNELS, parse_recording_id

WRITE_BATCH_ROWS = 16  # rows per unlogged batch: about 5 KB, Cassandra's batch size warning threshold


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch-id", required=True)
    p.add_argument("--webhdfs-url", required=True, help="e.g. http://namenode:9870")
    p.add_argument("--webhdfs-user", default="root")
    p.add_argument("--offsets-manifest", required=True, help="HDFS path of the replay's kafka_offsets.json")
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
    return args


def webhdfs(url: str, user: str, path: str, op: str, method: str = "GET", data: bytes | None = None) -> bytes:
    """Minimal WebHDFS client (OPEN / CREATE follow the DataNode redirect)."""
    query = f"{url}/webhdfs/v1{path}?op={op}&user.name={user}" + ("&overwrite=true" if op == "CREATE" else "")
    if method == "PUT":
        first = urllib.request.Request(query, method="PUT")
        opener = urllib.request.build_opener(NoRedirect)
        with opener.open(first) as response:
            location = response.headers["Location"]
        with urllib.request.urlopen(urllib.request.Request(location, data=data, method="PUT")) as response:
            return response.read()
    with urllib.request.urlopen(query) as response:
        return response.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

    def http_error_307(self, req, fp, code, msg, headers):
        return fp


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
    """A driver Cluster; credentials (if any) come from the environment, never from the command line."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    user, password = os.environ.get("CASSANDRA_USER"), os.environ.get("CASSANDRA_PASSWORD")
    auth = PlainTextAuthProvider(user, password) if user else None
    return Cluster(args.cassandra_hosts.split(","), port=args.cassandra_port, auth_provider=auth)


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
        now = datetime.now(timezone.utc)
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


def read_offsets_manifest(args: argparse.Namespace) -> dict | None:
    """The replay's offsets manifest, or None (after one readable line) when it is missing or inconsistent."""
    import urllib.error

    try:
        offsets = json.loads(webhdfs(args.webhdfs_url, args.webhdfs_user, args.offsets_manifest, "OPEN"))
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return bad_input(f"no offsets manifest at {args.offsets_manifest}: run replay_hdfs_to_kafka for batch "
                         f"{args.batch_id} first")
    ranges = offsets.get("partitions")
    if not isinstance(ranges, dict) or not all(0 <= lo <= hi for lo, hi in ranges.values()) or \
            sum(hi - lo for lo, hi in ranges.values()) != offsets.get("messages"):
        return bad_input(f"offsets manifest {args.offsets_manifest} is inconsistent: {offsets.get('messages')} "
                         f"messages vs ranges {ranges}")
    return offsets


def bad_input(message: str) -> None:
    print(f"window_means: BAD INPUT: {message}", file=sys.stderr, flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession, Window as W, functions as F, types as T

    began = time.time()
    phases: dict[str, float] = {}

    def timed(name: str, action):
        """Run one Spark action and keep its wall time (the job's profile, in the summary); the task log shows
        each phase as it starts."""
        print(f"window_means: phase {name} started", flush=True)
        start = time.time()
        result = action()
        phases[name] = round(time.time() - start, 2)
        return result

    offsets = read_offsets_manifest(args)
    if offsets is None:
        return BAD_INPUT_EXIT
    spark = timed("session", SparkSession.builder.appName(f"parkinson-window-means-{args.batch_id}").getOrCreate)
    spark.sparkContext.setLogLevel("WARN")
    summary = {"batch_id": args.batch_id, "window_size": args.window_size, "include_partial": args.include_partial,
               "kafka_messages_expected": offsets["messages"], "kafka_offsets": offsets["partitions"]}
    schema = T.StructType([
        T.StructField("recording_id", T.StringType()), T.StructField("seq", T.LongType()),
        T.StructField("t", T.DoubleType()), T.StructField("left", T.ArrayType(T.DoubleType())),
        T.StructField("right", T.ArrayType(T.DoubleType())), T.StructField("left_total", T.DoubleType()),
        T.StructField("right_total", T.DoubleType()),
    ])
    if offsets["partitions"]:
        topic = offsets["topic"]
        start = {topic: {p: lo for p, (lo, _hi) in offsets["partitions"].items()}}
        end = {topic: {p: hi for p, (_lo, hi) in offsets["partitions"].items()}}
        parallelism = spark.sparkContext.defaultParallelism
        # `assign`, not `subscribe`: the range names only the partitions the batch's recordings were keyed to
        # (one recording: one partition), and Spark wants offsets for exactly the partitions it reads.
        assigned = {topic: sorted(int(p) for p in offsets["partitions"])}
        raw = (spark.read.format("kafka")
               .option("kafka.bootstrap.servers", args.kafka_bootstrap)
               .options(**kafka_options())
               .option("assign", json.dumps(assigned))
               .option("startingOffsets", json.dumps(start))
               .option("endingOffsets", json.dumps(end))
               .option("minPartitions", str(2 * parallelism))  # split each Kafka partition's range over the cores
               .option("failOnDataLoss", "true")
               .load())
        parsed = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("r")).select("r.*")
        flat = (parsed.where(F.col("recording_id").isin(offsets["recordings"]))
                .select("recording_id", "seq", "t", *[F.col("left")[i].alias(f"l{i + 1}") for i in range(8)],
                        *[F.col("right")[i].alias(f"r{i + 1}") for i in range(8)], "left_total", "right_total"))
        # One shuffle puts each recording in one partition: the de-duplication, both window aggregations and
        # the per-recording window function below then need no other shuffle. `copies` counts what was read.
        readings = (flat.repartition(2 * parallelism, "recording_id")
                    .groupBy("recording_id", "seq")
                    .agg(F.count("*").alias("copies"), *[F.first(c).alias(c) for c in ["t", *CHANNELS]])
                    .cache())
        read, distinct = timed("read_parse_deduplicate", lambda: readings.agg(F.sum("copies"), F.count("*")).first())
        summary["kafka_messages_read"], summary["distinct_readings"] = int(read or 0), int(distinct)
        windows = (readings
                   .withColumn("window_index", window_index(F, args.window_size))
                   .groupBy("recording_id", "window_index")
                   .agg(F.count("*").cast("int").alias("n_rows"),
                        F.min_by("t", "seq").alias("t_start"), F.max_by("t", "seq").alias("t_end"),
                        *[F.avg(c).alias(c) for c in CHANNELS]))
        if not args.include_partial:
            windows = windows.where(F.col("n_rows") == args.window_size)
        attributes = recording_attributes(spark, offsets["recordings"])
        windows = (windows.join(F.broadcast(attributes), "recording_id")
                   .withColumn("window_size", F.lit(args.window_size)))
        columns = ["recording_id", "window_index", "window_size", "subject_id", "study", "subject_group", "walk",
                   "label", "n_rows", "t_start", "t_end", *CHANNELS]
        windows = windows.select(*columns).cache()
        summary["windows_written"] = timed("window_means", windows.count)
        summary["recordings"] = timed("recordings", windows.select("recording_id").distinct().count)
        if args.feature_window_size:
            features, feature_columns = gait_features(readings, args.feature_window_size, attributes, F, W)
            features = features.cache()
            summary["feature_windows_written"] = timed("gait_features", features.count)
            summary["feature_window_size"] = args.feature_window_size
        else:
            summary["feature_windows_written"] = 0
        readings.unpersist()
        batch_id = args.batch_id
        sizes = {args.table: args.window_size, **({args.features_table: args.feature_window_size}
                                                  if args.feature_window_size else {})}
        timed("clear", lambda: clear_recordings(args, sizes, offsets["recordings"]))
        timed("write_means", lambda: windows.foreachPartition(
            lambda rows: write_partition(rows, args, args.table, batch_id, columns)))
        if args.feature_window_size:
            timed("write_features", lambda: features.foreachPartition(
                lambda rows: write_partition(rows, args, args.features_table, batch_id, feature_columns)))
    else:
        summary.update(kafka_messages_read=0, distinct_readings=0, windows_written=0, recordings=0,
                       feature_windows_written=0)
    summary["seconds"] = round(time.time() - began, 2)
    summary["phase_seconds"] = phases
    webhdfs(args.webhdfs_url, args.webhdfs_user, args.summary_path, "CREATE", "PUT", json.dumps(summary).encode())
    print("WINDOW_MEANS_SUMMARY " + json.dumps(summary), flush=True)
    print(f"window_means: {summary['kafka_messages_read']:,} messages read ({summary['distinct_readings']:,} distinct) "
          f"-> {summary['windows_written']:,} windows of {args.window_size} and "
          f"{summary['feature_windows_written']:,} gait-feature windows of {summary['recordings']} recordings in "
          f"{summary['seconds']}s ({summary['kafka_messages_read'] / max(summary['seconds'], 1e-9):,.0f} readings/s)",
          flush=True)
    spark.stop()
    if summary["kafka_messages_read"] != summary["kafka_messages_expected"]:
        bad_input(f"read {summary['kafka_messages_read']} messages from Kafka, the replay produced "
                  f"{summary['kafka_messages_expected']}")
        return BAD_INPUT_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
