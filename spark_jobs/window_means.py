"""Spark job: window means of one batch, Kafka -> Cassandra.

Reads exactly the offset range the replay task recorded in HDFS (WebHDFS), parses the readings, drops
duplicate (recording_id, seq), and per recording computes the mean of the 18 force channels over windows
of `--window-size` readings (window_index = seq // window_size; complete windows only unless
--include-partial). Rows are upserted into Cassandra with prepared statements and concurrent writes,
one session per partition. Self-contained: no imports from Airflow or the project.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from datetime import datetime, timezone

CHANNELS = [f"l{i}" for i in range(1, 9)] + [f"r{i}" for i in range(1, 9)] + ["left_total", "right_total"]
RECORDING_ID = r"^(Ga|Ju|Si)(Co|Pt)(\d{2})_(\d{2})$"


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
    p.add_argument("--keyspace", default="parkinson")
    p.add_argument("--table", default="window_means")
    p.add_argument("--window-size", type=int, default=100)
    partial = p.add_mutually_exclusive_group()
    partial.add_argument("--include-partial", dest="include_partial", action="store_true",
                         help="also store each recording's last, incomplete window")
    partial.add_argument("--only-complete", dest="include_partial", action="store_false", help="the default")
    p.add_argument("--write-concurrency", type=int, default=64)
    args = p.parse_args(argv)
    if args.window_size < 1:
        p.error("--window-size must be >= 1")
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


def cassandra_cluster(args: argparse.Namespace):
    """A driver Cluster; credentials (if any) come from the environment, never from the command line."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    user, password = os.environ.get("CASSANDRA_USER"), os.environ.get("CASSANDRA_PASSWORD")
    auth = PlainTextAuthProvider(user, password) if user else None
    return Cluster(args.cassandra_hosts.split(","), port=args.cassandra_port, auth_provider=auth)


def clear_recordings(args: argparse.Namespace, recordings: list[str]) -> None:
    """Delete the batch's recordings' partitions first, so a re-run with another window size or without
    partial windows leaves no stale window behind (the upserts then replace everything)."""
    from cassandra.concurrent import execute_concurrent_with_args

    cluster = cassandra_cluster(args)
    try:
        session = cluster.connect(args.keyspace)
        statement = session.prepare(f"DELETE FROM {args.table} WHERE recording_id = ?")
        execute_concurrent_with_args(session, statement, [(r,) for r in recordings], raise_on_first_error=True)
    finally:
        cluster.shutdown()


def write_partition(rows, args: argparse.Namespace, batch_id: str, columns: list[str]):
    """foreachPartition body: upsert one partition's windows with a prepared statement."""
    from cassandra.concurrent import execute_concurrent_with_args

    rows = list(rows)
    if not rows:
        return
    cluster = cassandra_cluster(args)
    try:
        session = cluster.connect(args.keyspace)
        all_columns = columns + ["batch_id", "written_at"]
        statement = session.prepare(
            f"INSERT INTO {args.table} ({', '.join(all_columns)}) VALUES ({', '.join('?' * len(all_columns))})")
        now = datetime.now(timezone.utc)
        params = [tuple(row[c] for c in columns) + (batch_id, now) for row in rows]
        for ok, result in execute_concurrent_with_args(session, statement, params,
                                                       concurrency=args.write_concurrency, raise_on_first_error=True):
            if not ok:
                raise result
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession, functions as F, types as T

    began = time.time()
    offsets = json.loads(webhdfs(args.webhdfs_url, args.webhdfs_user, args.offsets_manifest, "OPEN"))
    spark = SparkSession.builder.appName(f"parkinson-window-means-{args.batch_id}").getOrCreate()
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
        raw = (spark.read.format("kafka")
               .option("kafka.bootstrap.servers", args.kafka_bootstrap)
               .option("subscribe", topic)
               .option("startingOffsets", json.dumps(start))
               .option("endingOffsets", json.dumps(end))
               .option("failOnDataLoss", "true")
               .load())
        readings = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("r")).select("r.*")
        readings = readings.where(F.col("recording_id").isin(offsets["recordings"]))
        readings = readings.cache()
        summary["kafka_messages_read"] = readings.count()
        readings = readings.dropDuplicates(["recording_id", "seq"])
        summary["distinct_readings"] = readings.count()
        windows = (readings
                   .withColumn("window_index", (F.col("seq") / args.window_size).cast("long").cast("int"))
                   .select("recording_id", "window_index", "seq", "t",
                           *[F.col("left")[i].alias(f"l{i + 1}") for i in range(8)],
                           *[F.col("right")[i].alias(f"r{i + 1}") for i in range(8)],
                           "left_total", "right_total")
                   .groupBy("recording_id", "window_index")
                   .agg(F.count("*").cast("int").alias("n_rows"),
                        F.min_by("t", "seq").alias("t_start"), F.max_by("t", "seq").alias("t_end"),
                        *[F.avg(c).alias(c) for c in CHANNELS]))
        if not args.include_partial:
            windows = windows.where(F.col("n_rows") == args.window_size)
        windows = (windows
                   .withColumn("study", F.regexp_extract("recording_id", RECORDING_ID, 1))
                   .withColumn("subject_group", F.regexp_extract("recording_id", RECORDING_ID, 2))
                   .withColumn("subject_id", F.split("recording_id", "_")[0])
                   .withColumn("walk", F.regexp_extract("recording_id", RECORDING_ID, 4).cast("int"))
                   .withColumn("label", F.when(F.col("subject_group") == "Pt", 1).otherwise(0))
                   .withColumn("window_size", F.lit(args.window_size)))
        columns = ["recording_id", "window_index", "window_size", "subject_id", "study", "subject_group", "walk",
                   "label", "n_rows", "t_start", "t_end", *CHANNELS]
        windows = windows.select(*columns).cache()
        summary["windows_written"] = windows.count()
        summary["recordings"] = windows.select("recording_id").distinct().count()
        batch_id = args.batch_id
        clear_recordings(args, offsets["recordings"])
        windows.foreachPartition(lambda rows: write_partition(rows, args, batch_id, columns))
    else:
        summary.update(kafka_messages_read=0, distinct_readings=0, windows_written=0, recordings=0)
    summary["seconds"] = round(time.time() - began, 2)
    webhdfs(args.webhdfs_url, args.webhdfs_user, args.summary_path, "CREATE", "PUT", json.dumps(summary).encode())
    print("WINDOW_MEANS_SUMMARY " + json.dumps(summary), flush=True)
    spark.stop()
    if summary["kafka_messages_read"] != summary["kafka_messages_expected"]:
        print(f"ERROR: read {summary['kafka_messages_read']} messages from Kafka, the replay produced "
              f"{summary['kafka_messages_expected']}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
