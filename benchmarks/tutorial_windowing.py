"""Baseline of the windowing benchmark: the original tutorial's algorithm, one Spark job per window, each
recomputing row_number() over the whole recording to find its 100 rows. Submitted by benchmarks/pipeline.py
with the same Spark connection and Kafka jars as the DAG; reads a few recordings of a replayed batch from
Kafka (the replay's offset range), times every window's job and writes the figures as JSON. The recording's
readings are cached first and nothing is written to Cassandra, which makes this baseline faster than the
tutorial was (the ratio to it is a lower bound).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from include.gaitpdb import CHANNELS  # the project's root is on PYTHONPATH (scripts/with-env), driver and workers
from include.kafka_record import schema_text


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--offsets-file", required=True, help="local copy of the replay's offsets manifest")
    p.add_argument("--kafka-bootstrap", required=True)
    p.add_argument("--recordings", required=True, help="comma-separated recording ids")
    p.add_argument("--window-size", type=int, default=100)
    p.add_argument("--max-windows", type=int, default=0, help="per recording; 0 = all")
    p.add_argument("--result-file", required=True, help="where to write the JSON result")
    args = p.parse_args(argv)
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    with open(args.offsets_file) as f:
        offsets = json.load(f)
    spark = SparkSession.builder.appName("tutorial-windowing-baseline").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    topic = offsets["topic"]
    raw = (spark.read.format("kafka").option("kafka.bootstrap.servers", args.kafka_bootstrap)
           .option("subscribe", topic)
           .option("startingOffsets", json.dumps({topic: {p: lo for p, (lo, _) in offsets["partitions"].items()}}))
           .option("endingOffsets", json.dumps({topic: {p: hi for p, (_, hi) in offsets["partitions"].items()}}))
           .load())
    readings = (raw.select(from_avro(F.col("value"), schema_text()).alias("r"))
                .select("r.recording_id", "r.seq", *[f"r.{c}" for c in CHANNELS]))
    windows, seconds, rows = 0, 0.0, 0
    for recording_id in args.recordings.split(","):
        recording = readings.where(F.col("recording_id") == recording_id).cache()
        n = recording.count()
        rows += n
        count = n // args.window_size
        if args.max_windows:
            count = min(count, args.max_windows)
        began = time.perf_counter()
        for w in range(count):
            ranked = recording.withColumn("row", F.row_number().over(Window.orderBy("seq")))
            ranked.where((F.col("row") > w * args.window_size) & (F.col("row") <= (w + 1) * args.window_size)) \
                .agg(*[F.avg(c).alias(c) for c in CHANNELS]).collect()
        seconds += time.perf_counter() - began
        windows += count
        recording.unpersist()
    spark.stop()
    result = {"windows": windows, "seconds": round(seconds, 3), "rows": rows,
              "seconds_per_window": seconds / max(windows, 1)}
    with open(args.result_file, "w") as f:
        json.dump(result, f)
    print(f"tutorial windowing: {windows} windows, one Spark job each, in {seconds:.1f}s", flush=True)
    return 0 if windows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
