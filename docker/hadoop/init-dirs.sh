#!/usr/bin/env bash
# One-shot (service hdfs-init of docker-compose.airflow.yml), with the apache/hadoop image: create the
# pipeline's base directories (mkdir -p: a no-op when present), owned by the WebHDFS user of the Airflow
# connection (HADOOP_USER_NAME). The list comes from the service's environment, which
# tests/unit/test_compose.py keeps equal to include/names.py HDFS_BASE_DIRS.
set -euo pipefail
read -r -a dirs <<< "${PIPELINE_HDFS_DIRS:?PIPELINE_HDFS_DIRS is not set}"
for attempt in $(seq 1 30); do
  if hdfs dfs -mkdir -p "${dirs[@]}"; then
    hdfs dfs -ls -d "${dirs[@]}"
    exit 0
  fi
  echo "hdfs-init: NameNode not writable yet ($attempt/30)"
  sleep 5
done
exit 1
