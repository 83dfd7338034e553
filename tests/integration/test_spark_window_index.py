"""The Spark job's window index is integer arithmetic: it equals numpy's seq // window_size for every 64-bit
seq, past 2^53 too, where a double division (what the job once did) rounds across a window boundary."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEQS = [0, 99, 100, 2**53 - 1, 2**53, 2**53 + 1, 100 * 2**55 - 1, 300 * 2**52 + 299, 2**63 - 1]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("window-index-test")
               .config("spark.ui.enabled", "false").getOrCreate())
    yield session
    session.stop()


@pytest.fixture(scope="module")
def job():
    sys.path.insert(0, str(ROOT / "spark_jobs"))
    try:
        import window_means
    finally:
        sys.path.remove(str(ROOT / "spark_jobs"))
    return window_means


@pytest.mark.parametrize("size", [1, 3, 100, 300])
def test_window_index_equals_numpy_for_64_bit_seqs(spark, job, size):
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(seq,) for seq in SEQS], "seq long")
    got = [row[0] for row in frame.select(job.window_index(F, size)).collect()]
    assert got == (np.array(SEQS, dtype=np.int64) // size).tolist()


def test_a_double_division_would_be_wrong_there(spark):
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(seq,) for seq in SEQS], "seq long")
    doubled = [row[0] for row in frame.select((F.col("seq") / 100).cast("long")).collect()]
    assert doubled != [seq // 100 for seq in SEQS]
