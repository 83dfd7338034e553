"""Smoke test for Spark's Kafka source: read a whole topic as a bounded batch and check the row count.

spark-submit --master local[2] --jars <spark.jars()> spark_jobs/smoke_kafka_read.py \
    --bootstrap-servers <host:port> --topic some.topic --expect 3
Self-contained: no imports from Airflow or the project. Exit code 0 when the count matches (or no --expect).
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--expect", type=int, help="fail unless exactly this many records are read")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("smoke-kafka-read").getOrCreate()
    try:
        df = (spark.read.format("kafka")
              .option("kafka.bootstrap.servers", args.bootstrap_servers)
              .option("subscribe", args.topic)
              .option("startingOffsets", "earliest")
              .option("endingOffsets", "latest")
              .load())
        stats = df.agg(F.count("*").alias("rows"), F.countDistinct("partition").alias("parts")).first()
        rows, partitions = int(stats["rows"]), int(stats["parts"])
    finally:
        spark.stop()
    print(f"smoke_kafka_read: topic={args.topic} rows={rows} partitions_with_data={partitions}", flush=True)
    if args.expect is not None and rows != args.expect:
        print(f"smoke_kafka_read: expected {args.expect} rows, read {rows}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
