#!/usr/bin/env bash
# One-shot (service kafka-init of docker-compose.airflow.yml), with the tools of the apache/kafka image:
# create the pipeline topic like `scripts/services.py up` does locally (the broker has auto-create off),
# and grow it when it exists with fewer partitions. Topic name and partition count come from the service's
# environment, which tests/unit/test_compose.py keeps equal to include/names.py. The tools log in with SASL
# through client.sh (credentials from the environment, never on a command line).
set -euo pipefail
bootstrap="${KAFKA_BOOTSTRAP:-kafka:9092}"
topic="${PIPELINE_KAFKA_TOPIC:?PIPELINE_KAFKA_TOPIC is not set}"
partitions="${PIPELINE_KAFKA_PARTITIONS:?PIPELINE_KAFKA_PARTITIONS is not set}"
retention_ms="${PIPELINE_KAFKA_RETENTION_MS:-604800000}"   # a week
topics=(bash /opt/parkinson/kafka-client.sh /opt/kafka/bin/kafka-topics.sh)

"${topics[@]}" --bootstrap-server "$bootstrap" --create --if-not-exists --topic "$topic" \
  --partitions "$partitions" --replication-factor 1 \
  --config "retention.ms=$retention_ms" --config cleanup.policy=delete

current="$("${topics[@]}" --bootstrap-server "$bootstrap" --describe --topic "$topic" \
  | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)"
if [[ -n "$current" && "$current" -lt "$partitions" ]]; then
  "${topics[@]}" --bootstrap-server "$bootstrap" --alter --topic "$topic" --partitions "$partitions"
fi
"${topics[@]}" --bootstrap-server "$bootstrap" --describe --topic "$topic"
