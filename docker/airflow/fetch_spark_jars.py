"""Copy the Spark Kafka connector and its dependencies into a folder, at image build time.

Resolves org.apache.spark:spark-sql-kafka-0-10_2.13:<installed pyspark version> the way
`spark-submit --packages` does (Ivy, Maven Central), then copies the resolved jars into TARGET.
The DAG passes them with `jars=` (Airflow Variable spark_kafka_jars = TARGET/*.jar), so runs stay offline.

usage: python fetch_spark_jars.py TARGET
SPARK_KAFKA_PACKAGE=group:artifact:version overrides the coordinate (e.g. to test a mirror).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

SCALA_BINARY = "2.13"  # every Spark 4.x build


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    target = Path(argv[0])
    target.mkdir(parents=True, exist_ok=True)

    import pyspark
    from pyspark.sql import SparkSession

    coordinate = os.environ.get("SPARK_KAFKA_PACKAGE") or \
        f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_BINARY}:{pyspark.__version__}"
    group, artifact, _version = coordinate.split(":")
    ivy_home = Path(tempfile.mkdtemp(prefix="ivy-"))
    spark = (SparkSession.builder.master("local[1]").appName("fetch-spark-kafka-jars")
             .config("spark.jars.packages", coordinate)
             .config("spark.jars.ivy", str(ivy_home))
             .config("spark.ui.enabled", "false")
             .getOrCreate())
    spark.stop()

    jars = sorted((ivy_home / "jars").glob("*.jar"))
    if not any(jar.name.startswith(f"{group}_{artifact}-") for jar in jars):
        print(f"{coordinate} was not resolved; got {[j.name for j in jars]}", file=sys.stderr)
        return 1
    for jar in jars:
        shutil.copy2(jar, target / jar.name)
    shutil.rmtree(ivy_home, ignore_errors=True)
    print(f"{coordinate}: {len(jars)} jars in {target}")
    for jar in jars:
        print(f"  {jar.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
