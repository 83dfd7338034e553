#!/usr/bin/env bash
# Run a Kafka CLI tool against the SASL listener (kafka healthcheck, kafka-init): the client settings, with
# PIPELINE_KAFKA_USER / PIPELINE_KAFKA_PASSWORD from .env, go to a private temporary file (mktemp: mode 0600),
# never onto a command line; the tool gets `--command-config <file>` appended.
#   client.sh /opt/kafka/bin/kafka-topics.sh --bootstrap-server kafka:9092 --list
set -euo pipefail
: "${PIPELINE_KAFKA_USER:?PIPELINE_KAFKA_USER is not set (KAFKA_USER in .env)}"
: "${PIPELINE_KAFKA_PASSWORD:?PIPELINE_KAFKA_PASSWORD is not set (KAFKA_PASSWORD in .env)}"
config="$(mktemp)"
trap 'rm -f "$config"' EXIT
printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=PLAIN" \
  "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$PIPELINE_KAFKA_USER\" password=\"$PIPELINE_KAFKA_PASSWORD\";" \
  > "$config"
"$@" --command-config "$config"
