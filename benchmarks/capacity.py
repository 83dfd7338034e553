"""Scale-out on paper: what 100, 1,000 and 10,000 insoles at 100 Hz need, from the per-core throughput that a
pipeline benchmark run measured (benchmarks/pipeline.py's JSON). docs/capacity.md explains the model.

    scripts/with-env python -m benchmarks.capacity [RESULTS.json] [--headroom 2] [--markdown]

Every figure is printed with its inputs: the measured rates (items, seconds, cores of each stage), the bytes of a
landed reading (the bundled sample through the message contract) and the assumptions below.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "pipeline.json"
FLEETS = (100, 1_000, 10_000)
HZ = 100  # readings per second of one walking subject
INSOLES_PER_READING = 2  # one reading holds both feet's 8 sensors
SECONDS_PER_DAY = 86_400
WINDOW = 100  # readings per window (the DAG's default)
REPLICATION = 3  # Kafka, Cassandra and HDFS copies in the cluster profile
KAFKA_RETENTION_DAYS = 7
MIN_PARTITIONS, MIN_NODES, BROKERS = 6, 3, 3


@dataclass(frozen=True)
class Rates:
    """Measured per-core throughput of each stage (items per second of one core)."""

    capture: float  # readings landed, one Python consumer (one core)
    replay: float  # readings produced, one Python producer (one core)
    windowing: float  # readings windowed by the Spark job (its own time, without the JVM start), per core
    cassandra_writes: float  # window rows upserted per second by one node (replication 1), from the write phase
    source: str

    @classmethod
    def from_results(cls, r: dict, source: str) -> Rates:
        windowing, spark_cores = r["windowing"], spark_cores_of(r.get("spark_master", "local[2]"))
        write_seconds = windowing["phase_seconds"]["write_means"]
        return cls(
            capture=r["capture_batched"]["items"] / r["capture_batched"]["seconds"],
            replay=r["replay"]["items"] / r["replay"]["seconds"],
            windowing=windowing["items"] / windowing["job_seconds"] / spark_cores,
            cassandra_writes=windowing["windows"] / write_seconds,
            source=source,
        )


def spark_cores_of(master: str) -> int:
    """The cores of a local[N] master (where the benchmark's windowing ran); other masters are refused."""
    if not (master.startswith("local[") and master.endswith("]") and master[6:-1].isdigit()):
        raise ValueError(f"per-core rates need a local[N] benchmark run, not master {master!r}")
    return int(master[6:-1])


def reading_bytes() -> tuple[float, float]:
    """Mean size of one reading over the bundled sample: landed (a JSON line of the message contract) and on Kafka
    (its Avro message value, include/kafka_record.py)."""
    from include import gaitpdb
    from include.contract import canonical_lines, reading_from_row
    from include.kafka_record import encode_landed

    landed, messages = 0, []
    for recording_id, rows in gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR):
        lines = canonical_lines([reading_from_row(recording_id, seq, row) for seq, row in enumerate(rows)])
        landed += sum(len(line.encode()) + 1 for line in lines)
        messages += encode_landed(recording_id, "\n".join(lines).encode())
    return landed / len(messages), sum(map(len, messages)) / len(messages)


def plan(insoles: int, rates: Rates, line_bytes: float, headroom: float, message_bytes: float | None = None) -> dict:
    """What a fleet needs to keep up around the clock, each stage at most 1/headroom of its measured rate."""
    per_second = insoles / INSOLES_PER_READING * HZ
    cores = {
        "capture": per_second * headroom / rates.capture,
        "replay": per_second * headroom / rates.replay,
        "windowing (Spark executors)": per_second * headroom / rates.windowing,
    }
    windows_per_second = per_second / WINDOW
    cassandra = windows_per_second * REPLICATION * headroom / rates.cassandra_writes
    day_bytes = per_second * SECONDS_PER_DAY * line_bytes
    kafka_day_bytes = per_second * SECONDS_PER_DAY * (message_bytes or line_bytes)
    consumers = math.ceil(max(cores["capture"], cores["replay"]))
    return {
        "insoles": insoles,
        "readings_per_s": per_second,
        "readings_per_day": per_second * SECONDS_PER_DAY,
        "cores": {stage: round(value, 3) for stage, value in cores.items()},
        "spark_executor_cores": math.ceil(cores["windowing (Spark executors)"]),
        "kafka_partitions": max(MIN_PARTITIONS, BROKERS * math.ceil(consumers / BROKERS)),
        "cassandra_nodes": max(MIN_NODES, math.ceil(cassandra)),
        "cassandra_node_load": round(cassandra, 4),
        "hdfs_gib_per_day": day_bytes * REPLICATION / 2**30,
        "kafka_gib_retained": kafka_day_bytes * REPLICATION * KAFKA_RETENTION_DAYS / 2**30,
        "first_bottleneck": max(cores, key=lambda stage: cores[stage]),
    }


def table(plans: list[dict], rates: Rates, sizes: tuple[float, float], headroom: float) -> list[str]:
    lines = [
        f"inputs: {rates.source}",
        f"  per core: capture {rates.capture:,.0f} readings/s, replay {rates.replay:,.0f} readings/s, Spark "
        f"windowing {rates.windowing:,.0f} readings/s; one Cassandra node {rates.cassandra_writes:,.0f} window rows/s",
        f"  {sizes[0]:.0f} bytes per landed reading, {sizes[1]:.0f} per Kafka message; "
        f"{INSOLES_PER_READING} insoles per reading at {HZ} Hz; "
        f"windows of {WINDOW}; replication {REPLICATION}; Kafka retention {KAFKA_RETENTION_DAYS} days; "
        f"headroom {headroom:g}x (each stage at most 1/{headroom:g} of its measured rate)",
        "",
        "| insoles | readings/s | readings/day | cores: capture / replay / Spark | Kafka partitions | Spark executor "
        "cores | Cassandra nodes (load) | HDFS GiB/day (x3) | Kafka GiB retained (x3) | first bottleneck |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in plans:
        c = list(p["cores"].values())
        lines.append(
            f"| {p['insoles']:,} | {p['readings_per_s']:,.0f} | {p['readings_per_day'] / 1e6:,.0f} M | "
            f"{c[0]:.2f} / {c[1]:.2f} / {c[2]:.2f} | {p['kafka_partitions']} | {p['spark_executor_cores']} | "
            f"{p['cassandra_nodes']} ({p['cassandra_node_load']:.3f}) | {p['hdfs_gib_per_day']:,.1f} | "
            f"{p['kafka_gib_retained']:,.1f} | {p['first_bottleneck']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--headroom", type=float, default=2.0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.results.exists():
        parser.error(f"no benchmark results at {args.results}: run `make bench` (or pass a results JSON)")
    results = json.loads(args.results.read_text())
    source = f"{args.results.name} (commit {results.get('commit', '?')}, {results.get('machine', {})})"
    rates, sizes = Rates.from_results(results, source), reading_bytes()
    plans = [plan(insoles, rates, sizes[0], args.headroom, message_bytes=sizes[1]) for insoles in FLEETS]
    print("\n".join(table(plans, rates, sizes, args.headroom)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
